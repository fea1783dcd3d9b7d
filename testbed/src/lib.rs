//! The network-namespace topology every edgemob end-to-end test (and the demo)
//! runs on, as ARCHITECTURE.md describes it:
//!
//! ```text
//!   ue (10.77.1.2, fd00:77:1::2)
//!    | eth0 — sw-ue
//!   sw ── sw-enbc1 — eth0 ── enbc1 (10.77.2.2; service 10.77.0.1, fd00:77::1 on lo)
//!      └─ sw-enbc2 — eth0 ── enbc2 (10.77.3.2; the same service addresses on lo)
//! ```
//!
//! `sw` routes the service address to one eNBC; [`Testbed::switch_to`] moves
//! that route with one rtnetlink request (a handover of the UE's path).
//!
//! Larger topologies: [`TestbedOptions::enbcs`] eNBCs (`enbc3` is
//! `Node::Enbc(3)`, on link 10.77.4.0/24, and so on; every eNBC reaches the
//! others' link addresses through `sw`, for the agents' MIH and CXTP
//! traffic) and [`TestbedOptions::ue_addrs`] UE addresses on `ue`
//! (10.77.1.2, .3, …, [`Testbed::ue_addr`]), one per simulated UE. With
//! several UE addresses `sw` keeps one routing table per UE address (policy
//! rule `from <ue> to <service> lookup 1000+k`), and
//! [`Testbed::switch_ue_to`] moves one UE's path with one rtnetlink request
//! while the others stay.
//! Namespace names are unique per instance (`em<pid>x<n>-<node>`), so tests
//! run in parallel; dropping a [`Testbed`] kills every process inside and
//! removes the namespaces, and [`cleanup_stale`] removes leftovers of killed
//! runs. IPv6 addresses skip DAD and neighbours are permanent, so the first
//! packet after setup or a switch is never held back.
//!
//! Captures ([`Testbed::capture`]) run tcpdump inside a namespace; the
//! [`pcap`] module reads them back and counts RSTs, retransmissions and the
//! largest gap between data segments reaching a host.

mod capture;
mod error;
mod netns;
pub mod pcap;
mod route;
mod topology;

pub use capture::Capture;
pub use error::{Result, TestbedError};
pub use netns::{is_root, require_root};
pub use topology::{
    Family, MAX_ENBCS, MAX_UE_ADDRS, Node, SERVICE_V4, SERVICE_V6, Testbed, TestbedOptions, UPLINK,
    cleanup_stale,
};

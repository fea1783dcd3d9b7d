//! # edgemob-agent — the per-eNBC daemon
//!
//! Runs the migration signalling flow of "Service Mobility in Mobile
//! Networks" (Fig. 7) on one eNodeB-Cloud: it answers its peers' IEEE
//! 802.21 `MIH_N2N_HO_Commit` requests, moves users' application contexts
//! and live TCP connections with RFC 4067 CXTP and TCP_REPAIR, and serves
//! the service-mobility API (`edgemob.v1`) to local services and operators.
//! The binary is `edgemob`; see `edgemob --help`.

pub mod api;
pub mod cli;
pub mod config;
pub mod cpu_latency;
pub mod cxtp_link;
pub mod fdserver;
pub mod history;
pub mod instance;
pub mod metrics;
pub mod migration;
pub mod mih_link;
pub mod node;
pub mod registry;

pub use config::Config;
pub use node::{Node, Running, StartError};

/// Sleeps until a sans-IO endpoint's next timer (`poll_timeout`), or for
/// ever when it has none.
pub(crate) async fn timer(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

//! # edgemob-mih — IEEE 802.21 Media Independent Handover signalling
//!
//! The handover-signalling block of edgemob (paper Fig. 5): before any
//! context moves, the source eNodeB-Cloud asks the target with
//! `MIH_N2N_HO_Commit` whether it can host the user's services.
//!
//! The crate is sans-IO: [`Frame`] encodes and decodes frames, and [`Mihf`]
//! runs transactions when fed bytes and a clock. The agent owns the sockets
//! (UDP or TCP, port [`MIH_PORT`]).
//!
//! ```
//! use edgemob_mih::*;
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let enbc1 = MihfId::try_from("enbc1@edgemob").unwrap();
//! let enbc2 = MihfId::try_from("enbc2@edgemob").unwrap();
//! let mut source = Mihf::new(MihfConfig::new(enbc1.clone()));
//! let mut target = Mihf::new(MihfConfig::new(enbc2.clone()));
//!
//! let request = Message::N2nHoCommitRequest(N2nHoCommitRequest {
//!     mn_mihf_id: MihfId::try_from("imsi-001010000000001").unwrap(),
//!     mn_link_id: LinkId {
//!         link_type: LinkType::WIRELESS_OTHER,
//!         addr: LinkAddr::Cell3g { plmn: [0x00, 0xF1, 0x10], cell_id: 1 },
//!     },
//!     poa: LinkAddr::Cell3g { plmn: [0x00, 0xF1, 0x10], cell_id: 2 },
//!     requested_resources: None,
//!     edgemob: None,
//! });
//! let tid = source.send_request(enbc2.clone(), request, now).unwrap();
//! let frame = source.poll_transmit().unwrap();
//! target.handle_datagram(&frame.payload, now).unwrap();
//!
//! // The target's MIH-User sees an indication and answers it.
//! let Some(Event::Indication { peer, tid: t, message: Message::N2nHoCommitIndication(req) }) =
//!     target.poll_event() else { panic!() };
//! let response = Message::N2nHoCommitResponse(N2nHoCommitResponse {
//!     status: Status::SUCCESS,
//!     mn_mihf_id: req.mn_mihf_id,
//!     link_id: None,
//!     assigned_resources: None,
//!     edgemob: None,
//! });
//! target.respond(&peer, t, response, now).unwrap();
//! // The ACK rides on the response.
//! let frame = target.poll_transmit().unwrap();
//! source.handle_datagram(&frame.payload, now).unwrap();
//! assert!(matches!(
//!     source.poll_event(),
//!     Some(Event::Confirm { message: Message::N2nHoCommitConfirm(r), tid: x, .. })
//!         if r.status.is_success() && x == tid
//! ));
//! ```

mod error;
mod frame;
mod header;
mod message;
mod mihf;
pub mod tlv;
mod types;
mod vendor;

pub use error::{DecodeError, EncodeError};
pub use frame::{Body, Frame};
pub use header::{Flags, HEADER_LEN, Header, Mid, Opcode, ServiceId, Tid, frame_len};
pub use message::{
    CapabilityDiscoverRequest, CapabilityDiscoverResponse, Message, N2nHoCommitRequest,
    N2nHoCommitResponse, N2nHoCompleteRequest, N2nHoCompleteResponse, aid,
};
pub use mihf::{Event, Mihf, MihfConfig, MihfStats, RespondError, SendError, Transmit};
pub use types::*;
pub use vendor::{EDGEMOB_OUI, EdgemobInfo, MovingConnection, Reason, ServiceDemand};

/// UDP and TCP port of MIH between peer MIHFs.
pub const MIH_PORT: u16 = 4551;

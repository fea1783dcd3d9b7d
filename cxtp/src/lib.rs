//! # edgemob-cxtp — RFC 4067 Context Transfer Protocol, sans-IO
//!
//! When a UE is handed over between LTE base stations, edgemob moves each
//! service's per-user context and live TCP connections from the source eNBC
//! to the target eNBC with CXTP (RFC 4067). This crate holds everything CXTP
//! without doing any I/O: it is fed octets and an [`Instant`] clock and hands
//! back octets and [`Event`]s, like `quinn-proto` under `quinn`.
//!
//! | layer | module | what |
//! |---|---|---|
//! | codec | [`header`], [`cdb`], [`message`] | the 4-octet header, Context Data Blocks, all seven messages |
//! | registry | [`fpt`], [`status`] | FPT codes (IANA + edgemob's private block), status codes |
//! | security | [`auth`] | authorization token (HMAC-SHA1, first 32 bits), replay cache |
//! | framing | [`framer`] | TCP byte stream → whole messages |
//! | large contexts | [`transfer`] | transfers of any size as CTDs; reassembly |
//! | state machine | [`endpoint`] | one connection: transfers both ways, timers, events |
//!
//! ## Wire format (RFC 4067 §2)
//!
//! Every message starts with a 4-octet header ([`header`]); all integers are
//! big-endian; addresses are 4 octets (`V` = 1) or 16 (`V` = 0), one `V` bit
//! for all addresses of a message.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers.|  Type   |V|A| Reserved  |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! | type | message | body after the header |
//! |---|---|---|
//! | 1 | CTAR | MN prev. addr, pAR/nAR addr, Seq u32, Token u32, request CDBs |
//! | 2 | CTAA | MN prev. addr, {FPT u16, Status u8, Reserved u8}* |
//! | 3 | CTD | Elapsed ms u32, MN prev. addr, CDBs |
//! | 4 | PCTD | Elapsed ms u32, MN prev. addr, Algorithm u16, Key Length u16, Key, CDBs |
//! | 5 | CTDR (`S` flag) | MN prev. addr, {FPT u16, Status u8, Reserved u8}* |
//! | 6 | CTC | MN prev. addr |
//! | 7 | CT-Req | MN prev. addr, Seq u32, Token u32, request CDBs |
//!
//! A Context Data Block ([`cdb`]) is `FPT u16 | Length u8 | P, 7 reserved
//! bits | [presence vector u32] | data | zero padding`, Length counting the
//! whole block in 8-octet words: at most 2,040 octets.
//!
//! ## Large contexts
//!
//! A UE's contexts (75–100 KB, up to 16 MiB and beyond) fit neither a CDB nor
//! a 65,535-octet message. [`transfer`] defines how edgemob carries them
//! while keeping every message RFC-exact:
//!
//! * every CDB with an edgemob FPT starts its data with a 12-octet segment
//!   header (context index, segment length, offset, exact context length), so
//!   lengths are exact despite the RFC's 8-octet padding;
//! * a transfer that fits one CTD is one ordinary CTD;
//! * a larger one is a first CTD whose first CDB is a *manifest* (FPT
//!   `0xE000`: Transfer ID, CTD count, context count, total octets), then CTDs
//!   whose first CDB is a *continuation* marker (Transfer ID, CTD index);
//!   only the last CTD sets `A`, and one CTDR answers the whole transfer.
//!
//! ```text
//!  CTD 0 |hdr|elapsed|MN|manifest(id,n,ctxs,octets)|seg(ctx0,off 0)|seg(ctx0,off 2024)|…
//!  CTD 1 |hdr|elapsed|MN|continuation(id,1)        |seg(ctx0,…)    |seg(ctx1,off 0)   |…
//!  CTD n−1 (A=1) …                                                   ← one CTDR for all
//!
//!  seg = |FPT|Len|P=0,rsvd| index u16 | seg len u16 | offset u32 | ctx len u32 | octets | 0-pad |
//! ```
//!
//! The full byte diagrams are in [`transfer::segment`] and
//! [`transfer::manifest`].
//!
//! ## Where RFC 4067 is ambiguous, and what this crate does
//!
//! * **Version bits.** §2.2's prose puts "a 3 bit version number field in the
//!   low order octet", but every figure draws `Vers.` as bits 0–2, the top of
//!   the first octet, before the 5-bit Type. The figures are followed:
//!   version 1 is `0b001` in the three most significant bits of octet 0.
//! * **The `A`/`S` bit.** Defined for CTAR, CTD, PCTD (`A`) and CTDR (`S`);
//!   CTAA, CTC and CT-Req draw it as Reserved, so it is sent as 0 and ignored
//!   there. Reserved bits are ignored on receipt, as the RFC says.
//! * **Key fields of the CTD.** The figure marks Algorithm/Key Length/Key
//!   "PCTD only"; the prose also sends key material in answer to a CT-Req
//!   with a null token "as if … predictive". They are present exactly when
//!   the type is PCTD (4), which is what a parser can rely on; edgemob sends
//!   a PCTD in the null-token case. The Key is Key Length octets, unpadded.
//! * **CDB data length.** The RFC carries no exact data length, only the
//!   8-octet-rounded block length; the FPT specification defines where data
//!   ends. Decoded [`Cdb::data`] therefore includes the padding; edgemob's
//!   own FPTs carry an exact length in their segment header.
//! * **Request CDBs.** "Only the first 4 octets are typically necessary", yet
//!   Length counts 8-octet words: a data-less request is sent as 8 octets
//!   (Length 1), and any valid block is accepted.
//! * **CTDR entries with `S` set.** The RFC lists FPTs "being acknowledged";
//!   edgemob sends one entry per FPT (or per context, as the application
//!   chooses) and sets `S` exactly when all statuses are 0.
//! * **CTC direction.** RFC: nAR → pAR. edgemob also sends it pAR → nAR, to
//!   drop a partial reassembly after a sender-side timeout.
//! * **Timer names.** §4 says `CT_MAX_TRANSFER_TIME` (200 ms),
//!   `CT_REQUEST_RETRY` (2 s), `CT_RETRY_MAX` (15 s), `CT_REQUEST_RATE`
//!   (10/s); the prose also uses `CXTP_*` spellings and an undefined
//!   `CT_MAX_HANDOVER_TIME`. See [`RfcTimers`].
//! * **Transport.** The RFC mandates SCTP (message boundaries, one stream,
//!   unordered). edgemob uses one TCP connection per peer; [`framer`] cuts
//!   messages by their Length field.
//! * **FPT ranges.** RFC 4065 creates the registry with codes 0 and 1 only
//!   and no private range; edgemob claims `0xE000..=0xFFFE` (see [`fpt`]).
//!
//! ## Example
//!
//! ```
//! use std::time::Instant;
//! use edgemob_cxtp::{Config, Context, Endpoint, Event, Fpt, Status};
//!
//! let now = Instant::now();
//! let mn = "10.0.0.7".parse().unwrap();
//! let (mut source, mut target) = (Endpoint::new(Config::default()), Endpoint::new(Config::default()));
//! source.start_transfer(mn, vec![Context::new(Fpt::SERVICE_APP_CONTEXT, vec![1u8; 100_000])], now)?;
//! while let Some(frame) = source.poll_transmit() {
//!     target.handle_input(&frame, now)?;
//! }
//! let Some(Event::ContextsArrived { contexts, .. }) = target.poll_event() else { panic!() };
//! assert_eq!(contexts[0].data.len(), 100_000);
//! target.reply(mn, vec![(Fpt::SERVICE_APP_CONTEXT, Status::SUCCESS)])?;
//! source.handle_input(&target.poll_transmit().unwrap(), now)?;
//! assert!(matches!(source.poll_event(), Some(Event::TransferAcked { all_ok: true, .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Instant`]: std::time::Instant

#![forbid(unsafe_code)]

pub mod auth;
pub mod cdb;
pub mod endpoint;
pub mod error;
pub mod fpt;
pub mod framer;
pub mod header;
pub mod message;
pub mod status;
pub mod transfer;
mod wire;

pub use auth::{AuthAlgorithm, AuthToken, KeyMaterial, ReplayCache, ReplayError};
pub use cdb::Cdb;
pub use endpoint::{Config, Endpoint, Event, RfcTimers, Stats};
pub use error::{DecodeError, EncodeError, EndpointError, FramingLost, TransferError};
pub use fpt::Fpt;
pub use framer::Framer;
pub use header::{Header, MessageType};
pub use message::{CtReq, Ctaa, Ctar, Ctc, Ctd, Ctdr, Message, Pctd};
pub use status::Status;
pub use transfer::Context;

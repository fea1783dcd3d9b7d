//! What an [`crate::Endpoint`] reports, and its counters.

use std::net::IpAddr;

use crate::auth::KeyMaterial;
use crate::error::{DecodeError, TransferError};
use crate::fpt::Fpt;
use crate::message::Message;
use crate::status::Status;
use crate::transfer::Context;

/// Something the application must know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Receiver: a whole transfer arrived. Answer with
    /// [`crate::Endpoint::reply`] (or [`crate::Endpoint::cancel`]).
    ContextsArrived {
        /// The MN.
        mn: IpAddr,
        /// Its contexts, in the order sent.
        contexts: Vec<Context>,
        /// The sender set `A` on the last CTD.
        ack_requested: bool,
        /// Key material, when the transfer came as a PCTD.
        key: Option<KeyMaterial>,
    },
    /// Sender: the CTDR for an in-flight transfer.
    TransferAcked {
        /// The MN.
        mn: IpAddr,
        /// Per-FPT status from the CTDR.
        statuses: Vec<(Fpt, Status)>,
        /// `S` set and every status success.
        all_ok: bool,
    },
    /// Either side: the peer sent a CTC for this MN. Emitted even when no
    /// transfer is known (it may have finished here already): an application
    /// that installed the MN's contexts must undo that.
    TransferCancelled {
        /// The MN.
        mn: IpAddr,
    },
    /// Sender: no CTDR within the transfer timeout; the transfer is
    /// forgotten (and a CTC sent if so configured).
    TransferTimedOut {
        /// The MN.
        mn: IpAddr,
    },
    /// Receiver: a multi-CTD transfer stalled past the reassembly timeout
    /// and was dropped.
    ReassemblyTimedOut {
        /// The MN.
        mn: IpAddr,
    },
    /// Receiver: an incoming transfer was malformed, too large, or
    /// superseded, and was dropped.
    TransferFailed {
        /// The MN.
        mn: IpAddr,
        /// Why.
        error: TransferError,
    },
    /// Sender: a CTDR for an MN with no transfer in flight (late, after a
    /// timeout or cancel, or duplicate).
    UnexpectedCtdr {
        /// The MN.
        mn: IpAddr,
        /// Per-FPT status from the CTDR.
        statuses: Vec<(Fpt, Status)>,
        /// `S` set and every status success.
        all_ok: bool,
    },
    /// A CTAR, CTAA or CT-Req: handled by the application.
    MessageReceived(Message),
    /// A frame with a valid header but bad contents was skipped; the stream
    /// is still in sync.
    MalformedMessage {
        /// Why it was rejected.
        error: DecodeError,
    },
}

/// Counters, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames cut from the input stream.
    pub frames_received: u64,
    /// Frames handed out by `poll_transmit`.
    pub frames_sent: u64,
    /// Frames skipped as malformed.
    pub malformed_frames: u64,
    /// Continuation CTDs for no (or another) transfer, dropped silently.
    pub stale_ctds: u64,
    /// CTDRs for no in-flight transfer.
    pub unexpected_ctdrs: u64,
    /// Transfers started by this side.
    pub transfers_started: u64,
    /// Transfers acknowledged to this side.
    pub transfers_acked: u64,
    /// Transfers of this side that timed out.
    pub transfers_timed_out: u64,
    /// Transfers received in full.
    pub transfers_arrived: u64,
    /// Incoming transfers dropped as failed.
    pub incoming_failed: u64,
    /// Incoming transfers dropped as stalled.
    pub incoming_timed_out: u64,
}

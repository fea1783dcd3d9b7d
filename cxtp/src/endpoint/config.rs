//! Endpoint configuration, with the RFC 4067 §4 constants as defaults.

use std::time::Duration;

/// The constants of RFC 4067 §4, with their RFC defaults.
///
/// The RFC is loose with the names: §4 lists `CT_MAX_TRANSFER_TIME`,
/// `CT_REQUEST_RETRY`, `CT_RETRY_MAX` and `CT_REQUEST_RATE`, while the prose
/// also says `CXTP_MAX_TRANSFER_TIME`, `CXTP_REQUEST_RETRY`, `CXTP_RETRY_MAX`
/// and once `CT_MAX_HANDOVER_TIME` (never given a value; edgemob reads it as
/// `CT_MAX_TRANSFER_TIME`). The §4 names are used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RfcTimers {
    /// `CT_MAX_TRANSFER_TIME` (200 ms): how long pAR waits before aborting.
    pub ct_max_transfer_time: Duration,
    /// `CT_REQUEST_RETRY` (2 s): first CTAR retransmission on the MN–AR link.
    pub ct_request_retry: Duration,
    /// `CT_RETRY_MAX` (15 s): give up retransmitting CTAR.
    pub ct_retry_max: Duration,
    /// `CT_REQUEST_RATE` (10 per second): CTARs before rate limiting.
    pub ct_request_rate: u32,
    /// §3.2: an MN must not reuse a CTAR sequence number within 7 s; the
    /// replay window of [`crate::ReplayCache`].
    pub sequence_reuse_window: Duration,
}

impl Default for RfcTimers {
    fn default() -> Self {
        RfcTimers {
            ct_max_transfer_time: Duration::from_millis(200),
            ct_request_retry: Duration::from_secs(2),
            ct_retry_max: Duration::from_secs(15),
            ct_request_rate: 10,
            sequence_reuse_window: Duration::from_secs(7),
        }
    }
}

/// How an [`crate::Endpoint`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The RFC constants (informational except where used below).
    pub timers: RfcTimers,
    /// Sender: a transfer not acknowledged by a CTDR this long after
    /// `start_transfer` times out. Default: `CT_MAX_TRANSFER_TIME`.
    pub transfer_timeout: Duration,
    /// Receiver: a multi-CTD transfer with no new CTD for this long is
    /// dropped (the sender died mid-transfer). Default: `CT_MAX_TRANSFER_TIME`.
    pub reassembly_timeout: Duration,
    /// Receiver and sender: most delivered context octets per transfer.
    pub max_transfer_bytes: u64,
    /// Receiver: most contexts per transfer (at most 65,535).
    pub max_contexts: u32,
    /// Receiver: most incoming transfers held at once (reassembling or
    /// awaiting the application's reply).
    pub max_incoming_transfers: usize,
    /// Sender: set the `A` flag (ask for a CTDR) on a transfer's last CTD.
    pub request_ack: bool,
    /// Sender: on timeout, send a CTC so the receiver drops the transfer.
    pub cancel_on_timeout: bool,
    /// Receiver: when an incoming transfer fails or stalls, send a CTDR with
    /// `S` = 0 so the sender can roll back at once instead of timing out.
    pub reply_on_failure: bool,
}

impl Default for Config {
    fn default() -> Self {
        let timers = RfcTimers::default();
        Config {
            timers,
            transfer_timeout: timers.ct_max_transfer_time,
            reassembly_timeout: timers.ct_max_transfer_time,
            max_transfer_bytes: 64 << 20,
            max_contexts: u32::from(u16::MAX),
            max_incoming_transfers: 1024,
            request_ack: true,
            cancel_on_timeout: true,
            reply_on_failure: true,
        }
    }
}

impl Config {
    /// RFC defaults with both transfer timers set to `budget` (edgemob runs
    /// with millisecond budgets).
    pub fn with_budget(budget: Duration) -> Self {
        Config {
            transfer_timeout: budget,
            reassembly_timeout: budget,
            ..Config::default()
        }
    }
}

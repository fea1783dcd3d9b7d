//! One end of a CXTP connection to a peer eNBC, as a sans-IO state machine.
//!
//! An [`Endpoint`] owns no socket and no timer. The I/O layer feeds it
//! received octets ([`Endpoint::handle_input`]) and the clock
//! ([`Endpoint::handle_timeout`] when [`Endpoint::poll_timeout`] is due),
//! writes out what [`Endpoint::poll_transmit`] returns, and acts on
//! [`Endpoint::poll_event`]. Both roles share one endpoint: any number of
//! transfers, for different MNs, may be in flight in each direction.
//!
//! Sender: [`Endpoint::start_transfer`] frames the contexts (see
//! [`crate::transfer`]) and starts the transfer timer; CTD frames of
//! concurrent transfers go out round-robin, one CTD at a time, so a small
//! transfer is not stuck behind a 16 MiB one. A CTDR ends the transfer with
//! [`Event::TransferAcked`]; the timer ends it with
//! [`Event::TransferTimedOut`] (and a CTC to the peer).
//!
//! All CTDs of a transfer are framed when it starts, so their Elapsed Time
//! is 0 (the RFC counts from the first CTD; edgemob never retransmits over
//! TCP).
//!
//! Receiver: CTDs are reassembled per MN; a complete transfer yields
//! [`Event::ContextsArrived`], answered by [`Endpoint::reply`] (CTDR, `S` set
//! when every status is success). A multi-CTD transfer that stalls past the
//! reassembly timeout is dropped with [`Event::ReassemblyTimedOut`].
//!
//! Control messages (CTDR, CTC, and whatever [`Endpoint::send`] queues) go
//! out before CTD data.
//!
//! A race to know about: if the sender times out (rolls back and sends CTC)
//! while the receiver has installed the contexts and replied, the sender
//! sees [`Event::UnexpectedCtdr`] and the receiver
//! [`Event::TransferCancelled`]; the receiver must then undo.

mod config;
mod event;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

pub use config::{Config, RfcTimers};
pub use event::{Event, Stats};

use crate::auth::KeyMaterial;
use crate::error::{EndpointError, FramingLost, TransferError};
use crate::fpt::Fpt;
use crate::framer::Framer;
use crate::message::{Ctc, Ctdr, Message};
use crate::status::Status;
use crate::transfer::{
    Context, CtdRole, EncodeOptions, Limits, Progress, Reassembly, ctd_role, encode_transfer,
};

#[derive(Debug)]
struct Outgoing {
    deadline: Instant,
    /// Encoded CTD frames not yet handed to `poll_transmit`.
    pending: Bytes,
}

#[derive(Debug)]
enum Incoming {
    Reassembling {
        reassembly: Box<Reassembly>,
        transfer_id: u32,
        deadline: Instant,
    },
    AwaitingReply,
}

/// A CXTP connection endpoint. See the module docs.
#[derive(Debug)]
pub struct Endpoint {
    config: Config,
    framer: Framer,
    broken: Option<FramingLost>,
    control: VecDeque<Bytes>,
    outgoing: HashMap<IpAddr, Outgoing>,
    send_order: VecDeque<IpAddr>,
    incoming: HashMap<IpAddr, Incoming>,
    events: VecDeque<Event>,
    next_transfer_id: u32,
    scratch: BytesMut,
    stats: Stats,
}

impl Endpoint {
    /// A fresh endpoint for one peer connection.
    pub fn new(mut config: Config) -> Self {
        // `Instant + Duration` panics on overflow; no timer needs 34 years.
        const LONGEST: Duration = Duration::from_secs(1 << 30);
        config.transfer_timeout = config.transfer_timeout.min(LONGEST);
        config.reassembly_timeout = config.reassembly_timeout.min(LONGEST);
        Endpoint {
            config,
            framer: Framer::new(),
            broken: None,
            control: VecDeque::new(),
            outgoing: HashMap::new(),
            send_order: VecDeque::new(),
            incoming: HashMap::new(),
            events: VecDeque::new(),
            next_transfer_id: 1,
            scratch: BytesMut::new(),
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether a transfer for `mn` is in flight from this side.
    pub fn is_sending(&self, mn: IpAddr) -> bool {
        self.outgoing.contains_key(&mn)
    }

    /// Whether a transfer for `mn` is being received or awaits a reply.
    pub fn is_receiving(&self, mn: IpAddr) -> bool {
        self.incoming.contains_key(&mn)
    }

    /// Starts sending `contexts` for `mn` as CTD(s).
    pub fn start_transfer(
        &mut self,
        mn: IpAddr,
        contexts: impl AsRef<[Context]>,
        now: Instant,
    ) -> Result<(), EndpointError> {
        self.start(mn, contexts.as_ref(), None, now)
    }

    /// Like [`Endpoint::start_transfer`], but the first CTD is a PCTD
    /// carrying `key` so the receiver can check the MN's CTAR token.
    pub fn start_predictive_transfer(
        &mut self,
        mn: IpAddr,
        contexts: impl AsRef<[Context]>,
        key: &KeyMaterial,
        now: Instant,
    ) -> Result<(), EndpointError> {
        self.start(mn, contexts.as_ref(), Some(key), now)
    }

    fn start(
        &mut self,
        mn: IpAddr,
        contexts: &[Context],
        key: Option<&KeyMaterial>,
        now: Instant,
    ) -> Result<(), EndpointError> {
        if self.broken.is_some() {
            return Err(EndpointError::StreamBroken);
        }
        if self.outgoing.contains_key(&mn) {
            return Err(EndpointError::TransferInFlight { mn });
        }
        let opts = EncodeOptions {
            ack_requested: self.config.request_ack,
            elapsed_ms: 0,
            transfer_id: self.next_transfer_id,
            key,
            max_transfer_bytes: self.config.max_transfer_bytes,
        };
        encode_transfer(mn, contexts, &opts, &mut self.scratch)?;
        self.next_transfer_id = self.next_transfer_id.wrapping_add(1);
        let pending = self.scratch.split().freeze();
        self.outgoing.insert(
            mn,
            Outgoing {
                deadline: now + self.config.transfer_timeout,
                pending,
            },
        );
        self.send_order.push_back(mn);
        self.stats.transfers_started += 1;
        Ok(())
    }

    /// Answers an arrived (or arriving) transfer with a CTDR. `S` is set
    /// when every status is success. A transfer still being reassembled is
    /// dropped (an early refusal).
    pub fn reply(&mut self, mn: IpAddr, statuses: Vec<(Fpt, Status)>) -> Result<(), EndpointError> {
        if self.incoming.remove(&mn).is_none() {
            return Err(EndpointError::NoIncomingTransfer { mn });
        }
        let all_received = statuses.iter().all(|(_, s)| s.is_success());
        self.queue_control(&Message::Ctdr(Ctdr {
            all_received,
            mn,
            statuses,
        }))
    }

    /// Cancels the MN's transfer in either direction: forgets it and sends
    /// a CTC so the peer does too.
    pub fn cancel(&mut self, mn: IpAddr) -> Result<(), EndpointError> {
        let was_sending = self.outgoing.remove(&mn).is_some();
        let was_receiving = self.incoming.remove(&mn).is_some();
        if !was_sending && !was_receiving {
            return Err(EndpointError::NoTransfer { mn });
        }
        self.queue_control(&Message::Ctc(Ctc { mn }))
    }

    /// Queues any message (a CT-Req, say) ahead of CTD data.
    pub fn send(&mut self, msg: &Message) -> Result<(), EndpointError> {
        self.queue_control(msg)
    }

    fn queue_control(&mut self, msg: &Message) -> Result<(), EndpointError> {
        if self.broken.is_some() {
            return Err(EndpointError::StreamBroken);
        }
        msg.encode(&mut self.scratch)?;
        self.control.push_back(self.scratch.split().freeze());
        Ok(())
    }

    /// The next octets to write to the connection: one whole message.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if let Some(frame) = self.control.pop_front() {
            self.stats.frames_sent += 1;
            return Some(frame);
        }
        while let Some(mn) = self.send_order.pop_front() {
            let Some(o) = self.outgoing.get_mut(&mn) else {
                continue;
            };
            let Some(len) = o
                .pending
                .get(2..4)
                .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            else {
                continue;
            };
            let frame = o.pending.split_to(len.min(o.pending.len()));
            if !o.pending.is_empty() {
                self.send_order.push_back(mn);
            }
            self.stats.frames_sent += 1;
            return Some(frame);
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let out = self.outgoing.values().map(|o| o.deadline);
        let inc = self.incoming.values().filter_map(|i| match i {
            Incoming::Reassembling { deadline, .. } => Some(*deadline),
            Incoming::AwaitingReply => None,
        });
        out.chain(inc).min()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<IpAddr> = self
            .outgoing
            .iter()
            .filter(|(_, o)| o.deadline <= now)
            .map(|(mn, _)| *mn)
            .collect();
        for mn in expired {
            self.outgoing.remove(&mn);
            self.stats.transfers_timed_out += 1;
            self.events.push_back(Event::TransferTimedOut { mn });
            if self.config.cancel_on_timeout {
                // A CTC is tiny and always encodable.
                let _ = self.queue_control(&Message::Ctc(Ctc { mn }));
            }
        }
        let stalled: Vec<IpAddr> = self
            .incoming
            .iter()
            .filter(
                |(_, i)| matches!(i, Incoming::Reassembling { deadline, .. } if *deadline <= now),
            )
            .map(|(mn, _)| *mn)
            .collect();
        for mn in stalled {
            self.incoming.remove(&mn);
            self.stats.incoming_timed_out += 1;
            self.events.push_back(Event::ReassemblyTimedOut { mn });
            self.reply_failure(mn);
        }
    }

    /// Feeds received octets. `Err` means framing is lost for good: close
    /// the connection (transfers in flight will time out).
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), FramingLost> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        self.framer.push(data);
        self.handle_frames(now)
    }

    /// [`Endpoint::handle_input`] for octets the caller owns: split off the
    /// buffer a socket was read into, they become the messages' and the
    /// contexts' memory without a copy.
    pub fn handle_input_owned(&mut self, data: BytesMut, now: Instant) -> Result<(), FramingLost> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        self.framer.push_owned(data);
        self.handle_frames(now)
    }

    fn handle_frames(&mut self, now: Instant) -> Result<(), FramingLost> {
        loop {
            match self.framer.next_frame() {
                Ok(Some(frame)) => {
                    self.stats.frames_received += 1;
                    self.handle_frame(&frame, now);
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.broken = Some(e.clone());
                    return Err(e);
                }
            }
        }
    }

    fn handle_frame(&mut self, frame: &Bytes, now: Instant) {
        let msg = match Message::decode_bytes(frame) {
            Ok(msg) => msg,
            Err(error) => {
                self.stats.malformed_frames += 1;
                self.events.push_back(Event::MalformedMessage { error });
                return;
            }
        };
        match msg {
            Message::Ctd(c) => self.handle_ctd(c.mn, c.cdbs, c.ack_requested, None, now),
            Message::Pctd(p) => self.handle_ctd(p.mn, p.cdbs, p.ack_requested, Some(p.key), now),
            Message::Ctdr(r) => {
                let all_ok = r.all_received && r.statuses.iter().all(|(_, s)| s.is_success());
                if self.outgoing.remove(&r.mn).is_some() {
                    self.stats.transfers_acked += 1;
                    self.events.push_back(Event::TransferAcked {
                        mn: r.mn,
                        statuses: r.statuses,
                        all_ok,
                    });
                } else {
                    self.stats.unexpected_ctdrs += 1;
                    self.events.push_back(Event::UnexpectedCtdr {
                        mn: r.mn,
                        statuses: r.statuses,
                        all_ok,
                    });
                }
            }
            Message::Ctc(c) => {
                self.outgoing.remove(&c.mn);
                self.incoming.remove(&c.mn);
                self.events.push_back(Event::TransferCancelled { mn: c.mn });
            }
            other @ (Message::Ctar(_) | Message::Ctaa(_) | Message::CtReq(_)) => {
                self.events.push_back(Event::MessageReceived(other));
            }
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_transfer_bytes: self.config.max_transfer_bytes,
            max_contexts: self.config.max_contexts.min(u32::from(u16::MAX)),
        }
    }

    fn handle_ctd(
        &mut self,
        mn: IpAddr,
        cdbs: Vec<crate::cdb::Cdb>,
        ack: bool,
        key: Option<KeyMaterial>,
        now: Instant,
    ) {
        let role = match ctd_role(&cdbs) {
            Ok(role) => role,
            Err(error) => return self.fail_incoming(mn, error),
        };
        let deadline = now + self.config.reassembly_timeout;
        let (mut reassembly, transfer_id, body) = match role {
            CtdRole::Continuation(c) => {
                let Some(Incoming::Reassembling {
                    reassembly,
                    transfer_id,
                    ..
                }) = self.incoming.get(&mn)
                else {
                    self.stats.stale_ctds += 1;
                    return;
                };
                if *transfer_id != c.transfer_id {
                    self.stats.stale_ctds += 1;
                    return;
                }
                if reassembly.ctds_received() != c.ctd_index {
                    let error = TransferError::BadManifest("continuation out of sequence");
                    return self.fail_incoming(mn, error);
                }
                let Some(Incoming::Reassembling { reassembly, .. }) = self.incoming.remove(&mn)
                else {
                    return;
                };
                (reassembly, c.transfer_id, cdbs.get(1..).unwrap_or_default())
            }
            CtdRole::Plain | CtdRole::First(_) => {
                if let Some(Incoming::Reassembling { .. }) = self.incoming.remove(&mn) {
                    self.stats.incoming_failed += 1;
                    self.events.push_back(Event::TransferFailed {
                        mn,
                        error: TransferError::Superseded,
                    });
                }
                if self.incoming.len() >= self.config.max_incoming_transfers {
                    let error = TransferError::TooManyIncoming {
                        limit: self.config.max_incoming_transfers,
                    };
                    return self.fail_incoming(mn, error);
                }
                let (manifest, body) = match role {
                    CtdRole::First(m) => (Some(m), cdbs.get(1..).unwrap_or_default()),
                    _ => (None, &cdbs[..]),
                };
                match Reassembly::new(mn, manifest, self.limits()) {
                    Ok(r) => (Box::new(r), manifest.map_or(0, |m| m.transfer_id), body),
                    Err(error) => return self.fail_incoming(mn, error),
                }
            }
        };
        match reassembly.absorb(body, ack, key) {
            Ok(Progress::NeedMore) => {
                self.incoming.insert(
                    mn,
                    Incoming::Reassembling {
                        reassembly,
                        transfer_id,
                        deadline,
                    },
                );
            }
            Ok(Progress::Complete) => match (*reassembly).finish() {
                Ok(arrived) => {
                    self.incoming.insert(mn, Incoming::AwaitingReply);
                    self.stats.transfers_arrived += 1;
                    self.events.push_back(Event::ContextsArrived {
                        mn,
                        contexts: arrived.contexts,
                        ack_requested: arrived.ack_requested,
                        key: arrived.key,
                    });
                }
                Err(error) => self.fail_incoming(mn, error),
            },
            Err(error) => self.fail_incoming(mn, error),
        }
    }

    fn fail_incoming(&mut self, mn: IpAddr, error: TransferError) {
        self.incoming.remove(&mn);
        self.stats.incoming_failed += 1;
        self.events.push_back(Event::TransferFailed { mn, error });
        self.reply_failure(mn);
    }

    fn reply_failure(&mut self, mn: IpAddr) {
        if self.config.reply_on_failure {
            // A status-less CTDR is tiny and always encodable.
            let _ = self.queue_control(&Message::Ctdr(Ctdr {
                all_received: false,
                mn,
                statuses: Vec::new(),
            }));
        }
    }
}

#[cfg(test)]
mod tests;

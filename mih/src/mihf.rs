//! The MIH Function as a sans-IO state machine.
//!
//! Feed it received frames ([`Mihf::handle_datagram`]) and the clock
//! ([`Mihf::handle_timeout`]); take frames to send ([`Mihf::poll_transmit`])
//! and events for the local MIH-User ([`Mihf::poll_event`]). It never opens
//! a socket or reads a clock itself, so tests drive it deterministically.
//!
//! Transactions follow IEEE 802.21 §8.2 as ODTONE runs them: a peer's
//! request reaches the local MIH-User as an *indication*; the user's
//! *response* goes back to the peer; at the requesting side that response
//! reaches the user as a *confirm*. A request sent with ACK-Req is
//! retransmitted every `retransmit_interval` until acknowledged (a response
//! counts as an acknowledgement). ODTONE waits 5 s between retries; a
//! handover budget is milliseconds, so every timer here is configurable and
//! defaults to milliseconds.
//!
//! A retransmitted request that was already answered is answered again from
//! a cache, without bothering the MIH-User; one still being handled is only
//! acknowledged again.

use crate::error::{DecodeError, EncodeError};
use crate::frame::{Body, Frame};
use crate::header::{Flags, Mid, Opcode, Tid};
use crate::message::Message;
use crate::types::MihfId;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Timers and limits of an MIHF.
#[derive(Debug, Clone)]
pub struct MihfConfig {
    /// This MIHF's identifier.
    pub id: MihfId,
    /// Send requests with ACK-Req set and retransmit them until acknowledged.
    pub request_ack: bool,
    /// Send responses with ACK-Req set and retransmit them until
    /// acknowledged, so a lost response costs a retransmission rather than
    /// the requester's timeout. Not needed, and not done, when the response
    /// carries the request's ACK (piggybacked): a requester that asked for
    /// an ACK retransmits its request until it gets one, and the duplicate
    /// is answered from the cache.
    pub response_ack: bool,
    /// Time between retransmissions of an unacknowledged request.
    pub retransmit_interval: Duration,
    /// Retransmissions before giving up on an unacknowledged request.
    pub max_retransmissions: u32,
    /// Time from sending a request until it times out without a response.
    pub response_timeout: Duration,
    /// How long an answered request is remembered to answer duplicates.
    pub answered_ttl: Duration,
    /// Most requests awaiting a response from one peer (at most 4,095: the
    /// 12-bit TID space).
    pub max_pending_per_peer: usize,
    /// Most remembered transactions (answered or being answered).
    pub max_remembered: usize,
}

impl MihfConfig {
    pub fn new(id: MihfId) -> Self {
        MihfConfig {
            id,
            request_ack: true,
            response_ack: true,
            retransmit_interval: Duration::from_millis(10),
            max_retransmissions: 3,
            response_timeout: Duration::from_millis(200),
            answered_ttl: Duration::from_secs(2),
            max_pending_per_peer: 4095,
            max_remembered: 16_384,
        }
    }
}

/// A frame to send to a peer MIHF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub dst: MihfId,
    pub payload: Vec<u8>,
}

/// What the MIHF tells its MIH-User.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer's request, as the indication primitive (answer it with
    /// [`Mihf::respond`]), or an unsolicited indication from a peer.
    Indication {
        peer: MihfId,
        tid: Tid,
        message: Message,
    },
    /// The response to one of our requests, as the confirm primitive.
    Confirm {
        peer: MihfId,
        tid: Tid,
        message: Message,
    },
    /// One of our requests got no response in time.
    Timeout {
        peer: MihfId,
        tid: Tid,
        mid: Mid,
        /// Whether the peer at least acknowledged the request.
        acknowledged: bool,
    },
}

/// Counters an operator wants to see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MihfStats {
    pub frames_in: u64,
    pub frames_out: u64,
    /// Frames that failed to decode.
    pub malformed: u64,
    /// Frames addressed to another MIHF.
    pub misaddressed: u64,
    /// Retransmitted requests from peers that were answered from the cache
    /// or re-acknowledged.
    pub duplicates: u64,
    /// Our own retransmissions.
    pub retransmissions: u64,
    pub timeouts: u64,
    /// Responses, ACKs or confirms that matched no transaction.
    pub unexpected: u64,
    /// Requests refused because too many were outstanding.
    pub overloaded: u64,
}

/// Why a request could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("{0} is not a request primitive")]
    NotARequest(&'static str),
    #[error("{0} is not an indication primitive")]
    NotAnIndication(&'static str),
    #[error("{pending} requests to {peer} already await a response")]
    TooManyPending { peer: MihfId, pending: usize },
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Why a response could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespondError {
    #[error("no request from {peer} with TID {tid} awaits a response")]
    NoSuchTransaction { peer: MihfId, tid: Tid },
    #[error("{got} does not answer a request with {request}")]
    WrongResponse { request: Mid, got: &'static str },
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

type Key = (MihfId, Tid);

/// Which transaction side a timer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    /// Our request awaiting a response.
    Request,
    /// Our response awaiting an ACK.
    Response,
}

#[derive(Debug)]
struct Pending {
    mid: Mid,
    frame: Vec<u8>,
    acked: bool,
    retransmissions: u32,
    /// Next retransmission (or, after the last one, the end of the wait for
    /// an ACK); `None` once acknowledged or when no ACK was requested.
    retransmit_at: Option<Instant>,
    deadline: Instant,
}

impl Pending {
    fn wake(&self) -> Instant {
        self.retransmit_at
            .map_or(self.deadline, |r| r.min(self.deadline))
    }
}

/// A peer's request we have seen: being answered, or answered.
#[derive(Debug)]
struct Remembered {
    mid: Mid,
    /// The request's payload, to tell a retransmission from a new request
    /// that reuses the TID.
    request: Vec<u8>,
    /// The encoded response once the user has answered.
    response: Option<Vec<u8>>,
    /// An ACK is owed and not yet sent (it may still ride on the response).
    ack_owed: bool,
    /// Next retransmission of a response sent with ACK-Req.
    retransmit_at: Option<Instant>,
    retransmissions: u32,
    expires: Instant,
}

/// The MIH Function.
#[derive(Debug)]
pub struct Mihf {
    config: MihfConfig,
    next_tid: HashMap<MihfId, Tid>,
    pending: HashMap<Key, Pending>,
    pending_per_peer: HashMap<MihfId, usize>,
    timers: BinaryHeap<Reverse<(Instant, Side, MihfId, Tid)>>,
    remembered: HashMap<Key, Remembered>,
    expiry: VecDeque<(Instant, Key)>,
    acks_owed: VecDeque<Key>,
    outbound: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: MihfStats,
}

impl Mihf {
    pub fn new(config: MihfConfig) -> Self {
        Mihf {
            config,
            next_tid: HashMap::new(),
            pending: HashMap::new(),
            pending_per_peer: HashMap::new(),
            timers: BinaryHeap::new(),
            remembered: HashMap::new(),
            expiry: VecDeque::new(),
            acks_owed: VecDeque::new(),
            outbound: VecDeque::new(),
            events: VecDeque::new(),
            stats: MihfStats::default(),
        }
    }

    pub fn id(&self) -> &MihfId {
        &self.config.id
    }

    pub fn config(&self) -> &MihfConfig {
        &self.config
    }

    pub fn stats(&self) -> MihfStats {
        self.stats
    }

    /// Requests still awaiting a response.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Sends a request to `dst`; its confirm (or a timeout) arrives later as
    /// an event carrying the returned TID.
    pub fn send_request(
        &mut self,
        dst: MihfId,
        message: Message,
        now: Instant,
    ) -> Result<Tid, SendError> {
        let mid = message.mid();
        if mid.opcode() != Opcode::Request {
            return Err(SendError::NotARequest(message.name()));
        }
        let in_flight = self.pending_per_peer.get(&dst).copied().unwrap_or(0);
        if in_flight >= self.config.max_pending_per_peer.min(Tid::MAX as usize) {
            self.stats.overloaded += 1;
            return Err(SendError::TooManyPending {
                peer: dst,
                pending: in_flight,
            });
        }
        let tid = self.allocate_tid(&dst);
        let mut frame = Frame::message(self.config.id.clone(), dst.clone(), tid, message);
        frame.flags.ack_req = self.config.request_ack;
        let bytes = frame.to_vec()?;
        let retransmit_at = self
            .config
            .request_ack
            .then(|| now + self.config.retransmit_interval);
        let pending = Pending {
            mid,
            frame: bytes.clone(),
            acked: false,
            retransmissions: 0,
            retransmit_at,
            deadline: now + self.config.response_timeout,
        };
        self.timers
            .push(Reverse((pending.wake(), Side::Request, dst.clone(), tid)));
        self.pending.insert((dst.clone(), tid), pending);
        *self.pending_per_peer.entry(dst.clone()).or_default() += 1;
        self.queue(dst, bytes);
        Ok(tid)
    }

    /// Sends an unsolicited indication (no transaction, no response).
    pub fn send_indication(&mut self, dst: MihfId, message: Message) -> Result<(), SendError> {
        if message.mid().opcode() != Opcode::Indication {
            return Err(SendError::NotAnIndication(message.name()));
        }
        let tid = self.allocate_tid(&dst);
        let frame = Frame::message(self.config.id.clone(), dst.clone(), tid, message);
        let bytes = frame.to_vec()?;
        self.queue(dst, bytes);
        Ok(())
    }

    /// Answers the indication `(peer, tid)` with a response primitive.
    pub fn respond(
        &mut self,
        peer: &MihfId,
        tid: Tid,
        message: Message,
        now: Instant,
    ) -> Result<(), RespondError> {
        let key = (peer.clone(), tid);
        let Some(r) = self
            .remembered
            .get_mut(&key)
            .filter(|r| r.response.is_none())
        else {
            return Err(RespondError::NoSuchTransaction {
                peer: peer.clone(),
                tid,
            });
        };
        if message.mid() != r.mid.with_opcode(Opcode::Response) {
            return Err(RespondError::WrongResponse {
                request: r.mid,
                got: message.name(),
            });
        }
        let mut frame = Frame::message(self.config.id.clone(), peer.clone(), tid, message);
        // Piggyback the owed ACK on the response (IEEE 802.21 §8.2.4).
        let piggybacked = r.ack_owed;
        let ack_req = self.config.response_ack && !piggybacked;
        frame.flags = Flags {
            ack_rsp: piggybacked,
            ack_req,
            ..Flags::default()
        };
        let bytes = frame.to_vec()?;
        r.ack_owed = false;
        r.response = Some(bytes.clone());
        r.expires = now + self.config.answered_ttl;
        if ack_req {
            let at = now + self.config.retransmit_interval;
            r.retransmit_at = Some(at);
            self.timers
                .push(Reverse((at, Side::Response, peer.clone(), tid)));
        }
        self.expiry.push_back((r.expires, key));
        self.queue(peer.clone(), bytes);
        Ok(())
    }

    /// Processes one received frame.
    pub fn handle_datagram(&mut self, buf: &[u8], now: Instant) -> Result<(), DecodeError> {
        self.expire(now);
        self.stats.frames_in += 1;
        let frame = match Frame::decode(buf) {
            Ok(f) => f,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(e);
            }
        };
        if frame.dst != self.config.id {
            self.stats.misaddressed += 1;
            return Ok(());
        }
        let peer = frame.src;
        let tid = frame.tid;
        match frame.body {
            Body::Ack(mid) => self.on_ack(peer, tid, mid),
            Body::Message(message) => {
                let mid = message.mid();
                match mid.opcode() {
                    Opcode::Request => {
                        let payload = &buf[crate::header::HEADER_LEN..];
                        self.on_request(peer, tid, frame.flags, message, payload, now)
                    }
                    Opcode::Response => {
                        if frame.flags.ack_req {
                            self.send_ack(peer.clone(), mid, tid);
                        }
                        self.on_response(peer, tid, message)
                    }
                    Opcode::Indication => {
                        if frame.flags.ack_req {
                            self.send_ack(peer.clone(), mid, tid);
                        }
                        self.events
                            .push_back(Event::Indication { peer, tid, message });
                    }
                    // Confirms belong on the local SAP, never on the wire
                    // between MIHFs.
                    Opcode::Confirm => self.stats.unexpected += 1,
                }
            }
        }
        Ok(())
    }

    fn on_ack(&mut self, peer: MihfId, tid: Tid, mid: Mid) {
        if mid.opcode() == Opcode::Response {
            match self.remembered.get_mut(&(peer, tid)) {
                Some(r) if r.response.is_some() && r.mid.with_opcode(Opcode::Response) == mid => {
                    r.retransmit_at = None;
                }
                _ => self.stats.unexpected += 1,
            }
            return;
        }
        match self.pending.get_mut(&(peer.clone(), tid)) {
            Some(p) if p.mid == mid => {
                if !p.acked {
                    p.acked = true;
                    p.retransmit_at = None;
                    // The wake time moved to the response deadline.
                    self.timers
                        .push(Reverse((p.deadline, Side::Request, peer, tid)));
                }
            }
            _ => self.stats.unexpected += 1,
        }
    }

    fn on_request(
        &mut self,
        peer: MihfId,
        tid: Tid,
        flags: Flags,
        message: Message,
        payload: &[u8],
        now: Instant,
    ) {
        let key = (peer, tid);
        if let Some(r) = self.remembered.get_mut(&key) {
            if r.mid == message.mid() && r.request == payload {
                self.stats.duplicates += 1;
                match &r.response {
                    // Answered: the peer missed our response; send it again,
                    // acknowledging the retransmission on it.
                    Some(resp) => {
                        let mut resp = resp.clone();
                        if flags.ack_req {
                            resp[0] |= 0x04;
                        }
                        self.queue(key.0, resp);
                    }
                    // Still with the user: the peer missed our ACK.
                    None if flags.ack_req && !r.ack_owed => {
                        self.send_ack(key.0, message.mid(), tid);
                    }
                    None => {}
                }
                return;
            }
            // Same TID, different request: the peer's TIDs wrapped around.
            self.remembered.remove(&key);
        }
        if self.remembered.len() >= self.config.max_remembered {
            self.stats.overloaded += 1;
            return;
        }
        let expires = now + self.config.answered_ttl;
        self.remembered.insert(
            key.clone(),
            Remembered {
                mid: message.mid(),
                request: payload.to_vec(),
                response: None,
                ack_owed: flags.ack_req,
                retransmit_at: None,
                retransmissions: 0,
                expires,
            },
        );
        self.expiry.push_back((expires, key.clone()));
        if flags.ack_req {
            self.acks_owed.push_back(key.clone());
        }
        let message = message
            .into_indication()
            .expect("a request has an indication");
        self.events.push_back(Event::Indication {
            peer: key.0,
            tid,
            message,
        });
    }

    fn on_response(&mut self, peer: MihfId, tid: Tid, message: Message) {
        let key = (peer, tid);
        let matches = self
            .pending
            .get(&key)
            .is_some_and(|p| p.mid.with_opcode(Opcode::Response) == message.mid());
        if !matches {
            self.stats.unexpected += 1;
            return;
        }
        self.remove_pending(&key);
        let message = message.into_confirm().expect("a response has a confirm");
        self.events.push_back(Event::Confirm {
            peer: key.0,
            tid,
            message,
        });
    }

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        // ACKs not piggybacked on a response by now go out on their own.
        while let Some(key) = self.acks_owed.pop_front() {
            if let Some(r) = self.remembered.get_mut(&key).filter(|r| r.ack_owed) {
                r.ack_owed = false;
                let frame = Frame::ack(self.config.id.clone(), key.0.clone(), r.mid, key.1);
                let bytes = frame.to_vec().expect("an ACK always fits");
                self.stats.frames_out += 1;
                return Some(Transmit {
                    dst: key.0,
                    payload: bytes,
                });
            }
        }
        let t = self.outbound.pop_front()?;
        self.stats.frames_out += 1;
        Some(t)
    }

    /// The next event for the MIH-User, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Mihf::handle_timeout`] should next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, side, peer, tid))) = self.timers.peek() {
            if self.timer_is_live(*at, *side, &(peer.clone(), *tid)) {
                return Some(*at);
            }
            self.timers.pop();
        }
        None
    }

    /// Runs retransmissions and timeouts that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
        while let Some(Reverse((at, _, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Reverse((at, side, peer, tid)) = self.timers.pop().expect("peeked");
            let key = (peer, tid);
            if side == Side::Response {
                self.retransmit_response(at, key, now);
                continue;
            }
            let Some(p) = self.pending.get_mut(&key) else {
                continue;
            };
            if p.wake() != at {
                continue; // superseded
            }
            if now >= p.deadline {
                let (mid, acknowledged) = (p.mid, p.acked);
                self.remove_pending(&key);
                self.stats.timeouts += 1;
                self.events.push_back(Event::Timeout {
                    peer: key.0,
                    tid,
                    mid,
                    acknowledged,
                });
                continue;
            }
            if p.retransmissions < self.config.max_retransmissions {
                p.retransmissions += 1;
                p.retransmit_at = Some(now + self.config.retransmit_interval);
                let frame = p.frame.clone();
                let wake = p.wake();
                self.stats.retransmissions += 1;
                self.timers
                    .push(Reverse((wake, Side::Request, key.0.clone(), tid)));
                self.queue(key.0, frame);
            } else {
                // Retransmissions exhausted and still no ACK.
                let mid = p.mid;
                self.remove_pending(&key);
                self.stats.timeouts += 1;
                self.events.push_back(Event::Timeout {
                    peer: key.0,
                    tid,
                    mid,
                    acknowledged: false,
                });
            }
        }
    }

    fn timer_is_live(&self, at: Instant, side: Side, key: &Key) -> bool {
        match side {
            Side::Request => self.pending.get(key).is_some_and(|p| p.wake() == at),
            Side::Response => self
                .remembered
                .get(key)
                .is_some_and(|r| r.retransmit_at == Some(at)),
        }
    }

    /// Resends an unacknowledged response, or stops trying after the
    /// configured number of retransmissions.
    fn retransmit_response(&mut self, at: Instant, key: Key, now: Instant) {
        let interval = self.config.retransmit_interval;
        let max = self.config.max_retransmissions;
        let Some(r) = self.remembered.get_mut(&key) else {
            return;
        };
        if r.retransmit_at != Some(at) {
            return;
        }
        let Some(resp) = r.response.clone() else {
            return;
        };
        if r.retransmissions >= max {
            r.retransmit_at = None;
            return;
        }
        r.retransmissions += 1;
        let next = now + interval;
        r.retransmit_at = Some(next);
        self.stats.retransmissions += 1;
        self.timers
            .push(Reverse((next, Side::Response, key.0.clone(), key.1)));
        self.queue(key.0, resp);
    }

    fn allocate_tid(&mut self, dst: &MihfId) -> Tid {
        let next = self.next_tid.entry(dst.clone()).or_insert(Tid::new(1));
        // The pending limit (< 4,096 per peer) guarantees a free TID.
        loop {
            let tid = *next;
            *next = tid.next();
            if !self.pending.contains_key(&(dst.clone(), tid)) {
                return tid;
            }
        }
    }

    fn remove_pending(&mut self, key: &Key) {
        if self.pending.remove(key).is_some()
            && let Some(n) = self.pending_per_peer.get_mut(&key.0)
        {
            *n -= 1;
            if *n == 0 {
                self.pending_per_peer.remove(&key.0);
            }
        }
    }

    fn send_ack(&mut self, dst: MihfId, mid: Mid, tid: Tid) {
        let frame = Frame::ack(self.config.id.clone(), dst.clone(), mid, tid);
        let bytes = frame.to_vec().expect("an ACK always fits");
        self.queue(dst, bytes);
    }

    fn queue(&mut self, dst: MihfId, payload: Vec<u8>) {
        self.outbound.push_back(Transmit { dst, payload });
    }

    /// Forgets remembered transactions whose time is up.
    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.expiry.front() {
            if *at > now {
                break;
            }
            let (at, key) = self.expiry.pop_front().expect("front exists");
            if self.remembered.get(&key).is_some_and(|r| r.expires == at) {
                self.remembered.remove(&key);
            }
        }
    }
}

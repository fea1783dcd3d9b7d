//! MIH between eNBCs: the sans-IO [`Mihf`] on a UDP socket (and TCP, for
//! peers configured so), port 4551.
//!
//! Callers send requests and get the confirm (or a timeout) back as a
//! future; peers' requests reach the node's handler as indications. Frames
//! from addresses that are not configured peers, or whose Source MIHF ID is
//! not the peer at that address, are dropped and counted as
//! unauthenticated; frames from a peer for another MIHF as misaddressed;
//! undecodable frames as malformed. None ever reaches the state machine.

use crate::config::{Config, MihTransport};
use crate::metrics::Metrics;
use edgemob_mih::{
    Event, Frame, Message, Mihf, MihfConfig, MihfId, SendError, Tid, Transmit, frame_len,
};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Notify, mpsc, oneshot};

/// The outcome of one of our requests.
#[derive(Debug)]
pub enum MihOutcome {
    /// The peer's response, as the confirm primitive (boxed: messages are
    /// large and a timeout is not).
    Confirm(Box<Message>),
    /// No response in time.
    Timeout { acknowledged: bool },
}

/// A peer's request, as the indication primitive, for the node to answer.
#[derive(Debug)]
pub struct Indication {
    pub peer: MihfId,
    pub tid: Tid,
    pub message: Message,
}

type Handler = Box<dyn Fn(Indication) + Send + Sync>;

#[derive(Debug)]
struct PeerMih {
    addr: SocketAddr,
    transport: MihTransport,
    tcp_tx: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

struct State {
    mihf: Mihf,
    waiters: HashMap<(MihfId, Tid), oneshot::Sender<MihOutcome>>,
}

pub struct MihLink {
    state: Mutex<State>,
    udp: UdpSocket,
    peers: HashMap<MihfId, PeerMih>,
    /// Peer MIHF ids by IP address, for authentication.
    by_ip: HashMap<IpAddr, Vec<MihfId>>,
    /// This agent's MIHF id: frames for another are dropped and counted.
    id: MihfId,
    wake: Notify,
    metrics: Arc<Metrics>,
    handler: OnceLock<Handler>,
}

impl std::fmt::Debug for MihLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MihLink")
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl MihLink {
    /// Binds the UDP socket (the TCP listener is bound by [`MihLink::run`]).
    pub async fn bind(cfg: &Config, metrics: Arc<Metrics>) -> std::io::Result<Arc<MihLink>> {
        let udp = UdpSocket::bind(cfg.listen.mih).await?;
        let t = &cfg.timers;
        let mut mc = MihfConfig::new(mihf_id(&cfg.mihf_id));
        mc.retransmit_interval = Duration::from_millis(t.mih_retransmit_ms);
        mc.max_retransmissions = t.mih_max_retransmissions;
        mc.response_timeout = Duration::from_millis(t.mih_response_ms);
        let mut peers = HashMap::new();
        let mut by_ip: HashMap<IpAddr, Vec<MihfId>> = HashMap::new();
        for p in &cfg.peers {
            let id = mihf_id(&p.mihf_id);
            let tcp_tx = (p.mih_transport == MihTransport::Tcp).then(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(tcp_writer(p.mih, rx));
                tx
            });
            by_ip.entry(p.mih.ip()).or_default().push(id.clone());
            peers.insert(
                id,
                PeerMih {
                    addr: p.mih,
                    transport: p.mih_transport,
                    tcp_tx,
                },
            );
        }
        Ok(Arc::new(MihLink {
            state: Mutex::new(State {
                mihf: Mihf::new(mc),
                waiters: HashMap::new(),
            }),
            udp,
            peers,
            by_ip,
            id: mihf_id(&cfg.mihf_id),
            wake: Notify::new(),
            metrics,
            handler: OnceLock::new(),
        }))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Where peers' requests go. Set once, before [`MihLink::run`].
    pub fn set_handler(&self, h: impl Fn(Indication) + Send + Sync + 'static) {
        let _ = self.handler.set(Box::new(h));
    }

    /// Sends a request and waits for its confirm or timeout.
    pub async fn request(&self, dst: &MihfId, msg: Message) -> Result<MihOutcome, SendError> {
        let (tx, rx) = oneshot::channel();
        let out = {
            let mut st = self.state.lock().expect("not poisoned");
            let tid = st.mihf.send_request(dst.clone(), msg, Instant::now())?;
            st.waiters.insert((dst.clone(), tid), tx);
            drain(&mut st.mihf)
        };
        self.send_all(out);
        self.wake.notify_one();
        Ok(rx.await.unwrap_or(MihOutcome::Timeout {
            acknowledged: false,
        }))
    }

    /// Answers a peer's request.
    pub fn respond(
        &self,
        peer: &MihfId,
        tid: Tid,
        msg: Message,
    ) -> Result<(), edgemob_mih::RespondError> {
        let out = {
            let mut st = self.state.lock().expect("not poisoned");
            st.mihf.respond(peer, tid, msg, Instant::now())?;
            drain(&mut st.mihf)
        };
        self.send_all(out);
        self.wake.notify_one();
        Ok(())
    }

    pub fn stats(&self) -> edgemob_mih::MihfStats {
        self.state.lock().expect("not poisoned").mihf.stats()
    }

    fn send_all(&self, out: Vec<Transmit>) {
        for t in out {
            let Some(peer) = self.peers.get(&t.dst) else {
                continue;
            };
            match (&peer.transport, &peer.tcp_tx) {
                (MihTransport::Tcp, Some(tx)) => {
                    let _ = tx.send(t.payload);
                }
                _ => {
                    tracing::trace!(octets = t.payload.len(), "MIH frame sent");
                    if let Err(e) = self.udp.try_send_to(&t.payload, peer.addr) {
                        // A full socket buffer: the MIHF's retransmission
                        // timer recovers, as from any lost datagram.
                        tracing::debug!(error = %e, peer = %t.dst, "MIH send failed");
                    }
                }
            }
        }
    }

    /// Checks a frame's origin; returns it decoded if acceptable.
    fn authenticate(&self, buf: &[u8], from: IpAddr) -> Option<()> {
        let frame = match Frame::decode(buf) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(%from, error = %e, "malformed MIH frame dropped");
                self.metrics.dropped("mih", "malformed");
                return None;
            }
        };
        let known = self
            .by_ip
            .get(&from)
            .is_some_and(|ids| ids.contains(&frame.src));
        if !known {
            tracing::debug!(%from, src = %frame.src, "MIH frame from an unknown peer dropped");
            self.metrics.dropped("mih", "unauthenticated");
            return None;
        }
        if frame.dst != self.id {
            tracing::debug!(%from, dst = %frame.dst, "MIH frame for another MIHF dropped");
            self.metrics.dropped("mih", "misaddressed");
            return None;
        }
        Some(())
    }

    fn on_frame(&self, buf: &[u8], from: IpAddr) {
        tracing::trace!(%from, octets = buf.len(), "MIH frame");
        if self.authenticate(buf, from).is_none() {
            return;
        }
        let events = {
            let mut st = self.state.lock().expect("not poisoned");
            // Decoded once already, so this cannot fail on format; it may
            // still be misaddressed, which the MIHF counts.
            let _ = st.mihf.handle_datagram(buf, Instant::now());
            self.collect_events(&mut st)
        };
        // Indications are answered right here (admission takes
        // microseconds), so the response carries the request's ACK: one
        // datagram each way instead of two.
        self.dispatch(events);
        let out = drain(&mut self.state.lock().expect("not poisoned").mihf);
        self.send_all(out);
    }

    fn collect_events(&self, st: &mut State) -> Vec<Indication> {
        let mut inds = Vec::new();
        while let Some(e) = st.mihf.poll_event() {
            match e {
                Event::Confirm { peer, tid, message } => {
                    if let Some(w) = st.waiters.remove(&(peer, tid)) {
                        let _ = w.send(MihOutcome::Confirm(Box::new(message)));
                    }
                }
                Event::Timeout {
                    peer,
                    tid,
                    acknowledged,
                    ..
                } => {
                    if let Some(w) = st.waiters.remove(&(peer, tid)) {
                        let _ = w.send(MihOutcome::Timeout { acknowledged });
                    }
                }
                Event::Indication { peer, tid, message } => {
                    inds.push(Indication { peer, tid, message })
                }
            }
        }
        inds
    }

    fn dispatch(&self, inds: Vec<Indication>) {
        if let Some(h) = self.handler.get() {
            for i in inds {
                h(i);
            }
        }
    }

    /// Receives frames (UDP and TCP) and runs timers, forever.
    pub async fn run(self: Arc<Self>, tcp: TcpListener) {
        tokio::spawn(Arc::clone(&self).accept_tcp(tcp));
        let mut buf = vec![0u8; 65_536];
        loop {
            let next = self.state.lock().expect("not poisoned").mihf.poll_timeout();
            let sleep = crate::timer(next);
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.on_frame(&buf[..n], from.ip()),
                    Err(e) => tracing::debug!(error = %e, "MIH receive error"),
                },
                () = sleep => {
                    let (out, events) = {
                        let mut st = self.state.lock().expect("not poisoned");
                        st.mihf.handle_timeout(Instant::now());
                        (drain(&mut st.mihf), self.collect_events(&mut st))
                    };
                    self.send_all(out);
                    self.dispatch(events);
                }
                () = self.wake.notified() => {}
            }
        }
    }

    async fn accept_tcp(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, from)) = listener.accept().await else {
                continue;
            };
            if !self.by_ip.contains_key(&from.ip()) {
                self.metrics.dropped("mih", "unauthenticated");
                continue;
            }
            let _ = stream.set_nodelay(true);
            tokio::spawn(Arc::clone(&self).read_tcp(stream, from.ip()));
        }
    }

    /// MIH over TCP: frames back to back, each sized by its header.
    async fn read_tcp(self: Arc<Self>, mut stream: TcpStream, from: IpAddr) {
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 8192];
        loop {
            while let Some(len) = frame_len(&buf) {
                if buf.len() < len {
                    break;
                }
                let frame: Vec<u8> = buf.drain(..len).collect();
                self.on_frame(&frame, from);
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

fn drain(m: &mut Mihf) -> Vec<Transmit> {
    std::iter::from_fn(|| m.poll_transmit()).collect()
}

pub fn mihf_id(s: &str) -> MihfId {
    MihfId::try_from(s).expect("validated by the config")
}

/// Keeps one TCP connection to a peer's MIH port and writes frames to it.
async fn tcp_writer(addr: SocketAddr, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    let mut conn: Option<TcpStream> = None;
    while let Some(frame) = rx.recv().await {
        for _attempt in 0..2 {
            if conn.is_none() {
                conn = TcpStream::connect(addr).await.ok();
                if let Some(c) = &conn {
                    let _ = c.set_nodelay(true);
                }
            }
            let Some(c) = conn.as_mut() else { break };
            if c.write_all(&frame).await.is_ok() {
                break;
            }
            conn = None; // reconnect once; the MIHF retransmits otherwise
        }
    }
}

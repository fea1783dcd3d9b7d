//! CXTP between eNBCs: the sans-IO [`Endpoint`] on persistent TCP
//! connections.
//!
//! RFC 4067 runs CXTP over SCTP; this kernel has no SCTP and the paper used
//! TCP, so edgemob does too. Each agent keeps one outgoing connection to
//! every peer, on which it sends CTDs and receives CTDRs (many UEs'
//! transfers pipelined), and accepts the peers' connections on which it
//! receives CTDs and answers CTDRs. Connections are only accepted from the
//! addresses of configured peers; a peer whose byte stream loses framing is
//! disconnected and counted.

use crate::config::{Config, Peer};
use crate::metrics::Metrics;
use bytes::Bytes;
use edgemob_cxtp::{Context, Endpoint, Event, Fpt, Status, endpoint::Config as CxtpConfig};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};

/// How a transfer we sent ended.
#[derive(Debug)]
pub enum TransferOutcome {
    Acked {
        statuses: Vec<(Fpt, Status)>,
        all_ok: bool,
    },
    TimedOut,
    Cancelled,
    ConnectionLost,
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("no CXTP connection to {0}")]
    NotConnected(String),
    #[error(transparent)]
    Endpoint(#[from] edgemob_cxtp::EndpointError),
}

/// Socket buffer of CXTP connections. An idle connection's autotuned buffer
/// shrinks towards 16 KiB; a 75 KB context would then leave in several
/// writes, each waiting for ACKs to free space. The agent holds
/// CAP_NET_ADMIN, so it may exceed the usual `wmem_max`/`rmem_max`.
const CXTP_BUFFER: usize = 4 << 20;

/// Makes a peer connection ready for contexts: no Nagle, big buffers.
fn tune(s: &TcpStream) {
    let _ = s.set_nodelay(true);
    use nix::sys::socket::{setsockopt, sockopt};
    for r in [
        setsockopt(s, sockopt::SndBufForce, &CXTP_BUFFER),
        setsockopt(s, sockopt::RcvBufForce, &CXTP_BUFFER),
    ] {
        if let Err(e) = r {
            tracing::debug!(error = %e, "cannot size a CXTP socket buffer");
        }
    }
}

fn endpoint_config(cfg: &Config) -> CxtpConfig {
    CxtpConfig::with_budget(Duration::from_millis(cfg.timers.cxtp_transfer_ms))
}

/// Writes queued frames to a connection until it closes.
async fn writer(mut half: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    let mut batch = std::collections::VecDeque::new();
    while let Some(first) = rx.recv().await {
        // Gather what is queued: a context larger than one CTD (64 KiB)
        // leaves in one system call, so the peer wakes once for it.
        batch.push_back(first);
        while let Ok(more) = rx.try_recv() {
            batch.push_back(more);
        }
        if write_batch(&mut half, &mut batch).await.is_err() {
            return;
        }
    }
}

/// Writes every frame of `batch` with as few `writev`s as the socket allows.
async fn write_batch(
    half: &mut OwnedWriteHalf,
    batch: &mut std::collections::VecDeque<Bytes>,
) -> std::io::Result<()> {
    use bytes::Buf;
    while !batch.is_empty() {
        let slices: Vec<std::io::IoSlice<'_>> = batch
            .iter()
            .take(64)
            .map(|b| std::io::IoSlice::new(b))
            .collect();
        let mut n = half.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let front = batch.front_mut().expect("written octets were queued");
            if n >= front.len() {
                n -= front.len();
                batch.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
    Ok(())
}

fn flush(ep: &mut Endpoint, tx: &mpsc::UnboundedSender<Bytes>) {
    while let Some(b) = ep.poll_transmit() {
        let _ = tx.send(b);
    }
}

// ------------------------------------------------------------------ outgoing

struct OutState {
    endpoint: Endpoint,
    waiters: HashMap<IpAddr, oneshot::Sender<TransferOutcome>>,
    tx: Option<mpsc::UnboundedSender<Bytes>>,
}

/// Our connection to one peer, for sending contexts.
pub struct PeerLink {
    pub mihf_id: String,
    addr: SocketAddr,
    config: CxtpConfig,
    state: Mutex<OutState>,
    wake: Notify,
    connected_once: Notify,
}

impl std::fmt::Debug for PeerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerLink")
            .field("peer", &self.mihf_id)
            .field("addr", &self.addr)
            .finish()
    }
}

impl PeerLink {
    fn new(p: &Peer, config: CxtpConfig) -> Arc<PeerLink> {
        Arc::new(PeerLink {
            mihf_id: p.mihf_id.clone(),
            addr: p.cxtp,
            config,
            state: Mutex::new(OutState {
                endpoint: Endpoint::new(config),
                waiters: HashMap::new(),
                tx: None,
            }),
            wake: Notify::new(),
            connected_once: Notify::new(),
        })
    }

    pub fn is_connected(&self) -> bool {
        self.state.lock().expect("not poisoned").tx.is_some()
    }

    /// Waits until connected, at most `within`.
    pub async fn connected(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let n = self.connected_once.notified();
            if self.is_connected() {
                return true;
            }
            if tokio::time::timeout_at(deadline, n).await.is_err() {
                return self.is_connected();
            }
        }
    }

    /// Sends the contexts of `mn` and waits for the CTDR (or a failure).
    /// `sent` fires once the CTDs are queued on the connection.
    pub async fn transfer(
        &self,
        mn: IpAddr,
        contexts: Vec<Context>,
    ) -> Result<TransferOutcome, TransferError> {
        if !self.is_connected() && !self.connected(Duration::from_millis(200)).await {
            return Err(TransferError::NotConnected(self.mihf_id.clone()));
        }
        let (wtx, wrx) = oneshot::channel();
        {
            let mut st = self.state.lock().expect("not poisoned");
            let Some(tx) = st.tx.clone() else {
                return Err(TransferError::NotConnected(self.mihf_id.clone()));
            };
            st.endpoint.start_transfer(mn, contexts, Instant::now())?;
            st.waiters.insert(mn, wtx);
            flush(&mut st.endpoint, &tx);
        }
        self.wake.notify_one();
        Ok(wrx.await.unwrap_or(TransferOutcome::ConnectionLost))
    }

    /// Cancels a transfer (CTC), e.g. after giving up on it.
    pub fn cancel(&self, mn: IpAddr) {
        let mut st = self.state.lock().expect("not poisoned");
        if st.endpoint.cancel(mn).is_ok()
            && let Some(tx) = st.tx.clone()
        {
            flush(&mut st.endpoint, &tx);
        }
        st.waiters.remove(&mn);
    }

    /// Connects, reconnecting forever with backoff.
    async fn run(self: Arc<Self>, metrics: Arc<Metrics>) {
        let mut backoff = Duration::from_millis(5);
        loop {
            match TcpStream::connect(self.addr).await {
                Ok(s) => {
                    backoff = Duration::from_millis(5);
                    tune(&s);
                    let (rd, wr) = s.into_split();
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(writer(wr, rx));
                    {
                        let mut st = self.state.lock().expect("not poisoned");
                        st.endpoint = Endpoint::new(self.config);
                        st.tx = Some(tx);
                    }
                    self.connected_once.notify_waiters();
                    tracing::info!(peer = %self.mihf_id, addr = %self.addr, "CXTP connected");
                    self.read(rd, &metrics).await;
                    let waiters: Vec<_> = {
                        let mut st = self.state.lock().expect("not poisoned");
                        st.tx = None;
                        st.waiters.drain().collect()
                    };
                    for (_, w) in waiters {
                        let _ = w.send(TransferOutcome::ConnectionLost);
                    }
                    tracing::warn!(peer = %self.mihf_id, "CXTP connection lost");
                }
                Err(e) => {
                    tracing::debug!(peer = %self.mihf_id, error = %e, "CXTP connect failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    async fn read(&self, mut rd: OwnedReadHalf, metrics: &Metrics) {
        let mut buf = ReadBuf::default();
        loop {
            let next = self
                .state
                .lock()
                .expect("not poisoned")
                .endpoint
                .poll_timeout();
            let sleep = crate::timer(next);
            let n = tokio::select! {
                r = rd.read_buf(buf.room()) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => Some(n),
                },
                () = sleep => None,
                () = self.wake.notified() => continue,
            };
            let mut st = self.state.lock().expect("not poisoned");
            let now = Instant::now();
            match n {
                Some(_) => {
                    if let Err(e) = st.endpoint.handle_input_owned(buf.take(), now) {
                        tracing::warn!(peer = %self.mihf_id, error = %e, "CXTP framing lost");
                        metrics.dropped("cxtp", "framing");
                        return;
                    }
                }
                None => st.endpoint.handle_timeout(now),
            }
            while let Some(ev) = st.endpoint.poll_event() {
                let (mn, outcome) = match ev {
                    Event::TransferAcked {
                        mn,
                        statuses,
                        all_ok,
                    } => (mn, TransferOutcome::Acked { statuses, all_ok }),
                    Event::TransferTimedOut { mn } => (mn, TransferOutcome::TimedOut),
                    Event::TransferCancelled { mn } => (mn, TransferOutcome::Cancelled),
                    Event::MalformedMessage { .. } => {
                        metrics.dropped("cxtp", "malformed");
                        continue;
                    }
                    other => {
                        tracing::debug!(peer = %self.mihf_id, ?other, "CXTP event ignored on the sending side");
                        continue;
                    }
                };
                if let Some(w) = st.waiters.remove(&mn) {
                    let _ = w.send(outcome);
                }
            }
            if let Some(tx) = st.tx.clone() {
                flush(&mut st.endpoint, &tx);
            }
        }
    }
}

// ------------------------------------------------------------------ incoming

/// A transfer that arrived from a peer, to be installed and answered.
#[derive(Debug)]
pub struct Arrived {
    pub peer: String,
    pub mn: IpAddr,
    pub contexts: Vec<Context>,
    pub reply: ReplyHandle,
}

/// Answers an arrived transfer with a CTDR on the connection it came on.
#[derive(Debug, Clone)]
pub struct ReplyHandle {
    conn: Arc<InConn>,
}

impl ReplyHandle {
    pub fn reply(&self, mn: IpAddr, statuses: Vec<(Fpt, Status)>) {
        let mut ep = self.conn.endpoint.lock().expect("not poisoned");
        if let Err(e) = ep.reply(mn, statuses) {
            tracing::warn!(%mn, error = %e, "cannot send CTDR");
        }
        flush(&mut ep, &self.conn.tx);
    }
}

#[derive(Debug)]
struct InConn {
    endpoint: Mutex<Endpoint>,
    tx: mpsc::UnboundedSender<Bytes>,
}

type ArrivalHandler = Box<dyn Fn(Arrived) + Send + Sync>;
type CancelHandler = Box<dyn Fn(String, IpAddr) + Send + Sync>;

/// All CXTP connections of this agent.
pub struct CxtpLinks {
    pub peers: HashMap<String, Arc<PeerLink>>,
    peer_ips: HashMap<IpAddr, String>,
    config: CxtpConfig,
    metrics: Arc<Metrics>,
    on_arrival: OnceLock<ArrivalHandler>,
    on_cancel: OnceLock<CancelHandler>,
}

impl std::fmt::Debug for CxtpLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CxtpLinks")
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl CxtpLinks {
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Arc<CxtpLinks> {
        let config = endpoint_config(cfg);
        let mut peer_ips = HashMap::new();
        for p in &cfg.peers {
            peer_ips.insert(p.cxtp.ip(), p.mihf_id.clone());
            peer_ips
                .entry(p.mih.ip())
                .or_insert_with(|| p.mihf_id.clone());
        }
        Arc::new(CxtpLinks {
            peers: cfg
                .peers
                .iter()
                .map(|p| (p.mihf_id.clone(), PeerLink::new(p, config)))
                .collect(),
            peer_ips,
            config,
            metrics,
            on_arrival: OnceLock::new(),
            on_cancel: OnceLock::new(),
        })
    }

    pub fn set_handlers(
        &self,
        arrival: impl Fn(Arrived) + Send + Sync + 'static,
        cancel: impl Fn(String, IpAddr) + Send + Sync + 'static,
    ) {
        let _ = self.on_arrival.set(Box::new(arrival));
        let _ = self.on_cancel.set(Box::new(cancel));
    }

    pub fn peer(&self, id: &str) -> Option<&Arc<PeerLink>> {
        self.peers.get(id)
    }

    /// Starts outgoing connections and accepts incoming ones, forever.
    pub async fn run(self: Arc<Self>, listener: TcpListener) {
        for p in self.peers.values() {
            tokio::spawn(Arc::clone(p).run(Arc::clone(&self.metrics)));
        }
        loop {
            let Ok((stream, from)) = listener.accept().await else {
                continue;
            };
            let Some(peer) = self.peer_ips.get(&from.ip()).cloned() else {
                tracing::warn!(%from, "CXTP connection from an unknown address refused");
                self.metrics.dropped("cxtp", "unauthenticated");
                continue;
            };
            tune(&stream);
            tokio::spawn(Arc::clone(&self).serve(stream, peer));
        }
    }

    async fn serve(self: Arc<Self>, stream: TcpStream, peer: String) {
        let (mut rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(wr, rx));
        let conn = Arc::new(InConn {
            endpoint: Mutex::new(Endpoint::new(self.config)),
            tx,
        });
        let mut buf = ReadBuf::default();
        loop {
            let next = conn.endpoint.lock().expect("not poisoned").poll_timeout();
            let sleep = crate::timer(next);
            let n = tokio::select! {
                r = rd.read_buf(buf.room()) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => Some(n),
                },
                () = sleep => None,
            };
            let mut arrivals = Vec::new();
            let mut cancels = Vec::new();
            {
                let mut ep = conn.endpoint.lock().expect("not poisoned");
                let now = Instant::now();
                match n {
                    Some(_) => {
                        if let Err(e) = ep.handle_input_owned(buf.take(), now) {
                            tracing::warn!(%peer, error = %e, "CXTP framing lost; disconnecting");
                            self.metrics.dropped("cxtp", "framing");
                            return;
                        }
                    }
                    None => ep.handle_timeout(now),
                }
                while let Some(ev) = ep.poll_event() {
                    match ev {
                        Event::ContextsArrived { mn, contexts, .. } => {
                            arrivals.push((mn, contexts))
                        }
                        Event::TransferCancelled { mn } => cancels.push(mn),
                        Event::MalformedMessage { error } => {
                            tracing::debug!(%peer, %error, "malformed CXTP message dropped");
                            self.metrics.dropped("cxtp", "malformed");
                        }
                        Event::TransferFailed { mn, error } => {
                            tracing::warn!(%peer, %mn, %error, "incoming transfer dropped");
                            self.metrics.dropped("cxtp", "malformed");
                        }
                        other => tracing::debug!(%peer, ?other, "CXTP event"),
                    }
                }
                flush(&mut ep, &conn.tx);
            }
            for (mn, contexts) in arrivals {
                tracing::debug!(%mn, octets = contexts.iter().map(|c| c.data.len()).sum::<usize>(), "transfer arrived");
                if let Some(h) = self.on_arrival.get() {
                    h(Arrived {
                        peer: peer.clone(),
                        mn,
                        contexts,
                        reply: ReplyHandle {
                            conn: Arc::clone(&conn),
                        },
                    });
                }
            }
            for mn in cancels {
                if let Some(h) = self.on_cancel.get() {
                    h(peer.clone(), mn);
                }
            }
        }
    }
}

/// Where a CXTP connection is read into: each read's octets are split off
/// and handed to the endpoint, which cuts messages (and contexts) out of
/// them without copying (see `Endpoint::handle_input_owned`).
#[derive(Debug, Default)]
struct ReadBuf(bytes::BytesMut);

impl ReadBuf {
    /// Room for the next read: a whole CTD (at most 64 KiB, its Length
    /// is 16 bits) always fits, so none is read into a buffer that must
    /// grow halfway.
    fn room(&mut self) -> &mut bytes::BytesMut {
        edgemob_paas_api::link::make_room(&mut self.0, 0);
        &mut self.0
    }

    /// The octets read so far.
    fn take(&mut self) -> bytes::BytesMut {
        self.0.split()
    }
}

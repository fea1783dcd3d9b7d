//! One UE's connection: the HTTP/1.1 response loop that can stop at any
//! octet, hand its state over as a [`SessionContext`], and continue from
//! that state on another host with the same (restored) socket.
//!
//! The loop only ever touches the socket through non-blocking `try_read` /
//! `try_write` calls between which its state is complete, so whenever it
//! picks up [`Control::Export`] it stops at a point where
//! [`Session::context`] describes exactly what the client has been sent
//! (everything up to the octet the kernel accepted) and what it has sent
//! (everything the server read and has not answered yet).
//!
//! The session knows nothing about the agent: [`Control`] carries whatever
//! the caller uses to answer an export (an SDK `ExportRequest` in the
//! server, `()` in tests).

use crate::content::{ContentId, Library, LookupError};
use crate::context::{BodyContext, ResponseContext, SessionContext};
use crate::http::{
    self, MAX_HEAD, Method, Persistence, RangeOutcome, Request, TargetError, Version,
};
use crate::pacing::{Pacer, UNPACED_CHUNK};
use crate::timer::PaceTimer;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How a session serves its connection.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Pace of response bodies, bits per second; 0 = as fast as TCP goes.
    pub bitrate: u64,
    /// Close a keep-alive connection idle this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// After sending our FIN, how long to wait for the client's before
    /// closing anyway.
    pub linger: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            bitrate: 0,
            idle_timeout: Some(Duration::from_secs(120)),
            linger: Duration::from_secs(5),
        }
    }
}

/// What the owner of a session tells it while it runs.
#[derive(Debug)]
pub enum Control<P> {
    /// Stop touching the socket: [`Session::run`] returns
    /// [`Stop::Export`] with `P` at the next safe point.
    Export(P),
    /// A migration was rolled back (nothing to do unless the session was
    /// stopped for it, in which case the owner simply runs it again).
    Resume,
    /// The UE moved away: [`Session::run`] returns [`Stop::Gone`].
    Gone,
}

/// Why [`Session::run`] returned.
#[derive(Debug)]
pub enum Stop<P> {
    /// An export was asked for. The session is stopped and consistent:
    /// take [`Session::context`], and either drop the session (the UE left)
    /// or call [`Session::run`] again (rolled back).
    Export(P),
    /// [`Control::Gone`] arrived: the socket is frozen; drop the session.
    Gone,
    /// The connection ended cleanly: both sides sent FIN and nothing was
    /// left unread (or the linger time ran out).
    Closed,
    /// The connection failed (reset, or the file could not be read).
    Failed(io::Error),
}

/// Why a context cannot be resumed here.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("file {0:?} is not here")]
    Missing(String),
    #[error("file {name:?} differs here ({here:?}; the UE was served {there:?})")]
    Differs {
        name: String,
        here: ContentId,
        there: ContentId,
    },
    #[error("file {name:?} cannot be read here: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug)]
struct Body {
    name: String,
    id: ContentId,
    file: File,
    start: u64,
    end: u64,
    sent: u64,
}

impl Body {
    fn remaining(&self) -> u64 {
        self.end - self.start - self.sent
    }
    fn offset(&self) -> u64 {
        self.start + self.sent
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    head: Vec<u8>,
    head_written: usize,
    close_after: bool,
    body: Option<Body>,
}

impl Response {
    fn done(&self) -> bool {
        self.head_written == self.head.len()
            && self.body.as_ref().is_none_or(|b| b.remaining() == 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Our FIN is sent; reading and discarding until the client's.
    Draining {
        until: Instant,
    },
    Closed,
}

enum Wake<P> {
    Control(Option<Control<P>>),
    Readable(io::Result<()>),
    Writable(io::Result<()>),
    Timer,
    Stalled,
}

/// One client connection (one UE).
#[derive(Debug)]
pub struct Session {
    stream: TcpStream,
    library: Arc<Library>,
    cfg: SessionConfig,
    inbuf: Vec<u8>,
    response: Option<Response>,
    pacer: Option<Pacer>,
    /// Wakes the pacer on time (see [`PaceTimer`]).
    timer: PaceTimer,
    requests_served: u64,
    peer_eof: bool,
    phase: Phase,
    /// File data read ahead for the current body, starting at `chunk_at`.
    chunk: Vec<u8>,
    chunk_at: u64,
    last_activity: Instant,
}

/// A checked context with its file open, waiting for its socket.
#[derive(Debug)]
pub struct Resumable {
    ctx: SessionContext,
    file: Option<File>,
    library: Arc<Library>,
    cfg: SessionConfig,
    /// When the context arrived here: the pacing bucket fills from then.
    arrived: std::time::Instant,
}

impl Resumable {
    /// The context being resumed.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Continues the context's connection on `stream` (the restored socket).
    pub fn attach(self, stream: TcpStream) -> Session {
        let mut s = Session::with_state(stream, self.library, self.cfg);
        let ctx = self.ctx;
        s.requests_served = ctx.requests_served;
        s.inbuf = ctx.pending_input;
        // The bucket fills while the UE waits for its socket here, as it
        // does whenever a connection is idle (up to the bucket's depth): the
        // first chunk leaves as soon as the socket is live, not a pacing
        // interval later. The time before the context arrived is not
        // counted (another host's clock).
        s.pacer = Pacer::with_credit(s.cfg.bitrate, u64::from(ctx.pace_credit), self.arrived);
        s.response = ctx.response.map(|r| Response {
            status: r.status,
            head: r.head,
            head_written: r.head_written as usize,
            close_after: r.close_after,
            body: r.body.zip(self.file).map(|(b, file)| Body {
                name: b.file,
                id: b.content,
                file,
                start: b.start,
                end: b.end,
                sent: b.sent,
            }),
        });
        s
    }
}

impl Session {
    fn with_state(stream: TcpStream, library: Arc<Library>, cfg: SessionConfig) -> Session {
        let _ = stream.set_nodelay(true);
        let now = Instant::now();
        Session {
            stream,
            library,
            pacer: Pacer::new(cfg.bitrate, now.into_std()),
            timer: PaceTimer::default(),
            cfg,
            inbuf: Vec::with_capacity(MAX_HEAD),
            response: None,
            requests_served: 0,
            peer_eof: false,
            phase: Phase::Serving,
            chunk: Vec::new(),
            chunk_at: 0,
            last_activity: now,
        }
    }

    /// A new connection.
    pub fn new(stream: TcpStream, library: Arc<Library>, cfg: SessionConfig) -> Session {
        Session::with_state(stream, library, cfg)
    }

    /// Checks that `ctx` can be resumed here (its file exists and has the
    /// same content) and opens the file. Call before accepting a UE.
    pub async fn prepare_resume(
        ctx: SessionContext,
        library: &Arc<Library>,
        cfg: SessionConfig,
    ) -> Result<Resumable, ImportError> {
        let arrived = std::time::Instant::now();
        let file = match ctx.response.as_ref().and_then(|r| r.body.as_ref()) {
            None => None,
            Some(b) => {
                let open = library.lookup(&b.file).await.map_err(|e| match e {
                    LookupError::NotFound => ImportError::Missing(b.file.clone()),
                    LookupError::Io(source) => ImportError::Io {
                        name: b.file.clone(),
                        source,
                    },
                })?;
                if open.id != b.content {
                    return Err(ImportError::Differs {
                        name: b.file.clone(),
                        here: open.id,
                        there: b.content,
                    });
                }
                Some(open.file)
            }
        };
        Ok(Resumable {
            ctx,
            file,
            library: Arc::clone(library),
            cfg,
            arrived,
        })
    }

    /// The connection's state, exact to the octet, for export.
    pub fn context(&self) -> SessionContext {
        let now = Instant::now().into_std();
        SessionContext {
            requests_served: self.requests_served,
            pace_credit: self
                .pacer
                .as_ref()
                .map_or(0, |p| p.available(now).min(u64::from(u32::MAX)) as u32),
            pending_input: self.inbuf.clone(),
            response: self.response.as_ref().map(|r| ResponseContext {
                status: r.status,
                head: r.head.clone(),
                head_written: r.head_written as u32,
                close_after: r.close_after,
                body: r.body.as_ref().map(|b| BodyContext {
                    file: b.name.clone(),
                    content: b.id,
                    start: b.start,
                    end: b.end,
                    sent: b.sent,
                }),
            }),
        }
    }

    /// Whether the connection can be moved now. Only established
    /// connections can: not once either side has sent its FIN.
    pub fn exportable(&self) -> Result<(), &'static str> {
        if self.phase != Phase::Serving {
            return Err("the connection is closing");
        }
        if self.peer_eof {
            return Err("the client has closed its side of the connection");
        }
        Ok(())
    }

    /// Responses completed on this connection.
    pub fn requests_served(&self) -> u64 {
        self.requests_served
    }

    /// Whether a response is being sent.
    pub fn responding(&self) -> bool {
        self.response.is_some()
    }

    /// The socket (for registering it with the agent).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The socket, to hand to another session (or to drop).
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Serves the connection until it ends or `control` asks it to stop.
    /// Can be called again after [`Stop::Export`]. A closed `control`
    /// channel is not a reason to stop.
    pub async fn run<P>(&mut self, control: &mut mpsc::UnboundedReceiver<Control<P>>) -> Stop<P> {
        let mut control_open = true;
        loop {
            self.advance().await;
            if self.phase == Phase::Closed {
                return Stop::Closed;
            }
            let now = Instant::now();
            let (read, write, timer) = self.wants(now);
            let wake = tokio::select! {
                biased;
                c = control.recv(), if control_open => Wake::Control(c),
                r = self.stream.readable(), if read => Wake::Readable(r),
                r = self.stream.writable(), if write => Wake::Writable(r),
                () = self.timer.sleep_until(timer.unwrap_or(now)), if timer.is_some() => Wake::Timer,
                else => Wake::Stalled,
            };
            match wake {
                Wake::Control(Some(Control::Export(p))) => return Stop::Export(p),
                Wake::Control(Some(Control::Gone)) => return Stop::Gone,
                Wake::Control(Some(Control::Resume)) => {}
                Wake::Control(None) => control_open = false,
                Wake::Readable(Err(e)) | Wake::Writable(Err(e)) => return Stop::Failed(e),
                Wake::Readable(Ok(())) => {
                    if let Err(e) = self.read_step() {
                        return Stop::Failed(e);
                    }
                }
                Wake::Writable(Ok(())) => {
                    if let Err(e) = self.write_step() {
                        return Stop::Failed(e);
                    }
                }
                Wake::Timer => self.on_timer(),
                Wake::Stalled => {
                    return Stop::Failed(io::Error::other("session has nothing to wait for"));
                }
            }
        }
    }

    /// What to wait for: (readable, writable, timer).
    fn wants(&self, now: Instant) -> (bool, bool, Option<Instant>) {
        match self.phase {
            Phase::Closed => (false, false, None),
            Phase::Draining { until } => (!self.peer_eof, false, Some(until)),
            Phase::Serving => {
                let read = !self.peer_eof && self.inbuf.len() < MAX_HEAD;
                let Some(r) = &self.response else {
                    let idle = self.cfg.idle_timeout.map(|d| self.last_activity + d);
                    return (read, false, idle);
                };
                let head_pending = r.head_written < r.head.len();
                let need = r
                    .body
                    .as_ref()
                    .map_or(0, |b| b.remaining().min(self.chunk_size()));
                let (body_ready, pace_at) = match (&self.pacer, need) {
                    (_, 0) => (false, None),
                    (None, _) => (true, None),
                    (Some(p), n) => match p.delay_for(n, now.into_std()) {
                        Duration::ZERO => (true, None),
                        d => (false, Some(now + d)),
                    },
                };
                let write = head_pending || body_ready;
                (read, write, if write { None } else { pace_at })
            }
        }
    }

    fn chunk_size(&self) -> u64 {
        self.pacer.as_ref().map_or(UNPACED_CHUNK, Pacer::chunk)
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        match self.phase {
            Phase::Draining { until } if now >= until => {
                tracing::debug!("client did not close within the linger time");
                self.phase = Phase::Closed;
            }
            Phase::Serving
                if self.response.is_none()
                    && self
                        .cfg
                        .idle_timeout
                        .is_some_and(|d| now >= self.last_activity + d) =>
            {
                tracing::debug!("idle keep-alive connection closed");
                self.begin_close();
            }
            _ => {}
        }
    }

    /// Does all the work that needs no waiting: finishes responses, parses
    /// requests and starts their responses, starts closing.
    async fn advance(&mut self) {
        loop {
            match self.phase {
                Phase::Closed => return,
                Phase::Draining { .. } => {
                    if self.peer_eof {
                        self.phase = Phase::Closed;
                    }
                    return;
                }
                Phase::Serving => {}
            }
            if let Some(r) = &self.response {
                if !r.done() {
                    return;
                }
                let close = r.close_after;
                self.response = None;
                self.requests_served += 1;
                self.last_activity = Instant::now();
                if close {
                    self.begin_close();
                }
                continue;
            }
            match http::parse_request(&self.inbuf) {
                Ok(Some((req, used))) => {
                    let resp = self.respond(&req).await;
                    tracing::debug!(
                        method = ?req.method,
                        target = %req.target,
                        status = resp.status,
                        "request"
                    );
                    self.inbuf.drain(..used);
                    self.start(resp);
                }
                Ok(None) => {
                    if !self.peer_eof {
                        return;
                    }
                    // The client is done sending; a partial request is
                    // never completed.
                    self.begin_close();
                }
                Err(e) => {
                    tracing::debug!(error = %e, "bad request");
                    self.inbuf.clear();
                    let resp = error_response(e.status(), false, Persistence::Close, &[]);
                    self.start(resp);
                }
            }
        }
    }

    fn start(&mut self, resp: Response) {
        self.chunk.clear();
        self.response = Some(resp);
    }

    /// Sends our FIN and waits for the client's, reading and discarding
    /// what it still sends: closing a socket with unread data would reset
    /// the connection and could destroy the end of our response.
    fn begin_close(&mut self) {
        let _ = socket2::SockRef::from(&self.stream).shutdown(std::net::Shutdown::Write);
        self.inbuf.clear();
        self.phase = if self.peer_eof {
            Phase::Closed
        } else {
            Phase::Draining {
                until: Instant::now() + self.cfg.linger,
            }
        };
    }

    fn read_step(&mut self) -> io::Result<()> {
        if let Phase::Draining { .. } = self.phase {
            let mut scratch = [0u8; 16 * 1024];
            return match self.stream.try_read(&mut scratch) {
                Ok(0) => {
                    self.peer_eof = true;
                    Ok(())
                }
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                Err(e) => Err(e),
            };
        }
        let old = self.inbuf.len();
        self.inbuf.resize(MAX_HEAD, 0);
        let r = self.stream.try_read(&mut self.inbuf[old..]);
        let n = *r.as_ref().unwrap_or(&0);
        self.inbuf.truncate(old + n);
        match r {
            Ok(0) => {
                self.peer_eof = true;
                Ok(())
            }
            Ok(_) => {
                self.last_activity = Instant::now();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn write_step(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let chunk_size = self.chunk_size();
        let Some(r) = self.response.as_mut() else {
            return Ok(());
        };
        // The body octets that may leave now, read from the file if needed.
        let mut body_range = 0..0;
        if let Some(b) = &r.body {
            let need = b.remaining().min(chunk_size);
            let allowed = match &self.pacer {
                None => need,
                // A chunk's worth is due: send all the credit (a timer that
                // woke late catches up).
                Some(p) if p.available(now.into_std()) >= need => {
                    b.remaining().min(p.available(now.into_std()))
                }
                Some(_) => 0,
            };
            if allowed > 0 {
                let off = b.offset();
                let cached_end = self.chunk_at + self.chunk.len() as u64;
                if off < self.chunk_at || off + allowed > cached_end {
                    let ahead = b
                        .remaining()
                        .min(UNPACED_CHUNK.max(chunk_size).max(allowed));
                    self.chunk.resize(ahead as usize, 0);
                    b.file.read_exact_at(&mut self.chunk, off)?;
                    self.chunk_at = off;
                }
                let s = (off - self.chunk_at) as usize;
                body_range = s..s + allowed as usize;
            }
        }
        let head = &r.head[r.head_written..];
        let body = &self.chunk[body_range];
        let res = match (head.is_empty(), body.is_empty()) {
            (true, true) => return Ok(()),
            (false, false) => self
                .stream
                .try_write_vectored(&[IoSlice::new(head), IoSlice::new(body)]),
            (false, true) => self.stream.try_write(head),
            (true, false) => self.stream.try_write(body),
        };
        match res {
            Ok(n) => {
                let from_head = n.min(head.len());
                let from_body = (n - from_head) as u64;
                r.head_written += from_head;
                if from_body > 0 {
                    if let Some(b) = r.body.as_mut() {
                        b.sent += from_body;
                    }
                    if let Some(p) = self.pacer.as_mut() {
                        p.consume(from_body, now.into_std());
                    }
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Builds the response to one request.
    async fn respond(&self, req: &Request) -> Response {
        let persistence = if !req.keep_alive() || req.has_body() {
            Persistence::Close
        } else if req.version == Version::Http10 {
            Persistence::KeepAlive10
        } else {
            Persistence::KeepAlive
        };
        let head_only = match &req.method {
            Method::Get => false,
            Method::Head => true,
            Method::Other(_) => {
                return error_response(405, false, persistence, &[("Allow", "GET, HEAD")]);
            }
        };
        let name = match http::target_name(&req.target) {
            Ok(n) => n,
            Err(TargetError::Bad(_)) => return error_response(400, head_only, persistence, &[]),
            Err(TargetError::NotFound) => return error_response(404, head_only, persistence, &[]),
        };
        let open = match self.library.lookup(&name).await {
            Ok(f) => f,
            Err(LookupError::NotFound) => return error_response(404, head_only, persistence, &[]),
            Err(LookupError::Io(e)) => {
                tracing::warn!(file = %name, error = %e, "cannot open");
                return error_response(500, head_only, persistence, &[]);
            }
        };
        let size = open.id.size;
        let etag = open.id.etag();
        let range = if head_only
            || req
                .if_range
                .as_deref()
                .is_some_and(|v| !http::if_range_matches(v, &etag))
        {
            RangeOutcome::Full
        } else {
            http::evaluate_range(req.range.as_deref(), size)
        };
        let (status, start, end, content_range) = match range {
            RangeOutcome::Full => (200, 0, size, None),
            RangeOutcome::Partial { start, last } => (
                206,
                start,
                last + 1,
                Some(format!("bytes {start}-{last}/{size}")),
            ),
            RangeOutcome::Unsatisfiable => {
                let cr = format!("bytes */{size}");
                return error_response(
                    416,
                    head_only,
                    persistence,
                    &[("Accept-Ranges", "bytes"), ("Content-Range", &cr)],
                );
            }
        };
        let mut fields = vec![
            ("Content-Type", http::content_type(&name)),
            ("Accept-Ranges", "bytes"),
            ("ETag", etag.as_str()),
        ];
        if let Some(cr) = &content_range {
            fields.push(("Content-Range", cr.as_str()));
        }
        let head =
            http::response_head(status, &fields, end - start, persistence, SystemTime::now());
        Response {
            status,
            head,
            head_written: 0,
            close_after: persistence == Persistence::Close,
            body: (!head_only && end > start).then_some(Body {
                name,
                id: open.id,
                file: open.file,
                start,
                end,
                sent: 0,
            }),
        }
    }
}

/// A response with a short text body (not sent for HEAD).
fn error_response(
    status: u16,
    head_only: bool,
    persistence: Persistence,
    extra: &[(&str, &str)],
) -> Response {
    let text = format!("{status} {}\n", http::reason(status));
    let mut fields = vec![("Content-Type", "text/plain; charset=utf-8")];
    fields.extend_from_slice(extra);
    let mut head = http::response_head(
        status,
        &fields,
        text.len() as u64,
        persistence,
        SystemTime::now(),
    );
    if !head_only {
        head.extend_from_slice(text.as_bytes());
    }
    Response {
        status,
        head,
        head_written: 0,
        close_after: persistence == Persistence::Close,
        body: None,
    }
}

/// Serves a session that nobody will move (no agent, or a UE the agent does
/// not know): runs it to its end.
pub async fn serve_unmanaged(mut session: Session) {
    let (_, mut rx) = mpsc::unbounded_channel::<Control<()>>();
    match session.run(&mut rx).await {
        Stop::Failed(e) => tracing::debug!(error = %e, "connection failed"),
        Stop::Closed | Stop::Gone | Stop::Export(()) => {}
    }
}

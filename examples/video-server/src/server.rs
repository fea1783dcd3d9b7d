//! The service: accepts UEs, registers them with the local agent, and
//! routes the agent's events to their sessions.
//!
//! Each accepted connection is one UE, `ue-<client IP>`, served by its own
//! task. Events for a UE reach its task in order through a channel; the
//! task stops its session for an export, hands the context over, and waits
//! for the verdict: the UE left (drop the frozen socket, which closes
//! silently) or the migration was rolled back (carry on where it stopped).
//! An arriving UE's context is checked against the local content before
//! it is accepted; its restored socket then continues the response at the
//! octet where the other eNBC stopped.

use crate::content::Library;
use crate::context::SessionContext;
use crate::session::{Control, Session, SessionConfig, Stop, serve_unmanaged};
use edgemob_sdk::{Agent, Arrival, Event, Events, ExportRequest, SERVICE_CONTEXT, Service};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Largest context the agent accepts.
pub const MAX_CONTEXT: usize = 16 << 20;

/// Everything [`VideoServer::start`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The local agent's API socket.
    pub agent: PathBuf,
    /// The service address (the same on every eNBC).
    pub listen: SocketAddr,
    /// The content directory (the same content on every eNBC).
    pub root: PathBuf,
    /// The service name (the same on every eNBC).
    pub name: String,
    /// Pad each exported context to at least this many octets.
    pub context_pad: usize,
    pub session: SessionConfig,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("content directory {path}: {source}")]
    Content {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("context padding of {0} octets exceeds the agent's {MAX_CONTEXT}-octet limit")]
    PadTooLarge(usize),
    #[error(transparent)]
    Agent(#[from] edgemob_sdk::Error),
    #[error("the agent closed the event stream")]
    AgentGone,
}

type ExportControl = Control<Box<ExportRequest>>;

#[derive(Debug)]
struct Entry {
    generation: u64,
    control: mpsc::UnboundedSender<ExportControl>,
}

#[derive(Debug)]
struct Shared {
    service: Service,
    library: Arc<Library>,
    session: SessionConfig,
    context_pad: usize,
    sessions: Mutex<HashMap<String, Entry>>,
    generation: AtomicU64,
}

impl Shared {
    /// Claims `ue` for a new session; `None` if it already has one here.
    fn claim(&self, ue: &str) -> Option<(u64, mpsc::UnboundedReceiver<ExportControl>)> {
        let mut sessions = self.sessions.lock().expect("not poisoned");
        if sessions.contains_key(ue) {
            return None;
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let (control, rx) = mpsc::unbounded_channel();
        sessions.insert(
            ue.to_owned(),
            Entry {
                generation,
                control,
            },
        );
        Some((generation, rx))
    }

    /// Forgets `ue`'s session (if it is still that one), then refuses any
    /// export that reached it too late.
    fn release(&self, ue: &str, generation: u64, rx: &mut mpsc::UnboundedReceiver<ExportControl>) {
        {
            let mut sessions = self.sessions.lock().expect("not poisoned");
            if sessions.get(ue).is_some_and(|e| e.generation == generation) {
                sessions.remove(ue);
            }
        }
        while let Ok(c) = rx.try_recv() {
            if let Control::Export(req) = c {
                refuse_later(*req, "the UE's connection has ended");
            }
        }
    }

    /// Sends `c` to `ue`'s session; gives it back if there is none.
    fn to_session(&self, ue: &str, c: ExportControl) -> Result<(), ExportControl> {
        let control = self
            .sessions
            .lock()
            .expect("not poisoned")
            .get(ue)
            .map(|e| e.control.clone());
        match control {
            Some(tx) => tx.send(c).map_err(|e| e.0),
            None => Err(c),
        }
    }
}

fn refuse_later(req: ExportRequest, reason: &'static str) {
    tokio::spawn(async move {
        let ue = req.ue.clone();
        if let Err(e) = req.refuse(reason).await {
            tracing::debug!(%ue, error = %e, "refusal not delivered");
        }
    });
}

/// The video server, registered and listening.
#[derive(Debug)]
pub struct VideoServer {
    listener: TcpListener,
    library: Arc<Library>,
    service: Service,
    events: Events,
    cfg: ServerConfig,
}

impl VideoServer {
    /// Listens, indexes the content (hashing every file), connects to the
    /// agent and registers the service. When this returns the server is
    /// ready: connections are accepted (and served once [`VideoServer::run`]
    /// runs) and the agent knows the service.
    pub async fn start(cfg: ServerConfig) -> Result<VideoServer, ServerError> {
        if cfg.context_pad > MAX_CONTEXT {
            return Err(ServerError::PadTooLarge(cfg.context_pad));
        }
        let listener =
            TcpListener::bind(cfg.listen)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: cfg.listen,
                    source,
                })?;
        let library = open_content(&cfg.root).await?;
        let agent = Agent::connect(&cfg.agent).await?;
        let service = agent
            .register_service(&cfg.name, &[SERVICE_CONTEXT])
            .await?;
        let events = service.events().await?;
        Ok(VideoServer {
            listener,
            library,
            service,
            events,
            cfg,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.cfg.listen)
    }

    /// The content being served.
    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }

    /// Serves until the agent goes away.
    pub async fn run(self) -> Result<(), ServerError> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes (then deregisters the service and
    /// returns `Ok`) or the agent goes away.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let VideoServer {
            listener,
            library,
            service,
            mut events,
            cfg,
        } = self;
        let shared = Arc::new(Shared {
            service: service.clone(),
            library,
            session: cfg.session.clone(),
            context_pad: cfg.context_pad,
            sessions: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(1),
        });
        let acceptor = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        tokio::pin!(shutdown);
        let result = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                ev = events.next() => match ev {
                    None => break Err(ServerError::AgentGone),
                    Some(Err(e)) => break Err(e.into()),
                    Some(Ok(ev)) => route(&shared, ev),
                },
            }
        };
        acceptor.abort();
        if result.is_ok()
            && let Err(e) = service.deregister().await
        {
            tracing::warn!(error = %e, "cannot deregister the service");
        }
        result
    }
}

/// Opens the content directory and hashes every file in it (on the
/// blocking pool).
pub async fn open_content(root: &std::path::Path) -> Result<Arc<Library>, ServerError> {
    let err = |source| ServerError::Content {
        path: root.to_path_buf(),
        source,
    };
    let library = Library::open(root).map_err(err)?;
    let t = Instant::now();
    let lib = Arc::clone(&library);
    let (files, octets) = tokio::task::spawn_blocking(move || lib.scan())
        .await
        .map_err(|e| err(std::io::Error::other(e)))?
        .map_err(err)?;
    tracing::info!(
        root = %library.root().display(),
        files,
        octets,
        ms = t.elapsed().as_millis() as u64,
        "content indexed"
    );
    Ok(library)
}

/// Serves `listener` without an agent: the same HTTP service, nothing moves.
pub async fn serve_standalone(listener: TcpListener, library: Arc<Library>, cfg: SessionConfig) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let session = Session::new(stream, Arc::clone(&library), cfg.clone());
                tokio::spawn(serve_unmanaged(session));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The UE identity of a client: `ue-<its IP>`.
pub fn ue_name(peer: SocketAddr) -> String {
    format!("ue-{}", peer.ip().to_canonical())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(new_ue(Arc::clone(&shared), stream, ue_name(peer)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn new_ue(shared: Arc<Shared>, stream: TcpStream, ue: String) {
    let session = Session::new(stream, Arc::clone(&shared.library), shared.session.clone());
    let Some((generation, mut rx)) = shared.claim(&ue) else {
        tracing::warn!(%ue, "a second connection from this UE: serving it, but it will not follow the UE");
        serve_unmanaged(session).await;
        return;
    };
    let registered = {
        // Registration hands the agent a duplicate of the socket.
        let stream = session.stream();
        shared.service.register_user(&ue, &[(0, stream)]).await
    };
    if let Err(e) = registered {
        tracing::warn!(%ue, error = %e, "cannot register the UE: serving it without mobility");
        shared.release(&ue, generation, &mut rx);
        serve_unmanaged(session).await;
        return;
    }
    tracing::info!(%ue, "UE connected");
    drive(shared, ue, generation, rx, session).await;
}

fn route(shared: &Arc<Shared>, ev: Event) {
    match ev {
        Event::ExportRequested(req) => {
            let ue = req.ue.clone();
            tracing::debug!(%ue, migration = req.migration_id, target_cell = req.target_cell, "export requested");
            if let Err(Control::Export(req)) =
                shared.to_session(&ue, Control::Export(Box::new(req)))
            {
                refuse_later(*req, "no session for this UE");
            }
        }
        Event::ContextArrived(arrival) => {
            tokio::spawn(import(Arc::clone(shared), arrival));
        }
        Event::Completed {
            ue,
            outgoing: true,
            migration_id,
        } => {
            tracing::debug!(%ue, migration = migration_id, "UE left");
            let _ = shared.to_session(&ue, Control::Gone);
        }
        Event::Completed {
            ue,
            outgoing: false,
            migration_id,
        } => tracing::debug!(%ue, migration = migration_id, "UE arrived"),
        Event::RolledBack {
            ue,
            reason,
            migration_id,
        } => {
            tracing::info!(%ue, migration = migration_id, %reason, "migration rolled back");
            let _ = shared.to_session(&ue, Control::Resume);
        }
        Event::Failed {
            ue,
            reason,
            migration_id,
        } => {
            tracing::info!(%ue, migration = migration_id, %reason, "migration failed; nothing changed")
        }
    }
}

/// Takes in an arriving UE: checks its context, accepts it, and resumes
/// its connection.
async fn import(shared: Arc<Shared>, arrival: Arrival) {
    let ue = arrival.ue().to_owned();
    let t0 = Instant::now();
    let ctx = match SessionContext::decode(arrival.context()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%ue, error = %e, "refusing an arrival: bad context");
            let _ = arrival
                .refuse(&format!("context does not decode: {e}"))
                .await;
            return;
        }
    };
    let resumable =
        match Session::prepare_resume(ctx, &shared.library, shared.session.clone()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%ue, error = %e, "refusing an arrival");
                let _ = arrival.refuse(&e.to_string()).await;
                return;
            }
        };
    let Some((generation, mut rx)) = shared.claim(&ue) else {
        let _ = arrival
            .refuse("this eNBC already serves a connection of this UE")
            .await;
        return;
    };
    let checked = t0.elapsed();
    match arrival.take().await {
        Ok((_, mut conns)) => {
            let Some(pos) = conns
                .iter()
                .position(|(id, _)| *id == 0)
                .or((!conns.is_empty()).then_some(0))
            else {
                tracing::warn!(%ue, "arrived without its connection");
                shared.release(&ue, generation, &mut rx);
                return;
            };
            let (_, stream) = conns.swap_remove(pos);
            let ctx = resumable.context();
            let resp = ctx.response.as_ref();
            tracing::info!(
                %ue,
                file = resp.and_then(|r| r.body.as_ref()).map_or("-", |b| b.file.as_str()),
                offset = resp.and_then(|r| r.body.as_ref()).map_or(0, |b| b.offset()),
                pending_input = ctx.pending_input.len(),
                check_us = checked.as_micros() as u64,
                live_us = t0.elapsed().as_micros() as u64,
                "UE arrived; resuming its connection"
            );
            let session = resumable.attach(stream);
            drive(shared, ue, generation, rx, session).await;
        }
        Err(e) => {
            tracing::warn!(%ue, error = %e, "arrival abandoned");
            shared.release(&ue, generation, &mut rx);
        }
    }
}

enum End {
    Moved,
    Ended(Option<std::io::Error>),
}

/// Runs one registered UE's session through exports, rollbacks and its end.
async fn drive(
    shared: Arc<Shared>,
    ue: String,
    generation: u64,
    mut rx: mpsc::UnboundedReceiver<ExportControl>,
    mut session: Session,
) {
    let end = 'session: loop {
        match session.run(&mut rx).await {
            Stop::Export(req) => {
                if let Err(reason) = session.exportable() {
                    tracing::info!(%ue, reason, "export refused");
                    refuse_later(*req, reason);
                    continue;
                }
                let t = Instant::now();
                let ctx = session.context();
                let bytes = ctx.encode_padded(shared.context_pad);
                let octets = bytes.len();
                let body = ctx.response.as_ref().and_then(|r| r.body.as_ref());
                match req.export(bytes).await {
                    Ok(()) => tracing::info!(
                        %ue,
                        octets,
                        file = body.map_or("-", |b| b.file.as_str()),
                        offset = body.map_or(0, |b| b.offset()),
                        us = t.elapsed().as_micros() as u64,
                        "context exported"
                    ),
                    // The migration was abandoned meanwhile; its verdict
                    // (a rollback) follows.
                    Err(e) => tracing::warn!(%ue, error = %e, "export not taken"),
                }
                // Frozen until the verdict.
                loop {
                    match rx.recv().await {
                        Some(Control::Resume) => continue 'session,
                        Some(Control::Gone) | None => break 'session End::Moved,
                        Some(Control::Export(again)) => {
                            refuse_later(*again, "already exporting this UE");
                        }
                    }
                }
            }
            Stop::Gone => break End::Moved,
            Stop::Closed => break End::Ended(None),
            Stop::Failed(e) => break End::Ended(Some(e)),
        }
    };
    match end {
        End::Moved => {
            // The socket is frozen: closing it sends nothing. The agent has
            // already forgotten the UE here.
            tracing::info!(%ue, served = session.requests_served(), "UE moved away");
            shared.release(&ue, generation, &mut rx);
            drop(session);
        }
        End::Ended(err) => {
            match &err {
                None => {
                    tracing::info!(%ue, served = session.requests_served(), "connection closed")
                }
                Some(e) => {
                    tracing::info!(%ue, served = session.requests_served(), error = %e, "connection failed")
                }
            }
            // Deregister while the UE is still claimed, so that a new
            // connection of the same UE cannot register in between and be
            // deregistered by us.
            deregister(&shared.service, &ue, &mut rx).await;
            shared.release(&ue, generation, &mut rx);
            drop(session);
        }
    }
}

/// Deregisters a UE whose connection ended. While a migration of it is
/// under way the agent refuses; the export it asks for is refused here, and
/// deregistration tried again once the migration is rolled back.
async fn deregister(service: &Service, ue: &str, rx: &mut mpsc::UnboundedReceiver<ExportControl>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match service.deregister_user(ue).await {
            Ok(()) => return,
            Err(edgemob_sdk::Error::Rpc(s)) if s.code() == tonic::Code::FailedPrecondition => {}
            Err(e) => {
                tracing::debug!(%ue, error = %e, "deregistration");
                return;
            }
        }
        if Instant::now() >= deadline {
            tracing::warn!(%ue, "could not deregister the UE");
            return;
        }
        let retry = tokio::time::sleep(Duration::from_millis(20));
        tokio::pin!(retry);
        loop {
            tokio::select! {
                () = &mut retry => break,
                c = rx.recv() => match c {
                    Some(Control::Export(req)) => refuse_later(*req, "the UE's connection has ended"),
                    Some(_) => {}
                    None => break,
                },
            }
        }
    }
}

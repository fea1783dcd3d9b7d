//! One eNBC's agent: the "common controller" of the paper that composes
//! MIH signalling, CXTP context transfer and TCP session migration, and
//! serves the service and operator APIs.

use crate::config::Config;
use crate::cpu_latency::{self, CpuLatency};
use crate::cxtp_link::CxtpLinks;
use crate::fdserver::FdServer;
use crate::history::{History, Record};
use crate::metrics::Metrics;
use crate::migration::table::TargetEvent;
use crate::mih_link::{MihLink, mihf_id};
use crate::registry::Registry;
use edgemob_mih::MihfId;
use edgemob_session_migrate::{FourTuple, LockError, NetLock};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UnixListener};

/// What can stop an agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "edgemob agent needs CAP_NET_ADMIN in its network namespace (TCP_REPAIR and nf_tables): run it as root or grant the capability ({0})"
    )]
    Privilege(LockError),
    #[error("cannot set up the network lock: {0}")]
    Lock(LockError),
    #[error("cannot listen on {what} {addr}: {source}")]
    Listen {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the migration log: {0}")]
    History(std::io::Error),
    #[error(transparent)]
    AlreadyRunning(#[from] crate::instance::InstanceError),
}

/// Shared state of one agent.
pub struct Node {
    pub cfg: Config,
    pub id: MihfId,
    pub reg: Mutex<Registry>,
    pub fds: Arc<FdServer>,
    pub mih: Arc<MihLink>,
    pub cxtp: Arc<CxtpLinks>,
    pub history: History,
    pub metrics: Arc<Metrics>,
    pub lock: Mutex<NetLock>,
    pub started: Instant,
    /// Outgoing migrations allowed to run at once.
    pub migration_slots: tokio::sync::Semaphore,
    /// Keeps idle CPUs polling around migrations (`migration.cpu_latency`).
    pub cpu: CpuLatency,
    /// This agent's hold on its namespace and API path.
    _instance: crate::instance::Instance,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A started agent and the addresses it actually listens on.
#[derive(Debug)]
pub struct Running {
    pub node: Arc<Node>,
    pub mih: SocketAddr,
    pub cxtp: SocketAddr,
    pub api: PathBuf,
    pub metrics: Option<SocketAddr>,
    pub operator: Option<SocketAddr>,
}

impl Node {
    /// Binds every socket and starts every task of the agent.
    pub async fn start(cfg: Config) -> Result<Running, StartError> {
        // Before anything of another instance can be touched.
        let instance = crate::instance::Instance::acquire(&cfg.listen.api)?;
        // The only agent of this namespace owns its lock: entries a dead
        // instance left would black-hole connections nobody is moving.
        let (lock, left_behind) = NetLock::take_over().map_err(|e| {
            if matches!(e, LockError::NeedsCapNetAdmin) {
                StartError::Privilege(e)
            } else {
                StartError::Lock(e)
            }
        })?;
        if left_behind {
            tracing::warn!(
                "removed the network lock an earlier agent of this namespace left behind"
            );
        }
        let metrics = Arc::new(Metrics::new());
        let history = History::new(cfg.history.keep, cfg.history.jsonl.as_deref())
            .map_err(StartError::History)?;
        let listen_err = |what: &'static str, addr: String| {
            move |source| StartError::Listen { what, addr, source }
        };

        let mih = MihLink::bind(&cfg, Arc::clone(&metrics))
            .await
            .map_err(listen_err("MIH (UDP)", cfg.listen.mih.to_string()))?;
        let mih_addr = mih
            .local_addr()
            .map_err(listen_err("MIH (UDP)", cfg.listen.mih.to_string()))?;
        let mih_tcp = TcpListener::bind(mih_addr)
            .await
            .map_err(listen_err("MIH (TCP)", mih_addr.to_string()))?;
        let cxtp_listener = TcpListener::bind(cfg.listen.cxtp)
            .await
            .map_err(listen_err("CXTP", cfg.listen.cxtp.to_string()))?;
        let cxtp_addr = cxtp_listener
            .local_addr()
            .map_err(listen_err("CXTP", cfg.listen.cxtp.to_string()))?;
        let api_path = cfg.listen.api.clone();
        if let Some(dir) = api_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let fd_path = edgemob_paas_api::descriptor_channel_path(&api_path);
        let fds = FdServer::bind(&fd_path, cfg.api_mode()).map_err(listen_err(
            "descriptor channel",
            fd_path.display().to_string(),
        ))?;
        let _ = std::fs::remove_file(&api_path);
        let api_listener = UnixListener::bind(&api_path)
            .map_err(listen_err("API", api_path.display().to_string()))?;
        let link_path = edgemob_paas_api::link_path(&api_path);
        let _ = std::fs::remove_file(&link_path);
        let link_listener = UnixListener::bind(&link_path)
            .map_err(listen_err("service link", link_path.display().to_string()))?;
        for (what, path) in [("API", &api_path), ("service link", &link_path)] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(cfg.api_mode()))
                .map_err(listen_err(what, path.display().to_string()))?;
        }
        let metrics_listener = match cfg.listen.metrics {
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .map_err(listen_err("metrics", a.to_string()))?,
            ),
            None => None,
        };
        let operator_listener = match cfg.listen.operator {
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .map_err(listen_err("operator API", a.to_string()))?,
            ),
            None => None,
        };

        let cxtp = CxtpLinks::new(&cfg, Arc::clone(&metrics));
        let cfg_max_concurrent = cfg.migration.max_concurrent;
        let cpu = open_cpu_latency(&cfg, &metrics);
        let node = Arc::new(Node {
            id: mihf_id(&cfg.mihf_id),
            cfg,
            reg: Mutex::new(Registry::default()),
            fds: Arc::clone(&fds),
            mih: Arc::clone(&mih),
            cxtp: Arc::clone(&cxtp),
            history,
            metrics: Arc::clone(&metrics),
            lock: Mutex::new(lock),
            started: Instant::now(),
            migration_slots: tokio::sync::Semaphore::new(cfg_max_concurrent),
            cpu,
            _instance: instance,
        });

        let weak = Arc::downgrade(&node);
        mih.set_handler(move |ind| {
            if let Some(n) = weak.upgrade() {
                n.on_indication(ind);
            }
        });
        let (wa, wc) = (Arc::downgrade(&node), Arc::downgrade(&node));
        cxtp.set_handlers(
            move |arrived| {
                if let Some(n) = wa.upgrade() {
                    crate::migration::target::receive(n, arrived);
                }
            },
            move |peer, mn| {
                if let Some(n) = wc.upgrade() {
                    n.on_cancel(&peer, mn);
                }
            },
        );
        tokio::spawn(Arc::clone(&mih).run(mih_tcp));
        tokio::spawn(Arc::clone(&cxtp).run(cxtp_listener));
        let wf = Arc::downgrade(&node);
        tokio::spawn(Arc::clone(&fds).run(move |channel| {
            if let Some(n) = wf.upgrade() {
                n.on_channel_closed(channel);
            }
        }));
        tokio::spawn(crate::api::serve_unix(Arc::clone(&node), api_listener));
        tokio::spawn(crate::api::serve_link(
            crate::api::ServiceApi(Arc::clone(&node)),
            link_listener,
        ));
        let operator = match operator_listener {
            Some(l) => {
                let a = l.local_addr().ok();
                tokio::spawn(crate::api::serve_operator_tcp(Arc::clone(&node), l));
                a
            }
            None => None,
        };
        let metrics_addr = match metrics_listener {
            Some(l) => {
                let a = l.local_addr().ok();
                tokio::spawn(crate::api::serve_metrics(Arc::clone(&node), l));
                a
            }
            None => None,
        };
        tokio::spawn(janitor(Arc::downgrade(&node)));
        tracing::info!(
            mihf_id = %node.id, mih = %mih_addr, cxtp = %cxtp_addr, api = %api_path.display(),
            "edgemob agent started"
        );
        Ok(Running {
            node,
            mih: mih_addr,
            cxtp: cxtp_addr,
            api: api_path,
            metrics: metrics_addr,
            operator,
        })
    }

    /// Stores a finished migration's record and wakes those waiting on it.
    pub fn finish(&self, r: Record) {
        let r = self.publish(r);
        self.log(r);
    }

    /// The first half of [`finish`](Self::finish): the record becomes
    /// visible (metrics, MigrationHistory).
    pub fn publish(&self, r: Record) -> Record {
        // The UE's path switch and its first resumed data follow.
        self.cpu.kick();
        self.metrics.record(&r);
        self.history.remember(r.clone());
        r
    }

    /// The second half of [`finish`](Self::finish): the log line, the
    /// JSON-lines history and the gauges, which can come a moment later.
    pub fn log(&self, r: Record) {
        tracing::info!(
            migration = r.migration_id, ue = %r.ue, direction = ?r.direction, outcome = ?r.outcome,
            total_us = r.phases.total_ns / 1000, reason = %r.reason, "migration finished"
        );
        self.history.append_log(&r);
        self.update_gauges();
    }

    pub fn update_gauges(&self) {
        let reg = self.reg.lock().expect("not poisoned");
        self.metrics.users.set(reg.users.len() as i64);
        self.metrics.services.set(reg.services.len() as i64);
    }

    /// Locks 4-tuples: their packets are dropped, never answered.
    pub fn lock_tuples(&self, tuples: &[FourTuple]) -> Result<(), LockError> {
        if tuples.is_empty() {
            return Ok(());
        }
        self.lock.lock().expect("not poisoned").lock(tuples)
    }

    pub fn unlock_tuples(&self, tuples: &[FourTuple]) {
        if tuples.is_empty() {
            return;
        }
        if let Err(e) = self.lock.lock().expect("not poisoned").unlock(tuples) {
            tracing::error!(error = %e, "cannot remove network lock entries");
        }
    }

    /// A service process went away: forget its services and their users;
    /// migrations waiting on them hear it at once.
    fn on_channel_closed(&self, channel: u64) {
        let mut reg = self.reg.lock().expect("not poisoned");
        for h in reg.services_on_channel(channel) {
            let name = reg
                .services
                .get(&h)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            let dropped = reg.remove_service(h);
            reg.migrations.service_gone(h);
            tracing::info!(service = %name, connections = dropped, "service process gone; service deregistered");
        }
        drop(reg);
        self.update_gauges();
    }

    /// The source cancelled a transfer to us (CTC).
    fn on_cancel(&self, peer: &str, mn: std::net::IpAddr) {
        let reg = self.reg.lock().expect("not poisoned");
        if let Some((ue, i)) = reg.migrations.incoming_from(peer, mn) {
            tracing::info!(%peer, %ue, "source cancelled the transfer");
            let _ = i.events.send(TargetEvent::Cancelled);
        }
    }

    /// The UE's path reached this eNBC (CompleteHandover). Returns the
    /// incoming migration it applies to, or 0 if none was accepted yet (the
    /// switch is kept for one that comes soon).
    pub fn path_switched(&self, ue: &str) -> u64 {
        let mut reg = self.reg.lock().expect("not poisoned");
        if let Some(i) = reg.migrations.get(ue).and_then(|m| m.incoming.as_ref()) {
            let _ = i.events.send(TargetEvent::PathSwitched);
            return i.id;
        }
        reg.migrations.entry(ue).switched_early = Some(Instant::now());
        0
    }
}

/// Forgets path-switch reports nobody claimed.
async fn janitor(node: std::sync::Weak<Node>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let Some(n) = node.upgrade() else { return };
        n.reg
            .lock()
            .expect("not poisoned")
            .migrations
            .expire_switched_early(Instant::now());
    }
}

/// The agent's CPU-latency request; a missing device or privilege costs
/// speed, not service, so it is a warning.
fn open_cpu_latency(cfg: &Config, metrics: &Metrics) -> CpuLatency {
    let mode = cfg.migration.cpu_latency;
    let linger = Duration::from_millis(cfg.migration.cpu_latency_linger_ms);
    let device = std::path::Path::new(cpu_latency::DEVICE);
    match CpuLatency::open(mode, linger, device, metrics.cpu_latency_holds.clone()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(
                device = cpu_latency::DEVICE,
                error = %e,
                "cannot ask the kernel to keep idle CPUs polling during migrations; \
                 each wake-up from an idle CPU will cost more (set migration.cpu_latency = \"off\" to silence this)"
            );
            CpuLatency::default()
        }
    }
}

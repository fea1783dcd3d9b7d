//! A cluster of real eNBCs on one machine: the testbed's network namespaces
//! (`ue`, `sw`, `enbc1` … `enbcN`), one `edgemob agent` process in each eNBC
//! (eNBC *i*, counted from 0, serves cell *i + 1* and knows every other eNBC
//! as a peer) and whatever services the caller starts next to them.
//!
//! Used by `edgemob-lab demo`, the scale experiment and end-to-end tests.
//! Everything is removed on drop — processes, namespaces, sockets — unless
//! [`Cluster::keep`] is called.

use edgemob_paas_api::v1 as pb;
use edgemob_testbed::{Family, Node, Testbed, TestbedOptions};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub type Operator = pb::operator_client::OperatorClient<Channel>;

/// What can go wrong building or driving a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("network namespaces: {0}")]
    Testbed(#[from] edgemob_testbed::TestbedError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("agent of enbc{n} did not come up within {secs} s; its log:\n{log}")]
    AgentDown { n: usize, secs: u64, log: String },
    #[error("service on enbc{n} did not start: {why}; its log:\n{log}")]
    ServiceDown { n: usize, why: String, log: String },
    #[error("agent of enbc{n}: {0}", n = .1)]
    Rpc(String, usize),
}

/// Agent timers for many handovers at once: generous service timers, and
/// targets that wait for the path switch rather than activate on their own.
pub const BURST_TIMERS: &str = "export_ms = 30000\nimport_ms = 30000\ncxtp_transfer_ms = 60000\nmih_response_ms = 10000\ncommit_hold_ms = 120000\nactivate_ms = 120000\n";

/// How to build a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of eNBCs (at least 2).
    pub enbcs: usize,
    /// UE addresses in the `ue` namespace (one per simulated UE).
    pub ue_addrs: usize,
    /// The `edgemob` binary.
    pub edgemob: PathBuf,
    /// Where configs, logs, sockets and histories go.
    pub dir: PathBuf,
    /// Extra lines for the agents' `[timers]` table.
    pub timers: String,
    /// Have the agents keep the CRIU image files of moved connections here.
    pub save_images: Option<PathBuf>,
    /// `RUST_LOG` of the agents (default: warn).
    pub agent_log: String,
}

impl ClusterOptions {
    pub fn new(edgemob: PathBuf, dir: PathBuf) -> Self {
        ClusterOptions {
            enbcs: 2,
            ue_addrs: 1,
            edgemob,
            dir,
            timers: String::new(),
            save_images: None,
            agent_log: "warn".into(),
        }
    }
}

/// Running eNBCs.
#[derive(Debug)]
pub struct Cluster {
    pub tb: Testbed,
    pub opts: ClusterOptions,
    agents: Vec<Option<Child>>,
    services: Vec<(usize, Child)>,
    kept: bool,
    /// One gRPC connection per agent, reused: opening one costs a Unix
    /// connect and an HTTP/2 handshake, which would show in every handover.
    clients: std::sync::Mutex<std::collections::HashMap<usize, Operator>>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

impl Cluster {
    /// Builds the namespaces and starts one agent per eNBC; returns once
    /// every agent answers and is connected to every peer.
    pub async fn start(opts: ClusterOptions) -> Result<Cluster, ClusterError> {
        let tb = Testbed::new(TestbedOptions {
            enbcs: opts.enbcs.max(2),
            ue_addrs: opts.ue_addrs.max(1),
            ..TestbedOptions::default()
        })?;
        std::fs::create_dir_all(&opts.dir).map_err(io(format!("create {}", opts.dir.display())))?;
        let mut c = Cluster {
            tb,
            opts,
            agents: Vec::new(),
            services: Vec::new(),
            kept: false,
            clients: std::sync::Mutex::new(std::collections::HashMap::new()),
        };
        for i in 0..c.enbcs() {
            let child = c.spawn_agent(i)?;
            c.agents.push(Some(child));
        }
        for i in 0..c.enbcs() {
            c.wait_agent(i, Duration::from_secs(30)).await?;
        }
        Ok(c)
    }

    pub fn enbcs(&self) -> usize {
        self.opts.enbcs.max(2)
    }

    /// The testbed node of eNBC `i` (0-based).
    pub fn node(&self, i: usize) -> Node {
        Node::enbc(i + 1)
    }

    /// The cell eNBC `i` serves.
    pub fn cell(i: usize) -> u32 {
        i as u32 + 1
    }

    /// eNBC `i`'s agent API socket.
    pub fn api(&self, i: usize) -> PathBuf {
        self.opts.dir.join(format!("enbc{}.sock", i + 1))
    }

    /// The `k`-th UE address (IPv4).
    pub fn ue_addr(&self, k: usize) -> IpAddr {
        self.tb.ue_addr(k, Family::V4)
    }

    /// The service address every eNBC owns.
    pub fn service_addr(&self) -> IpAddr {
        self.tb.service_addr(Family::V4)
    }

    fn config(&self, i: usize) -> String {
        let me = self.tb.addr(self.node(i), Family::V4);
        let mut peers = String::new();
        for j in (0..self.enbcs()).filter(|&j| j != i) {
            let addr = self.tb.addr(self.node(j), Family::V4);
            peers += &format!(
                "[[peers]]\nmihf_id = \"enbc{n}@edgemob\"\nmih = \"{addr}:4551\"\ncxtp = \"{addr}:5091\"\ncells = [{c}]\n",
                n = j + 1,
                c = Self::cell(j)
            );
        }
        let images = self
            .opts
            .save_images
            .as_ref()
            .map(|d| {
                format!(
                    "images = \"{}\"\n",
                    d.join(format!("enbc{}", i + 1)).display()
                )
            })
            .unwrap_or_default();
        format!(
            "mihf_id = \"enbc{n}@edgemob\"\ncells = [{cell}]\n\n[listen]\nmih = \"{me}:4551\"\ncxtp = \"{me}:5091\"\napi = \"{api}\"\nmetrics = \"127.0.0.1:9551\"\n\n{peers}\n[history]\njsonl = \"{dir}/enbc{n}-history.jsonl\"\n{images}\n[timers]\n{timers}\n",
            n = i + 1,
            cell = Self::cell(i),
            api = self.api(i).display(),
            dir = self.opts.dir.display(),
            timers = self.opts.timers,
        )
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.opts.dir.join(format!("enbc{}-agent.log", i + 1))
    }

    fn spawn_agent(&self, i: usize) -> Result<Child, ClusterError> {
        let cfg = self.opts.dir.join(format!("enbc{}.toml", i + 1));
        std::fs::write(&cfg, self.config(i)).map_err(io(format!("write {}", cfg.display())))?;
        let log = std::fs::File::create(self.log_path(i)).map_err(io("create agent log"))?;
        let mut cmd = Command::new(&self.opts.edgemob);
        cmd.args(["agent", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", &self.opts.agent_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        Ok(self.tb.spawn(self.node(i), cmd)?)
    }

    async fn wait_agent(&self, i: usize, within: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(mut c) = self.operator(i).await
                && let Ok(h) = c.health(pb::HealthRequest {}).await
                && h.into_inner().peers.iter().all(|p| p.cxtp_connected)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::AgentDown {
                    n: i + 1,
                    secs: within.as_secs(),
                    log: self.log(i),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The agent's log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// A client of eNBC `i`'s Operator service (cached).
    pub async fn operator(&self, i: usize) -> Result<Operator, ClusterError> {
        if let Some(c) = self.clients.lock().expect("not poisoned").get(&i) {
            return Ok(c.clone());
        }
        let c = edgemob_sdk::operator_client(&self.api(i).display().to_string())
            .await
            .map_err(|e| ClusterError::Rpc(e.to_string(), i + 1))?;
        self.clients
            .lock()
            .expect("not poisoned")
            .insert(i, c.clone());
        Ok(c)
    }

    /// A cluster for many handovers at once ([`BURST_TIMERS`]), every
    /// eNBC's video server serving the same `content` folder.
    pub async fn start_for_bursts(
        mut opts: ClusterOptions,
        video_server: &Path,
        content: &Path,
        bitrate: u64,
        context_pad: usize,
    ) -> Result<Cluster, ClusterError> {
        opts.timers = BURST_TIMERS.into();
        let mut cluster = Cluster::start(opts).await?;
        cluster.spawn_video_servers(
            video_server,
            |_| content.to_path_buf(),
            bitrate,
            context_pad,
            None,
        )?;
        Ok(cluster)
    }

    /// Starts the video server in every eNBC, serving `root(i)` at the
    /// service address, paced at `bitrate`, with `context_pad` octets of
    /// application context per UE and `log` as its log level (if any).
    pub fn spawn_video_servers(
        &mut self,
        binary: &Path,
        root: impl Fn(usize) -> PathBuf,
        bitrate: u64,
        context_pad: usize,
        log: Option<&str>,
    ) -> Result<(), ClusterError> {
        for i in 0..self.enbcs() {
            let mut cmd = Command::new(binary);
            cmd.arg("--agent")
                .arg(self.api(i))
                .arg("--listen")
                .arg(format!(
                    "{}:{}",
                    self.service_addr(),
                    crate::demo::VIDEO_PORT
                ))
                .arg("--root")
                .arg(root(i))
                .arg("--bitrate")
                .arg(bitrate.to_string())
                .arg("--context-pad")
                .arg(context_pad.to_string());
            if let Some(level) = log {
                cmd.arg("--log").arg(level);
            }
            self.spawn_service(i, cmd, &format!("enbc{}-video-server.log", i + 1))?;
        }
        Ok(())
    }

    /// Connects one TCP socket from each of the first `n` UE addresses to
    /// the video server, inside the UE's namespace.
    pub fn connect_ues(&self, n: usize) -> Result<Vec<std::net::TcpStream>, ClusterError> {
        let service = std::net::SocketAddr::new(self.service_addr(), crate::demo::VIDEO_PORT);
        let addrs: Vec<IpAddr> = (0..n).map(|k| self.ue_addr(k)).collect();
        self.tb
            .enter(
                Node::Ue,
                move || -> std::io::Result<Vec<std::net::TcpStream>> {
                    addrs
                        .iter()
                        .map(|a| {
                            let s = socket2::Socket::new(
                                socket2::Domain::for_address(service),
                                socket2::Type::STREAM,
                                None,
                            )?;
                            s.bind(&std::net::SocketAddr::new(*a, 0).into())?;
                            s.connect(&service.into())?;
                            Ok(s.into())
                        })
                        .collect()
                },
            )?
            .map_err(io("connect the UEs to the video server"))
    }

    /// Starts a service inside eNBC `i` and waits for it to print `ready`
    /// on its standard output. Its standard error goes to `<dir>/<name>`.
    pub fn spawn_service(
        &mut self,
        i: usize,
        mut cmd: Command,
        log_name: &str,
    ) -> Result<(), ClusterError> {
        let log_path = self.opts.dir.join(log_name);
        let log = std::fs::File::create(&log_path).map_err(io("create service log"))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        let mut child = self.tb.spawn(self.node(i), cmd)?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        if !matches!(read, Ok(n) if n > 0 && line.trim() == "ready") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ClusterError::ServiceDown {
                n: i + 1,
                why: format!("{read:?} {line:?}"),
                log: std::fs::read_to_string(&log_path).unwrap_or_default(),
            });
        }
        self.services.push((i, child));
        Ok(())
    }

    /// Hands `ue` over from eNBC `from` to eNBC `to` and waits for the record.
    pub async fn handover(
        &self,
        ue: &str,
        from: usize,
        to: usize,
    ) -> Result<pb::MigrationRecord, ClusterError> {
        let r = self
            .operator(from)
            .await?
            .trigger_handover(pb::TriggerHandoverRequest {
                ue: ue.to_owned(),
                source_cell: Self::cell(from),
                target_cell: Self::cell(to),
                wait: true,
            })
            .await
            .map_err(|s| ClusterError::Rpc(s.message().to_owned(), from + 1))?
            .into_inner();
        r.record
            .ok_or_else(|| ClusterError::Rpc("no record returned".into(), from + 1))
    }

    /// Tells eNBC `at` that `ue`'s path now reaches it.
    pub async fn complete(&self, ue: &str, at: usize) -> Result<u64, ClusterError> {
        Ok(self
            .operator(at)
            .await?
            .complete_handover(pb::CompleteHandoverRequest {
                ue: ue.to_owned(),
                cell: Self::cell(at),
            })
            .await
            .map_err(|s| ClusterError::Rpc(s.message().to_owned(), at + 1))?
            .into_inner()
            .migration_id)
    }

    /// Moves every UE's path to eNBC `to` (one rtnetlink message).
    pub fn switch_all(&self, to: usize) -> Result<(), ClusterError> {
        Ok(self.tb.switch_to(self.node(to))?)
    }

    /// Moves UE address `k`'s path to eNBC `to`.
    pub fn switch_ue(&self, k: usize, to: usize) -> Result<(), ClusterError> {
        if self.tb.ue_addr_count() == 1 {
            return self.switch_all(to);
        }
        Ok(self.tb.switch_ue_to(k, self.node(to))?)
    }

    pub async fn history(&self, i: usize) -> Result<Vec<pb::MigrationRecord>, ClusterError> {
        Ok(self
            .operator(i)
            .await?
            .migration_history(pb::MigrationHistoryRequest {
                limit: 0,
                ue: String::new(),
            })
            .await
            .map_err(|s| ClusterError::Rpc(s.message().to_owned(), i + 1))?
            .into_inner()
            .records)
    }

    pub async fn users(&self, i: usize) -> Result<Vec<pb::UserInfo>, ClusterError> {
        Ok(self
            .operator(i)
            .await?
            .list_users(pb::ListUsersRequest {})
            .await
            .map_err(|s| ClusterError::Rpc(s.message().to_owned(), i + 1))?
            .into_inner()
            .users)
    }

    /// The process ids of the running agents and services, every eNBC.
    pub fn pids(&self) -> Vec<u32> {
        let agents = self.agents.iter().flatten().map(Child::id);
        agents
            .chain(self.services.iter().map(|(_, c)| c.id()))
            .collect()
    }

    pub fn kill_agent(&mut self, i: usize) {
        self.clients.lock().expect("not poisoned").remove(&i);
        if let Some(mut c) = self.agents.get_mut(i).and_then(Option::take) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Leaves the namespaces and processes running for inspection; returns
    /// the namespace names. The next cluster built on this machine removes
    /// them once this process has exited.
    pub fn keep(&mut self) -> Vec<String> {
        self.kept = true;
        self.tb.keep()
    }

    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for (_, c) in self.services.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for i in 0..self.agents.len() {
            self.kill_agent(i);
        }
    }
}

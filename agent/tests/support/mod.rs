//! Two real agents and the toy service in network namespaces, and clients
//! in the UE's namespace that check every octet.
#![allow(dead_code)]

use edgemob_paas_api::v1 as pb;
use edgemob_testbed::{Node, Testbed, TestbedOptions};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const SERVICE_PORT: u16 = 7000;

/// The toy service's download generator (same as examples/toy_service.rs).
pub fn download_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

pub fn upload_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> 56) as u8
}

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01B3;

/// Waits for a state the test can only observe by asking (an agent's
/// ListUsers, MigrationHistory or metrics, the kernel's nft sets): nothing
/// pushes it to the test, so `probe` is polled every 10 ms. `probe` returns
/// the value once the state is reached, or what it saw instead; after
/// `within` the test fails with `what` and that last observation.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(seen) if Instant::now() >= deadline => {
                panic!("waited {within:?} for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Options of a cluster.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Run the toy service on enbc2 too.
    pub service_on_target: bool,
    /// Extra toy-service flags on enbc2.
    pub target_service_flags: Vec<String>,
    /// Extra toy-service flags on both eNBCs.
    pub service_flags: Vec<String>,
    pub download: u64,
    pub upload: u64,
    pub rate: u64,
    /// Extra UE addresses to add in the UE namespace (10.77.1.10 onwards).
    pub extra_ue_addrs: usize,
    /// Extra `[timers]` lines for both agents.
    pub timers: String,
    /// Application context size of each UE.
    pub context_bytes: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            service_on_target: true,
            target_service_flags: Vec::new(),
            service_flags: Vec::new(),
            download: 8 << 20,
            upload: 2 << 20,
            rate: 4_000_000,
            extra_ue_addrs: 0,
            timers: String::new(),
            context_bytes: 0,
        }
    }
}

pub struct Cluster {
    pub tb: Testbed,
    pub dir: PathBuf,
    pub agents: Vec<Option<Child>>,
    pub services: Vec<Child>,
    pub opts: Opts,
}

fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/debug")
        .join("examples")
}

pub fn enbc_addr(i: usize) -> Ipv4Addr {
    // testbed's link addresses: enbc1 on 10.77.2.0/24, enbc2 on 10.77.3.0/24
    Ipv4Addr::new(10, 77, 2 + i as u8, 2)
}

fn node(i: usize) -> Node {
    [Node::Enbc1, Node::Enbc2][i]
}

impl Cluster {
    pub async fn start(opts: Opts) -> Cluster {
        let tb = Testbed::new(TestbedOptions::default()).expect("testbed");
        let dir = std::env::temp_dir().join(format!(
            "edgemob-agent-test-{}-{}",
            std::process::id(),
            tb.ns(Node::Ue)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // The eNBCs reach each other through sw.
        for (me, other) in [(0usize, 1usize), (1, 0)] {
            ip(
                &tb.ns(node(me)),
                &format!(
                    "route replace 10.77.{}.0/24 via 10.77.{}.1",
                    2 + other,
                    2 + me
                ),
            );
        }
        if std::env::var("EDGEMOB_TEST_NO_SSAI").is_ok() {
            for n in [Node::Enbc1, Node::Enbc2] {
                tb.sysctl(n, "net.ipv4.tcp_slow_start_after_idle", "0")
                    .unwrap();
            }
        }
        for k in 0..opts.extra_ue_addrs {
            ip(
                &tb.ns(Node::Ue),
                &format!("addr add {}/24 dev eth0", extra_ue(k)),
            );
        }
        let mut c = Cluster {
            tb,
            dir,
            agents: Vec::new(),
            services: Vec::new(),
            opts,
        };
        for i in 0..2 {
            let child = c.spawn_agent(i);
            c.agents.push(Some(child));
        }
        for i in 0..2 {
            c.wait_agent(i).await;
        }
        c.spawn_service(0, &[]);
        if c.opts.service_on_target {
            let flags = c.opts.target_service_flags.clone();
            c.spawn_service(1, &flags.iter().map(String::as_str).collect::<Vec<_>>());
        }
        c
    }

    pub fn api(&self, i: usize) -> String {
        self.dir
            .join(format!("enbc{}.sock", i + 1))
            .display()
            .to_string()
    }

    fn config(&self, i: usize) -> String {
        let o = 1 - i;
        format!(
            r#"mihf_id = "enbc{n}@edgemob"
cells = [{n}]
[listen]
mih = "{me}:4551"
cxtp = "{me}:5091"
api = "{api}"
metrics = "127.0.0.1:9551"
[[peers]]
mihf_id = "enbc{on}@edgemob"
mih = "{other}:4551"
cxtp = "{other}:5091"
cells = [{on}]
[history]
jsonl = "{dir}/enbc{n}.jsonl"
[timers]
{timers}
"#,
            n = i + 1,
            on = o + 1,
            me = enbc_addr(i),
            other = enbc_addr(o),
            api = self.api(i),
            dir = self.dir.display(),
            timers = self.opts.timers,
        )
    }

    fn spawn_agent(&self, i: usize) -> Child {
        let cfg = self.dir.join(format!("enbc{}.toml", i + 1));
        std::fs::write(&cfg, self.config(i)).unwrap();
        let log = std::fs::File::create(self.dir.join(format!("agent{}.log", i + 1))).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgemob"));
        cmd.args(["agent", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log);
        if let Ok(level) = std::env::var("EDGEMOB_TEST_AGENT_LOG") {
            cmd.env("RUST_LOG", level);
        }
        self.tb.spawn(node(i), cmd).expect("start agent")
    }

    /// Waits until the agent answers and its CXTP link to the peer is up
    /// (polled: nothing pushes that to the test; Health says it).
    pub async fn wait_agent(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut c) = edgemob_sdk::operator_client(&self.api(i)).await
                && let Ok(h) = c.health(pb::HealthRequest {}).await
                && h.into_inner().peers.iter().all(|p| p.cxtp_connected)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "agent {} did not come up:\n{}",
                i + 1,
                self.log(i)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("agent{}.log", i + 1))).unwrap_or_default()
    }

    pub fn spawn_service(&mut self, i: usize, extra: &[&str]) {
        let mut cmd = Command::new(examples_dir().join("toy_service"));
        cmd.args(["--agent", &self.api(i)])
            .args(["--listen", &format!("10.77.0.1:{SERVICE_PORT}")])
            .args(["--download", &self.opts.download.to_string()])
            .args(["--upload", &self.opts.upload.to_string()])
            .args(["--rate", &self.opts.rate.to_string()])
            .args(["--context-bytes", &self.opts.context_bytes.to_string()])
            .args(&self.opts.service_flags)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.dir.join(format!("service{}.log", i + 1))).unwrap());
        let mut child = self.tb.spawn(node(i), cmd).expect("start toy service");
        let mut line = [0u8; 6];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut line)
            .unwrap_or_else(|e| panic!("toy service on enbc{} did not start: {e}", i + 1));
        assert_eq!(&line, b"ready\n");
        self.services.push(child);
    }

    /// Starts eNBC `i`'s agent again (after `kill_agent`) and waits until
    /// it is ready.
    pub async fn restart_agent(&mut self, i: usize) {
        assert!(self.agents[i].is_none(), "enbc{} still runs", i + 1);
        let child = self.spawn_agent(i);
        self.agents[i] = Some(child);
        self.wait_agent(i).await;
    }

    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut c) = self.agents[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn operator(
        &self,
        i: usize,
    ) -> pb::operator_client::OperatorClient<tonic::transport::Channel> {
        edgemob_sdk::operator_client(&self.api(i))
            .await
            .expect("operator client")
    }

    /// Triggers a handover of `ue` from enbc1 to enbc2 and waits for the record.
    pub async fn handover(&self, ue: &str) -> pb::MigrationRecord {
        self.handover_from(0, ue).await
    }

    /// Triggers the handover of `ue` from eNBC `from` (0 or 1) to the other
    /// one and waits for its record.
    pub async fn handover_from(&self, from: usize, ue: &str) -> pb::MigrationRecord {
        let r = self
            .operator(from)
            .await
            .trigger_handover(pb::TriggerHandoverRequest {
                ue: ue.into(),
                source_cell: from as u32 + 1,
                target_cell: 2 - from as u32,
                wait: true,
            })
            .await
            .expect("trigger")
            .into_inner();
        r.record.expect("a record when waiting")
    }

    /// A new UE downloading from enbc1 moves to enbc2 mid-download, and
    /// its download completes.
    pub async fn a_ue_moves_with_its_download(&self) {
        let client = self.client(None);
        let ue = client.ue();
        client.wait_for(self.opts.download / 4).await;
        let rec = self.handover(&ue).await;
        assert_eq!(rec.outcome, pb::Outcome::Completed as i32, "{}", rec.reason);
        self.switch_and_complete(std::slice::from_ref(&ue)).await;
        assert_eq!(client.finish().downloaded, self.opts.download);
    }

    /// The radio path switch: routes the UE to enbc2, then tells enbc2.
    pub async fn switch_and_complete(&self, ues: &[String]) {
        self.switch_and_complete_at(1, ues).await;
    }

    /// The radio path switch to eNBC `to` (0 or 1): routes the UEs there,
    /// then tells it.
    pub async fn switch_and_complete_at(&self, to: usize, ues: &[String]) {
        let node = if to == 0 { Node::Enbc1 } else { Node::Enbc2 };
        self.tb.switch_to(node).unwrap();
        let mut op = self.operator(to).await;
        for ue in ues {
            op.complete_handover(pb::CompleteHandoverRequest {
                ue: ue.clone(),
                cell: to as u32 + 1,
            })
            .await
            .expect("complete");
        }
    }

    pub async fn history(&self, i: usize) -> Vec<pb::MigrationRecord> {
        self.operator(i)
            .await
            .migration_history(pb::MigrationHistoryRequest {
                limit: 0,
                ue: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .records
    }

    pub async fn health(&self, i: usize) -> pb::HealthResponse {
        self.operator(i)
            .await
            .health(pb::HealthRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn users(&self, i: usize) -> Vec<pb::UserInfo> {
        self.operator(i)
            .await
            .list_users(pb::ListUsersRequest {})
            .await
            .unwrap()
            .into_inner()
            .users
    }

    /// Connects a client from the UE namespace (from `local`, if given).
    pub fn client(&self, local: Option<Ipv4Addr>) -> Client {
        let stream = self
            .tb
            .enter(Node::Ue, move || -> std::io::Result<TcpStream> {
                let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
                if let Some(l) = local {
                    s.bind(&SocketAddr::from((l, 0)).into())?;
                }
                s.connect(&SocketAddr::from(([10, 77, 0, 1], SERVICE_PORT)).into())?;
                Ok(s.into())
            })
            .unwrap()
            .expect("connect to the service");
        Client::run(stream, self.opts.download, self.opts.upload)
    }

    /// Fetches an agent's Prometheus text from inside its namespace.
    pub fn metrics(&self, i: usize) -> String {
        self.tb
            .enter(node(i), || -> std::io::Result<String> {
                let mut s = TcpStream::connect("127.0.0.1:9551")?;
                s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")?;
                let mut out = String::new();
                s.read_to_string(&mut out)?;
                Ok(out)
            })
            .unwrap()
            .expect("metrics")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.services.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for i in 0..self.agents.len() {
            self.kill_agent(i);
        }
        if std::thread::panicking() {
            for i in 0..2 {
                eprintln!("---- agent {} log ----\n{}", i + 1, self.log(i));
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The IPv4 4-tuples in eNBC `i`'s network lock, as `nft` lists them
/// (`addr . port . addr . port`, both directions of each connection).
pub fn locked4(tb: &Testbed, i: usize) -> String {
    let mut cmd = Command::new("nft");
    cmd.args(["list", "set", "inet", "edgemob_lock", "conns4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tb.spawn(node(i), cmd).unwrap().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft list set: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn extra_ue(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 1, 10 + k as u8)
}

pub fn ue_name(addr: IpAddr) -> String {
    format!("ue-{addr}")
}

fn ip(ns: &str, args: &str) {
    let st = Command::new("ip")
        .args(["-n", ns])
        .args(args.split_whitespace())
        .status()
        .expect("ip");
    assert!(st.success(), "ip -n {ns} {args}");
}

/// A UE-side client: uploads while downloading and checks every octet.
pub struct Client {
    /// Octets of the download received so far (closed when the client ends).
    received: watch::Receiver<u64>,
    pub local: SocketAddr,
    reader: std::thread::JoinHandle<Result<ClientReport, String>>,
}

#[derive(Debug)]
pub struct ClientReport {
    pub downloaded: u64,
    pub largest_gap: Duration,
}

impl Client {
    fn run(stream: TcpStream, download: u64, upload: u64) -> Client {
        let local = stream.local_addr().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (progress, received) = watch::channel(0u64);
        let mut w = stream.try_clone().unwrap();
        let writer = std::thread::spawn(move || -> Result<u64, String> {
            let mut hash = FNV_OFFSET;
            let mut sent = 0u64;
            let mut buf = vec![0u8; 8192];
            while sent < upload {
                let n = ((upload - sent) as usize).min(buf.len());
                for (i, b) in buf[..n].iter_mut().enumerate() {
                    *b = upload_byte(sent + i as u64);
                    hash = (hash ^ u64::from(*b)).wrapping_mul(FNV_PRIME);
                }
                w.write_all(&buf[..n])
                    .map_err(|e| format!("upload at {sent}: {e}"))?;
                sent += n as u64;
                // Pacing, not synchronisation: the upload keeps going
                // through the handovers rather than ending before them.
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(hash)
        });
        let reader = std::thread::spawn(move || -> Result<ClientReport, String> {
            let mut r = stream;
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0u64;
            let mut trailer = Vec::with_capacity(8);
            let mut last = Instant::now();
            let mut largest_gap = Duration::ZERO;
            while got < download || trailer.len() < 8 {
                let n = r
                    .read(&mut buf)
                    .map_err(|e| format!("download at {got}: {e}"))?;
                if n == 0 {
                    return Err(format!("connection closed after {got} octets"));
                }
                let now = Instant::now();
                largest_gap = largest_gap.max(now - last);
                last = now;
                for &b in &buf[..n] {
                    if got < download {
                        if b != download_byte(got) {
                            return Err(format!(
                                "octet {got} is {b:#04x}, expected {:#04x}",
                                download_byte(got)
                            ));
                        }
                        got += 1;
                    } else {
                        trailer.push(b);
                    }
                }
                progress.send_replace(got);
            }
            let hash = writer
                .join()
                .map_err(|_| "upload thread panicked".to_string())??;
            let theirs = u64::from_be_bytes(trailer[..8].try_into().unwrap());
            if theirs != hash {
                return Err(format!(
                    "server hashed the upload as {theirs:#x}, we sent {hash:#x}"
                ));
            }
            // Close only after the server's last octet: no RST either way.
            let _ = r.shutdown(std::net::Shutdown::Write);
            Ok(ClientReport {
                downloaded: got,
                largest_gap,
            })
        });
        Client {
            received,
            local,
            reader,
        }
    }

    pub fn ue(&self) -> String {
        ue_name(self.local.ip())
    }

    /// Octets of the download received so far.
    pub fn received(&self) -> u64 {
        *self.received.borrow()
    }

    /// Waits until at least `n` octets of the download arrived in all; fails
    /// if the client stops first or nothing gets there within 30 s.
    pub async fn wait_for(&self, n: u64) {
        let mut rx = self.received.clone();
        match tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|&got| got >= n)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => panic!("the client ended at {} octets, before {n}", self.received()),
            Err(_) => panic!(
                "client stalled at {} octets, waiting for {n}",
                self.received()
            ),
        }
    }

    pub fn finish(self) -> ClientReport {
        self.reader
            .join()
            .expect("client thread")
            .unwrap_or_else(|e| panic!("client failed: {e}"))
    }
}

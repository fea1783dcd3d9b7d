//! `edgemob-lab demo`: the paper's experiment on real sockets, real network
//! namespaces and an unmodified client.
//!
//! Two eNBCs run an agent and the video server each; `curl` in the UE's
//! namespace downloads a video-sized file paced at a video bitrate; at a
//! random moment of the download an X2 Handover Request ACK is fired at the
//! serving eNBC's agent; once the migration completes the UE's path is
//! switched to the other eNBC (make-before-break) and the target is told.
//! Each run checks the file's sha256 and reads a capture taken at the UE for
//! RST segments and the stall the client saw. Runs alternate direction
//! (enbc1 → enbc2, then back), like a UE moving between two cells.

use crate::cluster::{Cluster, ClusterError, ClusterOptions};
use crate::floor::Floor;
use crate::ns3::{Ns3Options, Schedule, TriggerProcess};
use crate::report::{self, Phases, RunRecord};
use edgemob_paas_api::v1 as pb;
use edgemob_testbed::Node;
use edgemob_testbed::pcap::TcpSegment;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The port the video server listens on (the service address is the same on
/// every eNBC).
pub const VIDEO_PORT: u16 = 80;

/// How the handover is triggered.
#[derive(Debug, Clone)]
pub enum TriggerSource {
    /// The demo sends the X2 Handover Request ACK (TriggerHandover) itself.
    X2,
    /// ns-3's LENA simulates the X2 handovers and its bridge triggers the
    /// migrations ([`crate::ns3`]).
    Ns3(Ns3Options),
    /// `edgemob-lab replay` of a handover trace's X2 handover starts
    /// triggers the migrations at the trace's times.
    Replay {
        trace: PathBuf,
        /// The binary whose `replay` runs it (`edgemob-lab`).
        replayer: PathBuf,
    },
}

impl TriggerSource {
    pub fn name(&self) -> &'static str {
        match self {
            TriggerSource::X2 => "X2 (direct)",
            TriggerSource::Ns3(_) => "ns-3 (LENA)",
            TriggerSource::Replay { .. } => "trace replay",
        }
    }
}

/// When a run's handover happens.
#[derive(Debug, Clone, Copy)]
enum Fire {
    /// The demo triggers it once the client has this many octets.
    AtOffset(u64),
    /// The simulator triggers it at `at`; the download starts `lead`
    /// earlier.
    Simulated { at: Instant, lead: Duration },
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub runs: usize,
    /// Size of the video file, octets.
    pub size: u64,
    /// Pace of the video server, bits per second.
    pub bitrate: u64,
    pub out: PathBuf,
    pub save_images: Option<PathBuf>,
    pub keep: bool,
    /// Application context each UE carries, octets (the paper's ~75 KB).
    pub context_bytes: usize,
    pub seed: u64,
    pub trigger: TriggerSource,
    /// The `edgemob` binary (agents).
    pub edgemob: PathBuf,
    /// The `edgemob-video-server` binary.
    pub video_server: PathBuf,
    pub progress: bool,
    pub agent_log: String,
    /// `--log` of the video servers.
    pub service_log: String,
    /// Attribute host noise in each handover's window (`--diagnose-host`):
    /// per-thread scheduler counters read just before each trigger and after
    /// its window ([`crate::contention`]), host steal, DAMON.
    pub diagnose_host: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "edgemob-lab demo needs root: it builds network namespaces and its agents use TCP_REPAIR (run it as root, e.g. with sudo)"
    )]
    NotRoot,
    #[error(
        "edgemob-lab demo needs `{0}` on the PATH (Debian package {1}; scripts/install-deps.sh installs it)"
    )]
    MissingTool(&'static str, &'static str),
    #[error("cannot find {what} at {path} (build it: cargo build --release --workspace)")]
    MissingBinary { what: &'static str, path: PathBuf },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("run {run}: {why}")]
    Run { run: usize, why: String },
    #[error("interrupted")]
    Interrupted,
    #[error("ns-3: {0}")]
    Ns3(String),
    #[error("report: {0}")]
    Report(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// Refuses early, with one clear line, what would fail later.
pub fn preflight(opts: &DemoOptions) -> Result<(), DemoError> {
    if !edgemob_testbed::is_root() {
        return Err(DemoError::NotRoot);
    }
    for (tool, pkg) in [("curl", "curl"), ("tcpdump", "tcpdump"), ("ip", "iproute2")] {
        if !on_path(tool) {
            return Err(DemoError::MissingTool(tool, pkg));
        }
    }
    if let TriggerSource::Ns3(n) = &opts.trigger {
        n.check()?;
    }
    for (what, path) in [
        ("the edgemob binary", &opts.edgemob),
        ("the video server", &opts.video_server),
    ] {
        if !path.is_file() {
            return Err(DemoError::MissingBinary {
                what,
                path: path.clone(),
            });
        }
    }
    Ok(())
}

/// Writes `size` octets of deterministic pseudo-random content (so a wrong
/// octet anywhere changes the sha256) and returns its sha256.
pub fn make_video(path: &Path, size: u64, seed: u64) -> Result<String, DemoError> {
    use std::io::Write;
    let f = std::fs::File::create(path).map_err(io(format!("create {}", path.display())))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut hash = Sha256::new();
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        w.write_all(&buf[..n]).map_err(io("write the video file"))?;
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    w.flush().map_err(io("write the video file"))?;
    Ok(hex(&hash.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256_file(path: &Path) -> Result<String, DemoError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(io(format!("open {}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io("read the download"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// A segment carrying data to `receiver` (a RST's payload is not data).
fn is_data_to(s: &TcpSegment, receiver: IpAddr) -> bool {
    s.dst.ip() == receiver && s.payload_len > 0 && !s.is_rst()
}

/// The largest gap between data segments arriving at `receiver` whose span
/// touches `[from, to]` — the stall the client saw around a migration.
pub fn stall_around(
    segments: &[TcpSegment],
    receiver: IpAddr,
    from: SystemTime,
    to: SystemTime,
) -> Duration {
    let data: Vec<SystemTime> = segments
        .iter()
        .filter(|s| is_data_to(s, receiver))
        .map(|s| s.at)
        .collect();
    data.windows(2)
        .filter(|w| w[1] >= from && w[0] <= to)
        .map(|w| w[1].duration_since(w[0]).unwrap_or_default())
        .max()
        .unwrap_or_default()
}

/// [`stall_around`] in a window as long as `[from, to]` that ends
/// [`report::BASELINE_GUARD_MS`] before `from`: what the client sees in
/// the same download without a migration. None when data was not flowing
/// to `receiver` for the whole window.
pub fn baseline_stall(
    segments: &[TcpSegment],
    receiver: IpAddr,
    from: SystemTime,
    to: SystemTime,
) -> Option<Duration> {
    let len = to.duration_since(from).ok()?;
    let end = from.checked_sub(Duration::from_millis(report::BASELINE_GUARD_MS))?;
    let start = end.checked_sub(len)?;
    let first_data = segments.iter().find(|s| is_data_to(s, receiver))?;
    if first_data.at > start {
        return None;
    }
    Some(stall_around(segments, receiver, start, end))
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

pub fn phases_of(r: &pb::MigrationRecord) -> Phases {
    let p = r.phases.unwrap_or_default();
    Phases {
        mih_commit_ms: ms(p.mih_commit_ns),
        app_data_ms: ms(p.app_data_ns),
        socket_data_ms: ms(p.socket_data_ns),
        cxtp_ms: ms(p.cxtp_ns),
        total_ms: ms(p.total_ns),
    }
}

pub fn outcome_name(o: i32) -> &'static str {
    match pb::Outcome::try_from(o).unwrap_or(pb::Outcome::Unspecified) {
        pb::Outcome::Completed => crate::report::OUTCOME_COMPLETED,
        pb::Outcome::RolledBack => "rolled back",
        pb::Outcome::Rejected => "rejected",
        pb::Outcome::Failed => "failed",
        pb::Outcome::InProgress | pb::Outcome::Unspecified => "unknown",
    }
}

/// What a demo produced.
#[derive(Debug)]
pub struct DemoOutput {
    pub runs: Vec<RunRecord>,
    /// Namespaces left in place (`--keep`).
    pub kept: Vec<String>,
}

/// Runs the demo; the caller turns the records into the report.
pub async fn run(opts: &DemoOptions) -> Result<DemoOutput, DemoError> {
    preflight(opts)?;
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(io(format!("create {}", out.display())))?;
    let work = out.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(io("create the work directory"))?;

    // Both eNBCs hold the same content, as in the paper.
    let content = work.join("content");
    std::fs::create_dir_all(&content).map_err(io("create the content directory"))?;
    let video = content.join("video.bin");
    let expected = make_video(&video, opts.size, opts.seed)?;
    for n in 1..=2 {
        let root = work.join(format!("enbc{n}-content"));
        std::fs::create_dir_all(&root).map_err(io("create an eNBC's content directory"))?;
        let copy = root.join("video.bin");
        if std::fs::hard_link(&video, &copy).is_err() {
            std::fs::copy(&video, &copy).map_err(io("copy the video"))?;
        }
    }

    let mut copts = ClusterOptions::new(opts.edgemob.clone(), work.join("cluster"));
    copts.save_images = opts.save_images.clone();
    copts.agent_log = opts.agent_log.clone();
    let mut cluster = Cluster::start(copts).await?;
    cluster.spawn_video_servers(
        &opts.video_server,
        |i| work.join(format!("enbc{}-content", i + 1)),
        opts.bitrate,
        opts.context_bytes,
        Some(&opts.service_log),
    )?;
    // The floor's sockets, on the addresses the agents use, and its warm
    // connection: opened once, before the runs.
    let floor = Floor::open(&cluster.tb, cluster.node(0), cluster.node(1))
        .map_err(io("open the floor's sockets between the eNBCs"))?;

    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new(opts.runs as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} run {pos}/{len} [{bar:30}] {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let mut runs = Vec::with_capacity(opts.runs);
    let mut serving = 0usize;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let download = Duration::from_secs_f64(opts.size as f64 * 8.0 / opts.bitrate.max(1) as f64);
    let apis = [cluster.api(0), cluster.api(1)];
    let scenario = crate::ns3::scenario_toml(&format!("ue-{}", cluster.ue_addr(0)), &apis);
    let (schedule, sim) = match &opts.trigger {
        TriggerSource::X2 => (Schedule::for_download(0, download), None),
        TriggerSource::Ns3(n) => {
            if let Some(b) = &bar {
                b.set_message("starting ns-3 (importing it takes about 20 s)");
                b.enable_steady_tick(Duration::from_millis(200));
            }
            let schedule = Schedule::for_download(opts.runs, download);
            let (n, dir, sch) = (n.clone(), out.join("ns3"), schedule.clone());
            let start = tokio::task::spawn_blocking(move || {
                TriggerProcess::start(&n, &dir, &scenario, &sch)
            });
            tokio::select! {
                r = start => (schedule, Some(r.map_err(|e| DemoError::Ns3(e.to_string()))??)),
                _ = &mut interrupted => return Err(DemoError::Interrupted),
            }
        }
        TriggerSource::Replay { trace, replayer } => {
            let records = edgemob_simulator_glue::trace::read_file(trace)
                .map_err(|e| DemoError::Ns3(e.to_string()))?;
            let schedule = Schedule::from_trace(&records, opts.runs, download)
                .map_err(|e| DemoError::Ns3(format!("{}: {e}", trace.display())))?;
            let sim = TriggerProcess::replay(replayer, &records, &out.join("replay"), &scenario)?;
            (schedule, Some(sim))
        }
    };
    for run in 0..opts.runs {
        let share = rng.random_range(0.15..0.75);
        let fire = match &sim {
            None => Fire::AtOffset((opts.size as f64 * share) as u64),
            Some(sim) => Fire::Simulated {
                at: sim.wall(schedule.at(run)),
                lead: download.mul_f64(share),
            },
        };
        let one = one_run(&cluster, &floor, opts, run, serving, fire, &expected, &work);
        let rec = tokio::select! {
            r = one => r?,
            _ = &mut interrupted => {
                if let Some(b) = &bar { b.abandon_with_message("interrupted"); }
                return Err(DemoError::Interrupted);
            }
        };
        // The simulated UE alternates cells whatever happened here.
        if rec.outcome == crate::report::OUTCOME_COMPLETED || sim.is_some() {
            serving = 1 - serving;
        }
        if let Some(b) = &bar {
            b.set_message(format!(
                "last: {} in {:.3} ms, stall {:.2} ms, {}",
                rec.outcome,
                rec.phases.total_ms,
                rec.client_stall_ms,
                if rec.sha256_ok {
                    "sha256 ok"
                } else {
                    "SHA256 MISMATCH"
                }
            ));
            b.inc(1);
        }
        runs.push(rec);
    }
    if let Some(b) = &bar {
        b.finish();
    }
    if let Some(sim) = sim {
        let sim_dir = sim.dir.clone();
        let (summary, ok) =
            tokio::task::spawn_blocking(move || sim.finish(Duration::from_secs(30)))
                .await
                .map_err(|e| DemoError::Ns3(e.to_string()))?;
        println!(
            "\n{} trigger source, outputs in {}:",
            opts.trigger.name(),
            sim_dir.display()
        );
        for l in summary {
            println!("  {}", l.trim_start_matches("edgemob: "));
        }
        if !ok {
            println!(
                "  it reported a failure (see {})",
                sim_dir.join("output.txt").display()
            );
        }
    }
    let kept = if opts.keep {
        cluster.keep()
    } else {
        // The video copies are as large as `--size`; the logs stay.
        drop(cluster);
        for dir in ["content", "enbc1-content", "enbc2-content"] {
            let _ = std::fs::remove_dir_all(work.join(dir));
        }
        Vec::new()
    };
    Ok(DemoOutput { runs, kept })
}

#[allow(clippy::too_many_arguments)]
async fn one_run(
    cluster: &Cluster,
    floor: &Floor,
    opts: &DemoOptions,
    run: usize,
    from: usize,
    fire: Fire,
    expected: &str,
    work: &Path,
) -> Result<RunRecord, DemoError> {
    let to = 1 - from;
    let ue_ip = cluster.ue_addr(0);
    let ue = format!("ue-{ue_ip}");
    let fail = |why: String| DemoError::Run { run: run + 1, why };
    let file = work.join(format!("download-{run}.bin"));
    let _ = std::fs::remove_file(&file);
    let diagnose = opts.diagnose_host;
    let steal_from = diagnose.then(crate::steal::host_steal).flatten();
    let offset = match fire {
        Fire::AtOffset(o) => o,
        Fire::Simulated { at, lead } => {
            // Start the download so the simulated handover meets it there.
            let start = at.checked_sub(lead).unwrap_or(at);
            tokio::time::sleep_until(start.into()).await;
            (lead.as_secs_f64() * opts.bitrate as f64 / 8.0) as u64
        }
    };
    let capture = cluster
        .tb
        .capture(
            Node::Ue,
            edgemob_testbed::UPLINK,
            &format!("tcp port {VIDEO_PORT}"),
        )
        .map_err(ClusterError::from)?;
    // An unmodified client: curl, fetching one file as a one-shot
    // download does (`Connection: close`): the server ends the connection
    // after the last octet, so its FIN is queued before the client's FIN
    // can arrive. With keep-alive the client closed first, and the
    // server's ACK of that FIN (sent from softirq on one CPU) and its own
    // FIN (sent by the service on another) could swap places in the veth
    // links' per-CPU queues; the client, already in TIME_WAIT, then
    // answered the late ACK and the closed server socket sent a RST (about
    // 1 run in 100, always after the download had been verified).
    let max_secs = (opts.size * 8 / opts.bitrate.max(1)) * 3 + 60;
    let mut curl = Command::new("curl");
    curl.args([
        "--http1.1",
        "--header",
        "Connection: close",
        "--silent",
        "--show-error",
        "--fail",
        "--max-time",
    ])
    .arg(max_secs.to_string())
    .arg("--output")
    .arg(&file)
    .arg(format!(
        "http://{}:{VIDEO_PORT}/video.bin",
        cluster.service_addr()
    ))
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    let mut child = cluster
        .tb
        .spawn(Node::Ue, curl)
        .map_err(ClusterError::from)?;

    let deadline = Instant::now() + Duration::from_secs(max_secs);
    // With --diagnose-host, what else held the CPUs: counters read just
    // before the handover and once its stall window has closed
    // (crate::contention). Not read otherwise: a reading costs CPU time
    // just before the trigger.
    let (pids, reclaim) = if diagnose {
        (cluster.pids(), crate::reclaim::kdamond_pids())
    } else {
        (Vec::new(), Vec::new())
    };
    let snapshot = || diagnose.then(|| crate::contention::snapshot(&pids, &reclaim));
    let (fired, before, rec) = match fire {
        Fire::AtOffset(_) => {
            wait_for_offset(&mut child, &file, offset, deadline, &fail).await?;
            let before = snapshot();
            let fired = SystemTime::now();
            (fired, before, cluster.handover(&ue, from, to).await?)
        }
        Fire::Simulated { at, .. } => {
            let since = SystemTime::now();
            let early = at.checked_sub(Duration::from_millis(1)).unwrap_or(at);
            tokio::time::sleep_until(early.into()).await;
            let before = snapshot();
            let rec = simulated_migration(cluster, &ue, from, since, at, &fail).await?;
            // The simulated ACK's wall-clock moment.
            let ago = Instant::now().saturating_duration_since(at);
            (SystemTime::now() - ago, before, rec)
        }
    };
    let returned = SystemTime::now();
    let completed = rec.outcome == pb::Outcome::Completed as i32;
    let (mut switched, mut told) = (returned, returned);
    if completed {
        // The UE's radio path now reaches the target eNBC.
        cluster.switch_all(to)?;
        switched = SystemTime::now();
        cluster.complete(&ue, to).await?;
        told = SystemTime::now();
    }
    let started =
        UNIX_EPOCH + Duration::from_nanos(u64::try_from(rec.started_unix_ns).unwrap_or(0));
    let total = Duration::from_nanos(rec.phases.unwrap_or_default().total_ns);
    // The handover's stall window closes this long after the migration.
    let window_end = started + total + Duration::from_millis(report::STALL_SETTLE_MS);
    if let Ok(left) = window_end.duration_since(SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
    let contention = before.and_then(|b| Some(b.until(&snapshot()?)));
    // Named now, while the thread most likely still runs.
    let (busiest_other, busiest_other_ms) = contention
        .and_then(|c| c.busiest_other)
        .map_or((String::new(), f64::NAN), |b| (b.name(), b.ran_ms));
    let cpu =
        |f: fn(&crate::contention::Contention) -> f64| contention.as_ref().map_or(f64::NAN, f);
    // The floor, source to target as this migration went. Measured now:
    // the stall window has closed, so its packets and its two threads'
    // CPU time are not in what the client's stall or the host diagnosis
    // measured, while the download still runs as it did during the
    // migration (after the download the machine would be quieter than the
    // migration found it, and the floor lower).
    let floor_sample = floor
        .measure(
            &cluster.tb,
            from,
            usize::try_from(rec.context_bytes).unwrap_or(0),
        )
        .inspect_err(|e| eprintln!("edgemob-lab demo: run {}: floor not measured: {e}", run + 1))
        .ok();

    // Let the download finish.
    let status = loop {
        if let Some(s) = child.try_wait().map_err(io("wait for curl"))? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail("the download did not finish in time".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let curl_err = {
        use std::io::Read;
        let mut s = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    };
    let host_steal_ms = if diagnose {
        crate::steal::steal_ms_since(steal_from)
    } else {
        f64::NAN
    };
    let sha_ok = status.success() && sha256_file(&file)? == expected;
    let downloaded = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&file);
    // EDGEMOB_DEMO_TIMELINE=MS: print the timeline of runs whose stall
    // was at least MS (every run when empty or 0) or that saw a RST, and
    // keep their captures in the output folder.
    let timeline = std::env::var("EDGEMOB_DEMO_TIMELINE")
        .ok()
        .map(|v| v.parse::<f64>().unwrap_or(0.0));
    let kept = opts.out.join(format!("run-{}.pcap", run + 1));
    let segments = match timeline {
        Some(_) => capture.finish_keeping(&kept),
        None => capture.finish(),
    }
    .map_err(ClusterError::from)?;
    let stats = edgemob_testbed::pcap::analyze(&segments, ue_ip);
    let from = started.min(fired);
    let to = window_end;
    let stall = stall_around(&segments, ue_ip, from, to);
    let baseline = baseline_stall(&segments, ue_ip, from, to);
    if timeline.is_some_and(|min| stall.as_secs_f64() * 1e3 >= min || stats.rst > 0) {
        println!("run {} (capture kept as {})", run + 1, kept.display());
        print_timeline(
            &segments,
            ue_ip,
            started,
            to,
            &[
                ("fired", fired),
                ("migration done", started + total),
                ("trigger returned", returned),
                ("path switched", switched),
                ("target told", told),
            ],
        );
    } else if timeline.is_some() {
        let _ = std::fs::remove_file(&kept);
    }
    let phases = phases_of(&rec);
    let mut reason = rec.reason.clone();
    if !status.success() {
        reason = format!("curl: {} {}", status, curl_err.trim());
    }
    Ok(RunRecord {
        run: run + 1,
        ok: completed && sha_ok && stats.rst == 0,
        sha256_ok: sha_ok,
        rst_seen: stats.rst,
        outcome: outcome_name(rec.outcome).into(),
        reason,
        phases,
        context_bytes: rec.context_bytes,
        app_context_bytes: rec.app_context_bytes,
        client_stall_ms: stall.as_secs_f64() * 1e3,
        baseline_stall_ms: baseline.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
        download_bytes: downloaded,
        trigger_offset_bytes: offset,
        migration_id: rec.migration_id,
        host_steal_ms,
        edgemob_ran_ms: cpu(|c| c.edgemob_ran_ms),
        edgemob_waited_ms: cpu(|c| c.edgemob_waited_ms),
        reclaim_ran_ms: cpu(|c| c.reclaim_ran_ms),
        others_ran_ms: cpu(|c| c.others_ran_ms),
        window_steal_ms: cpu(|c| c.steal_ms),
        busiest_other,
        busiest_other_ms,
        host_diagnosed: diagnose,
        floor_ms: floor_sample.map_or(f64::NAN, |f| f.floor_ms()),
        floor_rtt_ms: floor_sample.map_or(f64::NAN, |f| f.rtt_ms()),
        floor_move_ms: floor_sample.map_or(f64::NAN, |f| f.move_ms()),
        total_over_floor: match floor_sample {
            Some(f) if completed => report::total_over_floor(phases.total_ms, f.floor_ms()),
            _ => f64::NAN,
        },
    })
}

/// Waits until the client holds `offset` octets: the handover point.
async fn wait_for_offset(
    child: &mut std::process::Child,
    file: &Path,
    offset: u64,
    deadline: Instant,
    fail: &dyn Fn(String) -> DemoError,
) -> Result<(), DemoError> {
    loop {
        let got = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        if got >= offset {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(fail(format!(
                "curl ended ({status}) before the handover point"
            )));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(fail("the download never reached the handover point".into()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits for the migration of `ue` out of eNBC `from` that the simulator
/// triggers at `at`: the first one started after `since` that has ended.
async fn simulated_migration(
    cluster: &Cluster,
    ue: &str,
    from: usize,
    since: SystemTime,
    at: Instant,
    fail: &dyn Fn(String) -> DemoError,
) -> Result<pb::MigrationRecord, DemoError> {
    let since_ns = since
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    tokio::time::sleep_until(at.into()).await;
    let deadline = at + Duration::from_secs(15);
    loop {
        let found = cluster.history(from).await?.into_iter().find(|r| {
            r.ue == ue
                && r.direction == pb::Direction::Out as i32
                && r.started_unix_ns >= since_ns
                && r.outcome != pb::Outcome::InProgress as i32
        });
        if let Some(r) = found {
            return Ok(r);
        }
        if Instant::now() > deadline {
            return Err(fail(format!(
                "the simulated handover of {ue} at enbc{} started no migration within 15 s \
                 (see the trigger source's output.txt)",
                from + 1
            )));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Diagnostics: when things happened around one migration, relative to its
/// start, with the data segments the UE received then.
fn print_timeline(
    segments: &[TcpSegment],
    ue: IpAddr,
    start: SystemTime,
    window_end: SystemTime,
    marks: &[(&str, SystemTime)],
) {
    let rel = |t: SystemTime| match t.duration_since(start) {
        Ok(d) => d.as_secs_f64() * 1e3,
        Err(e) => -e.duration().as_secs_f64() * 1e3,
    };
    let window_end = rel(window_end);
    let mut lines: Vec<(f64, String)> = marks
        .iter()
        .map(|(n, t)| (rel(*t), format!("-- {n}")))
        .collect();
    // Every gap of more than 4 ms between data segments to the UE in the
    // stall window, wherever it is.
    let data: Vec<&TcpSegment> = segments
        .iter()
        .filter(|s| s.dst.ip() == ue && s.payload_len > 0)
        .collect();
    for w in data.windows(2) {
        let (a, b) = (rel(w[0].at), rel(w[1].at));
        if b - a > 4.0 && b > -3.0 && a < window_end {
            lines.push((b, format!("== gap of {:.3} ms before this segment", b - a)));
        }
    }
    for s in segments {
        let t = rel(s.at);
        if (-3.0..12.0).contains(&t) || s.is_rst() {
            let dir = if s.dst.ip() == ue { "-> ue" } else { "<- ue" };
            lines.push((
                t,
                format!(
                    "{dir} {} > {} seq {} len {} flags {:#04x}",
                    s.src, s.dst, s.seq, s.payload_len, s.flags
                ),
            ));
        }
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (t, l) in lines {
        println!("{t:8.3} ms  {l}");
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    const UE: &str = "10.77.1.2";

    /// Data segments to the UE at these offsets (ms) from `t0`, with an ACK
    /// from the UE after each.
    fn segments(t0: SystemTime, at_ms: &[f64]) -> Vec<TcpSegment> {
        let server: std::net::SocketAddr = "10.77.0.1:80".parse().unwrap();
        let ue: std::net::SocketAddr = format!("{UE}:40000").parse().unwrap();
        at_ms
            .iter()
            .flat_map(|&ms| {
                let at = t0 + Duration::from_secs_f64(ms / 1e3);
                let data = TcpSegment {
                    at,
                    src: server,
                    dst: ue,
                    seq: 0,
                    flags: 0x18,
                    payload_len: 1448,
                };
                let ack = TcpSegment {
                    at: at + Duration::from_micros(10),
                    src: ue,
                    dst: server,
                    seq: 0,
                    flags: 0x10,
                    payload_len: 0,
                };
                [data, ack]
            })
            .collect()
    }

    /// Every millisecond from `a` to `b` (exclusive).
    fn every_ms(a: u32, b: u32) -> Vec<f64> {
        (a..b).map(f64::from).collect()
    }

    fn ms(d: Duration) -> f64 {
        (d.as_secs_f64() * 1e3 * 1000.0).round() / 1000.0
    }

    #[test]
    fn the_stall_is_the_gap_across_the_handover_not_one_long_after() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        // Paced data; the handover at 100 ms freezes it until 103 ms; the
        // host then stalls the server for 7 ms at 150 ms.
        let mut at = every_ms(0, 101);
        at.extend(every_ms(103, 150));
        at.extend(every_ms(156, 200));
        let segs = segments(t0, &at);
        let ue: IpAddr = UE.parse().unwrap();
        let from = t0 + Duration::from_micros(100_300);
        let to = t0 + Duration::from_millis(101 + report::STALL_SETTLE_MS);
        assert_eq!(ms(stall_around(&segs, ue, from, to)), 3.0);
        // A window reaching 150 ms would have blamed the migration for it.
        let late = t0 + Duration::from_millis(160);
        assert_eq!(ms(stall_around(&segs, ue, from, late)), 7.0);
    }

    #[test]
    fn the_baseline_is_an_equal_window_before_the_trigger() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        // A 6 ms host stall 5 ms before the trigger at 100 ms.
        let mut at = every_ms(0, 91);
        at.extend(every_ms(96, 100));
        at.extend(every_ms(103, 200));
        let segs = segments(t0, &at);
        let ue: IpAddr = UE.parse().unwrap();
        let from = t0 + Duration::from_millis(100);
        let to = t0 + Duration::from_millis(112);
        assert_eq!(baseline_stall(&segs, ue, from, to).map(ms), Some(6.0));
        // Data started after the baseline window would begin: no baseline.
        let short = segments(t0, &every_ms(90, 200));
        assert_eq!(baseline_stall(&short, ue, from, to), None);
    }
}

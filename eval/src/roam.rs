//! Roaming: many UEs move across several eNBCs, following a handover trace
//! replayed against real agents.
//!
//! The trace is `edgemob-lab trace synth`'s (a ring of cells, each UE making a
//! few X2 handovers to a neighbour) or one given. Every UE holds a live
//! download from the video server of the eNBC serving it, long enough to
//! last through all its handovers. The replay engine of `edgemob-lab replay`
//! sends each X2 handover start to the agent of its source cell at its trace
//! time; whenever it learns that a UE's migration completed, the UE's path
//! is switched to the target eNBC and the target told (the emulated
//! network's part, as `edgemob-lab demo` does it). Every migration must complete
//! and every download arrive octet-exact.

use crate::cluster::{Cluster, ClusterOptions};
use crate::demo::make_video;
use crate::scale::{ScaleError, client};
use crate::stats::Summary;
use edgemob_simulator_glue::driver::{DriverEvent, MigrationResult};
use edgemob_simulator_glue::replay::{ReplayOptions, replay};
use edgemob_simulator_glue::scenario::Scenario;
use edgemob_simulator_glue::synth::{SynthOptions, generate};
use edgemob_simulator_glue::trace::{self, EventKind, TraceRecord};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct RoamOptions {
    /// UEs (IMSIs 1..=ues) of a synthetic trace.
    pub ues: usize,
    /// eNBCs, one cell each.
    pub enbcs: usize,
    /// Handovers of each UE in a synthetic trace.
    pub handovers_per_ue: u32,
    /// Span of a synthetic trace, s.
    pub duration_s: f64,
    pub seed: u64,
    /// Replay this trace instead (IMSIs 1..=N, cells 1..=enbcs).
    pub trace: Option<PathBuf>,
    pub context_bytes: usize,
    /// Each UE's download pace, bits per second.
    pub bitrate: u64,
    pub out: PathBuf,
    pub edgemob: PathBuf,
    pub video_server: PathBuf,
    pub agent_log: String,
}

/// What a roaming run gave.
#[derive(Debug)]
pub struct RoamOutcome {
    pub ues: usize,
    pub enbcs: usize,
    /// X2 handover starts replayed.
    pub handovers: usize,
    pub migrations: Vec<MigrationResult>,
    /// Downloads that arrived complete and exact.
    pub downloads_ok: usize,
    pub wall: Duration,
}

impl RoamOutcome {
    pub fn completed(&self) -> usize {
        self.migrations.iter().filter(|m| m.completed()).count()
    }

    /// Every handover migrated and every download was exact.
    pub fn ok(&self) -> bool {
        self.completed() == self.handovers && self.downloads_ok == self.ues
    }

    /// Per-UE total migration time, ms, of the completed migrations.
    pub fn totals_ms(&self) -> Summary {
        let xs: Vec<f64> = self
            .migrations
            .iter()
            .filter(|m| m.completed())
            .filter_map(|m| m.phases.as_ref().map(|p| p.total_us / 1e3))
            .collect();
        Summary::of(&xs)
    }

    /// Delay from the trace time to the migration's start, ms.
    pub fn start_delays_ms(&self) -> Summary {
        let xs: Vec<f64> = self
            .migrations
            .iter()
            .filter_map(|m| m.start_delay_us.map(|d| d / 1e3))
            .collect();
        Summary::of(&xs)
    }
}

fn fail(ues: usize, why: impl Into<String>) -> ScaleError {
    ScaleError::Burst {
        ues,
        why: why.into(),
    }
}

/// The trace to replay, checked against the topology: IMSIs 1..=N, cells
/// 1..=enbcs. Returns it and N.
fn load_trace(opts: &RoamOptions) -> Result<(Vec<TraceRecord>, usize), ScaleError> {
    let records = match &opts.trace {
        Some(p) => trace::read_file(p).map_err(|e| fail(opts.ues, e.to_string()))?,
        None => generate(&SynthOptions {
            ues: opts.ues as u32,
            cells: opts.enbcs as u32,
            handovers_per_ue: opts.handovers_per_ue,
            duration_s: opts.duration_s,
            first_imsi: 1,
            seed: opts.seed,
        })
        .map_err(|e| fail(opts.ues, e.to_string()))?,
    };
    let n = records.iter().map(|r| r.imsi).max().unwrap_or(0) as usize;
    for r in &records {
        if r.imsi == 0 || r.source_cell as usize > opts.enbcs || r.target_cell as usize > opts.enbcs
        {
            return Err(fail(
                n,
                format!(
                    "trace record at {} µs: IMSI {} or cells {}→{} outside IMSIs 1..=N and cells 1..={}",
                    r.time_us, r.imsi, r.source_cell, r.target_cell, opts.enbcs
                ),
            ));
        }
    }
    Ok((records, n))
}

/// The cell each UE (index `imsi - 1`) starts in: the source of its first
/// handover, or cell 1.
fn initial_cells(records: &[TraceRecord], n: usize) -> Vec<u32> {
    let mut cells = vec![0u32; n];
    for r in records
        .iter()
        .filter(|r| r.kind == EventKind::HandoverStart)
    {
        let c = &mut cells[r.imsi as usize - 1];
        if *c == 0 {
            *c = r.source_cell;
        }
    }
    cells.iter().map(|&c| c.max(1)).collect()
}

pub async fn run(opts: &RoamOptions) -> Result<RoamOutcome, ScaleError> {
    let (records, n) = load_trace(opts)?;
    let starts: Vec<TraceRecord> = records
        .iter()
        .filter(|r| r.kind == EventKind::HandoverStart)
        .cloned()
        .collect();
    let span_s = starts.last().map_or(0.0, TraceRecord::time_s);
    std::fs::create_dir_all(&opts.out).map_err(|e| fail(n, e.to_string()))?;
    std::fs::write(opts.out.join("trace.jsonl"), trace::to_jsonl(&records))
        .map_err(|e| fail(n, e.to_string()))?;

    let work = opts.out.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| fail(n, e.to_string()))?;
    // Long enough to run through every handover, with room to spare.
    let size = ((span_s + 5.0) * opts.bitrate as f64 / 8.0) as u64;
    let video = work.join("video.bin");
    let expected = make_video(&video, size, opts.seed)?;

    let mut copts = ClusterOptions::new(opts.edgemob.clone(), work.join("cluster"));
    copts.enbcs = opts.enbcs;
    copts.ue_addrs = n;
    copts.agent_log = opts.agent_log.clone();
    // The path switch follows the replay's report of each migration; the
    // targets wait for it rather than activate on their own.
    let cluster = Cluster::start_for_bursts(
        copts,
        &opts.video_server,
        &work,
        opts.bitrate,
        opts.context_bytes,
    )
    .await?;

    // Each UE's path reaches the eNBC of its first cell; it connects there.
    let cells = initial_cells(&records, n);
    for (k, c) in cells.iter().enumerate() {
        cluster.switch_ue(k, *c as usize - 1)?;
    }
    let sockets = cluster.connect_ues(n)?;
    let downloads: Vec<_> = sockets
        .into_iter()
        .map(|s| tokio::spawn(client(s, expected.clone(), size)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut registered = 0;
        for i in 0..opts.enbcs {
            registered += cluster
                .users(i)
                .await?
                .iter()
                .filter(|u| u.connections >= 1)
                .count();
        }
        if registered >= n {
            break;
        }
        if Instant::now() > deadline {
            return Err(fail(n, format!("only {registered} of {n} UEs registered")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Replay the X2 handover starts; follow each completed migration with
    // the path switch and the target's CompleteHandover.
    let mut scenario = String::from("[ues]\n");
    for k in 0..n {
        scenario.push_str(&format!("{} = \"ue-{}\"\n", k + 1, cluster.ue_addr(k)));
    }
    for i in 0..opts.enbcs {
        scenario.push_str(&format!(
            "\n[[enbcs]]\nname = \"enbc{n}\"\napi = \"{api}\"\ncells = [{n}]\n",
            n = i + 1,
            api = cluster.api(i).display()
        ));
    }
    let path = opts.out.join("scenario.toml");
    std::fs::write(&path, &scenario).map_err(|e| fail(n, e.to_string()))?;
    let scenario = Arc::new(Scenario::parse(&scenario, &path).map_err(|e| fail(n, e.to_string()))?);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let t0 = Instant::now();
    let handovers = starts.len();
    let replayed = replay(starts, scenario, ReplayOptions::default(), Some(tx));
    let follow = async {
        let mut migrations = Vec::new();
        while let Some(ev) = rx.recv().await {
            let DriverEvent::Migration(m) = ev else {
                continue;
            };
            if m.completed() {
                let (k, to) = (m.imsi as usize - 1, m.target_cell as usize - 1);
                if let Err(e) = cluster.switch_ue(k, to) {
                    eprintln!("roam: switching {}: {e}", m.ue);
                }
                if let Err(e) = cluster.complete(&m.ue, to).await {
                    eprintln!("roam: completing {}: {e}", m.ue);
                }
            }
            migrations.push(m);
        }
        migrations
    };
    let (report, migrations) = tokio::join!(replayed, follow);
    let report = report.map_err(|e| fail(n, e.to_string()))?;
    let wall = t0.elapsed();
    let lines: String = report
        .events
        .iter()
        .map(|e| e.to_json_line() + "\n")
        .collect();
    std::fs::write(opts.out.join("migrations.jsonl"), lines).map_err(|e| fail(n, e.to_string()))?;

    let mut downloads_ok = 0;
    let wait = Duration::from_secs_f64(size as f64 * 8.0 / opts.bitrate.max(1) as f64 + 60.0);
    for d in downloads {
        match tokio::time::timeout(wait, d).await {
            Ok(Ok(Ok(()))) => downloads_ok += 1,
            Ok(Ok(Err(e))) => eprintln!("roam: a download failed: {e}"),
            _ => eprintln!("roam: a download did not finish"),
        }
    }
    let _ = std::fs::remove_file(&video);
    Ok(RoamOutcome {
        ues: n,
        enbcs: opts.enbcs,
        handovers,
        migrations,
        downloads_ok,
        wall,
    })
}

/// Migrations per (source, target) cell pair, for the printed summary.
pub fn by_cells(migrations: &[MigrationResult]) -> BTreeMap<(u32, u32), (usize, usize)> {
    let mut m = BTreeMap::new();
    for r in migrations {
        let e = m.entry((r.source_cell, r.target_cell)).or_insert((0, 0));
        e.0 += 1;
        if r.completed() {
            e.1 += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ue_starts_where_its_first_handover_leaves() {
        let recs = generate(&SynthOptions {
            ues: 8,
            cells: 4,
            handovers_per_ue: 2,
            duration_s: 10.0,
            first_imsi: 1,
            seed: 3,
        })
        .unwrap();
        let cells = initial_cells(&recs, 8);
        for (k, c) in cells.iter().enumerate() {
            assert_eq!(
                *c,
                1 + (k as u32) % 4,
                "synth starts UE u in cell 1 + u mod cells"
            );
        }
    }
}

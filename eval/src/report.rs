//! Measured records and the reports built from them.
//!
//! The experiment runners produce one [`RunRecord`] per demo run (one
//! handover of one UE's video download) and one [`ScaleRecord`] per UE of a
//! scale burst. This module turns them into:
//!
//! * [`DemoReport`] — the paper's Table I and the benchmark targets, written
//!   as `report.json` by [`write_report_json`];
//! * `runs.csv` — every [`RunRecord`], flattened, by [`write_runs_csv`];
//! * [`ScaleSummary`] — one row per burst size, written as `scale.csv` and
//!   `scale.json` by [`write_scale_csv`] and [`write_scale_json`] (and the raw
//!   records as `scale_records.csv` by [`write_scale_records_csv`]).
//!
//! # Which runs feed which statistic
//!
//! * `phases_ms.*` and `context_bytes`/`app_context_bytes` are computed over
//!   the runs whose migration **completed** (`outcome == "completed"`): a
//!   rolled-back or rejected migration has no CXTP transaction to time and
//!   moved no context, and mixing its partial timings in would make the
//!   phases meaningless. `phases_ms.total.n` says how many runs that is.
//! * `client_stall_ms` is computed over **all** runs: the UE sees the stall
//!   whatever the migration's outcome, and a rollback that stalls the client
//!   must show. A run's stall is the largest gap between data segments
//!   reaching the UE among the gaps that touch the handover's window, from
//!   the trigger (or the migration's start, if earlier) to
//!   [`STALL_SETTLE_MS`] after the migration ended: the gap the freeze
//!   opens, and any the resumed connection shows while it settles.
//! * `client_stall_baseline_ms`, over all runs too, is the same measure in a
//!   window of the same length ending [`BASELINE_GUARD_MS`] before the
//!   trigger, in the same download, where no migration runs: the gaps the
//!   host's scheduling and the server's pacing cause by themselves.
//! * `floor` summarizes each run's floor ([`crate::floor`]: the MIH round
//!   trip plus the run's context bytes over a warm TCP connection, between
//!   the same two eNBCs, right after its migration) over the runs where it
//!   was measured, and `floor.total_over_floor` the ratio of each
//!   **completed** run's total to its own floor ([`total_over_floor`]).
//! * The host-noise figures below are collected only with
//!   `--diagnose-host` ([`RunRecord::host_diagnosed`]); without it they are
//!   `null` (or empty lists) in `report.json` and empty cells in `runs.csv`.
//! * `host_steal_ms` sums each run's host steal ([`crate::steal`]).
//! * `edgemob_ran_ms` and `edgemob_waited_ms` summarize, over the runs where
//!   the kernel keeps per-task scheduler statistics, how long edgemob's
//!   threads ran and how long they waited for a CPU in each handover's
//!   window (the stall window, from just before the trigger),
//!   `others_ran_ms` how long every other thread ran; `reclaim_windows`
//!   counts the windows in which the guest's reclaim threads ran
//!   ([`crate::contention`]).
//! * `tail_runs` lists the runs of the [`TAIL_RUNS`] slowest completed
//!   migrations and of the [`TAIL_RUNS`] largest stalls with those figures
//!   and the host steal: whether a tail was edgemob's own.
//! * `bytes_verified` is true only if there is at least one run and every
//!   run's sha256 matched; `rst_seen` is the total over all runs.
//!
//! Statistics are those of [`crate::stats`]: sample std, nearest-rank
//! percentiles, non-finite values ignored, zeros with `n == 0` when a set is
//! empty. A target is never "met" on an empty set.
//!
//! # Units
//!
//! Times are milliseconds. Sizes are bytes in the JSON and CSV files; tables
//! and plots show kilobytes with **1 KB = 1000 bytes** ([`BYTES_PER_KB`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::stats::Summary;

/// Paper (Assasa et al., IEEE CLOUD 2015): mean total per-UE migration time.
pub const PAPER_TOTAL_MEAN_MS: f64 = 11.5;
/// Paper: mean context size per UE, in KB.
pub const PAPER_CONTEXT_MEAN_KB: f64 = 75.0;
/// Paper: largest context size per UE, in KB.
pub const PAPER_CONTEXT_MAX_KB: f64 = 100.0;
/// Bytes in the kilobyte used by tables and plots.
pub const BYTES_PER_KB: f64 = 1000.0;

/// Target: median total migration time, at most (ms).
pub const TARGET_TOTAL_P50_MS: f64 = 1.0;
/// Target: 99th-percentile total migration time, at most (ms).
pub const TARGET_TOTAL_P99_MS: f64 = 2.5;
/// Target: median of each completed migration's total over its own floor
/// (the MIH round trip plus the same bytes over a warm TCP connection, in
/// the same sitting). Absolute times on shared VMs swing 3–5x from day to
/// day; the floor moves with them, so the goal is stated against it. The
/// flow adds to the floor a service round trip for the export and one for
/// the import, the dump and the restore.
pub const TARGET_TOTAL_OVER_FLOOR_P50: f64 = 8.0;
/// Target: largest client-observed stall, at most (ms).
pub const TARGET_CLIENT_STALL_MAX_MS: f64 = 5.0;
/// How long after a migration ended its stall window stays open (ms).
pub const STALL_SETTLE_MS: u64 = 10;
/// The baseline window ends this long before the trigger (ms).
pub const BASELINE_GUARD_MS: u64 = 2;

/// The `outcome` of a run whose migration completed.
pub const OUTCOME_COMPLETED: &str = "completed";

/// Errors of the report writers.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialize {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Per-phase durations of one migration (paper Table I), in milliseconds, as
/// the source agent recorded them.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Phases {
    /// MIH HO commit transaction.
    pub mih_commit_ms: f64,
    /// Retrieving application data.
    pub app_data_ms: f64,
    /// Retrieving sockets data.
    pub socket_data_ms: f64,
    /// CXTP transaction.
    pub cxtp_ms: f64,
    /// Whole migration.
    pub total_ms: f64,
}

/// One demo run: one handover of one UE's video download.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunRecord {
    pub run: usize,
    /// Migration completed AND sha256 matched AND no RST.
    pub ok: bool,
    pub sha256_ok: bool,
    /// RST segments in the UE-side capture.
    pub rst_seen: usize,
    /// `"completed"` | `"rolled back"` | `"rejected"` | `"failed"`.
    pub outcome: String,
    pub reason: String,
    /// As the source agent recorded them.
    pub phases: Phases,
    /// App context + socket images moved.
    pub context_bytes: u64,
    pub app_context_bytes: u64,
    /// Largest gap between data segments at the UE around the handover.
    pub client_stall_ms: f64,
    /// The same measure just before the trigger, without a migration (NaN
    /// when the download had not been running long enough).
    #[serde(default)]
    pub baseline_stall_ms: f64,
    pub download_bytes: u64,
    /// How far the download was when the handover fired.
    pub trigger_offset_bytes: u64,
    pub migration_id: u64,
    /// Host steal ([`crate::steal`]) from the start of this run's download
    /// to its end, ms (10 ms resolution; 0 on bare metal).
    #[serde(default)]
    pub host_steal_ms: f64,
    /// edgemob's threads (agents, services) on a CPU from just before the
    /// trigger to the end of the stall window, summed over threads, ms
    /// ([`crate::contention`]; NaN where unknown).
    #[serde(default = "unknown")]
    pub edgemob_ran_ms: f64,
    /// The same threads runnable and waiting for a CPU in that window.
    #[serde(default = "unknown")]
    pub edgemob_waited_ms: f64,
    /// The guest's reclaim threads (`kdamond`) on a CPU in that window, ms
    /// (0 without DAMON, NaN where unknown).
    #[serde(default = "unknown")]
    pub reclaim_ran_ms: f64,
    /// Every other thread of the machine on a CPU in that window, ms.
    #[serde(default = "unknown")]
    pub others_ran_ms: f64,
    /// Host steal in that window, ms (10 ms resolution).
    #[serde(default = "unknown")]
    pub window_steal_ms: f64,
    /// The other thread that ran longest in that window (its name), and
    /// how long, ms; empty and NaN when none ran or it is unknown.
    #[serde(default)]
    pub busiest_other: String,
    #[serde(default = "unknown")]
    pub busiest_other_ms: f64,
    /// Whether the host-noise figures above (`host_steal_ms` through
    /// `busiest_other_ms`) were collected (`--diagnose-host`).
    #[serde(default)]
    pub host_diagnosed: bool,
    /// The floor a migration cannot beat, measured right after this run's
    /// migration between the same two eNBCs in the same direction
    /// ([`crate::floor`]): `floor_rtt_ms + floor_move_ms`; NaN when not
    /// measured.
    #[serde(default = "unknown")]
    pub floor_ms: f64,
    /// Its MIH-sized UDP round trip, ms.
    #[serde(default = "unknown")]
    pub floor_rtt_ms: f64,
    /// Its move of `context_bytes` over the warm TCP connection until
    /// acknowledged, ms.
    #[serde(default = "unknown")]
    pub floor_move_ms: f64,
    /// `phases.total_ms / floor_ms` ([`total_over_floor`]); NaN unless the
    /// migration completed and the floor was measured.
    #[serde(default = "unknown")]
    pub total_over_floor: f64,
}

fn unknown() -> f64 {
    f64::NAN
}

/// A completed migration's total over its run's floor; NaN when either is
/// unknown or the floor is not positive.
pub fn total_over_floor(total_ms: f64, floor_ms: f64) -> f64 {
    if total_ms.is_finite() && floor_ms.is_finite() && floor_ms > 0.0 {
        total_ms / floor_ms
    } else {
        f64::NAN
    }
}

impl RunRecord {
    /// True when the migration itself completed (whatever the data checks
    /// say).
    pub fn completed(&self) -> bool {
        self.outcome == OUTCOME_COMPLETED
    }
}

/// One UE of a scale burst.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScaleRecord {
    /// Burst size: how many UEs were handed over together.
    pub ues: usize,
    pub ue: String,
    pub ok: bool,
    pub phases: Phases,
    pub context_bytes: u64,
    /// When this UE's migration started, from burst start.
    pub started_offset_ms: f64,
}

/// Mean, std and percentiles of one phase, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PhaseStats {
    pub mean: f64,
    pub std: f64,
    pub p50: f64,
    pub p99: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
    /// Number of values the statistics were computed over.
    pub n: usize,
}

impl From<Summary> for PhaseStats {
    fn from(s: Summary) -> Self {
        PhaseStats {
            mean: s.mean,
            std: s.std,
            p50: s.p50,
            p99: s.p99,
            p90: s.p90,
            min: s.min,
            max: s.max,
            n: s.n,
        }
    }
}

/// The phases of Table I (`phases_ms` in `report.json`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PhasesStats {
    pub mih_commit: PhaseStats,
    pub app_data: PhaseStats,
    pub socket_data: PhaseStats,
    pub cxtp: PhaseStats,
    pub total: PhaseStats,
}

impl PhasesStats {
    /// The phases in Table I order with their Table I names.
    pub fn rows(&self) -> [(&'static str, &PhaseStats); 5] {
        [
            ("MIH HO commit transaction", &self.mih_commit),
            ("Retrieving application data", &self.app_data),
            ("Retrieving sockets data", &self.socket_data),
            ("CXTP transaction", &self.cxtp),
            ("Total", &self.total),
        ]
    }

    fn of(phases: &[Phases]) -> PhasesStats {
        let stat = |f: fn(&Phases) -> f64| -> PhaseStats {
            let xs: Vec<f64> = phases.iter().map(f).collect();
            Summary::of(&xs).into()
        };
        PhasesStats {
            mih_commit: stat(|p| p.mih_commit_ms),
            app_data: stat(|p| p.app_data_ms),
            socket_data: stat(|p| p.socket_data_ms),
            cxtp: stat(|p| p.cxtp_ms),
            total: stat(|p| p.total_ms),
        }
    }
}

/// Sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ByteStats {
    pub mean: f64,
    pub max: u64,
    pub min: u64,
    pub p50: u64,
    pub n: usize,
}

impl ByteStats {
    fn of(xs: &[u64]) -> ByteStats {
        let as_f: Vec<f64> = xs.iter().map(|&x| x as f64).collect();
        let s = Summary::of(&as_f);
        let mut sorted = xs.to_vec();
        sorted.sort_unstable();
        // Nearest rank on the integers themselves, so large sizes keep every
        // digit.
        let p50 = if sorted.is_empty() {
            0
        } else {
            let rank = (sorted.len() as f64 * 0.5).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1]
        };
        ByteStats {
            mean: s.mean,
            max: sorted.last().copied().unwrap_or(0),
            min: sorted.first().copied().unwrap_or(0),
            p50,
            n: xs.len(),
        }
    }
}

/// Host steal over a demo's runs, in ms.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StealStats {
    /// Over all runs.
    pub total: f64,
    /// Runs that saw any.
    pub runs: usize,
}

impl StealStats {
    pub fn of(runs: &[RunRecord]) -> StealStats {
        StealStats {
            total: runs.iter().map(|r| r.host_steal_ms).sum(),
            runs: runs.iter().filter(|r| r.host_steal_ms > 0.0).count(),
        }
    }
}

/// A run in a demo's tail, and what else held the CPUs then.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TailRun {
    pub run: usize,
    /// Total migration time; `None` when the migration did not complete.
    pub total_ms: Option<f64>,
    pub client_stall_ms: Option<f64>,
    /// edgemob's threads on a CPU in the handover's window
    /// ([`crate::contention`]); `None` where unknown.
    pub edgemob_ran_ms: Option<f64>,
    /// The same threads runnable and waiting for a CPU.
    pub edgemob_waited_ms: Option<f64>,
    /// The guest's reclaim threads on a CPU in that window.
    pub reclaim_ran_ms: Option<f64>,
    /// Every other thread on a CPU in that window.
    pub others_ran_ms: Option<f64>,
    /// Host steal in that window (10 ms resolution).
    pub window_steal_ms: Option<f64>,
    /// The other thread that ran longest in that window, and how long.
    pub busiest_other: Option<(String, f64)>,
    /// Host steal over the run's whole download.
    pub host_steal_ms: f64,
}

/// How many of the slowest migrations, and of the largest stalls, make up
/// [`DemoReport::tail_runs`].
pub const TAIL_RUNS: usize = 5;

impl TailRun {
    /// The runs of the [`TAIL_RUNS`] slowest completed migrations and of
    /// the [`TAIL_RUNS`] largest stalls, in run order.
    pub fn of(runs: &[RunRecord]) -> Vec<TailRun> {
        let mut slow: Vec<&RunRecord> = runs.iter().filter(|r| r.completed()).collect();
        slow.sort_by(|a, b| b.phases.total_ms.total_cmp(&a.phases.total_ms));
        let mut stalled: Vec<&RunRecord> = runs
            .iter()
            .filter(|r| r.client_stall_ms.is_finite())
            .collect();
        stalled.sort_by(|a, b| b.client_stall_ms.total_cmp(&a.client_stall_ms));
        let mut tail: Vec<&RunRecord> = slow.into_iter().take(TAIL_RUNS).collect();
        tail.extend(stalled.into_iter().take(TAIL_RUNS));
        tail.sort_by_key(|r| r.run);
        tail.dedup_by_key(|r| r.run);
        let known = |v: f64| v.is_finite().then_some(v);
        tail.into_iter()
            .map(|r| TailRun {
                run: r.run,
                total_ms: r.completed().then_some(r.phases.total_ms),
                client_stall_ms: known(r.client_stall_ms),
                edgemob_ran_ms: known(r.edgemob_ran_ms),
                edgemob_waited_ms: known(r.edgemob_waited_ms),
                reclaim_ran_ms: known(r.reclaim_ran_ms),
                others_ran_ms: known(r.others_ran_ms),
                window_steal_ms: known(r.window_steal_ms),
                busiest_other: known(r.busiest_other_ms)
                    .filter(|_| !r.busiest_other.is_empty())
                    .map(|ms| (r.busiest_other.clone(), ms)),
                host_steal_ms: r.host_steal_ms,
            })
            .collect()
    }
}

/// A per-run figure over a demo's runs, in ms: the client's stall, the
/// CPU wait of edgemob's threads (or, for [`FloorStats::total_over_floor`],
/// a ratio).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PerRunMs {
    pub p50: f64,
    pub max: f64,
    pub p99: f64,
    pub mean: f64,
    pub n: usize,
}

impl PerRunMs {
    /// Summarizes one figure of every run (non-finite values are left out).
    pub fn over(runs: &[RunRecord], figure: impl Fn(&RunRecord) -> f64) -> PerRunMs {
        PerRunMs::of(&runs.iter().map(figure).collect::<Vec<_>>())
    }

    /// Summarizes per-run values (non-finite values are left out).
    pub fn of(ms: &[f64]) -> PerRunMs {
        let s = Summary::of(ms);
        PerRunMs {
            p50: s.p50,
            max: s.max,
            p99: s.p99,
            mean: s.mean,
            n: s.n,
        }
    }
}

/// The floor over a demo's runs ([`crate::floor`]), `floor` in
/// `report.json`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct FloorStats {
    /// Round trip plus move, ms, over the runs where it was measured.
    pub floor_ms: PerRunMs,
    /// The MIH-sized UDP round trip, ms.
    pub rtt_ms: PerRunMs,
    /// The context bytes over the warm connection, ms.
    pub move_ms: PerRunMs,
    /// Each completed run's total over its own floor (a ratio, not ms).
    pub total_over_floor: PerRunMs,
}

impl FloorStats {
    pub fn of(runs: &[RunRecord]) -> FloorStats {
        let ratios: Vec<f64> = runs
            .iter()
            .filter(|r| r.completed())
            .map(|r| total_over_floor(r.phases.total_ms, r.floor_ms))
            .collect();
        FloorStats {
            floor_ms: PerRunMs::over(runs, |r| r.floor_ms),
            rtt_ms: PerRunMs::over(runs, |r| r.floor_rtt_ms),
            move_ms: PerRunMs::over(runs, |r| r.floor_move_ms),
            total_over_floor: PerRunMs::of(&ratios),
        }
    }
}

/// One benchmark target: the measured value against its limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    /// What is checked, e.g. `"total p50 <= 1 ms"`.
    pub name: String,
    /// The measured value (ms, a count, or a fraction of runs).
    pub value: f64,
    /// The limit the value must not exceed (or, for byte-exactness, reach).
    pub limit: f64,
    /// Unit of `value` and `limit`: `"ms"`, `"segments"` or `"fraction of runs"`.
    pub unit: String,
    pub met: bool,
}

impl TargetCheck {
    /// `what <= limit ms`, met when the value is `known` and within it.
    fn at_most_ms(what: &str, value: f64, limit: f64, known: bool) -> TargetCheck {
        TargetCheck {
            name: format!("{what} <= {limit} ms"),
            value,
            limit,
            unit: "ms".into(),
            met: known && value <= limit,
        }
    }
}

/// The paper's figures this report is compared against. Only the total and
/// the context sizes are known; the per-phase figures are not.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PaperReference {
    pub total_mean_ms: f64,
    pub context_mean_kb: f64,
    pub context_max_kb: f64,
}

impl Default for PaperReference {
    fn default() -> Self {
        PaperReference {
            total_mean_ms: PAPER_TOTAL_MEAN_MS,
            context_mean_kb: PAPER_CONTEXT_MEAN_KB,
            context_max_kb: PAPER_CONTEXT_MAX_KB,
        }
    }
}

/// The demo experiment's report (`report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoReport {
    /// Number of runs.
    pub runs: usize,
    /// Runs with `ok == true`.
    pub runs_ok: usize,
    /// Runs whose migration completed (the set the phases are computed over).
    pub runs_completed: usize,
    /// True only if there is at least one run and every run's sha256 matched.
    pub bytes_verified: bool,
    /// Total RST segments seen by the UE over all runs.
    pub rst_seen: usize,
    /// Per-phase statistics over completed runs.
    pub phases_ms: PhasesStats,
    /// Context moved per UE (app context + socket images), completed runs.
    pub context_bytes: ByteStats,
    /// App context part of it, completed runs.
    pub app_context_bytes: ByteStats,
    /// Client-observed stall over all runs.
    pub client_stall_ms: PerRunMs,
    /// The same measure in migration-free windows of the same downloads.
    #[serde(default)]
    pub client_stall_baseline_ms: PerRunMs,
    /// The floor a migration cannot beat, and each total over its floor.
    #[serde(default)]
    pub floor: FloorStats,
    /// Whether the host noise was diagnosed (`--diagnose-host`); the
    /// figures from here to `damon_pageout` are `null` or empty otherwise.
    #[serde(default)]
    pub host_diagnosed: bool,
    /// Host steal during the runs: how much of the host's CPU this machine
    /// wanted and did not get, and in which runs.
    #[serde(default)]
    pub host_steal_ms: Option<StealStats>,
    /// edgemob's threads' CPU time per handover window, over the runs
    /// where it is known.
    #[serde(default)]
    pub edgemob_ran_ms: Option<PerRunMs>,
    /// Their wait for a CPU, likewise.
    #[serde(default)]
    pub edgemob_waited_ms: Option<PerRunMs>,
    /// Every other thread's CPU time per handover window, likewise.
    #[serde(default)]
    pub others_ran_ms: Option<PerRunMs>,
    /// Handover windows in which the guest's reclaim threads ran.
    #[serde(default)]
    pub reclaim_windows: Option<usize>,
    /// The runs of the slowest migrations and of the largest stalls, with
    /// what else held the CPUs then.
    #[serde(default)]
    pub tail_runs: Vec<TailRun>,
    /// The guest's DAMON pageout schemes that were running ([`crate::reclaim`]);
    /// set by the demo when it diagnoses the host, empty from
    /// [`DemoReport::from_runs`].
    #[serde(default)]
    pub damon_pageout: Vec<crate::reclaim::DamonPageout>,
    /// Number of runs per outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// Benchmark targets, in a fixed order.
    pub targets: Vec<TargetCheck>,
    /// True when every target is met.
    pub targets_met: bool,
    pub paper: PaperReference,
}

impl DemoReport {
    /// Builds the report from the runs of one demo experiment. Never fails;
    /// see the module docs for which runs feed which statistic.
    pub fn from_runs(runs: &[RunRecord]) -> DemoReport {
        let completed: Vec<&RunRecord> = runs.iter().filter(|r| r.completed()).collect();
        let phases: Vec<Phases> = completed.iter().map(|r| r.phases).collect();
        let phases_ms = PhasesStats::of(&phases);
        let context: Vec<u64> = completed.iter().map(|r| r.context_bytes).collect();
        let app_context: Vec<u64> = completed.iter().map(|r| r.app_context_bytes).collect();
        let client_stall_ms = PerRunMs::over(runs, |r| r.client_stall_ms);
        let client_stall_baseline_ms = PerRunMs::over(runs, |r| r.baseline_stall_ms);
        let rst_seen = runs.iter().map(|r| r.rst_seen).sum::<usize>();
        let sha_ok = runs.iter().filter(|r| r.sha256_ok).count();
        let bytes_verified = !runs.is_empty() && sha_ok == runs.len();
        let mut outcomes = BTreeMap::new();
        for r in runs {
            *outcomes.entry(r.outcome.clone()).or_insert(0) += 1;
        }
        let total = phases_ms.total;
        let ran = !runs.is_empty();
        // Every run's stall must be known (finite) for the maximum to count.
        let stall_known = ran && client_stall_ms.n == runs.len();
        let floor = FloorStats::of(runs);
        let targets = vec![
            TargetCheck::at_most_ms("total p50", total.p50, TARGET_TOTAL_P50_MS, total.n > 0),
            TargetCheck::at_most_ms("total p99", total.p99, TARGET_TOTAL_P99_MS, total.n > 0),
            TargetCheck {
                name: format!("total / floor p50 <= {TARGET_TOTAL_OVER_FLOOR_P50}x"),
                value: floor.total_over_floor.p50,
                limit: TARGET_TOTAL_OVER_FLOOR_P50,
                unit: "x floor".into(),
                met: floor.total_over_floor.n > 0
                    && floor.total_over_floor.p50 <= TARGET_TOTAL_OVER_FLOOR_P50,
            },
            TargetCheck::at_most_ms(
                "client stall max",
                client_stall_ms.max,
                TARGET_CLIENT_STALL_MAX_MS,
                stall_known,
            ),
            TargetCheck {
                name: "zero RST".to_string(),
                value: rst_seen as f64,
                limit: 0.0,
                unit: "segments".into(),
                met: ran && rst_seen == 0,
            },
            TargetCheck {
                name: "all runs byte-exact".to_string(),
                value: if ran {
                    sha_ok as f64 / runs.len() as f64
                } else {
                    0.0
                },
                limit: 1.0,
                unit: "fraction of runs".into(),
                met: bytes_verified,
            },
        ];
        let targets_met = targets.iter().all(|t| t.met);
        let diagnosed: Vec<RunRecord> = runs.iter().filter(|r| r.host_diagnosed).cloned().collect();
        let host_diagnosed = !diagnosed.is_empty();
        let per_run =
            |f: fn(&RunRecord) -> f64| host_diagnosed.then(|| PerRunMs::over(&diagnosed, f));
        DemoReport {
            runs: runs.len(),
            runs_ok: runs.iter().filter(|r| r.ok).count(),
            runs_completed: completed.len(),
            bytes_verified,
            rst_seen,
            phases_ms,
            context_bytes: ByteStats::of(&context),
            app_context_bytes: ByteStats::of(&app_context),
            client_stall_ms,
            client_stall_baseline_ms,
            floor,
            host_diagnosed,
            host_steal_ms: host_diagnosed.then(|| StealStats::of(&diagnosed)),
            edgemob_ran_ms: per_run(|r| r.edgemob_ran_ms),
            edgemob_waited_ms: per_run(|r| r.edgemob_waited_ms),
            others_ran_ms: per_run(|r| r.others_ran_ms),
            reclaim_windows: host_diagnosed
                .then(|| diagnosed.iter().filter(|r| r.reclaim_ran_ms > 0.0).count()),
            tail_runs: TailRun::of(&diagnosed),
            damon_pageout: Vec::new(),
            outcomes,
            targets,
            targets_met,
            paper: PaperReference::default(),
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, ReportError> {
        serde_json::to_string_pretty(self).map_err(|source| ReportError::Json {
            what: "report",
            source,
        })
    }
}

/// Summary of one scale burst size (`scale.csv`, `scale.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleSummary {
    /// Burst size: UEs handed over together.
    pub ues: usize,
    /// Records received for this burst size.
    pub records: usize,
    /// Records with `ok == true`.
    pub migrated: usize,
    /// Per-UE total migration time over migrated UEs, ms.
    pub total_ms_p50: f64,
    pub total_ms_p90: f64,
    pub total_ms_p99: f64,
    pub total_ms_mean: f64,
    pub total_ms_max: f64,
    /// Mean context per migrated UE, bytes.
    pub context_bytes_mean: f64,
    /// From burst start to the end of the last migration (any record):
    /// `max(started_offset_ms + phases.total_ms)`.
    pub burst_ms: f64,
    /// Completed migrations per second: `migrated / burst` (0 when the burst
    /// has no positive duration).
    pub migrations_per_s: f64,
    /// Attempted migrations per second: `ues / burst` (0 likewise).
    pub attempted_per_s: f64,
}

impl ScaleSummary {
    /// Groups `records` by burst size and summarizes each group, smallest
    /// burst first. Never fails; an empty input gives an empty list.
    pub fn from_records(records: &[ScaleRecord]) -> Vec<ScaleSummary> {
        let mut groups: BTreeMap<usize, Vec<&ScaleRecord>> = BTreeMap::new();
        for r in records {
            groups.entry(r.ues).or_default().push(r);
        }
        groups
            .into_iter()
            .map(|(ues, group)| {
                let ok: Vec<&&ScaleRecord> = group.iter().filter(|r| r.ok).collect();
                let totals: Vec<f64> = ok.iter().map(|r| r.phases.total_ms).collect();
                let t = Summary::of(&totals);
                let ctx: Vec<f64> = ok.iter().map(|r| r.context_bytes as f64).collect();
                let ends: Vec<f64> = group
                    .iter()
                    .map(|r| r.started_offset_ms + r.phases.total_ms)
                    .collect();
                let burst_ms = crate::stats::max(&ends).unwrap_or(0.0).max(0.0);
                let per_s = |count: usize| {
                    if burst_ms > 0.0 {
                        count as f64 / (burst_ms / 1000.0)
                    } else {
                        0.0
                    }
                };
                ScaleSummary {
                    ues,
                    records: group.len(),
                    migrated: ok.len(),
                    total_ms_p50: t.p50,
                    total_ms_p90: t.p90,
                    total_ms_p99: t.p99,
                    total_ms_mean: t.mean,
                    total_ms_max: t.max,
                    context_bytes_mean: Summary::of(&ctx).mean,
                    burst_ms,
                    migrations_per_s: per_s(ok.len()),
                    attempted_per_s: per_s(ues),
                }
            })
            .collect()
    }
}

/// The `scale.json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleReport {
    pub summaries: Vec<ScaleSummary>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `contents` to `dir/name`, creating `dir` if needed.
fn write_file(dir: &Path, name: &str, contents: &[u8]) -> Result<PathBuf, ReportError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(name);
    let mut f = fs::File::create(&path).map_err(io_err(&path))?;
    f.write_all(contents).map_err(io_err(&path))?;
    f.sync_all().map_err(io_err(&path))?;
    Ok(path)
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line
/// break, with quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// Column names of `runs.csv`, in order.
pub const RUNS_CSV_HEADER: [&str; 30] = [
    "run",
    "ok",
    "sha256_ok",
    "rst_seen",
    "outcome",
    "reason",
    "mih_commit_ms",
    "app_data_ms",
    "socket_data_ms",
    "cxtp_ms",
    "total_ms",
    "context_bytes",
    "app_context_bytes",
    "client_stall_ms",
    "download_bytes",
    "trigger_offset_bytes",
    "migration_id",
    "baseline_stall_ms",
    "host_steal_ms",
    "edgemob_ran_ms",
    "edgemob_waited_ms",
    "reclaim_ran_ms",
    "others_ran_ms",
    "window_steal_ms",
    "busiest_other",
    "busiest_other_ms",
    "floor_ms",
    "floor_rtt_ms",
    "floor_move_ms",
    "total_over_floor",
];

/// The five Table I phases, ms, in column order.
fn phase_cells(p: &Phases) -> [String; 5] {
    [
        p.mih_commit_ms,
        p.app_data_ms,
        p.socket_data_ms,
        p.cxtp_ms,
        p.total_ms,
    ]
    .map(|v| v.to_string())
}

/// `runs.csv` as a string: a header row ([`RUNS_CSV_HEADER`]) and one row per
/// run. Floats are written in Rust's shortest round-trip form (`NaN` where
/// unknown); the host-noise cells of a run not diagnosed are empty.
pub fn runs_csv(runs: &[RunRecord]) -> String {
    let mut out = csv_line(&RUNS_CSV_HEADER.map(String::from));
    for r in runs {
        let mut row = vec![
            r.run.to_string(),
            r.ok.to_string(),
            r.sha256_ok.to_string(),
            r.rst_seen.to_string(),
            r.outcome.clone(),
            r.reason.clone(),
        ];
        row.extend(phase_cells(&r.phases));
        row.extend([
            r.context_bytes.to_string(),
            r.app_context_bytes.to_string(),
            r.client_stall_ms.to_string(),
            r.download_bytes.to_string(),
            r.trigger_offset_bytes.to_string(),
            r.migration_id.to_string(),
            r.baseline_stall_ms.to_string(),
        ]);
        let host = [
            r.host_steal_ms.to_string(),
            r.edgemob_ran_ms.to_string(),
            r.edgemob_waited_ms.to_string(),
            r.reclaim_ran_ms.to_string(),
            r.others_ran_ms.to_string(),
            r.window_steal_ms.to_string(),
            r.busiest_other.clone(),
            r.busiest_other_ms.to_string(),
        ];
        row.extend(host.map(|cell| {
            if r.host_diagnosed {
                cell
            } else {
                String::new()
            }
        }));
        row.extend([
            r.floor_ms.to_string(),
            r.floor_rtt_ms.to_string(),
            r.floor_move_ms.to_string(),
            r.total_over_floor.to_string(),
        ]);
        out.push_str(&csv_line(&row));
    }
    out
}

/// Column names of `scale.csv`, in order (the fields of [`ScaleSummary`]).
pub const SCALE_CSV_HEADER: [&str; 12] = [
    "ues",
    "records",
    "migrated",
    "total_ms_p50",
    "total_ms_p90",
    "total_ms_p99",
    "total_ms_mean",
    "total_ms_max",
    "context_bytes_mean",
    "burst_ms",
    "migrations_per_s",
    "attempted_per_s",
];

/// `scale.csv` as a string: a header row and one row per burst size.
pub fn scale_csv(summaries: &[ScaleSummary]) -> String {
    let mut out = csv_line(&SCALE_CSV_HEADER.map(String::from));
    for s in summaries {
        out.push_str(&csv_line(&[
            s.ues.to_string(),
            s.records.to_string(),
            s.migrated.to_string(),
            s.total_ms_p50.to_string(),
            s.total_ms_p90.to_string(),
            s.total_ms_p99.to_string(),
            s.total_ms_mean.to_string(),
            s.total_ms_max.to_string(),
            s.context_bytes_mean.to_string(),
            s.burst_ms.to_string(),
            s.migrations_per_s.to_string(),
            s.attempted_per_s.to_string(),
        ]));
    }
    out
}

/// Column names of `scale_records.csv`, in order.
pub const SCALE_RECORDS_CSV_HEADER: [&str; 11] = [
    "ues",
    "ue",
    "ok",
    "mih_commit_ms",
    "app_data_ms",
    "socket_data_ms",
    "cxtp_ms",
    "total_ms",
    "context_bytes",
    "started_offset_ms",
    "ended_offset_ms",
];

/// `scale_records.csv` as a string: one row per UE of every burst.
pub fn scale_records_csv(records: &[ScaleRecord]) -> String {
    let mut out = csv_line(&SCALE_RECORDS_CSV_HEADER.map(String::from));
    for r in records {
        let mut row = vec![r.ues.to_string(), r.ue.clone(), r.ok.to_string()];
        row.extend(phase_cells(&r.phases));
        row.extend([
            r.context_bytes.to_string(),
            r.started_offset_ms.to_string(),
            (r.started_offset_ms + r.phases.total_ms).to_string(),
        ]);
        out.push_str(&csv_line(&row));
    }
    out
}

/// Writes `dir/report.json` (created with `dir` if needed); returns its path.
pub fn write_report_json(report: &DemoReport, dir: &Path) -> Result<PathBuf, ReportError> {
    let mut json = report.to_json()?;
    json.push('\n');
    write_file(dir, "report.json", json.as_bytes())
}

/// Writes `dir/runs.csv`; returns its path.
pub fn write_runs_csv(runs: &[RunRecord], dir: &Path) -> Result<PathBuf, ReportError> {
    write_file(dir, "runs.csv", runs_csv(runs).as_bytes())
}

/// Writes `dir/scale.csv`; returns its path.
pub fn write_scale_csv(summaries: &[ScaleSummary], dir: &Path) -> Result<PathBuf, ReportError> {
    write_file(dir, "scale.csv", scale_csv(summaries).as_bytes())
}

/// Writes `dir/scale.json` (`{"summaries": [...]}`); returns its path.
pub fn write_scale_json(summaries: &[ScaleSummary], dir: &Path) -> Result<PathBuf, ReportError> {
    let doc = ScaleReport {
        summaries: summaries.to_vec(),
    };
    let mut json = serde_json::to_string_pretty(&doc).map_err(|source| ReportError::Json {
        what: "scale summaries",
        source,
    })?;
    json.push('\n');
    write_file(dir, "scale.json", json.as_bytes())
}

/// Writes `dir/scale_records.csv`; returns its path.
pub fn write_scale_records_csv(
    records: &[ScaleRecord],
    dir: &Path,
) -> Result<PathBuf, ReportError> {
    write_file(
        dir,
        "scale_records.csv",
        scale_records_csv(records).as_bytes(),
    )
}

/// Deterministic synthetic records, for tests and for trying the report
/// formats and plots without running an experiment.
pub mod synthetic {
    use super::*;

    /// `n` completed, byte-exact runs with totals spread around 0.8 ms and
    /// contexts around 70 KB, deterministic.
    pub fn runs(n: usize) -> Vec<RunRecord> {
        (0..n)
            .map(|i| {
                // A cheap deterministic spread in [0, 1).
                let u = ((i as u64 * 2_654_435_761) % 1000) as f64 / 1000.0;
                let mih = 0.10 + 0.05 * u;
                let app = 0.05 + 0.04 * u * u;
                let sock = 0.20 + 0.10 * u;
                let cxtp = 0.30 + 0.25 * u * u;
                RunRecord {
                    run: i,
                    ok: true,
                    sha256_ok: true,
                    rst_seen: 0,
                    outcome: OUTCOME_COMPLETED.to_string(),
                    reason: String::new(),
                    phases: Phases {
                        mih_commit_ms: mih,
                        app_data_ms: app,
                        socket_data_ms: sock,
                        cxtp_ms: cxtp,
                        total_ms: mih + app + sock + cxtp + 0.02,
                    },
                    context_bytes: 60_000 + (u * 30_000.0) as u64,
                    app_context_bytes: 55_000 + (u * 28_000.0) as u64,
                    client_stall_ms: 0.9 + 1.5 * u,
                    baseline_stall_ms: 0.9 + 0.5 * u,
                    download_bytes: 50_000_000,
                    trigger_offset_bytes: 10_000_000 + i as u64 * 1000,
                    migration_id: 1000 + i as u64,
                    host_steal_ms: if i % 4 == 0 { 10.0 } else { 0.0 },
                    edgemob_ran_ms: 1.0 + 0.2 * u,
                    edgemob_waited_ms: 0.01 * u,
                    reclaim_ran_ms: if i % 5 == 0 { 0.9 } else { 0.0 },
                    others_ran_ms: 0.5 + u,
                    window_steal_ms: 0.0,
                    busiest_other: "curl".into(),
                    busiest_other_ms: 0.25 + u,
                    host_diagnosed: true,
                    floor_ms: 0.2 + 0.1 * u,
                    floor_rtt_ms: 0.08 + 0.04 * u,
                    floor_move_ms: 0.12 + 0.06 * u,
                    total_over_floor: total_over_floor(
                        mih + app + sock + cxtp + 0.02,
                        0.2 + 0.1 * u,
                    ),
                }
            })
            .collect()
    }

    /// Scale records for bursts of 1, 10, 100 and 1000 UEs.
    pub fn scale_records() -> Vec<ScaleRecord> {
        let mut out = Vec::new();
        for ues in [1usize, 10, 100, 1000] {
            for i in 0..ues {
                let u = ((i as u64 * 2_654_435_761) % 1000) as f64 / 1000.0;
                let load = (ues as f64).log10();
                let total = 0.8 + 0.3 * load + u * (0.2 + 0.4 * load);
                out.push(ScaleRecord {
                    ues,
                    ue: format!("ue{i}"),
                    ok: true,
                    phases: Phases {
                        total_ms: total,
                        cxtp_ms: total * 0.5,
                        socket_data_ms: total * 0.25,
                        mih_commit_ms: total * 0.15,
                        app_data_ms: total * 0.1,
                    },
                    context_bytes: 70_000,
                    started_offset_ms: i as f64 * 0.05,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn run(i: usize, total: f64) -> RunRecord {
        RunRecord {
            run: i,
            ok: true,
            sha256_ok: true,
            outcome: OUTCOME_COMPLETED.into(),
            phases: Phases {
                mih_commit_ms: total * 0.1,
                app_data_ms: total * 0.2,
                socket_data_ms: total * 0.3,
                cxtp_ms: total * 0.4,
                total_ms: total,
            },
            context_bytes: 1000 * i as u64,
            app_context_bytes: 500 * i as u64,
            client_stall_ms: 1.0 + i as f64,
            ..RunRecord::default()
        }
    }

    #[test]
    fn json_has_the_required_keys() {
        let report = DemoReport::from_runs(&synthetic::runs(50));
        let v: Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        for key in [
            "runs",
            "runs_ok",
            "bytes_verified",
            "rst_seen",
            "phases_ms",
            "context_bytes",
            "client_stall_ms",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        for phase in ["mih_commit", "app_data", "socket_data", "cxtp", "total"] {
            for stat in ["mean", "std", "p50", "p99"] {
                assert!(
                    v["phases_ms"][phase][stat].is_number(),
                    "phases_ms.{phase}.{stat}"
                );
            }
        }
        assert!(v["context_bytes"]["mean"].is_number());
        assert!(v["context_bytes"]["max"].is_u64());
        assert!(v["client_stall_ms"]["p50"].is_number());
        assert!(v["client_stall_ms"]["max"].is_number());
        assert_eq!(v["runs"], 50);
        assert_eq!(v["bytes_verified"], true);
        assert_eq!(v["rst_seen"], 0);
        let back: DemoReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn host_steal_is_summed() {
        let runs = synthetic::runs(20);
        let s = DemoReport::from_runs(&runs).host_steal_ms.unwrap();
        assert_eq!(s.total, runs.iter().map(|r| r.host_steal_ms).sum::<f64>());
        assert_eq!(
            s.runs,
            runs.iter().filter(|r| r.host_steal_ms > 0.0).count()
        );
    }

    #[test]
    fn the_tail_is_the_slowest_migrations_and_the_largest_stalls() {
        let mut runs = synthetic::runs(20);
        for r in &mut runs {
            r.phases.total_ms = 0.5;
            r.client_stall_ms = 1.0;
        }
        // Five slow migrations, one of them also the largest stall.
        for (i, run) in [3, 5, 7, 9, 12].into_iter().enumerate() {
            runs[run].phases.total_ms = 2.0 + i as f64;
        }
        runs[7].client_stall_ms = 9.0;
        runs[7].edgemob_ran_ms = 2.5;
        runs[7].edgemob_waited_ms = 3.5;
        runs[7].reclaim_ran_ms = 4.0;
        runs[7].others_ran_ms = 1.5;
        runs[7].window_steal_ms = 10.0;
        runs[7].busiest_other = "kworker/1:1".into();
        runs[7].busiest_other_ms = 1.25;
        runs[7].host_steal_ms = 10.0;
        // A rolled-back run: no total, but its stall counts.
        runs[11].phases.total_ms = 50.0;
        runs[11].outcome = "rolled back".into();
        runs[11].client_stall_ms = 8.0;
        // Four more large stalls, one with unknown CPU figures.
        for (i, run) in [1, 2, 4, 6].into_iter().enumerate() {
            runs[run].client_stall_ms = 4.0 + i as f64 * 0.1;
        }
        runs[4].edgemob_waited_ms = f64::NAN;
        let r = DemoReport::from_runs(&runs);
        let ids: Vec<usize> = r.tail_runs.iter().map(|t| t.run).collect();
        // Run numbers are the indices (synthetic), in order, no duplicate;
        // run 1, the sixth largest stall, is left out.
        assert_eq!(ids, vec![2, 3, 4, 5, 6, 7, 9, 11, 12]);
        let t7 = r.tail_runs.iter().find(|t| t.run == 7).unwrap();
        assert_eq!(
            *t7,
            TailRun {
                run: 7,
                total_ms: Some(4.0),
                client_stall_ms: Some(9.0),
                edgemob_ran_ms: Some(2.5),
                edgemob_waited_ms: Some(3.5),
                reclaim_ran_ms: Some(4.0),
                others_ran_ms: Some(1.5),
                window_steal_ms: Some(10.0),
                busiest_other: Some(("kworker/1:1".into(), 1.25)),
                host_steal_ms: 10.0,
            }
        );
        let t11 = r.tail_runs.iter().find(|t| t.run == 11).unwrap();
        assert_eq!(t11.total_ms, None, "rolled back");
        let t4 = r.tail_runs.iter().find(|t| t.run == 4).unwrap();
        assert_eq!(t4.edgemob_waited_ms, None);
        // The CPU wait summary leaves the unknown run out.
        let waited = r.edgemob_waited_ms.unwrap();
        assert_eq!(waited.n, 19);
        assert_eq!(waited.max, 3.5);
        assert_eq!(
            r.reclaim_windows,
            Some(runs.iter().filter(|r| r.reclaim_ran_ms > 0.0).count())
        );
        // It survives report.json.
        let back: DemoReport = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        assert_eq!(back.tail_runs, r.tail_runs);
    }

    #[test]
    fn phases_are_over_completed_runs_and_stall_over_all() {
        let mut runs = vec![run(1, 1.0), run(2, 2.0), run(3, 3.0)];
        let mut rolled = run(4, 100.0);
        rolled.outcome = "rolled back".into();
        rolled.ok = false;
        rolled.client_stall_ms = 40.0;
        rolled.context_bytes = 1_000_000;
        runs.push(rolled);
        let r = DemoReport::from_runs(&runs);
        assert_eq!(r.runs, 4);
        assert_eq!(r.runs_ok, 3);
        assert_eq!(r.runs_completed, 3);
        assert_eq!(r.phases_ms.total.n, 3);
        assert_eq!(r.phases_ms.total.mean, 2.0);
        assert_eq!(r.phases_ms.total.max, 3.0);
        assert_eq!(r.phases_ms.total.std, 1.0);
        assert_eq!(r.phases_ms.total.p50, 2.0);
        assert_eq!(r.context_bytes.max, 3000);
        assert_eq!(r.context_bytes.mean, 2000.0);
        assert_eq!(r.client_stall_ms.max, 40.0);
        assert_eq!(r.client_stall_ms.n, 4);
        assert_eq!(r.outcomes["completed"], 3);
        assert_eq!(r.outcomes["rolled back"], 1);
        // A 40 ms stall misses the stall target.
        let stall = r.targets.iter().find(|t| t.name.contains("stall")).unwrap();
        assert!(!stall.met);
        assert!(!r.targets_met);
    }

    #[test]
    fn one_bad_sha_or_rst_fails_the_checks() {
        let mut runs = synthetic::runs(10);
        assert!(DemoReport::from_runs(&runs).bytes_verified);
        runs[3].sha256_ok = false;
        runs[7].rst_seen = 2;
        runs[8].rst_seen = 1;
        let r = DemoReport::from_runs(&runs);
        assert!(!r.bytes_verified);
        assert_eq!(r.rst_seen, 3);
        let by_name = |n: &str| r.targets.iter().find(|t| t.name == n).unwrap().clone();
        assert!(!by_name("zero RST").met);
        assert_eq!(by_name("zero RST").value, 3.0);
        assert!(!by_name("all runs byte-exact").met);
        assert_eq!(by_name("all runs byte-exact").value, 0.9);
    }

    #[test]
    fn synthetic_runs_meet_every_target() {
        let r = DemoReport::from_runs(&synthetic::runs(50));
        assert!(r.targets_met, "{:#?}", r.targets);
        assert_eq!(r.targets.len(), 6);
    }

    #[test]
    fn a_migration_far_above_its_floor_misses_the_ratio_target() {
        let mut runs = synthetic::runs(10);
        for r in &mut runs {
            r.floor_ms = r.phases.total_ms / 9.0;
            r.total_over_floor = total_over_floor(r.phases.total_ms, r.floor_ms);
        }
        let r = DemoReport::from_runs(&runs);
        let t = r
            .targets
            .iter()
            .find(|t| t.name.starts_with("total / floor"))
            .unwrap();
        assert!(!t.met && (t.value - 9.0).abs() < 1e-9, "{t:?}");
        assert!(crate::table::table_one(&r).contains("total / floor p50 <= 8x"));
    }

    #[test]
    fn slow_runs_miss_the_latency_targets() {
        let runs: Vec<RunRecord> = (0..20).map(|i| run(i, 11.5)).collect();
        let r = DemoReport::from_runs(&runs);
        assert!(!r.targets[0].met && !r.targets[1].met);
        assert_eq!(r.targets[0].value, 11.5);
    }

    #[test]
    fn empty_input_meets_nothing_and_stays_finite() {
        let r = DemoReport::from_runs(&[]);
        assert_eq!(r.runs, 0);
        assert!(!r.bytes_verified);
        assert!(r.targets.iter().all(|t| !t.met));
        assert_eq!(r.floor.floor_ms.n, 0);
        // Nothing was diagnosed: those figures are null, every other one a
        // number.
        let mut v: Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        for key in HOST_DIAGNOSIS_NULLS {
            assert!(v[key].is_null(), "{key}");
            v.as_object_mut().unwrap().remove(key);
        }
        let json = v.to_string();
        assert!(!json.contains("null"), "{json}");
    }

    /// The report's host-noise figures that are null when not diagnosed.
    const HOST_DIAGNOSIS_NULLS: [&str; 5] = [
        "host_steal_ms",
        "edgemob_ran_ms",
        "edgemob_waited_ms",
        "others_ran_ms",
        "reclaim_windows",
    ];

    #[test]
    fn without_the_host_diagnosis_its_figures_are_null_and_empty() {
        let mut runs = synthetic::runs(10);
        for r in &mut runs {
            r.host_diagnosed = false;
            r.host_steal_ms = f64::NAN;
            r.edgemob_ran_ms = f64::NAN;
            r.busiest_other = String::new();
        }
        let r = DemoReport::from_runs(&runs);
        assert!(!r.host_diagnosed);
        assert!(r.tail_runs.is_empty() && r.damon_pageout.is_empty());
        let v: Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        for key in HOST_DIAGNOSIS_NULLS {
            assert!(v[key].is_null(), "{key}: {}", v[key]);
        }
        assert_eq!(v["tail_runs"], serde_json::json!([]));
        assert_eq!(v["host_diagnosed"], false);
        // The floor is there all the same, and the report reads back.
        assert_eq!(v["floor"]["total_over_floor"]["n"], 10);
        let back: DemoReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        // runs.csv keeps its columns; the host-noise cells are empty.
        let text = runs_csv(&runs);
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
        let host = header.iter().position(|h| h == "host_steal_ms").unwrap();
        let floor = header.iter().position(|h| h == "floor_ms").unwrap();
        for row in rd.records().map(Result::unwrap) {
            assert_eq!(row.len(), RUNS_CSV_HEADER.len());
            assert!((host..floor).all(|i| row[i].is_empty()), "{row:?}");
            assert!(row[floor].parse::<f64>().unwrap() > 0.0);
        }
    }

    #[test]
    fn total_over_floor_is_per_completed_run_and_summarized() {
        // Totals 1..=10 ms over floors of 0.5 ms: ratios 2, 4, ..., 20.
        let mut runs: Vec<RunRecord> = (1..=10)
            .map(|i| {
                let mut r = run(i, i as f64);
                r.floor_ms = 0.5;
                r.floor_rtt_ms = 0.2;
                r.floor_move_ms = 0.3;
                r
            })
            .collect();
        // A rolled-back run's floor counts, its ratio does not; an
        // unmeasured floor counts in neither.
        runs[9].outcome = "rolled back".into();
        runs[9].floor_ms = 0.25;
        runs[8].floor_ms = f64::NAN;
        let f = DemoReport::from_runs(&runs).floor;
        assert_eq!(f.floor_ms.n, 9);
        assert_eq!(f.floor_ms.p50, 0.5);
        assert_eq!(f.floor_ms.p99, 0.5);
        assert_eq!(f.rtt_ms.n, 10);
        assert_eq!(f.total_over_floor.n, 8);
        // Ratios 2, 4, ..., 16: nearest-rank p50 is the 4th, p99 the 8th.
        assert_eq!(f.total_over_floor.p50, 8.0);
        assert_eq!(f.total_over_floor.p99, 16.0);
        assert_eq!(f.total_over_floor.max, 16.0);
        assert_eq!(total_over_floor(3.0, 0.5), 6.0);
        assert!(total_over_floor(3.0, 0.0).is_nan());
        assert!(total_over_floor(3.0, f64::NAN).is_nan());
        assert!(total_over_floor(f64::NAN, 0.5).is_nan());
    }

    #[test]
    fn no_completed_run_gives_zero_stats_with_n_zero() {
        let mut r = run(1, 1.0);
        r.outcome = "rejected".into();
        let rep = DemoReport::from_runs(&[r]);
        assert_eq!(rep.phases_ms.total.n, 0);
        assert_eq!(rep.phases_ms.total.p50, 0.0);
        assert!(!rep.targets[0].met, "no data is not a met target");
    }

    #[test]
    fn runs_csv_round_trips_through_a_csv_reader() {
        let mut runs = synthetic::runs(3);
        runs[1].reason = "target said \"no\", twice\nthen gave up".into();
        runs[1].outcome = "rejected".into();
        let text = runs_csv(&runs);
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, RUNS_CSV_HEADER.map(String::from).to_vec());
        let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3);
        for (row, r) in rows.iter().zip(&runs) {
            assert_eq!(row.len(), RUNS_CSV_HEADER.len());
            assert_eq!(row[0].parse::<usize>().unwrap(), r.run);
            assert_eq!(&row[4], r.outcome);
            assert_eq!(&row[5], r.reason);
            assert_eq!(row[10].parse::<f64>().unwrap(), r.phases.total_ms);
            assert_eq!(row[11].parse::<u64>().unwrap(), r.context_bytes);
            assert_eq!(row[13].parse::<f64>().unwrap(), r.client_stall_ms);
            assert_eq!(row[16].parse::<u64>().unwrap(), r.migration_id);
            // Diagnosed runs (synthetic ones are) fill the host columns.
            assert_eq!(row[18].parse::<f64>().unwrap(), r.host_steal_ms);
            assert_eq!(&row[24], r.busiest_other);
            let floor: Vec<f64> = (26..30).map(|i| row[i].parse().unwrap()).collect();
            assert_eq!(
                floor,
                [
                    r.floor_ms,
                    r.floor_rtt_ms,
                    r.floor_move_ms,
                    r.total_over_floor
                ]
            );
            assert!(floor.iter().all(|v| v.is_finite() && *v > 0.0), "{floor:?}");
        }
        assert_eq!(
            RUNS_CSV_HEADER[26..],
            [
                "floor_ms",
                "floor_rtt_ms",
                "floor_move_ms",
                "total_over_floor"
            ]
        );
    }

    #[test]
    fn the_floor_survives_report_json() {
        let runs = synthetic::runs(20);
        let r = DemoReport::from_runs(&runs);
        assert_eq!(r.floor.floor_ms.n, 20);
        assert_eq!(r.floor.total_over_floor.n, 20);
        assert!(r.floor.total_over_floor.p50 > 1.0);
        let v: Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        for key in ["floor_ms", "rtt_ms", "move_ms", "total_over_floor"] {
            for stat in ["p50", "p99"] {
                assert!(
                    v["floor"][key][stat].as_f64().unwrap() > 0.0,
                    "{key}.{stat}"
                );
            }
        }
        let back: DemoReport = serde_json::from_value(v).unwrap();
        assert_eq!(back.floor, r.floor);
        // A report written before the floor existed still reads.
        let mut old: Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        old.as_object_mut().unwrap().remove("floor");
        let old: DemoReport = serde_json::from_value(old).unwrap();
        assert_eq!(old.floor, FloorStats::default());
        // And a run record, with its floor.
        let one: RunRecord =
            serde_json::from_str(&serde_json::to_string(&runs[3]).unwrap()).unwrap();
        assert_eq!(one, runs[3]);
    }

    #[test]
    fn writers_create_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/out");
        let runs = synthetic::runs(5);
        let report = DemoReport::from_runs(&runs);
        let p = write_report_json(&report, &out).unwrap();
        assert_eq!(p, out.join("report.json"));
        let back: DemoReport = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert_eq!(back, report);
        let p = write_runs_csv(&runs, &out).unwrap();
        assert_eq!(fs::read_to_string(p).unwrap().lines().count(), 6);
        let recs = synthetic::scale_records();
        let sums = ScaleSummary::from_records(&recs);
        let p = write_scale_json(&sums, &out).unwrap();
        let v: Value = serde_json::from_slice(&fs::read(p).unwrap()).unwrap();
        assert_eq!(v["summaries"].as_array().unwrap().len(), 4);
        let p = write_scale_csv(&sums, &out).unwrap();
        let mut rd = csv::Reader::from_path(p).unwrap();
        assert_eq!(rd.records().count(), 4);
        let p = write_scale_records_csv(&recs, &out).unwrap();
        let mut rd = csv::Reader::from_path(p).unwrap();
        assert_eq!(rd.records().count(), recs.len());
    }

    #[test]
    fn writer_reports_an_unwritable_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, b"x").unwrap();
        let err = write_runs_csv(&[], &file.join("sub")).unwrap_err();
        assert!(matches!(err, ReportError::Io { .. }), "{err}");
    }

    #[test]
    fn scale_summary_groups_and_rates() {
        let mk = |ues, i: usize, ok, total, start| ScaleRecord {
            ues,
            ue: format!("ue{i}"),
            ok,
            phases: Phases {
                total_ms: total,
                ..Phases::default()
            },
            context_bytes: 1000,
            started_offset_ms: start,
        };
        let recs = vec![
            mk(4, 0, true, 1.0, 0.0),
            mk(4, 1, true, 2.0, 0.5),
            mk(4, 2, true, 3.0, 1.0),
            mk(4, 3, false, 9.0, 1.0), // failed, but it ends the burst at 10 ms
            mk(1, 0, true, 0.5, 0.0),
        ];
        let s = ScaleSummary::from_records(&recs);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].ues, 1);
        assert_eq!(s[0].burst_ms, 0.5);
        assert_eq!(s[0].migrations_per_s, 2000.0);
        let four = &s[1];
        assert_eq!((four.ues, four.records, four.migrated), (4, 4, 3));
        assert_eq!(four.total_ms_p50, 2.0);
        assert_eq!(four.total_ms_p99, 3.0);
        assert_eq!(four.burst_ms, 10.0);
        assert_eq!(four.migrations_per_s, 300.0);
        assert_eq!(four.attempted_per_s, 400.0);
        assert!(ScaleSummary::from_records(&[]).is_empty());
    }

    #[test]
    fn zero_length_burst_has_zero_rate_not_infinity() {
        let r = ScaleRecord {
            ues: 1,
            ok: true,
            ..ScaleRecord::default()
        };
        let s = ScaleSummary::from_records(&[r]);
        assert_eq!(s[0].migrations_per_s, 0.0);
        assert_eq!(s[0].attempted_per_s, 0.0);
    }
}

//! Command-line entry points, mounted by the researchers' `edgemob-lab`
//! binary as `edgemob-lab demo`, `edgemob-lab scale` and `edgemob-lab roam`.

use crate::demo::{DemoOptions, TriggerSource};
use crate::report::{self, DemoReport, ScaleSummary};
use crate::scale::ScaleOptions;
use crate::{plot, table};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// Parses sizes and rates with an optional decimal suffix: k, M, G
/// (`16M` = 16,000,000) or binary suffix Ki, Mi, Gi (`16Mi` = 16,777,216).
pub fn parse_quantity(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mul) = match s {
        _ if s.ends_with("Ki") => (&s[..s.len() - 2], 1u64 << 10),
        _ if s.ends_with("Mi") => (&s[..s.len() - 2], 1 << 20),
        _ if s.ends_with("Gi") => (&s[..s.len() - 2], 1 << 30),
        _ if s.ends_with(['k', 'K']) => (&s[..s.len() - 1], 1_000),
        _ if s.ends_with('M') => (&s[..s.len() - 1], 1_000_000),
        _ if s.ends_with('G') => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a number with an optional k/M/G or Ki/Mi/Gi suffix"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("{s:?} must be a non-negative number"));
    }
    Ok((v * mul as f64).round() as u64)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TriggerArg {
    /// Fire the X2 Handover Request ACK directly (TriggerHandover).
    X2,
    /// ns-3's LENA simulates the X2 handovers in real time and its bridge
    /// triggers the migrations (the paper's setup; needs the ns-3
    /// environment of scripts/install-ns3.sh).
    Ns3,
    /// Replay the X2 handover starts of a handover trace (--trace) at its
    /// times, e.g. one `edgemob-lab trace from-pcap` made from a --trigger ns3
    /// run's X2 captures.
    Replay,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Handovers to run (the paper ran 50).
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Size of the video file (suffixes k, M, G, Ki, Mi, Gi).
    #[arg(long, default_value = "16Mi", value_parser = parse_quantity)]
    pub size: u64,
    /// Video bitrate the server paces the download at, bits per second.
    #[arg(long, default_value = "40M", value_parser = parse_quantity)]
    pub bitrate: u64,
    /// Application context each UE's service hands over (the paper's UE
    /// contexts were about 75 KB).
    #[arg(long, default_value = "75k", value_parser = parse_quantity)]
    pub context_bytes: u64,
    /// Where report.json, runs.csv and the plots go.
    #[arg(long, default_value = "edgemob-demo")]
    pub out: PathBuf,
    /// Keep each migrated connection's CRIU-format image files here
    /// (`crit decode` reads them).
    #[arg(long)]
    pub save_images: Option<PathBuf>,
    /// Leave the namespaces and processes running for inspection.
    #[arg(long)]
    pub keep: bool,
    /// Seed of the random handover moments and the video content.
    #[arg(long, default_value_t = 2015)]
    pub seed: u64,
    /// What fires the handovers.
    #[arg(long, value_enum, default_value = "x2")]
    pub trigger: TriggerArg,
    /// The handover trace of --trigger replay (JSON lines; IMSI 1 moving
    /// between cells 1 and 2, starting in cell 1).
    #[arg(long, required_if_eq("trigger", "replay"))]
    pub trace: Option<PathBuf>,
    /// The edgemob binary the agents run from (default: next to this one).
    #[arg(long, env = "EDGEMOB_BIN")]
    pub edgemob: Option<PathBuf>,
    /// The video server binary (default: next to this one).
    #[arg(long, env = "EDGEMOB_VIDEO_SERVER")]
    pub video_server: Option<PathBuf>,
    /// Log level of the agents (their logs are in OUT/work/cluster).
    #[arg(long, default_value = "warn")]
    pub agent_log: String,
    /// Log level of the video servers (their logs are in OUT/work/cluster;
    /// `info` logs every export and arrival, `trace` every API call). Not
    /// `info` by default: those lines are written while a migration is
    /// still in flight and take CPU time from it.
    #[arg(long, default_value = "warn")]
    pub service_log: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Also attribute host noise in each handover's window: per-thread
    /// scheduler counters read before each trigger and after its window
    /// (they cost CPU time just before the trigger), host steal, the
    /// guest's memory reclaim, and who had the CPUs in the slowest runs.
    #[arg(long)]
    pub diagnose_host: bool,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Burst sizes: how many UEs are handed over at once, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    pub ues: Vec<usize>,
    /// Application context per UE.
    #[arg(long, default_value = "75k", value_parser = parse_quantity)]
    pub context_bytes: u64,
    /// Each UE's download.
    #[arg(long, default_value = "256Ki", value_parser = parse_quantity)]
    pub size: u64,
    /// Each UE's download pace, bits per second (1,000 UEs at 100 kbit/s
    /// are 100 Mbit/s through the namespaces, alongside the migrations).
    #[arg(long, default_value = "100k", value_parser = parse_quantity)]
    pub bitrate: u64,
    /// Where scale.csv, scale.json, ues.csv and scale.png go.
    #[arg(long, default_value = "edgemob-scale")]
    pub out: PathBuf,
    /// The edgemob binary the agents run from (default: next to this one).
    #[arg(long, env = "EDGEMOB_BIN")]
    pub edgemob: Option<PathBuf>,
    /// The video server binary (default: next to this one).
    #[arg(long, env = "EDGEMOB_VIDEO_SERVER")]
    pub video_server: Option<PathBuf>,
    /// Log level of the agents (their logs are in OUT/work).
    #[arg(long, default_value = "warn")]
    pub agent_log: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RoamArgs {
    /// UEs of the synthetic trace (IMSIs 1..N).
    #[arg(long, default_value_t = 100)]
    pub ues: usize,
    /// eNBCs (one cell each, on a ring).
    #[arg(long, default_value_t = 4)]
    pub enbcs: usize,
    /// X2 handovers of each UE in the synthetic trace.
    #[arg(long, default_value_t = 3)]
    pub handovers_per_ue: u32,
    /// Span of the synthetic trace, seconds.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Seed of the synthetic trace and the video content.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Replay this trace instead of a synthetic one (JSON lines; IMSIs
    /// 1..N, cells 1..ENBCS).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Application context per UE.
    #[arg(long, default_value = "75k", value_parser = parse_quantity)]
    pub context_bytes: u64,
    /// Each UE's download pace, bits per second.
    #[arg(long, default_value = "400k", value_parser = parse_quantity)]
    pub bitrate: u64,
    /// Where the trace, scenario, migrations.jsonl and logs go.
    #[arg(long, default_value = "edgemob-roam")]
    pub out: PathBuf,
    /// The edgemob binary the agents run from (default: next to this one).
    #[arg(long, env = "EDGEMOB_BIN")]
    pub edgemob: Option<PathBuf>,
    /// The video server binary (default: next to this one).
    #[arg(long, env = "EDGEMOB_VIDEO_SERVER")]
    pub video_server: Option<PathBuf>,
    /// Log level of the agents (their logs are in OUT/work/cluster).
    #[arg(long, default_value = "warn")]
    pub agent_log: String,
}

/// `edgemob-lab roam`. Ok(true) when every handover migrated and every
/// download was exact.
pub async fn run_roam(a: RoamArgs) -> Result<bool, String> {
    let opts = crate::roam::RoamOptions {
        ues: a.ues,
        enbcs: a.enbcs,
        handovers_per_ue: a.handovers_per_ue,
        duration_s: a.duration,
        seed: a.seed,
        trace: a.trace.as_deref().map(absolute),
        context_bytes: a.context_bytes as usize,
        bitrate: a.bitrate,
        out: absolute(&a.out),
        edgemob: edgemob_binary(a.edgemob)?,
        video_server: video_server(a.video_server),
        agent_log: a.agent_log,
    };
    if !edgemob_testbed::is_root() {
        return Err(crate::demo::DemoError::NotRoot.to_string());
    }
    println!(
        "edgemob-lab roam: {} eNBCs; {}; replayed against real agents, each UE with a live download",
        opts.enbcs,
        match &opts.trace {
            Some(t) => format!("the X2 handovers of {}", t.display()),
            None => format!(
                "{} UEs making {} X2 handovers each over {} s",
                opts.ues, opts.handovers_per_ue, opts.duration_s
            ),
        }
    );
    let out = crate::roam::run(&opts).await.map_err(|e| e.to_string())?;
    let t = out.totals_ms();
    let d = out.start_delays_ms();
    println!(
        "  {} UEs, {} handovers: {} migrations completed, {} of {} downloads exact, in {:.1} s",
        out.ues,
        out.handovers,
        out.completed(),
        out.downloads_ok,
        out.ues,
        out.wall.as_secs_f64()
    );
    println!(
        "  per-UE migration: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; trace time -> migration start: p50 {:.3} ms, p99 {:.3} ms",
        t.p50, t.p99, t.max, d.p50, d.p99
    );
    for ((from, to), (n, ok)) in crate::roam::by_cells(&out.migrations) {
        println!("    cell {from} -> {to}: {ok}/{n} completed");
    }
    for m in out.migrations.iter().filter(|m| !m.completed()).take(10) {
        println!(
            "    {} at {} µs: {} {}",
            m.ue, m.trace_time_us, m.outcome, m.reason
        );
    }
    println!("  wrote {}", opts.out.join("migrations.jsonl").display());
    Ok(out.ok())
}

/// This binary (`edgemob-lab`): `--trigger replay` runs its `replay`.
fn this_binary() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| e.to_string())
}

/// The `edgemob` binary the harnesses start their agents from: the one
/// given (`--edgemob`, `EDGEMOB_BIN`), or the one next to this binary.
pub fn edgemob_binary(given: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(absolute(&p))
        } else {
            Err(format!(
                "no edgemob binary at {} (given by --edgemob or EDGEMOB_BIN)",
                p.display()
            ))
        };
    }
    let me = this_binary()?;
    let beside = me.with_file_name("edgemob");
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(format!(
            "cannot find the edgemob binary beside {}; build it with `cargo build --release -p edgemob-agent` or pass --edgemob PATH",
            me.display()
        ))
    }
}

/// The video server given, or the one next to this binary.
fn video_server(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("edgemob-video-server")))
            .unwrap_or_else(|| PathBuf::from("edgemob-video-server"))
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `edgemob-lab demo`. Ok(true) when every run was byte-exact, RST-free and
/// completed.
pub async fn run_demo(a: DemoArgs) -> Result<bool, String> {
    let edgemob = edgemob_binary(a.edgemob)?;
    let opts = DemoOptions {
        runs: a.runs.max(1),
        size: a.size.max(1),
        bitrate: a.bitrate,
        out: absolute(&a.out),
        save_images: a.save_images.as_deref().map(absolute),
        keep: a.keep,
        context_bytes: a.context_bytes as usize,
        seed: a.seed,
        trigger: match a.trigger {
            TriggerArg::X2 => TriggerSource::X2,
            TriggerArg::Ns3 => TriggerSource::Ns3(crate::ns3::Ns3Options::locate(&edgemob)),
            TriggerArg::Replay => TriggerSource::Replay {
                trace: absolute(
                    a.trace
                        .as_deref()
                        .ok_or("--trigger replay needs --trace FILE")?,
                ),
                replayer: this_binary()?,
            },
        },
        edgemob,
        video_server: video_server(a.video_server),
        progress: !a.quiet,
        agent_log: a.agent_log,
        service_log: a.service_log,
        diagnose_host: a.diagnose_host,
    };
    println!(
        "edgemob-lab demo: {} handovers of a {} MB video download paced at {} Mbit/s, {} KB of application context per UE",
        opts.runs,
        opts.size as f64 / 1e6,
        opts.bitrate as f64 / 1e6,
        opts.context_bytes as f64 / 1e3
    );
    let out = crate::demo::run(&opts).await.map_err(|e| e.to_string())?;
    let mut report = DemoReport::from_runs(&out.runs);
    if opts.diagnose_host {
        report.damon_pageout = crate::reclaim::damon_pageout();
    }
    let files = write_demo_outputs(&report, &out.runs, &opts.out)?;
    println!("\n{}", table::table_one(&report));
    for f in files {
        println!("  wrote {}", f.display());
    }
    if !out.kept.is_empty() {
        println!("  namespaces kept for inspection: {}", out.kept.join(" "));
    }
    Ok(out.runs.iter().all(|r| r.ok))
}

fn write_demo_outputs(
    report: &DemoReport,
    runs: &[report::RunRecord],
    dir: &Path,
) -> Result<Vec<PathBuf>, String> {
    let mut files = vec![
        report::write_report_json(report, dir).map_err(|e| e.to_string())?,
        report::write_runs_csv(runs, dir).map_err(|e| e.to_string())?,
    ];
    for (name, f) in [
        (
            "fig11_total_time.png",
            plot::fig11_total_histogram as fn(&[report::RunRecord], &Path) -> _,
        ),
        ("fig12_context_size.png", plot::fig12_context_histogram),
        ("phases.png", plot::phases_boxplot_or_bars),
    ] {
        let path = dir.join(name);
        match f(runs, &path) {
            Ok(()) => files.push(path),
            Err(e) => eprintln!("edgemob-lab demo: {name} not drawn: {e}"),
        }
    }
    Ok(files)
}

/// `edgemob-lab scale`. Ok(true) when every UE of every burst migrated and
/// every download was exact.
pub async fn run_scale(a: ScaleArgs) -> Result<bool, String> {
    let opts = ScaleOptions {
        ues: a.ues.clone(),
        context_bytes: a.context_bytes as usize,
        size: a.size,
        bitrate: a.bitrate,
        out: absolute(&a.out),
        edgemob: edgemob_binary(a.edgemob)?,
        video_server: video_server(a.video_server),
        agent_log: a.agent_log,
        progress: !a.quiet,
    };
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| format!("create {}: {e}", opts.out.display()))?;
    let mut all_ok = true;
    let mut records = Vec::new();
    for n in &a.ues {
        println!("edgemob-lab scale: {n} UE(s) handed over in one burst ...");
        let bursts = crate::scale::run(&ScaleOptions {
            ues: vec![*n],
            ..opts.clone()
        })
        .await
        .map_err(|e| e.to_string())?;
        for b in bursts {
            let migrated = b.records.iter().filter(|r| r.ok).count();
            println!(
                "  {} UEs: {} migrated, {} downloads exact, burst {:.1} ms",
                b.ues,
                migrated,
                b.downloads_ok,
                b.duration.as_secs_f64() * 1e3
            );
            all_ok &= migrated == b.ues && b.downloads_ok == b.ues;
            records.extend(b.records);
        }
    }
    let summaries = ScaleSummary::from_records(&records);
    let mut files = vec![
        report::write_scale_csv(&summaries, &opts.out).map_err(|e| e.to_string())?,
        report::write_scale_json(&summaries, &opts.out).map_err(|e| e.to_string())?,
        report::write_scale_records_csv(&records, &opts.out).map_err(|e| e.to_string())?,
    ];
    let plot_path = opts.out.join("scale.png");
    match plot::scale_plot(&summaries, &plot_path) {
        Ok(()) => files.push(plot_path),
        Err(e) => eprintln!("edgemob-lab scale: scale.png not drawn: {e}"),
    }
    println!("\n{}", table::scale_table(&summaries));
    for f in files {
        println!("  wrote {}", f.display());
    }
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::parse_quantity;

    #[test]
    fn quantities_take_decimal_and_binary_suffixes() {
        assert_eq!(parse_quantity("40M"), Ok(40_000_000));
        assert_eq!(parse_quantity("16Mi"), Ok(16 << 20));
        assert_eq!(parse_quantity("75k"), Ok(75_000));
        assert_eq!(parse_quantity("1.5G"), Ok(1_500_000_000));
        assert_eq!(parse_quantity("1234"), Ok(1234));
        assert!(parse_quantity("fast").is_err());
        assert!(parse_quantity("-3M").is_err());
    }
}

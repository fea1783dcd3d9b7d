//! Command-line front ends: `replay`, `trace from-pcap`, `trace synth` and
//! `mock-agents`, as clap `Args` plus a `run_*` function each, so any binary
//! can mount them as subcommands.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::driver::DriverOptions;
use crate::replay::{ReplayOptions, ReplayReport};
use crate::scenario::Scenario;
use crate::synth::SynthOptions;
use crate::x2pcap::{self, Addressing};

/// Any failure of these commands; the message is meant for the user.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The scenario file.
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// The trace file.
    #[error(transparent)]
    Trace(#[from] crate::trace::TraceError),
    /// The replay.
    #[error(transparent)]
    Replay(#[from] crate::replay::ReplayError),
    /// Synthesis options.
    #[error(transparent)]
    Synth(#[from] crate::synth::SynthError),
    /// A capture file.
    #[error("{path}: {source}")]
    Pcap {
        /// The capture.
        path: PathBuf,
        /// What is wrong in it.
        #[source]
        source: x2pcap::X2PcapError,
    },
    /// Converting captures.
    #[error("{0}")]
    Addressing(x2pcap::X2PcapError),
    /// Reading or writing a file.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Some migrations did not complete.
    #[error("{failed} of {total} migrations did not complete (see the table above)")]
    NotAllCompleted {
        /// Migrations (or completions) that did not succeed.
        failed: usize,
        /// All migrations.
        total: usize,
    },
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.to_owned();
    move |source| CliError::Io { what, path, source }
}

/// `replay TRACE --scenario FILE [--speed X]`.
#[derive(Debug, Args, Clone)]
#[command(
    about = "Replay a handover trace against running agents (no simulator needed)",
    long_about = "Replay a handover trace (JSON lines, as the ns-3 bridge, `trace from-pcap` and \
                  `trace synth` write) against running agents, without ns-3.\n\n\
                  Every handover_start becomes a TriggerHandover on the agent of its source cell, \
                  every handover_end_ok a CompleteHandover on the agent of its target cell, at the \
                  record's time divided by --speed. A UE's events keep their order (an end is sent \
                  only once its start was accepted; a UE's next handover waits for its previous \
                  migration); different UEs run concurrently. Prints one line per migration with \
                  its outcome, the delay from the trace time to the trigger and to the migration's \
                  start, and the agent's phase timings; exits with an error unless every migration \
                  completed."
)]
pub struct ReplayArgs {
    /// The trace (JSON lines, one handover event per line).
    pub trace: PathBuf,
    /// Scenario (TOML): IMSI → UE identity, cell → agent socket.
    #[arg(long, short)]
    pub scenario: PathBuf,
    /// Trace seconds per wall-clock second: 1 is real time, 10 ten times
    /// faster, 0 as fast as possible (order kept).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Also write every result as a JSON line to this file.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Calls to agents outstanding at once.
    #[arg(long, default_value_t = 64)]
    pub max_in_flight: usize,
    /// Seconds a migration may take from its trigger's acceptance to its outcome.
    #[arg(long, default_value_t = 30.0)]
    pub migration_timeout: f64,
    /// Seconds the whole replay may take (default: the trace's span at this
    /// speed + the migration timeout + 30).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Print only the totals, not one line per migration.
    #[arg(long)]
    pub summary_only: bool,
    /// Exit successfully even if some migrations did not complete.
    #[arg(long)]
    pub allow_failures: bool,
}

fn seconds(v: f64, flag: &str) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| CliError::Usage(format!("{flag} must be a number of seconds ≥ 0, not {v}")))
}

/// Runs `replay`; prints the table and totals on stdout.
pub async fn run_replay(args: ReplayArgs) -> Result<ReplayReport, CliError> {
    let scenario = Arc::new(Scenario::load(&args.scenario)?);
    let records = crate::trace::read_file(&args.trace)?;
    let opts = ReplayOptions {
        speed: args.speed,
        driver: DriverOptions {
            max_in_flight: args.max_in_flight.max(1),
            migration_timeout: seconds(args.migration_timeout, "--migration-timeout")?,
            ..DriverOptions::default()
        },
        total_timeout: args.timeout.map(|t| seconds(t, "--timeout")).transpose()?,
    };
    let mut out = match &args.out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(io("cannot create", p))?,
        )),
        None => None,
    };
    let report = crate::replay::replay(records, scenario, opts, None).await?;
    if let (Some(w), Some(p)) = (out.as_mut(), &args.out) {
        for e in &report.events {
            writeln!(w, "{}", e.to_json_line()).map_err(io("cannot write", p))?;
        }
        w.flush().map_err(io("cannot write", p))?;
    }
    // A closed stdout (`| head`) must not turn into a panic.
    let mut stdout = std::io::stdout().lock();
    if !args.summary_only {
        let _ = write!(stdout, "{}", report.table());
    }
    let _ = writeln!(stdout, "{}", report.summary());
    drop(stdout);
    if !report.all_completed() && !args.allow_failures {
        let migrations = report.migrations();
        let failed = migrations.iter().filter(|m| !m.completed()).count()
            + report
                .completes()
                .iter()
                .filter(|c| c.error.is_some())
                .count()
            + report.unsent
            + report.unfinished;
        return Err(CliError::NotAllCompleted {
            failed,
            total: migrations.len(),
        });
    }
    Ok(report)
}

/// `trace …`.
#[derive(Debug, Args, Clone)]
#[command(about = "Make handover traces: from ns-3 X2 captures, or synthetic ones")]
pub struct TraceArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TraceCommand,
}

/// `trace` subcommands (their help comes from the argument structs: a doc
/// comment on a variant would replace it).
#[derive(Debug, Subcommand, Clone)]
pub enum TraceCommand {
    #[allow(missing_docs)]
    FromPcap(FromPcapArgs),
    #[allow(missing_docs)]
    Synth(SynthArgs),
}

/// `trace from-pcap X2.pcap… [-o trace.jsonl]`.
#[derive(Debug, Args, Clone)]
#[command(
    about = "Decode ns-3 X2 link captures into a handover trace",
    long_about = "Decode ns-3 X2 link captures (NoBackhaulEpcHelper's X2LinkEnablePcap: libpcap, \
                  link type PPP) into a handover trace. X2-C is UDP port 4444 carrying ns-3's \
                  EpcX2Header: every HANDOVER REQUEST ACKNOWLEDGE becomes a handover_start (its \
                  REQUEST gives the IMSI and the target cell), every UE CONTEXT RELEASE a \
                  handover_end_ok. Give both ends' captures of a link, or a folder of captures: \
                  copies of one message are merged.\n\n\
                  X2 addresses are mapped to cells with the scenario's [x2] table if it has one, \
                  else by ns-3's X2 addressing (LteHelper::AddX2Interface over all eNBs, one cell \
                  per eNB) for --enbs eNBs, the scenario's cell count, or the smallest eNB count \
                  consistent with the captures."
)]
pub struct FromPcapArgs {
    /// Capture files, or folders whose *.pcap files are all read.
    #[arg(required = true)]
    pub pcaps: Vec<PathBuf>,
    /// Write the trace here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Number of eNBs of the simulation (for ns-3's X2 addressing).
    #[arg(long)]
    pub enbs: Option<u32>,
    /// Scenario whose [x2] table (or cell count) maps addresses to cells.
    #[arg(long, short)]
    pub scenario: Option<PathBuf>,
}

/// `trace synth --ues N --enbcs M …`.
#[derive(Debug, Args, Clone)]
#[command(
    about = "Generate a synthetic many-UE trace over several cells",
    long_about = "Generate a synthetic trace: UEs moving around a ring of cells (one per eNBC), \
                  each making --handovers-per-ue X2 handovers spread over --duration seconds, each \
                  handover_start followed 15-40 ms later by its handover_end_ok. The same --seed \
                  gives the same trace."
)]
pub struct SynthArgs {
    /// Number of UEs.
    #[arg(long, default_value_t = 100)]
    pub ues: u32,
    /// Number of eNBCs (cells 1..=N).
    #[arg(long, default_value_t = 4)]
    pub enbcs: u32,
    /// Handovers of each UE.
    #[arg(long, default_value_t = 3)]
    pub handovers_per_ue: u32,
    /// Span of the trace in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// IMSI of the first UE.
    #[arg(long, default_value_t = 1)]
    pub first_imsi: u64,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the trace here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Also write a matching scenario (enbcN serves cell N).
    #[arg(long)]
    pub scenario_out: Option<PathBuf>,
    /// Folder of the agents' sockets in that scenario.
    #[arg(long, default_value = "/run/edgemob")]
    pub api_dir: String,
}

/// Runs a `trace` subcommand.
pub fn run_trace(args: TraceArgs) -> Result<(), CliError> {
    match args.command {
        TraceCommand::FromPcap(a) => run_from_pcap(a).map(|_| ()),
        TraceCommand::Synth(a) => run_synth(a),
    }
}

fn write_output(output: Option<&Path>, text: &str) -> Result<(), CliError> {
    match output {
        Some(p) => std::fs::write(p, text).map_err(io("cannot write", p)),
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(io("cannot write", Path::new("<stdout>"))),
    }
}

/// The capture files named by `inputs` (folders expanded to their `*.pcap`, sorted).
pub fn capture_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(io("cannot list", input))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
                .collect();
            if found.is_empty() {
                return Err(CliError::Usage(format!(
                    "{}: no *.pcap files in this folder",
                    input.display()
                )));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// Decodes captures into trace records (the work of `trace from-pcap`).
pub fn convert_pcaps(
    files: &[PathBuf],
    enbs: Option<u32>,
    scenario: Option<&Scenario>,
) -> Result<x2pcap::Conversion, CliError> {
    let mut decoded = Vec::with_capacity(files.len());
    for (i, path) in files.iter().enumerate() {
        let bytes = std::fs::read(path).map_err(io("cannot read", path))?;
        let messages = x2pcap::x2_messages(&bytes, i).map_err(|source| CliError::Pcap {
            path: path.clone(),
            source,
        })?;
        decoded.push(messages);
    }
    let addressing = match (scenario, enbs) {
        (Some(s), _) if !s.x2_cells().is_empty() => Addressing::Table(s.x2_cells().clone()),
        (_, Some(n)) => Addressing::Ns3 { enbs: n },
        (Some(s), None) => Addressing::Ns3 {
            enbs: s.cells().len() as u32,
        },
        (None, None) => {
            // The smallest eNB count under which every REQUEST's target
            // cell matches the address it was sent to.
            let max_target = decoded
                .iter()
                .flatten()
                .filter_map(|m| match m.body {
                    x2pcap::X2Body::HandoverRequest { target_cell, .. } => Some(target_cell),
                    _ => None,
                })
                .max()
                .unwrap_or(2)
                .max(2);
            let fits = |n: u32| x2pcap::to_trace(&decoded, &Addressing::Ns3 { enbs: n }).is_ok();
            let n = (max_target..max_target.saturating_add(256))
                .find(|&n| fits(n))
                .unwrap_or(max_target);
            eprintln!(
                "assuming ns-3's X2 addressing over {n} eNBs (pass --enbs or --scenario to say otherwise)"
            );
            Addressing::Ns3 { enbs: n }
        }
    };
    x2pcap::to_trace(&decoded, &addressing).map_err(CliError::Addressing)
}

/// Runs `trace from-pcap`; returns the conversion.
pub fn run_from_pcap(args: FromPcapArgs) -> Result<x2pcap::Conversion, CliError> {
    let scenario = args.scenario.as_deref().map(Scenario::load).transpose()?;
    let files = capture_files(&args.pcaps)?;
    let conv = convert_pcaps(&files, args.enbs, scenario.as_ref())?;
    for w in &conv.warnings {
        eprintln!("warning: {w}");
    }
    write_output(
        args.output.as_deref(),
        &crate::trace::to_jsonl(&conv.records),
    )?;
    eprintln!(
        "{} capture(s), {} X2 message(s), {} trace record(s){}",
        files.len(),
        conv.messages,
        conv.records.len(),
        args.output
            .as_ref()
            .map(|p| format!(" written to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(conv)
}

/// Runs `trace synth`.
pub fn run_synth(args: SynthArgs) -> Result<(), CliError> {
    let records = crate::synth::generate(&SynthOptions {
        ues: args.ues,
        cells: args.enbcs,
        handovers_per_ue: args.handovers_per_ue,
        duration_s: args.duration,
        first_imsi: args.first_imsi,
        seed: args.seed,
    })?;
    write_output(args.output.as_deref(), &crate::trace::to_jsonl(&records))?;
    if let Some(p) = &args.scenario_out {
        std::fs::write(p, crate::synth::scenario_toml(args.enbcs, &args.api_dir))
            .map_err(io("cannot write", p))?;
    }
    eprintln!(
        "{} record(s): {} UEs, {} handovers each, over {} cells in {} s",
        records.len(),
        args.ues,
        args.handovers_per_ue,
        args.enbcs,
        args.duration
    );
    Ok(())
}

/// `mock-agents --scenario FILE`: stand-in agents for dry runs.
#[derive(Debug, Args, Clone)]
#[command(
    about = "Serve stand-in agents on a scenario's sockets (they accept and log handovers, move nothing)",
    long_about = "Serve the Operator API of every eNBC of a scenario on its socket with stand-in agents \
                  that share one view of where each UE is: a trigger is accepted by the agent whose \
                  cell the UE is in and completes after --migration-ms. UEs start in --start-cell, or \
                  where a --trace first hands them over. \
                  For trying replay and the ns-3 bridge without real agents; nothing is moved. Stops on \
                  Ctrl-C or after --for seconds."
)]
pub struct MockAgentsArgs {
    /// Scenario whose eNBCs to serve.
    #[arg(long, short)]
    pub scenario: PathBuf,
    /// Duration of every migration, ms.
    #[arg(long, default_value_t = 10)]
    pub migration_ms: u64,
    /// Cell every UE of the scenario's [ues] (and IMSIs 1..=--ues) starts in.
    #[arg(long, default_value_t = 1)]
    pub start_cell: u32,
    /// Number of UEs (IMSIs 1..=N) to place in --start-cell.
    #[arg(long, default_value_t = 1)]
    pub ues: u64,
    /// Place every UE of this trace in the source cell of its first
    /// handover instead (after the --ues placement).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long = "for")]
    pub run_for: Option<f64>,
}

/// Runs `mock-agents` until Ctrl-C (or `--for`).
pub async fn run_mock_agents(args: MockAgentsArgs) -> Result<(), CliError> {
    let scenario = Scenario::load(&args.scenario)?;
    let world = crate::mock::MockWorld::new(&scenario, Duration::from_millis(args.migration_ms));
    for imsi in 1..=args.ues {
        if let Ok(ue) = scenario.ue_identity(imsi) {
            world.place(&ue, args.start_cell);
        }
    }
    if let Some(path) = &args.trace {
        let mut placed = std::collections::HashSet::new();
        for r in crate::trace::read_file(path)? {
            if r.kind == crate::trace::EventKind::HandoverStart
                && placed.insert(r.imsi)
                && let Ok(ue) = scenario.ue_identity(r.imsi)
            {
                world.place(&ue, r.source_cell);
            }
        }
    }
    let tasks = world
        .serve(&scenario)
        .map_err(io("cannot serve", scenario.path()))?;
    for e in scenario.enbcs() {
        eprintln!(
            "stand-in agent {} on {} (cells {:?})",
            e.name,
            e.api.display(),
            e.cells
        );
    }
    match args.run_for {
        Some(s) => tokio::time::sleep(seconds(s, "--for")?).await,
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    for t in tasks {
        t.abort();
    }
    for c in world.calls() {
        eprintln!(
            "{} {} {} {}→{}",
            c.enbc, c.kind, c.ue, c.source_cell, c.target_cell
        );
    }
    Ok(())
}

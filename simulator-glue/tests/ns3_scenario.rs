//! The shipped ns-3 scenario under real ns-3 3.44 (the environment
//! `scripts/install-ns3.sh` makes): a 1-UE, 2-eNB forced X2 handover gives
//! exactly one X2 handover_start and one handover_end_ok, its trace matches
//! the X2 capture of the same run, and the bridge drives agents (stand-ins
//! here) from the simulation.
//!
//! Skipped, with a message, where the ns-3 environment is missing — except
//! under CI (`CI` set), where that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use edgemob_simulator_glue::cli;
use edgemob_simulator_glue::mock::MockWorld;
use edgemob_simulator_glue::scenario::Scenario;
use edgemob_simulator_glue::trace::{self, EventKind, TraceRecord};

const DEFAULT_PYTHON: &str = "/opt/edgemob/ns3-venv/bin/python";

fn ns3_python() -> Option<PathBuf> {
    let python = std::env::var_os("EDGEMOB_NS3_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PYTHON));
    let ready = Command::new(&python)
        .args([
            "-c",
            "import edgemob_ns3, importlib.util as u; assert u.find_spec('ns')",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if ready {
        return Some(python);
    }
    let message = format!(
        "no ns-3 environment at {} (run scripts/install-ns3.sh, or set EDGEMOB_NS3_PYTHON)",
        python.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    None
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/lena_x2_handover.py")
}

/// Runs the scenario in `dir` (also its working directory: ns-3's loader
/// searches the working directory for libraries).
fn run_scenario(python: &Path, dir: &Path, extra: &[&str]) -> Output {
    let out = Command::new(python)
        .arg(script())
        .args(["--out-dir", &dir.display().to_string()])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("start the ns-3 scenario");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- stdout\n{stdout}--- stderr\n{}", tail(&stderr, 40));
    assert!(out.status.success(), "the scenario failed: {}", out.status);
    out
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("materialize symbols"))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn key(r: &TraceRecord) -> (EventKind, u64, u16, u32, u32, u64) {
    (
        r.kind,
        r.imsi,
        r.rnti,
        r.source_cell,
        r.target_cell,
        r.time_us,
    )
}

#[test]
fn a_forced_x2_handover_is_traced_and_its_capture_converts_to_the_same_trace() {
    let Some(python) = ns3_python() else { return };
    let dir = tempfile::Builder::new()
        .prefix("edgemob-ns3-")
        .tempdir()
        .unwrap();
    let out = run_scenario(
        &python,
        dir.path(),
        &["--dry-run", "--ues", "1", "--enbs", "2"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The example's own lines.
    assert!(
        stdout.contains("eNB CellId 1: start handover of UE with IMSI 1 RNTI 1 to CellId 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("eNB CellId 2: completed handover of UE with IMSI 1 RNTI"),
        "{stdout}"
    );

    let records = trace::read_file(&dir.path().join("handover-trace.jsonl")).unwrap();
    let starts: Vec<_> = records
        .iter()
        .filter(|r| r.kind == EventKind::HandoverStart)
        .collect();
    let ends: Vec<_> = records
        .iter()
        .filter(|r| r.kind == EventKind::HandoverEndOk)
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(starts.len(), 1);
    assert_eq!(ends.len(), 1);
    assert_eq!(
        (
            starts[0].imsi,
            starts[0].rnti,
            starts[0].source_cell,
            starts[0].target_cell
        ),
        (1, 1, 1, 2)
    );
    assert_eq!((ends[0].imsi, ends[0].target_cell), (1, 2));
    // The forced handover is requested at 0.3 s; its ACK follows within ms.
    assert!(
        (300_000..400_000).contains(&starts[0].time_us),
        "{:?}",
        starts[0]
    );
    assert!(ends[0].time_us > starts[0].time_us);

    // The X2 captures of the same run give the same records.
    let files = cli::capture_files(&[dir.path().to_owned()]).unwrap();
    let conv = cli::convert_pcaps(&files, Some(2), None).unwrap();
    assert!(conv.warnings.is_empty(), "{:?}", conv.warnings);
    let from_pcap: Vec<_> = conv.records.iter().map(key).collect();
    let from_bridge: Vec<_> = records.iter().map(key).collect();
    assert_eq!(from_pcap, from_bridge);
    assert_eq!(
        conv.records[0].target_rnti,
        Some(ends[0].rnti),
        "newEnbUeX2apId is the target RNTI"
    );
}

#[test]
fn the_bridge_triggers_migrations_from_the_simulation() {
    let Some(python) = ns3_python() else { return };
    let dir = tempfile::Builder::new()
        .prefix("edgemob-ns3-")
        .tempdir()
        .unwrap();
    let scenario_path = dir.path().join("scenario.toml");
    std::fs::write(
        &scenario_path,
        format!(
            "ue_identity = \"imsi-{{imsi:015}}\"\n\
             [[enbcs]]\nname = \"enbc1\"\napi = \"{0}/enbc1.sock\"\ncells = [1]\n\
             [[enbcs]]\nname = \"enbc2\"\napi = \"{0}/enbc2.sock\"\ncells = [2]\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let scenario = Scenario::load(&scenario_path).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let world = MockWorld::new(&scenario, Duration::from_millis(5));
    world.place("imsi-000000000000001", 1);
    let _guard = rt.enter();
    let servers = world.serve(&scenario).unwrap();

    // Real time (the default), as with real agents.
    let out = run_scenario(
        &python,
        dir.path(),
        &["--scenario", &scenario_path.display().to_string()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("migrations completed 1"),
        "{}",
        tail(&stderr, 20)
    );

    let calls = world.calls();
    let seen: Vec<_> = calls
        .iter()
        .map(|c| (c.kind, c.enbc.as_str(), c.ue.as_str(), c.target_cell))
        .collect();
    assert_eq!(
        seen,
        [
            ("trigger", "enbc1", "imsi-000000000000001", 2),
            ("complete", "enbc2", "imsi-000000000000001", 2)
        ]
    );
    assert_eq!(world.cell_of("imsi-000000000000001"), Some(2));

    // Per-migration results, with the delay from the simulated ACK.
    let results = std::fs::read_to_string(dir.path().join("migrations.jsonl")).unwrap();
    let migration: serde_json::Value = results
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "migration")
        .expect("a migration result");
    assert_eq!(migration["outcome"], "completed");
    assert_eq!(migration["source_cell"], 1);
    assert_eq!(migration["target_cell"], 2);
    println!(
        "delay from the simulated X2 HO Request ACK: to TriggerHandover sent {} µs, to the migration's start {} µs",
        migration["send_delay_us"], migration["start_delay_us"]
    );
    for s in servers {
        s.abort();
    }
}

//! Replay against stand-in agents on Unix sockets: a 100-UE, 4-eNBC trace,
//! per-UE ordering, scaled time, and the errors a user meets.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use edgemob_simulator_glue::cli::{self, ReplayArgs};
use edgemob_simulator_glue::mock::MockWorld;
use edgemob_simulator_glue::replay::{ReplayError, ReplayOptions, replay};
use edgemob_simulator_glue::scenario::Scenario;
use edgemob_simulator_glue::synth::{self, SynthOptions};
use edgemob_simulator_glue::trace::{self, EventKind, TraceRecord};
use edgemob_simulator_glue::{DriverEvent, DriverOptions};

fn scenario_in(dir: &Path, cells: u32) -> Arc<Scenario> {
    let text = synth::scenario_toml(cells, &dir.display().to_string());
    let path = dir.join("scenario.toml");
    std::fs::write(&path, &text).unwrap();
    Arc::new(Scenario::load(&path).unwrap())
}

/// Stand-in agents for `scenario`, every UE of `trace` placed in the
/// source cell of its first handover.
fn agents(scenario: &Scenario, trace: &[TraceRecord], migration: Duration) -> MockWorld {
    let world = MockWorld::new(scenario, migration);
    let mut seen = std::collections::HashSet::new();
    for r in trace {
        if r.kind == EventKind::HandoverStart && seen.insert(r.imsi) {
            world.place(&scenario.ue_identity(r.imsi).unwrap(), r.source_cell);
        }
    }
    world.serve(scenario).unwrap();
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_ues_over_four_enbcs_all_migrate_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_in(dir.path(), 4);
    let trace = synth::generate(&SynthOptions {
        ues: 100,
        cells: 4,
        handovers_per_ue: 3,
        duration_s: 30.0,
        ..SynthOptions::default()
    })
    .unwrap();
    let world = agents(&scenario, &trace, Duration::from_millis(3));
    let report = replay(
        trace.clone(),
        Arc::clone(&scenario),
        ReplayOptions {
            speed: 0.0,
            ..ReplayOptions::default()
        },
        None,
    )
    .await
    .unwrap();
    println!("{}", report.summary());
    assert_eq!(report.migrations().len(), 300);
    assert_eq!(report.completes().len(), 300);
    assert!(report.all_completed(), "{}", report.table());
    assert!(
        report
            .migrations()
            .iter()
            .all(|m| m.phases.is_some() && m.start_delay_us.is_some())
    );

    // Every UE ended where its last handover took it.
    let mut last: HashMap<u64, u32> = HashMap::new();
    for r in &trace {
        if r.kind == EventKind::HandoverStart {
            last.insert(r.imsi, r.target_cell);
        }
    }
    for (imsi, cell) in &last {
        let ue = scenario.ue_identity(*imsi).unwrap();
        assert_eq!(world.cell_of(&ue), Some(*cell), "{ue}");
    }

    // Per UE, the agents saw trigger, complete, trigger, complete, … in trace
    // order, each trigger at the source cell's eNBC and each complete at the target's.
    let calls = world.calls();
    for imsi in 1..=100u64 {
        let ue = scenario.ue_identity(imsi).unwrap();
        let seen: Vec<_> = calls
            .iter()
            .filter(|c| c.ue == ue)
            .map(|c| (c.kind, c.enbc.clone(), c.target_cell))
            .collect();
        let expected: Vec<_> = trace
            .iter()
            .filter(|r| r.imsi == imsi)
            .map(|r| match r.kind {
                EventKind::HandoverStart => {
                    ("trigger", format!("enbc{}", r.source_cell), r.target_cell)
                }
                _ => ("complete", format!("enbc{}", r.target_cell), r.target_cell),
            })
            .collect();
        assert_eq!(seen, expected, "{ue}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_time_replays_and_writes_results() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_in(dir.path(), 2);
    let trace = vec![
        TraceRecord {
            time_us: 300_000,
            kind: EventKind::HandoverStart,
            imsi: 1,
            rnti: 1,
            source_cell: 1,
            target_cell: 2,
            target_rnti: Some(1),
        },
        TraceRecord {
            time_us: 300_500,
            kind: EventKind::IntraEnbHandover,
            imsi: 2,
            rnti: 4,
            source_cell: 1,
            target_cell: 1,
            target_rnti: None,
        },
        TraceRecord {
            time_us: 318_928,
            kind: EventKind::HandoverEndOk,
            imsi: 1,
            rnti: 1,
            source_cell: 1,
            target_cell: 2,
            target_rnti: None,
        },
    ];
    let trace_path = dir.path().join("trace.jsonl");
    trace::write_file(&trace_path, &trace).unwrap();
    let world = agents(&scenario, &trace, Duration::from_millis(1500));
    let out = dir.path().join("results.jsonl");
    let report = cli::run_replay(ReplayArgs {
        trace: trace_path,
        scenario: scenario.path().to_owned(),
        speed: 10.0,
        out: Some(out.clone()),
        max_in_flight: 4,
        migration_timeout: 10.0,
        timeout: None,
        summary_only: false,
        allow_failures: false,
    })
    .await
    .unwrap();
    assert_eq!(
        report.skipped_records, 1,
        "the intra-eNB handover is not replayed"
    );
    let m = report.migrations()[0];
    assert_eq!(
        (m.outcome.as_str(), m.source_cell, m.target_cell),
        ("completed", 1, 2)
    );
    assert!(m.send_delay_us >= 0.0);
    // The completion waited for the trigger's acceptance, not its outcome:
    // it reached the target while the (1.5 s) migration was still running.
    let calls = world.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].kind, calls[1].kind), ("trigger", "complete"));
    assert!(calls[1].during_migration, "{calls:?}");
    let lines = std::fs::read_to_string(&out).unwrap();
    let kinds: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"migration".to_owned()) && kinds.contains(&"complete".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_missing_agents_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_in(dir.path(), 2);
    let start = TraceRecord {
        time_us: 0,
        kind: EventKind::HandoverStart,
        imsi: 1,
        rnti: 1,
        source_cell: 1,
        target_cell: 2,
        target_rnti: None,
    };
    // No agent listens: the replay refuses to start, naming the eNBC.
    let err = replay(
        vec![start.clone()],
        Arc::clone(&scenario),
        ReplayOptions::default(),
        None,
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ReplayError::Connect(_)), "{msg}");
    assert!(
        msg.contains("enbc1") && msg.contains("cannot reach"),
        "{msg}"
    );

    // A cell the scenario does not know: refused before anything is sent.
    let mut stray = start.clone();
    stray.target_cell = 9;
    let err = replay(
        vec![stray],
        Arc::clone(&scenario),
        ReplayOptions::default(),
        None,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("cell 9"), "{err}");

    // The UE is not where the trace says: the agent refuses, the result says why.
    let world = MockWorld::new(&scenario, Duration::from_millis(1));
    world.place(&scenario.ue_identity(1).unwrap(), 2);
    world.serve(&scenario).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let report = replay(
        vec![start],
        Arc::clone(&scenario),
        ReplayOptions {
            speed: 0.0,
            driver: DriverOptions {
                migration_timeout: Duration::from_secs(2),
                ..DriverOptions::default()
            },
            total_timeout: None,
        },
        Some(tx),
    )
    .await
    .unwrap();
    let m = report.migrations()[0];
    assert_eq!(m.outcome, "error");
    assert!(m.reason.contains("not served by enbc1"), "{}", m.reason);
    assert!(!report.all_completed());
    assert!(
        matches!(rx.recv().await, Some(DriverEvent::Migration(_))),
        "results stream live"
    );
}

#[test]
fn bad_speed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_in(dir.path(), 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(replay(
            vec![],
            scenario,
            ReplayOptions {
                speed: -1.0,
                ..ReplayOptions::default()
            },
            None,
        ))
        .unwrap_err();
    assert!(matches!(err, ReplayError::Speed(_)));
}

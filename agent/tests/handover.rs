//! One UE handover end to end: two real agents (the `edgemob` binary) and
//! the toy service in network namespaces, an unmodified-TCP client in the
//! UE's namespace that checks every octet both ways.

mod support;

use edgemob_paas_api::v1 as pb;
use std::time::Duration;
use support::*;

fn completed(r: &pb::MigrationRecord) {
    assert_eq!(
        r.outcome,
        pb::Outcome::Completed as i32,
        "migration not completed: {}",
        r.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_and_its_context_follow_the_ue() {
    edgemob_testbed::require_root();
    let c = Cluster::start(Opts::default()).await;
    let client = c.client(None);
    let ue = client.ue();
    client.wait_for(c.opts.download / 4).await;

    let rec = c.handover(&ue).await;
    completed(&rec);
    c.switch_and_complete(std::slice::from_ref(&ue)).await;
    let report = client.finish();
    assert_eq!(report.downloaded, c.opts.download);

    // The source's record has the paper's five timings.
    let p = rec.phases.unwrap();
    for (name, v) in [
        ("MIH HO commit", p.mih_commit_ns),
        ("retrieving application data", p.app_data_ns),
        ("retrieving sockets data", p.socket_data_ns),
        ("CXTP transaction", p.cxtp_ns),
        ("total", p.total_ns),
    ] {
        assert!(v > 0, "{name} not measured");
    }
    // The export, then the freeze, overlap the MIH commit; the transfer
    // follows both.
    assert!(p.total_ns >= p.mih_commit_ns.max(p.app_data_ns + p.socket_data_ns) + p.cxtp_ns);
    assert_eq!(rec.connections, 1);
    assert!(rec.context_bytes > 24, "context and socket image were sent");
    let hist = c.history(0).await;
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].migration_id, rec.migration_id);
    let arrived = c.history(1).await;
    assert_eq!(arrived[0].direction, pb::Direction::In as i32);
    completed(&arrived[0]);

    // The UE is served by enbc2 now, and only there.
    assert!(c.users(0).await.is_empty());
    let at_target = c.users(1).await;
    assert_eq!(at_target.len(), 1);
    assert_eq!(at_target[0].ue, ue);
    assert_eq!(at_target[0].state, "served");
    assert_eq!(at_target[0].connections, 1);

    // The JSON-lines log and the metrics carry the same migration.
    let log = std::fs::read_to_string(c.dir.join("enbc1.jsonl")).unwrap();
    assert!(
        log.contains(&format!("\"migration_id\":{}", rec.migration_id)),
        "{log}"
    );
    let metrics = c.metrics(0);
    assert!(
        metrics.contains("edgemob_migration_phase_seconds_count{phase=\"Total\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edgemob_migrations_total{direction=\"out\",outcome=\"completed\"} 1")
    );
    // Both agents kept the CPUs polling around it (tests run as root).
    for i in [0, 1] {
        let m = c.metrics(i);
        let holds = m
            .lines()
            .find_map(|l| l.strip_prefix("edgemob_cpu_latency_holds_total "))
            .and_then(|v| v.trim().parse::<u64>().ok());
        assert!(holds.is_some_and(|n| n >= 1), "agent {i}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ue_can_move_back_again() {
    edgemob_testbed::require_root();
    let c = Cluster::start(Opts::default()).await;
    let client = c.client(None);
    let ue = client.ue();
    client.wait_for(c.opts.download / 5).await;
    completed(&c.handover(&ue).await);
    c.switch_and_complete(std::slice::from_ref(&ue)).await;
    client.wait_for(c.opts.download / 2).await;
    // and back from enbc2 to enbc1
    completed(&c.handover_from(1, &ue).await);
    c.switch_and_complete_at(0, std::slice::from_ref(&ue)).await;
    assert_eq!(client.finish().downloaded, c.opts.download);
}

/// Services that take their events over gRPC WatchEvents (and answer with
/// the gRPC calls) move just the same as over the service link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_on_grpc_events_move_there_and_back() {
    edgemob_testbed::require_root();
    let c = Cluster::start(Opts {
        service_flags: vec!["--grpc-events".into()],
        context_bytes: 75_000,
        ..Opts::default()
    })
    .await;
    let client = c.client(None);
    let ue = client.ue();
    client.wait_for(c.opts.download / 5).await;
    let out = c.handover(&ue).await;
    completed(&out);
    assert!(out.context_bytes > 75_000, "the 75 KB context travelled");
    c.switch_and_complete(std::slice::from_ref(&ue)).await;
    client.wait_for(c.opts.download / 2).await;
    completed(&c.handover_from(1, &ue).await);
    c.switch_and_complete_at(0, std::slice::from_ref(&ue)).await;
    assert_eq!(client.finish().downloaded, c.opts.download);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_the_service_refuses_and_nothing_moves() {
    edgemob_testbed::require_root();
    let c = Cluster::start(Opts {
        service_on_target: false,
        ..Opts::default()
    })
    .await;
    let client = c.client(None);
    let ue = client.ue();
    client.wait_for(c.opts.download / 4).await;
    let rec = c.handover(&ue).await;
    assert_eq!(rec.outcome, pb::Outcome::Rejected as i32);
    assert!(
        rec.reason.contains("service toy is not registered"),
        "{}",
        rec.reason
    );
    // Still served at the source, which finishes the session.
    assert_eq!(c.users(0).await[0].state, "served");
    assert_eq!(client.finish().downloaded, c.opts.download);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_target_leaves_the_session_thawed_at_the_source() {
    edgemob_testbed::require_root();
    let mut c = Cluster::start(Opts {
        timers: "mih_response_ms = 300".into(),
        ..Opts::default()
    })
    .await;
    let client = c.client(None);
    let ue = client.ue();
    client.wait_for(c.opts.download / 4).await;
    // No MIH_N2N_HO_Commit response will come: the service exports and its
    // socket is frozen while the source still waits for one.
    c.kill_agent(1);
    let rec = c.handover(&ue).await;
    assert_eq!(rec.outcome, pb::Outcome::Failed as i32, "{}", rec.reason);
    assert!(
        rec.reason.contains("no MIH_N2N_HO_Commit response"),
        "{}",
        rec.reason
    );
    // The reason says how long the source actually waited (the MIHF may
    // give up once its retransmissions run out, before mih_response_ms).
    let waited: f64 = rec
        .reason
        .split("within ")
        .nth(1)
        .and_then(|r| r.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait in {:?}", rec.reason));
    let commit_ms = rec.phases.unwrap().mih_commit_ns as f64 / 1e6;
    assert!(
        (waited - commit_ms).abs() <= 2.0,
        "the reason says {waited} ms, the commit phase took {commit_ms:.1} ms"
    );
    assert!(
        rec.phases.unwrap().socket_data_ns > 0,
        "the socket was frozen while the commit was out"
    );
    // Thawed: still served at the source, which finishes the session.
    assert_eq!(c.users(0).await[0].state, "served");
    assert_eq!(client.finish().downloaded, c.opts.download);
}

/// The radio handover does not wait for the contexts: the UE's path may
/// reach the target while its service still exports. From the accepted
/// MIH_N2N_HO_Commit on, the target drops the UE's packets for the
/// connections the request announced (a kernel without their sockets
/// would answer with a RST and the client would abort); the session then
/// continues at the target without losing an octet either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_that_reach_the_target_before_the_contexts_are_dropped_not_reset() {
    edgemob_testbed::require_root();
    let c = Cluster::start(Opts {
        service_flags: vec!["--export-delay-ms".into(), "300".into()],
        ..Opts::default()
    })
    .await;
    let client = c.client(None);
    let ue = client.ue();
    client.wait_for(c.opts.download / 4).await;
    let tuple = format!(
        "{} . {} . 10.77.0.1 . {SERVICE_PORT}",
        client.local.ip(),
        client.local.port()
    );
    let early_switch = async {
        // The commit is accepted within milliseconds; the CTD leaves only
        // after the 300 ms export. Meanwhile the client keeps uploading.
        // The path switches as soon as the target holds the UE's connection
        // in its lock.
        eventually(
            "the target to lock the UE's connection",
            Duration::from_secs(5),
            || async {
                let held = locked4(&c.tb, 1);
                if held.contains(&tuple) {
                    Ok(())
                } else {
                    Err(held)
                }
            },
        )
        .await;
        let migration_ended = !c.history(0).await.is_empty();
        c.switch_and_complete(std::slice::from_ref(&ue)).await;
        migration_ended
    };
    let (rec, ended_before_switch) = tokio::join!(c.handover(&ue), early_switch);
    assert!(
        !ended_before_switch,
        "the path switched only after the migration ended: nothing reached the target early"
    );
    completed(&rec);
    assert!(
        rec.phases.unwrap().app_data_ns >= 300_000_000,
        "the export was not delayed: {:?}",
        rec.phases
    );
    let report = client.finish();
    assert_eq!(report.downloaded, c.opts.download);
    assert_eq!(c.users(1).await[0].state, "served");
    // Live at the target: nothing of it is dropped there any more.
    let after = locked4(&c.tb, 1);
    assert!(!after.contains(&tuple), "{tuple} still locked: {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_killed_mid_transfer_rolls_back_and_nothing_is_lost() {
    edgemob_testbed::require_root();
    let mut c = Cluster::start(Opts {
        // The target's service is slow to accept: kill the target meanwhile.
        target_service_flags: vec!["--import-delay-ms".into(), "5000".into()],
        timers: "import_ms = 10000\ncxtp_transfer_ms = 20000".into(),
        ..Opts::default()
    })
    .await;
    let client = c.client(None);
    let ue = client.ue();
    client.wait_for(c.opts.download / 4).await;
    let api = c.api(0);
    let ue2 = ue.clone();
    let trigger = tokio::spawn(async move {
        edgemob_sdk::operator_client(&api)
            .await
            .unwrap()
            .trigger_handover(pb::TriggerHandoverRequest {
                ue: ue2,
                source_cell: 1,
                target_cell: 2,
                wait: true,
            })
            .await
            .unwrap()
            .into_inner()
    });
    // Wait until the target holds the arriving UE, then kill it.
    eventually(
        "the transfer to reach the target",
        Duration::from_secs(10),
        || async {
            let users = c.users(1).await;
            if users.iter().any(|u| u.ue == ue && u.state == "migrating") {
                Ok(())
            } else {
                Err(format!("{users:?}"))
            }
        },
    )
    .await;
    c.kill_agent(1);
    let r = trigger.await.unwrap();
    let rec = r.record.unwrap();
    assert_eq!(
        rec.outcome,
        pb::Outcome::RolledBack as i32,
        "{}",
        rec.reason
    );
    assert!(rec.reason.contains("lost"), "{}", rec.reason);
    // The session continues at the source: every octet arrives.
    assert_eq!(c.users(0).await[0].state, "served");
    assert_eq!(client.finish().downloaded, c.opts.download);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_import_rolls_back() {
    edgemob_testbed::require_root();
    let c = Cluster::start(Opts {
        target_service_flags: vec!["--refuse-import".into()],
        ..Opts::default()
    })
    .await;
    let client = c.client(None);
    let ue = client.ue();
    client.wait_for(c.opts.download / 4).await;
    let rec = c.handover(&ue).await;
    assert_eq!(rec.outcome, pb::Outcome::RolledBack as i32);
    assert!(
        rec.reason.contains("service-app-context(0xE002)=rejected"),
        "{}",
        rec.reason
    );
    let at_target = c.history(1).await;
    assert!(
        at_target[0].reason.contains("refused the import"),
        "{}",
        at_target[0].reason
    );
    assert!(
        c.users(1).await.is_empty(),
        "nothing left behind at the target"
    );
    assert_eq!(client.finish().downloaded, c.opts.download);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_ues_triggered_at_once_all_migrate() {
    edgemob_testbed::require_root();
    const N: usize = 200;
    let c = Cluster::start(Opts {
        download: 256 << 10,
        upload: 32 << 10,
        rate: 64_000,
        extra_ue_addrs: N,
        // The path switches once all 200 have moved: wait for that report.
        timers: "activate_ms = 30000".into(),
        ..Opts::default()
    })
    .await;
    let clients: Vec<Client> = (0..N).map(|k| c.client(Some(extra_ue(k)))).collect();
    for cl in &clients {
        cl.wait_for(16 << 10).await;
    }
    let ues: Vec<String> = clients.iter().map(Client::ue).collect();
    let records = futures::future::join_all(ues.iter().map(|ue| c.handover(ue))).await;
    for r in &records {
        completed(r);
    }
    c.switch_and_complete(&ues).await;
    for cl in clients {
        assert_eq!(cl.finish().downloaded, 256 << 10);
    }
    assert_eq!(c.users(1).await.len(), N);
    assert!(c.users(0).await.is_empty());
    assert_eq!(c.health(0).await.migrations_completed, N as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_trigger_for_a_migrating_ue_is_ignored() {
    edgemob_testbed::require_root();
    let c = Cluster::start(Opts {
        target_service_flags: vec!["--import-delay-ms".into(), "300".into()],
        ..Opts::default()
    })
    .await;
    let client = c.client(None);
    let ue = client.ue();
    client.wait_for(c.opts.download / 4).await;
    let (a, b) = tokio::join!(c.handover(&ue), async {
        // The second trigger comes while the source migrates the UE (the
        // target's import takes 300 ms).
        eventually("the UE to be migrating", Duration::from_secs(5), || async {
            let users = c.users(0).await;
            if users.iter().any(|u| u.ue == ue && u.state == "migrating") {
                Ok(())
            } else {
                Err(format!("{users:?}"))
            }
        })
        .await;
        c.operator(0)
            .await
            .trigger_handover(pb::TriggerHandoverRequest {
                ue: ue.clone(),
                source_cell: 1,
                target_cell: 2,
                wait: false,
            })
            .await
            .unwrap()
            .into_inner()
    });
    completed(&a);
    assert!(b.already_migrating);
    assert_eq!(b.migration_id, a.migration_id);
    c.switch_and_complete(std::slice::from_ref(&ue)).await;
    assert_eq!(client.finish().downloaded, c.opts.download);
    assert_eq!(c.history(0).await.len(), 1, "one migration, not two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_path_switch_report_the_target_activates_on_its_timer() {
    edgemob_testbed::require_root();
    let c = Cluster::start(Opts {
        timers: "activate_ms = 50".into(),
        ..Opts::default()
    })
    .await;
    let client = c.client(None);
    let ue = client.ue();
    client.wait_for(c.opts.download / 4).await;
    completed(&c.handover(&ue).await);
    // No CompleteHandover; the path moves only once the timer fired and the
    // target serves the UE. The source keeps dropping the UE's packets
    // meanwhile, so nothing is reset.
    eventually(
        "the target to activate the UE on its timer",
        Duration::from_secs(5),
        || async {
            let users = c.users(1).await;
            match users.first() {
                Some(u) if u.state == "served" => Ok(()),
                _ => Err(format!("{users:?}")),
            }
        },
    )
    .await;
    c.tb.switch_to(edgemob_testbed::Node::Enbc2).unwrap();
    assert_eq!(client.finish().downloaded, c.opts.download);
}

/// A UE with a 75 KB application context moves back and forth ten times in
/// one download: every migration completes with its context and the five
/// timings, and every octet arrives once. (The timings are printed; the
/// measurement proper is `edgemob demo`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_75kb_context_moves_back_and_forth_ten_times() {
    edgemob_testbed::require_root();
    const MOVES: usize = 10;
    // 16 MiB at 4 MB/s: about 4 s, for ten moves of some milliseconds each
    // and 128 KiB of download in between.
    let c = Cluster::start(Opts {
        context_bytes: 75_000,
        download: 16 << 20,
        ..Opts::default()
    })
    .await;
    let client = c.client(None);
    let ue = client.ue();
    client.wait_for(1 << 20).await;
    let mut phases: Vec<[u64; 5]> = Vec::new();
    for k in 0..MOVES {
        let (from, to) = if k % 2 == 0 { (0, 1) } else { (1, 0) };
        assert!(
            client.received() < c.opts.download,
            "the download ended before move {k}"
        );
        let rec = c.handover_from(from, &ue).await;
        completed(&rec);
        assert_eq!(rec.connections, 1, "move {k}");
        assert!(
            rec.context_bytes > 75_000,
            "move {k}: the 75 KB context travelled, {} octets",
            rec.context_bytes
        );
        let p = rec.phases.expect("phases recorded");
        let v = [
            p.mih_commit_ns,
            p.app_data_ns,
            p.socket_data_ns,
            p.cxtp_ns,
            p.total_ns,
        ];
        assert!(
            v.iter().all(|&ns| ns > 0),
            "move {k}: a phase not measured: {p:?}"
        );
        assert!(
            p.total_ns >= p.mih_commit_ns.max(p.app_data_ns + p.socket_data_ns) + p.cxtp_ns,
            "move {k}: {p:?}"
        );
        phases.push(v.map(|ns| ns / 1000));
        c.switch_and_complete_at(to, std::slice::from_ref(&ue))
            .await;
        // The download continues from where the UE is now.
        client.wait_for(client.received() + (128 << 10)).await;
    }
    assert_eq!(client.finish().downloaded, c.opts.download);
    // Each agent saw five moves out and five in, all completed.
    for i in [0, 1] {
        let hist = c.history(i).await;
        for dir in [pb::Direction::Out, pb::Direction::In] {
            let n = hist
                .iter()
                .filter(|r| r.direction == dir as i32 && r.outcome == pb::Outcome::Completed as i32)
                .count();
            assert_eq!(n, MOVES / 2, "agent {}, {dir:?}: {hist:?}", i + 1);
        }
        assert_eq!(hist.len(), MOVES, "agent {}: {hist:?}", i + 1);
    }
    for (i, name) in ["mih", "app", "sock", "cxtp", "total"].iter().enumerate() {
        let mut v: Vec<u64> = phases.iter().map(|p| p[i]).collect();
        v.sort_unstable();
        eprintln!(
            "{name:>6}: p50 {:>6} µs  max {:>6} µs",
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
}

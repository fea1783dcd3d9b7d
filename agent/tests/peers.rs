//! Peers' garbage: counted, ignored, and later migrations still work.

mod support;

use edgemob_paas_api::v1 as pb;
use edgemob_testbed::Node;
use std::io::Write;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_mih_and_cxtp_ports_is_counted_and_ignored() {
    edgemob_testbed::require_root();
    let c = Cluster::start(Opts::default()).await;
    let target = enbc_addr(1);
    // From the peer's address (known, but malformed) and from the UE (unknown).
    c.tb.enter(Node::Enbc1, move || {
        let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        for i in 0..50u8 {
            u.send_to(&[0x10, i, 0x34, 0x09, 0, 1, 0, 200], (target, 4551))
                .unwrap();
            u.send_to(b"\xde\xad\xbe\xef not an MIH frame", (target, 4551))
                .unwrap();
        }
        // From the peer, well formed, but for another MIHF.
        let misaddressed = edgemob_mih::Frame::ack(
            edgemob_mih::MihfId::try_from("enbc1@edgemob").unwrap(),
            edgemob_mih::MihfId::try_from("enbc9@edgemob").unwrap(),
            edgemob_mih::Mid(0x3409),
            edgemob_mih::Tid::new(1),
        )
        .to_vec()
        .unwrap();
        for _ in 0..5 {
            u.send_to(&misaddressed, (target, 4551)).unwrap();
        }
        let mut t = std::net::TcpStream::connect((target, 5091)).unwrap();
        // a CXTP header with version 7 and a silly length: framing is lost
        // (the agent reads these octets before the FIN that follows them)
        let _ = t.write_all(&[0xE3, 0, 0, 4, 1, 2, 3, 4, 5, 6, 7, 8]);
    })
    .unwrap();
    c.tb.enter(Node::Ue, move || {
        let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let valid_looking = edgemob_mih::Frame::ack(
            edgemob_mih::MihfId::try_from("enbc1@edgemob").unwrap(),
            edgemob_mih::MihfId::try_from("enbc2@edgemob").unwrap(),
            edgemob_mih::Mid(0x3409),
            edgemob_mih::Tid::new(1),
        )
        .to_vec()
        .unwrap();
        for _ in 0..10 {
            u.send_to(&valid_looking, (target, 4551)).unwrap();
        }
    })
    .unwrap();
    let expected = [
        r#"edgemob_peer_frames_dropped_total{protocol="mih",reason="malformed"} 100"#,
        r#"edgemob_peer_frames_dropped_total{protocol="mih",reason="unauthenticated"} 10"#,
        r#"edgemob_peer_frames_dropped_total{protocol="mih",reason="misaddressed"} 5"#,
        r#"edgemob_peer_frames_dropped_total{protocol="cxtp",reason="framing"} 1"#,
    ];
    eventually(
        "the target to count every frame it dropped",
        std::time::Duration::from_secs(5),
        || async {
            let m = c.metrics(1);
            if expected.iter().all(|e| m.contains(e)) {
                Ok(())
            } else {
                Err(m)
            }
        },
    )
    .await;
    let h = c.health(1).await;
    assert!(
        h.peer_frames_dropped > 100 + 10 + 5,
        "dropped {}",
        h.peer_frames_dropped
    );

    // A migration afterwards works.
    c.a_ue_moves_with_its_download().await;
}

/// A local process that speaks nonsense on the service link loses only its
/// own connection; registered services keep moving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonsense_on_the_service_link_is_refused_and_counted() {
    edgemob_testbed::require_root();
    use edgemob_paas_api::link::{Decoder, encode};
    use pb::link_frame::Frame;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    let c = Cluster::start(Opts::default()).await;
    let path = edgemob_paas_api::link_path(std::path::Path::new(&c.api(1)));
    let answer = |mut s: UnixStream| -> Option<pb::LinkResult> {
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut d = Decoder::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(f) = d.next_frame().unwrap() {
                let Some(Frame::Result(r)) = f.frame else {
                    panic!("{f:?}")
                };
                return Some(r);
            }
            match s.read(&mut buf).unwrap() {
                0 => return None,
                n => d.extend(&buf[..n]),
            }
        }
    };

    // A length beyond any frame: the link is out of step and closed.
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]).unwrap();
    assert_eq!(answer(s), None, "closed without an answer");

    // A call before attaching.
    let mut s = UnixStream::connect(&path).unwrap();
    let call = pb::LinkFrame {
        frame: Some(Frame::Call(pb::LinkCall {
            id: 1,
            call: Some(pb::link_call::Call::ImportContext(
                pb::ImportContextRequest::default(),
            )),
        })),
    };
    s.write_all(&encode(&call)).unwrap();
    let r = answer(s).expect("an answer");
    assert_eq!(r.code, tonic::Code::FailedPrecondition as i32, "{r:?}");

    // Attaching to a service that does not exist.
    let mut s = UnixStream::connect(&path).unwrap();
    let attach = pb::LinkFrame {
        frame: Some(Frame::Attach(pb::WatchEventsRequest {
            service_handle: 0xBAD,
        })),
    };
    s.write_all(&encode(&attach)).unwrap();
    let r = answer(s).expect("an answer");
    assert_eq!(r.code, tonic::Code::NotFound as i32, "{r:?}");

    let m = c.metrics(1);
    for reason in ["malformed", "not_attached"] {
        assert!(
            m.contains(&format!(
                r#"edgemob_peer_frames_dropped_total{{protocol="service_link",reason="{reason}"}} 1"#
            )),
            "{m}"
        );
    }

    // The registered services still move.
    c.a_ue_moves_with_its_download().await;
}

/// A second agent started by mistake — in the same namespace, or with the
/// same API path from another — refuses with one line and leaves the first
/// one serving, its sockets in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_refuses_and_leaves_the_first_serving() {
    edgemob_testbed::require_root();
    let c = Cluster::start(Opts::default()).await;
    let cfg = c.dir.join("enbc1.toml");
    for (node, expect) in [
        (
            Node::Enbc1,
            "another edgemob agent runs in this network namespace",
        ),
        (Node::Ue, "another edgemob agent serves"),
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_edgemob"));
        cmd.args(["agent", "--config"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let child = c.tb.spawn(node, cmd).unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{node:?}: {err}");
        assert!(err.contains(expect), "{node:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        let api = std::path::PathBuf::from(c.api(0));
        for p in [
            api.clone(),
            edgemob_paas_api::descriptor_channel_path(&api),
            edgemob_paas_api::link_path(&api),
        ] {
            assert!(p.exists(), "{} was removed", p.display());
        }
        assert_eq!(c.health(0).await.mihf_id, "enbc1@edgemob");
    }
    // The first one still migrates.
    c.a_ue_moves_with_its_download().await;
}

/// `edgemob status | grep -q …`: a reader that goes away ends the command
/// quietly, as it ends any Unix tool (no panic, no backtrace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_ends_quietly_when_its_reader_goes_away() {
    edgemob_testbed::require_root();
    let c = Cluster::start(Opts::default()).await;
    for cmd in ["status", "history"] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_edgemob"))
            .args([cmd, "--agent", &c.api(0)])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Nobody reads: the first line the command writes meets a closed pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {err}");
        assert!(err.is_empty(), "{cmd}: {err}");
    }
}

/// An agent killed with entries in its network lock leaves them in the
/// kernel; the agent that starts next in that namespace removes them, so
/// no connection is black-holed by a lock nobody holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_removes_the_lock_its_predecessor_left() {
    edgemob_testbed::require_root();
    let mut c = Cluster::start(Opts::default()).await;
    c.kill_agent(1);
    let stale = edgemob_session_migrate::FourTuple {
        local: "10.77.0.1:80".parse().unwrap(),
        peer: "10.77.1.2:40123".parse().unwrap(),
    };
    c.tb.enter(Node::Enbc2, move || {
        edgemob_session_migrate::NetLock::open()
            .unwrap()
            .lock(&[stale])
            .unwrap();
    })
    .unwrap();
    assert!(locked4(&c.tb, 1).contains("40123"), "{}", locked4(&c.tb, 1));
    c.restart_agent(1).await;
    let left = locked4(&c.tb, 1);
    assert!(!left.contains("40123"), "a stale entry survived: {left}");
    // The restarted agent locks and migrates as before (its service, which
    // ended with the first agent, started again).
    c.spawn_service(1, &[]);
    c.a_ue_moves_with_its_download().await;
}

//! Across namespaces, the ARCHITECTURE.md topology: an unmodified `curl` in
//! `ue` downloads from `enbc1`, and a second client uploads while it
//! downloads (IPv6); mid-transfer both connections are dumped in `enbc1`,
//! restored in `enbc2` and the UE's path is switched. Also the rollback.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use edgemob_testbed::{Family, Node, Testbed, TestbedOptions, pcap};
use sha2::Digest;
use support::server::*;

const DOWNLOAD: u64 = 32 << 20;

fn listen(tb: &Testbed, node: Node, addr: SocketAddr) -> TcpListener {
    tb.enter(node, || TcpListener::bind(addr).unwrap()).unwrap()
}

/// Serves the sessions at once until each has sent at least its number of
/// body octets (bounded in time); stops them just before returning, so the
/// handover that follows is the only pause their clients see.
fn run_until(sessions: Vec<(Session, u64)>) -> Vec<Session> {
    let goals: Vec<u64> = sessions.iter().map(|(_, g)| *g).collect();
    let mut serving: Vec<Serving> = sessions
        .into_iter()
        .map(|(s, _)| Serving::start(s, None))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let stopped: Vec<Session> = serving.into_iter().map(Serving::stop).collect();
        let reached = stopped.iter().zip(&goals).all(|(s, g)| s.down_sent >= *g);
        if reached || Instant::now() > deadline {
            return stopped;
        }
        serving = stopped
            .into_iter()
            .map(|s| Serving::start(s, None))
            .collect();
    }
}

#[test]
fn handover_moves_live_downloads_and_uploads_without_rst() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let mut locks = Locks::open(&tb);
    let v4 = SocketAddr::new(tb.service_addr(Family::V4), 80);
    let v6 = SocketAddr::new(tb.service_addr(Family::V6), 80);
    let l4 = listen(&tb, Node::Enbc1, v4);
    let l6 = listen(&tb, Node::Enbc1, v6);
    // enbc2 runs the same service (its listener shares the port with restored sockets).
    let _l4b = listen(&tb, Node::Enbc2, v4);

    let capture = tb.capture(Node::Ue, "eth0", "tcp port 80").unwrap();
    let (mut curl, hashed) = curl(&tb, v4, DOWNLOAD, Some("24M"));
    let curl_session = Session::accept(l4.accept().unwrap().0);
    let updown = updown_client(&tb, v6, 8 << 20, 16 << 20);
    let updown_session = Session::accept(l6.accept().unwrap().0);

    // Serve both for a while, then hand over mid-transfer.
    let mut both = run_until(vec![(curl_session, 8 << 20), (updown_session, 2 << 20)]);
    let (updown_session, curl_session) = (both.pop().unwrap(), both.pop().unwrap());
    assert!(
        curl_session.down_sent < DOWNLOAD && updown_session.up_received < updown_session.up_total
    );
    let (sessions, timing) = migrate(
        &tb,
        &mut locks,
        Node::Enbc1,
        Node::Enbc2,
        vec![curl_session, updown_session],
        false,
    );
    println!(
        "handover: frozen {:?} (dump {:?}, restore {:?})",
        timing.frozen, timing.dump, timing.restore
    );
    let serving: Vec<Serving> = sessions
        .into_iter()
        .map(|s| Serving::start(s, None))
        .collect();

    let status = curl.wait().unwrap();
    assert!(status.success(), "curl failed: {status}");
    let (digest, n) = hashed.join().unwrap();
    assert_eq!(n, DOWNLOAD);
    assert_eq!(
        digest,
        stream_sha256(DOWN, DOWNLOAD),
        "curl's download is byte-exact"
    );
    let updown_digest = updown.join().unwrap();
    assert_eq!(
        updown_digest,
        stream_sha256(DOWN, 16 << 20),
        "second client's download is byte-exact"
    );
    for s in serving {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !s.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let s = s.stop();
        assert!(s.done(), "session finished");
        if s.up_total > 0 {
            assert_eq!(
                s.up_hash.clone().finalize()[..],
                stream_sha256(UP, s.up_total)[..],
                "upload byte-exact"
            );
        }
        s.finish();
    }
    let segments = capture.finish().unwrap();
    for (family, ue) in [
        ("IPv4", tb.addr(Node::Ue, Family::V4)),
        ("IPv6", tb.addr(Node::Ue, Family::V6)),
    ] {
        let stats = pcap::analyze(&segments, ue);
        let around = pcap::gap_around(&segments, ue, timing.at);
        println!(
            "{family}: {} data segments to the UE, {} retransmitted, largest gap {:?}, gap across the handover {:?}",
            stats.data_segments, stats.retransmissions, stats.max_gap, around
        );
    }
    assert_eq!(
        pcap::analyze(&segments, tb.addr(Node::Ue, Family::V4)).rst,
        0,
        "no RST seen at the UE"
    );
}

#[test]
fn rollback_after_dump_resumes_the_source_byte_exact() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let mut locks = Locks::open(&tb);
    let v4 = SocketAddr::new(tb.service_addr(Family::V4), 80);
    let l4 = listen(&tb, Node::Enbc1, v4);
    let capture = tb.capture(Node::Ue, "eth0", "tcp port 80").unwrap();
    let (mut curl, hashed) = curl(&tb, v4, 16 << 20, Some("24M"));
    let session = run_until(vec![(Session::accept(l4.accept().unwrap().0), 4 << 20)])
        .pop()
        .unwrap();
    // Dump, then fail on purpose before any restore: the source thaws.
    let (mut sessions, timing) = migrate(
        &tb,
        &mut locks,
        Node::Enbc1,
        Node::Enbc2,
        vec![session],
        true,
    );
    println!("rollback: frozen for {:?}", timing.frozen);
    let serving = Serving::start(sessions.pop().unwrap(), None);
    assert!(curl.wait().unwrap().success());
    let (digest, n) = hashed.join().unwrap();
    assert_eq!(n, 16 << 20);
    assert_eq!(
        digest,
        stream_sha256(DOWN, 16 << 20),
        "byte-exact after rollback"
    );
    serving.stop().finish();
    let segments = capture.finish().unwrap();
    let stats = pcap::analyze(&segments, tb.addr(Node::Ue, Family::V4));
    println!(
        "rollback: largest gap {:?}, {} retransmitted",
        stats.max_gap, stats.retransmissions
    );
    assert_eq!(stats.rst, 0);
}

//! Client-observed stall across a namespace switch: the mechanism alone.
//!
//! An unmodified `curl` in `ue` downloads from a paced server in one eNBC;
//! mid-download the server stops, the connection is dumped (locked),
//! the UE's path switched, the socket restored in the other eNBC, unlocked
//! and served on from there, alternating direction each round. The stall
//! is the gap between the last data segment the UE received before the
//! freeze and the first after it, from a capture in `ue`; every download is
//! checked byte for byte and the capture for RST segments.
//!
//! `cargo bench -p edgemob-session-migrate --bench stall` (root; rounds:
//! `EDGEMOB_STALL_ROUNDS`, default 30). The stall includes the server's
//! own pacing (it pauses [`PACE`] between writes; the stop comes at any
//! moment of that pause); what the agent adds on top (service export,
//! CXTP) is measured by `edgemob-lab demo`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use edgemob_testbed::{Family, Node, Testbed, TestbedOptions, pcap};
use support::server::{DOWN, Locks, Serving, Session, curl, migrate, stream_sha256};

/// Download per round: long enough that the handover falls mid-transfer.
const DOWNLOAD: u64 = 32 << 20;
/// The server sleeps this long between writes of up to 64 KiB.
const PACE: Duration = Duration::from_millis(1);
/// Serving time before the handover.
const BEFORE: Duration = Duration::from_millis(150);
/// A gap this long means a retransmission timeout (Linux's minimum RTO).
const RTO_MIN: Duration = Duration::from_millis(200);

fn listen(tb: &Testbed, node: Node, addr: SocketAddr) -> TcpListener {
    tb.enter(node, || TcpListener::bind(addr).unwrap()).unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not run us.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    edgemob_testbed::require_root();
    let rounds: usize = std::env::var("EDGEMOB_STALL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let mut locks = Locks::open(&tb);
    let svc = SocketAddr::new(tb.service_addr(Family::V4), 80);
    let ue = tb.addr(Node::Ue, Family::V4);
    let listeners = [listen(&tb, Node::Enbc1, svc), listen(&tb, Node::Enbc2, svc)];
    let nodes = [Node::Enbc1, Node::Enbc2];
    tb.switch_to(Node::Enbc1).unwrap();

    let (mut stalls, mut frozen, mut dumps, mut restores) = (vec![], vec![], vec![], vec![]);
    let (mut rst, mut retrans, mut rto_stalls) = (0, 0, 0);
    for round in 0..rounds {
        let (from, to) = (round % 2, 1 - round % 2);
        let capture = tb.capture(Node::Ue, "eth0", "tcp port 80").unwrap();
        let (mut client, hashed) = curl(&tb, svc, DOWNLOAD, None);
        let session = Session::accept(listeners[from].accept().unwrap().0);
        let serving = Serving::start(session, Some(PACE));
        std::thread::sleep(BEFORE);
        let session = serving.stop();
        assert!(
            session.down_sent < DOWNLOAD,
            "round {round}: handover too late"
        );
        let (mut moved, timing) = migrate(
            &tb,
            &mut locks,
            nodes[from],
            nodes[to],
            vec![session],
            false,
        );
        let serving = Serving::start(moved.pop().unwrap(), Some(PACE));
        let status = client.wait().unwrap();
        assert!(status.success(), "round {round}: curl failed: {status}");
        let (digest, n) = hashed.join().unwrap();
        assert_eq!(n, DOWNLOAD, "round {round}: short download");
        assert_eq!(
            digest,
            stream_sha256(DOWN, DOWNLOAD),
            "round {round}: download differs"
        );
        serving.stop().finish();
        let segments = capture.finish().unwrap();
        let stats = pcap::analyze(&segments, ue);
        let gap =
            pcap::gap_around(&segments, ue, timing.at).expect("data on both sides of the handover");
        rst += stats.rst;
        retrans += stats.retransmissions;
        rto_stalls += usize::from(gap >= RTO_MIN);
        stalls.push(ms(gap));
        frozen.push(ms(timing.frozen));
        dumps.push(ms(timing.dump));
        restores.push(ms(timing.restore));
    }
    for v in [&mut stalls, &mut frozen, &mut dumps, &mut restores] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "session-migrate stall: {rounds} handovers of a paced curl download across namespaces (release)"
    );
    println!("{:<38} {:>8} {:>8} {:>8}", "ms", "p50", "p90", "max");
    for (name, v) in [
        ("client stall (capture in ue)", &stalls),
        ("frozen: lock .. target socket live", &frozen),
        ("dump (lock + dump)", &dumps),
        ("restore", &restores),
    ] {
        println!(
            "{name:<38} {:>8.3} {:>8.3} {:>8.3}",
            pct(v, 0.5),
            pct(v, 0.9),
            v[v.len() - 1]
        );
    }
    println!(
        "downloads byte-exact: {rounds}/{rounds}; RST at the UE: {rst}; retransmitted segments: {retrans}; stalls >= {} ms (RTO): {rto_stalls}",
        RTO_MIN.as_millis()
    );
}

//! Client-observed stall across handovers: a Rust client in `ue` reads a
//! paced download as fast as it can while the connection is migrated 20
//! times between `enbc1` and `enbc2` (lock, dump, switch, restore, unlock,
//! activate). Prints p50/max of the gap between successive reads at the
//! client around each migration, next to the normal gap. Needs root.
//!
//! Run: `cargo run --release -p edgemob-session-migrate --example stall`

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use edgemob_testbed::{Family, Node, Testbed, TestbedOptions};
use support::server::{Locks, Serving, Session, migrate};

const MIGRATIONS: usize = 20;

fn main() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let mut locks = Locks::open(&tb);
    let service = SocketAddr::new(tb.service_addr(Family::V4), 80);
    let listener = tb
        .enter(Node::Enbc1, || TcpListener::bind(service).unwrap())
        .unwrap();
    let total: u64 = 1 << 40; // effectively endless; the client stops reading at the end
    let client = tb
        .enter(Node::Ue, || TcpStream::connect(service).unwrap())
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut client = client;
        client.write_request(total);
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reads = Vec::with_capacity(1 << 20);
        let mut buf = vec![0u8; 256 << 10];
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 {
                break;
            }
            reads.push(Instant::now());
        }
        reads
    });
    let mut session = Session::accept(listener.accept().unwrap().0);
    let pace = Some(Duration::from_micros(100));
    let mut at = Vec::new();
    let mut frozen = Vec::new();
    let mut from = Node::Enbc1;
    for _ in 0..MIGRATIONS {
        let serving = Serving::start(session, pace);
        std::thread::sleep(Duration::from_millis(100));
        session = serving.stop();
        let to = if from == Node::Enbc1 {
            Node::Enbc2
        } else {
            Node::Enbc1
        };
        let start = Instant::now();
        let (mut s, timing) = migrate(&tb, &mut locks, from, to, vec![session], false);
        at.push(start);
        frozen.push(timing.frozen);
        session = s.pop().unwrap();
        from = to;
    }
    let serving = Serving::start(session, pace);
    std::thread::sleep(Duration::from_millis(100));
    drop(serving.stop());
    let reads = reader.join().unwrap();

    let mut stalls: Vec<Duration> = at
        .iter()
        .filter_map(|t| {
            let before = reads.iter().rev().find(|r| *r <= t)?;
            let after = reads.iter().find(|r| *r > t)?;
            Some(*after - *before)
        })
        .collect();
    let mut normal: Vec<Duration> = reads.windows(2).map(|w| w[1] - w[0]).collect();
    stalls.sort();
    normal.sort();
    frozen.sort();
    let p50 = |v: &[Duration]| v[v.len() / 2];
    println!("migrations: {}", stalls.len());
    println!(
        "client stall across a handover: p50 {:?}, max {:?}",
        p50(&stalls),
        stalls.last().unwrap()
    );
    println!(
        "server side frozen (lock to live): p50 {:?}, max {:?}",
        p50(&frozen),
        frozen.last().unwrap()
    );
    println!(
        "normal gap between reads: p50 {:?}, p99 {:?}",
        p50(&normal),
        normal[normal.len() * 99 / 100]
    );
}

trait Request {
    fn write_request(&mut self, bytes: u64);
}

impl Request for TcpStream {
    fn write_request(&mut self, bytes: u64) {
        use std::io::Write;
        self.write_all(format!("GET /{bytes} HTTP/1.1\r\n\r\n").as_bytes())
            .unwrap();
    }
}

//! The nf_tables lock, checked against `nft`'s own listing and real traffic.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use edgemob_session_migrate::{FourTuple, NetLock};
use edgemob_testbed::{Family, Node, Testbed, TestbedOptions, pcap};
use support::*;

fn nft(tb: &Testbed, node: Node, args: &[&str]) -> String {
    let mut cmd = Command::new("nft");
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = tb.spawn(node, cmd).unwrap().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `nft list table inet edgemob_lock` in enbc1, on one line.
fn lock_table(tb: &Testbed) -> String {
    squash(&nft(
        tb,
        Node::Enbc1,
        &["list", "table", "inet", "edgemob_lock"],
    ))
}

/// An IPv4 service connection of the testbed's addresses.
fn v4_tuple() -> FourTuple {
    FourTuple {
        local: "10.77.0.1:80".parse().unwrap(),
        peer: "10.77.1.2:40000".parse().unwrap(),
    }
}

#[test]
fn nft_lists_the_table_and_the_locked_tuples() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let v4 = v4_tuple();
    let v6 = FourTuple {
        local: "[fd00:77::1]:443".parse().unwrap(),
        peer: "[fd00:77:1::2]:50000".parse().unwrap(),
    };
    let mapped = FourTuple {
        local: "[::ffff:10.77.0.1]:8080".parse().unwrap(),
        peer: "[::ffff:10.77.1.2]:40001".parse().unwrap(),
    };
    tb.enter(Node::Enbc1, || {
        let mut lock = NetLock::open().unwrap();
        lock.lock(&[v4, v6, mapped]).unwrap();
        lock.lock(&[v4]).unwrap(); // idempotent
        drop(NetLock::open().unwrap()); // a second handle reuses the table
    })
    .unwrap();

    let table = lock_table(&tb);
    for expected in [
        "set conns4 { type ipv4_addr . inet_service . ipv4_addr . inet_service",
        "set conns6 { type ipv6_addr . inet_service . ipv6_addr . inet_service",
        "chain input { type filter hook input priority filter; policy accept;",
        "meta mark 0x0000c114 accept",
        "ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop",
        "ip6 saddr . tcp sport . ip6 daddr . tcp dport @conns6 drop",
    ] {
        assert!(table.contains(expected), "missing `{expected}` in: {table}");
    }
    // What the locked host itself sends is let through.
    assert!(!table.contains("chain output"), "{table}");
    let set4 = squash(&nft(
        &tb,
        Node::Enbc1,
        &["list", "set", "inet", "edgemob_lock", "conns4"],
    ));
    // Each entry goes by itself after the safety timeout, should no agent
    // remove it.
    assert!(set4.contains("flags timeout"), "{set4}");
    assert!(
        set4.contains("10.77.0.1 . 80 . 10.77.1.2 . 40000 timeout 5m"),
        "{set4}"
    );
    for element in [
        "10.77.0.1 . 80 . 10.77.1.2 . 40000",
        "10.77.1.2 . 40000 . 10.77.0.1 . 80",
        "10.77.0.1 . 8080 . 10.77.1.2 . 40001",
        "10.77.1.2 . 40001 . 10.77.0.1 . 8080",
    ] {
        assert!(set4.contains(element), "missing {element} in {set4}");
    }
    let set6 = squash(&nft(
        &tb,
        Node::Enbc1,
        &["list", "set", "inet", "edgemob_lock", "conns6"],
    ));
    assert!(
        set6.contains("fd00:77::1 . 443 . fd00:77:1::2 . 50000"),
        "{set6}"
    );
    assert!(
        set6.contains("fd00:77:1::2 . 50000 . fd00:77::1 . 443"),
        "{set6}"
    );
    // Nothing leaked into the other eNBC.
    assert!(!nft(&tb, Node::Enbc2, &["list", "ruleset"]).contains("edgemob_lock"));

    tb.enter(Node::Enbc1, || {
        let mut lock = NetLock::open().unwrap();
        lock.unlock(&[v4, v6, mapped]).unwrap();
        lock.unlock(&[v4]).unwrap(); // unlocking twice is fine
    })
    .unwrap();
    let set4 = nft(
        &tb,
        Node::Enbc1,
        &["list", "set", "inet", "edgemob_lock", "conns4"],
    );
    assert!(!set4.contains("10.77"), "{set4}");
    tb.enter(Node::Enbc1, || NetLock::open().unwrap().remove().unwrap())
        .unwrap();
    assert!(!nft(&tb, Node::Enbc1, &["list", "ruleset"]).contains("edgemob_lock"));
}

/// A table left by a build that also dropped outgoing packets loses that
/// chain when the lock is opened; the locked tuples stay.
#[test]
fn an_older_tables_output_chain_is_removed() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let v4 = v4_tuple();
    tb.enter(Node::Enbc1, || {
        NetLock::open().unwrap().lock(&[v4]).unwrap()
    })
    .unwrap();
    nft(
        &tb,
        Node::Enbc1,
        &["add chain inet edgemob_lock output { type filter hook output priority filter; }"],
    );
    nft(
        &tb,
        Node::Enbc1,
        &[
            "add rule inet edgemob_lock output ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop",
        ],
    );
    assert!(
        lock_table(&tb).contains("chain output"),
        "{}",
        lock_table(&tb)
    );
    tb.enter(Node::Enbc1, || drop(NetLock::open().unwrap()))
        .unwrap();
    let table = lock_table(&tb);
    assert!(!table.contains("chain output"), "{table}");
    assert!(table.contains("chain input"), "{table}");
    let set4 = squash(&nft(
        &tb,
        Node::Enbc1,
        &["list", "set", "inet", "edgemob_lock", "conns4"],
    ));
    assert!(
        set4.contains("10.77.0.1 . 80 . 10.77.1.2 . 40000"),
        "{set4}"
    );
}

#[test]
fn locked_traffic_is_dropped_never_answered() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let ue = tb.addr(Node::Ue, Family::V4);
    for family in [Family::V4, Family::V6] {
        let service = SocketAddr::new(tb.service_addr(family), 9000);
        let listener = tb
            .enter(Node::Enbc1, || TcpListener::bind(service).unwrap())
            .unwrap();
        let mut client = tb
            .enter(Node::Ue, || TcpStream::connect(service).unwrap())
            .unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let tuple = tuple_of(&server);
        let capture = tb.capture(Node::Ue, "eth0", "tcp port 9000").unwrap();
        tb.enter(Node::Enbc1, || {
            NetLock::open().unwrap().lock(&[tuple]).unwrap()
        })
        .unwrap();
        // What the locked side sends still leaves: a segment its kernel
        // transmits between the lock and the dump reaches the peer instead
        // of being counted in flight and lost.
        server.write_all(b"sent while locked").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = [0u8; 64];
        let n = client.read(&mut got).unwrap();
        assert_eq!(&got[..n], b"sent while locked");
        client.write_all(b"while locked").unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(
            server.read(&mut buf).is_err(),
            "nothing gets through the lock"
        );
        tb.enter(Node::Enbc1, || {
            NetLock::open().unwrap().unlock(&[tuple]).unwrap()
        })
        .unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = server.read(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"while locked",
            "the client's retransmission arrives after unlock"
        );
        let receiver = if family == Family::V4 {
            ue
        } else {
            tb.addr(Node::Ue, Family::V6)
        };
        let stats = pcap::analyze(&capture.finish().unwrap(), receiver);
        assert_eq!(stats.rst, 0, "{family:?}: no RST while locked");
    }
}

/// Removal the way a kernel before 6.3 must do it (DEL, which fails on an
/// entry that is not there), forced on this kernel: entries that are there
/// go, entries that are not are no error, others stay.
#[test]
fn removal_with_del_as_before_linux_6_3_tolerates_missing_entries() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let kept = FourTuple {
        local: "10.77.0.1:80".parse().unwrap(),
        peer: "10.77.1.2:40007".parse().unwrap(),
    };
    let v6 = FourTuple {
        local: "[fd00:77::1]:443".parse().unwrap(),
        peer: "[fd00:77:1::2]:50000".parse().unwrap(),
    };
    let never = FourTuple {
        local: "10.77.0.1:80".parse().unwrap(),
        peer: "10.77.1.2:40099".parse().unwrap(),
    };
    let v4 = v4_tuple();
    tb.enter(Node::Enbc1, move || {
        let mut lock = NetLock::open().unwrap();
        lock.use_del_for_removal();
        lock.lock(&[v4, v6, kept]).unwrap();
        // Present and missing together: the missing one is no error.
        lock.unlock(&[v4, never, v6]).unwrap();
        lock.unlock(&[v4]).unwrap();
        lock.unlock(&[]).unwrap();
    })
    .unwrap();
    let set4 = squash(&nft(
        &tb,
        Node::Enbc1,
        &["list", "set", "inet", "edgemob_lock", "conns4"],
    ));
    assert!(!set4.contains("40000") && !set4.contains("40099"), "{set4}");
    assert!(
        set4.contains("10.77.1.2 . 40007 . 10.77.0.1 . 80"),
        "{set4}"
    );
    let set6 = squash(&nft(
        &tb,
        Node::Enbc1,
        &["list", "set", "inet", "edgemob_lock", "conns6"],
    ));
    assert!(!set6.contains("50000"), "{set6}");
}

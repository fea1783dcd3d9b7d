//! The topology itself: reachability in both families, the path switch,
//! captures, and that nothing is left behind.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use edgemob_testbed::{Family, Node, Testbed, TestbedOptions, pcap};

/// A listener on the service address that answers every connection with the node's name.
fn name_server(tb: &Testbed, node: Node, addr: SocketAddr) {
    let listener = tb.enter(node, || TcpListener::bind(addr).unwrap()).unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let _ = conn.write_all(node.name().as_bytes());
        }
    });
}

fn ask(tb: &Testbed, addr: SocketAddr) -> String {
    tb.enter(Node::Ue, || {
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    })
    .unwrap()
}

#[test]
fn service_is_reachable_in_both_families_and_switches() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    for family in [Family::V4, Family::V6] {
        let addr = SocketAddr::new(tb.service_addr(family), 7000);
        name_server(&tb, Node::Enbc1, addr);
        name_server(&tb, Node::Enbc2, addr);
    }
    for family in [Family::V4, Family::V6] {
        assert_eq!(
            ask(&tb, SocketAddr::new(tb.service_addr(family), 7000)),
            "enbc1"
        );
    }
    let started = Instant::now();
    tb.switch_to(Node::Enbc2).unwrap();
    println!("switch_to(enbc2) took {:?}", started.elapsed());
    for family in [Family::V4, Family::V6] {
        assert_eq!(
            ask(&tb, SocketAddr::new(tb.service_addr(family), 7000)),
            "enbc2"
        );
    }
    tb.switch_to(Node::Enbc1).unwrap();
    assert_eq!(
        ask(&tb, SocketAddr::new(tb.service_addr(Family::V6), 7000)),
        "enbc1"
    );
    // The UE reaches each eNBC's own address too.
    let enbc2 = SocketAddr::new(tb.addr(Node::Enbc2, Family::V4), 7001);
    let listener = tb
        .enter(Node::Enbc2, || TcpListener::bind(enbc2).unwrap())
        .unwrap();
    let conn = tb
        .enter(Node::Ue, || {
            TcpStream::connect_timeout(&enbc2, Duration::from_secs(5))
        })
        .unwrap();
    assert!(conn.is_ok());
    drop(listener);
}

#[test]
fn capture_counts_rst_segments() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let ue = tb.addr(Node::Ue, Family::V4);
    let service = SocketAddr::new(tb.service_addr(Family::V4), 7100);
    name_server(&tb, Node::Enbc1, service);

    let capture = tb.capture(Node::Ue, "eth0", "tcp").unwrap();
    assert_eq!(ask(&tb, service), "enbc1");
    let segments = capture.finish().unwrap();
    let stats = pcap::analyze(&segments, ue);
    assert_eq!(stats.rst, 0, "a clean exchange has no RST");
    assert!(
        stats.data_segments >= 1,
        "the answer reached the UE: {stats:?}"
    );

    let capture = tb.capture(Node::Ue, "eth0", "tcp").unwrap();
    let closed = SocketAddr::new(tb.service_addr(Family::V4), 7101);
    let refused = tb
        .enter(Node::Ue, || {
            TcpStream::connect_timeout(&closed, Duration::from_secs(5))
        })
        .unwrap();
    assert!(refused.is_err());
    let stats = pcap::analyze(&capture.finish().unwrap(), ue);
    assert_eq!(stats.rst, 1, "a closed port answers with one RST");
}

#[test]
fn sysctls_apply_inside_one_namespace_only() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    tb.sysctl(Node::Ue, "net.ipv4.tcp_timestamps", "0").unwrap();
    let read = |node| {
        tb.enter(node, || {
            std::fs::read_to_string("/proc/sys/net/ipv4/tcp_timestamps").unwrap()
        })
        .unwrap()
    };
    assert_eq!(read(Node::Ue).trim(), "0");
    assert_eq!(read(Node::Enbc1).trim(), "1");
}

fn namespaces() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn drop_removes_namespaces_and_processes() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let names: Vec<String> = Node::ALL.iter().map(|&n| tb.ns(n)).collect();
    let mut cmd = Command::new("sleep");
    cmd.arg("100");
    let mut child = tb.spawn(Node::Enbc1, cmd).unwrap();
    assert!(names.iter().all(|n| namespaces().contains(n.as_str())));
    drop(tb);
    let listing = namespaces();
    for name in &names {
        assert!(!listing.contains(name.as_str()), "{name} left behind");
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the process inside was killed");
}

#[test]
fn cleanup_stale_removes_namespaces_of_dead_owners_only() {
    edgemob_testbed::require_root();
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let stale = format!("em{dead_pid}x0-ue");
    let live = format!("em{}x999-sw", std::process::id());
    for name in [&stale, &live] {
        assert!(
            Command::new("ip")
                .args(["netns", "add", name])
                .status()
                .unwrap()
                .success()
        );
    }
    edgemob_testbed::cleanup_stale();
    let listing = namespaces();
    assert!(!listing.contains(stale.as_str()), "stale namespace removed");
    assert!(
        listing.contains(live.as_str()),
        "a live owner's namespace is kept"
    );
    Command::new("ip")
        .args(["netns", "del", &live])
        .status()
        .unwrap();
}

#[test]
fn spawn_runs_programs_inside_the_namespace() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["-o", "addr", "show", "dev", "lo"])
        .stdout(std::process::Stdio::piped());
    let out = tb
        .spawn(Node::Enbc2, cmd)
        .unwrap()
        .wait_with_output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("10.77.0.1/32"), "{text}");
    assert!(text.contains("fd00:77::1/128"), "{text}");
    let ue: IpAddr = tb.addr(Node::Ue, Family::V6);
    assert_eq!(ue, "fd00:77:1::2".parse::<IpAddr>().unwrap());
}

#[test]
fn enbc_to_enbc_routes_open_with_a_64_segment_window() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    for (from, to) in [(Node::Enbc1, Node::Enbc2), (Node::Enbc2, Node::Enbc1)] {
        for family in [Family::V4, Family::V6] {
            let peer = tb.addr(to, family).to_string();
            let mut ip = Command::new("ip");
            ip.args(["route", "get", &peer])
                .stdout(std::process::Stdio::piped());
            let out = tb.spawn(from, ip).unwrap().wait_with_output().unwrap();
            let route = String::from_utf8(out.stdout).unwrap();
            // A 75 KB context leaves in one flight, fresh or after idling.
            assert!(
                route.contains("initcwnd 64") && route.contains("initrwnd 64"),
                "{} -> {peer}: {route}",
                from.name()
            );
        }
    }
}

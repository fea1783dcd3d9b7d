//! The larger topology: several eNBCs, many UE addresses, per-UE path
//! switching, eNBC-to-eNBC reachability, and clean-up.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use edgemob_testbed::{Family, Node, Testbed, TestbedOptions};
use socket2::{Domain, Socket, Type};

/// A listener that answers every connection with the node's name.
fn name_server(tb: &Testbed, node: Node, addr: SocketAddr) {
    let listener = tb.enter(node, || TcpListener::bind(addr).unwrap()).unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let _ = conn.write_all(node.name().as_bytes());
        }
    });
}

/// Connects from `from` (a UE address) to `to` and reads the answer.
fn ask_from(tb: &Testbed, from: IpAddr, to: SocketAddr) -> String {
    tb.enter(Node::Ue, || {
        let domain = if to.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let socket = Socket::new(domain, Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::new(from, 0).into()).unwrap();
        socket
            .connect_timeout(&to.into(), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
        let mut conn: TcpStream = socket.into();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    })
    .unwrap()
}

fn namespaces() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn four_enbcs_serve_a_hundred_ues_switched_one_by_one() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions {
        enbcs: 4,
        ue_addrs: 100,
        ..TestbedOptions::default()
    })
    .unwrap();
    let enbcs = tb.enbcs();
    assert_eq!(
        enbcs.iter().map(|n| n.name()).collect::<Vec<_>>(),
        ["enbc1", "enbc2", "enbc3", "enbc4"]
    );
    assert_eq!(enbcs[0], Node::Enbc1, "enbc1 is the named Enbc1");
    assert_eq!(tb.ue_addr(0, Family::V4), tb.addr(Node::Ue, Family::V4));
    assert_eq!(
        tb.ue_addr(99, Family::V4),
        "10.77.1.101".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        tb.addr(Node::enbc(4), Family::V4),
        "10.77.5.2".parse::<IpAddr>().unwrap()
    );

    let port = 7300;
    for &node in &enbcs {
        for family in [Family::V4, Family::V6] {
            name_server(&tb, node, SocketAddr::new(tb.service_addr(family), port));
        }
    }
    let service = |family| SocketAddr::new(tb.service_addr(family), port);

    // Everyone starts at enbc1.
    for k in [0, 1, 50, 99] {
        assert_eq!(
            ask_from(&tb, tb.ue_addr(k, Family::V4), service(Family::V4)),
            "enbc1"
        );
    }

    // Spread the UEs over the four eNBCs, one switch per UE.
    let expected = |k: usize| Node::enbc(k % 4 + 1);
    let started = Instant::now();
    for k in 0..100 {
        tb.switch_ue_to(k, expected(k)).unwrap();
    }
    println!("100 per-UE switches took {:?}", started.elapsed());
    for k in 0..100 {
        assert_eq!(
            ask_from(&tb, tb.ue_addr(k, Family::V4), service(Family::V4)),
            expected(k).name(),
            "UE address {k} (IPv4)"
        );
    }
    for k in [0, 3, 42, 97] {
        assert_eq!(
            ask_from(&tb, tb.ue_addr(k, Family::V6), service(Family::V6)),
            expected(k).name(),
            "UE address {k} (IPv6)"
        );
    }

    // Moving one UE leaves the others where they are.
    tb.switch_ue_to(5, Node::enbc(4)).unwrap();
    assert_eq!(
        ask_from(&tb, tb.ue_addr(5, Family::V4), service(Family::V4)),
        "enbc4"
    );
    assert_eq!(
        ask_from(&tb, tb.ue_addr(6, Family::V4), service(Family::V4)),
        "enbc3"
    );

    // switch_to still moves everybody.
    tb.switch_to(Node::Enbc(3)).unwrap();
    for k in [0, 5, 6, 99] {
        assert_eq!(
            ask_from(&tb, tb.ue_addr(k, Family::V4), service(Family::V4)),
            "enbc3"
        );
    }
}

#[test]
fn enbcs_reach_each_other_and_the_ue_reaches_every_enbc() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions {
        enbcs: 4,
        serving: Node::Enbc(3),
        ..TestbedOptions::default()
    })
    .unwrap();
    // One UE address: the classic single-table routing, starting at enbc3.
    let service = SocketAddr::new(tb.service_addr(Family::V4), 7400);
    for node in tb.enbcs() {
        name_server(&tb, node, service);
    }
    assert_eq!(
        ask_from(&tb, tb.addr(Node::Ue, Family::V4), service),
        "enbc3"
    );
    tb.switch_ue_to(0, Node::enbc(4)).unwrap();
    assert_eq!(
        ask_from(&tb, tb.addr(Node::Ue, Family::V4), service),
        "enbc4"
    );
    let enbcs = tb.enbcs();
    for (i, &node) in enbcs.iter().enumerate() {
        for family in [Family::V4, Family::V6] {
            name_server(
                &tb,
                node,
                SocketAddr::new(tb.addr(node, family), 7401 + i as u16),
            );
        }
    }
    for (i, &to) in enbcs.iter().enumerate() {
        for family in [Family::V4, Family::V6] {
            let addr = SocketAddr::new(tb.addr(to, family), 7401 + i as u16);
            assert_eq!(
                ask_from(&tb, tb.addr(Node::Ue, family), addr),
                to.name(),
                "ue -> {}",
                to.name()
            );
            for &from in &enbcs {
                if from == to {
                    continue;
                }
                let answer = tb
                    .enter(from, || {
                        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                            .unwrap_or_else(|e| panic!("{} -> {addr}: {e}", from.name()));
                        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut s = String::new();
                        c.read_to_string(&mut s).unwrap();
                        s
                    })
                    .unwrap();
                assert_eq!(answer, to.name(), "{} -> {}", from.name(), to.name());
            }
        }
    }
}

#[test]
fn a_large_testbed_leaves_nothing_behind() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions {
        enbcs: 5,
        ue_addrs: 3,
        ..TestbedOptions::default()
    })
    .unwrap();
    let names: Vec<String> = tb.nodes().iter().map(|&n| tb.ns(n)).collect();
    assert_eq!(names.len(), 7);
    let listing = namespaces();
    assert!(names.iter().all(|n| listing.contains(n.as_str())));
    drop(tb);
    let listing = namespaces();
    for name in &names {
        assert!(!listing.contains(name.as_str()), "{name} left behind");
    }
}

#[test]
fn impossible_options_are_refused() {
    edgemob_testbed::require_root();
    for opts in [
        TestbedOptions {
            enbcs: 1,
            ..TestbedOptions::default()
        },
        TestbedOptions {
            ue_addrs: 0,
            ..TestbedOptions::default()
        },
        TestbedOptions {
            ue_addrs: 5000,
            ..TestbedOptions::default()
        },
        TestbedOptions {
            serving: Node::Enbc(3),
            ..TestbedOptions::default()
        },
    ] {
        let err = Testbed::new(opts.clone()).unwrap_err().to_string();
        assert!(
            err.contains("must be") || err.contains("not one of"),
            "{opts:?}: {err}"
        );
    }
}

#[test]
fn a_thousand_ue_addresses_beyond_the_ue_link_are_routed_and_switchable() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions {
        enbcs: 2,
        ue_addrs: 1000,
        ..TestbedOptions::default()
    })
    .unwrap();
    let service = SocketAddr::new(tb.service_addr(Family::V4), 7300);
    name_server(&tb, Node::Enbc1, service);
    name_server(&tb, Node::Enbc2, service);
    let on_link = tb.ue_addr(252, Family::V4);
    let routed = tb.ue_addr(999, Family::V4);
    assert_eq!(on_link.to_string(), "10.77.1.254");
    assert_eq!(routed.to_string(), "10.78.2.239");
    // every address is distinct
    let all: std::collections::HashSet<IpAddr> =
        (0..1000).map(|k| tb.ue_addr(k, Family::V4)).collect();
    assert_eq!(all.len(), 1000);
    assert_eq!(ask_from(&tb, routed, service), "enbc1");
    assert_eq!(ask_from(&tb, on_link, service), "enbc1");
    tb.switch_ue_to(999, Node::Enbc2).unwrap();
    assert_eq!(
        ask_from(&tb, routed, service),
        "enbc2",
        "the routed UE moved"
    );
    assert_eq!(
        ask_from(&tb, on_link, service),
        "enbc1",
        "the others stayed"
    );
    tb.switch_to(Node::Enbc2).unwrap();
    assert_eq!(ask_from(&tb, on_link, service), "enbc2");
    // IPv6 of a high index too
    let v6 = SocketAddr::new(tb.service_addr(Family::V6), 7301);
    name_server(&tb, Node::Enbc2, v6);
    assert_eq!(ask_from(&tb, tb.ue_addr(999, Family::V6), v6), "enbc2");
}

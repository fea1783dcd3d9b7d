//! Migrations inside one namespace (loopback), in-process: the queues in
//! every state, both address families, TCP option combinations.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, OwnedFd};

use edgemob_session_migrate::{NetLock, TcpStreamImage, dump, restore_frozen};
use edgemob_testbed::{Node, Testbed, TestbedOptions};
use support::*;

const UP: u8 = 0x11; // client -> server stream
const DOWN: u8 = 0x22; // server -> client stream

/// Moves `server` to a new socket in the same namespace through the wire
/// encoding, with the lock held in between; returns the new socket and the image.
fn migrate_in_place(tb: &Testbed, node: Node, server: TcpStream) -> (TcpStream, TcpStreamImage) {
    tb.enter(node, move || {
        let mut lock = NetLock::open().unwrap();
        let tuple = tuple_of(&server);
        // Lock first, as documented: the peer's ACKs must not shrink the
        // send queue while it is read.
        lock.lock(&[tuple]).unwrap();
        let (img, frozen) = dump(server.as_fd()).unwrap();
        drop(server);
        frozen.release();
        let mut wire = Vec::new();
        img.encode(&mut wire);
        let img = TcpStreamImage::decode(&wire).unwrap();
        let restored = restore_frozen(&img).unwrap();
        lock.unlock(&[img.tuple]).unwrap();
        let fd: OwnedFd = restored.activate().unwrap();
        (TcpStream::from(fd), img)
    })
    .unwrap()
}

/// The segment size a connected socket sends with (TCP_MAXSEG reads the
/// effective MSS once connected).
fn maxseg(s: &TcpStream) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid fd, and an int-sized buffer with its length.
    let r = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(s),
            libc::SOL_TCP,
            libc::TCP_MAXSEG,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(
        r,
        0,
        "getsockopt(TCP_MAXSEG): {}",
        std::io::Error::last_os_error()
    );
    v
}

#[test]
fn queues_in_flight_both_ways_survive_ipv4_and_ipv6() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    for listen in ["127.0.0.1:0", "[::1]:0"] {
        let listen: SocketAddr = listen.parse().unwrap();
        let (mut client, mut server) = pair(&tb, Node::Enbc1, listen);
        // The client sends 300 KB the server does not read yet (its receive queue).
        let mut up_sent = 0;
        write_until_full(&mut client, UP, &mut up_sent, 300 << 10);
        // The server writes until its send buffer is full (client not reading).
        let mut down_sent = 0;
        write_until_full(&mut server, DOWN, &mut down_sent, 8 << 20);
        let mss_before = maxseg(&server);
        let (mut server, img) = migrate_in_place(&tb, Node::Enbc1, server);
        // The restored connection sends segments of the same size (up to
        // TCP_MAXSEG's 32767), not the kernel's 536-octet default.
        let mss_after = maxseg(&server);
        assert!(mss_before > 536, "{listen}: loopback MSS {mss_before}");
        assert!(
            mss_after >= mss_before.min(32767 - 40),
            "{listen}: MSS {mss_before} before the move, {mss_after} after"
        );
        assert!(!img.recv_queue.is_empty(), "receive queue carried");
        assert!(!img.send_queue.is_empty(), "send queue carried");
        println!(
            "{listen}: inq {} outq {} unsent {} mss {} ts {:?} ws {:?}",
            img.recv_queue.len(),
            img.send_queue.len(),
            img.unsent_len,
            img.mss_clamp,
            img.options.timestamp,
            img.options.window_scale
        );
        // Everything arrives, in order, both ways, and the connection goes on.
        let reader = std::thread::spawn(move || {
            read_and_check(&mut client, DOWN, 0, down_sent + (1 << 20));
            write_stream(&mut client, UP, up_sent, 1 << 20);
            client
        });
        read_and_check(&mut server, UP, 0, up_sent);
        write_stream(&mut server, DOWN, down_sent, 1 << 20);
        let _client = reader.join().unwrap();
        read_and_check(&mut server, UP, up_sent, 1 << 20);
    }
}

#[test]
fn empty_queues_and_a_zero_receive_window() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    // Idle connection: nothing queued either way.
    let (mut client, server) = pair(&tb, Node::Enbc1, listen);
    let (mut server, img) = migrate_in_place(&tb, Node::Enbc1, server);
    assert!(img.recv_queue.is_empty() && img.send_queue.is_empty());
    write_stream(&mut client, UP, 0, 4096);
    read_and_check(&mut server, UP, 0, 4096);
    write_stream(&mut server, DOWN, 0, 4096);
    read_and_check(&mut client, DOWN, 0, 4096);

    // The client stops reading: its window closes to zero, the server's
    // send queue fills and stays unsent.
    let (mut client, mut server) = pair(&tb, Node::Enbc1, listen);
    let mut sent = 0;
    write_until_full(&mut server, DOWN, &mut sent, 64 << 20);
    std::thread::sleep(std::time::Duration::from_millis(100));
    write_until_full(&mut server, DOWN, &mut sent, 64 << 20);
    let (mut server, img) = migrate_in_place(&tb, Node::Enbc1, server);
    assert!(
        img.window.snd_wnd < img.mss_clamp,
        "the peer's window is closed: {:?}",
        img.window
    );
    assert!(img.unsent_len > 0);
    println!(
        "zero window: snd_wnd {} B, send queue {} B, {} unsent",
        img.window.snd_wnd,
        img.send_queue.len(),
        img.unsent_len
    );
    std::thread::sleep(std::time::Duration::from_millis(50));
    let reader = std::thread::spawn(move || read_and_check(&mut client, DOWN, 0, sent + (1 << 20)));
    write_stream(&mut server, DOWN, sent, 1 << 20);
    reader.join().unwrap();
}

#[test]
fn window_scaling_timestamps_and_sack_on_and_off() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    for (ws, ts, sack) in [(1, 1, 1), (0, 1, 1), (1, 0, 1), (1, 1, 0), (0, 0, 0)] {
        for (key, v) in [
            ("net.ipv4.tcp_window_scaling", ws),
            ("net.ipv4.tcp_timestamps", ts),
            ("net.ipv4.tcp_sack", sack),
        ] {
            tb.sysctl(Node::Enbc1, key, &v.to_string()).unwrap();
        }
        let (mut client, mut server) = pair(&tb, Node::Enbc1, listen);
        let mut up = 0;
        write_until_full(&mut client, UP, &mut up, 200 << 10);
        let mut down = 0;
        write_until_full(&mut server, DOWN, &mut down, 4 << 20);
        let (mut server, img) = migrate_in_place(&tb, Node::Enbc1, server);
        assert_eq!(img.options.window_scale.is_some(), ws == 1, "ws={ws}");
        assert_eq!(img.options.timestamp.is_some(), ts == 1, "ts={ts}");
        assert_eq!(img.options.sack_permitted, sack == 1, "sack={sack}");
        let reader = std::thread::spawn(move || {
            read_and_check(&mut client, DOWN, 0, down + (512 << 10));
            client
        });
        read_and_check(&mut server, UP, 0, up);
        write_stream(&mut server, DOWN, down, 512 << 10);
        reader.join().unwrap();
    }
}

#[test]
fn a_thousand_connections_in_one_go() {
    edgemob_testbed::require_root();
    raise_fd_limit();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let listen: SocketAddr = "127.0.0.1:9100".parse().unwrap();
    const N: usize = 1000;
    let (clients, servers) = tb
        .enter(Node::Enbc1, || {
            let listener = std::net::TcpListener::bind(listen).unwrap();
            let mut clients = Vec::with_capacity(N);
            let mut servers = Vec::with_capacity(N);
            for i in 0..N {
                let mut c = TcpStream::connect(listen).unwrap();
                let (mut s, _) = listener.accept().unwrap();
                write_stream(&mut c, UP, 0, 1000 + i as u64);
                write_stream(&mut s, DOWN, 0, 3000 + i as u64);
                clients.push(c);
                servers.push(s);
            }
            (clients, servers)
        })
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let restored = tb
        .enter(Node::Enbc1, move || {
            let mut lock = NetLock::open().unwrap();
            let t0 = std::time::Instant::now();
            let fds: Vec<_> = servers.iter().map(|s| s.as_fd()).collect();
            let tuples: Vec<_> = servers.iter().map(tuple_of).collect();
            lock.lock(&tuples).unwrap();
            let dumped: Vec<_> = edgemob_session_migrate::dump_all(&fds)
                .into_iter()
                .map(Result::unwrap)
                .collect();
            let t_dump = t0.elapsed();
            drop(fds);
            drop(servers);
            let images: Vec<TcpStreamImage> = dumped
                .into_iter()
                .map(|(img, frozen)| {
                    frozen.release();
                    img
                })
                .collect();
            let t1 = std::time::Instant::now();
            let restored: Vec<_> = edgemob_session_migrate::restore_all(&images)
                .into_iter()
                .map(Result::unwrap)
                .collect();
            lock.unlock(&tuples).unwrap();
            let live: Vec<TcpStream> = restored
                .into_iter()
                .map(|r| TcpStream::from(r.activate().unwrap()))
                .collect();
            println!(
                "{N} connections: dump+lock {t_dump:?}, restore+unlock+activate {:?}",
                t1.elapsed()
            );
            for (i, img) in images.iter().enumerate() {
                assert_eq!(img.recv_queue.len(), 1000 + i);
            }
            live
        })
        .unwrap();
    for (i, (mut c, mut s)) in clients.into_iter().zip(restored).enumerate() {
        read_and_check(&mut s, UP, 0, 1000 + i as u64);
        read_and_check(&mut c, DOWN, 0, 3000 + i as u64);
        write_stream(&mut s, DOWN, 3000 + i as u64, 100);
        read_and_check(&mut c, DOWN, 3000 + i as u64, 100);
    }
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid rlimit struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim);
        lim.rlim_cur = lim.rlim_max.max(8192).min(lim.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim);
    }
}

/// A server's port stays its own: the restored connection's TIME-WAIT (it
/// closes first) must not keep the service from listening on its port again
/// (the kernel clears a socket's reuse flag when repair mode ends; an
/// accepted socket had its listener's SO_REUSEADDR).
#[test]
fn a_service_can_listen_on_its_port_again_after_a_restored_connection_closes() {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    // `pair` closes its listener once the connection is accepted.
    let (mut client, server) = pair(&tb, Node::Enbc1, "127.0.0.1:0".parse().unwrap());
    let port = server.local_addr().unwrap();
    let (server, _) = migrate_in_place(&tb, Node::Enbc1, server);
    // The restored side closes first: it is the one left in TIME-WAIT.
    drop(server);
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut client, &mut rest).unwrap();
    drop(client);
    let bound = tb
        .enter(Node::Enbc1, move || {
            // What a service does on start: std and tokio set SO_REUSEADDR.
            std::net::TcpListener::bind(port).map(|l| l.local_addr().unwrap())
        })
        .unwrap();
    assert_eq!(bound.unwrap(), port);
}

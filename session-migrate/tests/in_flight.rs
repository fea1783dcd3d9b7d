//! Data in flight at the dump: sent by the source after the lock, received
//! by the UE, its acknowledgement dropped. The restored socket's first
//! round-trip sample must stay near the path's: BBR sets its first pacing
//! rate from it, and a sample of a second held the stream for ~35 ms after
//! the first flight. Within one flight the octets are sent again (every
//! sample is real); beyond it they are restored as sent, and the sample is
//! the departure lead of the restored timestamp clock.

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use edgemob_session_migrate::{TcpStreamImage, dump, restore_frozen};
use edgemob_testbed::{Family, Node, Testbed, TestbedOptions};
use support::server::Locks;
use support::{read_and_check, tuple_of, write_stream};

const SEED: u8 = 7;
const WARM: u64 = 256 << 10;
const AFTER: u64 = 1 << 20;

/// The kernel's smoothed round-trip time of a socket, microseconds.
fn srtt_us(s: &TcpStream) -> u32 {
    // SAFETY: tcp_info is plain data, valid when zeroed.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid fd, and a buffer of `len` octets the kernel writes at most.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "getsockopt(TCP_INFO)");
    info.tcpi_rtt
}

#[test]
fn data_in_flight_at_the_dump_leaves_a_real_round_trip_estimate() {
    in_flight_at_the_dump(8 << 10);
}

#[test]
fn more_than_a_first_flight_in_flight_leaves_a_short_round_trip_estimate() {
    in_flight_at_the_dump(64 << 10);
}

fn in_flight_at_the_dump(in_flight: u64) {
    edgemob_testbed::require_root();
    let tb = Testbed::new(TestbedOptions::default()).unwrap();
    let mut locks = Locks::open(&tb);
    let addr = SocketAddr::new(tb.service_addr(Family::V4), 80);
    let listener = tb
        .enter(Node::Enbc1, || TcpListener::bind(addr).unwrap())
        .unwrap();
    let mut client = tb
        .enter(Node::Ue, || TcpStream::connect(addr).unwrap())
        .unwrap();
    let (mut server, _) = listener.accept().unwrap();
    server.set_nodelay(true).unwrap();

    // A connection that has carried data, then octets the UE receives
    // while the source drops its acknowledgements.
    write_stream(&mut server, SEED, 0, WARM);
    read_and_check(&mut client, SEED, 0, WARM);
    let tuple = tuple_of(&server);
    locks.of(Node::Enbc1).lock(&[tuple]).unwrap();
    write_stream(&mut server, SEED, WARM, in_flight);
    read_and_check(&mut client, SEED, WARM, in_flight);
    let (img, frozen) = dump(server.as_fd()).unwrap();
    drop(server);
    assert!(
        !img.unacked().is_empty() && img.unsent().is_empty(),
        "the premise: octets in flight at the dump, none left unsent"
    );
    let mut wire = Vec::new();
    img.encode(&mut wire);

    // Restore at enbc2 as the agent does.
    locks.of(Node::Enbc2).lock(&[tuple]).unwrap();
    tb.switch_to(Node::Enbc2).unwrap();
    let restored = tb
        .enter(Node::Enbc2, || {
            restore_frozen(&TcpStreamImage::decode(&wire).unwrap()).unwrap()
        })
        .unwrap();
    locks.of(Node::Enbc2).unlock(&[tuple]).unwrap();
    let mut server = TcpStream::from(restored.activate().unwrap());
    frozen.release();
    locks.of(Node::Enbc1).unlock(&[tuple]).unwrap();

    // The UE answers the window probe (and the octets sent again) at once.
    std::thread::sleep(Duration::from_millis(100));
    let srtt = srtt_us(&server);
    assert!(
        srtt < 100_000,
        "{in_flight} octets in flight: the restored socket's first round-trip sample is {srtt} µs; the path's is well under a millisecond"
    );

    // And the stream carries on, exact.
    let reader = std::thread::spawn(move || {
        read_and_check(&mut client, SEED, WARM + in_flight, AFTER);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        rest.len()
    });
    write_stream(&mut server, SEED, WARM + in_flight, AFTER);
    drop(server);
    assert_eq!(reader.join().unwrap(), 0, "nothing after the stream's end");
}

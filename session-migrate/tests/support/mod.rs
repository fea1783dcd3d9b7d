//! Shared helpers of the session-migrate tests and examples: deterministic
//! byte streams, connected pairs inside a testbed namespace.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

pub mod server;

use edgemob_session_migrate::FourTuple;
use edgemob_testbed::{Node, Testbed};

/// The 4-tuple of a connected socket, from its side.
pub fn tuple_of(s: &TcpStream) -> FourTuple {
    FourTuple {
        local: s.local_addr().unwrap(),
        peer: s.peer_addr().unwrap(),
    }
}

/// Byte `i` of the deterministic stream `seed`.
pub fn pattern_byte(seed: u8, i: u64) -> u8 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ seed
}

/// Fills `buf` with the stream `seed` starting at offset `from`.
pub fn fill(buf: &mut [u8], seed: u8, from: u64) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(seed, from + k as u64);
    }
}

/// Index of the first byte of `buf` that differs from the stream at `from`.
pub fn mismatch(buf: &[u8], seed: u8, from: u64) -> Option<u64> {
    buf.iter()
        .enumerate()
        .find(|(k, b)| **b != pattern_byte(seed, from + *k as u64))
        .map(|(k, _)| from + k as u64)
}

/// A connected client/server pair inside `node`.
pub fn pair(tb: &Testbed, node: Node, listen: SocketAddr) -> (TcpStream, TcpStream) {
    tb.enter(node, || {
        let listener = TcpListener::bind(listen).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    })
    .unwrap()
}

/// Writes the stream `seed` from `*sent` until the socket would block or `limit` is reached.
pub fn write_until_full(s: &mut TcpStream, seed: u8, sent: &mut u64, limit: u64) {
    s.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 16 << 10];
    while *sent < limit {
        let n = buf.len().min((limit - *sent) as usize);
        fill(&mut buf[..n], seed, *sent);
        match s.write(&buf[..n]) {
            Ok(w) => *sent += w as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    s.set_nonblocking(false).unwrap();
}

/// Reads exactly `len` bytes of stream `seed` starting at `from`, checking each.
pub fn read_and_check(s: &mut TcpStream, seed: u8, from: u64, len: u64) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while got < len {
        assert!(Instant::now() < deadline, "timed out reading");
        let n = buf.len().min((len - got) as usize);
        let r = s.read(&mut buf[..n]).expect("read");
        assert!(r > 0, "EOF after {got} of {len} bytes");
        if let Some(at) = mismatch(&buf[..r], seed, from + got) {
            panic!("byte {at} of stream {seed} differs");
        }
        got += r as u64;
    }
}

/// Writes `len` bytes of stream `seed` from `from` (blocking).
pub fn write_stream(s: &mut TcpStream, seed: u8, from: u64, len: u64) {
    let mut buf = vec![0u8; 64 << 10];
    let mut done = 0u64;
    while done < len {
        let n = buf.len().min((len - done) as usize);
        fill(&mut buf[..n], seed, from + done);
        s.write_all(&buf[..n]).unwrap();
        done += n as u64;
    }
}

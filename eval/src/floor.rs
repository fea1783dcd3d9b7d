//! The floor a migration cannot beat, measured in the same sitting on the
//! same namespaces.
//!
//! Absolute times on a shared VM swing by 3-5x from one day to the next, so
//! a migration's milliseconds alone do not tell whether edgemob or the host
//! got slower. After each run's migration the demo times, between the same
//! two eNBCs and in the same direction (source to target):
//!
//! * the **MIH round trip**: one UDP datagram the size of an MIH HO commit
//!   request ([`MIH_COMMIT_BYTES`]) from a socket on the source eNBC's
//!   address (the one its agent's MIH and CXTP use) to a socket on the
//!   target's, echoed back;
//! * the **move**: the run's context bytes written on a warm TCP connection
//!   between the same two addresses (opened once before the runs, no Nagle,
//!   buffers forced to 4 MiB as the agents force their CXTP links', through
//!   the same routes and so the same initial window), from the first write
//!   until the receiver's one-octet acknowledgement of the last byte is
//!   back.
//!
//! Each is timed [`SAMPLES`] times and the median taken, so one lucky or
//! unlucky wake-up of a virtual CPU does not set a run's floor (single
//! exchanges on a 2-vCPU VM range from 0.01 to 0.2 ms for the same round
//! trip). Every round trip and every move starts [`PAUSE`] after the last
//! exchange ended, so each starts, as a
//! migration does, with both sides asleep and their CPUs likely idle:
//! back to back, the second finds them awake and takes a tenth of the
//! time, a floor no migration meets.
//!
//! `floor = round trip + move` is the network part of a migration with
//! nothing else: no service export, no socket dump or restore, no state
//! machine, one MIH transaction instead of two. `total / floor` says how far
//! a migration is from what the same machine allowed at that moment.
//!
//! Each side runs on a thread that entered its eNBC's namespace
//! ([`Testbed::enter`]; the sockets were made there too). An untimed
//! ping-pong goes first, so the echoing side is up and waiting in its read
//! before the timed exchange starts.

use edgemob_testbed::{Family, Node, Testbed};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Octets of the round trip's datagram: the agents' MIH HO commit request
/// for the demo's UE with its one service, as captured between the eNBCs
/// (the response is 74).
pub const MIH_COMMIT_BYTES: usize = 137;
/// Socket buffers of the warm connection, as the agents' CXTP links.
const BUFFER: usize = 4 << 20;
/// No exchange waits longer than this.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Exchanges per measurement; the floor takes the median of each part.
pub const SAMPLES: usize = 5;
/// Between two exchanges: long enough for an idle virtual CPU to halt
/// (KVM polls a halting vCPU for up to a few hundred microseconds).
pub const PAUSE: Duration = Duration::from_millis(2);
/// Moved each way when the connection opens, so its first timed move finds
/// it as the agents find theirs: established, used before.
const WARM_UP_BYTES: usize = 256 << 10;

/// One measurement of the floor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloorSample {
    /// The MIH-sized UDP round trip (median of [`SAMPLES`]).
    pub rtt: Duration,
    /// The context bytes over the warm connection, until acknowledged
    /// (median of [`SAMPLES`]).
    pub moved: Duration,
}

impl FloorSample {
    /// The medians of each part of several exchanges.
    pub fn median(rtts: &[Duration], moves: &[Duration]) -> Option<FloorSample> {
        let median = |d: &[Duration]| {
            let ms: Vec<f64> = d.iter().map(|d| d.as_secs_f64()).collect();
            crate::stats::percentile(&ms, 50.0).map(Duration::from_secs_f64)
        };
        Some(FloorSample {
            rtt: median(rtts)?,
            moved: median(moves)?,
        })
    }

    pub fn rtt_ms(&self) -> f64 {
        self.rtt.as_secs_f64() * 1e3
    }

    pub fn move_ms(&self) -> f64 {
        self.moved.as_secs_f64() * 1e3
    }

    /// Round trip plus move, ms.
    pub fn floor_ms(&self) -> f64 {
        self.rtt_ms() + self.move_ms()
    }
}

/// One eNBC's sockets.
#[derive(Debug)]
struct End {
    node: Node,
    udp: UdpSocket,
    /// This eNBC's end of the warm connection.
    tcp: TcpStream,
}

/// The floor's sockets in two eNBCs, ready for [`Floor::measure`].
#[derive(Debug)]
pub struct Floor {
    ends: [End; 2],
    /// Set once an exchange failed: the connection's byte stream may be out
    /// of step, so no later measurement is trusted.
    broken: AtomicBool,
}

fn enter<T: Send>(
    tb: &Testbed,
    node: Node,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    tb.enter(node, f).map_err(io::Error::other)?
}

/// `SO_SNDBUFFORCE`/`SO_RCVBUFFORCE` (root may exceed `wmem_max`), as the
/// agent sizes its CXTP sockets.
fn force_buffers(fd: &impl AsFd) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(fd, sockopt::SndBufForce, &BUFFER)?;
    setsockopt(fd, sockopt::RcvBufForce, &BUFFER)?;
    Ok(())
}

fn stream_socket(bind: SocketAddr) -> io::Result<socket2::Socket> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(bind),
        socket2::Type::STREAM,
        None,
    )?;
    // Before the handshake, so the window scale matches the buffers.
    force_buffers(&s)?;
    s.bind(&bind.into())?;
    Ok(s)
}

fn tune(s: &TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    force_buffers(s)
}

fn udp(bind: SocketAddr) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind(bind)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    Ok(s)
}

impl Floor {
    /// Opens the sockets on the addresses of eNBCs `a` and `b`, connects
    /// them and warms the connection both ways.
    pub fn open(tb: &Testbed, a: Node, b: Node) -> io::Result<Floor> {
        let on = |n: Node| SocketAddr::new(tb.addr(n, Family::V4), 0);
        let (udp_a, listener) = enter(tb, a, || {
            let l = stream_socket(on(a))?;
            l.listen(1)?;
            Ok((udp(on(a))?, TcpListener::from(l)))
        })?;
        let at = listener.local_addr()?;
        let (udp_b, tcp_b) = enter(tb, b, || {
            let s = stream_socket(on(b))?;
            s.connect_timeout(&at.into(), TIMEOUT)?;
            Ok((udp(on(b))?, TcpStream::from(s)))
        })?;
        let (tcp_a, _) = listener.accept()?;
        for s in [&tcp_a, &tcp_b] {
            tune(s)?;
        }
        let floor = Floor {
            ends: [
                End {
                    node: a,
                    udp: udp_a,
                    tcp: tcp_a,
                },
                End {
                    node: b,
                    udp: udp_b,
                    tcp: tcp_b,
                },
            ],
            broken: AtomicBool::new(false),
        };
        for from in [0, 1] {
            floor.exchange(tb, from, WARM_UP_BYTES)?;
        }
        Ok(floor)
    }

    /// Times the floor from end `from` (0: the `a` of [`Floor::open`]) to
    /// the other, moving `bytes` octets. After a failed exchange every
    /// later one fails too.
    pub fn measure(&self, tb: &Testbed, from: usize, bytes: usize) -> io::Result<FloorSample> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(io::Error::other("an earlier floor measurement failed"));
        }
        let r = self.exchange(tb, from, bytes);
        if r.is_err() {
            self.broken.store(true, Ordering::Relaxed);
        }
        r
    }

    fn exchange(&self, tb: &Testbed, from: usize, bytes: usize) -> io::Result<FloorSample> {
        let (src, dst) = (&self.ends[from], &self.ends[1 - from]);
        let dst_udp = dst.udp.local_addr()?;
        std::thread::scope(|s| {
            let echo = s.spawn(|| enter(tb, dst.node, || echo(dst, bytes)));
            let sent = enter(tb, src.node, || send(src, dst_udp, bytes));
            let echoed = echo.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            echoed.and(sent)
        })
    }
}

/// The target's side: echoes the untimed datagram, then [`SAMPLES`] times
/// echoes one and reads `bytes` octets and acknowledges them with one.
fn echo(end: &End, bytes: usize) -> io::Result<()> {
    // Touched now, so no page fault lands in a timed move.
    let mut buf = vec![1u8; bytes];
    let mut dgram = [0u8; 2048];
    let mut pong = || -> io::Result<()> {
        let (n, peer) = end.udp.recv_from(&mut dgram)?;
        end.udp.send_to(&dgram[..n], peer)?;
        Ok(())
    };
    pong()?;
    for _ in 0..SAMPLES {
        pong()?;
        if bytes > 0 {
            (&end.tcp).read_exact(&mut buf)?;
            (&end.tcp).write_all(&[1])?;
        }
    }
    Ok(())
}

/// The source's side: an untimed ping-pong, then [`SAMPLES`] times a timed
/// one and a timed move.
fn send(end: &End, to: SocketAddr, bytes: usize) -> io::Result<FloorSample> {
    let ping = [0x5a_u8; MIH_COMMIT_BYTES];
    let mut back = [0u8; 2048];
    let round = |back: &mut [u8]| -> io::Result<Duration> {
        let t = Instant::now();
        end.udp.send_to(&ping, to)?;
        let (n, from) = end.udp.recv_from(back)?;
        let rtt = t.elapsed();
        if n != ping.len() || from != to {
            return Err(io::Error::other(format!(
                "unexpected datagram of {n} octets from {from}"
            )));
        }
        Ok(rtt)
    };
    round(&mut back)?;
    let payload = vec![0xa5_u8; bytes];
    let mut ack = [0u8; 1];
    let (mut rtts, mut moves) = (Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        std::thread::sleep(PAUSE);
        rtts.push(round(&mut back)?);
        std::thread::sleep(PAUSE);
        let t = Instant::now();
        if bytes > 0 {
            (&end.tcp).write_all(&payload)?;
            (&end.tcp).read_exact(&mut ack)?;
        }
        moves.push(if bytes > 0 {
            t.elapsed()
        } else {
            Duration::ZERO
        });
    }
    FloorSample::median(&rtts, &moves).ok_or_else(|| io::Error::other("no sample"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_round_trip_plus_the_move() {
        let s = FloorSample {
            rtt: Duration::from_micros(120),
            moved: Duration::from_micros(380),
        };
        assert!((s.rtt_ms() - 0.12).abs() < 1e-12);
        assert!((s.move_ms() - 0.38).abs() < 1e-12);
        assert!((s.floor_ms() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn each_part_is_the_median_of_its_samples() {
        let us =
            |v: &[u64]| -> Vec<Duration> { v.iter().map(|&u| Duration::from_micros(u)).collect() };
        let s =
            FloorSample::median(&us(&[200, 12, 15, 14, 90]), &us(&[80, 300, 95, 82, 81])).unwrap();
        assert_eq!(s.rtt, Duration::from_micros(15));
        assert_eq!(s.moved, Duration::from_micros(82));
        assert_eq!(FloorSample::median(&[], &us(&[1])), None);
    }

    /// Between two real namespaces (the demo's end-to-end test measures it
    /// too).
    #[test]
    fn measures_between_two_enbcs_both_ways() {
        edgemob_testbed::require_root();
        let tb = Testbed::new(edgemob_testbed::TestbedOptions::default()).unwrap();
        let f = Floor::open(&tb, Node::Enbc1, Node::Enbc2).unwrap();
        for from in [0, 1, 0] {
            let s = f.measure(&tb, from, 80_000).unwrap();
            assert!(s.rtt > Duration::ZERO && s.moved > Duration::ZERO, "{s:?}");
        }
        let rtt_only = f.measure(&tb, 1, 0).unwrap();
        assert_eq!(rtt_only.moved, Duration::ZERO);
        assert_eq!(rtt_only.floor_ms(), rtt_only.rtt_ms());
    }
}

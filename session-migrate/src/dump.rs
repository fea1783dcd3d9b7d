//! Source side: freeze a connected socket with TCP_REPAIR and read out its
//! state and queues ([`dump`]); then either roll back ([`FrozenSocket::thaw`])
//! or drop it without a FIN or RST ([`FrozenSocket::release`]).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::{DumpError, Queue};
use crate::image::{
    FourTuple, RepairWindow, SocketBuffers, TcpOptions, TcpState, TcpStreamImage, WindowScale,
};
use crate::sockopt::{self as so, RepairQueue};

/// A socket in repair mode with its send window closed: the kernel keeps
/// its state and sends no new data, FIN or RST on its behalf (at most a
/// retransmission or a window probe of what its image counts as sent, and
/// only while the 4-tuple is locked: a peer's segment would reopen the
/// window). Dropping it is the same as [`release`](Self::release).
#[derive(Debug)]
pub struct FrozenSocket {
    fd: OwnedFd,
    tuple: FourTuple,
    /// `SO_PEEK_OFF` the application had set (peeking in repair mode needs it off).
    peek_off: Option<i32>,
    /// The send window [`dump`] closed, put back on thaw.
    window: Option<so::TcpRepairWindow>,
}

impl FrozenSocket {
    /// The connection's addresses.
    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }

    /// Rollback: leaves repair mode so the connection carries on exactly
    /// where it was (nothing was consumed from its queues). The kernel sends
    /// a window probe, which makes the peer answer at once; unlock the
    /// 4-tuple *before* thawing, or that probe is dropped and the connection
    /// waits for a retransmission timeout.
    pub fn thaw(self) -> Result<OwnedFd, DumpError> {
        if let Some(w) = &self.window {
            so::set_repair_window(self.fd.as_fd(), w)
                .map_err(sys("setsockopt(TCP_REPAIR_WINDOW)"))?;
        }
        so::set_repair(self.fd.as_fd(), so::TCP_REPAIR_OFF)
            .map_err(sys("setsockopt(TCP_REPAIR, 0)"))?;
        if let Some(off) = self.peek_off {
            so::set_int(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_PEEK_OFF, off)
                .map_err(sys("setsockopt(SO_PEEK_OFF)"))?;
        }
        Ok(self.fd)
    }

    /// After a successful migration: closes this descriptor while the socket
    /// is still in repair mode, so the kernel discards it silently (no FIN,
    /// no RST). Other descriptors of the same socket (e.g. the service's)
    /// keep it alive until they are closed too; it stays silent.
    pub fn release(self) {
        drop(self.fd);
    }
}

impl AsFd for FrozenSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn sys(call: &'static str) -> impl FnOnce(io::Error) -> DumpError {
    move |source| DumpError::Sys { call, source }
}

/// Freezes the connected TCP socket behind `fd` and captures everything the
/// kernel needs to recreate it. The returned [`FrozenSocket`] owns a
/// duplicate of the descriptor; the caller should close its own.
///
/// Lock the connection's 4-tuple ([`NetLock::lock`](crate::NetLock::lock))
/// first: from here on the socket answers nothing, and without the lock the
/// peer's segments would reach a socket that is about to disappear.
///
/// On error the socket is left running as it was.
pub fn dump(fd: BorrowedFd<'_>) -> Result<(TcpStreamImage, FrozenSocket), DumpError> {
    let fd = so::dup(fd).map_err(sys("fcntl(F_DUPFD_CLOEXEC)"))?;
    if let Err(e) = so::set_repair(fd.as_fd(), so::TCP_REPAIR_ON) {
        if e.raw_os_error() == Some(libc::EPERM) {
            // Listening sockets refuse repair mode too; tell the two apart.
            return Err(match so::tcp_info_head(fd.as_fd()) {
                Ok(info) if TcpState::from_kernel(info.state) == TcpState::Listen => {
                    DumpError::NotEstablished {
                        state: TcpState::Listen,
                    }
                }
                _ => DumpError::NeedsCapNetAdmin,
            });
        }
        return Err(DumpError::Sys {
            call: "setsockopt(TCP_REPAIR, 1)",
            source: e,
        });
    }
    let mut frozen = FrozenSocket {
        fd,
        tuple: FourTuple {
            local: "0.0.0.0:0".parse().expect("literal"),
            peer: "0.0.0.0:0".parse().expect("literal"),
        },
        peek_off: None,
        window: None,
    };
    match read_state(&mut frozen) {
        Ok(image) => Ok((image, frozen)),
        Err(e) => {
            if let Some(w) = &frozen.window {
                let _ = so::set_repair_window(frozen.fd.as_fd(), w);
            }
            // Leave repair mode without a window probe: the peer sees nothing.
            let _ = so::set_repair(frozen.fd.as_fd(), so::TCP_REPAIR_OFF_NO_WP);
            if let Some(off) = frozen.peek_off {
                let _ = so::set_int(frozen.fd.as_fd(), libc::SOL_SOCKET, libc::SO_PEEK_OFF, off);
            }
            Err(e)
        }
    }
}

/// Largest amount of data one transmitted segment (a GSO/TSO super-packet)
/// can carry, BIG TCP included.
const MAX_SKB_BYTES: u64 = 512 << 10;

/// How far ahead of the clock to restore the socket's timestamp clock, in
/// timestamp ticks (an even number, so the µs flag in bit 0 is kept).
///
/// With pacing (BBR, or the fq qdisc) every segment, ACKs included, carries
/// its *departure time* as TSval, which runs ahead of the clock — by at
/// most the pacing delay of the last segment sent (a GSO/TSO super-packet).
/// `getsockopt(TCP_TIMESTAMP)` returns the clock, so a connection restored
/// from it sends TSvals older than ones the peer already saw, and the
/// peer's PAWS check drops them until the clock catches up: a
/// retransmission timeout, or no progress at all under repeated migrations.
/// The lead covers the largest super-packet at half the current rate (the
/// rate it was sent at may have been lower), plus a floor.
///
/// The lead is also what the restored socket's first round-trip sample
/// measures when octets restored as sent are acknowledged (see
/// `send_split` in `restore`), and BBR paces its first flight from that
/// sample: a lead of a second held streams for ~35 ms. Hence a floor of
/// tens of milliseconds, not a second; only a socket whose rate is unknown
/// gets the second. Jumping forward is harmless otherwise: RFC 7323 only
/// asks for monotonic TSvals.
fn departure_lead(pacing_rate: Option<u64>, usec: bool) -> u32 {
    const FLOOR_NS: u64 = 20_000_000;
    const UNKNOWN_RATE_NS: u64 = 1_000_000_000;
    const CAP_NS: u64 = 9_000_000_000;
    let ns = match pacing_rate {
        Some(rate) if rate > 0 && rate != u64::MAX => {
            FLOOR_NS + (2 * MAX_SKB_BYTES).saturating_mul(1_000_000_000) / rate
        }
        _ => UNKNOWN_RATE_NS,
    }
    .min(CAP_NS);
    let ticks = if usec {
        ns / 1_000
    } else {
        ns.div_ceil(1_000_000)
    };
    ((ticks + 1) & !1) as u32
}

fn read_state(frozen: &mut FrozenSocket) -> Result<TcpStreamImage, DumpError> {
    let fd = frozen.fd.as_fd();
    let info = so::tcp_info_head(fd).map_err(sys("getsockopt(TCP_INFO)"))?;
    let state = TcpState::from_kernel(info.state);
    if state != TcpState::Established {
        return Err(DumpError::NotEstablished { state });
    }
    // Repair mode alone does not stop transmission: pacing, TCP small
    // queues and timers still send queued data. Octets sent after the
    // queues are read would reach the peer while the image counts them as
    // never sent. A closed send window stops new data from here on (the
    // lock keeps the peer's segments from reopening it); the image keeps
    // the real window.
    let w = so::repair_window(fd).map_err(sys("getsockopt(TCP_REPAIR_WINDOW)"))?;
    so::set_repair_window(fd, &so::TcpRepairWindow { snd_wnd: 0, ..w })
        .map_err(sys("setsockopt(TCP_REPAIR_WINDOW)"))?;
    frozen.window = Some(w);
    let peek_off = so::get_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF)
        .map_err(sys("getsockopt(SO_PEEK_OFF)"))?;
    if peek_off >= 0 {
        so::set_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, -1)
            .map_err(sys("setsockopt(SO_PEEK_OFF)"))?;
        frozen.peek_off = Some(peek_off);
    }
    let outq_len = so::outq_len(fd).map_err(sys("ioctl(SIOCOUTQ)"))?;
    let unsent_len = so::unsent_len(fd).map_err(sys("ioctl(SIOCOUTQNSD)"))?;
    let inq_len = so::inq_len(fd).map_err(sys("ioctl(SIOCINQ)"))?;
    let mss_clamp =
        so::get_int(fd, libc::SOL_TCP, libc::TCP_MAXSEG).map_err(sys("getsockopt(TCP_MAXSEG)"))?;
    let timestamp = if info.options & so::TCPI_OPT_TIMESTAMPS != 0 {
        let ts = so::get_int(fd, libc::SOL_TCP, libc::TCP_TIMESTAMP)
            .map_err(sys("getsockopt(TCP_TIMESTAMP)"))? as u32;
        let pacing = so::pacing_rate(fd).map_err(sys("getsockopt(TCP_INFO)"))?;
        Some(ts.wrapping_add(departure_lead(pacing, ts & 1 == 1)))
    } else {
        None
    };
    let nodelay = so::get_int(fd, libc::SOL_TCP, libc::TCP_NODELAY)
        .map_err(sys("getsockopt(TCP_NODELAY)"))?;
    let cork =
        so::get_int(fd, libc::SOL_TCP, libc::TCP_CORK).map_err(sys("getsockopt(TCP_CORK)"))?;
    let sndbuf =
        so::get_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF).map_err(sys("getsockopt(SO_SNDBUF)"))?;
    let rcvbuf =
        so::get_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF).map_err(sys("getsockopt(SO_RCVBUF)"))?;
    let lock = so::buf_lock(fd).map_err(sys("getsockopt(SO_BUF_LOCK)"))?;
    let flags = so::file_flags(fd).map_err(sys("fcntl(F_GETFL)"))?;

    let (inq_seq, recv_queue) = read_queue(fd, Queue::Recv, inq_len as usize)?;
    let (outq_seq, send_queue) = read_queue(fd, Queue::Send, outq_len as usize)?;
    so::set_repair_queue(fd, RepairQueue::None).map_err(sys("setsockopt(TCP_REPAIR_QUEUE)"))?;

    let tuple = FourTuple {
        local: so::local_addr(fd).map_err(sys("getsockname"))?,
        peer: so::peer_addr(fd).map_err(sys("getpeername"))?,
    };
    frozen.tuple = tuple;
    let ino = so::inode(fd).map_err(sys("fstat"))?;
    Ok(TcpStreamImage {
        tuple,
        state,
        ino: ino as u32,
        inq_seq,
        outq_seq,
        recv_queue,
        send_queue,
        unsent_len: unsent_len.min(outq_len),
        mss_clamp: mss_clamp as u32,
        options: TcpOptions {
            sack_permitted: info.options & so::TCPI_OPT_SACK != 0,
            window_scale: (info.options & so::TCPI_OPT_WSCALE != 0).then_some(WindowScale {
                snd: info.snd_wscale,
                rcv: info.rcv_wscale,
            }),
            timestamp,
        },
        window: RepairWindow {
            snd_wl1: w.snd_wl1,
            snd_wnd: w.snd_wnd,
            max_window: w.max_window,
            rcv_wnd: w.rcv_wnd,
            rcv_wup: w.rcv_wup,
        },
        nodelay: nodelay != 0,
        cork: cork != 0,
        nonblocking: flags & libc::O_NONBLOCK != 0,
        buffers: SocketBuffers {
            sndbuf: sndbuf as u32,
            rcvbuf: rcvbuf as u32,
            lock: lock as u32,
        },
    })
}

/// Selects a repair queue, reads its end sequence number and peeks exactly
/// `len` bytes of it (one more is asked for, to catch a size mismatch).
fn read_queue(fd: BorrowedFd<'_>, queue: Queue, len: usize) -> Result<(u32, Vec<u8>), DumpError> {
    let q = match queue {
        Queue::Recv => RepairQueue::Recv,
        Queue::Send => RepairQueue::Send,
    };
    so::set_repair_queue(fd, q).map_err(sys("setsockopt(TCP_REPAIR_QUEUE)"))?;
    let seq = so::queue_seq(fd).map_err(sys("getsockopt(TCP_QUEUE_SEQ)"))?;
    let mut buf = vec![0u8; len + 1];
    let got = if len == 0 {
        0
    } else {
        match so::peek(fd, &mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(source) => {
                return Err(DumpError::Sys {
                    call: "recv(MSG_PEEK)",
                    source,
                });
            }
        }
    };
    if got != len {
        return Err(DumpError::QueueSizeMismatch {
            queue,
            expected: len,
            got,
        });
    }
    buf.truncate(len);
    Ok((seq, buf))
}

/// Dumps many sockets. Lock all their 4-tuples with one
/// [`NetLock::lock`](crate::NetLock::lock) call first; each dump costs a few
/// dozen system calls and runs independently of the others.
pub fn dump_all(fds: &[BorrowedFd<'_>]) -> Vec<Result<(TcpStreamImage, FrozenSocket), DumpError>> {
    fds.iter().map(|fd| dump(*fd)).collect()
}

#[cfg(test)]
mod lead_tests {
    use super::departure_lead;

    #[test]
    fn the_lead_covers_two_super_packets_and_is_even_and_bounded() {
        // no known rate: a second
        assert_eq!(departure_lead(None, false), 1000);
        assert_eq!(departure_lead(Some(u64::MAX), false), 1000);
        assert_eq!(departure_lead(None, true), 1_000_000);
        // 2 x 512 KiB at 1 MB/s: 20 ms + 1049 ms
        assert_eq!(departure_lead(Some(1_000_000), false), 1070);
        // at 1 GB/s: 20 ms + 1.049 ms
        assert_eq!(departure_lead(Some(1_000_000_000), false), 22);
        assert_eq!(departure_lead(Some(1_000_000_000), true), 21_048);
        // never more than 9 s
        assert_eq!(departure_lead(Some(1), false), 9000);
        for r in [1, 7, 1000, 123_456_789] {
            assert_eq!(departure_lead(Some(r), false) % 2, 0);
            assert_eq!(departure_lead(Some(r), true) % 2, 0);
        }
    }
}

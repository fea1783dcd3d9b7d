//! Target side: recreate a connection from a [`TcpStreamImage`] in the
//! current network namespace. [`restore_frozen`] rebuilds it in repair mode
//! (nothing sent yet); [`RestoredSocket::activate`] leaves repair mode and
//! queues the never-sent tail. [`restore`] does both.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::error::{Queue, RestoreError};
use crate::image::{FourTuple, TcpStreamImage};
use crate::sockopt::{self as so, RepairQueue, TcpRepairOpt, TcpRepairWindow};

/// Bound on waiting for send-buffer space for the unsent tail once live.
const UNSENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Smallest chunk tried when the kernel refuses a large repair-mode write
/// (it allocates one linear buffer per call in repair mode).
const MIN_CHUNK: usize = 1024;

/// A connection rebuilt in repair mode: its state and queues are in place
/// but it has sent nothing. [`activate`](Self::activate) makes it live.
/// Dropping it closes it silently.
#[derive(Debug)]
pub struct RestoredSocket {
    fd: OwnedFd,
    tuple: FourTuple,
    unsent: Vec<u8>,
}

impl RestoredSocket {
    /// The connection's addresses.
    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }

    /// Leaves repair mode and queues the bytes the source never sent. The
    /// kernel sends a window probe, which makes the peer acknowledge at once
    /// and so keeps the client's stall short; unlock the 4-tuple *before*
    /// calling this, or the probe is dropped.
    pub fn activate(self) -> Result<OwnedFd, RestoreError> {
        let fd = self.fd.as_fd();
        so::set_repair(fd, so::TCP_REPAIR_OFF).map_err(sys("setsockopt(TCP_REPAIR, 0)"))?;
        // Leaving repair mode clears the socket's reuse flag. An accepted
        // connection had its listener's SO_REUSEADDR (std, tokio and most
        // servers set it); without it this connection's TIME-WAIT would keep
        // the service from listening on its port again, as CRIU also
        // restores it.
        so::set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)
            .map_err(sys("setsockopt(SO_REUSEADDR)"))?;
        send_unsent(fd, &self.unsent)?;
        Ok(self.fd)
    }
}

impl AsFd for RestoredSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn sys(call: &'static str) -> impl FnOnce(io::Error) -> RestoreError {
    move |source| RestoreError::Sys { call, source }
}

/// Restores a live connection: [`restore_frozen`] then
/// [`RestoredSocket::activate`]. Use the two steps when a network lock is
/// held, to unlock in between.
pub fn restore(img: &TcpStreamImage) -> Result<OwnedFd, RestoreError> {
    restore_frozen(img)?.activate()
}

/// Rebuilds the connection in repair mode in the current network namespace.
/// The image is validated before any socket is created. The local address
/// need not be configured yet (IP_FREEBIND is used if binding fails for that).
pub fn restore_frozen(img: &TcpStreamImage) -> Result<RestoredSocket, RestoreError> {
    img.validate()?;
    let fd = so::tcp_socket(img.tuple.local.is_ipv4()).map_err(sys("socket"))?;
    let s = fd.as_fd();
    if let Err(e) = so::set_repair(s, so::TCP_REPAIR_ON) {
        return Err(if e.raw_os_error() == Some(libc::EPERM) {
            RestoreError::NeedsCapNetAdmin
        } else {
            RestoreError::Sys {
                call: "setsockopt(TCP_REPAIR, 1)",
                source: e,
            }
        });
    }
    set_socket_options(s, img)?;
    bind(s, img)?;

    let inq_len = img.recv_queue.len() as u32;
    let outq_len = img.send_queue.len() as u32;
    set_queue_seq(s, RepairQueue::Recv, img.inq_seq.wrapping_sub(inq_len))?;
    set_queue_seq(s, RepairQueue::Send, img.outq_seq.wrapping_sub(outq_len))?;
    // The segment size is fixed when connect() sizes the socket: the clamp
    // given later through TCP_REPAIR_OPTIONS does not resize it, and the
    // connection would go on in 524-octet segments (the kernel's default
    // clamp), which the peer acknowledges late (delayed ACK) — a ~35 ms
    // stall right after the move. TCP_MAXSEG before connect sets the clamp
    // connect() uses (at most 32767: loopback's larger clamps are cut, the
    // exact clamp follows with the repair options).
    if img.mss_clamp >= so::TCP_MIN_MSS {
        let mss = img.mss_clamp.min(so::TCP_MAX_MSS);
        so::set_int(s, libc::SOL_TCP, libc::TCP_MAXSEG, mss as i32)
            .map_err(sys("setsockopt(TCP_MAXSEG)"))?;
    }
    // In repair mode connect sends no SYN: the socket becomes ESTABLISHED.
    connect(s, img)?;

    // Options must be set before any byte is queued (the kernel refuses later).
    let mut opts = Vec::with_capacity(4);
    if img.options.sack_permitted {
        opts.push(TcpRepairOpt {
            code: so::TCPOPT_SACK_PERM,
            val: 0,
        });
    }
    if let Some(ws) = img.options.window_scale {
        opts.push(TcpRepairOpt {
            code: so::TCPOPT_WINDOW,
            val: u32::from(ws.snd) | (u32::from(ws.rcv) << 16),
        });
    }
    if img.options.timestamp.is_some() {
        opts.push(TcpRepairOpt {
            code: so::TCPOPT_TIMESTAMP,
            val: 0,
        });
    }
    opts.push(TcpRepairOpt {
        code: so::TCPOPT_MSS,
        val: img.mss_clamp,
    });
    so::set_repair_options(s, &opts).map_err(sys("setsockopt(TCP_REPAIR_OPTIONS)"))?;
    if let Some(ts) = img.options.timestamp {
        so::set_int(s, libc::SOL_TCP, libc::TCP_TIMESTAMP, ts as i32)
            .map_err(sys("setsockopt(TCP_TIMESTAMP)"))?;
    }

    fill_queue(s, Queue::Recv, &img.recv_queue)?;
    let (in_flight, tail) = send_split(img);
    fill_queue(s, Queue::Send, in_flight)?;
    let w = img.window;
    so::set_repair_window(
        s,
        &TcpRepairWindow {
            snd_wl1: w.snd_wl1,
            snd_wnd: w.snd_wnd,
            max_window: w.max_window,
            rcv_wnd: w.rcv_wnd,
            rcv_wup: w.rcv_wup,
        },
    )
    .map_err(sys("setsockopt(TCP_REPAIR_WINDOW)"))?;
    so::set_repair_queue(s, RepairQueue::None).map_err(sys("setsockopt(TCP_REPAIR_QUEUE)"))?;
    if img.nonblocking {
        so::set_nonblocking(s).map_err(sys("fcntl(F_SETFL, O_NONBLOCK)"))?;
    }
    Ok(RestoredSocket {
        fd,
        tuple: img.tuple,
        unsent: tail.to_vec(),
    })
}

/// How long [`connect`] waits for a just-closed socket of the same 4-tuple
/// to leave the connection table.
const SAME_TUPLE_WAIT: Duration = Duration::from_millis(50);

/// Connects in repair mode (no SYN). Restored in the namespace it was
/// dumped in, the connection's previous socket, closed just before, can
/// still hold the 4-tuple for a moment (up to ~5 ms seen on a loaded
/// machine): the kernel answers EADDRNOTAVAIL until it is gone, so that
/// is retried, bounded.
fn connect(s: BorrowedFd<'_>, img: &TcpStreamImage) -> Result<(), RestoreError> {
    let deadline = Instant::now() + SAME_TUPLE_WAIT;
    loop {
        match so::connect(s, &img.tuple.peer) {
            Ok(()) => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(source) => {
                return Err(RestoreError::Sys {
                    call: "connect",
                    source,
                });
            }
        }
    }
}

/// Segments a fresh connection may send at once (RFC 6928's initial
/// window, the kernel's TCP_INIT_CWND).
const FIRST_FLIGHT_SEGMENTS: usize = 10;

/// Splits the send queue into what the restored socket holds as sent and
/// the tail it sends once live, right after the window probe.
///
/// Octets the source sent but the peer had not acknowledged are restored
/// as sent only when they must be. Restored-as-sent segments are marked
/// repaired, so the kernel takes no round-trip sample from them (Karn) but
/// from the timestamp the peer echoes: the source's, behind this socket's
/// clock by the departure lead (see `dump`), tens of milliseconds. BBR sets
/// its first pacing rate from that sample and paces the first flight's
/// last segment a lead/29 later. Sent again instead, every sample is a
/// real one and the peer drops what it already has.
///
/// That is possible only within the first flight: the peer acknowledges
/// up to where the source had sent, and the restored socket ignores
/// acknowledgements of octets it has not sent yet. With nothing left
/// unsent at the source the peer is at most the in-flight octets ahead;
/// beyond one flight (or with octets unsent) they are restored as sent.
fn send_split(img: &TcpStreamImage) -> (&[u8], &[u8]) {
    // A segment's payload: the clamp less the largest options (40 octets).
    let payload = (img.mss_clamp as usize).saturating_sub(40).max(536);
    if img.unsent().is_empty() && img.unacked().len() <= FIRST_FLIGHT_SEGMENTS * payload {
        (&[], &img.send_queue)
    } else {
        (img.unacked(), img.unsent())
    }
}

/// Buffers first (the queues must fit), then NODELAY/CORK.
fn set_socket_options(s: BorrowedFd<'_>, img: &TcpStreamImage) -> Result<(), RestoreError> {
    let b = img.buffers;
    // The kernel reports doubled sizes and doubles what it is given. The
    // queues are charged with per-buffer overhead that differs from the
    // source's, so leave room for twice their bytes.
    let sndbuf = b.sndbuf.max(fit(img.send_queue.len()));
    let rcvbuf = b.rcvbuf.max(fit(img.recv_queue.len()));
    so::set_int(
        s,
        libc::SOL_SOCKET,
        libc::SO_SNDBUFFORCE,
        (sndbuf / 2) as i32,
    )
    .map_err(sys("setsockopt(SO_SNDBUFFORCE)"))?;
    so::set_int(
        s,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        (rcvbuf / 2) as i32,
    )
    .map_err(sys("setsockopt(SO_RCVBUFFORCE)"))?;
    // FORCE pinned both sizes; give autotuning back unless the source had pinned them.
    so::set_buf_lock(s, b.lock as i32).map_err(sys("setsockopt(SO_BUF_LOCK)"))?;
    if img.nodelay {
        so::set_int(s, libc::SOL_TCP, libc::TCP_NODELAY, 1)
            .map_err(sys("setsockopt(TCP_NODELAY)"))?;
    }
    if img.cork {
        so::set_int(s, libc::SOL_TCP, libc::TCP_CORK, 1).map_err(sys("setsockopt(TCP_CORK)"))?;
    }
    Ok(())
}

/// A buffer size (as SO_*BUF reports it) that holds `queued` bytes with overhead.
fn fit(queued: usize) -> u32 {
    u32::try_from(queued.saturating_mul(4).saturating_add(128 << 10)).unwrap_or(i32::MAX as u32)
}

fn bind(s: BorrowedFd<'_>, img: &TcpStreamImage) -> Result<(), RestoreError> {
    match so::bind(s, &img.tuple.local) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
            let (level, opt) = if img.tuple.local.is_ipv4() {
                (libc::SOL_IP, libc::IP_FREEBIND)
            } else {
                (libc::SOL_IPV6, libc::IPV6_FREEBIND)
            };
            so::set_int(s, level, opt, 1).map_err(sys("setsockopt(IP_FREEBIND)"))?;
            so::bind(s, &img.tuple.local).map_err(sys("bind"))
        }
        Err(source) => Err(RestoreError::Sys {
            call: "bind",
            source,
        }),
    }
}

fn set_queue_seq(s: BorrowedFd<'_>, q: RepairQueue, seq: u32) -> Result<(), RestoreError> {
    so::set_repair_queue(s, q).map_err(sys("setsockopt(TCP_REPAIR_QUEUE)"))?;
    so::set_queue_seq(s, seq).map_err(sys("setsockopt(TCP_QUEUE_SEQ)"))
}

/// Writes `data` into a repair queue, halving the chunk when the kernel
/// cannot allocate one buffer that large.
fn fill_queue(s: BorrowedFd<'_>, queue: Queue, data: &[u8]) -> Result<(), RestoreError> {
    if data.is_empty() {
        return Ok(());
    }
    let q = match queue {
        Queue::Recv => RepairQueue::Recv,
        Queue::Send => RepairQueue::Send,
    };
    so::set_repair_queue(s, q).map_err(sys("setsockopt(TCP_REPAIR_QUEUE)"))?;
    let mut off = 0;
    let mut chunk = data.len();
    while off < data.len() {
        let end = (off + chunk).min(data.len());
        match so::send(s, &data[off..end]) {
            Ok(0) => break,
            Ok(n) => off += n,
            Err(e)
                if chunk > MIN_CHUNK
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::ENOMEM | libc::ENOBUFS | libc::EAGAIN)
                    ) =>
            {
                chunk /= 2;
            }
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
            Err(source) => {
                return Err(RestoreError::Sys {
                    call: "send(repair queue)",
                    source,
                });
            }
        }
    }
    if off < data.len() {
        return Err(RestoreError::QueueNotAccepted {
            queue,
            len: data.len(),
            accepted: off,
        });
    }
    Ok(())
}

/// Queues the never-sent tail on the live socket, waiting (bounded) for space.
fn send_unsent(s: BorrowedFd<'_>, data: &[u8]) -> Result<(), RestoreError> {
    let deadline = Instant::now() + UNSENT_TIMEOUT;
    let mut off = 0;
    while off < data.len() {
        match so::send(s, &data[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !so::wait_writable(s, left).map_err(sys("poll"))? {
                    return Err(RestoreError::QueueNotAccepted {
                        queue: Queue::Send,
                        len: data.len(),
                        accepted: off,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(RestoreError::Sys {
                    call: "send(unsent tail)",
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Restores many connections in repair mode; see [`restore_frozen`]. Lock
/// all their 4-tuples with one [`NetLock::lock`](crate::NetLock::lock) before,
/// unlock them with one call after, then [`activate`](RestoredSocket::activate) each.
pub fn restore_all(images: &[TcpStreamImage]) -> Vec<Result<RestoredSocket, RestoreError>> {
    images.iter().map(restore_frozen).collect()
}

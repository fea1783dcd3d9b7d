//! The image of one TCP connection: everything the kernel needs to recreate
//! it, as plain data ([`TcpStreamImage`]), and its consistency rules.

use std::fmt;
use std::net::SocketAddr;

use crate::error::{ImageError, Queue};

/// Largest queue an image may carry (each direction). Kernel queues are far
/// smaller in practice; the limit keeps a corrupt length from allocating gigabytes.
pub const MAX_QUEUE_LEN: usize = 64 << 20;

/// Largest window scale the kernel accepts (RFC 7323).
pub const MAX_WINDOW_SCALE: u8 = 14;

/// The connection's addresses, as seen from the socket being migrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    /// The socket's own address (the service address on an eNBC).
    pub local: SocketAddr,
    /// The peer (the UE).
    pub peer: SocketAddr,
}

impl FourTuple {
    /// Whether both ends are IPv4 on the wire (IPv4, or IPv4-mapped IPv6).
    pub fn is_ipv4_on_wire(&self) -> bool {
        fn v4(a: &SocketAddr) -> bool {
            match a {
                SocketAddr::V4(_) => true,
                SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_some(),
            }
        }
        v4(&self.local) && v4(&self.peer)
    }
}

impl fmt::Display for FourTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <-> {}", self.local, self.peer)
    }
}

/// Kernel TCP states (`include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// Data flows both ways.
    Established,
    /// Active open, SYN sent.
    SynSent,
    /// Passive open, SYN received.
    SynRecv,
    /// FIN sent, waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Our FIN acknowledged, waiting for the peer's FIN.
    FinWait2,
    /// Both FINs exchanged.
    TimeWait,
    /// Closed.
    Close,
    /// The peer sent FIN.
    CloseWait,
    /// FIN sent after the peer's FIN.
    LastAck,
    /// A listening socket.
    Listen,
    /// Simultaneous close.
    Closing,
    /// A state number this crate does not name.
    Other(u8),
}

impl TcpState {
    /// From the kernel's state number (`tcpi_state`).
    pub fn from_kernel(v: u8) -> Self {
        match v {
            1 => Self::Established,
            2 => Self::SynSent,
            3 => Self::SynRecv,
            4 => Self::FinWait1,
            5 => Self::FinWait2,
            6 => Self::TimeWait,
            7 => Self::Close,
            8 => Self::CloseWait,
            9 => Self::LastAck,
            10 => Self::Listen,
            11 => Self::Closing,
            other => Self::Other(other),
        }
    }

    /// The kernel's state number.
    pub fn to_kernel(self) -> u8 {
        match self {
            Self::Established => 1,
            Self::SynSent => 2,
            Self::SynRecv => 3,
            Self::FinWait1 => 4,
            Self::FinWait2 => 5,
            Self::TimeWait => 6,
            Self::Close => 7,
            Self::CloseWait => 8,
            Self::LastAck => 9,
            Self::Listen => 10,
            Self::Closing => 11,
            Self::Other(v) => v,
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Established => f.write_str("ESTABLISHED"),
            Self::SynSent => f.write_str("SYN_SENT"),
            Self::SynRecv => f.write_str("SYN_RECV"),
            Self::FinWait1 => f.write_str("FIN_WAIT1"),
            Self::FinWait2 => f.write_str("FIN_WAIT2"),
            Self::TimeWait => f.write_str("TIME_WAIT"),
            Self::Close => f.write_str("CLOSE"),
            Self::CloseWait => f.write_str("CLOSE_WAIT"),
            Self::LastAck => f.write_str("LAST_ACK"),
            Self::Listen => f.write_str("LISTEN"),
            Self::Closing => f.write_str("CLOSING"),
            Self::Other(v) => write!(f, "state {v}"),
        }
    }
}

/// Window scale shifts negotiated in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowScale {
    /// Shift applied to windows the peer advertises.
    pub snd: u8,
    /// Shift applied to windows we advertise.
    pub rcv: u8,
}

/// TCP options negotiated in the handshake; they cannot be renegotiated, so
/// the restored socket must be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOptions {
    /// SACK permitted (the SACK scoreboard itself is not carried).
    pub sack_permitted: bool,
    /// Window scaling, if negotiated.
    pub window_scale: Option<WindowScale>,
    /// The socket's timestamp clock (`TCP_TIMESTAMP`), if timestamps were
    /// negotiated. Opaque to user space; bit 0 set means the microsecond clock
    /// (kernels since 6.7). Without it the peer's PAWS check drops our segments.
    pub timestamp: Option<u32>,
}

impl TcpOptions {
    /// Whether the timestamp clock ticks in microseconds.
    pub fn timestamp_usec(&self) -> bool {
        self.timestamp.is_some_and(|t| t & 1 == 1)
    }
}

/// The five window fields of `struct tcp_repair_window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RepairWindow {
    /// Sequence number of the segment that last updated the send window.
    pub snd_wl1: u32,
    /// Send window (the peer's receive window, unscaled bytes).
    pub snd_wnd: u32,
    /// Largest window the peer ever advertised.
    pub max_window: u32,
    /// Receive window we advertised.
    pub rcv_wnd: u32,
    /// `rcv_nxt` when the window was last advertised.
    pub rcv_wup: u32,
}

/// Socket buffer sizes and whether the application pinned them
/// (`SO_BUF_LOCK` bits); restored so the queues fit and autotuning continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketBuffers {
    /// `SO_SNDBUF` as the kernel reports it (already doubled).
    pub sndbuf: u32,
    /// `SO_RCVBUF` as the kernel reports it.
    pub rcvbuf: u32,
    /// `SO_BUF_LOCK`: 1 send buffer pinned, 2 receive buffer pinned.
    pub lock: u32,
}

/// Everything needed to recreate one ESTABLISHED TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpStreamImage {
    /// Addresses.
    pub tuple: FourTuple,
    /// Always [`TcpState::Established`] in this version.
    pub state: TcpState,
    /// Inode of the dumped socket; names the CRIU `tcp-stream-<ino>.img` file.
    pub ino: u32,
    /// `rcv_nxt`: the sequence number after the last byte of `recv_queue`.
    pub inq_seq: u32,
    /// `write_seq`: the sequence number after the last byte of `send_queue`.
    pub outq_seq: u32,
    /// Received bytes the application had not read yet.
    pub recv_queue: Vec<u8>,
    /// Written bytes not yet acknowledged: first the sent ones, then the
    /// `unsent_len` bytes never put on the wire.
    pub send_queue: Vec<u8>,
    /// Length of the unsent tail of `send_queue`.
    pub unsent_len: u32,
    /// The MSS clamp (`TCP_MAXSEG` in repair mode).
    pub mss_clamp: u32,
    /// Negotiated options.
    pub options: TcpOptions,
    /// Window state.
    pub window: RepairWindow,
    /// `TCP_NODELAY`.
    pub nodelay: bool,
    /// `TCP_CORK`.
    pub cork: bool,
    /// `O_NONBLOCK` on the descriptor.
    pub nonblocking: bool,
    /// Socket buffers.
    pub buffers: SocketBuffers,
}

impl TcpStreamImage {
    /// Bytes sent but not acknowledged.
    pub fn unacked(&self) -> &[u8] {
        &self.send_queue[..self
            .send_queue
            .len()
            .saturating_sub(self.unsent_len as usize)]
    }

    /// Bytes written by the application but never sent.
    pub fn unsent(&self) -> &[u8] {
        &self.send_queue[self
            .send_queue
            .len()
            .saturating_sub(self.unsent_len as usize)..]
    }

    /// Checks every rule the kernel (or a later field) would otherwise trip
    /// over half-way through a restore.
    pub fn validate(&self) -> Result<(), ImageError> {
        if self.tuple.local.is_ipv4() != self.tuple.peer.is_ipv4() {
            let family = if self.tuple.local.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            return Err(ImageError::AddressFamilyMismatch {
                family: family as u32,
                detail: "local and peer addresses differ in family",
            });
        }
        for (field, port) in [
            ("src_port", self.tuple.local.port()),
            ("dst_port", self.tuple.peer.port()),
        ] {
            if port == 0 {
                return Err(ImageError::InvalidField {
                    field,
                    value: 0,
                    reason: "a connected socket has a non-zero port",
                });
            }
        }
        if self.state != TcpState::Established {
            return Err(ImageError::UnsupportedState(self.state));
        }
        for (queue, len) in [
            (Queue::Recv, self.recv_queue.len()),
            (Queue::Send, self.send_queue.len()),
        ] {
            if len > MAX_QUEUE_LEN {
                return Err(ImageError::QueueTooLarge {
                    queue,
                    len: len as u64,
                    max: MAX_QUEUE_LEN as u64,
                });
            }
        }
        if self.unsent_len as usize > self.send_queue.len() {
            return Err(ImageError::InvalidField {
                field: "unsq_len",
                value: self.unsent_len.into(),
                reason: "exceeds the send queue length",
            });
        }
        if let Some(ws) = self.options.window_scale {
            for (field, v) in [("snd_wscale", ws.snd), ("rcv_wscale", ws.rcv)] {
                if v > MAX_WINDOW_SCALE {
                    return Err(ImageError::InvalidField {
                        field,
                        value: v.into(),
                        reason: "window scale above 14",
                    });
                }
            }
        }
        if !(88..=65535).contains(&self.mss_clamp) {
            return Err(ImageError::InvalidField {
                field: "mss_clamp",
                value: self.mss_clamp.into(),
                reason: "outside 88..=65535",
            });
        }
        let w = &self.window;
        if w.max_window < w.snd_wnd {
            return Err(ImageError::InvalidField {
                field: "max_window",
                value: w.max_window.into(),
                reason: "smaller than snd_wnd",
            });
        }
        // The kernel checks these against rcv_nxt, which the restore sets to inq_seq.
        if after(w.rcv_wup, self.inq_seq) {
            return Err(ImageError::InvalidField {
                field: "rcv_wup",
                value: w.rcv_wup.into(),
                reason: "after inq_seq (rcv_nxt)",
            });
        }
        if after(w.snd_wl1, self.inq_seq.wrapping_add(w.rcv_wnd)) {
            return Err(ImageError::InvalidField {
                field: "snd_wl1",
                value: w.snd_wl1.into(),
                reason: "after inq_seq + rcv_wnd",
            });
        }
        Ok(())
    }
}

/// Sequence-space comparison (RFC 793 modular arithmetic): `a` after `b`.
fn after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> TcpStreamImage {
        TcpStreamImage {
            tuple: FourTuple {
                local: "10.77.0.1:80".parse().unwrap(),
                peer: "10.77.1.2:40000".parse().unwrap(),
            },
            state: TcpState::Established,
            ino: 0x1234,
            inq_seq: 1000,
            outq_seq: 5000,
            recv_queue: b"hello".to_vec(),
            send_queue: b"unacked+unsent".to_vec(),
            unsent_len: 6,
            mss_clamp: 1460,
            options: TcpOptions {
                sack_permitted: true,
                window_scale: Some(WindowScale { snd: 7, rcv: 7 }),
                timestamp: Some(12345),
            },
            window: RepairWindow {
                snd_wl1: 990,
                snd_wnd: 1000,
                max_window: 2000,
                rcv_wnd: 3000,
                rcv_wup: 995,
            },
            nodelay: true,
            cork: false,
            nonblocking: false,
            buffers: SocketBuffers {
                sndbuf: 87040,
                rcvbuf: 131072,
                lock: 0,
            },
        }
    }

    #[test]
    fn sample_is_valid_and_splits_the_send_queue() {
        let img = sample();
        img.validate().unwrap();
        assert_eq!(img.unacked(), b"unacked+");
        assert_eq!(img.unsent(), b"unsent");
        assert!(img.options.timestamp_usec());
    }

    #[test]
    fn rejects_what_the_kernel_would() {
        let mut img = sample();
        img.unsent_len = 100;
        assert!(matches!(
            img.validate(),
            Err(ImageError::InvalidField {
                field: "unsq_len",
                ..
            })
        ));
        let mut img = sample();
        img.state = TcpState::Listen;
        assert_eq!(
            img.validate(),
            Err(ImageError::UnsupportedState(TcpState::Listen))
        );
        let mut img = sample();
        img.window.rcv_wup = 2000;
        assert!(matches!(
            img.validate(),
            Err(ImageError::InvalidField {
                field: "rcv_wup",
                ..
            })
        ));
        let mut img = sample();
        img.tuple.peer = "[fd00::1]:5".parse().unwrap();
        assert!(matches!(
            img.validate(),
            Err(ImageError::AddressFamilyMismatch { .. })
        ));
    }

    #[test]
    fn sequence_comparison_wraps() {
        assert!(after(5, u32::MAX - 5));
        assert!(!after(u32::MAX - 5, 5));
        assert!(!after(7, 7));
    }
}

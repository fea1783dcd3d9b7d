//! Just enough nfnetlink to talk to nf_tables without the `nft` binary:
//! a NETLINK_NETFILTER socket, a batch builder (BATCH_BEGIN, messages,
//! BATCH_END; the kernel commits the batch atomically) and acknowledgement
//! reading. Attribute layouts follow `include/uapi/linux/netfilter/nf_tables.h`
//! (integers in network byte order, nested attributes flagged NLA_F_NESTED).

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::error::LockError;

pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NLMSG_ERROR: u16 = 2;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const SOL_NETLINK: i32 = 270;
const NETLINK_CAP_ACK: i32 = 10;
const NETLINK_EXT_ACK: i32 = 11;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLM_F_ACK_TLVS: u16 = 0x200;
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// One nf_tables request of a batch, kept to name it in errors.
#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u32,
    name: &'static str,
}

/// A batch under construction.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    pending: Vec<Pending>,
    nest: Vec<usize>,
    msg_start: usize,
}

impl Batch {
    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Starts an nf_tables message `msg` for `family` (NFPROTO_*).
    pub fn begin_msg(&mut self, seq: u32, msg: u16, name: &'static str, family: u8, flags: u16) {
        self.msg_start = self.buf.len();
        header(
            &mut self.buf,
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            NLM_F_REQUEST | flags,
            seq,
            family,
            0,
        );
        if flags & NLM_F_ACK != 0 {
            self.pending.push(Pending { seq, name });
        }
    }

    /// Finishes the message started last (patches its length).
    pub fn end_msg(&mut self) {
        let len = (self.buf.len() - self.msg_start) as u32;
        self.buf[self.msg_start..self.msg_start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    pub fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(self.buf.len() + (4 - len % 4) % 4, 0);
    }

    /// A NUL-terminated string attribute.
    pub fn attr_str(&mut self, kind: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(kind, &v);
    }

    /// A big-endian u32 attribute (nf_tables' NLA_U32 is network order).
    pub fn attr_be32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_be_bytes());
    }

    pub fn nest_start(&mut self, kind: u16) {
        self.nest.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    pub fn nest_end(&mut self) {
        let start = self.nest.pop().expect("nest_end matches nest_start");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

/// Writes an nlmsghdr + nfgenmsg (length patched by the caller when it is not 20).
fn header(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) {
    buf.extend_from_slice(&20u32.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[family, 0]);
    buf.extend_from_slice(&res_id.to_be_bytes());
}

/// A NETLINK_NETFILTER socket in the namespace it was opened in.
#[derive(Debug)]
pub struct NfSocket {
    fd: OwnedFd,
    seq: u32,
    rx: Vec<u8>,
}

fn sys(call: &'static str) -> impl FnOnce(io::Error) -> LockError {
    move |source| LockError::Sys { call, source }
}

impl NfSocket {
    pub fn open() -> Result<Self, LockError> {
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(LockError::Sys {
                call: "socket(NETLINK_NETFILTER)",
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Error replies carry only the header (CAP_ACK) plus the kernel's text (EXT_ACK).
        for opt in [NETLINK_CAP_ACK, NETLINK_EXT_ACK] {
            setsockopt(&fd, SOL_NETLINK, opt, &1i32).map_err(sys("setsockopt(SOL_NETLINK)"))?;
        }
        let tv = libc::timeval {
            tv_sec: REPLY_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
            .map_err(sys("setsockopt(SO_RCVTIMEO)"))?;
        // SAFETY: sockaddr_nl is plain data; all-zero is valid (the kernel).
        let mut kernel: libc::sockaddr_nl = unsafe { mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: the address is a properly sized sockaddr_nl.
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&raw const kernel).cast(),
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(LockError::Sys {
                call: "connect(NETLINK_NETFILTER)",
                source: io::Error::last_os_error(),
            });
        }
        Ok(Self {
            fd,
            seq: 1,
            rx: vec![0; 16 << 10],
        })
    }

    /// A fresh batch, with BATCH_BEGIN written.
    pub fn batch(&mut self) -> Batch {
        let mut b = Batch::default();
        let seq = self.next_seq();
        header(
            &mut b.buf,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        b
    }

    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Appends BATCH_END, sends the batch in one `send` and waits for every
    /// requested acknowledgement; returns the first error reported.
    pub fn commit(&mut self, mut batch: Batch) -> Result<(), LockError> {
        let seq = self.next_seq();
        header(
            &mut batch.buf,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        // SAFETY: the buffer is valid for its length.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                batch.buf.as_ptr().cast(),
                batch.buf.len(),
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::EPERM) {
                LockError::NeedsCapNetAdmin
            } else {
                LockError::Sys {
                    call: "send(nfnetlink batch)",
                    source: e,
                }
            });
        }
        let mut waiting = batch.pending;
        let mut first_error = None;
        while !waiting.is_empty() {
            // SAFETY: `rx` is writable for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.rx.as_mut_ptr().cast(),
                    self.rx.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return Err(if e.kind() == io::ErrorKind::WouldBlock {
                    LockError::Timeout(REPLY_TIMEOUT)
                } else {
                    LockError::Sys {
                        call: "recv(nfnetlink)",
                        source: e,
                    }
                });
            }
            let mut off = 0;
            let n = n as usize;
            while off + 16 <= n {
                let msg = &self.rx[off..n];
                let len = u32::from_ne_bytes(msg[0..4].try_into().expect("4 bytes")) as usize;
                if len < 16 || len > msg.len() {
                    break;
                }
                let kind = u16::from_ne_bytes([msg[4], msg[5]]);
                let flags = u16::from_ne_bytes([msg[6], msg[7]]);
                if kind == NLMSG_ERROR && len >= 36 {
                    let errno = -i32::from_ne_bytes(msg[16..20].try_into().expect("4 bytes"));
                    let orig_seq = u32::from_ne_bytes(msg[28..32].try_into().expect("4 bytes"));
                    let pos = waiting.iter().position(|p| p.seq == orig_seq);
                    if pos.is_none() && errno != 0 {
                        // An error on the batch envelope (e.g. EPERM on BATCH_BEGIN):
                        // nothing else of the batch will be answered.
                        waiting.clear();
                    }
                    let name = pos.map_or("nfnetlink batch", |p| waiting.swap_remove(p).name);
                    {
                        if errno != 0 && first_error.is_none() {
                            let extack = if flags & NLM_F_ACK_TLVS != 0 {
                                extack_msg(&msg[36..len])
                            } else {
                                None
                            };
                            first_error = Some(if errno == libc::EPERM {
                                LockError::NeedsCapNetAdmin
                            } else {
                                LockError::Rejected {
                                    request: name,
                                    source: io::Error::from_raw_os_error(errno),
                                    extack,
                                }
                            });
                        }
                    }
                }
                off += (len + 3) & !3;
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The NLMSGERR_ATTR_MSG text of an extended ack.
fn extack_msg(mut tlvs: &[u8]) -> Option<String> {
    while tlvs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([tlvs[0], tlvs[1]]));
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]);
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &tlvs[4..len];
            let text = text.split(|&b| b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        tlvs = &tlvs[((len + 3) & !3).min(tlvs.len())..];
    }
    None
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

//! Fast path switching at the switching point: one rtnetlink socket opened
//! inside `sw`'s namespace, and prebuilt `RTM_NEWROUTE` + `NLM_F_REPLACE`
//! requests (IPv4 and IPv6 in one `send`), so a switch costs two system calls
//! and tens of microseconds instead of the milliseconds of spawning `ip`.

use std::io;
use std::mem;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Result, TestbedError};

const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const RT_TABLE_COMPAT: u8 = 252;

/// One host route: `dst/prefix via gateway dev oif`.
#[derive(Debug, Clone, Copy)]
pub struct HostRoute {
    /// Destination (a host route: /32 or /128).
    pub dst: IpAddr,
    /// Next hop.
    pub gateway: IpAddr,
    /// Outgoing interface index (in the namespace of the socket).
    pub oif: u32,
    /// Routing table: 0 or 254 is the main table.
    pub table: u32,
}

/// Routes sent per netlink message batch (the common case, one UE, is one).
const BATCH: usize = 128;

/// An rtnetlink socket bound to the namespace it was created in.
pub struct RouteSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for RouteSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteSocket")
            .field("fd", &self.fd)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl RouteSocket {
    /// Opens an rtnetlink socket in the calling thread's network namespace.
    pub fn open() -> Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(TestbedError::sys("socket(AF_NETLINK)")(
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
        let mut kernel: libc::sockaddr_nl = unsafe { mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: the address points to a properly sized sockaddr_nl.
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&raw const kernel).cast(),
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(TestbedError::sys("connect(AF_NETLINK)")(
                io::Error::last_os_error(),
            ));
        }
        Ok(Self {
            fd,
            seq: 1,
            buf: vec![0; 8192],
        })
    }

    /// Replaces (or creates) every route in `routes`: one `send` per batch
    /// of [`BATCH`] routes, then that batch's acknowledgements (thousands of
    /// acknowledgements at once would overflow the socket's receive buffer).
    pub fn replace(&mut self, routes: &[HostRoute]) -> Result<()> {
        for batch in routes.chunks(BATCH) {
            self.replace_batch(batch)?;
        }
        Ok(())
    }

    fn replace_batch(&mut self, routes: &[HostRoute]) -> Result<()> {
        let mut msg = Vec::with_capacity(64 * routes.len());
        let first_seq = self.seq;
        for route in routes {
            encode_newroute(&mut msg, route, self.seq);
            self.seq = self.seq.wrapping_add(1);
        }
        // SAFETY: `msg` is a valid buffer of `msg.len()` bytes.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(TestbedError::sys("send(RTM_NEWROUTE)")(
                io::Error::last_os_error(),
            ));
        }
        let mut pending = routes.len();
        while pending > 0 {
            let n = self.recv()?;
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes(self.buf[off..off + 4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes(self.buf[off + 4..off + 6].try_into().unwrap());
                let seq = u32::from_ne_bytes(self.buf[off + 8..off + 12].try_into().unwrap());
                if len < 16 || off + len > n {
                    break;
                }
                if kind == NLMSG_ERROR && seq.wrapping_sub(first_seq) < routes.len() as u32 {
                    let errno =
                        i32::from_ne_bytes(self.buf[off + 16..off + 20].try_into().unwrap());
                    if errno != 0 {
                        return Err(TestbedError::Netlink {
                            request: "RTM_NEWROUTE",
                            source: io::Error::from_raw_os_error(-errno),
                        });
                    }
                    pending -= 1;
                }
                off += (len + 3) & !3;
            }
        }
        Ok(())
    }

    fn recv(&mut self) -> Result<usize> {
        // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
                0,
            )
        };
        if n < 0 {
            Err(TestbedError::sys("recv(AF_NETLINK)")(
                io::Error::last_os_error(),
            ))
        } else {
            Ok(n as usize)
        }
    }
}

fn push_attr(msg: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    msg.extend_from_slice(&(len as u16).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(data);
    msg.resize(msg.len() + ((4 - len % 4) % 4), 0);
}

fn ip_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn encode_newroute(msg: &mut Vec<u8>, route: &HostRoute, seq: u32) {
    let start = msg.len();
    let (family, prefix) = match route.dst {
        IpAddr::V4(_) => (libc::AF_INET as u8, 32),
        IpAddr::V6(_) => (libc::AF_INET6 as u8, 128),
    };
    msg.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    msg.extend_from_slice(&RTM_NEWROUTE.to_ne_bytes());
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE | NLM_F_CREATE;
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // struct rtmsg
    let main = route.table == 0 || route.table == u32::from(RT_TABLE_MAIN);
    let rtm_table = match u8::try_from(route.table) {
        _ if main => RT_TABLE_MAIN,
        Ok(t) => t,
        Err(_) => RT_TABLE_COMPAT,
    };
    msg.extend_from_slice(&[
        family,
        prefix,
        0,
        0,
        rtm_table,
        RTPROT_STATIC,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ]);
    msg.extend_from_slice(&0u32.to_ne_bytes());
    push_attr(msg, RTA_DST, &ip_bytes(&route.dst));
    push_attr(msg, RTA_GATEWAY, &ip_bytes(&route.gateway));
    push_attr(msg, RTA_OIF, &route.oif.to_ne_bytes());
    if !main {
        push_attr(msg, RTA_TABLE, &route.table.to_ne_bytes());
    }
    let len = (msg.len() - start) as u32;
    msg[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

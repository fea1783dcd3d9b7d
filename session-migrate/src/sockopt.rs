//! Thin wrappers over the system calls TCP_REPAIR needs. Together with the
//! netlink socket calls in nfnl.rs, the only `unsafe` of the crate; every call
//! is checked and returns `io::Result`.
//! Constants come from `include/uapi/linux/tcp.h` and `linux/sockios.h`.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use libc::{c_int, c_void, socklen_t};

/// `TCP_REPAIR` values: on, off (sends a window probe), off without probe.
pub const TCP_REPAIR_ON: c_int = 1;
pub const TCP_REPAIR_OFF: c_int = 0;
pub const TCP_REPAIR_OFF_NO_WP: c_int = -1;

/// `TCP_REPAIR_QUEUE` selectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum RepairQueue {
    None = 0,
    Recv = 1,
    Send = 2,
}

/// Bounds the kernel accepts for TCP_MAXSEG (`TCP_MIN_MSS`, `MAX_TCP_WINDOW`).
pub const TCP_MIN_MSS: u32 = 88;
pub const TCP_MAX_MSS: u32 = 32767;
pub const TCPOPT_MSS: u32 = 2;
pub const TCPOPT_WINDOW: u32 = 3;
pub const TCPOPT_SACK_PERM: u32 = 4;
pub const TCPOPT_TIMESTAMP: u32 = 8;

pub const TCPI_OPT_TIMESTAMPS: u8 = 1;
pub const TCPI_OPT_SACK: u8 = 2;
pub const TCPI_OPT_WSCALE: u8 = 4;

const SIOCINQ: libc::c_ulong = 0x541B;
const SIOCOUTQ: libc::c_ulong = 0x5411;
const SIOCOUTQNSD: libc::c_ulong = 0x894B;
const SO_BUF_LOCK: c_int = 72;

/// `struct tcp_repair_window`; the kernel insists on exactly these 20 bytes
/// (later kernels also accept longer versions, this one works on all).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpRepairWindow {
    pub snd_wl1: u32,
    pub snd_wnd: u32,
    pub max_window: u32,
    pub rcv_wnd: u32,
    pub rcv_wup: u32,
}

/// `struct tcp_repair_opt`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TcpRepairOpt {
    pub code: u32,
    pub val: u32,
}

/// The first bytes of `struct tcp_info`: state, options and window scales.
#[derive(Debug, Clone, Copy)]
pub struct TcpInfoHead {
    pub state: u8,
    pub options: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
}

fn cvt(rc: c_int) -> io::Result<c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn cvt_size(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// setsockopt with a plain value of type `T`.
fn set<T>(fd: BorrowedFd<'_>, level: c_int, name: c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of `size_of::<T>()` bytes for the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast::<c_void>(),
            mem::size_of::<T>() as socklen_t,
        )
    })
    .map(drop)
}

/// getsockopt into a plain-data `T`; returns the value and the length the kernel wrote.
fn get<T: Copy + Default>(fd: BorrowedFd<'_>, level: c_int, name: c_int) -> io::Result<(T, usize)> {
    let mut val = T::default();
    let mut len = mem::size_of::<T>() as socklen_t;
    // SAFETY: `val` is a writable `T` and `len` holds its size; the kernel
    // writes at most `len` bytes of plain data.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw mut val).cast::<c_void>(),
            &mut len,
        )
    })?;
    Ok((val, len as usize))
}

pub fn set_int(fd: BorrowedFd<'_>, level: c_int, name: c_int, v: c_int) -> io::Result<()> {
    set(fd, level, name, &v)
}

pub fn get_int(fd: BorrowedFd<'_>, level: c_int, name: c_int) -> io::Result<c_int> {
    get::<c_int>(fd, level, name).map(|(v, _)| v)
}

pub fn set_repair(fd: BorrowedFd<'_>, mode: c_int) -> io::Result<()> {
    set_int(fd, libc::SOL_TCP, libc::TCP_REPAIR, mode)
}

pub fn set_repair_queue(fd: BorrowedFd<'_>, q: RepairQueue) -> io::Result<()> {
    set_int(fd, libc::SOL_TCP, libc::TCP_REPAIR_QUEUE, q as c_int)
}

pub fn queue_seq(fd: BorrowedFd<'_>) -> io::Result<u32> {
    get::<u32>(fd, libc::SOL_TCP, libc::TCP_QUEUE_SEQ).map(|(v, _)| v)
}

pub fn set_queue_seq(fd: BorrowedFd<'_>, seq: u32) -> io::Result<()> {
    set(fd, libc::SOL_TCP, libc::TCP_QUEUE_SEQ, &seq)
}

pub fn tcp_info_head(fd: BorrowedFd<'_>) -> io::Result<TcpInfoHead> {
    let (b, _) = get::<[u8; 8]>(fd, libc::SOL_TCP, libc::TCP_INFO)?;
    Ok(TcpInfoHead {
        state: b[0],
        options: b[5],
        snd_wscale: b[6] & 0x0f,
        rcv_wscale: b[6] >> 4,
    })
}

/// `tcpi_pacing_rate` (bytes per second) from TCP_INFO, if the kernel
/// reports that far (offset 104 of `struct tcp_info`).
pub fn pacing_rate(fd: BorrowedFd<'_>) -> io::Result<Option<u64>> {
    // 14 u64 words = the first 112 bytes; the pacing rate is the 14th.
    let (words, len) = get::<[u64; 14]>(fd, libc::SOL_TCP, libc::TCP_INFO)?;
    Ok((len >= 112).then_some(words[13]))
}

pub fn repair_window(fd: BorrowedFd<'_>) -> io::Result<TcpRepairWindow> {
    get::<TcpRepairWindow>(fd, libc::SOL_TCP, libc::TCP_REPAIR_WINDOW).map(|(v, _)| v)
}

pub fn set_repair_window(fd: BorrowedFd<'_>, w: &TcpRepairWindow) -> io::Result<()> {
    set(fd, libc::SOL_TCP, libc::TCP_REPAIR_WINDOW, w)
}

pub fn set_repair_options(fd: BorrowedFd<'_>, opts: &[TcpRepairOpt]) -> io::Result<()> {
    // SAFETY: `opts` is a live slice of repr(C) structs; the length passed is
    // exactly its size in bytes.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_REPAIR_OPTIONS,
            opts.as_ptr().cast::<c_void>(),
            mem::size_of_val(opts) as socklen_t,
        )
    })
    .map(drop)
}

pub fn buf_lock(fd: BorrowedFd<'_>) -> io::Result<c_int> {
    get_int(fd, libc::SOL_SOCKET, SO_BUF_LOCK)
}

pub fn set_buf_lock(fd: BorrowedFd<'_>, v: c_int) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, SO_BUF_LOCK, v)
}

fn ioctl_int(fd: BorrowedFd<'_>, req: libc::c_ulong) -> io::Result<u32> {
    let mut v: c_int = 0;
    // SAFETY: these ioctls write one int to the pointer given.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), req, &raw mut v) })?;
    Ok(v as u32)
}

/// Bytes in the receive queue not yet read (SIOCINQ).
pub fn inq_len(fd: BorrowedFd<'_>) -> io::Result<u32> {
    ioctl_int(fd, SIOCINQ)
}

/// Bytes in the send queue not yet acknowledged, sent or not (SIOCOUTQ).
pub fn outq_len(fd: BorrowedFd<'_>) -> io::Result<u32> {
    ioctl_int(fd, SIOCOUTQ)
}

/// Bytes in the send queue never sent (SIOCOUTQNSD).
pub fn unsent_len(fd: BorrowedFd<'_>) -> io::Result<u32> {
    ioctl_int(fd, SIOCOUTQNSD)
}

/// recv(MSG_PEEK | MSG_DONTWAIT) into `buf`.
pub fn peek(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for `buf.len()` bytes.
    cvt_size(unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    })
}

/// send(MSG_DONTWAIT | MSG_NOSIGNAL).
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is readable for `buf.len()` bytes.
    cvt_size(unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    })
}

/// Waits until the socket is writable or `timeout` passes; true if writable.
pub fn wait_writable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
    // SAFETY: one valid pollfd.
    let n = cvt(unsafe { libc::poll(&raw mut pfd, 1, ms) })?;
    Ok(n > 0)
}

/// A new TCP socket of the address's family, close-on-exec.
pub fn tcp_socket(ipv4: bool) -> io::Result<OwnedFd> {
    let family = if ipv4 { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let raw = cvt(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            libc::IPPROTO_TCP,
        )
    })?;
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A close-on-exec duplicate of `fd`.
pub fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// The descriptor's file status flags (F_GETFL).
pub fn file_flags(fd: BorrowedFd<'_>) -> io::Result<c_int> {
    // SAFETY: fcntl F_GETFL takes no pointer.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })
}

/// Sets O_NONBLOCK on the descriptor.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = file_flags(fd)?;
    // SAFETY: fcntl F_SETFL takes an int argument.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

/// Inode number of the socket (names CRIU's tcp-stream file).
pub fn inode(fd: BorrowedFd<'_>) -> io::Result<u64> {
    // SAFETY: `st` is a writable stat buffer; fstat fills it.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: as above, `fd` is open for the call.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &raw mut st) })?;
    Ok(st.st_ino)
}

/// Raw socket address storage and its used length.
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: socklen_t,
}

fn to_raw(addr: &SocketAddr) -> RawAddr {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in6>().write(sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    RawAddr {
        storage,
        len: len as socklen_t,
    }
}

fn from_raw(raw: &RawAddr) -> io::Result<SocketAddr> {
    match c_int::from(raw.storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
            let sin = unsafe { *(&raw const raw.storage).cast::<libc::sockaddr_in>() };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
            let sin6 = unsafe { *(&raw const raw.storage).cast::<libc::sockaddr_in6>() };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("address family {other} is not IPv4/IPv6"),
        )),
    }
}

pub fn bind(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    let raw = to_raw(addr);
    // SAFETY: `raw.storage` holds a valid sockaddr of `raw.len` bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), (&raw const raw.storage).cast(), raw.len) }).map(drop)
}

pub fn connect(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    let raw = to_raw(addr);
    // SAFETY: `raw.storage` holds a valid sockaddr of `raw.len` bytes.
    cvt(unsafe { libc::connect(fd.as_raw_fd(), (&raw const raw.storage).cast(), raw.len) })
        .map(drop)
}

fn name(fd: BorrowedFd<'_>, peer: bool) -> io::Result<SocketAddr> {
    let mut raw = RawAddr {
        // SAFETY: sockaddr_storage is plain data; all-zero is valid.
        storage: unsafe { mem::zeroed() },
        len: mem::size_of::<libc::sockaddr_storage>() as socklen_t,
    };
    let f = if peer {
        libc::getpeername
    } else {
        libc::getsockname
    };
    // SAFETY: the kernel writes at most `raw.len` bytes into `raw.storage`.
    cvt(unsafe {
        f(
            fd.as_raw_fd(),
            (&raw mut raw.storage).cast(),
            &raw mut raw.len,
        )
    })?;
    from_raw(&raw)
}

pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    name(fd, false)
}

pub fn peer_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    name(fd, true)
}

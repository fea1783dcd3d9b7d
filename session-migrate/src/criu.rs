//! CRIU's own protobuf entries (`images/tcp-stream.proto`, `sk-inet.proto`,
//! `sk-opts.proto`, `fown.proto`, `fdinfo.proto`; field numbers and types as
//! there, written by hand so no `protoc` is needed) and CRIU image files:
//! `tcp-stream-<ino>.img` (entry followed by the queue bytes) and `files.img`
//! (one `file_entry` of type INETSK per socket). `crit decode` reads both.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::Path;

use prost::Message;

use crate::error::{CriuError, ImageError, Queue};
use crate::image::{
    FourTuple, MAX_QUEUE_LEN, RepairWindow, SocketBuffers, TcpOptions, TcpState, TcpStreamImage,
    WindowScale,
};

/// Magic that starts every non-inventory CRIU image ("IMG_COMMON").
pub const IMG_COMMON_MAGIC: u32 = 0x5456_4319;
/// Magic of `tcp-stream-*.img`.
pub const TCP_STREAM_MAGIC: u32 = 0x5146_5506;
/// Magic of `files.img`.
pub const FILES_MAGIC: u32 = 0x5630_3138;
/// `fd_types.INETSK` in `fdinfo.proto`.
pub const FD_TYPE_INETSK: u32 = 4;

const TCPI_OPT_TIMESTAMPS: u32 = 1;
const TCPI_OPT_SACK: u32 = 2;
const TCPI_OPT_WSCALE: u32 = 4;

/// `message tcp_stream_entry` (tcp-stream.proto).
#[derive(Clone, PartialEq, Message)]
pub struct TcpStreamEntry {
    #[prost(uint32, required, tag = "1")]
    pub inq_len: u32,
    #[prost(uint32, required, tag = "2")]
    pub inq_seq: u32,
    #[prost(uint32, required, tag = "3")]
    pub outq_len: u32,
    #[prost(uint32, required, tag = "4")]
    pub outq_seq: u32,
    #[prost(uint32, required, tag = "5")]
    pub opt_mask: u32,
    #[prost(uint32, required, tag = "6")]
    pub snd_wscale: u32,
    #[prost(uint32, required, tag = "7")]
    pub mss_clamp: u32,
    #[prost(uint32, optional, tag = "8")]
    pub rcv_wscale: Option<u32>,
    #[prost(uint32, optional, tag = "9")]
    pub timestamp: Option<u32>,
    #[prost(bool, optional, tag = "10")]
    pub cork: Option<bool>,
    #[prost(bool, optional, tag = "11")]
    pub nodelay: Option<bool>,
    #[prost(uint32, optional, tag = "12")]
    pub unsq_len: Option<u32>,
    #[prost(uint32, optional, tag = "13")]
    pub snd_wl1: Option<u32>,
    #[prost(uint32, optional, tag = "14")]
    pub snd_wnd: Option<u32>,
    #[prost(uint32, optional, tag = "15")]
    pub max_window: Option<u32>,
    #[prost(uint32, optional, tag = "16")]
    pub rcv_wnd: Option<u32>,
    #[prost(uint32, optional, tag = "17")]
    pub rcv_wup: Option<u32>,
}

/// `message tcp_opts_entry` (tcp-stream.proto).
#[derive(Clone, PartialEq, Message)]
pub struct TcpOptsEntry {
    #[prost(bool, optional, tag = "1")]
    pub cork: Option<bool>,
    #[prost(bool, optional, tag = "2")]
    pub nodelay: Option<bool>,
    #[prost(uint32, optional, tag = "3")]
    pub keepcnt: Option<u32>,
    #[prost(uint32, optional, tag = "4")]
    pub keepidle: Option<u32>,
    #[prost(uint32, optional, tag = "5")]
    pub keepintvl: Option<u32>,
}

/// `message fown_entry` (fown.proto).
#[derive(Clone, PartialEq, Message)]
pub struct FownEntry {
    #[prost(uint32, required, tag = "1")]
    pub uid: u32,
    #[prost(uint32, required, tag = "2")]
    pub euid: u32,
    #[prost(uint32, required, tag = "3")]
    pub signum: u32,
    #[prost(uint32, required, tag = "4")]
    pub pid_type: u32,
    #[prost(uint32, required, tag = "5")]
    pub pid: u32,
}

/// `message sk_opts_entry` (sk-opts.proto), the fields this crate fills.
#[derive(Clone, PartialEq, Message)]
pub struct SkOptsEntry {
    #[prost(uint32, required, tag = "1")]
    pub so_sndbuf: u32,
    #[prost(uint32, required, tag = "2")]
    pub so_rcvbuf: u32,
    #[prost(uint64, required, tag = "3")]
    pub so_snd_tmo_sec: u64,
    #[prost(uint64, required, tag = "4")]
    pub so_snd_tmo_usec: u64,
    #[prost(uint64, required, tag = "5")]
    pub so_rcv_tmo_sec: u64,
    #[prost(uint64, required, tag = "6")]
    pub so_rcv_tmo_usec: u64,
    #[prost(bool, optional, tag = "7")]
    pub reuseaddr: Option<bool>,
    #[prost(uint32, optional, tag = "25")]
    pub so_buf_lock: Option<u32>,
}

/// `message inet_sk_entry` (sk-inet.proto), without the fields CRIU uses for
/// raw/UDP sockets and interface binding.
#[derive(Clone, PartialEq, Message)]
pub struct InetSkEntry {
    #[prost(uint32, required, tag = "1")]
    pub id: u32,
    #[prost(uint32, required, tag = "2")]
    pub ino: u32,
    #[prost(uint32, required, tag = "3")]
    pub family: u32,
    #[prost(uint32, required, tag = "4")]
    pub r#type: u32,
    #[prost(uint32, required, tag = "5")]
    pub proto: u32,
    #[prost(uint32, required, tag = "6")]
    pub state: u32,
    #[prost(uint32, required, tag = "7")]
    pub src_port: u32,
    #[prost(uint32, required, tag = "8")]
    pub dst_port: u32,
    #[prost(uint32, required, tag = "9")]
    pub flags: u32,
    #[prost(uint32, required, tag = "10")]
    pub backlog: u32,
    #[prost(uint32, repeated, packed = "false", tag = "11")]
    pub src_addr: Vec<u32>,
    #[prost(uint32, repeated, packed = "false", tag = "12")]
    pub dst_addr: Vec<u32>,
    #[prost(message, required, tag = "13")]
    pub fown: FownEntry,
    #[prost(message, required, tag = "14")]
    pub opts: SkOptsEntry,
    #[prost(bool, optional, tag = "15")]
    pub v6only: Option<bool>,
    #[prost(uint32, optional, tag = "18")]
    pub ns_id: Option<u32>,
    #[prost(message, optional, tag = "20")]
    pub tcp_opts: Option<TcpOptsEntry>,
}

/// `message file_entry` (fdinfo.proto), socket variant only.
#[derive(Clone, PartialEq, Message)]
pub struct FileEntry {
    #[prost(uint32, required, tag = "1")]
    pub r#type: u32,
    #[prost(uint32, required, tag = "2")]
    pub id: u32,
    #[prost(message, optional, tag = "4")]
    pub isk: Option<InetSkEntry>,
}

/// The two CRIU entries describing an image, without its queue bytes.
pub(crate) fn to_entries(img: &TcpStreamImage, id: u32) -> (InetSkEntry, TcpStreamEntry) {
    let (family, src_addr) = addr_words(&img.tuple.local);
    let (_, dst_addr) = addr_words(&img.tuple.peer);
    let mut opt_mask = 0;
    if img.options.sack_permitted {
        opt_mask |= TCPI_OPT_SACK;
    }
    if img.options.window_scale.is_some() {
        opt_mask |= TCPI_OPT_WSCALE;
    }
    if img.options.timestamp.is_some() {
        opt_mask |= TCPI_OPT_TIMESTAMPS;
    }
    let ws = img
        .options
        .window_scale
        .unwrap_or(WindowScale { snd: 0, rcv: 0 });
    let flags = libc::O_RDWR as u32
        | if img.nonblocking {
            libc::O_NONBLOCK as u32
        } else {
            0
        };
    let isk = InetSkEntry {
        id,
        ino: img.ino,
        family,
        r#type: libc::SOCK_STREAM as u32,
        proto: libc::IPPROTO_TCP as u32,
        state: u32::from(img.state.to_kernel()),
        src_port: img.tuple.local.port().into(),
        dst_port: img.tuple.peer.port().into(),
        flags,
        backlog: 0,
        src_addr,
        dst_addr,
        fown: FownEntry::default(),
        opts: SkOptsEntry {
            so_sndbuf: img.buffers.sndbuf,
            so_rcvbuf: img.buffers.rcvbuf,
            so_buf_lock: Some(img.buffers.lock),
            ..SkOptsEntry::default()
        },
        v6only: None,
        ns_id: None,
        tcp_opts: Some(TcpOptsEntry {
            cork: Some(img.cork),
            nodelay: Some(img.nodelay),
            ..TcpOptsEntry::default()
        }),
    };
    let w = img.window;
    let tcp = TcpStreamEntry {
        inq_len: img.recv_queue.len() as u32,
        inq_seq: img.inq_seq,
        outq_len: img.send_queue.len() as u32,
        outq_seq: img.outq_seq,
        opt_mask,
        snd_wscale: ws.snd.into(),
        mss_clamp: img.mss_clamp,
        rcv_wscale: Some(ws.rcv.into()),
        timestamp: img.options.timestamp,
        cork: Some(img.cork),
        nodelay: Some(img.nodelay),
        unsq_len: Some(img.unsent_len),
        snd_wl1: Some(w.snd_wl1),
        snd_wnd: Some(w.snd_wnd),
        max_window: Some(w.max_window),
        rcv_wnd: Some(w.rcv_wnd),
        rcv_wup: Some(w.rcv_wup),
    };
    (isk, tcp)
}

/// Builds a validated image from CRIU entries and the queue bytes that follow them.
pub(crate) fn from_entries(
    isk: &InetSkEntry,
    tcp: &TcpStreamEntry,
    recv_queue: &[u8],
    send_queue: &[u8],
) -> Result<TcpStreamImage, ImageError> {
    if isk.r#type != libc::SOCK_STREAM as u32 || isk.proto != libc::IPPROTO_TCP as u32 {
        return Err(ImageError::NotTcp {
            sk_type: isk.r#type,
            proto: isk.proto,
        });
    }
    let state = TcpState::from_kernel(u8::try_from(isk.state).unwrap_or(u8::MAX));
    if state != TcpState::Established {
        return Err(ImageError::UnsupportedState(state));
    }
    let local = socket_addr(isk.family, &isk.src_addr, isk.src_port, "src")?;
    let peer = socket_addr(isk.family, &isk.dst_addr, isk.dst_port, "dst")?;
    let unsent_len = tcp.unsq_len.ok_or(ImageError::MissingField("unsq_len"))?;
    let window_scale = if tcp.opt_mask & TCPI_OPT_WSCALE != 0 {
        let rcv = tcp
            .rcv_wscale
            .ok_or(ImageError::MissingField("rcv_wscale"))?;
        Some(WindowScale {
            snd: small("snd_wscale", tcp.snd_wscale)?,
            rcv: small("rcv_wscale", rcv)?,
        })
    } else {
        None
    };
    let timestamp = if tcp.opt_mask & TCPI_OPT_TIMESTAMPS != 0 {
        Some(tcp.timestamp.ok_or(ImageError::MissingField("timestamp"))?)
    } else {
        None
    };
    let window = RepairWindow {
        snd_wl1: tcp.snd_wl1.ok_or(ImageError::MissingField("snd_wl1"))?,
        snd_wnd: tcp.snd_wnd.ok_or(ImageError::MissingField("snd_wnd"))?,
        max_window: tcp
            .max_window
            .ok_or(ImageError::MissingField("max_window"))?,
        rcv_wnd: tcp.rcv_wnd.ok_or(ImageError::MissingField("rcv_wnd"))?,
        rcv_wup: tcp.rcv_wup.ok_or(ImageError::MissingField("rcv_wup"))?,
    };
    let opts = isk.tcp_opts.as_ref();
    let img = TcpStreamImage {
        tuple: FourTuple { local, peer },
        state,
        ino: isk.ino,
        inq_seq: tcp.inq_seq,
        outq_seq: tcp.outq_seq,
        recv_queue: recv_queue.to_vec(),
        send_queue: send_queue.to_vec(),
        unsent_len,
        mss_clamp: tcp.mss_clamp,
        options: TcpOptions {
            sack_permitted: tcp.opt_mask & TCPI_OPT_SACK != 0,
            window_scale,
            timestamp,
        },
        window,
        nodelay: opts
            .and_then(|o| o.nodelay)
            .or(tcp.nodelay)
            .unwrap_or(false),
        cork: opts.and_then(|o| o.cork).or(tcp.cork).unwrap_or(false),
        nonblocking: isk.flags & libc::O_NONBLOCK as u32 != 0,
        buffers: SocketBuffers {
            sndbuf: isk.opts.so_sndbuf,
            rcvbuf: isk.opts.so_rcvbuf,
            lock: isk.opts.so_buf_lock.unwrap_or(0),
        },
    };
    img.validate()?;
    Ok(img)
}

/// Checks announced queue lengths against the limit before anything is allocated.
pub(crate) fn queue_lengths(tcp: &TcpStreamEntry) -> Result<(usize, usize), ImageError> {
    let check = |queue, len: u32| {
        if len as usize > MAX_QUEUE_LEN {
            Err(ImageError::QueueTooLarge {
                queue,
                len: len.into(),
                max: MAX_QUEUE_LEN as u64,
            })
        } else {
            Ok(len as usize)
        }
    };
    Ok((
        check(Queue::Recv, tcp.inq_len)?,
        check(Queue::Send, tcp.outq_len)?,
    ))
}

fn small(field: &'static str, v: u32) -> Result<u8, ImageError> {
    u8::try_from(v).map_err(|_| ImageError::InvalidField {
        field,
        value: v.into(),
        reason: "window scale above 14",
    })
}

/// CRIU stores addresses as 32-bit words holding the network-order bytes.
fn addr_words(addr: &SocketAddr) -> (u32, Vec<u32>) {
    match addr.ip() {
        IpAddr::V4(a) => (libc::AF_INET as u32, vec![u32::from_ne_bytes(a.octets())]),
        IpAddr::V6(a) => {
            let o = a.octets();
            let words = o
                .chunks_exact(4)
                .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (libc::AF_INET6 as u32, words)
        }
    }
}

fn socket_addr(
    family: u32,
    words: &[u32],
    port: u32,
    which: &'static str,
) -> Result<SocketAddr, ImageError> {
    let port = u16::try_from(port).map_err(|_| ImageError::InvalidField {
        field: if which == "src" {
            "src_port"
        } else {
            "dst_port"
        },
        value: port.into(),
        reason: "not a 16-bit port",
    })?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match family {
        f if f == libc::AF_INET as u32 => {
            let octets: [u8; 4] =
                bytes
                    .try_into()
                    .map_err(|_| ImageError::AddressFamilyMismatch {
                        family,
                        detail: "AF_INET needs exactly one address word",
                    })?;
            Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(octets)), port))
        }
        f if f == libc::AF_INET6 as u32 => {
            let octets: [u8; 16] =
                bytes
                    .try_into()
                    .map_err(|_| ImageError::AddressFamilyMismatch {
                        family,
                        detail: "AF_INET6 needs exactly four address words",
                    })?;
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(octets),
                port,
                0,
                0,
            )))
        }
        other => Err(ImageError::UnsupportedFamily(other)),
    }
}

/// Decodes a protobuf entry, naming it in the error.
pub(crate) fn decode_entry<M: Message + Default>(
    entry: &'static str,
    bytes: &[u8],
) -> Result<M, ImageError> {
    M::decode(bytes).map_err(|e| ImageError::Protobuf {
        entry,
        detail: e.to_string(),
    })
}

/// Writes CRIU image files for `images` into `dir`: one `tcp-stream-<ino>.img`
/// per image and a `files.img` with a `file_entry` (type INETSK, ids 1, 2, …).
pub fn write_criu_images(dir: &Path, images: &[TcpStreamImage]) -> Result<(), CriuError> {
    let mut inos: Vec<u32> = images.iter().map(|i| i.ino).collect();
    inos.sort_unstable();
    if let Some(w) = inos.windows(2).find(|w| w[0] == w[1]) {
        return Err(CriuError::DuplicateInode(w[0]));
    }
    let mut files = header(FILES_MAGIC);
    for (i, img) in images.iter().enumerate() {
        let (isk, tcp) = to_entries(img, i as u32 + 1);
        let file = FileEntry {
            r#type: FD_TYPE_INETSK,
            id: isk.id,
            isk: Some(isk),
        };
        push_entry(&mut files, &file);
        let mut stream = header(TCP_STREAM_MAGIC);
        push_entry(&mut stream, &tcp);
        stream.extend_from_slice(&img.recv_queue);
        stream.extend_from_slice(&img.send_queue);
        write(&dir.join(tcp_stream_file(img.ino)), &stream)?;
    }
    write(&dir.join("files.img"), &files)
}

/// Reads back every INETSK socket of `files.img` in `dir` with its tcp-stream image.
pub fn read_criu_images(dir: &Path) -> Result<Vec<TcpStreamImage>, CriuError> {
    let files_path = dir.join("files.img");
    let files = read(&files_path)?;
    let in_file = |source| CriuError::Image {
        path: files_path.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for raw in entries(&files, FILES_MAGIC).map_err(in_file)? {
        let file: FileEntry = decode_entry("file_entry", raw.map_err(in_file)?).map_err(in_file)?;
        let Some(isk) = file.isk.filter(|_| file.r#type == FD_TYPE_INETSK) else {
            continue;
        };
        let path = dir.join(tcp_stream_file(isk.ino));
        let stream = read(&path)?;
        let bad = |source| CriuError::Image {
            path: path.display().to_string(),
            source,
        };
        let body = stream_body(&stream).map_err(bad)?;
        let (len, rest) = take_u32(body, "tcp_stream_entry size").map_err(bad)?;
        let (entry, queues) = take(rest, len as usize, "tcp_stream_entry").map_err(bad)?;
        let tcp: TcpStreamEntry = decode_entry("tcp_stream_entry", entry).map_err(bad)?;
        let (inq, outq) = queue_lengths(&tcp).map_err(bad)?;
        let (recv_queue, rest) = take(queues, inq, "receive queue").map_err(bad)?;
        let (send_queue, rest) = take(rest, outq, "send queue").map_err(bad)?;
        if !rest.is_empty() {
            return Err(bad(ImageError::TrailingBytes(rest.len())));
        }
        out.push(from_entries(&isk, &tcp, recv_queue, send_queue).map_err(bad)?);
    }
    Ok(out)
}

/// File name CRIU uses for a socket's stream image.
pub fn tcp_stream_file(ino: u32) -> String {
    format!("tcp-stream-{ino:x}.img")
}

fn header(magic: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(256);
    v.extend_from_slice(&IMG_COMMON_MAGIC.to_le_bytes());
    v.extend_from_slice(&magic.to_le_bytes());
    v
}

fn push_entry<M: Message>(out: &mut Vec<u8>, msg: &M) {
    out.extend_from_slice(&(msg.encoded_len() as u32).to_le_bytes());
    msg.encode(out).expect("Vec grows as needed");
}

fn stream_body(data: &[u8]) -> Result<&[u8], ImageError> {
    let (common, rest) = take_u32(data, "image magic")?;
    let (magic, rest) = take_u32(rest, "image magic")?;
    for (found, expected) in [(common, IMG_COMMON_MAGIC), (magic, TCP_STREAM_MAGIC)] {
        if found != expected {
            return Err(ImageError::BadMagic { found, expected });
        }
    }
    Ok(rest)
}

/// Iterates the size-prefixed entries of an image with the given magic.
fn entries(
    data: &[u8],
    magic: u32,
) -> Result<impl Iterator<Item = Result<&[u8], ImageError>>, ImageError> {
    let (common, rest) = take_u32(data, "image magic")?;
    let (found, mut rest) = take_u32(rest, "image magic")?;
    if common != IMG_COMMON_MAGIC {
        return Err(ImageError::BadMagic {
            found: common,
            expected: IMG_COMMON_MAGIC,
        });
    }
    if found != magic {
        return Err(ImageError::BadMagic {
            found,
            expected: magic,
        });
    }
    Ok(std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let step = take_u32(rest, "entry size").and_then(|(len, r)| take(r, len as usize, "entry"));
        match step {
            Ok((entry, r)) => {
                rest = r;
                Some(Ok(entry))
            }
            Err(e) => {
                rest = &[];
                Some(Err(e))
            }
        }
    }))
}

/// Splits a little-endian u32 off the front.
pub(crate) fn take_u32<'a>(
    data: &'a [u8],
    what: &'static str,
) -> Result<(u32, &'a [u8]), ImageError> {
    let (head, rest) = take(data, 4, what)?;
    Ok((u32::from_le_bytes(head.try_into().expect("4 bytes")), rest))
}

/// Splits `len` bytes off the front, or says what was truncated.
pub(crate) fn take<'a>(
    data: &'a [u8],
    len: usize,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), ImageError> {
    if data.len() < len {
        Err(ImageError::Truncated {
            what,
            needed: len,
            available: data.len(),
        })
    } else {
        Ok(data.split_at(len))
    }
}

fn write(path: &Path, data: &[u8]) -> Result<(), CriuError> {
    fs::write(path, data).map_err(|source| CriuError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, CriuError> {
    fs::read(path).map_err(|source| CriuError::Io {
        path: path.display().to_string(),
        source,
    })
}

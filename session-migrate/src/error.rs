//! Typed errors. Each names the system call, the socket state or the image
//! field involved, so an operator reading a failed migration knows what to fix.

use std::io;

use crate::image::TcpState;

/// Which TCP queue an operation was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Bytes received from the peer and not yet read by the application.
    Recv,
    /// Bytes written by the application: sent-but-unacknowledged, then unsent.
    Send,
}

impl std::fmt::Display for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Queue::Recv => "receive queue",
            Queue::Send => "send queue",
        })
    }
}

/// Why a socket could not be dumped. On every error the socket is left
/// running as it was (repair mode switched off again, nothing sent).
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// TCP_REPAIR needs CAP_NET_ADMIN in the user namespace owning the
    /// socket's network namespace.
    #[error(
        "TCP_REPAIR was refused: dumping a socket needs CAP_NET_ADMIN in its network namespace"
    )]
    NeedsCapNetAdmin,
    /// Only ESTABLISHED connections are migrated in this version.
    #[error("socket is in TCP state {state}, only ESTABLISHED connections can be dumped")]
    NotEstablished {
        /// The state the kernel reported.
        state: TcpState,
    },
    /// A system call failed.
    #[error("{call} failed while dumping: {source}")]
    Sys {
        /// The system call and option, e.g. `getsockopt(TCP_REPAIR_WINDOW)`.
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Peeking a queue returned a different number of bytes than its size said.
    #[error("{queue}: the kernel reported {expected} bytes but peeking returned {got}")]
    QueueSizeMismatch {
        /// The queue.
        queue: Queue,
        /// Size from SIOCINQ/SIOCOUTQ.
        expected: usize,
        /// Bytes returned by recv(MSG_PEEK).
        got: usize,
    },
}

/// Why a socket could not be restored. The image is validated before any
/// socket is created; after that, a half-restored socket is closed silently.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The image is inconsistent; nothing was touched.
    #[error("invalid image, no socket was touched: {0}")]
    InvalidImage(#[from] ImageError),
    /// TCP_REPAIR needs CAP_NET_ADMIN in the current network namespace.
    #[error(
        "TCP_REPAIR was refused: restoring a socket needs CAP_NET_ADMIN in the current network namespace"
    )]
    NeedsCapNetAdmin,
    /// A system call failed.
    #[error("{call} failed while restoring: {source}")]
    Sys {
        /// The system call and option.
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel did not take a whole queue.
    #[error("{queue}: the kernel accepted {accepted} of {len} bytes")]
    QueueNotAccepted {
        /// The queue.
        queue: Queue,
        /// Bytes to restore.
        len: usize,
        /// Bytes accepted.
        accepted: usize,
    },
}

/// Why bytes are not a valid [`TcpStreamImage`](crate::TcpStreamImage).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    /// The input ends before a field it announces.
    #[error("image truncated: {what} needs {needed} bytes, {available} left")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// Not an image of this format.
    #[error("bad magic {found:#010x}, expected {expected:#010x}")]
    BadMagic {
        /// Magic found.
        found: u32,
        /// Magic expected.
        expected: u32,
    },
    /// A format version this build does not know.
    #[error("unsupported image version {0}")]
    UnsupportedVersion(u8),
    /// Bytes after the last queue.
    #[error("{0} unexpected bytes after the send queue")]
    TrailingBytes(usize),
    /// A protobuf entry did not decode.
    #[error("{entry} does not decode: {detail}")]
    Protobuf {
        /// The entry (`inet_sk_entry`, `tcp_stream_entry`, `file_entry`).
        entry: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// An optional protobuf field this crate needs is absent.
    #[error("field {0} is missing")]
    MissingField(&'static str),
    /// The socket is not a TCP stream.
    #[error("not a TCP stream socket (type {sk_type}, protocol {proto})")]
    NotTcp {
        /// Socket type.
        sk_type: u32,
        /// Protocol.
        proto: u32,
    },
    /// Neither AF_INET nor AF_INET6.
    #[error("unsupported address family {0}")]
    UnsupportedFamily(u32),
    /// Address words do not match the family (1 for IPv4, 4 for IPv6), or
    /// local and peer families differ.
    #[error("address does not match family {family}: {detail}")]
    AddressFamilyMismatch {
        /// The family.
        family: u32,
        /// What is wrong.
        detail: &'static str,
    },
    /// The state is not one this version restores.
    #[error("TCP state {0} cannot be restored, only ESTABLISHED")]
    UnsupportedState(TcpState),
    /// A queue larger than this crate accepts.
    #[error("{queue} of {len} bytes exceeds the limit of {max}")]
    QueueTooLarge {
        /// The queue.
        queue: Queue,
        /// Its announced length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A field whose value the kernel would reject or that contradicts another.
    #[error("field {field} = {value} is invalid: {reason}")]
    InvalidField {
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u64,
        /// Why it is invalid.
        reason: &'static str,
    },
}

/// Why CRIU image files could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    /// File I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file's content is not a valid image.
    #[error("{path}: {source}")]
    Image {
        /// The file.
        path: String,
        /// What is wrong.
        #[source]
        source: ImageError,
    },
    /// Two images share an inode number, so their tcp-stream files would clash.
    #[error("two images share socket inode {0:#x}")]
    DuplicateInode(u32),
}

/// Why the network lock could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// nf_tables changes need CAP_NET_ADMIN.
    #[error("nf_tables refused the request: the network lock needs CAP_NET_ADMIN")]
    NeedsCapNetAdmin,
    /// A system call on the netlink socket failed.
    #[error("{call} failed on the nfnetlink socket: {source}")]
    Sys {
        /// The system call.
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel rejected a message of the batch.
    #[error("nf_tables rejected {request}: {source}{}", extack.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Rejected {
        /// The nf_tables message type.
        request: &'static str,
        /// The errno.
        #[source]
        source: io::Error,
        /// The kernel's extended-ack message, if any.
        extack: Option<String>,
    },
    /// The kernel did not answer in time.
    #[error("no answer from nf_tables within {0:?}")]
    Timeout(std::time::Duration),
}

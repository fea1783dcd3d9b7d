//! Typed errors. Every malformed input maps to one variant with the fields a
//! person debugging a capture would want (offsets, claimed vs. available).

use std::net::IpAddr;

use thiserror::Error;

use crate::fpt::Fpt;

/// Why a byte string is not a valid CXTP message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer octets than a field needs.
    #[error("truncated {field}: needs {needed} octets, {available} available")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Octets the field needs.
        needed: usize,
        /// Octets left in the message.
        available: usize,
    },
    /// The 3-bit version is not 1.
    #[error("unsupported CXTP version {0} (only version 1 exists)")]
    BadVersion(u8),
    /// The 5-bit type is not one of the seven RFC 4067 messages.
    #[error("unknown CXTP message type {0}")]
    UnknownType(u8),
    /// The header's Length is below the 4-octet header itself.
    #[error("message length field {0} is shorter than the 4-octet header")]
    LengthTooSmall(u16),
    /// The header's Length disagrees with the octets handed to `decode`.
    #[error("message length field says {declared} octets but {actual} were given")]
    LengthMismatch {
        /// Value of the Length field.
        declared: usize,
        /// Octets given.
        actual: usize,
    },
    /// A CDB's Length field is 0 (it must at least cover its 4-octet head).
    #[error("context data block at message offset {offset} has length 0")]
    CdbZeroLength {
        /// Offset of the CDB in the message.
        offset: usize,
    },
    /// A CDB claims more octets than the message has left.
    #[error(
        "context data block at message offset {offset} claims {claimed} octets, {available} remain"
    )]
    CdbOverrun {
        /// Offset of the CDB in the message.
        offset: usize,
        /// Octets the CDB claims (Length × 8).
        claimed: usize,
        /// Octets left in the message.
        available: usize,
    },
    /// Octets left over that no field accounts for.
    #[error("{extra} trailing octets in {message}")]
    TrailingBytes {
        /// The message type.
        message: &'static str,
        /// How many octets are left over.
        extra: usize,
    },
}

/// Why a message cannot be encoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The message would exceed the 16-bit Length field.
    #[error("message of {len} octets exceeds the 65,535-octet CXTP limit")]
    MessageTooLong {
        /// Octets the message would need.
        len: usize,
    },
    /// A CDB would exceed 255 × 8 = 2,040 octets.
    #[error("context data block of {len} octets (padded) exceeds 2,040 octets")]
    CdbTooLong {
        /// Padded octets the CDB would need.
        len: usize,
    },
    /// A key longer than its 16-bit Key Length field.
    #[error("key of {len} octets exceeds the 16-bit key length field")]
    KeyTooLong {
        /// Key octets.
        len: usize,
    },
    /// One V bit covers every address of a message; they must share a family.
    #[error("addresses of one message mix IPv4 and IPv6")]
    MixedAddressFamilies,
}

/// Why the large-context layer rejects a transfer (sending or receiving).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TransferError {
    /// The CTD itself is malformed.
    #[error("malformed message: {0}")]
    Decode(#[from] DecodeError),
    /// A message of the transfer cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// More contexts than the segment format's 16-bit index (or the
    /// configured limit) allows.
    #[error("{count} contexts exceed the limit of {limit}")]
    TooManyContexts {
        /// Contexts announced or offered.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// More context octets than the configured maximum transfer size.
    #[error("transfer of {claimed} octets exceeds the limit of {limit}")]
    TooLarge {
        /// Octets announced, offered, or received so far.
        claimed: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A context with a non-edgemob FPT must fit one CDB (2,036 octets).
    #[error("context {index} ({fpt}) has {len} octets; non-edgemob FPTs must fit one CDB (2,036)")]
    OpaqueContextTooLarge {
        /// Index of the context in the transfer.
        index: usize,
        /// Its FPT.
        fpt: Fpt,
        /// Its length.
        len: usize,
    },
    /// A context tried to use an FPT reserved for framing.
    #[error("context {index} uses FPT {fpt}, which cannot carry a context")]
    ReservedFpt {
        /// Index of the context in the transfer.
        index: usize,
        /// The offending FPT.
        fpt: Fpt,
    },
    /// An edgemob-FPT CDB too short for its 12-octet segment header.
    #[error(
        "segment of {fpt} has a {len}-octet data field, shorter than the 12-octet segment header"
    )]
    SegmentTooShort {
        /// The CDB's FPT.
        fpt: Fpt,
        /// Octets in its Data field.
        len: usize,
    },
    /// Segment Length overruns the CDB's Data field.
    #[error("segment claims {claimed} octets, its CDB holds {available}")]
    SegmentOverrun {
        /// Segment Length field.
        claimed: usize,
        /// Octets available after the segment header.
        available: usize,
    },
    /// More than 7 octets, or non-zero octets, after the segment.
    #[error("bad padding after segment: {len} octets, non-zero: {nonzero}")]
    BadPadding {
        /// Padding octets.
        len: usize,
        /// Whether any padding octet is non-zero.
        nonzero: bool,
    },
    /// Segments of a context must arrive in order and without gaps.
    #[error("context {index}: segment at offset {got}, expected {expected}")]
    SegmentOutOfOrder {
        /// Context index.
        index: u16,
        /// Offset expected next.
        expected: u64,
        /// Offset received.
        got: u64,
    },
    /// A segment names a context other than the current or the next one.
    #[error("segment for context {got}, expected context {expected}")]
    ContextIndexMismatch {
        /// Index expected.
        expected: u32,
        /// Index received.
        got: u16,
    },
    /// Segments of one context disagree on its total length, or overrun it.
    #[error(
        "context {index}: inconsistent length (announced {announced}, segment implies {implied})"
    )]
    ContextLengthMismatch {
        /// Context index.
        index: u16,
        /// Total length announced by the first segment.
        announced: u64,
        /// Length this segment implies.
        implied: u64,
    },
    /// A new context started, or the transfer ended, before a context was complete.
    #[error("context {index} incomplete: {received} of {total} octets")]
    IncompleteContext {
        /// Context index.
        index: u32,
        /// Octets received.
        received: u64,
        /// Octets announced.
        total: u64,
    },
    /// A manifest or continuation CDB anywhere but first in a CTD.
    #[error("transfer manifest CDB out of place (CDB #{position} of the CTD)")]
    ManifestOutOfPlace {
        /// Position of the CDB in its CTD.
        position: usize,
    },
    /// A manifest or continuation CDB with an unknown kind, version or size.
    #[error("malformed transfer manifest: {0}")]
    BadManifest(&'static str),
    /// The finished transfer disagrees with its manifest.
    #[error(
        "transfer disagrees with its manifest: {what} announced {announced}, received {received}"
    )]
    ManifestMismatch {
        /// Which total.
        what: &'static str,
        /// Value announced.
        announced: u64,
        /// Value received.
        received: u64,
    },
    /// A new transfer for the same MN began before this one finished.
    #[error("superseded by a new transfer for the same MN")]
    Superseded,
    /// Too many transfers are being reassembled at once.
    #[error("{limit} transfers already being reassembled")]
    TooManyIncoming {
        /// The configured limit.
        limit: usize,
    },
}

/// Why the endpoint refuses a local request.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EndpointError {
    /// RFC 4067 §2.5: one context transfer per MN at a time.
    #[error("a transfer for {mn} is already in flight")]
    TransferInFlight {
        /// The MN.
        mn: IpAddr,
    },
    /// `reply` for an MN whose transfer is not (or no longer) known.
    #[error("no incoming transfer for {mn} to reply to")]
    NoIncomingTransfer {
        /// The MN.
        mn: IpAddr,
    },
    /// `cancel` for an MN with no transfer either way.
    #[error("no transfer for {mn} to cancel")]
    NoTransfer {
        /// The MN.
        mn: IpAddr,
    },
    /// The contexts cannot be carried.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// A message cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The stream lost framing earlier; the connection must be replaced.
    #[error("stream framing lost earlier; the connection is unusable")]
    StreamBroken,
}

/// The byte stream can no longer be parsed: the connection must be closed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("CXTP stream framing lost at stream offset {offset}: {cause}")]
pub struct FramingLost {
    /// Offset (octets since the connection started) of the bad header.
    pub offset: u64,
    /// What was wrong with the header.
    pub cause: DecodeError,
}

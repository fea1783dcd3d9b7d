//! Typed errors. Every malformed frame maps to one of these; decoding never panics.

use crate::header::Mid;

/// Why a byte sequence is not a valid MIH frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: needed {needed} more octet(s) while reading {what}")]
    Truncated { what: &'static str, needed: usize },
    #[error("unsupported MIH protocol version {0} (only version 1 is defined)")]
    BadVersion(u8),
    #[error("payload length field says {declared} octets but {actual} follow the header")]
    PayloadLengthMismatch { declared: usize, actual: usize },
    #[error("frame is fragment {number} (more={more}); reassembly is not supported")]
    Fragmented { number: u8, more: bool },
    #[error("TLV length uses {0} length octets; at most 4 are accepted")]
    LengthTooWide(u8),
    #[error("TLV of type {tlv_type} claims {claimed} octets but only {available} remain")]
    TlvOverrun {
        tlv_type: u8,
        claimed: usize,
        available: usize,
    },
    #[error("first TLVs must be Source (1) then Destination (2) MIHF ID, found type {found}")]
    MissingMihfIds { found: u8 },
    #[error("MIHF ID of {0} octets exceeds the 253-octet limit")]
    MihfIdTooLong(usize),
    #[error("mandatory TLV {tlv_type} ({name}) missing from {message}")]
    MissingTlv {
        message: &'static str,
        tlv_type: u8,
        name: &'static str,
    },
    #[error("TLV {tlv_type} appears twice in {message}")]
    DuplicateTlv { message: &'static str, tlv_type: u8 },
    #[error("TLV {tlv_type} ({name}) value is malformed: {reason}")]
    BadTlvValue {
        tlv_type: u8,
        name: &'static str,
        reason: &'static str,
    },
    #[error("unknown or unsupported message {0}")]
    UnknownMessage(Mid),
    #[error("ACK frame carries {0} octet(s) of TLVs after the MIHF IDs")]
    AckWithPayload(usize),
}

/// Why a value cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("payload of {0} octets exceeds the 65,535-octet limit of the MIH header")]
    PayloadTooLarge(usize),
    #[error("MIHF ID of {0} octets exceeds the 253-octet limit")]
    MihfIdTooLong(usize),
    #[error("fragment number {0} does not fit in 7 bits")]
    BadFragmentNumber(u8),
    #[error("{what} has {len} elements; an MIH list of this kind holds at most {max}")]
    ListTooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

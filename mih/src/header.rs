//! The 8-octet MIH protocol header (IEEE 802.21 §8.4.1).
//!
//! ```text
//!  octet 0: Version(4) | ACK-Req | ACK-Rsp | UIR | M
//!  octet 1: FN(7) | reserved(1)
//!  octet 2-3: MID = SID(4) | Opcode(2) | AID(10)
//!  octet 4-5: reserved(4) | TID(12)
//!  octet 6-7: payload length (octets after the header)
//! ```

use crate::error::DecodeError;
use std::fmt;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 8;
/// The only protocol version defined by IEEE 802.21.
pub const VERSION: u8 = 1;

/// MIH service identifier (SID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceId {
    Management = 1,
    Event = 2,
    Command = 3,
    Information = 4,
}

/// Operation code of a message: which SAP primitive it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    Confirm = 0,
    Request = 1,
    Response = 2,
    Indication = 3,
}

impl Opcode {
    fn from_bits(bits: u16) -> Self {
        match bits & 0b11 {
            0 => Opcode::Confirm,
            1 => Opcode::Request,
            2 => Opcode::Response,
            _ => Opcode::Indication,
        }
    }
}

/// Message identifier: SID, opcode and action identifier packed in 16 bits.
///
/// Kept as the raw value so that unknown SIDs survive a decode (and an ACK can
/// echo any MID it is given).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mid(pub u16);

impl Mid {
    pub const fn new(sid: ServiceId, opcode: Opcode, aid: u16) -> Self {
        Mid(((sid as u16) << 12) | ((opcode as u16) << 10) | (aid & 0x3FF))
    }
    /// Raw 4-bit service identifier (unknown values are kept).
    pub const fn sid_raw(self) -> u8 {
        (self.0 >> 12) as u8
    }
    pub fn sid(self) -> Option<ServiceId> {
        match self.sid_raw() {
            1 => Some(ServiceId::Management),
            2 => Some(ServiceId::Event),
            3 => Some(ServiceId::Command),
            4 => Some(ServiceId::Information),
            _ => None,
        }
    }
    pub fn opcode(self) -> Opcode {
        Opcode::from_bits(self.0 >> 10)
    }
    pub const fn aid(self) -> u16 {
        self.0 & 0x3FF
    }
    /// The same action with another opcode (request -> indication, response -> confirm).
    pub fn with_opcode(self, opcode: Opcode) -> Mid {
        Mid((self.0 & !0x0C00) | ((opcode as u16) << 10))
    }
}

impl fmt::Debug for Mid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Mid(0x{:04X}: sid {} {:?} aid {})",
            self.0,
            self.sid_raw(),
            self.opcode(),
            self.aid()
        )
    }
}

impl fmt::Display for Mid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MID 0x{:04X}", self.0)
    }
}

/// 12-bit transaction identifier chosen by the requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid(u16);

impl Tid {
    pub const MAX: u16 = 0x0FFF;
    /// Keeps the low 12 bits.
    pub const fn new(v: u16) -> Self {
        Tid(v & Self::MAX)
    }
    pub const fn get(self) -> u16 {
        self.0
    }
    /// The next TID, wrapping within 12 bits.
    pub const fn next(self) -> Tid {
        Tid::new(self.0.wrapping_add(1))
    }
}

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Header flag bits of octet 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags {
    /// The sender wants this frame acknowledged.
    pub ack_req: bool,
    /// This frame acknowledges a frame with the same MID and TID.
    pub ack_rsp: bool,
    /// Unauthenticated information request.
    pub uir: bool,
}

/// The decoded fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub flags: Flags,
    /// M bit: more fragments follow.
    pub more_fragments: bool,
    /// FN: 7-bit fragment number.
    pub fragment_number: u8,
    pub mid: Mid,
    pub tid: Tid,
    pub payload_len: u16,
}

impl Header {
    /// Decodes the first 8 octets of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Header, DecodeError> {
        let Some(h) = buf.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::Truncated {
                what: "MIH header",
                needed: HEADER_LEN - buf.len(),
            });
        };
        let version = h[0] >> 4;
        if version != VERSION {
            return Err(DecodeError::BadVersion(version));
        }
        Ok(Header {
            flags: Flags {
                ack_req: h[0] & 0x08 != 0,
                ack_rsp: h[0] & 0x04 != 0,
                uir: h[0] & 0x02 != 0,
            },
            more_fragments: h[0] & 0x01 != 0,
            fragment_number: h[1] >> 1,
            mid: Mid(u16::from_be_bytes([h[2], h[3]])),
            tid: Tid::new(u16::from_be_bytes([h[4], h[5]])),
            payload_len: u16::from_be_bytes([h[6], h[7]]),
        })
    }

    /// Appends the 8 header octets. The fragment number is masked to 7 bits.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut b0 = VERSION << 4;
        if self.flags.ack_req {
            b0 |= 0x08;
        }
        if self.flags.ack_rsp {
            b0 |= 0x04;
        }
        if self.flags.uir {
            b0 |= 0x02;
        }
        if self.more_fragments {
            b0 |= 0x01;
        }
        out.push(b0);
        out.push((self.fragment_number & 0x7F) << 1);
        out.extend_from_slice(&self.mid.0.to_be_bytes());
        out.extend_from_slice(&self.tid.get().to_be_bytes());
        out.extend_from_slice(&self.payload_len.to_be_bytes());
    }
}

/// For stream transports (MIH over TCP): the total length of the frame that
/// starts at `buf[0]`, once its header is complete.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    let h = buf.first_chunk::<HEADER_LEN>()?;
    Some(HEADER_LEN + u16::from_be_bytes([h[6], h[7]]) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n2n_ho_commit_mids_match_the_standard_table() {
        let aid = 9;
        assert_eq!(Mid::new(ServiceId::Command, Opcode::Request, aid).0, 0x3409);
        assert_eq!(
            Mid::new(ServiceId::Command, Opcode::Response, aid).0,
            0x3809
        );
        assert_eq!(
            Mid::new(ServiceId::Command, Opcode::Indication, aid).0,
            0x3C09
        );
        assert_eq!(Mid::new(ServiceId::Command, Opcode::Confirm, aid).0, 0x3009);
        assert_eq!(Mid(0x3409).with_opcode(Opcode::Indication).0, 0x3C09);
    }

    #[test]
    fn header_bits_land_where_the_standard_puts_them() {
        let h = Header {
            flags: Flags {
                ack_req: true,
                ack_rsp: false,
                uir: true,
            },
            more_fragments: true,
            fragment_number: 0x55,
            mid: Mid(0x3409),
            tid: Tid::new(0xABC),
            payload_len: 0x0102,
        };
        let mut v = Vec::new();
        h.encode(&mut v);
        assert_eq!(v, [0x1B, 0xAA, 0x34, 0x09, 0x0A, 0xBC, 0x01, 0x02]);
        assert_eq!(Header::decode(&v).unwrap(), h);
    }

    #[test]
    fn reserved_tid_bits_are_ignored_and_bad_version_rejected() {
        let h = Header::decode(&[0x10, 0, 0x34, 0x09, 0xFA, 0xBC, 0, 0]).unwrap();
        assert_eq!(h.tid.get(), 0xABC);
        assert_eq!(
            Header::decode(&[0x20, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::BadVersion(2))
        );
        assert!(matches!(
            Header::decode(&[0x10, 0]),
            Err(DecodeError::Truncated { needed: 6, .. })
        ));
    }
}

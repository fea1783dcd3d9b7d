//! The 4-octet header every CXTP message starts with (RFC 4067 §2.5).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers.|  Type   |V|F| Reserved  |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `Vers.` (3 bits, = 1) and `Type` (5 bits) share the first octet, version
//! in its top bits. `V` = 1 means IPv4 addresses, 0 IPv6. `F` is the `A`
//! flag (acknowledgement requested) in CTAR, CTD and PCTD and the `S` flag
//! (all contexts received) in CTDR; CTAA, CTC and CT-Req draw it as part of
//! Reserved. Length counts the whole message in octets.

use crate::error::DecodeError;

/// Octets in the common header.
pub const HEADER_LEN: usize = 4;
/// The only protocol version (RFC 4067 §2.2).
pub const VERSION: u8 = 1;
/// Largest message the 16-bit Length field can describe.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

const V_BIT: u8 = 0x80;
const F_BIT: u8 = 0x40;

/// The seven RFC 4067 message types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// Context Transfer Activate Request, MN → AR.
    Ctar = 1,
    /// Context Transfer Activate Acknowledge, AR → MN.
    Ctaa = 2,
    /// Context Transfer Data, pAR → nAR.
    Ctd = 3,
    /// Predictive Context Transfer Data (carries key material), pAR → nAR.
    Pctd = 4,
    /// Context Transfer Data Reply, nAR → pAR.
    Ctdr = 5,
    /// Context Transfer Cancel, nAR → pAR.
    Ctc = 6,
    /// Context Transfer Request, nAR → pAR.
    CtReq = 7,
}

impl MessageType {
    /// Maps the 5-bit type code.
    pub fn from_code(code: u8) -> Result<Self, DecodeError> {
        Ok(match code {
            1 => Self::Ctar,
            2 => Self::Ctaa,
            3 => Self::Ctd,
            4 => Self::Pctd,
            5 => Self::Ctdr,
            6 => Self::Ctc,
            7 => Self::CtReq,
            other => return Err(DecodeError::UnknownType(other)),
        })
    }

    /// The name the RFC uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ctar => "CTAR",
            Self::Ctaa => "CTAA",
            Self::Ctd => "CTD",
            Self::Pctd => "PCTD",
            Self::Ctdr => "CTDR",
            Self::Ctc => "CTC",
            Self::CtReq => "CT-Req",
        }
    }
}

/// A decoded common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub msg_type: MessageType,
    /// `V` bit: addresses are IPv4.
    pub ipv4: bool,
    /// `A` or `S` bit (see the module docs); false where the bit is reserved.
    pub flag: bool,
    /// Length of the whole message in octets, header included.
    pub length: u16,
}

impl Header {
    /// Parses the first four octets. Checks version, type and that Length
    /// covers at least the header; reserved bits are ignored (RFC: "ignored
    /// by the receiver").
    pub fn parse(input: &[u8]) -> Result<Self, DecodeError> {
        let Some(&[b0, b1, l0, l1]) = input.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::Truncated {
                field: "header",
                needed: HEADER_LEN,
                available: input.len(),
            });
        };
        let version = b0 >> 5;
        if version != VERSION {
            return Err(DecodeError::BadVersion(version));
        }
        let msg_type = MessageType::from_code(b0 & 0x1F)?;
        let length = u16::from_be_bytes([l0, l1]);
        if usize::from(length) < HEADER_LEN {
            return Err(DecodeError::LengthTooSmall(length));
        }
        let flag_defined = matches!(
            msg_type,
            MessageType::Ctar | MessageType::Ctd | MessageType::Pctd | MessageType::Ctdr
        );
        Ok(Header {
            msg_type,
            ipv4: b1 & V_BIT != 0,
            flag: flag_defined && b1 & F_BIT != 0,
            length,
        })
    }

    /// The four header octets.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut b1 = 0;
        if self.ipv4 {
            b1 |= V_BIT;
        }
        if self.flag {
            b1 |= F_BIT;
        }
        let [l0, l1] = self.length.to_be_bytes();
        [(VERSION << 5) | self.msg_type as u8, b1, l0, l1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_layout_matches_rfc_figure() {
        let h = Header {
            msg_type: MessageType::Ctdr,
            ipv4: true,
            flag: true,
            length: 0x0102,
        };
        // Version 1 in the top 3 bits, type 5 in the low 5: 0b001_00101.
        assert_eq!(h.to_bytes(), [0x25, 0xC0, 0x01, 0x02]);
        assert_eq!(Header::parse(&h.to_bytes()), Ok(h));
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(
            Header::parse(&[0x43, 0, 0, 8]),
            Err(DecodeError::BadVersion(2))
        );
        assert_eq!(
            Header::parse(&[0x28, 0, 0, 8]),
            Err(DecodeError::UnknownType(8))
        );
        assert_eq!(
            Header::parse(&[0x20, 0, 0, 8]),
            Err(DecodeError::UnknownType(0))
        );
        assert_eq!(
            Header::parse(&[0x23, 0, 0, 3]),
            Err(DecodeError::LengthTooSmall(3))
        );
        assert!(matches!(
            Header::parse(&[0x23, 0]),
            Err(DecodeError::Truncated { available: 2, .. })
        ));
    }

    #[test]
    fn reserved_flag_is_ignored_where_undefined() {
        // CTC with the A/S position set: reserved, so ignored.
        let h = Header::parse(&[0x26, 0x7F, 0, 8]).expect("valid");
        assert!(!h.flag);
        assert!(!h.ipv4);
    }
}

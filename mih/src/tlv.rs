//! Type-Length-Value encoding (IEEE 802.21 §8.5.1) and the cursor used to
//! parse TLV values.
//!
//! Length rule: a value of up to 128 octets has a one-octet length (0x80
//! meaning exactly 128). A longer value has a first length octet `0x80 | n`
//! followed by `n` octets holding `length - 128`. The same rule sizes LIST
//! and OCTET_STRING values inside TLVs.

use crate::error::DecodeError;

/// TLV type codes used by edgemob (IEEE 802.21 Table L.1 numbering).
pub mod tlv_type {
    pub const SOURCE_MIHF_ID: u8 = 1;
    pub const DESTINATION_MIHF_ID: u8 = 2;
    pub const STATUS: u8 = 3;
    pub const LINK_TYPE: u8 = 4;
    pub const MIH_EVENT_LIST: u8 = 5;
    pub const MIH_COMMAND_LIST: u8 = 6;
    pub const MIIS_QUERY_TYPE_LIST: u8 = 7;
    pub const TRANSPORT_OPTION_LIST: u8 = 8;
    pub const LINK_IDENTIFIER: u8 = 13;
    pub const NEW_LINK_IDENTIFIER: u8 = 14;
    pub const TIME_INTERVAL: u8 = 21;
    pub const HO_RESULT: u8 = 40;
    pub const RESOURCE_RETENTION_STATUS: u8 = 42;
    pub const MN_MIHF_ID: u8 = 52;
    pub const ASSIGNED_RESOURCE_SET: u8 = 57;
    pub const MN_LINK_ID: u8 = 59;
    pub const POA: u8 = 60;
    pub const REQUESTED_RESOURCE_SET: u8 = 63;
    pub const VENDOR_SPECIFIC: u8 = 100;
}

/// Most length octets accepted after the `0x80 | n` octet. Four octets
/// already describe values far larger than any MIH payload (65,535).
const MAX_LEN_OCTETS: u8 = 4;

/// Number of octets `encode_len(len)` writes.
pub fn len_of_len(len: usize) -> usize {
    if len <= 128 {
        1
    } else {
        1 + octets_for(len - 128)
    }
}

fn octets_for(v: usize) -> usize {
    let bits = usize::BITS - v.leading_zeros();
    (bits as usize).div_ceil(8).max(1)
}

/// Appends the length field for a value of `len` octets.
pub fn encode_len(len: usize, out: &mut Vec<u8>) {
    if len <= 128 {
        out.push(len as u8);
    } else {
        let extra = len - 128;
        let n = octets_for(extra);
        out.push(0x80 | n as u8);
        out.extend_from_slice(&extra.to_be_bytes()[usize::BITS as usize / 8 - n..]);
    }
}

/// Reads a length field; returns (length, octets consumed).
pub fn decode_len(buf: &[u8]) -> Result<(usize, usize), DecodeError> {
    let Some(&first) = buf.first() else {
        return Err(DecodeError::Truncated {
            what: "length",
            needed: 1,
        });
    };
    if first <= 128 {
        return Ok((first as usize, 1));
    }
    let n = first & 0x7F;
    if n > MAX_LEN_OCTETS {
        return Err(DecodeError::LengthTooWide(n));
    }
    let n = n as usize;
    let Some(octets) = buf.get(1..1 + n) else {
        return Err(DecodeError::Truncated {
            what: "extended length",
            needed: 1 + n - buf.len(),
        });
    };
    let extra = octets
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | b as usize);
    Ok((extra + 128, 1 + n))
}

/// One TLV borrowed from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tlv_type: u8,
    pub value: &'a [u8],
}

/// Iterates the TLVs of a payload; stops at the first malformed one.
#[derive(Debug, Clone)]
pub struct TlvReader<'a> {
    buf: &'a [u8],
}

impl<'a> TlvReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        TlvReader { buf }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }
}

impl<'a> Iterator for TlvReader<'a> {
    type Item = Result<Tlv<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&tlv_type, rest) = self.buf.split_first()?;
        let result = decode_len(rest).and_then(|(len, used)| {
            let body = &rest[used..];
            body.get(..len)
                .map(|value| (value, &body[len..]))
                .ok_or(DecodeError::TlvOverrun {
                    tlv_type,
                    claimed: len,
                    available: body.len(),
                })
        });
        match result {
            Ok((value, rest)) => {
                self.buf = rest;
                Some(Ok(Tlv { tlv_type, value }))
            }
            Err(e) => {
                self.buf = &[];
                Some(Err(e))
            }
        }
    }
}

/// Writes a TLV whose value is produced by `f`, fixing up the length field
/// afterwards so values need not be sized twice.
pub fn write_tlv(out: &mut Vec<u8>, tlv_type: u8, f: impl FnOnce(&mut Vec<u8>)) {
    out.push(tlv_type);
    let len_at = out.len();
    out.push(0);
    f(out);
    let len = out.len() - len_at - 1;
    if len <= 128 {
        out[len_at] = len as u8;
    } else {
        // Rare (only long vendor TLVs): make room for the extended length.
        let mut field = Vec::with_capacity(5);
        encode_len(len, &mut field);
        out.splice(len_at..len_at + 1, field);
    }
}

/// Bounds-checked reader over a TLV value. Every read names what it was
/// reading so errors say where a peer's frame went wrong.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    tlv_type: u8,
    name: &'static str,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], tlv_type: u8, name: &'static str) -> Self {
        Cursor {
            buf,
            tlv_type,
            name,
        }
    }

    pub fn bad(&self, reason: &'static str) -> DecodeError {
        DecodeError::BadTlvValue {
            tlv_type: self.tlv_type,
            name: self.name,
            reason,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(self.bad("value ends early"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A LIST or OCTET_STRING length.
    pub fn len(&mut self) -> Result<usize, DecodeError> {
        let (len, used) = decode_len(self.buf).map_err(|_| self.bad("bad length field"))?;
        self.buf = &self.buf[used..];
        Ok(len)
    }

    pub fn octet_string(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len()?;
        self.take(n)
    }

    /// A LIST length, refused when the remaining bytes cannot possibly hold
    /// that many elements of at least `min_elem` octets — so a forged count
    /// never drives an allocation.
    pub fn list_len(&mut self, min_elem: usize) -> Result<usize, DecodeError> {
        let n = self.len()?;
        if n.saturating_mul(min_elem.max(1)) > self.buf.len() {
            return Err(self.bad("list count exceeds the value's size"));
        }
        Ok(n)
    }

    /// Errors unless the whole value was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.bad("trailing octets after the value"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(len: usize) -> Vec<u8> {
        let mut v = Vec::new();
        encode_len(len, &mut v);
        v
    }

    #[test]
    fn length_field_follows_the_three_cases_of_the_standard() {
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(127), [0x7F]);
        assert_eq!(enc(128), [0x80]);
        assert_eq!(enc(129), [0x81, 0x01]);
        assert_eq!(enc(203), [0x81, 75]);
        assert_eq!(enc(128 + 255), [0x81, 0xFF]);
        assert_eq!(enc(128 + 256), [0x82, 0x01, 0x00]);
        assert_eq!(enc(65_535), [0x82, 0xFF, 0x7F]);
        for len in [0, 1, 127, 128, 129, 383, 384, 65_535, 1 << 20] {
            assert_eq!(decode_len(&enc(len)).unwrap(), (len, len_of_len(len)));
        }
    }

    #[test]
    fn bad_length_fields_are_typed_errors() {
        assert_eq!(
            decode_len(&[0x85, 0, 0, 0, 0, 0]),
            Err(DecodeError::LengthTooWide(5))
        );
        assert!(matches!(
            decode_len(&[0x82, 1]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode_len(&[]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn write_tlv_fixes_up_long_lengths() {
        let mut out = vec![0xEE];
        write_tlv(&mut out, 100, |o| o.extend(std::iter::repeat_n(7u8, 300)));
        assert_eq!(&out[..4], &[0xEE, 100, 0x81, (300 - 128) as u8]);
        assert_eq!(out.len(), 4 + 300);
        let tlvs: Vec<_> = TlvReader::new(&out[1..]).collect::<Result<_, _>>().unwrap();
        assert_eq!(tlvs.len(), 1);
        assert_eq!(tlvs[0].value.len(), 300);
    }

    #[test]
    fn reader_reports_overruns() {
        let bad = [1u8, 5, 1, 2];
        let r: Vec<_> = TlvReader::new(&bad).collect();
        assert_eq!(
            r,
            vec![Err(DecodeError::TlvOverrun {
                tlv_type: 1,
                claimed: 5,
                available: 2
            })]
        );
    }
}

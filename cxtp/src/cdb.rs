//! Context Data Blocks (RFC 4067 §2.4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Feature Profile Type (FPT)  |    Length     |P|  Reserved   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  Presence Vector (if P = 1)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~              Data, zero-padded to a multiple of 8             ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Length is the size of the whole block in 8-octet words, the first four
//! octets included, so a block is at most 255 × 8 = 2,040 octets and carries
//! at most 2,036 data octets (2,032 with a presence vector).
//!
//! The RFC gives a block no exact data length: "If the data is not 64 bit
//! aligned, the data field is padded with zeros", and the FPT's own
//! specification says where its data ends. So [`Cdb::data`] after decoding is
//! the whole Data field, padding included; encoding pads with zeros. A block
//! whose header + data is already a multiple of 8 round-trips unchanged.
//! edgemob's own FPTs put an exact length inside the data (see
//! [`crate::transfer`]).
//!
//! Request blocks in CTAR and CT-Req use the same layout. RFC 4067 §2.4 says
//! only "the first 4 octets are typically necessary"; since Length counts
//! 8-octet words, edgemob sends a data-less request as 8 octets (Length 1,
//! four zero pad octets) and accepts any valid block there.

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::fpt::Fpt;
use crate::wire::{Reader, pad8};

/// Octets of the FPT/Length/P head.
pub const CDB_HEAD_LEN: usize = 4;
/// Octets of the optional presence vector.
pub const PRESENCE_VECTOR_LEN: usize = 4;
/// Largest block: 255 words of 8 octets.
pub const MAX_CDB_LEN: usize = 255 * 8;
/// Most data one block carries (no presence vector).
pub const MAX_CDB_DATA: usize = MAX_CDB_LEN - CDB_HEAD_LEN;

const P_BIT: u8 = 0x80;

/// One Context Data Block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cdb {
    /// What the data is.
    pub fpt: Fpt,
    /// The presence vector, when the `P` bit is set.
    pub presence: Option<u32>,
    /// The Data field (padding included after decoding; see module docs).
    pub data: Bytes,
}

impl Cdb {
    /// A block without presence vector.
    pub fn new(fpt: Fpt, data: impl Into<Bytes>) -> Self {
        Cdb {
            fpt,
            presence: None,
            data: data.into(),
        }
    }

    /// A data-less request block, as CTAR and CT-Req carry: the 4-octet
    /// head plus the 4 zero octets that round it to one 8-octet word. The
    /// zeros are kept as data so the block decodes back to itself.
    pub fn request(fpt: Fpt) -> Self {
        Cdb::new(fpt, Bytes::from_static(&[0; 4]))
    }

    /// A block whose data is zero-padded to the 8-octet boundary now, so it
    /// decodes back to an equal value (copies `data` if padding is needed).
    pub fn padded(fpt: Fpt, presence: Option<u32>, data: Bytes) -> Self {
        let mut cdb = Cdb {
            fpt,
            presence,
            data,
        };
        let pad = cdb.encoded_len() - cdb.head_len() - cdb.data.len();
        if pad != 0 {
            let mut v = Vec::with_capacity(cdb.data.len() + pad);
            v.extend_from_slice(&cdb.data);
            v.resize(cdb.data.len() + pad, 0);
            cdb.data = v.into();
        }
        cdb
    }

    /// Octets before the data: head plus presence vector.
    pub fn head_len(&self) -> usize {
        CDB_HEAD_LEN
            + if self.presence.is_some() {
                PRESENCE_VECTOR_LEN
            } else {
                0
            }
    }

    /// Octets on the wire, padding included.
    pub fn encoded_len(&self) -> usize {
        pad8(self.head_len() + self.data.len())
    }

    /// Checks the block fits the 8-bit Length field.
    pub fn check(&self) -> Result<(), EncodeError> {
        let len = self.encoded_len();
        if len > MAX_CDB_LEN {
            Err(EncodeError::CdbTooLong { len })
        } else {
            Ok(())
        }
    }

    /// Writes the block. Call [`Cdb::check`] first: this only asserts in debug.
    pub(crate) fn put<B: BufMut + ?Sized>(&self, out: &mut B) {
        let len = self.encoded_len();
        debug_assert!(len <= MAX_CDB_LEN);
        put_cdb_head(out, self.fpt, len, self.presence);
        out.put_slice(&self.data);
        out.put_bytes(0, len - self.head_len() - self.data.len());
    }

    /// Reads one block at the reader's position.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Cdb, DecodeError> {
        let offset = r.position();
        let available = r.remaining();
        let fpt = Fpt(r.u16("CDB FPT")?);
        let words = r.u8("CDB length")?;
        let flags = r.u8("CDB flags")?;
        if words == 0 {
            return Err(DecodeError::CdbZeroLength { offset });
        }
        let claimed = usize::from(words) * 8;
        if claimed > available {
            return Err(DecodeError::CdbOverrun {
                offset,
                claimed,
                available,
            });
        }
        let mut rest = claimed - CDB_HEAD_LEN;
        let presence = if flags & P_BIT != 0 {
            rest -= PRESENCE_VECTOR_LEN; // claimed >= 8, so no underflow
            Some(r.u32("CDB presence vector")?)
        } else {
            None
        };
        let data = r.bytes(rest, "CDB data")?;
        Ok(Cdb {
            fpt,
            presence,
            data,
        })
    }
}

/// Writes a CDB head for a block of `total_len` octets (a multiple of 8,
/// at most [`MAX_CDB_LEN`]).
pub(crate) fn put_cdb_head<B: BufMut + ?Sized>(
    out: &mut B,
    fpt: Fpt,
    total_len: usize,
    presence: Option<u32>,
) {
    debug_assert!(total_len.is_multiple_of(8) && total_len <= MAX_CDB_LEN);
    out.put_u16(fpt.0);
    out.put_u8((total_len / 8) as u8);
    match presence {
        Some(pv) => {
            out.put_u8(P_BIT);
            out.put_u32(pv);
        }
        None => out.put_u8(0),
    }
}

/// Reads blocks until the reader is empty.
pub(crate) fn read_all(r: &mut Reader<'_>) -> Result<Vec<Cdb>, DecodeError> {
    let mut cdbs = Vec::new();
    while !r.is_empty() {
        cdbs.push(Cdb::read(r)?);
    }
    Ok(cdbs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(cdb: &Cdb) -> Cdb {
        let mut out = Vec::new();
        cdb.put(&mut out);
        assert_eq!(out.len(), cdb.encoded_len());
        let bytes = Bytes::from(out);
        let mut r = Reader::new(&bytes, 0);
        let back = Cdb::read(&mut r).expect("decodes");
        assert!(r.is_empty());
        back
    }

    #[test]
    fn pads_to_eight_and_keeps_aligned_data() {
        let cdb = Cdb::new(Fpt(1), vec![0xAA; 5]);
        assert_eq!(cdb.encoded_len(), 16);
        let back = roundtrip(&cdb);
        assert_eq!(
            &back.data[..],
            &[0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0, 0, 0, 0, 0, 0, 0][..]
        );

        let aligned = Cdb {
            fpt: Fpt(0x1234),
            presence: Some(0xDEAD_BEEF),
            data: Bytes::from(vec![7u8; 16]),
        };
        assert_eq!(roundtrip(&aligned), aligned);
    }

    #[test]
    fn wire_bytes() {
        let cdb = Cdb {
            fpt: Fpt(0x0102),
            presence: Some(0x0A0B_0C0D),
            data: Bytes::from_static(&[1, 2, 3]),
        };
        let mut out = Vec::new();
        cdb.put(&mut out);
        assert_eq!(
            out,
            [
                0x01, 0x02, 0x02, 0x80, 0x0A, 0x0B, 0x0C, 0x0D, 1, 2, 3, 0, 0, 0, 0, 0
            ]
        );
        let req = Cdb::request(Fpt(1));
        let mut out = Vec::new();
        req.put(&mut out);
        assert_eq!(out, [0, 1, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn size_limits() {
        assert!(Cdb::new(Fpt(1), vec![0; MAX_CDB_DATA]).check().is_ok());
        assert_eq!(
            Cdb::new(Fpt(1), vec![0; MAX_CDB_DATA + 1]).check(),
            Err(EncodeError::CdbTooLong { len: 2048 })
        );
        let mut with_pv = Cdb::new(Fpt(1), vec![0; MAX_CDB_DATA - 4]);
        with_pv.presence = Some(1);
        assert!(with_pv.check().is_ok());
        with_pv.data = Bytes::from(vec![0; MAX_CDB_DATA - 3]);
        assert!(with_pv.check().is_err());
    }

    #[test]
    fn rejects_zero_length_and_overrun() {
        let zero = Bytes::from_static(&[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Cdb::read(&mut Reader::new(&zero, 0)),
            Err(DecodeError::CdbZeroLength { offset: 0 })
        );
        let over = Bytes::from_static(&[0, 1, 2, 0, 0, 0, 0, 0]);
        assert_eq!(
            Cdb::read(&mut Reader::new(&over, 0)),
            Err(DecodeError::CdbOverrun {
                offset: 0,
                claimed: 16,
                available: 8
            })
        );
        let short = Bytes::from_static(&[0, 1]);
        assert!(matches!(
            Cdb::read(&mut Reader::new(&short, 0)),
            Err(DecodeError::Truncated { .. })
        ));
    }
}

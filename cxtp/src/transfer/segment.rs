//! The exact-length segment header edgemob puts at the start of the Data
//! field of every CDB with an edgemob FPT.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   FPT (edgemob block)         |    Length     |0|  Reserved   |  RFC CDB head
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        Context Index          |        Segment Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Context Offset                         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Context Length                         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~   Segment Length octets of the context, then 0..=7 zero octets ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Context Index is the context's position in the transfer; Context Offset
//! where this segment starts in it; Context Length its exact total size,
//! repeated in every segment so any segment can be checked on its own. The
//! padding is whatever the RFC's 8-octet rounding adds and must be zero.

use bytes::{BufMut, Bytes};

use crate::cdb::{CDB_HEAD_LEN, MAX_CDB_LEN};
use crate::error::TransferError;
use crate::fpt::Fpt;

/// Octets of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 12;
/// Most context octets one CDB carries: 2,040 − 4 − 12.
pub const MAX_SEGMENT_PAYLOAD: usize = MAX_CDB_LEN - CDB_HEAD_LEN - SEGMENT_HEADER_LEN;

/// A parsed segment: header fields plus the payload slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub index: u16,
    pub offset: u32,
    pub total: u32,
    pub payload: Bytes,
}

pub(crate) fn put_segment_header<B: BufMut + ?Sized>(
    out: &mut B,
    index: u16,
    seg_len: u16,
    offset: u32,
    total: u32,
) {
    out.put_u16(index);
    out.put_u16(seg_len);
    out.put_u32(offset);
    out.put_u32(total);
}

/// Parses the Data field of an edgemob-FPT CDB.
pub(crate) fn parse_segment(fpt: Fpt, data: &Bytes) -> Result<Segment, TransferError> {
    let Some(head) = data.first_chunk::<SEGMENT_HEADER_LEN>() else {
        return Err(TransferError::SegmentTooShort {
            fpt,
            len: data.len(),
        });
    };
    let index = u16::from_be_bytes([head[0], head[1]]);
    let seg_len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let offset = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let total = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    let available = data.len() - SEGMENT_HEADER_LEN;
    if seg_len > available {
        return Err(TransferError::SegmentOverrun {
            claimed: seg_len,
            available,
        });
    }
    let end = SEGMENT_HEADER_LEN + seg_len;
    let padding = data.get(end..).unwrap_or_default();
    let nonzero = padding.iter().any(|&b| b != 0);
    if padding.len() > 7 || nonzero {
        return Err(TransferError::BadPadding {
            len: padding.len(),
            nonzero,
        });
    }
    Ok(Segment {
        index,
        offset,
        total,
        payload: data.slice(SEGMENT_HEADER_LEN..end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(seg_len: u16, payload: &[u8], pad: &[u8]) -> Bytes {
        let mut v = Vec::new();
        put_segment_header(&mut v, 3, seg_len, 8, 100);
        v.extend_from_slice(payload);
        v.extend_from_slice(pad);
        Bytes::from(v)
    }

    #[test]
    fn parses_exact_length_and_checks_padding() {
        let seg = parse_segment(Fpt(0xE001), &data(3, b"abc", &[0; 5])).expect("valid");
        assert_eq!((seg.index, seg.offset, seg.total), (3, 8, 100));
        assert_eq!(&seg.payload[..], b"abc");
        assert_eq!(
            parse_segment(Fpt(0xE001), &data(3, b"abc", &[0, 0, 1])),
            Err(TransferError::BadPadding {
                len: 3,
                nonzero: true
            })
        );
        assert_eq!(
            parse_segment(Fpt(0xE001), &data(3, b"abc", &[0; 8])),
            Err(TransferError::BadPadding {
                len: 8,
                nonzero: false
            })
        );
        assert_eq!(
            parse_segment(Fpt(0xE001), &data(9, b"abc", &[])),
            Err(TransferError::SegmentOverrun {
                claimed: 9,
                available: 3
            })
        );
        assert_eq!(
            parse_segment(Fpt(0xE001), &Bytes::from_static(&[0; 8])),
            Err(TransferError::SegmentTooShort {
                fpt: Fpt(0xE001),
                len: 8
            })
        );
    }
}

//! A whole MIH protocol frame: header, Source and Destination MIHF ID TLVs,
//! then either a message's TLVs or nothing (an ACK).

use crate::error::{DecodeError, EncodeError};
use crate::header::{Flags, HEADER_LEN, Header, Mid, Tid};
use crate::message::Message;
use crate::tlv::{Cursor, TlvReader, tlv_type, write_tlv};
use crate::types::MihfId;

/// What follows the MIHF IDs.
// An ACK is small and a message large; frames are short-lived values on the
// stack, so boxing the message would only add an allocation per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Message(Message),
    /// A stand-alone acknowledgement of the frame with this MID (and the
    /// frame's TID). Acknowledgements piggybacked on a response are a
    /// `Message` frame with `flags.ack_rsp` set.
    Ack(Mid),
}

/// One MIH protocol frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub flags: Flags,
    pub tid: Tid,
    pub src: MihfId,
    pub dst: MihfId,
    pub body: Body,
}

impl Frame {
    /// A frame carrying `message`.
    pub fn message(src: MihfId, dst: MihfId, tid: Tid, message: Message) -> Frame {
        Frame {
            flags: Flags::default(),
            tid,
            src,
            dst,
            body: Body::Message(message),
        }
    }

    /// The ACK for a received frame with `mid` and `tid`.
    pub fn ack(src: MihfId, dst: MihfId, mid: Mid, tid: Tid) -> Frame {
        Frame {
            flags: Flags {
                ack_rsp: true,
                ..Flags::default()
            },
            tid,
            src,
            dst,
            body: Body::Ack(mid),
        }
    }

    pub fn mid(&self) -> Mid {
        match &self.body {
            Body::Message(m) => m.mid(),
            Body::Ack(mid) => *mid,
        }
    }

    /// Appends the encoded frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let mut flags = self.flags;
        if matches!(self.body, Body::Ack(_)) {
            flags.ack_rsp = true;
        }
        Header {
            flags,
            more_fragments: false,
            fragment_number: 0,
            mid: self.mid(),
            tid: self.tid,
            payload_len: 0,
        }
        .encode(out);
        write_tlv(out, tlv_type::SOURCE_MIHF_ID, |o| self.src.encode(o));
        write_tlv(out, tlv_type::DESTINATION_MIHF_ID, |o| self.dst.encode(o));
        if let Body::Message(m) = &self.body {
            m.encode_tlvs(out);
        }
        let payload = out.len() - start - HEADER_LEN;
        let Ok(len) = u16::try_from(payload) else {
            out.truncate(start);
            return Err(EncodeError::PayloadTooLarge(payload));
        };
        out[start + 6..start + 8].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(128);
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Decodes exactly one frame occupying all of `buf` (one datagram, or one
    /// frame cut from a stream with [`crate::frame_len`]).
    pub fn decode(buf: &[u8]) -> Result<Frame, DecodeError> {
        let header = Header::decode(buf)?;
        if header.more_fragments || header.fragment_number != 0 {
            return Err(DecodeError::Fragmented {
                number: header.fragment_number,
                more: header.more_fragments,
            });
        }
        let payload = &buf[HEADER_LEN..];
        if payload.len() != header.payload_len as usize {
            return Err(DecodeError::PayloadLengthMismatch {
                declared: header.payload_len as usize,
                actual: payload.len(),
            });
        }
        let mut tlvs = TlvReader::new(payload);
        let src = mihf_id_tlv(&mut tlvs, tlv_type::SOURCE_MIHF_ID)?;
        let dst = mihf_id_tlv(&mut tlvs, tlv_type::DESTINATION_MIHF_ID)?;
        let rest = &payload[payload.len() - tlvs.remaining()..];
        let body = if header.flags.ack_rsp && rest.is_empty() {
            Body::Ack(header.mid)
        } else {
            Body::Message(Message::decode_tlvs(header.mid, rest)?)
        };
        Ok(Frame {
            flags: header.flags,
            tid: header.tid,
            src,
            dst,
            body,
        })
    }
}

fn mihf_id_tlv(tlvs: &mut TlvReader<'_>, want: u8) -> Result<MihfId, DecodeError> {
    let tlv = match tlvs.next() {
        None => return Err(DecodeError::MissingMihfIds { found: 0 }),
        Some(r) => r?,
    };
    if tlv.tlv_type != want {
        return Err(DecodeError::MissingMihfIds {
            found: tlv.tlv_type,
        });
    }
    let name = if want == tlv_type::SOURCE_MIHF_ID {
        "source MIHF ID"
    } else {
        "destination MIHF ID"
    };
    let mut c = Cursor::new(tlv.value, want, name);
    let id = MihfId::decode(&mut c)?;
    c.finish()?;
    Ok(id)
}

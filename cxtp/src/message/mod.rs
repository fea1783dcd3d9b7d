//! The seven RFC 4067 messages as typed structs, and their codec.
//!
//! [`Message::encode`] writes into any [`BufMut`] (a reused `Vec<u8>` or
//! `BytesMut`) after checking sizes, so nothing is written on error and no
//! intermediate buffers are allocated. [`Message::decode_bytes`] slices CDB
//! data out of the input without copying; [`Message::decode`] copies a
//! borrowed input once into a `Bytes` and does the same.

mod ct_req;
mod ctaa;
mod ctar;
mod ctc;
mod ctd;
mod ctdr;

use std::net::IpAddr;

use bytes::{BufMut, Bytes, BytesMut};

pub use ct_req::CtReq;
pub use ctaa::Ctaa;
pub use ctar::Ctar;
pub use ctc::Ctc;
pub use ctd::{Ctd, Pctd};
pub use ctdr::Ctdr;

use crate::error::{DecodeError, EncodeError};
use crate::fpt::Fpt;
use crate::header::{HEADER_LEN, Header, MAX_MESSAGE_LEN, MessageType};
use crate::status::Status;
use crate::wire::Reader;

/// Shared codec shape of each message body.
pub(crate) trait Body: Sized {
    const TYPE: MessageType;
    fn ipv4(&self) -> bool;
    fn flag(&self) -> bool {
        false
    }
    fn body_len(&self) -> usize;
    fn check(&self) -> Result<(), EncodeError>;
    fn put_body<B: BufMut + ?Sized>(&self, out: &mut B);
    fn read_body(h: &Header, r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Any CXTP message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// Type 1.
    Ctar(Ctar),
    /// Type 2.
    Ctaa(Ctaa),
    /// Type 3.
    Ctd(Ctd),
    /// Type 4.
    Pctd(Pctd),
    /// Type 5.
    Ctdr(Ctdr),
    /// Type 6.
    Ctc(Ctc),
    /// Type 7.
    CtReq(CtReq),
}

macro_rules! each {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            Message::Ctar($m) => $e,
            Message::Ctaa($m) => $e,
            Message::Ctd($m) => $e,
            Message::Pctd($m) => $e,
            Message::Ctdr($m) => $e,
            Message::Ctc($m) => $e,
            Message::CtReq($m) => $e,
        }
    };
}

fn encoded_len_of<T: Body>(m: &T) -> usize {
    HEADER_LEN + m.body_len()
}

fn encode_body<T: Body, B: BufMut + ?Sized>(m: &T, out: &mut B) -> Result<usize, EncodeError> {
    m.check()?;
    let len = encoded_len_of(m);
    if len > MAX_MESSAGE_LEN {
        return Err(EncodeError::MessageTooLong { len });
    }
    let header = Header {
        msg_type: T::TYPE,
        ipv4: m.ipv4(),
        flag: m.flag(),
        length: len as u16, // checked above
    };
    out.put_slice(&header.to_bytes());
    m.put_body(out);
    Ok(len)
}

impl Message {
    /// The message type.
    pub fn msg_type(&self) -> MessageType {
        match self {
            Message::Ctar(_) => MessageType::Ctar,
            Message::Ctaa(_) => MessageType::Ctaa,
            Message::Ctd(_) => MessageType::Ctd,
            Message::Pctd(_) => MessageType::Pctd,
            Message::Ctdr(_) => MessageType::Ctdr,
            Message::Ctc(_) => MessageType::Ctc,
            Message::CtReq(_) => MessageType::CtReq,
        }
    }

    /// The MN the message is about.
    pub fn mn(&self) -> IpAddr {
        each!(self, m => m.mn)
    }

    /// Octets [`Message::encode`] will write.
    pub fn encoded_len(&self) -> usize {
        each!(self, m => encoded_len_of(m))
    }

    /// Appends the message to `out`; returns the octets written. On error
    /// nothing is written.
    pub fn encode<B: BufMut + ?Sized>(&self, out: &mut B) -> Result<usize, EncodeError> {
        each!(self, m => encode_body(m, out))
    }

    /// Encodes into a new buffer of exactly the right size.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(self.encoded_len().min(MAX_MESSAGE_LEN));
        self.encode(&mut out)?;
        Ok(out.freeze())
    }

    /// Decodes exactly one message from a borrowed buffer (copied once).
    pub fn decode(input: &[u8]) -> Result<Message, DecodeError> {
        // Validate the header before copying, so garbage costs no allocation.
        check_frame(input)?;
        Self::decode_bytes(&Bytes::copy_from_slice(input))
    }

    /// Decodes exactly one message; CDB data and keys are zero-copy slices
    /// of `input`.
    pub fn decode_bytes(input: &Bytes) -> Result<Message, DecodeError> {
        let h = check_frame(input)?;
        let mut r = Reader::new(input, HEADER_LEN);
        Ok(match h.msg_type {
            MessageType::Ctar => Message::Ctar(Ctar::read_body(&h, &mut r)?),
            MessageType::Ctaa => Message::Ctaa(Ctaa::read_body(&h, &mut r)?),
            MessageType::Ctd => Message::Ctd(Ctd::read_body(&h, &mut r)?),
            MessageType::Pctd => Message::Pctd(Pctd::read_body(&h, &mut r)?),
            MessageType::Ctdr => Message::Ctdr(Ctdr::read_body(&h, &mut r)?),
            MessageType::Ctc => Message::Ctc(Ctc::read_body(&h, &mut r)?),
            MessageType::CtReq => Message::CtReq(CtReq::read_body(&h, &mut r)?),
        })
    }
}

/// Parses the header and checks its Length against the input.
fn check_frame(input: &[u8]) -> Result<Header, DecodeError> {
    let h = Header::parse(input)?;
    if usize::from(h.length) != input.len() {
        return Err(DecodeError::LengthMismatch {
            declared: usize::from(h.length),
            actual: input.len(),
        });
    }
    Ok(h)
}

pub(crate) fn no_trailing(r: &Reader<'_>, message: &'static str) -> Result<(), DecodeError> {
    match r.remaining() {
        0 => Ok(()),
        extra => Err(DecodeError::TrailingBytes { message, extra }),
    }
}

pub(crate) fn put_statuses<B: BufMut + ?Sized>(out: &mut B, statuses: &[(Fpt, Status)]) {
    for (fpt, status) in statuses {
        out.put_u16(fpt.0);
        out.put_u8(status.0);
        out.put_u8(0);
    }
}

pub(crate) fn read_statuses(
    r: &mut Reader<'_>,
    message: &'static str,
) -> Result<Vec<(Fpt, Status)>, DecodeError> {
    let extra = r.remaining() % 4;
    if extra != 0 {
        return Err(DecodeError::TrailingBytes { message, extra });
    }
    let mut out = Vec::with_capacity(r.remaining() / 4);
    while !r.is_empty() {
        let fpt = Fpt(r.u16("status FPT")?);
        let status = Status(r.u8("status code")?);
        r.u8("status reserved")?;
        out.push((fpt, status));
    }
    Ok(out)
}

impl From<Ctar> for Message {
    fn from(m: Ctar) -> Self {
        Message::Ctar(m)
    }
}
impl From<Ctaa> for Message {
    fn from(m: Ctaa) -> Self {
        Message::Ctaa(m)
    }
}
impl From<Ctd> for Message {
    fn from(m: Ctd) -> Self {
        Message::Ctd(m)
    }
}
impl From<Pctd> for Message {
    fn from(m: Pctd) -> Self {
        Message::Pctd(m)
    }
}
impl From<Ctdr> for Message {
    fn from(m: Ctdr) -> Self {
        Message::Ctdr(m)
    }
}
impl From<Ctc> for Message {
    fn from(m: Ctc) -> Self {
        Message::Ctc(m)
    }
}
impl From<CtReq> for Message {
    fn from(m: CtReq) -> Self {
        Message::CtReq(m)
    }
}

#[cfg(test)]
mod tests;

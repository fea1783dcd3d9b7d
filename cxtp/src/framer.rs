//! Cuts a TCP byte stream into CXTP messages.
//!
//! RFC 4067 runs over SCTP, which preserves message boundaries; edgemob runs
//! over one TCP connection per peer, so boundaries come from each message's
//! own 16-bit Length. Feed chunks of any size with [`Framer::push`]; take
//! whole messages with [`Framer::next_frame`].
//!
//! A header with a wrong version or a Length below 4 means the stream is
//! desynchronised (or not CXTP): there is no way to find the next message,
//! so the framer reports [`FramingLost`] and stays failed. A message with a
//! good header but an unknown type or a bad body is still cut out whole;
//! decoding it is the caller's business, and the stream goes on.

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, FramingLost};
use crate::header::{HEADER_LEN, VERSION};

/// Stream-to-message cutter.
#[derive(Debug, Default)]
pub struct Framer {
    buf: BytesMut,
    consumed: u64,
    failed: Option<FramingLost>,
}

impl Framer {
    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received octets.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// Appends received octets without copying them where it can: taken
    /// as the buffer when nothing is pending, joined in place when they
    /// continue the pending octets in the same allocation (the usual case
    /// when each read's octets are split off one read buffer).
    pub fn push_owned(&mut self, chunk: BytesMut) {
        if self.failed.is_some() {
            return;
        }
        if self.buf.is_empty() {
            self.buf = chunk;
        } else {
            self.buf.unsplit(chunk);
        }
    }

    /// Octets buffered that do not yet form a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the stream is lost.
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// The next whole message, `Ok(None)` if more octets are needed, or the
    /// (sticky) framing error.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FramingLost> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(&[b0, _, l0, l1]) = self.buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let version = b0 >> 5;
        let len = u16::from_be_bytes([l0, l1]);
        let cause = if version != VERSION {
            Some(DecodeError::BadVersion(version))
        } else if usize::from(len) < HEADER_LEN {
            Some(DecodeError::LengthTooSmall(len))
        } else {
            None
        };
        if let Some(cause) = cause {
            let e = FramingLost {
                offset: self.consumed,
                cause,
            };
            self.failed = Some(e.clone());
            self.buf = BytesMut::new();
            return Err(e);
        }
        let len = usize::from(len);
        if self.buf.len() < len {
            // No reserve for the claimed length: memory follows received octets.
            return Ok(None);
        }
        self.consumed += len as u64;
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_messages_across_chunks() {
        let ctc = [0x26, 0x80, 0x00, 0x08, 192, 0, 2, 1];
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend_from_slice(&ctc);
        }
        let mut f = Framer::new();
        let mut got = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            while let Some(frame) = f.next_frame().expect("in sync") {
                got.push(frame);
            }
        }
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|g| g[..] == ctc));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn owned_chunks_are_cut_like_copied_ones() {
        let ctc = [0x26, 0x80, 0x00, 0x08, 192, 0, 2, 1];
        let mut read = BytesMut::new();
        for _ in 0..3 {
            read.extend_from_slice(&ctc);
        }
        let mut f = Framer::new();
        let mut got = Vec::new();
        // Splits at every offset: the pending part and the next chunk are
        // neighbours in the read buffer, as when a socket is read into it.
        for cut in [3, 8, 13, 24] {
            let chunk = read.split_to(cut - (24 - read.len()));
            f.push_owned(chunk);
            while let Some(frame) = f.next_frame().expect("in sync") {
                got.push(frame);
            }
        }
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|g| g[..] == ctc));
        // A chunk from elsewhere is copied in.
        f.push_owned(BytesMut::from(&ctc[..5]));
        f.push_owned(BytesMut::from(&ctc[5..]));
        assert_eq!(f.next_frame().expect("in sync").as_deref(), Some(&ctc[..]));
    }

    #[test]
    fn unknown_type_is_still_cut_but_bad_version_is_fatal() {
        let mut f = Framer::new();
        f.push(&[0x3F, 0, 0, 5, 9, 0x43, 0, 0, 8]);
        assert_eq!(
            f.next_frame().expect("in sync").as_deref(),
            Some(&[0x3F, 0, 0, 5, 9][..])
        );
        let e = f.next_frame().expect_err("version 2");
        assert_eq!(e.offset, 5);
        assert_eq!(e.cause, DecodeError::BadVersion(2));
        assert!(f.is_failed());
        f.push(&[0x26, 0x80, 0, 8, 1, 2, 3, 4]);
        assert!(f.next_frame().is_err(), "failure is sticky");
    }

    #[test]
    fn short_length_is_fatal() {
        let mut f = Framer::new();
        f.push(&[0x23, 0, 0, 2]);
        assert_eq!(
            f.next_frame().expect_err("lost").cause,
            DecodeError::LengthTooSmall(2)
        );
    }
}

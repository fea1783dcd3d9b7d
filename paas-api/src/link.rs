//! The service link's framing: [`LinkFrame`] messages on a Unix stream
//! socket, each preceded by its length (4 octets, big-endian).
//!
//! The link is the hot path between a service and its agent (see the top of
//! `paas.proto`): the gRPC messages of the calls and events a migration
//! waits on, without HTTP/2. This module only turns frames into octets and
//! back; the agent and the SDK do the I/O.

use crate::v1::LinkFrame;
use bytes::{Buf, BytesMut};
use prost::Message;

/// Where the service link of the API socket at `api` lives.
pub fn link_path(api: &std::path::Path) -> std::path::PathBuf {
    let mut p = api.as_os_str().to_owned();
    p.push(".link");
    std::path::PathBuf::from(p)
}

/// Largest frame accepted: a 16 MiB context plus the rest of its message.
pub const MAX_FRAME: usize = 17 << 20;

/// Octets of the length prefix.
pub const PREFIX: usize = 4;

/// Why a link's byte stream cannot be read further.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("service-link frame of {0} octets exceeds the {MAX_FRAME}-octet limit")]
    TooLong(usize),
    #[error("service-link frame does not decode: {0}")]
    Malformed(#[from] prost::DecodeError),
}

/// One frame, length prefix included, ready to be written in one go.
pub fn encode(frame: &LinkFrame) -> Vec<u8> {
    let len = frame.encoded_len();
    let mut out = Vec::with_capacity(PREFIX + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    frame
        .encode(&mut out)
        .expect("a Vec grows as needed, so encoding cannot run out of space");
    out
}

/// Spare room kept in a [`Decoder`]'s buffer for the next read: a 75 KB
/// context arrives in one allocation, without growing the buffer halfway.
pub const READ_ROOM: usize = 256 << 10;

/// Reassembles frames from what was read, however it was split.
///
/// Frames are cut out of the buffer the socket was read into and decoded
/// from it without a copy: a context in a frame (`bytes` fields are
/// [`bytes::Bytes`]) shares the buffer's memory. Read with
/// [`Decoder::read_buf`]; [`Decoder::extend`] copies.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Appends octets read elsewhere.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The buffer to read the socket into (with `read_buf`), with room for
    /// the rest of the frame being read or [`READ_ROOM`], whichever is more.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        let room = self.wanted().max(READ_ROOM / 4);
        if self.buf.capacity() - self.buf.len() < room {
            self.buf.reserve(room.max(READ_ROOM));
        }
        &mut self.buf
    }

    /// Octets of a frame still expected: a hint for how much to read.
    pub fn wanted(&self) -> usize {
        match self.buf.first_chunk::<PREFIX>() {
            None => PREFIX - self.buf.len(),
            Some(p) => {
                let len = (u32::from_be_bytes(*p) as usize).min(MAX_FRAME);
                (len + PREFIX).saturating_sub(self.buf.len())
            }
        }
    }

    /// The next complete frame, if one has arrived. After an error the
    /// stream is out of step and must be closed.
    pub fn next_frame(&mut self) -> Result<Option<LinkFrame>, LinkError> {
        let Some(prefix) = self.buf.first_chunk::<PREFIX>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > MAX_FRAME {
            return Err(LinkError::TooLong(len));
        }
        if self.buf.len() < PREFIX + len {
            return Ok(None);
        }
        self.buf.advance(PREFIX);
        let frame = self.buf.split_to(len).freeze();
        Ok(Some(LinkFrame::decode(frame)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{self as pb, link_frame::Frame};
    use proptest::prelude::*;

    fn call(id: u32, context: Vec<u8>) -> LinkFrame {
        LinkFrame {
            frame: Some(Frame::Call(pb::LinkCall {
                id,
                call: Some(pb::link_call::Call::ExportContext(
                    pb::ExportContextRequest {
                        service_handle: 7,
                        migration_id: 9,
                        ue: "ue-1".into(),
                        context: context.into(),
                        fpt: 0xE002,
                        error: String::new(),
                    },
                )),
            })),
        }
    }

    #[test]
    fn frames_survive_any_split() {
        let frames = [
            call(1, vec![5; 75_000]),
            LinkFrame {
                frame: Some(Frame::Result(pb::LinkResult {
                    id: 1,
                    code: 5,
                    message: "no export pending".into(),
                })),
            },
            call(2, Vec::new()),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(encode).collect();
        for step in [1, 3, 4, 1000, 70_000, wire.len()] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(step) {
                d.extend(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "split every {step} octets");
            assert_eq!(d.wanted(), PREFIX);
        }
    }

    #[test]
    fn wanted_counts_the_rest_of_a_frame() {
        let wire = encode(&call(1, vec![1; 100]));
        let mut d = Decoder::new();
        assert_eq!(d.wanted(), 4);
        d.extend(&wire[..2]);
        assert_eq!(d.wanted(), 2);
        d.extend(&wire[2..10]);
        assert_eq!(d.wanted(), wire.len() - 10);
    }

    #[test]
    fn oversized_and_malformed_frames_are_errors() {
        let mut d = Decoder::new();
        d.extend(&((MAX_FRAME + 1) as u32).to_be_bytes());
        assert!(matches!(d.next_frame(), Err(LinkError::TooLong(_))));

        let mut d = Decoder::new();
        d.extend(&[0, 0, 0, 2, 0xFF, 0xFF]);
        assert!(matches!(d.next_frame(), Err(LinkError::Malformed(_))));
    }

    proptest! {
        #[test]
        fn arbitrary_octets_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut d = Decoder::new();
            d.extend(&data);
            for _ in 0..64 {
                match d.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }

        #[test]
        fn round_trips(id in 1u32.., ctx in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let f = call(id, ctx);
            let mut d = Decoder::new();
            d.extend(&encode(&f));
            prop_assert_eq!(d.next_frame().unwrap(), Some(f));
        }
    }
}

//! The service link's framing: [`LinkFrame`] messages on a Unix stream
//! socket, each preceded by its length (4 octets, big-endian).
//!
//! The link is the hot path between a service and its agent (see the top of
//! `paas.proto`): the gRPC messages of the calls and events a migration
//! waits on, without HTTP/2. This module only turns frames into octets and
//! back; the agent and the SDK do the I/O.

use crate::v1::LinkFrame;
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

/// Reassembles frames from what was read, however it was split.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the first unconsumed octet in `buf`.
    at: usize,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Appends octets read from the socket.
    pub fn extend(&mut self, data: &[u8]) {
        if self.at > 0 && self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Octets of a frame still expected: a hint for how much to read.
    pub fn wanted(&self) -> usize {
        let have = &self.buf[self.at..];
        match have.first_chunk::<PREFIX>() {
            None => PREFIX - have.len(),
            Some(p) => (u32::from_be_bytes(*p) as usize + PREFIX).saturating_sub(have.len()),
        }
    }

    /// The next complete frame, if one has arrived. After an error the
    /// stream is out of step and must be closed.
    pub fn next_frame(&mut self) -> Result<Option<LinkFrame>, LinkError> {
        let have = &self.buf[self.at..];
        let Some(prefix) = have.first_chunk::<PREFIX>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > MAX_FRAME {
            return Err(LinkError::TooLong(len));
        }
        if have.len() < PREFIX + len {
            return Ok(None);
        }
        let frame = LinkFrame::decode(&have[PREFIX..PREFIX + len])?;
        self.at += PREFIX + len;
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        } else if self.at > (1 << 20) && self.at * 2 > self.buf.len() {
            // Keep the buffer from growing without bound under a steady stream.
            self.buf.drain(..self.at);
            self.at = 0;
        }
        Ok(Some(frame))
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
                        context,
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

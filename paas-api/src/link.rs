//! The service link's framing: [`LinkFrame`] messages on a Unix stream
//! socket, each preceded by its length (4 octets, big-endian).
//!
//! The link is the hot path between a service and its agent (see the top of
//! `paas.proto`): the gRPC messages of the calls and events a migration
//! waits on, without HTTP/2. This module only turns frames into octets and
//! back; the agent and the SDK do the I/O.

use crate::v1::LinkFrame;
use bytes::{Buf, Bytes, BytesMut};
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

/// A frame split for one vectored write: `head` then `tail`, the context
/// the frame carries (empty for frames without one). The context is not
/// copied into the encoding; together the two are a valid encoding of the
/// frame, with the context field last (protobuf allows fields in any order).
#[derive(Debug, Clone, PartialEq)]
pub struct Parts {
    pub head: Vec<u8>,
    pub tail: Bytes,
}

/// Encodes `frame` as [`Parts`]: an ExportContext call or a ContextArrived
/// event with its context in `tail`, anything else whole in `head`.
pub fn encode_parts(frame: LinkFrame) -> Parts {
    use crate::v1::{link_call::Call, link_frame::Frame, service_event::Event};
    /// LinkFrame.event, ServiceEvent.context_arrived, LinkFrame.call,
    /// LinkCall.export_context, and the context field of both messages.
    const EVENT: u32 = 2;
    const CONTEXT_ARRIVED: u32 = 2;
    const CALL: u32 = 3;
    const EXPORT_CONTEXT: u32 = 2;
    const CONTEXT: u32 = 4;
    match frame.frame {
        Some(Frame::Event(crate::v1::ServiceEvent {
            event: Some(Event::ContextArrived(mut e)),
        })) if !e.context.is_empty() => {
            let ctx = std::mem::take(&mut e.context);
            nested(
                &[(Vec::new(), EVENT), (Vec::new(), CONTEXT_ARRIVED)],
                e.encode_to_vec(),
                CONTEXT,
                ctx,
            )
        }
        Some(Frame::Call(crate::v1::LinkCall {
            id,
            call: Some(Call::ExportContext(mut r)),
        })) if !r.context.is_empty() => {
            let ctx = std::mem::take(&mut r.context);
            let outer = crate::v1::LinkCall { id, call: None }.encode_to_vec();
            nested(
                &[(Vec::new(), CALL), (outer, EXPORT_CONTEXT)],
                r.encode_to_vec(),
                CONTEXT,
                ctx,
            )
        }
        other => Parts {
            head: encode(&LinkFrame { frame: other }),
            tail: Bytes::new(),
        },
    }
}

/// The length prefix and each level's other fields and key, outermost
/// first, down to `inner` and the key of the `field` that `tail` closes.
fn nested(levels: &[(Vec<u8>, u32)], inner: Vec<u8>, field: u32, tail: Bytes) -> Parts {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
    // Inside out: the length of each level's body.
    let mut lens = vec![0usize; levels.len() + 1];
    lens[levels.len()] =
        inner.len() + key_len(field) + encoded_len_varint(tail.len() as u64) + tail.len();
    for (i, (other, tag)) in levels.iter().enumerate().rev() {
        let body = lens[i + 1];
        lens[i] = other.len() + key_len(*tag) + encoded_len_varint(body as u64) + body;
    }
    let mut head = Vec::with_capacity(PREFIX + lens[0] - tail.len());
    head.extend_from_slice(&(lens[0] as u32).to_be_bytes());
    for (i, (other, tag)) in levels.iter().enumerate() {
        head.extend_from_slice(other);
        encode_key(*tag, WireType::LengthDelimited, &mut head);
        encode_varint(lens[i + 1] as u64, &mut head);
    }
    head.extend_from_slice(&inner);
    encode_key(field, WireType::LengthDelimited, &mut head);
    encode_varint(tail.len() as u64, &mut head);
    Parts { head, tail }
}

/// Writes `parts` in as few system calls as the socket allows: one
/// `writev` for both, so the reader wakes once for the frame.
pub async fn write_parts<W>(wr: &mut W, parts: &Parts) -> std::io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let (mut head, mut tail) = (&parts.head[..], &parts.tail[..]);
    while !head.is_empty() {
        let n = wr
            .write_vectored(&[std::io::IoSlice::new(head), std::io::IoSlice::new(tail)])
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        tail = &tail[n - from_head..];
    }
    wr.write_all(tail).await
}

/// Spare room kept in a [`Decoder`]'s buffer for the next read: a 75 KB
/// context arrives in one allocation, without growing the buffer halfway.
pub const READ_ROOM: usize = 256 << 10;

/// Readies `buf` for the next socket read: it keeps free room for the
/// `wanted` octets still expected, and at least a quarter of
/// [`READ_ROOM`]; when it has less, it grows by that or [`READ_ROOM`],
/// whichever is more, so a message is not read into a buffer that must grow
/// (and copy) halfway. The service link's decoder and the agent's CXTP
/// readers share this policy.
pub fn make_room(buf: &mut BytesMut, wanted: usize) {
    let room = wanted.max(READ_ROOM / 4);
    if buf.capacity() - buf.len() < room {
        buf.reserve(room.max(READ_ROOM));
    }
}

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
    /// the rest of the frame being read (see [`make_room`]).
    pub fn read_buf(&mut self) -> &mut BytesMut {
        let wanted = self.wanted();
        make_room(&mut self.buf, wanted);
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

    fn arrived(context: Vec<u8>, conns: u32) -> LinkFrame {
        LinkFrame {
            frame: Some(Frame::Event(pb::ServiceEvent {
                event: Some(pb::service_event::Event::ContextArrived(
                    pb::ContextArrived {
                        migration_id: u64::MAX - 3,
                        ue: "ue-10.77.1.2".into(),
                        ue_address: "10.77.1.2".into(),
                        context: context.into(),
                        fpt: 0xE002,
                        connections: (0..conns)
                            .map(|i| pb::ArrivedConnection {
                                connection_id: i,
                                fd_token: u64::from(i) << 40,
                            })
                            .collect(),
                        source_cell: 1,
                    },
                )),
            })),
        }
    }

    /// What a reader of `parts` gets.
    fn joined(p: &Parts) -> LinkFrame {
        let mut d = Decoder::new();
        d.extend(&p.head);
        d.extend(&p.tail);
        let f = d.next_frame().unwrap().expect("one whole frame");
        assert_eq!(d.wanted(), PREFIX, "nothing left over");
        f
    }

    #[test]
    fn parts_carry_the_context_outside_the_head() {
        for f in [call(7, vec![3; 75_000]), arrived(vec![9; 75_000], 2)] {
            let p = encode_parts(f.clone());
            assert_eq!(p.tail.len(), 75_000);
            assert!(p.head.len() < 200, "{}", p.head.len());
            assert_eq!(joined(&p), f);
            assert_eq!(p.head.len() + p.tail.len(), encode(&f).len());
        }
        // Frames without a context are encoded whole.
        for f in [call(8, Vec::new()), arrived(Vec::new(), 1)] {
            let p = encode_parts(f.clone());
            assert!(p.tail.is_empty());
            assert_eq!(p.head, encode(&f));
        }
    }

    #[tokio::test]
    async fn write_parts_writes_one_frame() {
        let (mut a, mut b) = tokio::io::duplex(1 << 10);
        let f = arrived(vec![5; 40_000], 1);
        let p = encode_parts(f.clone());
        let writer = tokio::spawn(async move { write_parts(&mut a, &p).await });
        let mut d = Decoder::new();
        loop {
            if let Some(got) = d.next_frame().unwrap() {
                assert_eq!(got, f);
                break;
            }
            let n = tokio::io::AsyncReadExt::read_buf(&mut b, d.read_buf())
                .await
                .unwrap();
            assert!(n > 0);
        }
        writer.await.unwrap().unwrap();
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
        fn parts_decode_to_the_frame(
            id in 1u32..,
            ctx in proptest::collection::vec(any::<u8>(), 0..20_000),
            conns in 0u32..5,
        ) {
            for f in [call(id, ctx.clone()), arrived(ctx.clone(), conns)] {
                let p = encode_parts(f.clone());
                prop_assert_eq!(joined(&p), f);
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

//! The wire encoding of a [`TcpStreamImage`], carried in CXTP context blocks
//! between eNBCs. It reuses CRIU's protobuf entries, so it is self-describing
//! and any CRIU tool can read the entries; the framing is:
//!
//! ```text
//! offset  size  field
//! 0       4     magic "EMTS"
//! 4       1     version (1)
//! 5       3     reserved, zero
//! 8       4     A: length of the inet_sk_entry (u32, little endian)
//! 12      A     inet_sk_entry (sk-inet.proto)
//! 12+A    4     B: length of the tcp_stream_entry (u32, little endian)
//! 16+A    B     tcp_stream_entry (tcp-stream.proto); its inq_len/outq_len size the queues
//! 16+A+B  inq   receive queue bytes
//! …       outq  send queue bytes (unacknowledged, then the unsq_len unsent bytes)
//! ```
//!
//! Decoding checks every length against the bytes present before slicing and
//! validates the result ([`TcpStreamImage::validate`]); anything else is a
//! typed [`ImageError`]. Nothing here panics on input.

use prost::Message;

use crate::criu::{self, InetSkEntry, TcpStreamEntry, take, take_u32};
use crate::error::ImageError;
use crate::image::TcpStreamImage;

/// First four bytes of an encoded image.
pub const WIRE_MAGIC: [u8; 4] = *b"EMTS";
/// Current format version.
pub const WIRE_VERSION: u8 = 1;

impl TcpStreamImage {
    /// Appends the wire encoding of this image to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (isk, tcp) = criu::to_entries(self, 1);
        out.reserve(
            16 + isk.encoded_len()
                + tcp.encoded_len()
                + self.recv_queue.len()
                + self.send_queue.len(),
        );
        out.extend_from_slice(&WIRE_MAGIC);
        out.extend_from_slice(&[WIRE_VERSION, 0, 0, 0]);
        out.extend_from_slice(&(isk.encoded_len() as u32).to_le_bytes());
        isk.encode(out).expect("Vec grows as needed");
        out.extend_from_slice(&(tcp.encoded_len() as u32).to_le_bytes());
        tcp.encode(out).expect("Vec grows as needed");
        out.extend_from_slice(&self.recv_queue);
        out.extend_from_slice(&self.send_queue);
    }

    /// Length of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        let (isk, tcp) = criu::to_entries(self, 1);
        16 + isk.encoded_len() + tcp.encoded_len() + self.recv_queue.len() + self.send_queue.len()
    }

    /// Decodes and validates an image; the whole input must be one image.
    pub fn decode(data: &[u8]) -> Result<Self, ImageError> {
        let (magic, rest) = take(data, 4, "magic")?;
        if magic != WIRE_MAGIC {
            return Err(ImageError::BadMagic {
                found: u32::from_be_bytes(magic.try_into().expect("4 bytes")),
                expected: u32::from_be_bytes(WIRE_MAGIC),
            });
        }
        let (head, rest) = take(rest, 4, "version")?;
        if head[0] != WIRE_VERSION {
            return Err(ImageError::UnsupportedVersion(head[0]));
        }
        if head[1..] != [0, 0, 0] {
            return Err(ImageError::InvalidField {
                field: "reserved",
                value: u64::from(u32::from_le_bytes(head.try_into().expect("4 bytes")) >> 8),
                reason: "reserved bytes must be zero",
            });
        }
        let (len, rest) = take_u32(rest, "inet_sk_entry length")?;
        let (isk, rest) = take(rest, len as usize, "inet_sk_entry")?;
        let isk: InetSkEntry = criu::decode_entry("inet_sk_entry", isk)?;
        let (len, rest) = take_u32(rest, "tcp_stream_entry length")?;
        let (tcp, rest) = take(rest, len as usize, "tcp_stream_entry")?;
        let tcp: TcpStreamEntry = criu::decode_entry("tcp_stream_entry", tcp)?;
        let (inq, outq) = criu::queue_lengths(&tcp)?;
        let (recv_queue, rest) = take(rest, inq, "receive queue")?;
        let (send_queue, rest) = take(rest, outq, "send queue")?;
        if !rest.is_empty() {
            return Err(ImageError::TrailingBytes(rest.len()));
        }
        criu::from_entries(&isk, &tcp, recv_queue, send_queue)
    }
}

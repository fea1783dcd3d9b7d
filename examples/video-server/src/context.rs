//! A UE's service context: everything needed to resume its connection on
//! another eNBC at the exact octet where it stopped.
//!
//! The paper names the video server's context "file name and current
//! offset". To resume mid-response exactly, this server also carries the
//! rest of the response being sent (its status, the response head, how
//! many head octets already left, the range and how many body octets
//! left), the file's content identifier (so the target can refuse a UE
//! whose file it holds in another version), the request octets already read
//! from the socket but not yet parsed (octets still in the kernel's receive
//! queue travel in the socket image instead), and the pacing credit.
//!
//! # Encoding (version 1)
//!
//! All integers are big-endian.
//!
//! ```text
//! offset   size  field
//! 0        4     magic "EVSC"
//! 4        2     version = 1
//! 6        4     S: length of the state
//! 10       S     state (below)
//! 10+S     4     CRC-32 (IEEE 802.3) of octets 0 .. 10+S
//! 14+S     4     P: length of the padding
//! 18+S     P     padding (ignored; emulates heavier service state)
//!
//! state:
//! u8    flags: bit 0 a response is in progress, bit 1 close the connection
//!       after it, bit 2 it has a file body; other bits zero
//! u64   requests completed on this connection
//! u32   pacing credit, octets
//! u32   N, then N octets: request octets read but not yet parsed (N ≤ 16384)
//! if bit 0:
//!   u16   status
//!   u32   H, then H octets: the response head (status line, fields, blank
//!         line; for an error response also its short body)  (H ≤ 65536)
//!   u32   head octets already written (≤ H)
//!   if bit 2:
//!     u16   F, then F octets: file name, UTF-8, relative to the content root
//!     u64   file size       } the file's content identifier
//!     32    file SHA-256    }
//!     u64   range start (first body octet's offset in the file)
//!     u64   range end (exclusive; ≤ file size)
//!     u64   body octets already written (≤ end − start)
//! ```
//!
//! The decoder checks every length against what is left, every invariant
//! above, and the checksum; anything else is a [`ContextError`].

use crate::content::{ContentId, valid_name};
use crate::http::MAX_HEAD;

/// The first four octets of every context.
pub const MAGIC: [u8; 4] = *b"EVSC";
/// The encoding version this build writes and reads.
pub const VERSION: u16 = 1;
/// Largest response head carried.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Largest file name carried.
pub const MAX_NAME: usize = 4096;
/// Octets of framing around the state: magic, version, length, CRC, pad length.
pub const OVERHEAD: usize = 18;

const F_RESPONSE: u8 = 1;
const F_CLOSE: u8 = 2;
const F_BODY: u8 = 4;

/// The context of one UE's connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionContext {
    /// Responses completed on this connection so far.
    pub requests_served: u64,
    /// Pacing credit left, octets.
    pub pace_credit: u32,
    /// Request octets read from the socket but not parsed yet.
    pub pending_input: Vec<u8>,
    /// The response being sent, if any.
    pub response: Option<ResponseContext>,
}

/// A response in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseContext {
    pub status: u16,
    /// The response head (and, for error responses, the short body).
    pub head: Vec<u8>,
    /// Octets of `head` already written to the socket.
    pub head_written: u32,
    /// Close the connection once the response is complete.
    pub close_after: bool,
    pub body: Option<BodyContext>,
}

/// The file part of a response in progress: the paper's "file name and
/// current offset".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyContext {
    pub file: String,
    pub content: ContentId,
    /// First body octet's offset in the file.
    pub start: u64,
    /// End of the range (exclusive).
    pub end: u64,
    /// Body octets already written to the socket.
    pub sent: u64,
}

impl BodyContext {
    /// The file offset of the next octet to send.
    pub fn offset(&self) -> u64 {
        self.start + self.sent
    }
}

/// Why a context does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("context of {0} octets is shorter than the {OVERHEAD}-octet framing")]
    TooShort(usize),
    #[error("not a video-server context (bad magic)")]
    BadMagic,
    #[error("context version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u16),
    #[error("context truncated in {0}")]
    Truncated(&'static str),
    #[error("context checksum mismatch (carried {carried:#010x}, computed {computed:#010x})")]
    Checksum { carried: u32, computed: u32 },
    #[error("invalid context: {0}")]
    Invalid(&'static str),
    #[error("{0} unexpected octets after the context")]
    Trailing(usize),
}

impl SessionContext {
    /// Encodes the context without padding.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_padded(0)
    }

    /// Encodes the context, padded so that the whole encoding is at least
    /// `min_len` octets.
    pub fn encode_padded(&self, min_len: usize) -> Vec<u8> {
        let mut state = Vec::with_capacity(64 + self.pending_input.len());
        let mut flags = 0;
        if let Some(r) = &self.response {
            flags |= F_RESPONSE;
            if r.close_after {
                flags |= F_CLOSE;
            }
            if r.body.is_some() {
                flags |= F_BODY;
            }
        }
        state.push(flags);
        state.extend_from_slice(&self.requests_served.to_be_bytes());
        state.extend_from_slice(&self.pace_credit.to_be_bytes());
        put_blob32(&mut state, &self.pending_input);
        if let Some(r) = &self.response {
            state.extend_from_slice(&r.status.to_be_bytes());
            put_blob32(&mut state, &r.head);
            state.extend_from_slice(&r.head_written.to_be_bytes());
            if let Some(b) = &r.body {
                state.extend_from_slice(&(b.file.len() as u16).to_be_bytes());
                state.extend_from_slice(b.file.as_bytes());
                state.extend_from_slice(&b.content.size.to_be_bytes());
                state.extend_from_slice(&b.content.sha256);
                state.extend_from_slice(&b.start.to_be_bytes());
                state.extend_from_slice(&b.end.to_be_bytes());
                state.extend_from_slice(&b.sent.to_be_bytes());
            }
        }
        let natural = OVERHEAD + state.len();
        let pad = min_len.saturating_sub(natural);
        let mut out = Vec::with_capacity(natural + pad);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&(state.len() as u32).to_be_bytes());
        out.extend_from_slice(&state);
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(&(pad as u32).to_be_bytes());
        out.resize(natural + pad, PAD_OCTET);
        out
    }

    /// Decodes and checks a context.
    pub fn decode(b: &[u8]) -> Result<SessionContext, ContextError> {
        if b.len() < OVERHEAD {
            return Err(ContextError::TooShort(b.len()));
        }
        if b[..4] != MAGIC {
            return Err(ContextError::BadMagic);
        }
        let version = u16::from_be_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(ContextError::UnsupportedVersion(version));
        }
        let s_len = u32::from_be_bytes([b[6], b[7], b[8], b[9]]) as usize;
        if s_len > b.len() - OVERHEAD {
            return Err(ContextError::Truncated("state"));
        }
        let state_end = 10 + s_len;
        let carried = u32::from_be_bytes(b[state_end..state_end + 4].try_into().expect("4"));
        let computed = crc32(&b[..state_end]);
        if carried != computed {
            return Err(ContextError::Checksum { carried, computed });
        }
        let pad =
            u32::from_be_bytes(b[state_end + 4..state_end + 8].try_into().expect("4")) as usize;
        let rest = b.len() - state_end - 8;
        if pad > rest {
            return Err(ContextError::Truncated("padding"));
        }
        if pad < rest {
            return Err(ContextError::Trailing(rest - pad));
        }
        let ctx = decode_state(&b[10..state_end])?;
        Ok(ctx)
    }
}

const PAD_OCTET: u8 = 0xA5;

fn put_blob32(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ContextError> {
        if self.0.len() < n {
            return Err(ContextError::Truncated(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ContextError> {
        Ok(self.take(N, what)?.try_into().expect("N octets"))
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, ContextError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, ContextError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, ContextError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, ContextError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
    fn blob32(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], ContextError> {
        let n = self.u32(what)? as usize;
        if n > max {
            return Err(ContextError::Invalid(what));
        }
        self.take(n, what)
    }
}

fn decode_state(b: &[u8]) -> Result<SessionContext, ContextError> {
    let mut r = Reader(b);
    let flags = r.u8("flags")?;
    if flags & !(F_RESPONSE | F_CLOSE | F_BODY) != 0 {
        return Err(ContextError::Invalid("unknown flags"));
    }
    if flags & F_RESPONSE == 0 && flags != 0 {
        return Err(ContextError::Invalid("response flags without a response"));
    }
    let requests_served = r.u64("requests served")?;
    let pace_credit = r.u32("pacing credit")?;
    let pending_input = r.blob32(MAX_HEAD, "pending input")?.to_vec();
    let response = if flags & F_RESPONSE != 0 {
        let status = r.u16("status")?;
        if !(100..=599).contains(&status) {
            return Err(ContextError::Invalid("status out of range"));
        }
        let head = r.blob32(MAX_RESPONSE_HEAD, "response head")?.to_vec();
        let head_written = r.u32("head octets written")?;
        if head_written as usize > head.len() {
            return Err(ContextError::Invalid(
                "more head octets written than the head has",
            ));
        }
        let body = if flags & F_BODY != 0 {
            let n = r.u16("file name")? as usize;
            if n > MAX_NAME {
                return Err(ContextError::Invalid("file name too long"));
            }
            let file = std::str::from_utf8(r.take(n, "file name")?)
                .map_err(|_| ContextError::Invalid("file name is not UTF-8"))?;
            if !valid_name(file) {
                return Err(ContextError::Invalid("file name outside the content root"));
            }
            let size = r.u64("file size")?;
            let sha256 = r.array::<32>("file hash")?;
            let start = r.u64("range start")?;
            let end = r.u64("range end")?;
            let sent = r.u64("body octets written")?;
            if start > end || end > size {
                return Err(ContextError::Invalid("range outside the file"));
            }
            if sent > end - start {
                return Err(ContextError::Invalid(
                    "more body octets written than the range has",
                ));
            }
            Some(BodyContext {
                file: file.to_owned(),
                content: ContentId { size, sha256 },
                start,
                end,
                sent,
            })
        } else {
            None
        };
        Some(ResponseContext {
            status,
            head,
            head_written,
            close_after: flags & F_CLOSE != 0,
            body,
        })
    } else {
        None
    };
    if !r.0.is_empty() {
        return Err(ContextError::Invalid("octets left over in the state"));
    }
    Ok(SessionContext {
        requests_served,
        pace_credit,
        pending_input,
        response,
    })
}

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32 (IEEE 802.3, the one of zlib and Ethernet).
pub fn crc32(b: &[u8]) -> u32 {
    !b.iter().fold(!0u32, |c, &x| {
        CRC_TABLE[((c ^ u32::from(x)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> SessionContext {
        SessionContext {
            requests_served: 3,
            pace_credit: 1200,
            pending_input: b"GET /next.mp4 HTTP/1.1\r\nHo".to_vec(),
            response: Some(ResponseContext {
                status: 206,
                head: b"HTTP/1.1 206 Partial Content\r\nContent-Length: 100\r\n\r\n".to_vec(),
                head_written: 10,
                close_after: false,
                body: Some(BodyContext {
                    file: "movies/big buck bunny.mp4".into(),
                    content: ContentId {
                        size: 1 << 20,
                        sha256: [7; 32],
                    },
                    start: 1000,
                    end: 1100,
                    sent: 0,
                }),
            }),
        }
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_and_padding() {
        let c = sample();
        let plain = c.encode();
        assert_eq!(SessionContext::decode(&plain), Ok(c.clone()));
        let padded = c.encode_padded(75_000);
        assert_eq!(padded.len(), 75_000);
        assert_eq!(SessionContext::decode(&padded), Ok(c.clone()));
        // Padding never shrinks.
        assert_eq!(c.encode_padded(10).len(), plain.len());
        assert_eq!(
            SessionContext::decode(&SessionContext::default().encode()),
            Ok(SessionContext::default())
        );
    }

    #[test]
    fn every_truncation_fails() {
        for ctx in [sample(), SessionContext::default()] {
            for pad in [0, 100] {
                let b = ctx.encode_padded(pad);
                for cut in 0..b.len() {
                    assert!(
                        SessionContext::decode(&b[..cut]).is_err(),
                        "cut at {cut} of {}",
                        b.len()
                    );
                }
                let mut longer = b.clone();
                longer.push(0);
                assert_eq!(
                    SessionContext::decode(&longer),
                    Err(ContextError::Trailing(1))
                );
            }
        }
    }

    #[test]
    fn every_bit_flip_in_the_framed_state_fails() {
        let b = sample().encode();
        // Everything before the padding length is covered by magic,
        // version, lengths or the CRC.
        for i in 0..b.len() - 4 {
            for bit in 0..8 {
                let mut c = b.clone();
                c[i] ^= 1 << bit;
                assert!(SessionContext::decode(&c).is_err(), "octet {i} bit {bit}");
            }
        }
    }

    #[test]
    fn invariants_are_checked_even_with_a_good_checksum() {
        let mut bad = sample();
        bad.response.as_mut().unwrap().head_written = 1000;
        assert_eq!(
            SessionContext::decode(&bad.encode()),
            Err(ContextError::Invalid(
                "more head octets written than the head has"
            ))
        );
        let mut bad = sample();
        bad.response.as_mut().unwrap().body.as_mut().unwrap().sent = 101;
        assert!(matches!(
            SessionContext::decode(&bad.encode()),
            Err(ContextError::Invalid(_))
        ));
        let mut bad = sample();
        bad.response.as_mut().unwrap().body.as_mut().unwrap().end = (1 << 20) + 1;
        assert!(matches!(
            SessionContext::decode(&bad.encode()),
            Err(ContextError::Invalid(_))
        ));
        for name in ["../etc/passwd", "/etc/passwd", ".hidden", ""] {
            let mut bad = sample();
            bad.response.as_mut().unwrap().body.as_mut().unwrap().file = name.into();
            assert_eq!(
                SessionContext::decode(&bad.encode()),
                Err(ContextError::Invalid("file name outside the content root")),
                "{name}"
            );
        }
        let mut bad = sample();
        bad.response.as_mut().unwrap().status = 42;
        assert!(matches!(
            SessionContext::decode(&bad.encode()),
            Err(ContextError::Invalid(_))
        ));
        let mut bad = sample();
        bad.pending_input = vec![b'x'; MAX_HEAD + 1];
        assert!(matches!(
            SessionContext::decode(&bad.encode()),
            Err(ContextError::Invalid(_))
        ));
    }

    #[test]
    fn framing_errors() {
        let b = sample().encode();
        let mut m = b.clone();
        m[0] = b'X';
        assert_eq!(SessionContext::decode(&m), Err(ContextError::BadMagic));
        let mut v = b.clone();
        v[5] = 2;
        assert_eq!(
            SessionContext::decode(&v),
            Err(ContextError::UnsupportedVersion(2))
        );
        assert_eq!(
            SessionContext::decode(&b[..5]),
            Err(ContextError::TooShort(5))
        );
    }

    fn arb_context() -> impl Strategy<Value = SessionContext> {
        let body = (
            "[a-z0-9_ -]{1,12}(/[a-z0-9_ -]{1,12}){0,3}",
            any::<[u8; 32]>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(file, sha256, size, a, b, c)| {
                let mut v = [
                    a % (size.saturating_add(1)).max(1),
                    b % (size.saturating_add(1)).max(1),
                ];
                v.sort();
                let sent = if v[1] > v[0] {
                    c % (v[1] - v[0] + 1)
                } else {
                    0
                };
                BodyContext {
                    file,
                    content: ContentId { size, sha256 },
                    start: v[0].min(size),
                    end: v[1].min(size),
                    sent,
                }
            });
        let response = (
            100u16..600,
            proptest::collection::vec(any::<u8>(), 0..300),
            any::<u32>(),
            any::<bool>(),
            proptest::option::of(body),
        )
            .prop_map(|(status, head, w, close_after, body)| ResponseContext {
                status,
                head_written: if head.is_empty() {
                    0
                } else {
                    w % (head.len() as u32 + 1)
                },
                head,
                close_after,
                body,
            });
        (
            any::<u64>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::option::of(response),
        )
            .prop_map(|(requests_served, pace_credit, pending_input, response)| {
                SessionContext {
                    requests_served,
                    pace_credit,
                    pending_input,
                    response,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn arbitrary_octets_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = SessionContext::decode(&b);
        }

        #[test]
        fn framed_garbage_never_panics(
            state in proptest::collection::vec(any::<u8>(), 0..300),
            pad in 0usize..64,
        ) {
            // Valid framing and checksum around arbitrary state octets: only
            // the state decoder stands between them and a session.
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&VERSION.to_be_bytes());
            b.extend_from_slice(&(state.len() as u32).to_be_bytes());
            b.extend_from_slice(&state);
            let crc = crc32(&b);
            b.extend_from_slice(&crc.to_be_bytes());
            b.extend_from_slice(&(pad as u32).to_be_bytes());
            b.resize(b.len() + pad, PAD_OCTET);
            if let Ok(c) = SessionContext::decode(&b) {
                prop_assert_eq!(c.encode_padded(b.len()), b);
            }
        }

        #[test]
        fn round_trip(c in arb_context(), pad in 0usize..2000) {
            let b = c.encode_padded(pad);
            prop_assert!(b.len() >= pad);
            prop_assert_eq!(SessionContext::decode(&b), Ok(c));
        }

        #[test]
        fn truncations_fail(c in arb_context(), cut in any::<prop::sample::Index>()) {
            let b = c.encode();
            let cut = cut.index(b.len());
            prop_assert!(SessionContext::decode(&b[..cut]).is_err());
        }
    }
}

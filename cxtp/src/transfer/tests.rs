use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::auth::{AuthAlgorithm, KeyMaterial};
use crate::cdb::Cdb;
use crate::error::TransferError;
use crate::header::MAX_MESSAGE_LEN;
use crate::message::{Ctd, Message};

const MN: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
const LIMITS: Limits = Limits {
    max_transfer_bytes: 64 << 20,
    max_contexts: 65_535,
};

/// Deterministic, position-dependent octets so misplaced bytes show.
pub(crate) fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
        .collect::<Vec<u8>>()
        .into()
}

fn opts() -> EncodeOptions<'static> {
    EncodeOptions {
        ack_requested: true,
        elapsed_ms: 0,
        transfer_id: 42,
        key: None,
        max_transfer_bytes: u64::MAX,
    }
}

fn encode(mn: IpAddr, contexts: &[Context]) -> (Bytes, EncodedInfo) {
    let mut out = BytesMut::new();
    let info = encode_transfer(mn, contexts, &opts(), &mut out).expect("encodes");
    assert_eq!(out.len(), info.octets);
    (out.freeze(), info)
}

/// Splits concatenated frames, checking each is a valid RFC message of at
/// most 65,535 octets that re-encodes byte for byte.
fn frames(all: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < all.len() {
        let len = usize::from(u16::from_be_bytes([all[pos + 2], all[pos + 3]]));
        assert!(len <= MAX_MESSAGE_LEN);
        let frame = all.slice(pos..pos + len);
        let msg = Message::decode_bytes(&frame).expect("each frame is a valid message");
        assert_eq!(msg.to_bytes().expect("re-encodes"), frame);
        out.push(frame);
        pos += len;
    }
    out
}

fn round_trip(mn: IpAddr, contexts: Vec<Context>) -> (u32, Vec<Bytes>) {
    let (bytes, info) = encode(mn, &contexts);
    let got = decode_transfer(&bytes, LIMITS).expect("decodes");
    assert_eq!(got.mn, mn);
    assert_eq!(got.contexts.len(), contexts.len());
    for (i, (a, b)) in got.contexts.iter().zip(&contexts).enumerate() {
        assert_eq!(a.fpt, b.fpt, "context {i}");
        assert!(
            a.data == b.data,
            "context {i}: {} vs {} octets",
            a.data.len(),
            b.data.len()
        );
    }
    assert!(got.ack_requested);
    (info.ctd_count, frames(&bytes))
}

#[test]
fn edge_sizes_round_trip_exactly() {
    for (len, want_ctds) in [
        (0usize, 1u32),
        (1, 1),
        (2_024, 1),
        (2_025, 1),
        (2_040, 1),
        (2_041, 1),
        (64_000, 1),
        (65_534, 2),
        (65_535, 2),
        (65_536, 2),
        (100_000, 2),
        (100 * 1024, 2),
    ] {
        for mn in [
            MN,
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
        ] {
            let ctx = Context::new(Fpt::SERVICE_APP_CONTEXT, pattern(len, len as u8));
            let (ctds, frames) = round_trip(mn, vec![ctx]);
            assert_eq!(ctds, want_ctds, "len {len}");
            assert_eq!(frames.len() as u32, ctds);
        }
    }
}

#[test]
fn sixteen_mib_round_trips() {
    let len = 16 << 20;
    let (ctds, frames) = round_trip(
        MN,
        vec![Context::new(Fpt::TCP_CONNECTION_IMAGE, pattern(len, 9))],
    );
    // Every CTD but the last is nearly full.
    assert!(frames[..frames.len() - 1].iter().all(|f| f.len() > 65_000));
    assert_eq!(ctds as usize, frames.len());
    assert!(ctds > 256);
}

#[test]
fn several_contexts_same_fpt_keep_order() {
    let contexts: Vec<Context> = (0..40)
        .map(|i| {
            let fpt = if i % 3 == 0 {
                Fpt::SERVICE_APP_CONTEXT
            } else {
                Fpt::TCP_CONNECTION_IMAGE
            };
            Context::new(fpt, pattern(i * 997 % 9000, i as u8))
        })
        .collect();
    let (ctds, _) = round_trip(MN, contexts);
    assert!(ctds >= 3);
}

#[test]
fn single_ctd_is_plain_rfc() {
    let contexts = vec![
        Context::new(Fpt::TCP_CONNECTION_IMAGE, pattern(5, 1)),
        Context::new(Fpt::SERVICE_APP_CONTEXT, pattern(3000, 2)),
    ];
    let (bytes, info) = encode(MN, &contexts);
    assert_eq!(info.ctd_count, 1);
    let Message::Ctd(ctd) = Message::decode_bytes(&bytes).expect("valid") else {
        panic!("not a CTD");
    };
    assert!(ctd.ack_requested);
    assert_eq!(ctd_role(&ctd.cdbs), Ok(CtdRole::Plain));
    assert!(ctd.cdbs.iter().all(|c| c.fpt != Fpt::TRANSFER_MANIFEST));
    // Segments: 5 octets -> 1 CDB of 24; 3000 -> 2024 + 976.
    let lens: Vec<usize> = ctd.cdbs.iter().map(Cdb::encoded_len).collect();
    assert_eq!(lens, [24, 2040, 992]);
    #[rustfmt::skip]
    let first = [
        0xE0, 0x01, 3, 0,          // FPT, Length 3 words, P=0
        0, 0, 0, 5,                // context 0, 5 octets here
        0, 0, 0, 0,                // offset 0
        0, 0, 0, 5,                // context length 5
    ];
    assert_eq!(&bytes[12..28], &first);
    assert_eq!(&bytes[28..33], &pattern(5, 1)[..]);
    assert_eq!(&bytes[33..36], &[0, 0, 0]);
}

#[test]
fn multi_ctd_has_manifest_then_continuations() {
    let contexts = vec![Context::new(Fpt::SERVICE_APP_CONTEXT, pattern(150_000, 3))];
    let (bytes, info) = encode(MN, &contexts);
    let frames = frames(&bytes);
    assert_eq!(frames.len() as u32, info.ctd_count);
    assert_eq!(info.ctd_count, 3);
    for (i, f) in frames.iter().enumerate() {
        let Message::Ctd(ctd) = Message::decode_bytes(f).expect("valid") else {
            panic!("not a CTD");
        };
        assert_eq!(
            ctd.ack_requested,
            i + 1 == frames.len(),
            "A only on the last CTD"
        );
        let role = ctd_role(&ctd.cdbs).expect("valid role");
        if i == 0 {
            assert_eq!(
                role,
                CtdRole::First(Manifest {
                    transfer_id: 42,
                    ctd_count: 3,
                    context_count: 1,
                    total_octets: 150_000,
                })
            );
        } else {
            assert_eq!(
                role,
                CtdRole::Continuation(Continuation {
                    transfer_id: 42,
                    ctd_index: i as u32
                })
            );
        }
    }
}

#[test]
fn pctd_first_frame_carries_key() {
    let key = KeyMaterial {
        algorithm: AuthAlgorithm::HMAC_SHA1,
        key: Bytes::from_static(b"0123456789abcdef0123"),
    };
    let contexts = vec![Context::new(Fpt::SERVICE_APP_CONTEXT, pattern(80_000, 4))];
    let mut o = opts();
    o.key = Some(&key);
    let mut out = BytesMut::new();
    encode_transfer(MN, &contexts, &o, &mut out).expect("encodes");
    let bytes = out.freeze();
    let frames = frames(&bytes);
    assert!(matches!(
        Message::decode_bytes(&frames[0]),
        Ok(Message::Pctd(_))
    ));
    assert!(matches!(
        Message::decode_bytes(&frames[1]),
        Ok(Message::Ctd(_))
    ));
    let got = decode_transfer(&bytes, LIMITS).expect("decodes");
    assert_eq!(got.key, Some(key));
    assert_eq!(got.contexts[0].data, contexts[0].data);
}

#[test]
fn opaque_fpts_are_single_padded_cdbs() {
    let contexts = vec![
        Context::new(Fpt::IPV6_MULTICAST_LISTENER, pattern(12, 1)),
        Context::new(Fpt(0x0042), pattern(5, 2)),
    ];
    let (bytes, _) = encode(MN, &contexts);
    let got = decode_transfer(&bytes, LIMITS).expect("decodes");
    assert_eq!(got.contexts[0].data, contexts[0].data); // 4 + 12 = 16, aligned
    let mut padded = contexts[1].data.to_vec();
    padded.extend_from_slice(&[0; 7]); // 4 + 5 rounds up to 16
    assert_eq!(&got.contexts[1].data[..], &padded[..]);

    let too_big = vec![Context::new(Fpt(0x0042), pattern(2037, 0))];
    assert_eq!(
        encode_transfer(MN, &too_big, &opts(), &mut BytesMut::new()),
        Err(TransferError::OpaqueContextTooLarge {
            index: 0,
            fpt: Fpt(0x42),
            len: 2037
        })
    );
}

#[test]
fn sender_side_limits() {
    let mut out = BytesMut::new();
    let reserved = vec![Context::new(Fpt::TRANSFER_MANIFEST, Bytes::new())];
    assert!(matches!(
        encode_transfer(MN, &reserved, &opts(), &mut out),
        Err(TransferError::ReservedFpt { index: 0, .. })
    ));
    let mut o = opts();
    o.max_transfer_bytes = 100;
    let big = vec![Context::new(Fpt::SERVICE_APP_CONTEXT, pattern(101, 0))];
    assert_eq!(
        encode_transfer(MN, &big, &o, &mut out),
        Err(TransferError::TooLarge {
            claimed: 101,
            limit: 100
        })
    );
    let many = vec![Context::new(Fpt::SERVICE_APP_CONTEXT, Bytes::new()); MAX_CONTEXTS + 1];
    assert!(matches!(
        encode_transfer(MN, &many, &opts(), &mut out),
        Err(TransferError::TooManyContexts { .. })
    ));
    assert!(out.is_empty(), "nothing written on error");
}

#[test]
fn receiver_limits_reject_claims_before_data() {
    let contexts = vec![Context::new(Fpt::SERVICE_APP_CONTEXT, pattern(200_000, 0))];
    let (bytes, _) = encode(MN, &contexts);
    let small = Limits {
        max_transfer_bytes: 100_000,
        max_contexts: 8,
    };
    assert_eq!(
        decode_transfer(&bytes, small),
        Err(TransferError::TooLarge {
            claimed: 200_000,
            limit: 100_000
        })
    );
    // Plain CTD: the segment's claimed total is checked on its first segment.
    let plain = vec![Context::new(Fpt::SERVICE_APP_CONTEXT, pattern(3_000, 0))];
    let (bytes, _) = encode(MN, &plain);
    let tiny = Limits {
        max_transfer_bytes: 2_000,
        max_contexts: 8,
    };
    assert_eq!(
        decode_transfer(&bytes, tiny),
        Err(TransferError::TooLarge {
            claimed: 3_000,
            limit: 2_000
        })
    );
}

fn ctd_with(cdbs: Vec<Cdb>) -> Bytes {
    Message::Ctd(Ctd {
        ack_requested: true,
        elapsed_ms: 0,
        mn: MN,
        cdbs,
    })
    .to_bytes()
    .expect("encodes")
}

fn seg_cdb(index: u16, seg: &[u8], offset: u32, total: u32, pad: &[u8]) -> Cdb {
    let mut d = Vec::new();
    segment::put_segment_header(&mut d, index, seg.len() as u16, offset, total);
    d.extend_from_slice(seg);
    d.extend_from_slice(pad);
    Cdb::new(Fpt::SERVICE_APP_CONTEXT, d)
}

#[test]
fn reassembly_rejects_inconsistent_segments() {
    let cases: Vec<(Vec<Cdb>, TransferError)> = vec![
        (
            vec![seg_cdb(0, b"abcd", 0, 8, &[])],
            TransferError::IncompleteContext {
                index: 0,
                received: 4,
                total: 8,
            },
        ),
        (
            vec![seg_cdb(1, b"abcd", 0, 4, &[])],
            TransferError::ContextIndexMismatch {
                expected: 0,
                got: 1,
            },
        ),
        (
            vec![seg_cdb(0, b"abcd", 4, 8, &[])],
            TransferError::SegmentOutOfOrder {
                index: 0,
                expected: 0,
                got: 4,
            },
        ),
        (
            vec![
                seg_cdb(0, b"abcd", 0, 8, &[]),
                seg_cdb(0, b"efgh", 0, 8, &[]),
            ],
            TransferError::SegmentOutOfOrder {
                index: 0,
                expected: 4,
                got: 0,
            },
        ),
        (
            vec![
                seg_cdb(0, b"abcd", 0, 8, &[]),
                seg_cdb(0, b"efgh", 4, 9, &[]),
            ],
            TransferError::ContextLengthMismatch {
                index: 0,
                announced: 8,
                implied: 9,
            },
        ),
        (
            vec![seg_cdb(0, b"abcdef", 0, 4, &[0, 0])],
            TransferError::ContextLengthMismatch {
                index: 0,
                announced: 4,
                implied: 6,
            },
        ),
        (
            vec![seg_cdb(0, b"abc", 0, 3, &[0, 0, 0, 0, 9])],
            TransferError::BadPadding {
                len: 5,
                nonzero: true,
            },
        ),
    ];
    for (cdbs, want) in cases {
        assert_eq!(
            decode_transfer(&ctd_with(cdbs), LIMITS),
            Err(want.clone()),
            "{want}"
        );
    }
    let ok = ctd_with(vec![
        seg_cdb(0, b"abcd", 0, 8, &[]),
        seg_cdb(0, b"efgh", 4, 8, &[]),
    ]);
    let got = decode_transfer(&ok, LIMITS).expect("valid");
    assert_eq!(&got.contexts[0].data[..], b"abcdefgh");
}

#[test]
fn manifest_mismatch_is_detected() {
    let contexts = vec![Context::new(Fpt::SERVICE_APP_CONTEXT, pattern(70_000, 0))];
    let (bytes, _) = encode(MN, &contexts);
    let mut raw = bytes.to_vec();
    // Manifest sits after header(4) + elapsed(4) + MN(4); octets field at +16.
    raw[12 + 16..12 + 24].copy_from_slice(&70_001u64.to_be_bytes());
    assert_eq!(
        decode_transfer(&Bytes::from(raw), LIMITS),
        Err(TransferError::ManifestMismatch {
            what: "octets",
            announced: 70_001,
            received: 70_000
        })
    );
}

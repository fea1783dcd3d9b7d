//! Byte-exact vectors for each message, built by hand from the RFC figures.

use std::net::{IpAddr, Ipv6Addr};

use bytes::Bytes;

use super::*;
use crate::auth::{AuthAlgorithm, AuthToken, KeyMaterial};
use crate::cdb::Cdb;

const MN4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
const AR4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 254));

fn check(msg: Message, wire: &[u8]) {
    let bytes = msg.to_bytes().expect("encodes");
    assert_eq!(&bytes[..], wire, "{:?}", msg.msg_type());
    assert_eq!(msg.encoded_len(), wire.len());
    assert_eq!(Message::decode(wire), Ok(msg));
}

#[test]
fn ctar_v4() {
    let msg = Message::Ctar(Ctar {
        ack_requested: true,
        mn: MN4,
        other_ar: AR4,
        seq: 0x0A0B_0C0D,
        token: AuthToken(0x1122_3344),
        requests: vec![Cdb::request(Fpt(1))],
    });
    #[rustfmt::skip]
    let wire = [
        0x21, 0xC0, 0x00, 0x1C,
        192, 0, 2, 1,
        192, 0, 2, 254,
        0x0A, 0x0B, 0x0C, 0x0D,
        0x11, 0x22, 0x33, 0x44,
        0x00, 0x01, 0x01, 0x00, 0, 0, 0, 0,
    ];
    check(msg, &wire);
}

#[test]
fn ctaa_v6() {
    let mn = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let msg = Message::Ctaa(Ctaa {
        mn,
        failures: vec![(Fpt(0xE001), Status(0x81))],
    });
    let mut wire = vec![0x22, 0x00, 0x00, 24];
    wire.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    wire.extend_from_slice(&[0xE0, 0x01, 0x81, 0x00]);
    check(msg, &wire);
}

#[test]
fn ctd_v4() {
    let msg = Message::Ctd(Ctd {
        ack_requested: true,
        elapsed_ms: 3,
        mn: MN4,
        cdbs: vec![Cdb::new(Fpt(0x0002), Bytes::from_static(&[9, 8, 7, 6]))],
    });
    #[rustfmt::skip]
    let wire = [
        0x23, 0xC0, 0x00, 0x14,
        0, 0, 0, 3,
        192, 0, 2, 1,
        0x00, 0x02, 0x01, 0x00, 9, 8, 7, 6,
    ];
    check(msg, &wire);
}

#[test]
fn pctd_key_is_unpadded() {
    let msg = Message::Pctd(Pctd {
        ack_requested: false,
        elapsed_ms: 0,
        mn: MN4,
        key: KeyMaterial {
            algorithm: AuthAlgorithm::HMAC_SHA1,
            key: Bytes::from_static(b"abc"),
        },
        cdbs: vec![Cdb::request(Fpt(1))],
    });
    #[rustfmt::skip]
    let wire = [
        0x24, 0x80, 0x00, 0x1B,
        0, 0, 0, 0,
        192, 0, 2, 1,
        0x00, 0x01, 0x00, 0x03, b'a', b'b', b'c',
        0x00, 0x01, 0x01, 0x00, 0, 0, 0, 0,
    ];
    check(msg, &wire);
}

#[test]
fn ctdr_s_bit() {
    let msg = Message::Ctdr(Ctdr {
        all_received: true,
        mn: MN4,
        statuses: vec![
            (Fpt(0xE001), Status::SUCCESS),
            (Fpt(0xE002), Status::SUCCESS),
        ],
    });
    #[rustfmt::skip]
    let wire = [
        0x25, 0xC0, 0x00, 0x10,
        192, 0, 2, 1,
        0xE0, 0x01, 0x00, 0x00,
        0xE0, 0x02, 0x00, 0x00,
    ];
    check(msg, &wire);
}

#[test]
fn ctc_and_ct_req() {
    check(
        Message::Ctc(Ctc { mn: MN4 }),
        &[0x26, 0x80, 0x00, 0x08, 192, 0, 2, 1],
    );
    let msg = Message::CtReq(CtReq {
        mn: MN4,
        seq: 1,
        token: AuthToken::NULL,
        requests: vec![],
    });
    #[rustfmt::skip]
    let wire = [0x27, 0x80, 0x00, 0x10, 192, 0, 2, 1, 0, 0, 0, 1, 0, 0, 0, 0];
    check(msg, &wire);
}

#[test]
fn decode_errors() {
    assert_eq!(
        Message::decode(&[0x26, 0x80, 0x00, 0x09, 192, 0, 2, 1]),
        Err(DecodeError::LengthMismatch {
            declared: 9,
            actual: 8
        })
    );
    assert_eq!(
        Message::decode(&[0x26, 0x80, 0x00, 0x09, 192, 0, 2, 1, 0]),
        Err(DecodeError::TrailingBytes {
            message: "CTC",
            extra: 1
        })
    );
    assert!(matches!(
        Message::decode(&[0x26, 0x00, 0x00, 0x08, 192, 0, 2, 1]),
        Err(DecodeError::Truncated {
            field: "CTC MN address",
            needed: 16,
            available: 4
        })
    ));
    assert_eq!(
        Message::decode(&[0x25, 0x80, 0x00, 0x0A, 192, 0, 2, 1, 0, 1]),
        Err(DecodeError::TrailingBytes {
            message: "CTDR",
            extra: 2
        })
    );
    // CTD whose CDB claims 16 octets with 8 left.
    assert_eq!(
        Message::decode(&[
            0x23, 0x80, 0x00, 0x14, 0, 0, 0, 0, 192, 0, 2, 1, 0, 1, 2, 0, 0, 0, 0, 0
        ]),
        Err(DecodeError::CdbOverrun {
            offset: 12,
            claimed: 16,
            available: 8
        })
    );
    // PCTD whose key length runs past the end.
    assert!(matches!(
        Message::decode(&[0x24, 0x80, 0x00, 0x10, 0, 0, 0, 0, 192, 0, 2, 1, 0, 1, 0, 9]),
        Err(DecodeError::Truncated {
            field: "PCTD key",
            needed: 9,
            available: 0
        })
    ));
}

#[test]
fn encode_errors_write_nothing() {
    let mut out = Vec::new();
    let mixed = Message::Ctar(Ctar {
        ack_requested: false,
        mn: MN4,
        other_ar: IpAddr::V6(Ipv6Addr::LOCALHOST),
        seq: 0,
        token: AuthToken(0),
        requests: vec![],
    });
    assert_eq!(
        mixed.encode(&mut out),
        Err(EncodeError::MixedAddressFamilies)
    );
    let huge = Message::Ctd(Ctd {
        ack_requested: false,
        elapsed_ms: 0,
        mn: MN4,
        cdbs: vec![Cdb::new(Fpt(5), vec![0u8; 2036]); 33],
    });
    assert_eq!(
        huge.encode(&mut out),
        Err(EncodeError::MessageTooLong {
            len: 12 + 33 * 2040
        })
    );
    assert!(out.is_empty());
}

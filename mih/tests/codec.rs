//! Property tests: decoding never panics on arbitrary bytes, and every
//! frame edgemob emits survives decode(encode(x)) == x.

mod common;

use common::*;
use edgemob_mih::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Frame::decode(&buf);
        let _ = Header::decode(&buf);
        let _ = frame_len(&buf);
    }

    /// Bytes behind a valid header (right version and length) reach the TLV
    /// and message decoders, which plain random bytes rarely do.
    #[test]
    fn arbitrary_payloads_never_panic(
        mid in prop_oneof![Just(0x3409u16), Just(0x3809), Just(0x3C09), Just(0x3009),
                           Just(0x340B), Just(0x380B), Just(0x1401), Just(0x1801), any::<u16>()],
        flags in any::<u8>(),
        payload in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut buf = vec![0x10 | (flags & 0x0E), 0, (mid >> 8) as u8, mid as u8, 0, 1];
        buf.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        buf.extend_from_slice(&payload);
        let _ = Frame::decode(&buf);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn every_frame_round_trips(frame in frame()) {
        let bytes = frame.to_vec().unwrap();
        prop_assert_eq!(frame_len(&bytes), Some(bytes.len()));
        let back = Frame::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &frame);
        // and re-encodes to the same octets
        prop_assert_eq!(back.to_vec().unwrap(), bytes);
    }

    /// A valid frame cut short anywhere is a typed error, never a panic or a
    /// silently different frame.
    #[test]
    fn truncated_frames_are_rejected(frame in frame(), cut in any::<prop::sample::Index>()) {
        let bytes = frame.to_vec().unwrap();
        let at = cut.index(bytes.len());
        prop_assert!(Frame::decode(&bytes[..at]).is_err());
    }

    /// Flipping the payload length field never yields a panic.
    #[test]
    fn corrupted_length_fields_are_rejected(frame in frame(), delta in 1u16..) {
        let mut bytes = frame.to_vec().unwrap();
        let len = u16::from_be_bytes([bytes[6], bytes[7]]).wrapping_add(delta);
        bytes[6..8].copy_from_slice(&len.to_be_bytes());
        prop_assert!(Frame::decode(&bytes).is_err());
    }
}

#[test]
fn mihf_id_tlv_is_an_octet_string_inside_a_tlv() {
    // PROTOCOLS.md: Source MIHF ID "mihf1" encodes as 01 06 05 6d 69 68 66 31.
    let f = Frame::ack(
        MihfId::try_from("mihf1").unwrap(),
        MihfId::try_from("b").unwrap(),
        Mid(0x3409),
        Tid::new(1),
    );
    let b = f.to_vec().unwrap();
    assert_eq!(&b[8..16], &[0x01, 0x06, 0x05, b'm', b'i', b'h', b'f', b'1']);
}

#[test]
fn a_vendor_tlv_longer_than_128_uses_the_long_length_form() {
    let Message::N2nHoCommitRequest(mut req) = sample_commit_request() else {
        unreachable!()
    };
    req.edgemob.as_mut().unwrap().services[0].name = vec![b'x'; 600].into();
    let f = Frame::message(
        MihfId::try_from("a").unwrap(),
        MihfId::try_from("b").unwrap(),
        Tid::new(9),
        Message::N2nHoCommitRequest(req),
    );
    let b = f.to_vec().unwrap();
    // walk the TLVs: type 100 follows, with a 3-octet length field 0x82 ..
    let mut at = 8;
    loop {
        let (len, used) = tlv::decode_len(&b[at + 1..]).unwrap();
        if b[at] == 100 {
            assert_eq!(b[at + 1], 0x82, "long form with two length octets");
            assert_eq!(used, 3);
            assert!(len > 600);
            assert_eq!(&b[at + 1 + used..at + 4 + used], &EDGEMOB_OUI);
            break;
        }
        at += 1 + used + len;
    }
    assert_eq!(Frame::decode(&b).unwrap(), f);
}

#[test]
fn malformed_frames_get_specific_errors() {
    let good = Frame::message(
        MihfId::try_from("src").unwrap(),
        MihfId::try_from("dst").unwrap(),
        Tid::new(3),
        sample_commit_request(),
    )
    .to_vec()
    .unwrap();

    // wrong version
    let mut b = good.clone();
    b[0] = 0x20 | (b[0] & 0x0F);
    assert_eq!(Frame::decode(&b), Err(DecodeError::BadVersion(2)));

    // a fragment
    let mut b = good.clone();
    b[0] |= 0x01;
    assert_eq!(
        Frame::decode(&b),
        Err(DecodeError::Fragmented {
            number: 0,
            more: true
        })
    );
    let mut b = good.clone();
    b[1] = 3 << 1;
    assert_eq!(
        Frame::decode(&b),
        Err(DecodeError::Fragmented {
            number: 3,
            more: false
        })
    );

    // extra octets after the frame
    let mut b = good.clone();
    b.push(0);
    assert!(matches!(
        Frame::decode(&b),
        Err(DecodeError::PayloadLengthMismatch { .. })
    ));

    // destination before source
    let mut b = good.clone();
    b[8] = 2;
    assert_eq!(
        Frame::decode(&b),
        Err(DecodeError::MissingMihfIds { found: 2 })
    );

    // unknown message id
    let mut b = good.clone();
    b[2..4].copy_from_slice(&0x3407u16.to_be_bytes());
    assert!(matches!(
        Frame::decode(&b),
        Err(DecodeError::UnknownMessage(Mid(0x3407)))
    ));

    // a mandatory TLV missing: drop the PoA TLV (type 60) from the request
    let req = Frame::decode(&good).unwrap();
    let Body::Message(Message::N2nHoCommitRequest(r)) = req.body else {
        unreachable!()
    };
    let mut payload = Vec::new();
    let mut full = Vec::new();
    Frame::message(
        MihfId::try_from("src").unwrap(),
        MihfId::try_from("dst").unwrap(),
        Tid::new(3),
        Message::N2nHoCommitRequest(r),
    )
    .encode(&mut full)
    .unwrap();
    for t in tlv::TlvReader::new(&full[8..]) {
        let t = t.unwrap();
        if t.tlv_type != 60 {
            payload.push(t.tlv_type);
            tlv::encode_len(t.value.len(), &mut payload);
            payload.extend_from_slice(t.value);
        }
    }
    let mut b = full[..8].to_vec();
    b[6..8].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    b.extend_from_slice(&payload);
    assert!(matches!(
        Frame::decode(&b),
        Err(DecodeError::MissingTlv { tlv_type: 60, .. })
    ));

    // the same TLV twice
    let mut b = good.clone();
    let mut dup = b[8..].to_vec();
    dup.extend_from_slice(&[52, 2, 1, b'x']);
    b.truncate(8);
    b[6..8].copy_from_slice(&(dup.len() as u16).to_be_bytes());
    b.extend_from_slice(&dup);
    assert!(matches!(
        Frame::decode(&b),
        Err(DecodeError::DuplicateTlv { tlv_type: 52, .. })
    ));
}

#[test]
fn unknown_tlvs_and_foreign_vendor_tlvs_are_skipped() {
    let f = Frame::message(
        MihfId::try_from("src").unwrap(),
        MihfId::try_from("dst").unwrap(),
        Tid::new(3),
        sample_commit_request(),
    );
    let mut b = f.to_vec().unwrap();
    // a Time interval TLV (21) and another vendor's TLV (100, OUI 00:11:22)
    b.extend_from_slice(&[21, 2, 0, 5, 100, 4, 0x00, 0x11, 0x22, 0x99]);
    let len = (b.len() - 8) as u16;
    b[6..8].copy_from_slice(&len.to_be_bytes());
    assert_eq!(Frame::decode(&b).unwrap(), f);
}

#[test]
fn a_moving_connection_is_family_addresses_and_ports_and_a_bad_family_is_refused() {
    let f = Frame::message(
        MihfId::try_from("a").unwrap(),
        MihfId::try_from("b").unwrap(),
        Tid::new(4),
        sample_commit_request(),
    );
    let mut b = f.to_vec().unwrap();
    // sub-TLV 6, 13 octets: family 4, 10.77.0.1 port 80, 10.77.1.2 port 40000
    let sub = [6, 13, 4, 10, 77, 0, 1, 0, 80, 10, 77, 1, 2, 0x9c, 0x40];
    let at = b
        .windows(sub.len())
        .position(|w| w == sub)
        .expect("the connection sub-TLV is in the frame");
    assert_eq!(Frame::decode(&b).unwrap(), f);
    b[at + 2] = 5;
    let err = Frame::decode(&b).unwrap_err().to_string();
    assert!(err.contains("family must be 4 or 6"), "{err}");
}

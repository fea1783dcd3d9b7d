//! Property tests of the message codec: arbitrary input never panics and
//! errors are typed; every message type round-trips.

mod common;

use bytes::Bytes;
use edgemob_cxtp::{Cdb, DecodeError, Message};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn arbitrary_bytes_decode_without_panic(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        match Message::decode(&input) {
            Ok(msg) => {
                // Whatever decodes re-encodes to a message that decodes the same.
                let again = msg.to_bytes().expect("a decoded message re-encodes");
                prop_assert_eq!(again.len(), input.len());
                prop_assert_eq!(Message::decode(&again), Ok(msg));
            }
            Err(e) => { let _ = e.to_string(); }
        }
    }

    #[test]
    fn valid_header_arbitrary_body(
        msg_type in 0u8..9,
        flags in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        length_delta in -3i32..3,
    ) {
        let len = (4 + body.len()) as i32;
        let declared = if length_delta == 0 { len } else { (len + length_delta).max(0) } as u16;
        let mut input = vec![(1 << 5) | msg_type, flags];
        input.extend_from_slice(&declared.to_be_bytes());
        input.extend_from_slice(&body);
        let result = Message::decode_bytes(&Bytes::from(input));
        if !(1..=7).contains(&msg_type) {
            prop_assert_eq!(result, Err(DecodeError::UnknownType(msg_type)));
        } else if declared < 4 {
            prop_assert_eq!(result, Err(DecodeError::LengthTooSmall(declared)));
        } else if i32::from(declared) != len {
            let is_mismatch = matches!(result, Err(DecodeError::LengthMismatch { .. }));
            prop_assert!(is_mismatch);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ctar_round_trips(m in common::ctar()) { round_trip(Message::Ctar(m))?; }
    #[test]
    fn ctaa_round_trips(m in common::ctaa()) { round_trip(Message::Ctaa(m))?; }
    #[test]
    fn ctd_round_trips(m in common::ctd()) { round_trip(Message::Ctd(m))?; }
    #[test]
    fn pctd_round_trips(m in common::pctd()) { round_trip(Message::Pctd(m))?; }
    #[test]
    fn ctdr_round_trips(m in common::ctdr()) { round_trip(Message::Ctdr(m))?; }
    #[test]
    fn ctc_round_trips(m in common::ctc()) { round_trip(Message::Ctc(m))?; }
    #[test]
    fn ct_req_round_trips(m in common::ct_req()) { round_trip(Message::CtReq(m))?; }

    #[test]
    fn unaligned_cdb_data_gains_only_zero_padding(fpt in any::<u16>(), data in common::bytes(0usize..2036)) {
        let cdb = Cdb::new(edgemob_cxtp::Fpt(fpt), data.clone());
        let padded = Cdb::padded(cdb.fpt, None, data.clone());
        let msg = Message::Ctd(edgemob_cxtp::Ctd {
            ack_requested: false, elapsed_ms: 0, mn: "192.0.2.1".parse().expect("addr"), cdbs: vec![cdb],
        });
        let Ok(Message::Ctd(back)) = Message::decode(&msg.to_bytes().expect("encodes")) else {
            return Err(TestCaseError::fail("not a CTD"));
        };
        prop_assert_eq!(&back.cdbs[0], &padded);
        prop_assert!(back.cdbs[0].data.starts_with(&data));
        prop_assert!(back.cdbs[0].data[data.len()..].iter().all(|&b| b == 0));
        prop_assert!(back.cdbs[0].data.len() - data.len() < 8);
    }
}

fn round_trip(msg: Message) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    let n = msg
        .encode(&mut out)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(n, out.len());
    prop_assert_eq!(n, msg.encoded_len());
    prop_assert_eq!(usize::from(u16::from_be_bytes([out[2], out[3]])), out.len());
    prop_assert_eq!(out[0] >> 5, 1, "version 1");
    prop_assert_eq!(Message::decode(&out), Ok(msg.clone()));
    prop_assert_eq!(Message::decode_bytes(&Bytes::from(out)), Ok(msg));
    Ok(())
}

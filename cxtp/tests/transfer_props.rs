//! Arbitrary transfers round-trip exactly through the large-context layer.

mod common;

use bytes::BytesMut;
use edgemob_cxtp::Message;
use edgemob_cxtp::transfer::{EncodeOptions, Limits, decode_transfer, encode_transfer};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn transfers_round_trip(contexts in common::contexts(), mn in common::any_ip(), id in any::<u32>()) {
        let opts = EncodeOptions {
            ack_requested: true,
            transfer_id: id,
            max_transfer_bytes: u64::MAX,
            ..EncodeOptions::default()
        };
        let mut out = BytesMut::new();
        let info = encode_transfer(mn, &contexts, &opts, &mut out)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let frames = out.freeze();
        prop_assert_eq!(frames.len(), info.octets);
        // Every frame is a valid RFC message within the 16-bit limit.
        let mut pos = 0;
        let mut n = 0;
        while pos < frames.len() {
            let len = usize::from(u16::from_be_bytes([frames[pos + 2], frames[pos + 3]]));
            let is_ctd = matches!(Message::decode_bytes(&frames.slice(pos..pos + len)), Ok(Message::Ctd(_)));
            prop_assert!(is_ctd);
            pos += len;
            n += 1;
        }
        prop_assert_eq!(n, info.ctd_count);
        let limits = Limits { max_transfer_bytes: u64::MAX, max_contexts: 65_535 };
        let got = decode_transfer(&frames, limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got.mn, mn);
        prop_assert_eq!(got.contexts, contexts);
    }
}

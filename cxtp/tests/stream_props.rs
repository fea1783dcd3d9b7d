//! The framer and the endpoint against arbitrary chunking and arbitrary bytes.

mod common;

use std::time::Instant;

use bytes::Bytes;
use edgemob_cxtp::{Config, Endpoint, Event, Framer, Message};
use proptest::prelude::*;

/// Cuts `stream` at the given (sorted, deduplicated) positions.
fn chunks(stream: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.iter_mut().for_each(|c| *c %= stream.len() + 1);
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([stream.len()]) {
        out.push(&stream[start..c]);
        start = c;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn framer_recovers_every_message_under_any_chunking(
        msgs in proptest::collection::vec(common::message(), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            m.encode(&mut stream).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let mut framer = Framer::new();
        let mut got = Vec::new();
        for chunk in chunks(&stream, cuts) {
            framer.push(chunk);
            while let Some(frame) = framer.next_frame().map_err(|e| TestCaseError::fail(e.to_string()))? {
                got.push(Message::decode_bytes(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?);
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn endpoint_survives_arbitrary_input(
        input in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut ep = Endpoint::new(Config::default());
        let now = Instant::now();
        for chunk in chunks(&input, cuts) {
            if ep.handle_input(chunk, now).is_err() {
                break;
            }
        }
        while ep.poll_event().is_some() {}
        while ep.poll_transmit().is_some() {}
        ep.handle_timeout(now + std::time::Duration::from_secs(10));
        prop_assert_eq!(ep.poll_timeout(), None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn transfers_through_endpoints_under_any_chunking(
        contexts in common::contexts(),
        v4 in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let mn = if v4 { "10.1.1.1".parse().expect("addr") } else { "2001:db8::1".parse().expect("addr") };
        let now = Instant::now();
        let (mut src, mut dst) = (Endpoint::new(Config::default()), Endpoint::new(Config::default()));
        src.start_transfer(mn, &contexts, now).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let stream: Vec<u8> = std::iter::from_fn(|| src.poll_transmit()).flat_map(|b: Bytes| b.to_vec()).collect();
        for chunk in chunks(&stream, cuts) {
            dst.handle_input(chunk, now).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        match dst.poll_event() {
            Some(Event::ContextsArrived { mn: got_mn, contexts: got, .. }) => {
                prop_assert_eq!(got_mn, mn);
                prop_assert_eq!(got, contexts);
            }
            other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        }
    }
}

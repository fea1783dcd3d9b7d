//! Any byte stream, cut into chunks, fed to an endpoint with a moving
//! clock: no panic, and once framing is lost it stays lost.
#![no_main]

use std::time::{Duration, Instant};

use edgemob_cxtp::{Config, Endpoint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut ep = Endpoint::new(Config::with_budget(Duration::from_millis(5)));
    // First octet picks the chunk size, so chunk boundaries vary too.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let mut now = start;
    let mut lost = false;
    for piece in rest.chunks(usize::from(chunk).max(1)) {
        now += Duration::from_millis(1);
        let result = ep.handle_input(piece, now);
        assert!(!(lost && result.is_ok()), "framing loss is sticky");
        lost |= result.is_err();
        while ep.poll_event().is_some() {}
        while ep.poll_transmit().is_some() {}
        if ep.poll_timeout().is_some_and(|t| t <= now) {
            ep.handle_timeout(now);
        }
    }
    ep.handle_timeout(now + Duration::from_secs(1));
    assert_eq!(ep.poll_timeout(), None);
});

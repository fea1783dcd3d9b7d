//! Any sequence of datagrams and clock ticks fed to an MIHF never panics.
#![no_main]
use edgemob_mih::{Event, Mihf, MihfConfig, MihfId};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut mihf = Mihf::new(MihfConfig::new(MihfId::try_from("enbc2@edgemob").unwrap()));
    for (i, chunk) in data.split(|&b| b == 0xFF).enumerate() {
        let now = t0 + Duration::from_millis(i as u64);
        let _ = mihf.handle_datagram(chunk, now);
        while let Some(e) = mihf.poll_event() {
            if let Event::Indication { .. } = e {}
        }
        mihf.handle_timeout(now);
        while mihf.poll_transmit().is_some() {}
    }
});

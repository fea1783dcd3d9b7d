//! Any input: decode never panics, and whatever decodes re-encodes to a
//! message that decodes to the same value.
#![no_main]

use edgemob_cxtp::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::decode(data) {
        let again = msg.to_bytes().expect("a decoded message re-encodes");
        assert_eq!(again.len(), data.len());
        assert_eq!(Message::decode(&again), Ok(msg));
    }
});

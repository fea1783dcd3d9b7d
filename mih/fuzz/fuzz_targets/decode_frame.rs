//! Any bytes: decoding returns a frame or a typed error, never panics; a
//! decoded frame re-encodes and decodes to itself.
#![no_main]
use edgemob_mih::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        let again = frame.to_vec().expect("a decoded frame encodes");
        assert_eq!(Frame::decode(&again).expect("re-decodes"), frame);
    }
});

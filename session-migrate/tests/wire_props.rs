//! The wire encoding: arbitrary bytes never panic the decoder, arbitrary
//! valid images round-trip, damaged images are refused with a typed error.

use edgemob_session_migrate::{
    FourTuple, ImageError, RepairWindow, SocketBuffers, TcpOptions, TcpState, TcpStreamImage,
    WindowScale, restore,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::net::{IpAddr, SocketAddr};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn image_strategy() -> impl Strategy<Value = TcpStreamImage> {
    let addr = prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ];
    (
        addr,
        1u16..,
        1u16..,
        any::<[u8; 16]>(),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        proptest::collection::vec(any::<u8>(), 0..2048),
        proptest::collection::vec(any::<u8>(), 0..4096),
        any::<u16>(),
        (
            88u32..=65535,
            any::<bool>(),
            proptest::option::of((0u8..=14, 0u8..=14)),
            proptest::option::of(any::<u32>()),
        ),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
            0u32..4,
        ),
    )
        .prop_map(
            |(
                local_ip,
                lport,
                pport,
                peer_bytes,
                (ino, inq_seq, outq_seq),
                rq,
                sq,
                unsent,
                opts,
                win,
                misc,
            )| {
                let peer_ip = match local_ip {
                    IpAddr::V4(_) => {
                        IpAddr::from([peer_bytes[0], peer_bytes[1], peer_bytes[2], peer_bytes[3]])
                    }
                    IpAddr::V6(_) => IpAddr::from(peer_bytes),
                };
                let (mss, sack, ws, ts) = opts;
                let (snd_wnd, extra, rcv_wnd, back) = win;
                let unsent_len = if sq.is_empty() {
                    0
                } else {
                    u32::from(unsent) % (sq.len() as u32 + 1)
                };
                TcpStreamImage {
                    tuple: FourTuple {
                        local: SocketAddr::new(local_ip, lport),
                        peer: SocketAddr::new(peer_ip, pport),
                    },
                    state: TcpState::Established,
                    ino,
                    inq_seq,
                    outq_seq,
                    recv_queue: rq,
                    send_queue: sq,
                    unsent_len,
                    mss_clamp: mss,
                    options: TcpOptions {
                        sack_permitted: sack,
                        window_scale: ws.map(|(snd, rcv)| WindowScale { snd, rcv }),
                        timestamp: ts,
                    },
                    window: RepairWindow {
                        snd_wl1: inq_seq.wrapping_sub(back % 1000),
                        snd_wnd,
                        max_window: snd_wnd.saturating_add(extra % 1000),
                        rcv_wnd: rcv_wnd % (1 << 30),
                        rcv_wup: inq_seq.wrapping_sub(back % 5000),
                    },
                    nodelay: misc.0,
                    cork: misc.1,
                    nonblocking: misc.2,
                    buffers: SocketBuffers {
                        sndbuf: misc.3,
                        rcvbuf: misc.4,
                        lock: misc.5,
                    },
                }
            },
        )
}

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = TcpStreamImage::decode(&data);
    }

    #[test]
    fn arbitrary_bytes_after_the_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut data = b"EMTS\x01\0\0\0".to_vec();
        data.extend_from_slice(&tail);
        let _ = TcpStreamImage::decode(&data);
    }
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn images_round_trip(img in image_strategy()) {
        prop_assert!(img.validate().is_ok(), "{:?}", img.validate());
        let mut wire = Vec::new();
        img.encode(&mut wire);
        prop_assert_eq!(wire.len(), img.encoded_len());
        let back = TcpStreamImage::decode(&wire).unwrap();
        prop_assert_eq!(back, img);
    }

    #[test]
    fn every_truncation_and_flip_is_refused_or_still_valid(img in image_strategy(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut wire = Vec::new();
        img.encode(&mut wire);
        let cut = cut.index(wire.len());
        prop_assert!(TcpStreamImage::decode(&wire[..cut]).is_err(), "a truncated image is refused");
        let mut bad = wire.clone();
        let at = flip.index(bad.len());
        bad[at] ^= 1 << bit;
        if let Ok(decoded) = TcpStreamImage::decode(&bad) {
            prop_assert!(decoded.validate().is_ok());
        }
    }
}

fn sample() -> TcpStreamImage {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    image_strategy().new_tree(&mut runner).unwrap().current()
}

#[test]
fn typed_errors_name_the_problem() {
    let img = sample();
    let mut wire = Vec::new();
    img.encode(&mut wire);
    assert!(matches!(
        TcpStreamImage::decode(&wire[..3]),
        Err(ImageError::Truncated { what: "magic", .. })
    ));
    let mut bad = wire.clone();
    bad[0] = b'X';
    assert!(matches!(
        TcpStreamImage::decode(&bad),
        Err(ImageError::BadMagic { .. })
    ));
    let mut bad = wire.clone();
    bad[4] = 9;
    assert_eq!(
        TcpStreamImage::decode(&bad),
        Err(ImageError::UnsupportedVersion(9))
    );
    let mut long = wire.clone();
    long.push(0);
    assert_eq!(
        TcpStreamImage::decode(&long),
        Err(ImageError::TrailingBytes(1))
    );
    assert!(matches!(
        TcpStreamImage::decode(&wire[..wire.len() - 1]),
        Err(ImageError::Truncated { .. })
    ));
}

#[test]
fn restore_refuses_an_invalid_image_before_creating_a_socket() {
    let count_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let mut img = sample();
    img.unsent_len = img.send_queue.len() as u32 + 1;
    let before = count_fds();
    let err = restore(&img).unwrap_err();
    assert!(
        matches!(
            err,
            edgemob_session_migrate::RestoreError::InvalidImage(ImageError::InvalidField {
                field: "unsq_len",
                ..
            })
        ),
        "{err}"
    );
    let mut img = sample();
    img.state = TcpState::FinWait1;
    let err = restore(&img).unwrap_err();
    assert!(err.to_string().contains("FIN_WAIT1"), "{err}");
    assert_eq!(count_fds(), before, "no socket was created");
}

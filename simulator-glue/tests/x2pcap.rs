//! X2 captures → traces: a real ns-3 capture, hand-made ones in every
//! pcap flavour, malformed input, and arbitrary bytes.

use std::net::Ipv4Addr;

use edgemob_simulator_glue::trace::{EventKind, TraceRecord};
use edgemob_simulator_glue::x2pcap::{
    Addressing, X2Body, X2PcapError, encode, ns3_x2_address, parse_pcap, to_trace, x2_messages,
};
use proptest::prelude::*;

/// A capture of ns-3 3.44's lena-x2-handover set-up (1 UE, 2 eNBs, forced
/// handover at 0.3 s), written by X2LinkEnablePcap at eNB 1's X2 device.
const NS3_CAPTURE: &[u8] = include_bytes!("data/ns3-x2-1ue-2enb.pcap");

fn enb(i: u32, peer: u32) -> Ipv4Addr {
    ns3_x2_address(4, i, peer).unwrap()
}

#[test]
fn a_real_ns3_capture_gives_the_handover_of_its_run() {
    let messages = x2_messages(NS3_CAPTURE, 0).unwrap();
    // HANDOVER REQUEST, ACK, SN STATUS TRANSFER, UE CONTEXT RELEASE.
    assert_eq!(messages.len(), 4, "{messages:#?}");
    assert_eq!(messages[0].src, Ipv4Addr::new(12, 0, 0, 5));
    assert_eq!(messages[0].dst, Ipv4Addr::new(12, 0, 0, 6));
    assert!(matches!(
        messages[0].body,
        X2Body::HandoverRequest {
            old_enb_ue_x2ap_id: 1,
            target_cell: 2,
            mme_ue_s1ap_id: 1,
            ..
        }
    ));
    let conv = to_trace(&[messages], &Addressing::Ns3 { enbs: 2 }).unwrap();
    assert!(conv.warnings.is_empty(), "{:?}", conv.warnings);
    assert_eq!(
        conv.records,
        vec![
            TraceRecord {
                time_us: 300_000,
                kind: EventKind::HandoverStart,
                imsi: 1,
                rnti: 1,
                source_cell: 1,
                target_cell: 2,
                target_rnti: Some(1),
            },
            TraceRecord {
                time_us: 318_928,
                kind: EventKind::HandoverEndOk,
                imsi: 1,
                rnti: 1,
                source_cell: 1,
                target_cell: 2,
                target_rnti: None,
            },
        ]
    );
}

/// Two handovers over a 4-eNB ns-3 addressing: IMSI 7 from cell 2 to 4,
/// IMSI 9 from cell 1 to 3 (which fails), each captured at both ends.
fn two_handovers(big_endian: bool, nanos: bool) -> (Vec<u8>, Vec<u8>) {
    let (a, b) = (enb(1, 3), enb(3, 1)); // cell 2 <-> cell 4
    let (c, d) = (enb(0, 2), enb(2, 0)); // cell 1 <-> cell 3
    let ms = 1_000_000u64;
    let frames = vec![
        (
            100 * ms,
            encode::ppp_udp(
                a,
                b,
                &encode::x2(&X2Body::HandoverRequest {
                    old_enb_ue_x2ap_id: 3,
                    cause: 0,
                    target_cell: 4,
                    mme_ue_s1ap_id: 7,
                    bearers: 2,
                }),
            ),
        ),
        (
            101 * ms,
            encode::ppp_udp(
                b,
                a,
                &encode::x2(&X2Body::HandoverRequestAck {
                    old_enb_ue_x2ap_id: 3,
                    new_enb_ue_x2ap_id: 5,
                    admitted: 2,
                    not_admitted: 0,
                }),
            ),
        ),
        (
            102 * ms,
            encode::ppp_udp(
                c,
                d,
                &encode::x2(&X2Body::HandoverRequest {
                    old_enb_ue_x2ap_id: 3,
                    cause: 0,
                    target_cell: 3,
                    mme_ue_s1ap_id: 9,
                    bearers: 0,
                }),
            ),
        ),
        (
            103 * ms,
            encode::ppp_udp(
                d,
                c,
                &encode::x2(&X2Body::HandoverPreparationFailure {
                    old_enb_ue_x2ap_id: 3,
                    cause: 1,
                }),
            ),
        ),
        (
            125 * ms + 777,
            encode::ppp_udp(
                b,
                a,
                &encode::x2(&X2Body::UeContextRelease {
                    old_enb_ue_x2ap_id: 3,
                    new_enb_ue_x2ap_id: 5,
                }),
            ),
        ),
    ];
    // The other end sees every message 2 ms later.
    let late: Vec<_> = frames
        .iter()
        .map(|(t, f)| (t + 2 * ms, f.clone()))
        .collect();
    (
        encode::pcap(&frames, big_endian, nanos),
        encode::pcap(&late, big_endian, nanos),
    )
}

#[test]
fn both_ends_byte_orders_and_resolutions_give_one_trace() {
    let mut traces = Vec::new();
    for big_endian in [false, true] {
        for nanos in [false, true] {
            let (near, far) = two_handovers(big_endian, nanos);
            let files = vec![
                x2_messages(&near, 0).unwrap(),
                x2_messages(&far, 1).unwrap(),
            ];
            let conv = to_trace(&files, &Addressing::Ns3 { enbs: 4 }).unwrap();
            assert_eq!(conv.messages, 5, "the two ends' copies are merged");
            traces.push(conv.records);
        }
    }
    assert!(traces.windows(2).all(|w| w[0] == w[1]));
    let t = &traces[0];
    let kinds: Vec<_> = t.iter().map(|r| (r.kind, r.imsi)).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::HandoverStart, 7),
            (EventKind::HandoverPreparationFailure, 9),
            (EventKind::HandoverEndOk, 7)
        ]
    );
    // The ACK is timed at its arrival (the later copy), the release at its sending.
    assert_eq!(t[0].time_us, 103_000);
    assert_eq!(
        (
            t[0].source_cell,
            t[0].target_cell,
            t[0].rnti,
            t[0].target_rnti
        ),
        (2, 4, 3, Some(5))
    );
    assert_eq!((t[1].source_cell, t[1].target_cell), (1, 3));
    assert_eq!(t[2].time_us, 125_000);
    assert_eq!((t[2].rnti, t[2].source_cell, t[2].target_cell), (5, 2, 4));
}

#[test]
fn an_explicit_table_maps_addresses() {
    let (near, _) = two_handovers(false, false);
    let table = [
        (enb(1, 3), 20),
        (enb(3, 1), 4),
        (enb(0, 2), 10),
        (enb(2, 0), 3),
    ]
    .into_iter()
    .collect();
    let conv = to_trace(&[x2_messages(&near, 0).unwrap()], &Addressing::Table(table)).unwrap();
    assert_eq!(conv.records[0].source_cell, 20);
    // A table that lacks an address names it.
    let err = to_trace(
        &[x2_messages(&near, 0).unwrap()],
        &Addressing::Table(Default::default()),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("packet 1") && err.contains("12.0.0."), "{err}");
}

#[test]
fn a_wrong_enb_count_is_caught_not_believed() {
    let (near, _) = two_handovers(false, false);
    // With 5 eNBs the same addresses belong to other links and cells.
    let err = to_trace(
        &[x2_messages(&near, 0).unwrap()],
        &Addressing::Ns3 { enbs: 5 },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("packet 1"), "{err}");
}

#[test]
fn an_ack_without_its_request_is_a_warning() {
    let (near, _) = two_handovers(false, false);
    let mut capture = parse_pcap(&near).unwrap();
    capture.frames.remove(0);
    let frames: Vec<_> = capture
        .frames
        .iter()
        .map(|f| (f.time_ns, f.data.to_vec()))
        .collect();
    let bytes = encode::pcap(&frames, false, false);
    let conv = to_trace(
        &[x2_messages(&bytes, 0).unwrap()],
        &Addressing::Ns3 { enbs: 4 },
    )
    .unwrap();
    assert!(conv.records.iter().all(|r| r.imsi == 9));
    assert_eq!(conv.warnings.len(), 2, "{:?}", conv.warnings);
    assert!(
        conv.warnings[0].starts_with("packet 1:"),
        "{:?}",
        conv.warnings
    );
}

fn packet_error(bytes: &[u8]) -> (usize, String) {
    match x2_messages(bytes, 0) {
        Err(X2PcapError::Packet { packet, message }) => (packet, message),
        other => panic!("expected a packet error, got {other:?}"),
    }
}

#[test]
fn malformed_captures_name_the_packet() {
    let (good, _) = two_handovers(false, false);

    // Truncated in the middle of the third record.
    let cut = good.len() - 200;
    let (packet, message) = packet_error(&good[..cut]);
    assert!(packet >= 3, "{packet}: {message}");
    assert!(message.contains("truncated"), "{message}");

    // A HANDOVER REQUEST cut short inside its UE context (packet 2).
    let request = encode::x2(&X2Body::HandoverRequest {
        old_enb_ue_x2ap_id: 1,
        cause: 0,
        target_cell: 2,
        mme_ue_s1ap_id: 1,
        bearers: 0,
    });
    let bad = encode::pcap(
        &[
            (
                1,
                encode::ppp_udp(
                    enb(0, 1),
                    enb(1, 0),
                    &encode::x2(&X2Body::Other {
                        message_type: 0,
                        procedure_code: 4,
                    }),
                ),
            ),
            (2, encode::ppp_udp(enb(0, 1), enb(1, 0), &request[..40])),
        ],
        false,
        false,
    );
    let (packet, message) = packet_error(&bad);
    assert_eq!(packet, 2);
    assert!(message.contains("HANDOVER REQUEST"), "{message}");

    // A bearer count larger than the message.
    let mut huge = request.clone();
    let n = huge.len();
    huge[n - 4..].copy_from_slice(&1000u32.to_be_bytes());
    let bad = encode::pcap(
        &[(1, encode::ppp_udp(enb(0, 1), enb(1, 0), &huge))],
        false,
        false,
    );
    let (packet, message) = packet_error(&bad);
    assert_eq!(packet, 1);
    assert!(message.contains("1000 bearers"), "{message}");

    // A UDP length beyond the datagram.
    let mut frame = encode::ppp_udp(enb(0, 1), enb(1, 0), &request);
    frame[2 + 20 + 4] = 0xff;
    let (packet, message) = packet_error(&encode::pcap(&[(1, frame)], true, false));
    assert_eq!(packet, 1);
    assert!(message.contains("UDP length"), "{message}");

    // Not pcap at all, or pcapng.
    assert!(matches!(
        x2_messages(b"hello", 0),
        Err(X2PcapError::NotPcap(_))
    ));
    let mut ng = good.clone();
    ng[..4].copy_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
    assert!(
        x2_messages(&ng, 0)
            .unwrap_err()
            .to_string()
            .contains("pcapng")
    );
    // A link type that is not PPP, Ethernet, raw IP or Linux cooked.
    let mut other = good.clone();
    other[20] = 147;
    assert_eq!(
        x2_messages(&other, 0).unwrap_err(),
        X2PcapError::UnsupportedLinkType(147)
    );
}

#[test]
fn other_traffic_is_ignored() {
    // GTP-U on 2152 and an LCP frame next to one X2 message.
    let mut gtp = encode::ppp_udp(
        enb(0, 1),
        enb(1, 0),
        &[0x30, 0xff, 0, 4, 0, 0, 0, 1, 1, 2, 3, 4],
    );
    gtp[2 + 20] = 0x08;
    gtp[2 + 20 + 1] = 0x68;
    gtp[2 + 20 + 2] = 0x08;
    gtp[2 + 20 + 3] = 0x68;
    let lcp = vec![0xc0, 0x21, 1, 1, 0, 4];
    let x2 = encode::ppp_udp(
        enb(0, 1),
        enb(1, 0),
        &encode::x2(&X2Body::Other {
            message_type: 0,
            procedure_code: 10,
        }),
    );
    let bytes = encode::pcap(&[(1, gtp), (2, lcp), (3, x2)], false, true);
    let messages = x2_messages(&bytes, 0).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].packet, 3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(messages) = x2_messages(&bytes, 0) {
            let _ = to_trace(&[messages], &Addressing::Ns3 { enbs: 3 });
        }
    }

    #[test]
    fn arbitrary_frames_in_a_valid_capture_never_panic(
        frames in proptest::collection::vec(
            (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..200)),
            0..6,
        ),
        big_endian in any::<bool>(),
    ) {
        let frames: Vec<_> = frames.into_iter().map(|(t, f)| (u64::from(t), f)).collect();
        let bytes = encode::pcap(&frames, big_endian, false);
        let parsed = parse_pcap(&bytes).unwrap();
        prop_assert_eq!(parsed.frames.len(), frames.len());
        if let Ok(messages) = x2_messages(&bytes, 0) {
            let _ = to_trace(&[messages.clone(), messages], &Addressing::Ns3 { enbs: 2 });
        }
    }

    #[test]
    fn arbitrary_x2_payloads_never_panic(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..6),
        mutate in any::<bool>(),
    ) {
        // Half the time, start from well-formed headers of the handover messages.
        let frames: Vec<_> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, mut p)| {
                if mutate && p.len() >= 2 {
                    p[0] %= 3;
                    p[1] = [0u8, 1, 5][i % 3];
                }
                let (src, dst) = if i % 2 == 0 { (enb(0, 1), enb(1, 0)) } else { (enb(1, 0), enb(0, 1)) };
                (i as u64 * 1000, encode::ppp_udp(src, dst, &p))
            })
            .collect();
        let bytes = encode::pcap(&frames, false, false);
        if let Ok(messages) = x2_messages(&bytes, 0) {
            let _ = to_trace(&[messages], &Addressing::Ns3 { enbs: 4 });
        }
    }
}

//! Interoperability oracle: Wireshark's own MIH dissector (tshark) decodes
//! every frame type this crate emits, and agrees on SID, opcode, AID, TID,
//! the MIHF ID TLVs and the TLV sequence.

mod common;

use common::*;
use edgemob_mih::*;
use std::fmt::Write as _;
use std::process::Command;

fn id(s: &str) -> MihfId {
    MihfId::try_from(s).unwrap()
}

fn link_tuple(cell: u32) -> LinkTupleId {
    LinkTupleId {
        link: LinkId {
            link_type: LinkType::WIRELESS_OTHER,
            addr: LinkAddr::Addr3gpp("001010000000001".into()),
        },
        poa: Some(LinkAddr::Cell3g {
            plmn: [0x00, 0xF1, 0x10],
            cell_id: cell,
        }),
    }
}

/// One frame of every message type, plus an ACK, each with a distinct TID.
fn every_frame_type() -> Vec<Frame> {
    let cap_req = CapabilityDiscoverRequest {
        events: Some(MihEventList::LINK_UP.union(MihEventList::LINK_DOWN)),
        commands: Some(MihCommandList::NET_HO),
        query_types: None,
        transports: Some(TransportList::UDP.union(TransportList::TCP)),
    };
    let cap_rsp = CapabilityDiscoverResponse {
        status: Status::SUCCESS,
        events: cap_req.events,
        commands: cap_req.commands,
        query_types: None,
        transports: cap_req.transports,
    };
    let Message::N2nHoCommitRequest(commit_req) = sample_commit_request() else {
        unreachable!()
    };
    let commit_rsp = N2nHoCommitResponse {
        status: Status::REJECTED,
        mn_mihf_id: id("imsi-001010000000001"),
        link_id: Some(link_tuple(2)),
        assigned_resources: Some(Box::default()),
        edgemob: Some(EdgemobInfo {
            migration_id: Some(9),
            reason: Some(Reason {
                code: Reason::SERVICE_NOT_HOSTED,
                text: "service video is not registered here".into(),
            }),
            ..EdgemobInfo::default()
        }),
    };
    let complete_req = N2nHoCompleteRequest {
        mn_mihf_id: id("imsi-001010000000001"),
        source_link: link_tuple(1),
        target_link: link_tuple(2),
        ho_result: HoResult::SUCCESS,
        edgemob: None,
    };
    let complete_rsp = N2nHoCompleteResponse {
        status: Status::SUCCESS,
        mn_mihf_id: id("imsi-001010000000001"),
        source_link: link_tuple(1),
        target_link: link_tuple(2),
        resource_retention: Some(false),
        edgemob: None,
    };
    let messages = vec![
        Message::CapabilityDiscoverRequest(cap_req.clone()),
        Message::CapabilityDiscoverIndication(cap_req),
        Message::CapabilityDiscoverResponse(cap_rsp.clone()),
        Message::CapabilityDiscoverConfirm(cap_rsp),
        Message::N2nHoCommitRequest(commit_req.clone()),
        Message::N2nHoCommitIndication(commit_req),
        Message::N2nHoCommitResponse(commit_rsp.clone()),
        Message::N2nHoCommitConfirm(commit_rsp),
        Message::N2nHoCompleteRequest(complete_req.clone()),
        Message::N2nHoCompleteIndication(complete_req),
        Message::N2nHoCompleteResponse(complete_rsp.clone()),
        Message::N2nHoCompleteConfirm(complete_rsp),
    ];
    let mut frames: Vec<Frame> = messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let mut f = Frame::message(
                id("enbc1@edgemob"),
                id("enbc2@edgemob"),
                Tid::new(0x100 + i as u16),
                m,
            );
            f.flags.ack_req = i % 2 == 0;
            f
        })
        .collect();
    frames.push(Frame::ack(
        id("enbc2@edgemob"),
        id("enbc1@edgemob"),
        Mid(0x3409),
        Tid::new(0xFFF),
    ));
    frames
}

fn tshark_fields(frames: &[Vec<u8>], fields: &[&str]) -> Vec<Vec<String>> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("edgemob-mih-tshark-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hex = dir.join("frames.txt");
    let pcap = dir.join("frames.pcap");
    let mut text = String::new();
    for f in frames {
        for (i, chunk) in f.chunks(16).enumerate() {
            write!(text, "{:06x}", i * 16).unwrap();
            for b in chunk {
                write!(text, " {b:02x}").unwrap();
            }
            text.push('\n');
        }
    }
    std::fs::write(&hex, text).unwrap();
    let st = Command::new("text2pcap")
        .args(["-q", "-u", "4551,4551"])
        .arg(&hex)
        .arg(&pcap)
        .status()
        .expect("text2pcap not found: run scripts/install-deps.sh (Debian package tshark)");
    assert!(st.success());
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(&pcap)
        .args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark not found: run scripts/install-deps.sh (Debian package tshark)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

fn hex(v: u16) -> String {
    format!("0x{v:04x}")
}

#[test]
fn tshark_agrees_with_every_frame_type() {
    let frames = every_frame_type();
    let bytes: Vec<Vec<u8>> = frames.iter().map(|f| f.to_vec().unwrap()).collect();
    let rows = tshark_fields(
        &bytes,
        &[
            "mih.service_id",
            "mih.opcode",
            "mih.action_id",
            "mih.tid",
            "mih.acq_req",
            "mih.acq_resp",
            "mih.pay_len",
            "mih.mihf_id",
            "mih.tlv_type",
            "mih.status",
        ],
    );
    assert_eq!(rows.len(), frames.len(), "one dissected packet per frame");
    for ((frame, raw), row) in frames.iter().zip(&bytes).zip(&rows) {
        let mid = frame.mid();
        let what = match &frame.body {
            Body::Message(m) => m.name(),
            Body::Ack(_) => "ACK",
        };
        assert_eq!(row[0], hex(mid.sid_raw() as u16), "SID of {what}");
        assert_eq!(row[1], hex(mid.opcode() as u16), "opcode of {what}");
        assert_eq!(row[2], hex(mid.aid()), "AID of {what}");
        assert_eq!(row[3], frame.tid.get().to_string(), "TID of {what}");
        let flag = |b: bool| if b { "1" } else { "0" };
        assert_eq!(row[4], flag(frame.flags.ack_req), "ACK-Req of {what}");
        assert_eq!(
            row[5],
            flag(frame.flags.ack_rsp || matches!(frame.body, Body::Ack(_))),
            "ACK-Rsp of {what}"
        );
        assert_eq!(
            row[6],
            (raw.len() - HEADER_LEN).to_string(),
            "payload length of {what}"
        );
        // Source and Destination MIHF IDs come first, in that order.
        let ids: Vec<&str> = row[7].split(',').collect();
        assert_eq!(ids[0], frame.src.to_string(), "source MIHF ID of {what}");
        assert_eq!(
            ids[1],
            frame.dst.to_string(),
            "destination MIHF ID of {what}"
        );
        // The TLV types tshark walked are exactly the ones we wrote, which
        // also proves every TLV length (long forms included) was read right.
        let ours: Vec<String> = tlv::TlvReader::new(&raw[HEADER_LEN..])
            .map(|t| t.unwrap().tlv_type.to_string())
            .collect();
        assert_eq!(row[8], ours.join(","), "TLV sequence of {what}");
        if let Body::Message(m) = &frame.body {
            if let Some(status) = status_of(m) {
                assert_eq!(row[9], status.0.to_string(), "status of {what}");
            }
            if let Some(mn) = mn_of(m) {
                assert_eq!(
                    ids.get(2).copied(),
                    Some(mn.to_string().as_str()),
                    "MN MIHF ID of {what}"
                );
            }
        }
    }
}

#[test]
fn tshark_reads_long_tlv_lengths_like_we_do() {
    // A vendor TLV over 128 octets followed by another TLV: tshark must land
    // on the TLV after it, which it only does if it read the long length.
    let Message::N2nHoCommitRequest(mut req) = sample_commit_request() else {
        unreachable!()
    };
    req.edgemob.as_mut().unwrap().services[0].name = vec![b'v'; 700].into();
    req.requested_resources = Some(Box::default());
    let f = Frame::message(
        id("a"),
        id("b"),
        Tid::new(5),
        Message::N2nHoCommitRequest(req),
    );
    let raw = f.to_vec().unwrap();
    let rows = tshark_fields(
        std::slice::from_ref(&raw),
        &["mih.tlv_type", "mih.tlv_length_ext", "mih.mihf_id"],
    );
    let ours: Vec<String> = tlv::TlvReader::new(&raw[HEADER_LEN..])
        .map(|t| t.unwrap().tlv_type.to_string())
        .collect();
    assert_eq!(rows[0][0], ours.join(","));
    let vendor_len = tlv::TlvReader::new(&raw[HEADER_LEN..])
        .map(|t| t.unwrap())
        .find(|t| t.tlv_type == 100)
        .unwrap()
        .value
        .len();
    // tshark shows the octets after 0x80|n, i.e. length - 128
    assert_eq!(rows[0][1], (vendor_len - 128).to_string());
}

fn status_of(m: &Message) -> Option<Status> {
    match m {
        Message::CapabilityDiscoverResponse(r) | Message::CapabilityDiscoverConfirm(r) => {
            Some(r.status)
        }
        Message::N2nHoCommitResponse(r) | Message::N2nHoCommitConfirm(r) => Some(r.status),
        Message::N2nHoCompleteResponse(r) | Message::N2nHoCompleteConfirm(r) => Some(r.status),
        _ => None,
    }
}

fn mn_of(m: &Message) -> Option<&MihfId> {
    match m {
        Message::N2nHoCommitRequest(r) | Message::N2nHoCommitIndication(r) => Some(&r.mn_mihf_id),
        Message::N2nHoCommitResponse(r) | Message::N2nHoCommitConfirm(r) => Some(&r.mn_mihf_id),
        Message::N2nHoCompleteRequest(r) | Message::N2nHoCompleteIndication(r) => {
            Some(&r.mn_mihf_id)
        }
        Message::N2nHoCompleteResponse(r) | Message::N2nHoCompleteConfirm(r) => Some(&r.mn_mihf_id),
        _ => None,
    }
}

//! Strategies producing arbitrary, valid MIH values for property tests.
#![allow(dead_code)]

use bytes::Bytes;
use edgemob_mih::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};

pub fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

pub fn mihf_id() -> impl Strategy<Value = MihfId> {
    prop_oneof![
        "[a-z0-9.@-]{0,40}".prop_map(|s| MihfId::try_from(s.as_str()).unwrap()),
        vec(any::<u8>(), 0..=253).prop_map(|v| MihfId::new(v).unwrap()),
    ]
}

pub fn link_addr() -> impl Strategy<Value = LinkAddr> {
    prop_oneof![
        (any::<u16>(), bytes(20)).prop_map(|(family, addr)| LinkAddr::Mac { family, addr }),
        (any::<[u8; 3]>(), any::<u32>())
            .prop_map(|(plmn, cell_id)| LinkAddr::Cell3g { plmn, cell_id }),
        (any::<[u8; 3]>(), any::<u16>(), any::<u16>())
            .prop_map(|(plmn, lac, ci)| LinkAddr::Cell2g { plmn, lac, ci }),
        bytes(300).prop_map(LinkAddr::Addr3gpp),
        bytes(20).prop_map(LinkAddr::Addr3gpp2),
        bytes(20).prop_map(LinkAddr::OtherL2),
    ]
}

pub fn link_id() -> impl Strategy<Value = LinkId> {
    (any::<u8>(), link_addr()).prop_map(|(t, addr)| LinkId {
        link_type: LinkType(t),
        addr,
    })
}

pub fn link_tuple_id() -> impl Strategy<Value = LinkTupleId> {
    (link_id(), option::of(link_addr())).prop_map(|(link, poa)| LinkTupleId { link, poa })
}

fn cos_list() -> impl Strategy<Value = Vec<CosValue>> {
    vec(
        (any::<u8>(), any::<u16>()).prop_map(|(cos_id, value)| CosValue { cos_id, value }),
        0..50,
    )
}

pub fn qos() -> impl Strategy<Value = QosList> {
    (
        any::<u8>(),
        cos_list(),
        cos_list(),
        cos_list(),
        cos_list(),
        cos_list(),
    )
        .prop_map(|(num_cos, a, b, c, d, e)| QosList {
            num_cos,
            min_pk_tx_delay: a,
            avg_pk_tx_delay: b,
            max_pk_tx_delay: c,
            pk_delay_jitter: d,
            pk_loss_rate: e,
        })
}

pub fn tsp() -> impl Strategy<Value = TspContainer> {
    prop_oneof![
        Just(TspContainer::Null),
        any::<u8>().prop_map(TspContainer::PredefinedConfig),
        bytes(200).prop_map(TspContainer::Carrier),
    ]
}

pub fn edgemob_info() -> impl Strategy<Value = EdgemobInfo> {
    (
        option::of(any::<u64>()),
        option::of(any::<IpAddr>()),
        option::of(any::<u32>()),
        vec(
            (
                bytes(40),
                vec(any::<u16>(), 0..10),
                any::<u32>(),
                any::<u16>(),
            )
                .prop_map(|(name, fpts, context_bytes, connections)| ServiceDemand {
                    name,
                    fpts,
                    context_bytes,
                    connections,
                }),
            0..8,
        ),
        option::of((any::<u16>(), bytes(200)).prop_map(|(code, text)| Reason { code, text })),
        vec(moving_connection(), 0..6),
    )
        .prop_map(
            |(migration_id, ue_address, source_cell, services, reason, connections)| EdgemobInfo {
                migration_id,
                ue_address,
                source_cell,
                services,
                reason,
                connections,
            },
        )
}

/// A 4-tuple whose two ends share a family, as every real one does.
pub fn moving_connection() -> impl Strategy<Value = MovingConnection> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<u16>(),
            any::<[u8; 4]>(),
            any::<u16>()
        )
            .prop_map(|(l, lp, p, pp)| MovingConnection {
                local: SocketAddr::from((l, lp)),
                peer: SocketAddr::from((p, pp)),
            }),
        (
            any::<[u8; 16]>(),
            any::<u16>(),
            any::<[u8; 16]>(),
            any::<u16>()
        )
            .prop_map(|(l, lp, p, pp)| MovingConnection {
                local: SocketAddr::from((l, lp)),
                peer: SocketAddr::from((p, pp)),
            }),
    ]
}

pub fn message() -> impl Strategy<Value = Message> {
    let cap_req = (
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        option::of(any::<u64>()),
        option::of(any::<u16>()),
    )
        .prop_map(|(e, c, q, t)| CapabilityDiscoverRequest {
            events: e.map(MihEventList),
            commands: c.map(MihCommandList),
            query_types: q.map(QueryTypeList),
            transports: t.map(TransportList),
        });
    let cap_rsp = (any::<u8>(), cap_req.clone()).prop_map(|(s, r)| CapabilityDiscoverResponse {
        status: Status(s),
        events: r.events,
        commands: r.commands,
        query_types: r.query_types,
        transports: r.transports,
    });
    let commit_req = (
        mihf_id(),
        link_id(),
        link_addr(),
        option::of((qos(), tsp(), any::<u8>()).prop_map(|(qos, transport, c)| {
            Box::new(ReqResSet {
                qos,
                transport,
                cause: HoCause(c),
            })
        })),
        option::of(edgemob_info()),
    )
        .prop_map(
            |(mn_mihf_id, mn_link_id, poa, requested_resources, edgemob)| N2nHoCommitRequest {
                mn_mihf_id,
                mn_link_id,
                poa,
                requested_resources,
                edgemob,
            },
        )
        .boxed();
    let commit_rsp = (
        any::<u8>(),
        mihf_id(),
        option::of(link_tuple_id()),
        option::of(
            (qos(), tsp()).prop_map(|(qos, transport)| Box::new(AsgnResSet { qos, transport })),
        ),
        option::of(edgemob_info()),
    )
        .prop_map(
            |(s, mn_mihf_id, link_id, assigned_resources, edgemob)| N2nHoCommitResponse {
                status: Status(s),
                mn_mihf_id,
                link_id,
                assigned_resources,
                edgemob,
            },
        )
        .boxed();
    let complete_req = (
        mihf_id(),
        link_tuple_id(),
        link_tuple_id(),
        any::<u8>(),
        option::of(edgemob_info()),
    )
        .prop_map(
            |(mn_mihf_id, source_link, target_link, r, edgemob)| N2nHoCompleteRequest {
                mn_mihf_id,
                source_link,
                target_link,
                ho_result: HoResult(r),
                edgemob,
            },
        )
        .boxed();
    let complete_rsp = (
        any::<u8>(),
        mihf_id(),
        link_tuple_id(),
        link_tuple_id(),
        option::of(any::<bool>()),
        option::of(edgemob_info()),
    )
        .prop_map(
            |(s, mn_mihf_id, source_link, target_link, resource_retention, edgemob)| {
                N2nHoCompleteResponse {
                    status: Status(s),
                    mn_mihf_id,
                    source_link,
                    target_link,
                    resource_retention,
                    edgemob,
                }
            },
        )
        .boxed();
    prop_oneof![
        cap_req.clone().prop_map(Message::CapabilityDiscoverRequest),
        cap_req.prop_map(Message::CapabilityDiscoverIndication),
        cap_rsp
            .clone()
            .prop_map(Message::CapabilityDiscoverResponse),
        cap_rsp.prop_map(Message::CapabilityDiscoverConfirm),
        commit_req.clone().prop_map(Message::N2nHoCommitRequest),
        commit_req.prop_map(Message::N2nHoCommitIndication),
        commit_rsp.clone().prop_map(Message::N2nHoCommitResponse),
        commit_rsp.prop_map(Message::N2nHoCommitConfirm),
        complete_req.clone().prop_map(Message::N2nHoCompleteRequest),
        complete_req.prop_map(Message::N2nHoCompleteIndication),
        complete_rsp
            .clone()
            .prop_map(Message::N2nHoCompleteResponse),
        complete_rsp.prop_map(Message::N2nHoCompleteConfirm),
    ]
}

/// Any frame edgemob can emit, ACKs included. ACK-Rsp rides only on
/// responses (every response carries a Status TLV, so it cannot be mistaken
/// for a stand-alone ACK).
pub fn frame() -> impl Strategy<Value = Frame> {
    let msg_frame = (
        mihf_id(),
        mihf_id(),
        any::<u16>(),
        any::<[bool; 3]>(),
        message(),
    )
        .prop_map(|(src, dst, tid, [ack_req, ack_rsp, uir], m)| {
            let is_rsp = m.mid().opcode() == Opcode::Response;
            let mut f = Frame::message(src, dst, Tid::new(tid), m);
            f.flags = Flags {
                ack_req,
                ack_rsp: ack_rsp && is_rsp,
                uir,
            };
            f
        });
    let ack = (mihf_id(), mihf_id(), any::<u16>(), any::<u16>())
        .prop_map(|(src, dst, mid, tid)| Frame::ack(src, dst, Mid(mid), Tid::new(tid)));
    prop_oneof![4 => msg_frame, 1 => ack]
}

/// A typical N2N_HO_Commit request as the agent sends it.
pub fn sample_commit_request() -> Message {
    Message::N2nHoCommitRequest(N2nHoCommitRequest {
        mn_mihf_id: MihfId::try_from("imsi-001010000000001").unwrap(),
        mn_link_id: LinkId {
            link_type: LinkType::WIRELESS_OTHER,
            addr: LinkAddr::Cell3g {
                plmn: [0x00, 0xF1, 0x10],
                cell_id: 0x0001_0001,
            },
        },
        poa: LinkAddr::Cell3g {
            plmn: [0x00, 0xF1, 0x10],
            cell_id: 0x0001_0002,
        },
        requested_resources: Some(Box::default()),
        edgemob: Some(EdgemobInfo {
            migration_id: Some(0xDEAD_BEEF),
            ue_address: Some("10.77.0.2".parse().unwrap()),
            source_cell: Some(0x0001_0001),
            services: vec![ServiceDemand {
                name: "video".into(),
                fpts: vec![0xE000, 0xE001],
                context_bytes: 75_000,
                connections: 1,
            }],
            reason: None,
            connections: vec![MovingConnection {
                local: "10.77.0.1:80".parse().unwrap(),
                peer: "10.77.1.2:40000".parse().unwrap(),
            }],
        }),
    })
}

pub fn sample_commit_response(status: Status) -> Message {
    Message::N2nHoCommitResponse(N2nHoCommitResponse {
        status,
        mn_mihf_id: MihfId::try_from("imsi-001010000000001").unwrap(),
        link_id: None,
        assigned_resources: None,
        edgemob: None,
    })
}

//! Typed MIH messages: the parameters of each primitive and their TLVs.
//!
//! Each action has four primitives. A request and the indication the peer
//! MIHF hands to its MIH-User carry the same parameters; so do a response
//! and the confirm. Source and Destination MIHF ID TLVs are handled by
//! [`crate::Frame`]; the structs here own the TLVs that follow them.

use crate::error::DecodeError;
use crate::header::{Mid, Opcode, ServiceId};
use crate::tlv::{Cursor, TlvReader, tlv_type as t, write_tlv};
use crate::types::*;
use crate::vendor::EdgemobInfo;

/// MIH_Capability_Discover request / indication parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CapabilityDiscoverRequest {
    pub events: Option<MihEventList>,
    pub commands: Option<MihCommandList>,
    pub query_types: Option<QueryTypeList>,
    pub transports: Option<TransportList>,
}

/// MIH_Capability_Discover response / confirm parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityDiscoverResponse {
    pub status: Status,
    pub events: Option<MihEventList>,
    pub commands: Option<MihCommandList>,
    pub query_types: Option<QueryTypeList>,
    pub transports: Option<TransportList>,
}

/// MIH_N2N_HO_Commit request / indication: the serving network asks the
/// target network to commit to a handover of a mobile node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct N2nHoCommitRequest {
    /// The mobile node (UE) being handed over.
    pub mn_mihf_id: MihfId,
    /// The UE's current link.
    pub mn_link_id: LinkId,
    /// The target point of attachment (the target eNodeB cell).
    pub poa: LinkAddr,
    /// Boxed: rarely sent, and large (five QoS lists).
    pub requested_resources: Option<Box<ReqResSet>>,
    /// UE address, services, migration id.
    pub edgemob: Option<EdgemobInfo>,
}

/// MIH_N2N_HO_Commit response / confirm: the target's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct N2nHoCommitResponse {
    pub status: Status,
    pub mn_mihf_id: MihfId,
    pub link_id: Option<LinkTupleId>,
    /// Boxed: rarely sent, and large (five QoS lists).
    pub assigned_resources: Option<Box<AsgnResSet>>,
    /// Migration id echoed, and the refusal reason if any.
    pub edgemob: Option<EdgemobInfo>,
}

/// MIH_N2N_HO_Complete request / indication: the handover has finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct N2nHoCompleteRequest {
    pub mn_mihf_id: MihfId,
    pub source_link: LinkTupleId,
    pub target_link: LinkTupleId,
    pub ho_result: HoResult,
    pub edgemob: Option<EdgemobInfo>,
}

/// MIH_N2N_HO_Complete response / confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct N2nHoCompleteResponse {
    pub status: Status,
    pub mn_mihf_id: MihfId,
    pub source_link: LinkTupleId,
    pub target_link: LinkTupleId,
    pub resource_retention: Option<bool>,
    pub edgemob: Option<EdgemobInfo>,
}

/// TLVs found in a payload, by position in the message's list of known types.
struct Found<'a, const N: usize> {
    message: &'static str,
    types: [u8; N],
    slots: [Option<&'a [u8]>; N],
}

/// Sorts a payload's TLVs into the slots of a message. Unknown TLVs and
/// other vendors' Vendor-specific TLVs are skipped; repeats are errors.
fn collect<'a, const N: usize>(
    payload: &'a [u8],
    types: [u8; N],
    message: &'static str,
) -> Result<Found<'a, N>, DecodeError> {
    let mut slots = [None; N];
    for tlv in TlvReader::new(payload) {
        let tlv = tlv?;
        if tlv.tlv_type == t::VENDOR_SPECIFIC && !EdgemobInfo::is_ours(tlv.value) {
            continue;
        }
        if let Some(i) = types.iter().position(|&ty| ty == tlv.tlv_type)
            && slots[i].replace(tlv.value).is_some()
        {
            return Err(DecodeError::DuplicateTlv {
                message,
                tlv_type: tlv.tlv_type,
            });
        }
    }
    Ok(Found {
        message,
        types,
        slots,
    })
}

impl<const N: usize> Found<'_, N> {
    fn optional<T>(
        &self,
        i: usize,
        name: &'static str,
        f: impl FnOnce(&mut Cursor<'_>) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        let Some(v) = self.slots[i] else {
            return Ok(None);
        };
        let mut c = Cursor::new(v, self.types[i], name);
        let out = f(&mut c)?;
        c.finish()?;
        Ok(Some(out))
    }

    fn required<T>(
        &self,
        i: usize,
        name: &'static str,
        f: impl FnOnce(&mut Cursor<'_>) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        self.optional(i, name, f)?.ok_or(DecodeError::MissingTlv {
            message: self.message,
            tlv_type: self.types[i],
            name,
        })
    }

    fn vendor(&self, i: usize) -> Result<Option<EdgemobInfo>, DecodeError> {
        self.slots[i].map(EdgemobInfo::decode).transpose()
    }
}

fn status(c: &mut Cursor<'_>) -> Result<Status, DecodeError> {
    Ok(Status(c.u8()?))
}

fn boolean(c: &mut Cursor<'_>) -> Result<bool, DecodeError> {
    match c.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(c.bad("BOOLEAN must be 0 or 1")),
    }
}

fn put<T>(out: &mut Vec<u8>, ty: u8, v: &Option<T>, f: impl FnOnce(&T, &mut Vec<u8>)) {
    if let Some(v) = v {
        write_tlv(out, ty, |o| f(v, o));
    }
}

fn put_vendor(out: &mut Vec<u8>, v: &Option<EdgemobInfo>) {
    if let Some(v) = v {
        v.encode_tlv(out);
    }
}

impl CapabilityDiscoverRequest {
    const TLVS: [u8; 4] = [
        t::MIH_EVENT_LIST,
        t::MIH_COMMAND_LIST,
        t::MIIS_QUERY_TYPE_LIST,
        t::TRANSPORT_OPTION_LIST,
    ];
    fn encode(&self, out: &mut Vec<u8>) {
        put(out, t::MIH_EVENT_LIST, &self.events, MihEventList::encode);
        put(
            out,
            t::MIH_COMMAND_LIST,
            &self.commands,
            MihCommandList::encode,
        );
        put(
            out,
            t::MIIS_QUERY_TYPE_LIST,
            &self.query_types,
            QueryTypeList::encode,
        );
        put(
            out,
            t::TRANSPORT_OPTION_LIST,
            &self.transports,
            TransportList::encode,
        );
    }
    fn decode(p: &[u8], name: &'static str) -> Result<Self, DecodeError> {
        let f = collect(p, Self::TLVS, name)?;
        Ok(Self {
            events: f.optional(0, "MIH event list", MihEventList::decode)?,
            commands: f.optional(1, "MIH command list", MihCommandList::decode)?,
            query_types: f.optional(2, "query type list", QueryTypeList::decode)?,
            transports: f.optional(3, "transport option list", TransportList::decode)?,
        })
    }
}

impl CapabilityDiscoverResponse {
    const TLVS: [u8; 5] = [
        t::STATUS,
        t::MIH_EVENT_LIST,
        t::MIH_COMMAND_LIST,
        t::MIIS_QUERY_TYPE_LIST,
        t::TRANSPORT_OPTION_LIST,
    ];
    fn encode(&self, out: &mut Vec<u8>) {
        write_tlv(out, t::STATUS, |o| o.push(self.status.0));
        put(out, t::MIH_EVENT_LIST, &self.events, MihEventList::encode);
        put(
            out,
            t::MIH_COMMAND_LIST,
            &self.commands,
            MihCommandList::encode,
        );
        put(
            out,
            t::MIIS_QUERY_TYPE_LIST,
            &self.query_types,
            QueryTypeList::encode,
        );
        put(
            out,
            t::TRANSPORT_OPTION_LIST,
            &self.transports,
            TransportList::encode,
        );
    }
    fn decode(p: &[u8], name: &'static str) -> Result<Self, DecodeError> {
        let f = collect(p, Self::TLVS, name)?;
        Ok(Self {
            status: f.required(0, "status", status)?,
            events: f.optional(1, "MIH event list", MihEventList::decode)?,
            commands: f.optional(2, "MIH command list", MihCommandList::decode)?,
            query_types: f.optional(3, "query type list", QueryTypeList::decode)?,
            transports: f.optional(4, "transport option list", TransportList::decode)?,
        })
    }
}

impl N2nHoCommitRequest {
    const TLVS: [u8; 5] = [
        t::MN_MIHF_ID,
        t::MN_LINK_ID,
        t::POA,
        t::REQUESTED_RESOURCE_SET,
        t::VENDOR_SPECIFIC,
    ];
    fn encode(&self, out: &mut Vec<u8>) {
        write_tlv(out, t::MN_MIHF_ID, |o| self.mn_mihf_id.encode(o));
        write_tlv(out, t::MN_LINK_ID, |o| self.mn_link_id.encode(o));
        write_tlv(out, t::POA, |o| self.poa.encode(o));
        put(
            out,
            t::REQUESTED_RESOURCE_SET,
            &self.requested_resources.as_deref(),
            |r, o| r.encode(o),
        );
        put_vendor(out, &self.edgemob);
    }
    fn decode(p: &[u8], name: &'static str) -> Result<Self, DecodeError> {
        let f = collect(p, Self::TLVS, name)?;
        Ok(Self {
            mn_mihf_id: f.required(0, "MN MIHF ID", MihfId::decode)?,
            mn_link_id: f.required(1, "MN link ID", LinkId::decode)?,
            poa: f.required(2, "PoA", LinkAddr::decode)?,
            requested_resources: f
                .optional(3, "requested resource set", ReqResSet::decode)?
                .map(Box::new),
            edgemob: f.vendor(4)?,
        })
    }
}

impl N2nHoCommitResponse {
    const TLVS: [u8; 5] = [
        t::STATUS,
        t::MN_MIHF_ID,
        t::LINK_IDENTIFIER,
        t::ASSIGNED_RESOURCE_SET,
        t::VENDOR_SPECIFIC,
    ];
    fn encode(&self, out: &mut Vec<u8>) {
        write_tlv(out, t::STATUS, |o| o.push(self.status.0));
        write_tlv(out, t::MN_MIHF_ID, |o| self.mn_mihf_id.encode(o));
        put(out, t::LINK_IDENTIFIER, &self.link_id, LinkTupleId::encode);
        put(
            out,
            t::ASSIGNED_RESOURCE_SET,
            &self.assigned_resources.as_deref(),
            |r, o| r.encode(o),
        );
        put_vendor(out, &self.edgemob);
    }
    fn decode(p: &[u8], name: &'static str) -> Result<Self, DecodeError> {
        let f = collect(p, Self::TLVS, name)?;
        Ok(Self {
            status: f.required(0, "status", status)?,
            mn_mihf_id: f.required(1, "MN MIHF ID", MihfId::decode)?,
            link_id: f.optional(2, "link identifier", LinkTupleId::decode)?,
            assigned_resources: f
                .optional(3, "assigned resource set", AsgnResSet::decode)?
                .map(Box::new),
            edgemob: f.vendor(4)?,
        })
    }
}

impl N2nHoCompleteRequest {
    const TLVS: [u8; 5] = [
        t::MN_MIHF_ID,
        t::LINK_IDENTIFIER,
        t::NEW_LINK_IDENTIFIER,
        t::HO_RESULT,
        t::VENDOR_SPECIFIC,
    ];
    fn encode(&self, out: &mut Vec<u8>) {
        write_tlv(out, t::MN_MIHF_ID, |o| self.mn_mihf_id.encode(o));
        write_tlv(out, t::LINK_IDENTIFIER, |o| self.source_link.encode(o));
        write_tlv(out, t::NEW_LINK_IDENTIFIER, |o| self.target_link.encode(o));
        write_tlv(out, t::HO_RESULT, |o| o.push(self.ho_result.0));
        put_vendor(out, &self.edgemob);
    }
    fn decode(p: &[u8], name: &'static str) -> Result<Self, DecodeError> {
        let f = collect(p, Self::TLVS, name)?;
        Ok(Self {
            mn_mihf_id: f.required(0, "MN MIHF ID", MihfId::decode)?,
            source_link: f.required(1, "link identifier", LinkTupleId::decode)?,
            target_link: f.required(2, "new link identifier", LinkTupleId::decode)?,
            ho_result: f.required(3, "HO result", |c| Ok(HoResult(c.u8()?)))?,
            edgemob: f.vendor(4)?,
        })
    }
}

impl N2nHoCompleteResponse {
    const TLVS: [u8; 6] = [
        t::STATUS,
        t::MN_MIHF_ID,
        t::LINK_IDENTIFIER,
        t::NEW_LINK_IDENTIFIER,
        t::RESOURCE_RETENTION_STATUS,
        t::VENDOR_SPECIFIC,
    ];
    fn encode(&self, out: &mut Vec<u8>) {
        write_tlv(out, t::STATUS, |o| o.push(self.status.0));
        write_tlv(out, t::MN_MIHF_ID, |o| self.mn_mihf_id.encode(o));
        write_tlv(out, t::LINK_IDENTIFIER, |o| self.source_link.encode(o));
        write_tlv(out, t::NEW_LINK_IDENTIFIER, |o| self.target_link.encode(o));
        put(
            out,
            t::RESOURCE_RETENTION_STATUS,
            &self.resource_retention,
            |b, o| o.push(u8::from(*b)),
        );
        put_vendor(out, &self.edgemob);
    }
    fn decode(p: &[u8], name: &'static str) -> Result<Self, DecodeError> {
        let f = collect(p, Self::TLVS, name)?;
        Ok(Self {
            status: f.required(0, "status", status)?,
            mn_mihf_id: f.required(1, "MN MIHF ID", MihfId::decode)?,
            source_link: f.required(2, "link identifier", LinkTupleId::decode)?,
            target_link: f.required(3, "new link identifier", LinkTupleId::decode)?,
            resource_retention: f.optional(4, "resource retention status", boolean)?,
            edgemob: f.vendor(5)?,
        })
    }
}

/// Action identifiers (AID) of the messages edgemob speaks.
pub mod aid {
    pub const CAPABILITY_DISCOVER: u16 = 1;
    pub const N2N_HO_COMMIT: u16 = 9;
    pub const N2N_HO_COMPLETE: u16 = 11;
}

macro_rules! messages {
    ($( $sid:ident $aid:ident $label:literal {
        $req:ident, $ind:ident : $reqty:ty;
        $rsp:ident, $cnf:ident : $rspty:ty;
    } )*) => {
        /// A typed MIH message: one SAP primitive of one action.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Message {
            $(
                $req($reqty),
                $ind($reqty),
                $rsp($rspty),
                $cnf($rspty),
            )*
        }

        impl Message {
            /// The message identifier this primitive is sent with.
            pub fn mid(&self) -> Mid {
                match self {
                    $(
                        Message::$req(_) => Mid::new(ServiceId::$sid, Opcode::Request, aid::$aid),
                        Message::$ind(_) => Mid::new(ServiceId::$sid, Opcode::Indication, aid::$aid),
                        Message::$rsp(_) => Mid::new(ServiceId::$sid, Opcode::Response, aid::$aid),
                        Message::$cnf(_) => Mid::new(ServiceId::$sid, Opcode::Confirm, aid::$aid),
                    )*
                }
            }

            /// The primitive's name as the standard writes it.
            pub fn name(&self) -> &'static str {
                match self {
                    $(
                        Message::$req(_) => concat!($label, ".request"),
                        Message::$ind(_) => concat!($label, ".indication"),
                        Message::$rsp(_) => concat!($label, ".response"),
                        Message::$cnf(_) => concat!($label, ".confirm"),
                    )*
                }
            }

            pub(crate) fn encode_tlvs(&self, out: &mut Vec<u8>) {
                match self {
                    $(
                        Message::$req(m) | Message::$ind(m) => m.encode(out),
                        Message::$rsp(m) | Message::$cnf(m) => m.encode(out),
                    )*
                }
            }

            /// Decodes the TLVs after the MIHF IDs of a message with `mid`.
            pub(crate) fn decode_tlvs(mid: Mid, payload: &[u8]) -> Result<Message, DecodeError> {
                $(
                    if mid.sid() == Some(ServiceId::$sid) && mid.aid() == aid::$aid {
                        return Ok(match mid.opcode() {
                            Opcode::Request => Message::$req(<$reqty>::decode(payload, concat!($label, ".request"))?),
                            Opcode::Indication => Message::$ind(<$reqty>::decode(payload, concat!($label, ".indication"))?),
                            Opcode::Response => Message::$rsp(<$rspty>::decode(payload, concat!($label, ".response"))?),
                            Opcode::Confirm => Message::$cnf(<$rspty>::decode(payload, concat!($label, ".confirm"))?),
                        });
                    }
                )*
                Err(DecodeError::UnknownMessage(mid))
            }

            /// The indication a peer MIHF hands its user for this request
            /// (`None` if this is not a request).
            pub fn into_indication(self) -> Option<Message> {
                match self {
                    $( Message::$req(m) => Some(Message::$ind(m)), )*
                    _ => None,
                }
            }

            /// The confirm an MIHF hands its user for this response
            /// (`None` if this is not a response).
            pub fn into_confirm(self) -> Option<Message> {
                match self {
                    $( Message::$rsp(m) => Some(Message::$cnf(m)), )*
                    _ => None,
                }
            }
        }
    };
}

messages! {
    Management CAPABILITY_DISCOVER "MIH_Capability_Discover" {
        CapabilityDiscoverRequest, CapabilityDiscoverIndication: CapabilityDiscoverRequest;
        CapabilityDiscoverResponse, CapabilityDiscoverConfirm: CapabilityDiscoverResponse;
    }
    Command N2N_HO_COMMIT "MIH_N2N_HO_Commit" {
        N2nHoCommitRequest, N2nHoCommitIndication: N2nHoCommitRequest;
        N2nHoCommitResponse, N2nHoCommitConfirm: N2nHoCommitResponse;
    }
    Command N2N_HO_COMPLETE "MIH_N2N_HO_Complete" {
        N2nHoCompleteRequest, N2nHoCompleteIndication: N2nHoCompleteRequest;
        N2nHoCompleteResponse, N2nHoCompleteConfirm: N2nHoCompleteResponse;
    }
}

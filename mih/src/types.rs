//! IEEE 802.21 data types carried in TLV values (Annex F of the standard):
//! MIHF_ID, STATUS, LINK_TYPE, LINK_ADDR, LINK_ID, LINK_TUPLE_ID, QOS_LIST,
//! TSP_CONTAINER, REQ_RES_SET, ASGN_RES_SET, HO_RESULT and the capability
//! bitmaps. Layouts follow the standard as decoded by Wireshark's MIH
//! dissector and ODTONE: CHOICE is one selector octet, LIST and
//! OCTET_STRING are prefixed by a TLV-style length.

use crate::error::{DecodeError, EncodeError};
use crate::tlv::{Cursor, encode_len};
use bytes::Bytes;
use std::fmt;

/// Longest MIHF identifier the standard allows (OCTET_STRING(253)).
pub const MAX_MIHF_ID_LEN: usize = 253;

/// An MIHF identifier: an NAI-style octet string such as `enbc1@edgemob`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MihfId(Bytes);

impl MihfId {
    pub fn new(id: impl Into<Bytes>) -> Result<Self, EncodeError> {
        let b = id.into();
        if b.len() > MAX_MIHF_ID_LEN {
            return Err(EncodeError::MihfIdTooLong(b.len()));
        }
        Ok(MihfId(b))
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.0.len(), out);
        out.extend_from_slice(&self.0);
    }
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        let s = c.octet_string()?;
        if s.len() > MAX_MIHF_ID_LEN {
            return Err(DecodeError::MihfIdTooLong(s.len()));
        }
        Ok(MihfId(Bytes::copy_from_slice(s)))
    }
}

impl TryFrom<&str> for MihfId {
    type Error = EncodeError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        MihfId::new(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl fmt::Display for MihfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for MihfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MihfId({self})")
    }
}

macro_rules! u8_code {
    ($(#[$m:meta])* $name:ident { $($(#[$cm:meta])* $c:ident = $v:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub u8);
        impl $name {
            $($(#[$cm])* pub const $c: $name = $name($v);)*
        }
    };
}

u8_code!(
    /// STATUS: outcome of a request. Unknown codes are kept, not rejected.
    Status {
        SUCCESS = 0,
        UNSPECIFIED_FAILURE = 1,
        REJECTED = 2,
        AUTHORIZATION_FAILURE = 3,
        NETWORK_ERROR = 4,
    }
);

impl Status {
    pub fn is_success(self) -> bool {
        self == Status::SUCCESS
    }
}

u8_code!(
    /// LINK_TYPE. 802.21-2008 has no LTE code; edgemob labels E-UTRAN
    /// links "Wireless - Other" and identifies cells with 3GPP cell ids.
    LinkType {
        GSM = 1,
        GPRS = 2,
        EDGE = 3,
        ETHERNET = 15,
        WIRELESS_OTHER = 18,
        IEEE_802_11 = 19,
        CDMA2000 = 22,
        UMTS = 23,
        CDMA2000_HRPD = 24,
        IEEE_802_16 = 27,
        IEEE_802_20 = 28,
        IEEE_802_22 = 29,
    }
);

u8_code!(
    /// HO_RESULT of a completed handover.
    HoResult {
        SUCCESS = 0,
        FAILURE = 1,
        REJECTION = 2,
    }
);

u8_code!(
    /// HO_CAUSE (the link-down reason codes of the standard).
    HoCause {
        EXPLICIT_DISCONNECT = 0,
        PACKET_TIMEOUT = 1,
        NO_RESOURCE = 2,
        NO_BROADCAST = 3,
        AUTHENTICATION_FAILURE = 4,
        BILLING_FAILURE = 5,
    }
);

/// LINK_ADDR: a CHOICE of link-layer address kinds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LinkAddr {
    /// 0: MAC_ADDR, a TRANSPORT_ADDR (IANA address family + octets).
    Mac { family: u16, addr: Bytes },
    /// 1: 3GPP_3G_CELL_ID: PLMN id and a 32-bit cell id (an E-UTRAN cell
    /// identity fits in its low 28 bits).
    Cell3g { plmn: [u8; 3], cell_id: u32 },
    /// 2: 3GPP_2G_CELL_ID.
    Cell2g { plmn: [u8; 3], lac: u16, ci: u16 },
    /// 3: 3GPP_ADDR.
    Addr3gpp(Bytes),
    /// 4: 3GPP2_ADDR.
    Addr3gpp2(Bytes),
    /// 5: OTHER_L2_ADDR.
    OtherL2(Bytes),
}

impl LinkAddr {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            LinkAddr::Mac { family, addr } => {
                out.push(0);
                out.extend_from_slice(&family.to_be_bytes());
                encode_len(addr.len(), out);
                out.extend_from_slice(addr);
            }
            LinkAddr::Cell3g { plmn, cell_id } => {
                out.push(1);
                out.extend_from_slice(plmn);
                out.extend_from_slice(&cell_id.to_be_bytes());
            }
            LinkAddr::Cell2g { plmn, lac, ci } => {
                out.push(2);
                out.extend_from_slice(plmn);
                out.extend_from_slice(&lac.to_be_bytes());
                out.extend_from_slice(&ci.to_be_bytes());
            }
            LinkAddr::Addr3gpp(b) | LinkAddr::Addr3gpp2(b) | LinkAddr::OtherL2(b) => {
                out.push(match self {
                    LinkAddr::Addr3gpp(_) => 3,
                    LinkAddr::Addr3gpp2(_) => 4,
                    _ => 5,
                });
                encode_len(b.len(), out);
                out.extend_from_slice(b);
            }
        }
    }

    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        let plmn = |c: &mut Cursor<'_>| -> Result<[u8; 3], DecodeError> {
            let b = c.take(3)?;
            Ok([b[0], b[1], b[2]])
        };
        Ok(match c.u8()? {
            0 => LinkAddr::Mac {
                family: c.u16()?,
                addr: Bytes::copy_from_slice(c.octet_string()?),
            },
            1 => LinkAddr::Cell3g {
                plmn: plmn(c)?,
                cell_id: c.u32()?,
            },
            2 => LinkAddr::Cell2g {
                plmn: plmn(c)?,
                lac: c.u16()?,
                ci: c.u16()?,
            },
            3 => LinkAddr::Addr3gpp(Bytes::copy_from_slice(c.octet_string()?)),
            4 => LinkAddr::Addr3gpp2(Bytes::copy_from_slice(c.octet_string()?)),
            5 => LinkAddr::OtherL2(Bytes::copy_from_slice(c.octet_string()?)),
            _ => return Err(c.bad("unknown LINK_ADDR choice")),
        })
    }
}

/// LINK_ID: the link type and the link's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkId {
    pub link_type: LinkType,
    pub addr: LinkAddr,
}

impl LinkId {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.link_type.0);
        self.addr.encode(out);
    }
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        Ok(LinkId {
            link_type: LinkType(c.u8()?),
            addr: LinkAddr::decode(c)?,
        })
    }
}

/// LINK_TUPLE_ID: a LINK_ID and, optionally, the PoA it is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkTupleId {
    pub link: LinkId,
    pub poa: Option<LinkAddr>,
}

impl LinkTupleId {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        self.link.encode(out);
        match &self.poa {
            None => out.push(0),
            Some(a) => {
                out.push(1);
                a.encode(out);
            }
        }
    }
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        let link = LinkId::decode(c)?;
        let poa = match c.u8()? {
            0 => None,
            1 => Some(LinkAddr::decode(c)?),
            _ => return Err(c.bad("unknown PoA choice in LINK_TUPLE_ID")),
        };
        Ok(LinkTupleId { link, poa })
    }
}

/// One (class of service, value) pair of a QoS parameter list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CosValue {
    pub cos_id: u8,
    pub value: u16,
}

/// QOS_LIST: number of classes of service and five per-class parameter lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct QosList {
    pub num_cos: u8,
    pub min_pk_tx_delay: Vec<CosValue>,
    pub avg_pk_tx_delay: Vec<CosValue>,
    pub max_pk_tx_delay: Vec<CosValue>,
    pub pk_delay_jitter: Vec<CosValue>,
    pub pk_loss_rate: Vec<CosValue>,
}

impl QosList {
    fn lists(&self) -> [&Vec<CosValue>; 5] {
        [
            &self.min_pk_tx_delay,
            &self.avg_pk_tx_delay,
            &self.max_pk_tx_delay,
            &self.pk_delay_jitter,
            &self.pk_loss_rate,
        ]
    }
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.num_cos);
        for list in self.lists() {
            encode_len(list.len(), out);
            for v in list {
                out.push(v.cos_id);
                out.extend_from_slice(&v.value.to_be_bytes());
            }
        }
    }
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        let num_cos = c.u8()?;
        let mut read = || -> Result<Vec<CosValue>, DecodeError> {
            let n = c.list_len(3)?;
            (0..n)
                .map(|_| {
                    Ok(CosValue {
                        cos_id: c.u8()?,
                        value: c.u16()?,
                    })
                })
                .collect()
        };
        Ok(QosList {
            num_cos,
            min_pk_tx_delay: read()?,
            avg_pk_tx_delay: read()?,
            max_pk_tx_delay: read()?,
            pk_delay_jitter: read()?,
            pk_loss_rate: read()?,
        })
    }
}

/// TSP_CONTAINER: transparent container for link-specific resource data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum TspContainer {
    #[default]
    Null,
    PredefinedConfig(u8),
    Carrier(Bytes),
}

impl TspContainer {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TspContainer::Null => out.push(0),
            TspContainer::PredefinedConfig(id) => out.extend_from_slice(&[1, *id]),
            TspContainer::Carrier(b) => {
                out.push(2);
                encode_len(b.len(), out);
                out.extend_from_slice(b);
            }
        }
    }
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        Ok(match c.u8()? {
            0 => TspContainer::Null,
            1 => TspContainer::PredefinedConfig(c.u8()?),
            2 => TspContainer::Carrier(Bytes::copy_from_slice(c.octet_string()?)),
            _ => return Err(c.bad("unknown TSP_CONTAINER choice")),
        })
    }
}

/// REQ_RES_SET: resources the MN asks the target to reserve.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ReqResSet {
    pub qos: QosList,
    pub transport: TspContainer,
    pub cause: HoCause,
}

impl Default for HoCause {
    fn default() -> Self {
        HoCause::EXPLICIT_DISCONNECT
    }
}

impl ReqResSet {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        self.qos.encode(out);
        self.transport.encode(out);
        out.push(self.cause.0);
    }
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        Ok(ReqResSet {
            qos: QosList::decode(c)?,
            transport: TspContainer::decode(c)?,
            cause: HoCause(c.u8()?),
        })
    }
}

/// ASGN_RES_SET: resources the target assigned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AsgnResSet {
    pub qos: QosList,
    pub transport: TspContainer,
}

impl AsgnResSet {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        self.qos.encode(out);
        self.transport.encode(out);
    }
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        Ok(AsgnResSet {
            qos: QosList::decode(c)?,
            transport: TspContainer::decode(c)?,
        })
    }
}

macro_rules! bitmap {
    ($(#[$m:meta])* $name:ident($t:ty) { $($(#[$bm:meta])* $c:ident = $bit:expr),* $(,)? }) => {
        $(#[$m])*
        ///
        /// Bit 0 is the most significant bit of the first octet (network order).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub $t);
        impl $name {
            $($(#[$bm])* pub const $c: $name = $name(1 << (<$t>::BITS - 1 - $bit));)*
            pub const fn union(self, other: $name) -> $name { $name(self.0 | other.0) }
            pub const fn contains(self, other: $name) -> bool { self.0 & other.0 == other.0 }
            pub(crate) fn encode(&self, out: &mut Vec<u8>) { out.extend_from_slice(&self.0.to_be_bytes()); }
            pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
                let b = c.take(std::mem::size_of::<$t>())?;
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                Ok($name(<$t>::from_be_bytes(a)))
            }
        }
    };
}

bitmap!(
    /// MIH_EVT_LIST (BITMAP(32)): events an MIHF supports.
    MihEventList(u32) {
        LINK_DETECTED = 0,
        LINK_UP = 1,
        LINK_DOWN = 2,
        LINK_PARAMETERS_REPORT = 3,
        LINK_GOING_DOWN = 4,
        LINK_HANDOVER_IMMINENT = 5,
        LINK_HANDOVER_COMPLETE = 6,
        LINK_PDU_TRANSMIT_STATUS = 7,
    }
);

bitmap!(
    /// MIH_CMD_LIST (BITMAP(32)): commands an MIHF supports.
    MihCommandList(u32) {
        LINK_GET_PARAMETERS = 0,
        LINK_CONFIGURE_THRESHOLDS = 1,
        LINK_ACTIONS = 2,
        /// MIH_Net_HO_Candidate_Query, MIH_Net_HO_Commit,
        /// MIH_N2N_HO_Query_Resources, MIH_N2N_HO_Commit, MIH_N2N_HO_Complete.
        NET_HO = 3,
        /// MIH_MN_HO_Candidate_Query, MIH_MN_HO_Commit, MIH_MN_HO_Complete.
        MN_HO = 4,
    }
);

bitmap!(
    /// MIH_TRANS_LIST (BITMAP(16)): transports an MIHF accepts.
    TransportList(u16) {
        UDP = 0,
        TCP = 1,
    }
);

bitmap!(
    /// MIH_IQ_TYPE_LST (BITMAP(64)): information-service query types.
    QueryTypeList(u64) {
        BINARY_DATA = 0,
        RDF_DATA = 1,
        RDF_SCHEMA_URL = 2,
        RDF_SCHEMA = 3,
    }
);

//! ns-3 X2 captures → handover traces. Sans-IO: every function here takes
//! bytes and returns values; none opens a file.
//!
//! ## What is decoded
//!
//! ns-3's `NoBackhaulEpcHelper` (and `PointToPointEpcHelper`, which derives
//! from it) writes a capture of every X2 link when its attribute
//! `X2LinkEnablePcap` is true: libpcap format, link type PPP (9), whose
//! frames start with a 2-octet PPP protocol field (0x0021 = IPv4; the
//! HDLC-like `ff 03` address and control octets are accepted too). X2-C is
//! UDP port 4444; ns-3 does not encode X2AP in ASN.1 but writes its own
//! headers (`src/lte/model/epc-x2-header.cc`), all big-endian:
//!
//! ```text
//! EpcX2Header (7 octets)
//!   u8 messageType      0 initiating, 1 successful outcome, 2 unsuccessful outcome
//!   u8 procedureCode    0 HandoverPreparation, 1 HandoverCancel, 2 LoadIndication,
//!                       4 SnStatusTransfer, 5 UeContextRelease, 10 ResourceStatusReporting
//!   u8 criticality      0
//!   u8 lengthOfIes + 3  (wraps modulo 256: not checked)
//!   u16 0
//!   u8 numberOfIes
//! HANDOVER REQUEST (initiating, procedure 0), 50 octets + 48 per bearer
//!   u16 10, u8 0, u8 2, u16 oldEnbUeX2apId        (= the UE's RNTI at the source)
//!   u16 5,  u8 0x40, u8 1, u8 cause
//!   u16 11, u8 0, u8 8, u32 PLMN (0x123456), u32 targetCellId << 4
//!   u16 14, u8 0, u32 mmeUeS1apId                 (ns-3 sets it to the UE's IMSI)
//!         u64 UE-AMBR DL, u64 UE-AMBR UL, u32 number of bearers, 48 octets per bearer
//!   then the RRC HandoverPreparationInformation (not decoded)
//! HANDOVER REQUEST ACKNOWLEDGE (successful outcome, procedure 0)
//!   u16 oldEnbUeX2apId, u16 newEnbUeX2apId (= the UE's RNTI at the target),
//!   u32 n, 10 octets per admitted bearer, u32 m, 4 octets per not-admitted bearer,
//!   then the RRC handover command (not decoded)
//! HANDOVER PREPARATION FAILURE (unsuccessful outcome, procedure 0)
//!   u16 oldEnbUeX2apId, u16 cause, u16 criticalityDiagnostics
//! HANDOVER CANCEL (ns-3 sends it as successful outcome, procedure 1)
//!   u16 oldEnbUeX2apId, u16 newEnbUeX2apId, u16 cause
//! UE CONTEXT RELEASE (initiating, procedure 5)
//!   u16 oldEnbUeX2apId, u16 newEnbUeX2apId
//! ```
//!
//! ## From messages to trace records
//!
//! * `handover_start` at the HANDOVER REQUEST ACKNOWLEDGE — the moment ns-3
//!   fires `LteEnbRrc/HandoverStart` at the source. Its RNTI is
//!   oldEnbUeX2apId, `target_rnti` newEnbUeX2apId. The ACK is matched to its
//!   REQUEST by old X2AP id and the link's two addresses (reversed); the
//!   REQUEST gives the target cell and the IMSI (from mmeUeS1apId, 32 bits).
//! * `handover_end_ok` at the UE CONTEXT RELEASE, which ns-3's target sends
//!   in the same instant it fires `LteEnbRrc/HandoverEndOk` (on the PATH
//!   SWITCH REQUEST ACKNOWLEDGE). Its RNTI is newEnbUeX2apId.
//! * `handover_preparation_failure` and `handover_cancel` likewise.
//! * Other X2 messages (SN STATUS TRANSFER, load and resource reports) are
//!   checked for a complete header and otherwise ignored.
//!
//! The source cell is not in any X2 message: it is the cell of the eNB that
//! sent the REQUEST, found from its X2 address ([`Addressing`]): either an
//! explicit table (the scenario's `[x2]`), or ns-3's own addressing: the
//! helper numbers X2 links from 12.0.0.0/30 upwards, calling `NewNetwork()`
//! before each link, so link `k` (0-based) is `12.0.0.0 + 4(k+1)`, its first
//! eNB `.1` and its second `.2` of that /30; `LteHelper::AddX2Interface(enbNodes)`
//! creates the links for every pair `i < j` in order, and with one cell per
//! eNB, the cell of eNB `i` is `i + 1`. Every REQUEST's target cell is
//! checked against the address it was sent to, so a wrong assumption is an
//! error, not a wrong trace.
//!
//! Each X2 link is usually captured at both ends (`x2-<node>-<device>.pcap`),
//! so the same message appears twice: identical messages (same addresses,
//! same octets) from different files within one second are one message,
//! timed at its arrival for an ACK (when the source eNB receives it, as
//! `HandoverStart` fires) and at its sending for the others.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::trace::{EventKind, TraceRecord};

/// X2-C's UDP port in ns-3.
pub const X2C_PORT: u16 = 4444;
/// Largest capture record accepted (64 MiB): anything larger is corrupt.
const MAX_RECORD: usize = 64 << 20;

/// Link types this decoder understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// PPP (9): what ns-3's point-to-point devices write.
    Ppp,
    /// PPP in HDLC-like framing (50).
    PppHdlc,
    /// Ethernet (1).
    Ethernet,
    /// Raw IP (101, 228).
    RawIp,
    /// Linux cooked capture (113).
    LinuxSll,
}

impl LinkType {
    fn from_code(code: u32) -> Option<LinkType> {
        match code {
            9 => Some(LinkType::Ppp),
            50 => Some(LinkType::PppHdlc),
            1 => Some(LinkType::Ethernet),
            101 | 228 => Some(LinkType::RawIp),
            113 => Some(LinkType::LinuxSll),
            _ => None,
        }
    }
}

/// What went wrong while decoding a capture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X2PcapError {
    /// The file is not a libpcap capture.
    #[error("not a libpcap capture: {0}")]
    NotPcap(String),
    /// A link type this decoder does not read.
    #[error("unsupported link type {0} (expected 9, PPP, as ns-3's X2 captures use)")]
    UnsupportedLinkType(u32),
    /// Packet `packet` (1-based, in file order) is malformed.
    #[error("packet {packet}: {message}")]
    Packet {
        /// 1-based packet number (as Wireshark counts).
        packet: usize,
        /// What is wrong.
        message: String,
    },
    /// The X2 addresses cannot be mapped to cells.
    #[error("{0}")]
    Addressing(String),
}

fn packet_err(packet: usize, message: impl Into<String>) -> X2PcapError {
    X2PcapError::Packet {
        packet,
        message: message.into(),
    }
}

/// One captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// 1-based packet number.
    pub number: usize,
    /// Capture time in nanoseconds (for ns-3: since the simulation start).
    pub time_ns: u64,
    /// The captured octets.
    pub data: &'a [u8],
    /// The frame's length on the wire (≥ `data.len()` when snapped).
    pub orig_len: u32,
}

/// A parsed libpcap file: its link type and frames.
#[derive(Debug, Clone)]
pub struct Capture<'a> {
    /// The link type of every frame.
    pub link_type: LinkType,
    /// The frames, in file order.
    pub frames: Vec<Frame<'a>>,
}

/// Parses a libpcap file (either byte order, µs or ns timestamps).
pub fn parse_pcap(bytes: &[u8]) -> Result<Capture<'_>, X2PcapError> {
    if bytes.len() < 24 {
        return Err(X2PcapError::NotPcap(format!(
            "{} octets, shorter than the 24-octet file header",
            bytes.len()
        )));
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let (big_endian, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            return Err(X2PcapError::NotPcap(
                "this is pcapng; convert it with `editcap -F pcap`".into(),
            ));
        }
        m => {
            return Err(X2PcapError::NotPcap(format!(
                "unknown magic number {:02x}{:02x}{:02x}{:02x}",
                m[0], m[1], m[2], m[3]
            )));
        }
    };
    let u32_at = |off: usize| -> u32 {
        let b = [bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let major = if big_endian {
        u16::from_be_bytes([bytes[4], bytes[5]])
    } else {
        u16::from_le_bytes([bytes[4], bytes[5]])
    };
    if major != 2 {
        return Err(X2PcapError::NotPcap(format!(
            "format version {major}, expected 2"
        )));
    }
    let link_code = u32_at(20) & 0xffff;
    let link_type =
        LinkType::from_code(link_code).ok_or(X2PcapError::UnsupportedLinkType(link_code))?;

    let mut frames = Vec::new();
    let mut off = 24;
    let mut number = 0;
    while off < bytes.len() {
        number += 1;
        if bytes.len() - off < 16 {
            return Err(packet_err(
                number,
                format!(
                    "truncated record header ({} of 16 octets)",
                    bytes.len() - off
                ),
            ));
        }
        let secs = u64::from(u32_at(off));
        let frac = u64::from(u32_at(off + 4));
        let incl = u32_at(off + 8) as usize;
        let orig_len = u32_at(off + 12);
        let limit = if nanos { 1_000_000_000 } else { 1_000_000 };
        if frac >= limit {
            return Err(packet_err(
                number,
                format!(
                    "timestamp fraction {frac} is not below {limit} ({})",
                    if nanos { "ns" } else { "µs" }
                ),
            ));
        }
        if incl > MAX_RECORD {
            return Err(packet_err(
                number,
                format!("captured length {incl} is implausible"),
            ));
        }
        off += 16;
        if bytes.len() - off < incl {
            return Err(packet_err(
                number,
                format!(
                    "record truncated: {incl} octets announced, {} left in the file",
                    bytes.len() - off
                ),
            ));
        }
        let time_ns = secs * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        frames.push(Frame {
            number,
            time_ns,
            data: &bytes[off..off + incl],
            orig_len,
        });
        off += incl;
    }
    Ok(Capture { link_type, frames })
}

/// A bounds-checked big-endian reader over one X2 message.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Cursor { data, pos: 0, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.data.len() - self.pos < n {
            return Err(format!(
                "{} truncated: needs {} octets at offset {}, has {}",
                self.what,
                n,
                self.pos,
                self.data.len() - self.pos
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn skip_items(&mut self, count: u32, size: usize, item: &str) -> Result<(), String> {
        let need = (count as usize)
            .checked_mul(size)
            .filter(|&n| n <= self.data.len() - self.pos);
        match need {
            Some(n) => {
                self.pos += n;
                Ok(())
            }
            None => Err(format!(
                "{}: {count} {item}s of {size} octets announced, only {} octets left",
                self.what,
                self.data.len() - self.pos
            )),
        }
    }

    fn expect_ie(&mut self, id: u16, len: Option<u8>) -> Result<(), String> {
        let got = self.u16()?;
        if got != id {
            return Err(format!(
                "{}: expected IE id {id} at offset {}, found {got}",
                self.what,
                self.pos - 2
            ));
        }
        self.u8()?; // criticality
        if let Some(len) = len {
            let got = self.u8()?;
            if got != len {
                return Err(format!(
                    "{}: IE {id} has length {got}, expected {len}",
                    self.what
                ));
            }
        }
        Ok(())
    }
}

/// A decoded ns-3 X2-C message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X2Body {
    /// HANDOVER REQUEST (source → target).
    HandoverRequest {
        /// The UE's RNTI at the source.
        old_enb_ue_x2ap_id: u16,
        /// The handover cause.
        cause: u8,
        /// The cell the UE is handed to.
        target_cell: u32,
        /// ns-3 puts the UE's IMSI here.
        mme_ue_s1ap_id: u32,
        /// E-RABs to set up.
        bearers: u32,
    },
    /// HANDOVER REQUEST ACKNOWLEDGE (target → source).
    HandoverRequestAck {
        /// The UE's RNTI at the source.
        old_enb_ue_x2ap_id: u16,
        /// The UE's RNTI at the target.
        new_enb_ue_x2ap_id: u16,
        /// Admitted E-RABs.
        admitted: u32,
        /// E-RABs not admitted.
        not_admitted: u32,
    },
    /// HANDOVER PREPARATION FAILURE (target → source).
    HandoverPreparationFailure {
        /// The UE's RNTI at the source.
        old_enb_ue_x2ap_id: u16,
        /// The failure cause.
        cause: u16,
    },
    /// HANDOVER CANCEL (source → target).
    HandoverCancel {
        /// The UE's RNTI at the source.
        old_enb_ue_x2ap_id: u16,
        /// The UE's RNTI at the target.
        new_enb_ue_x2ap_id: u16,
        /// The cancel cause.
        cause: u16,
    },
    /// UE CONTEXT RELEASE (target → source, when the handover completed).
    UeContextRelease {
        /// The UE's RNTI at the source.
        old_enb_ue_x2ap_id: u16,
        /// The UE's RNTI at the target.
        new_enb_ue_x2ap_id: u16,
    },
    /// Any other message (header only).
    Other {
        /// messageType.
        message_type: u8,
        /// procedureCode.
        procedure_code: u8,
    },
}

/// Decodes one X2-C UDP payload.
pub fn decode_x2(payload: &[u8]) -> Result<X2Body, String> {
    let mut c = Cursor::new(payload, "EpcX2Header");
    let message_type = c.u8()?;
    let procedure_code = c.u8()?;
    c.take(5)?;
    if message_type > 2 {
        return Err(format!(
            "EpcX2Header: messageType {message_type} (expected 0, 1 or 2)"
        ));
    }
    let body = &payload[7..];
    Ok(match (message_type, procedure_code) {
        (0, 0) => {
            let mut c = Cursor::new(body, "HANDOVER REQUEST");
            c.expect_ie(10, Some(2))?;
            let old = c.u16()?;
            c.expect_ie(5, Some(1))?;
            let cause = c.u8()?;
            c.expect_ie(11, Some(8))?;
            c.u32()?; // PLMN
            let cell = c.u32()? >> 4;
            c.expect_ie(14, None)?;
            let mme = c.u32()?;
            c.take(16)?; // UE-AMBR DL, UL
            let bearers = c.u32()?;
            c.skip_items(bearers, 48, "bearer")?;
            X2Body::HandoverRequest {
                old_enb_ue_x2ap_id: old,
                cause,
                target_cell: cell,
                mme_ue_s1ap_id: mme,
                bearers,
            }
        }
        (1, 0) => {
            let mut c = Cursor::new(body, "HANDOVER REQUEST ACKNOWLEDGE");
            let old = c.u16()?;
            let new = c.u16()?;
            let admitted = c.u32()?;
            c.skip_items(admitted, 10, "admitted bearer")?;
            let not_admitted = c.u32()?;
            c.skip_items(not_admitted, 4, "not-admitted bearer")?;
            X2Body::HandoverRequestAck {
                old_enb_ue_x2ap_id: old,
                new_enb_ue_x2ap_id: new,
                admitted,
                not_admitted,
            }
        }
        (2, 0) => {
            let mut c = Cursor::new(body, "HANDOVER PREPARATION FAILURE");
            let old = c.u16()?;
            let cause = c.u16()?;
            c.u16()?;
            X2Body::HandoverPreparationFailure {
                old_enb_ue_x2ap_id: old,
                cause,
            }
        }
        (_, 1) => {
            let mut c = Cursor::new(body, "HANDOVER CANCEL");
            let old = c.u16()?;
            let new = c.u16()?;
            let cause = c.u16()?;
            X2Body::HandoverCancel {
                old_enb_ue_x2ap_id: old,
                new_enb_ue_x2ap_id: new,
                cause,
            }
        }
        (0, 5) => {
            let mut c = Cursor::new(body, "UE CONTEXT RELEASE");
            let old = c.u16()?;
            let new = c.u16()?;
            X2Body::UeContextRelease {
                old_enb_ue_x2ap_id: old,
                new_enb_ue_x2ap_id: new,
            }
        }
        (message_type, procedure_code) => X2Body::Other {
            message_type,
            procedure_code,
        },
    })
}

/// One X2-C message found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X2Message {
    /// 1-based packet number in its capture.
    pub packet: usize,
    /// Index of the capture among those given (0 for a single file).
    pub file: usize,
    /// Capture time, ns.
    pub time_ns: u64,
    /// Sender's X2 address.
    pub src: Ipv4Addr,
    /// Receiver's X2 address.
    pub dst: Ipv4Addr,
    /// The UDP payload.
    pub payload: Vec<u8>,
    /// Its decoding.
    pub body: X2Body,
}

/// Finds and decodes every X2-C message (IPv4, UDP port 4444) of a
/// capture. Other traffic is skipped; a malformed frame that could carry
/// X2 is an error naming its packet number.
pub fn x2_messages(pcap: &[u8], file: usize) -> Result<Vec<X2Message>, X2PcapError> {
    let capture = parse_pcap(pcap)?;
    let mut out = Vec::new();
    for frame in &capture.frames {
        let n = frame.number;
        let Some(ip) = ipv4_of(capture.link_type, frame.data).map_err(|m| packet_err(n, m))? else {
            continue;
        };
        let Some((src, dst, payload)) = udp_x2(ip, frame).map_err(|m| packet_err(n, m))? else {
            continue;
        };
        let body =
            decode_x2(payload).map_err(|m| packet_err(n, format!("X2 on UDP {X2C_PORT}: {m}")))?;
        out.push(X2Message {
            packet: n,
            file,
            time_ns: frame.time_ns,
            src,
            dst,
            payload: payload.to_vec(),
            body,
        });
    }
    Ok(out)
}

/// The IPv4 packet inside a frame, or `None` for other protocols.
fn ipv4_of(link: LinkType, data: &[u8]) -> Result<Option<&[u8]>, String> {
    let short = |what: &str| {
        format!(
            "frame of {} octets too short for its {what} header",
            data.len()
        )
    };
    match link {
        LinkType::Ppp | LinkType::PppHdlc => {
            let mut d = data;
            if d.len() >= 2 && d[0] == 0xff && d[1] == 0x03 {
                d = &d[2..];
            }
            let (proto, rest) = match d {
                [] => return Err(short("PPP")),
                // Protocol-field compression: an odd first octet is the whole field.
                [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
                [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
                [_] => return Err(short("PPP")),
            };
            Ok((proto == 0x0021).then_some(rest))
        }
        LinkType::Ethernet => {
            if data.len() < 14 {
                return Err(short("Ethernet"));
            }
            let mut ethertype = u16::from_be_bytes([data[12], data[13]]);
            let mut rest = &data[14..];
            if ethertype == 0x8100 {
                if rest.len() < 4 {
                    return Err(short("802.1Q"));
                }
                ethertype = u16::from_be_bytes([rest[2], rest[3]]);
                rest = &rest[4..];
            }
            Ok((ethertype == 0x0800).then_some(rest))
        }
        LinkType::RawIp => Ok(data.first().filter(|b| *b >> 4 == 4).map(|_| data)),
        LinkType::LinuxSll => {
            if data.len() < 16 {
                return Err(short("Linux cooked"));
            }
            let proto = u16::from_be_bytes([data[14], data[15]]);
            Ok((proto == 0x0800).then_some(&data[16..]))
        }
    }
}

/// Sender, receiver and payload of an X2-C datagram.
type Datagram<'a> = (Ipv4Addr, Ipv4Addr, &'a [u8]);

/// The addresses and payload of an X2-C datagram, or `None` for other traffic.
fn udp_x2<'a>(ip: &'a [u8], frame: &Frame<'_>) -> Result<Option<Datagram<'a>>, String> {
    if ip.len() < 20 {
        return Err(format!("IPv4 header truncated ({} octets)", ip.len()));
    }
    if ip[0] >> 4 != 4 {
        return Err(format!("PPP says IPv4 but the version is {}", ip[0] >> 4));
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ihl < 20 || ihl > ip.len() {
        return Err(format!(
            "IPv4 header length {ihl} invalid for {} octets",
            ip.len()
        ));
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total < ihl {
        return Err(format!(
            "IPv4 total length {total} below its header length {ihl}"
        ));
    }
    let snapped = (frame.data.len() as u64) < u64::from(frame.orig_len);
    if total > ip.len() {
        if ip[9] != 17 {
            return Ok(None);
        }
        return Err(format!(
            "IPv4 total length {total} exceeds the {} octets captured{}",
            ip.len(),
            if snapped {
                " (snapped by the capture)"
            } else {
                ""
            }
        ));
    }
    if ip[9] != 17 {
        return Ok(None);
    }
    let flags_frag = u16::from_be_bytes([ip[6], ip[7]]);
    let more_fragments = flags_frag & 0x2000 != 0;
    let offset = flags_frag & 0x1fff;
    if offset != 0 {
        return Ok(None); // a later fragment: no UDP header
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = &ip[ihl..total];
    if udp.len() < 8 {
        return Err(format!("UDP header truncated ({} octets)", udp.len()));
    }
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    if sport != X2C_PORT && dport != X2C_PORT {
        return Ok(None);
    }
    if more_fragments {
        return Err("fragmented X2 message (IPv4 reassembly is not supported)".into());
    }
    let ulen = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if ulen < 8 || ulen > udp.len() {
        return Err(format!(
            "UDP length {ulen} invalid for {} octets of datagram",
            udp.len()
        ));
    }
    Ok(Some((src, dst, &udp[8..ulen])))
}

/// How X2 addresses map to cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    /// ns-3's defaults: `LteHelper::AddX2Interface(enbNodes)` over this many
    /// eNBs with one cell each, links numbered from 12.0.0.0/30.
    Ns3 {
        /// Number of eNBs of the simulation.
        enbs: u32,
    },
    /// An explicit table (a scenario's `[x2]`).
    Table(HashMap<Ipv4Addr, u32>),
}

impl Addressing {
    /// The cell behind an X2 address.
    pub fn cell_of(&self, addr: Ipv4Addr) -> Option<u32> {
        match self {
            Addressing::Table(t) => t.get(&addr).copied(),
            Addressing::Ns3 { enbs } => ns3_cell_of(*enbs, addr),
        }
    }
}

/// ns-3's X2 addressing, inverted (see the module docs).
pub fn ns3_cell_of(enbs: u32, addr: Ipv4Addr) -> Option<u32> {
    let off = u32::from(addr).checked_sub(u32::from(Ipv4Addr::new(12, 0, 0, 0)))?;
    let (link, host) = (off / 4, off % 4);
    if link == 0 || !(1..=2).contains(&host) || enbs < 2 {
        return None;
    }
    let mut k = u64::from(link - 1);
    for i in 0..u64::from(enbs) - 1 {
        let row = u64::from(enbs) - 1 - i;
        if k < row {
            let j = i + 1 + k;
            let enb = if host == 1 { i } else { j };
            return u32::try_from(enb + 1).ok();
        }
        k -= row;
    }
    None
}

/// ns-3's X2 address of eNB `i` (0-based) on its link to eNB `j`.
pub fn ns3_x2_address(enbs: u32, i: u32, j: u32) -> Option<Ipv4Addr> {
    if i == j || i >= enbs || j >= enbs {
        return None;
    }
    let (a, b, host) = if i < j { (i, j, 1) } else { (j, i, 2) };
    // Links before row a, then the position inside row a.
    let before: u64 = (0..u64::from(a)).map(|r| u64::from(enbs) - 1 - r).sum();
    let link = before + u64::from(b - a - 1);
    let off = (link + 1) * 4 + host;
    let base = u64::from(u32::from(Ipv4Addr::new(12, 0, 0, 0)));
    u32::try_from(base + off).ok().map(Ipv4Addr::from)
}

/// The result of a conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversion {
    /// Trace records, by time.
    pub records: Vec<TraceRecord>,
    /// X2 messages found (after merging both ends' copies).
    pub messages: usize,
    /// Things that did not stop the conversion (an ACK whose REQUEST is not
    /// in the capture, …).
    pub warnings: Vec<String>,
}

/// One message after merging the copies of both ends of a link.
struct Merged<'a> {
    msg: &'a X2Message,
    first_ns: u64,
    last_ns: u64,
}

#[derive(Clone, Copy)]
struct Pending {
    imsi: u64,
    source_cell: u32,
    target_cell: u32,
    old_id: u16,
}

/// Turns the X2 messages of one or more captures (one `Vec` per file, as
/// [`x2_messages`] returns them) into trace records.
pub fn to_trace(
    files: &[Vec<X2Message>],
    addressing: &Addressing,
) -> Result<Conversion, X2PcapError> {
    let mut all: Vec<&X2Message> = files.iter().flatten().collect();
    all.sort_by_key(|m| (m.time_ns, m.file, m.packet));
    // Merge copies: identical messages from another file within one second,
    // or from the same file at the same instant.
    let mut merged: Vec<Merged<'_>> = Vec::with_capacity(all.len());
    let mut recent: HashMap<(Ipv4Addr, Ipv4Addr, &[u8]), Vec<usize>> = HashMap::new();
    for m in all {
        let key = (m.src, m.dst, m.payload.as_slice());
        let slots = recent.entry(key).or_default();
        let hit = slots.iter().copied().find(|&i| {
            let other = &merged[i];
            let close = m.time_ns.saturating_sub(other.last_ns) <= 1_000_000_000;
            (other.msg.file != m.file && close) || other.last_ns == m.time_ns
        });
        match hit {
            Some(i) => merged[i].last_ns = m.time_ns,
            None => {
                slots.push(merged.len());
                merged.push(Merged {
                    msg: m,
                    first_ns: m.time_ns,
                    last_ns: m.time_ns,
                });
            }
        }
    }
    let mut timed: Vec<(u64, &Merged<'_>)> = merged
        .iter()
        .map(|m| {
            let t = match m.msg.body {
                X2Body::HandoverRequestAck { .. } => m.last_ns,
                _ => m.first_ns,
            };
            (t, m)
        })
        .collect();
    timed.sort_by_key(|(t, m)| (*t, m.msg.file, m.msg.packet));

    let cell = |addr: Ipv4Addr, packet: usize, role: &str| -> Result<u32, X2PcapError> {
        addressing.cell_of(addr).ok_or_else(|| {
            X2PcapError::Addressing(format!(
                "packet {packet}: no cell for the {role}'s X2 address {addr} ({})",
                match addressing {
                    Addressing::Ns3 { enbs } => format!(
                        "not an address of ns-3's X2 links among {enbs} eNBs; pass the right eNB count or an [x2] table"
                    ),
                    Addressing::Table(_) => "add it to the scenario's [x2] table".into(),
                }
            ))
        })
    };

    let mut conv = Conversion {
        messages: merged.len(),
        ..Conversion::default()
    };
    // Keyed by (source address, target address, old X2AP id).
    let mut requested: HashMap<(Ipv4Addr, Ipv4Addr, u16), Pending> = HashMap::new();
    let mut accepted: HashMap<(Ipv4Addr, Ipv4Addr, u16, u16), Pending> = HashMap::new();
    for (t_ns, m) in timed {
        let msg = m.msg;
        let time_us = t_ns / 1000;
        match msg.body {
            X2Body::HandoverRequest {
                old_enb_ue_x2ap_id,
                target_cell,
                mme_ue_s1ap_id,
                ..
            } => {
                let source_cell = cell(msg.src, msg.packet, "source eNB")?;
                let dst_cell = cell(msg.dst, msg.packet, "target eNB")?;
                if dst_cell != target_cell {
                    return Err(X2PcapError::Addressing(format!(
                        "packet {}: HANDOVER REQUEST for cell {target_cell} was sent to {} which the addressing gives to cell {dst_cell}; pass the right eNB count or an [x2] table",
                        msg.packet, msg.dst
                    )));
                }
                requested.insert(
                    (msg.src, msg.dst, old_enb_ue_x2ap_id),
                    Pending {
                        imsi: u64::from(mme_ue_s1ap_id),
                        source_cell,
                        target_cell,
                        old_id: old_enb_ue_x2ap_id,
                    },
                );
            }
            X2Body::HandoverRequestAck {
                old_enb_ue_x2ap_id,
                new_enb_ue_x2ap_id,
                ..
            } => {
                let Some(p) = requested.remove(&(msg.dst, msg.src, old_enb_ue_x2ap_id)) else {
                    conv.warnings.push(format!(
                        "packet {}: HANDOVER REQUEST ACKNOWLEDGE for X2AP id {old_enb_ue_x2ap_id} without its REQUEST in the capture; skipped",
                        msg.packet
                    ));
                    continue;
                };
                conv.records.push(TraceRecord {
                    time_us,
                    kind: EventKind::HandoverStart,
                    imsi: p.imsi,
                    rnti: p.old_id,
                    source_cell: p.source_cell,
                    target_cell: p.target_cell,
                    target_rnti: Some(new_enb_ue_x2ap_id),
                });
                accepted.insert((msg.src, msg.dst, p.old_id, new_enb_ue_x2ap_id), p);
            }
            X2Body::HandoverPreparationFailure {
                old_enb_ue_x2ap_id, ..
            } => match requested.remove(&(msg.dst, msg.src, old_enb_ue_x2ap_id)) {
                Some(p) => conv.records.push(TraceRecord {
                    time_us,
                    kind: EventKind::HandoverPreparationFailure,
                    imsi: p.imsi,
                    rnti: p.old_id,
                    source_cell: p.source_cell,
                    target_cell: p.target_cell,
                    target_rnti: None,
                }),
                None => conv.warnings.push(format!(
                    "packet {}: HANDOVER PREPARATION FAILURE without its REQUEST; skipped",
                    msg.packet
                )),
            },
            X2Body::UeContextRelease {
                old_enb_ue_x2ap_id,
                new_enb_ue_x2ap_id,
            } => match accepted.remove(&(msg.src, msg.dst, old_enb_ue_x2ap_id, new_enb_ue_x2ap_id)) {
                Some(p) => conv.records.push(TraceRecord {
                    time_us,
                    kind: EventKind::HandoverEndOk,
                    imsi: p.imsi,
                    rnti: new_enb_ue_x2ap_id,
                    source_cell: p.source_cell,
                    target_cell: p.target_cell,
                    target_rnti: None,
                }),
                None => conv.warnings.push(format!(
                    "packet {}: UE CONTEXT RELEASE for X2AP ids {old_enb_ue_x2ap_id}/{new_enb_ue_x2ap_id} without its handover; skipped",
                    msg.packet
                )),
            },
            X2Body::HandoverCancel {
                old_enb_ue_x2ap_id,
                new_enb_ue_x2ap_id,
                ..
            } => match accepted.remove(&(msg.dst, msg.src, old_enb_ue_x2ap_id, new_enb_ue_x2ap_id)) {
                Some(p) => conv.records.push(TraceRecord {
                    time_us,
                    kind: EventKind::HandoverCancel,
                    imsi: p.imsi,
                    rnti: p.old_id,
                    source_cell: p.source_cell,
                    target_cell: p.target_cell,
                    target_rnti: Some(new_enb_ue_x2ap_id),
                }),
                None => conv.warnings.push(format!(
                    "packet {}: HANDOVER CANCEL without its handover; skipped",
                    msg.packet
                )),
            },
            X2Body::Other { .. } => {}
        }
    }
    Ok(conv)
}

/// Encoders of the same formats, for tests and for making captures by
/// hand: ns-3's X2 messages, IPv4/UDP datagrams, PPP pcap files.
pub mod encode {
    use std::net::Ipv4Addr;

    use super::X2Body;

    fn header(out: &mut Vec<u8>, message_type: u8, procedure_code: u8, len: usize, ies: u8) {
        out.extend_from_slice(&[message_type, procedure_code, 0, (len + 3) as u8, 0, 0, ies]);
    }

    /// The UDP payload ns-3 would send for `body` (bearer lists as empty
    /// as the counts allow: each announced bearer is zero-filled).
    pub fn x2(body: &X2Body) -> Vec<u8> {
        let mut out = Vec::new();
        match *body {
            X2Body::HandoverRequest {
                old_enb_ue_x2ap_id,
                cause,
                target_cell,
                mme_ue_s1ap_id,
                bearers,
            } => {
                let len = 50 + 48 * bearers as usize;
                header(&mut out, 0, 0, len, 4);
                out.extend_from_slice(&10u16.to_be_bytes());
                out.extend_from_slice(&[0, 2]);
                out.extend_from_slice(&old_enb_ue_x2ap_id.to_be_bytes());
                out.extend_from_slice(&5u16.to_be_bytes());
                out.extend_from_slice(&[0x40, 1, cause]);
                out.extend_from_slice(&11u16.to_be_bytes());
                out.extend_from_slice(&[0, 8]);
                out.extend_from_slice(&0x123456u32.to_be_bytes());
                out.extend_from_slice(&(target_cell << 4).to_be_bytes());
                out.extend_from_slice(&14u16.to_be_bytes());
                out.push(0);
                out.extend_from_slice(&mme_ue_s1ap_id.to_be_bytes());
                out.extend_from_slice(&200_000u64.to_be_bytes());
                out.extend_from_slice(&100_000u64.to_be_bytes());
                out.extend_from_slice(&bearers.to_be_bytes());
                out.resize(out.len() + 48 * bearers as usize, 0);
            }
            X2Body::HandoverRequestAck {
                old_enb_ue_x2ap_id,
                new_enb_ue_x2ap_id,
                admitted,
                not_admitted,
            } => {
                header(
                    &mut out,
                    1,
                    0,
                    12 + 10 * admitted as usize + 4 * not_admitted as usize,
                    4,
                );
                out.extend_from_slice(&old_enb_ue_x2ap_id.to_be_bytes());
                out.extend_from_slice(&new_enb_ue_x2ap_id.to_be_bytes());
                out.extend_from_slice(&admitted.to_be_bytes());
                out.resize(out.len() + 10 * admitted as usize, 0);
                out.extend_from_slice(&not_admitted.to_be_bytes());
                out.resize(out.len() + 4 * not_admitted as usize, 0);
            }
            X2Body::HandoverPreparationFailure {
                old_enb_ue_x2ap_id,
                cause,
            } => {
                header(&mut out, 2, 0, 6, 3);
                out.extend_from_slice(&old_enb_ue_x2ap_id.to_be_bytes());
                out.extend_from_slice(&cause.to_be_bytes());
                out.extend_from_slice(&0u16.to_be_bytes());
            }
            X2Body::HandoverCancel {
                old_enb_ue_x2ap_id,
                new_enb_ue_x2ap_id,
                cause,
            } => {
                header(&mut out, 1, 1, 6, 3);
                out.extend_from_slice(&old_enb_ue_x2ap_id.to_be_bytes());
                out.extend_from_slice(&new_enb_ue_x2ap_id.to_be_bytes());
                out.extend_from_slice(&cause.to_be_bytes());
            }
            X2Body::UeContextRelease {
                old_enb_ue_x2ap_id,
                new_enb_ue_x2ap_id,
            } => {
                header(&mut out, 0, 5, 4, 2);
                out.extend_from_slice(&old_enb_ue_x2ap_id.to_be_bytes());
                out.extend_from_slice(&new_enb_ue_x2ap_id.to_be_bytes());
            }
            X2Body::Other {
                message_type,
                procedure_code,
            } => header(&mut out, message_type, procedure_code, 0, 0),
        }
        out
    }

    /// A PPP frame (2-octet protocol 0x0021) carrying IPv4/UDP from and to
    /// port 4444 with `payload`.
    pub fn ppp_udp(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        let udp_len = 8 + payload.len();
        let total = 20 + udp_len;
        let mut f = vec![0x00, 0x21];
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0,
            0,
            64,
            17,
            0,
            0,
        ]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&dst.octets());
        f.extend_from_slice(&4444u16.to_be_bytes());
        f.extend_from_slice(&4444u16.to_be_bytes());
        f.extend_from_slice(&(udp_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    /// A libpcap file of link type 9 (PPP), microsecond timestamps, in the
    /// given byte order, holding `frames` as (time in ns, octets).
    pub fn pcap(frames: &[(u64, Vec<u8>)], big_endian: bool, nanos: bool) -> Vec<u8> {
        let w32 = |out: &mut Vec<u8>, v: u32| {
            out.extend_from_slice(&if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        let w16 = |out: &mut Vec<u8>, v: u16| {
            out.extend_from_slice(&if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        let mut out = Vec::new();
        w32(&mut out, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        w16(&mut out, 2);
        w16(&mut out, 4);
        w32(&mut out, 0);
        w32(&mut out, 0);
        w32(&mut out, 65535);
        w32(&mut out, 9);
        for (t, data) in frames {
            w32(&mut out, (t / 1_000_000_000) as u32);
            let frac = t % 1_000_000_000;
            w32(
                &mut out,
                if nanos {
                    frac as u32
                } else {
                    (frac / 1000) as u32
                },
            );
            w32(&mut out, data.len() as u32);
            w32(&mut out, data.len() as u32);
            out.extend_from_slice(data);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns3_addressing_round_trips() {
        for enbs in 2..8 {
            for i in 0..enbs {
                for j in 0..enbs {
                    if i == j {
                        continue;
                    }
                    let addr = ns3_x2_address(enbs, i, j).unwrap();
                    assert_eq!(
                        ns3_cell_of(enbs, addr),
                        Some(i + 1),
                        "{enbs} {i} {j} {addr}"
                    );
                }
            }
        }
        // The first link of any simulation: eNB 0 = 12.0.0.5, eNB 1 = 12.0.0.6.
        assert_eq!(ns3_x2_address(2, 0, 1), Some(Ipv4Addr::new(12, 0, 0, 5)));
        assert_eq!(ns3_x2_address(2, 1, 0), Some(Ipv4Addr::new(12, 0, 0, 6)));
        assert_eq!(ns3_x2_address(4, 1, 2), Some(Ipv4Addr::new(12, 0, 0, 17)));
        assert_eq!(ns3_cell_of(2, Ipv4Addr::new(12, 0, 0, 9)), None);
        assert_eq!(ns3_cell_of(2, Ipv4Addr::new(10, 0, 0, 5)), None);
    }
}

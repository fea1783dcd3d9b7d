//! edgemob's Vendor-specific TLV (type 100).
//!
//! IEEE 802.21 has no TLV for what a service-mobility handover must agree on
//! before any context moves: which UE address the contexts belong to, which
//! services (and which context kinds) the UE uses, and why a target refused.
//! These travel in one Vendor-specific TLV:
//!
//! ```text
//! TLV type 100 | length | OUI 0A:ED:6E | version (1) | sub-TLV*
//! sub-TLV = type (1 octet) | length (802.21 length rule) | value
//!   1 MIGRATION_ID   u64: correlates MIH, CXTP and the migration history
//!   2 UE_ADDRESS     family (4 | 6) + 4 or 16 octets: the UE's IP address,
//!                    which CXTP names "MN previous IP"
//!   3 SOURCE_CELL    u32: E-UTRAN cell the UE leaves
//!   4 SERVICE        name (OCTET_STRING) | LIST(FPT u16) | context octets
//!                    (u32) | connections (u16); one sub-TLV per service
//!   5 REASON         code (u16) | text (OCTET_STRING): why a target refused
//!   6 CONNECTION     family (4 | 6) | local address | local port (u16) |
//!                    peer address | peer port (u16): one TCP connection
//!                    that will move, so that the target can drop its
//!                    packets from the moment it accepts (a packet that
//!                    reached the target before the socket does would be
//!                    answered with a RST)
//! ```
//!
//! The OUI is a locally administered company id (the X bit of the first
//! octet is set), as edgemob has no registered OUI. Vendor TLVs with another
//! OUI are left to their owners; unknown sub-TLV types are skipped so that a
//! newer peer can add fields.

use crate::error::DecodeError;
use crate::tlv::{Cursor, TlvReader, encode_len, tlv_type, write_tlv};
use bytes::Bytes;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// edgemob's locally administered organisation identifier.
pub const EDGEMOB_OUI: [u8; 3] = [0x0A, 0xED, 0x6E];
/// Version of the sub-TLV layout.
pub const VENDOR_VERSION: u8 = 1;

mod sub {
    pub const MIGRATION_ID: u8 = 1;
    pub const UE_ADDRESS: u8 = 2;
    pub const SOURCE_CELL: u8 = 3;
    pub const SERVICE: u8 = 4;
    pub const REASON: u8 = 5;
    pub const CONNECTION: u8 = 6;
}

/// One service the UE uses, as announced to the target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceDemand {
    pub name: Bytes,
    /// Feature Profile Type codes of the contexts the service will send.
    pub fpts: Vec<u16>,
    /// Expected context size in octets (a hint for admission).
    pub context_bytes: u32,
    /// Number of TCP connections that will move.
    pub connections: u16,
}

/// One TCP connection of the UE that will move, as its 4-tuple at the
/// eNBC (both addresses of one family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MovingConnection {
    /// The service's end.
    pub local: SocketAddr,
    /// The UE's end.
    pub peer: SocketAddr,
}

/// Why a target refused a handover.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reason {
    pub code: u16,
    pub text: Bytes,
}

impl Reason {
    /// A service the UE uses is not registered at the target.
    pub const SERVICE_NOT_HOSTED: u16 = 1;
    /// The target is out of capacity.
    pub const NO_CAPACITY: u16 = 2;
    /// The UE is already being migrated to or from this node.
    pub const BUSY: u16 = 3;
    /// The request lacked information edgemob needs.
    pub const INCOMPLETE_REQUEST: u16 = 4;
}

/// The decoded contents of edgemob's Vendor-specific TLV.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EdgemobInfo {
    pub migration_id: Option<u64>,
    pub ue_address: Option<IpAddr>,
    pub source_cell: Option<u32>,
    pub services: Vec<ServiceDemand>,
    pub reason: Option<Reason>,
    /// The connections that will move (a source may leave them out).
    pub connections: Vec<MovingConnection>,
}

impl EdgemobInfo {
    /// Appends the whole TLV (type, length, OUI, version, sub-TLVs).
    pub(crate) fn encode_tlv(&self, out: &mut Vec<u8>) {
        write_tlv(out, tlv_type::VENDOR_SPECIFIC, |o| {
            o.extend_from_slice(&EDGEMOB_OUI);
            o.push(VENDOR_VERSION);
            if let Some(id) = self.migration_id {
                write_tlv(o, sub::MIGRATION_ID, |o| {
                    o.extend_from_slice(&id.to_be_bytes())
                });
            }
            if let Some(addr) = self.ue_address {
                write_tlv(o, sub::UE_ADDRESS, |o| match addr {
                    IpAddr::V4(a) => {
                        o.push(4);
                        o.extend_from_slice(&a.octets());
                    }
                    IpAddr::V6(a) => {
                        o.push(6);
                        o.extend_from_slice(&a.octets());
                    }
                });
            }
            if let Some(cell) = self.source_cell {
                write_tlv(o, sub::SOURCE_CELL, |o| {
                    o.extend_from_slice(&cell.to_be_bytes())
                });
            }
            for s in &self.services {
                write_tlv(o, sub::SERVICE, |o| {
                    encode_len(s.name.len(), o);
                    o.extend_from_slice(&s.name);
                    encode_len(s.fpts.len(), o);
                    for f in &s.fpts {
                        o.extend_from_slice(&f.to_be_bytes());
                    }
                    o.extend_from_slice(&s.context_bytes.to_be_bytes());
                    o.extend_from_slice(&s.connections.to_be_bytes());
                });
            }
            if let Some(r) = &self.reason {
                write_tlv(o, sub::REASON, |o| {
                    o.extend_from_slice(&r.code.to_be_bytes());
                    encode_len(r.text.len(), o);
                    o.extend_from_slice(&r.text);
                });
            }
            for c in &self.connections {
                // A 4-tuple mixing families cannot exist; it is not sent.
                let (local, peer) = match (c.local.ip(), c.peer.ip()) {
                    (IpAddr::V4(l), IpAddr::V4(p)) => (l.octets().to_vec(), p.octets().to_vec()),
                    (IpAddr::V6(l), IpAddr::V6(p)) => (l.octets().to_vec(), p.octets().to_vec()),
                    _ => continue,
                };
                write_tlv(o, sub::CONNECTION, |o| {
                    o.push(if local.len() == 4 { 4 } else { 6 });
                    o.extend_from_slice(&local);
                    o.extend_from_slice(&c.local.port().to_be_bytes());
                    o.extend_from_slice(&peer);
                    o.extend_from_slice(&c.peer.port().to_be_bytes());
                });
            }
        });
    }

    /// True when a Vendor-specific TLV value is edgemob's.
    pub(crate) fn is_ours(value: &[u8]) -> bool {
        value.starts_with(&EDGEMOB_OUI)
    }

    /// Decodes the value of a Vendor-specific TLV that starts with our OUI.
    pub(crate) fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        const NAME: &str = "edgemob vendor-specific";
        let mut c = Cursor::new(value, tlv_type::VENDOR_SPECIFIC, NAME);
        c.take(3)?;
        if c.u8()? != VENDOR_VERSION {
            return Err(c.bad("unsupported edgemob vendor TLV version"));
        }
        let rest = c.take(value.len() - 4)?;
        let mut info = EdgemobInfo::default();
        for t in TlvReader::new(rest) {
            let t = t?;
            let mut v = Cursor::new(t.value, tlv_type::VENDOR_SPECIFIC, NAME);
            match t.tlv_type {
                sub::MIGRATION_ID => {
                    dup(info.migration_id.is_some(), &v)?;
                    info.migration_id = Some(v.u64()?);
                }
                sub::UE_ADDRESS => {
                    dup(info.ue_address.is_some(), &v)?;
                    info.ue_address = Some(match v.u8()? {
                        4 => {
                            let b: [u8; 4] = v.take(4)?.try_into().expect("4 octets");
                            IpAddr::V4(Ipv4Addr::from(b))
                        }
                        6 => {
                            let b: [u8; 16] = v.take(16)?.try_into().expect("16 octets");
                            IpAddr::V6(Ipv6Addr::from(b))
                        }
                        _ => return Err(v.bad("UE address family must be 4 or 6")),
                    });
                }
                sub::SOURCE_CELL => {
                    dup(info.source_cell.is_some(), &v)?;
                    info.source_cell = Some(v.u32()?);
                }
                sub::SERVICE => {
                    let name = Bytes::copy_from_slice(v.octet_string()?);
                    let n = v.list_len(2)?;
                    let fpts = (0..n).map(|_| v.u16()).collect::<Result<_, _>>()?;
                    info.services.push(ServiceDemand {
                        name,
                        fpts,
                        context_bytes: v.u32()?,
                        connections: v.u16()?,
                    });
                }
                sub::REASON => {
                    dup(info.reason.is_some(), &v)?;
                    info.reason = Some(Reason {
                        code: v.u16()?,
                        text: Bytes::copy_from_slice(v.octet_string()?),
                    });
                }
                sub::CONNECTION => {
                    let len = match v.u8()? {
                        4 => 4,
                        6 => 16,
                        _ => return Err(v.bad("connection address family must be 4 or 6")),
                    };
                    let mut end = || -> Result<SocketAddr, DecodeError> {
                        let ip = ip_of(v.take(len)?);
                        Ok(SocketAddr::new(ip, v.u16()?))
                    };
                    let local = end()?;
                    let peer = end()?;
                    info.connections.push(MovingConnection { local, peer });
                }
                _ => continue, // a newer peer's field: skip it
            }
            v.finish()?;
        }
        Ok(info)
    }
}

/// An address from its 4 or 16 octets.
fn ip_of(octets: &[u8]) -> IpAddr {
    match <[u8; 4]>::try_from(octets) {
        Ok(b) => IpAddr::V4(Ipv4Addr::from(b)),
        Err(_) => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(octets).expect("4 or 16 octets"),
        )),
    }
}

fn dup(seen: bool, c: &Cursor<'_>) -> Result<(), DecodeError> {
    if seen {
        Err(c.bad("sub-TLV repeated"))
    } else {
        Ok(())
    }
}

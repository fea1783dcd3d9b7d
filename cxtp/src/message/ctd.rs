//! Context Transfer Data (type 3) and Predictive CTD (type 4),
//! RFC 4067 §2.5.3, pAR → nAR.
//!
//! ```text
//! |Vers.|   Type  |V|A| Reserved  |          Length               |
//! |               Elapsed Time (in milliseconds)                  |
//! ~            Mobile Node's Previous IP Address                  ~
//! |            Algorithm          |            Key Length         | } PCTD
//! ~                              Key                              ~ } only
//! ~                   Context Data Block(s)                       ~
//! ```
//!
//! The figure marks Algorithm/Key Length/Key "PCTD only", so they are present
//! exactly when the type is 4. The prose adds that the same material is sent
//! when a CT-Req carried a null token, "as if the message were being sent due
//! to predictive transfer": edgemob then sends a PCTD, keeping the rule "key
//! fields ⇔ type 4" that a parser needs. The Key occupies exactly Key Length
//! octets with no padding (the RFC defines none), so the first CDB may start
//! at any offset.

use std::net::IpAddr;

use bytes::{BufMut, Bytes};

use super::Body;
use crate::auth::{AuthAlgorithm, KeyMaterial};
use crate::cdb::{self, Cdb};
use crate::error::{DecodeError, EncodeError};
use crate::header::{Header, MessageType};
use crate::wire::{Reader, addr_len, put_addr};

/// A CTD: contexts for one MN.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ctd {
    /// `A` flag: the sender wants a CTDR.
    pub ack_requested: bool,
    /// Milliseconds since the first CTD for this MN was sent.
    pub elapsed_ms: u32,
    /// The MN's previous address.
    pub mn: IpAddr,
    /// The context data blocks.
    pub cdbs: Vec<Cdb>,
}

/// A PCTD: a CTD that also carries the key to check the MN's token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pctd {
    /// `A` flag: the sender wants a CTDR.
    pub ack_requested: bool,
    /// Milliseconds since the first CTD for this MN was sent.
    pub elapsed_ms: u32,
    /// The MN's previous address.
    pub mn: IpAddr,
    /// Algorithm and key for the authorization token.
    pub key: KeyMaterial,
    /// The context data blocks.
    pub cdbs: Vec<Cdb>,
}

fn cdbs_len(cdbs: &[Cdb]) -> usize {
    cdbs.iter().map(Cdb::encoded_len).sum()
}

impl Body for Ctd {
    const TYPE: MessageType = MessageType::Ctd;

    fn ipv4(&self) -> bool {
        self.mn.is_ipv4()
    }

    fn flag(&self) -> bool {
        self.ack_requested
    }

    fn body_len(&self) -> usize {
        4 + addr_len(&self.mn) + cdbs_len(&self.cdbs)
    }

    fn check(&self) -> Result<(), EncodeError> {
        self.cdbs.iter().try_for_each(Cdb::check)
    }

    fn put_body<B: BufMut + ?Sized>(&self, out: &mut B) {
        out.put_u32(self.elapsed_ms);
        put_addr(out, &self.mn);
        self.cdbs.iter().for_each(|c| c.put(out));
    }

    fn read_body(h: &Header, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Ctd {
            ack_requested: h.flag,
            elapsed_ms: r.u32("CTD elapsed time")?,
            mn: r.addr(h.ipv4, "CTD MN address")?,
            cdbs: cdb::read_all(r)?,
        })
    }
}

impl Body for Pctd {
    const TYPE: MessageType = MessageType::Pctd;

    fn ipv4(&self) -> bool {
        self.mn.is_ipv4()
    }

    fn flag(&self) -> bool {
        self.ack_requested
    }

    fn body_len(&self) -> usize {
        4 + addr_len(&self.mn) + 4 + self.key.key.len() + cdbs_len(&self.cdbs)
    }

    fn check(&self) -> Result<(), EncodeError> {
        let len = self.key.key.len();
        if len > usize::from(u16::MAX) {
            return Err(EncodeError::KeyTooLong { len });
        }
        self.cdbs.iter().try_for_each(Cdb::check)
    }

    fn put_body<B: BufMut + ?Sized>(&self, out: &mut B) {
        out.put_u32(self.elapsed_ms);
        put_addr(out, &self.mn);
        out.put_u16(self.key.algorithm.0);
        out.put_u16(self.key.key.len() as u16); // checked in `check`
        out.put_slice(&self.key.key);
        self.cdbs.iter().for_each(|c| c.put(out));
    }

    fn read_body(h: &Header, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ack_requested = h.flag;
        let elapsed_ms = r.u32("PCTD elapsed time")?;
        let mn = r.addr(h.ipv4, "PCTD MN address")?;
        let algorithm = AuthAlgorithm(r.u16("PCTD algorithm")?);
        let key_len = r.u16("PCTD key length")?;
        let key: Bytes = r.bytes(usize::from(key_len), "PCTD key")?;
        Ok(Pctd {
            ack_requested,
            elapsed_ms,
            mn,
            key: KeyMaterial { algorithm, key },
            cdbs: cdb::read_all(r)?,
        })
    }
}

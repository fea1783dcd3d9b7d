//! Context Transfer Request (type 7, RFC 4067 §2.5.6), nAR → pAR.
//!
//! ```text
//! |Vers.|  Type   |V|  Reserved   |            Length             |
//! ~               Mobile Node's Previous IP Address               ~
//! |                        Sequence Number                        |
//! |                     MN Authorization Token                    |
//! ~          Requested Context Data Block(s) (if present)         ~
//! ```
//!
//! Sequence number, token and request blocks are copied from the CTAR, so
//! the pAR can check the token exactly as the MN computed it. A null token
//! asks the pAR to send key material (a PCTD).

use std::net::IpAddr;

use bytes::BufMut;

use super::Body;
use crate::auth::{self, AuthToken};
use crate::cdb::{self, Cdb};
use crate::error::{DecodeError, EncodeError};
use crate::header::{Header, MessageType};
use crate::wire::{Reader, addr_len, put_addr};

/// A CT-Req.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CtReq {
    /// The MN's previous address.
    pub mn: IpAddr,
    /// Sequence number copied from the CTAR.
    pub seq: u32,
    /// Token copied from the CTAR ([`AuthToken::NULL`] if none yet).
    pub token: AuthToken,
    /// Requested contexts copied from the CTAR.
    pub requests: Vec<Cdb>,
}

impl CtReq {
    /// Builds the CT-Req that forwards `ctar`.
    pub fn from_ctar(ctar: &super::Ctar) -> Self {
        CtReq {
            mn: ctar.mn,
            seq: ctar.seq,
            token: ctar.token,
            requests: ctar.requests.clone(),
        }
    }

    /// Checks the token against `key` in constant time.
    pub fn verify(&self, key: &[u8]) -> bool {
        auth::verify_token(key, self.mn, self.seq, &self.requests, self.token)
    }
}

impl Body for CtReq {
    const TYPE: MessageType = MessageType::CtReq;

    fn ipv4(&self) -> bool {
        self.mn.is_ipv4()
    }

    fn body_len(&self) -> usize {
        addr_len(&self.mn) + 8 + self.requests.iter().map(Cdb::encoded_len).sum::<usize>()
    }

    fn check(&self) -> Result<(), EncodeError> {
        self.requests.iter().try_for_each(Cdb::check)
    }

    fn put_body<B: BufMut + ?Sized>(&self, out: &mut B) {
        put_addr(out, &self.mn);
        out.put_u32(self.seq);
        out.put_u32(self.token.0);
        self.requests.iter().for_each(|c| c.put(out));
    }

    fn read_body(h: &Header, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CtReq {
            mn: r.addr(h.ipv4, "CT-Req MN address")?,
            seq: r.u32("CT-Req sequence number")?,
            token: AuthToken(r.u32("CT-Req authorization token")?),
            requests: cdb::read_all(r)?,
        })
    }
}

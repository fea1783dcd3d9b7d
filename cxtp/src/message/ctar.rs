//! Context Transfer Activate Request (type 1, RFC 4067 §2.5.1), MN → AR.
//!
//! ```text
//! |Vers.|  Type   |V|A| Reserved  |            Length             |
//! ~                   MN's Previous IP Address                    ~
//! ~                  Previous (New) AR IP Address                 ~
//! |                        Sequence Number                        |
//! |                     MN Authorization Token                    |
//! ~            Requested Context Data Block(s) (if present)       ~
//! ```

use std::net::IpAddr;

use bytes::BufMut;

use super::Body;
use crate::auth::{self, AuthToken};
use crate::cdb::{self, Cdb};
use crate::error::{DecodeError, EncodeError};
use crate::header::{Header, MessageType};
use crate::wire::{Reader, addr_len, put_addr, same_family};

/// A CTAR. No request blocks means "all contexts".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ctar {
    /// `A` flag: the MN wants a CTAA.
    pub ack_requested: bool,
    /// The MN's previous address (identifies its contexts).
    pub mn: IpAddr,
    /// The other access router: the pAR when sent to the nAR, the nAR when
    /// sent to the pAR.
    pub other_ar: IpAddr,
    /// Sequence number, random per request.
    pub seq: u32,
    /// Authorization token over (mn | seq | requests).
    pub token: AuthToken,
    /// Requested contexts.
    pub requests: Vec<Cdb>,
}

impl Ctar {
    /// Checks the token against `key` in constant time.
    pub fn verify(&self, key: &[u8]) -> bool {
        auth::verify_token(key, self.mn, self.seq, &self.requests, self.token)
    }

    /// Sets the token computed with `key`.
    pub fn sign(&mut self, key: &[u8]) {
        self.token = auth::compute_token(key, self.mn, self.seq, &self.requests);
    }
}

impl Body for Ctar {
    const TYPE: MessageType = MessageType::Ctar;

    fn ipv4(&self) -> bool {
        self.mn.is_ipv4()
    }

    fn flag(&self) -> bool {
        self.ack_requested
    }

    fn body_len(&self) -> usize {
        addr_len(&self.mn) * 2 + 8 + self.requests.iter().map(Cdb::encoded_len).sum::<usize>()
    }

    fn check(&self) -> Result<(), EncodeError> {
        same_family(&self.mn, &self.other_ar)?;
        self.requests.iter().try_for_each(Cdb::check)
    }

    fn put_body<B: BufMut + ?Sized>(&self, out: &mut B) {
        put_addr(out, &self.mn);
        put_addr(out, &self.other_ar);
        out.put_u32(self.seq);
        out.put_u32(self.token.0);
        self.requests.iter().for_each(|c| c.put(out));
    }

    fn read_body(h: &Header, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Ctar {
            ack_requested: h.flag,
            mn: r.addr(h.ipv4, "CTAR MN address")?,
            other_ar: r.addr(h.ipv4, "CTAR AR address")?,
            seq: r.u32("CTAR sequence number")?,
            token: AuthToken(r.u32("CTAR authorization token")?),
            requests: cdb::read_all(r)?,
        })
    }
}

//! Context Transfer Data Reply (type 5, RFC 4067 §2.5.4), nAR → pAR.
//!
//! ```text
//! |Vers.|  Type   |V|S| Reserved  |          Length               |
//! ~             Mobile Node's Previous IP Address                 ~
//! |        FPT (if present)       |  Status code  |   Reserved    |
//! ~                           ........                            ~
//! ```
//!
//! `S` set: every context of the CTD (for edgemob: of the whole transfer)
//! was received. Each entry acknowledges one FPT; status 0 is success.

use std::net::IpAddr;

use bytes::BufMut;

use super::{Body, put_statuses, read_statuses};
use crate::error::{DecodeError, EncodeError};
use crate::fpt::Fpt;
use crate::header::{Header, MessageType};
use crate::status::Status;
use crate::wire::{Reader, addr_len, put_addr};

/// A CTDR.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ctdr {
    /// `S` flag: all contexts received successfully.
    pub all_received: bool,
    /// The MN whose transfer is acknowledged.
    pub mn: IpAddr,
    /// Per-FPT status.
    pub statuses: Vec<(Fpt, Status)>,
}

impl Body for Ctdr {
    const TYPE: MessageType = MessageType::Ctdr;

    fn ipv4(&self) -> bool {
        self.mn.is_ipv4()
    }

    fn flag(&self) -> bool {
        self.all_received
    }

    fn body_len(&self) -> usize {
        addr_len(&self.mn) + 4 * self.statuses.len()
    }

    fn check(&self) -> Result<(), EncodeError> {
        Ok(())
    }

    fn put_body<B: BufMut + ?Sized>(&self, out: &mut B) {
        put_addr(out, &self.mn);
        put_statuses(out, &self.statuses);
    }

    fn read_body(h: &Header, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Ctdr {
            all_received: h.flag,
            mn: r.addr(h.ipv4, "CTDR MN address")?,
            statuses: read_statuses(r, "CTDR")?,
        })
    }
}

//! Context Transfer Activate Acknowledge (type 2, RFC 4067 §2.5.2), AR → MN.
//!
//! ```text
//! |Vers.|  Type   |V|  Reserved   |            Length             |
//! ~              Mobile Node's Previous IP address                ~
//! |       FPT (if present)        |  Status code  |   Reserved    |
//! |                           ........                            |
//! ```
//!
//! The entries list FPTs that were *not* transferred, with a failure reason.

use std::net::IpAddr;

use bytes::BufMut;

use super::{Body, put_statuses, read_statuses};
use crate::error::{DecodeError, EncodeError};
use crate::fpt::Fpt;
use crate::header::{Header, MessageType};
use crate::status::Status;
use crate::wire::{Reader, addr_len, put_addr};

/// A CTAA.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ctaa {
    /// The MN's previous address.
    pub mn: IpAddr,
    /// FPTs not transferred, with the reason.
    pub failures: Vec<(Fpt, Status)>,
}

impl Body for Ctaa {
    const TYPE: MessageType = MessageType::Ctaa;

    fn ipv4(&self) -> bool {
        self.mn.is_ipv4()
    }

    fn body_len(&self) -> usize {
        addr_len(&self.mn) + 4 * self.failures.len()
    }

    fn check(&self) -> Result<(), EncodeError> {
        Ok(())
    }

    fn put_body<B: BufMut + ?Sized>(&self, out: &mut B) {
        put_addr(out, &self.mn);
        put_statuses(out, &self.failures);
    }

    fn read_body(h: &Header, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Ctaa {
            mn: r.addr(h.ipv4, "CTAA MN address")?,
            failures: read_statuses(r, "CTAA")?,
        })
    }
}

//! Context Transfer Cancel (type 6, RFC 4067 §2.5.5).
//!
//! ```text
//! |Vers.|  Type   |V|   Reserved  |            Length             |
//! ~               Mobile Node's Previous IP Address               ~
//! ```
//!
//! The RFC sends it nAR → pAR. On edgemob's persistent TCP connection the
//! sender also uses it pAR → nAR, to tell the receiver to drop a partial
//! reassembly when the sender gives up (same format, same meaning: "forget
//! this MN's transfer").

use std::net::IpAddr;

use bytes::BufMut;

use super::{Body, no_trailing};
use crate::error::{DecodeError, EncodeError};
use crate::header::{Header, MessageType};
use crate::wire::{Reader, addr_len, put_addr};

/// A CTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ctc {
    /// The MN whose transfer is cancelled.
    pub mn: IpAddr,
}

impl Body for Ctc {
    const TYPE: MessageType = MessageType::Ctc;

    fn ipv4(&self) -> bool {
        self.mn.is_ipv4()
    }

    fn body_len(&self) -> usize {
        addr_len(&self.mn)
    }

    fn check(&self) -> Result<(), EncodeError> {
        Ok(())
    }

    fn put_body<B: BufMut + ?Sized>(&self, out: &mut B) {
        put_addr(out, &self.mn);
    }

    fn read_body(h: &Header, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mn = r.addr(h.ipv4, "CTC MN address")?;
        no_trailing(r, "CTC")?;
        Ok(Ctc { mn })
    }
}

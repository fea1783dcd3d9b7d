//! The large-context layer: transfers of any size over RFC 4067 CTDs.
//!
//! A *transfer* is an MN address plus a list of [`Context`]s, each an FPT and
//! its octets; several contexts may share an FPT (one per TCP connection
//! image, say). One CDB holds at most 2,040 octets and one message 65,535,
//! while a UE's contexts reach 100 KB and may grow to many MiB, so:
//!
//! 1. **Contexts are cut into segments**, one per CDB. A CDB with an edgemob
//!    FPT starts its Data field with a 12-octet segment header giving the
//!    context's index, this segment's exact length and offset, and the
//!    context's exact total ([`segment`]); the RFC's zero padding follows the
//!    segment and is checked to be zero and shorter than 8 octets. So a
//!    context's length is exact at any size from 0 octets up to 4 GiB − 1.
//!    Contexts with non-edgemob FPTs (IANA codes) are carried as one plain CDB
//!    whose Data layout is their specification's business: they must fit one
//!    CDB (2,036 octets) and arrive with the padding the RFC adds.
//! 2. **CDBs are packed into CTDs** up to the 65,535-octet limit (32 full
//!    CDBs, the last one filled to the remaining word boundary).
//! 3. **A transfer that fits one CTD is one ordinary CTD** — RFC header,
//!    RFC CDB framing, nothing else. A plain CTD is always a complete
//!    transfer on its own.
//! 4. **A larger transfer is a manifest CTD plus continuation CTDs**
//!    ([`manifest`]): the first CDB of the first CTD is a manifest
//!    (FPT `0xE000`) announcing the Transfer ID, the number of CTDs, contexts
//!    and octets; the first CDB of every later CTD is a 16-octet continuation
//!    marker (Transfer ID, CTD index). The message header bits stay exactly
//!    RFC; only the A flag of the last CTD asks for the single CTDR that
//!    acknowledges the whole transfer.
//!
//! ```text
//! CTD 0: | hdr A=0 | elapsed | MN | manifest(id, ctds=3, ctxs=2, octets) | seg(ctx0, 0..2024) | ... |
//! CTD 1: | hdr A=0 | elapsed | MN | continuation(id, 1)                   | seg(ctx0, ...)     | ... |
//! CTD 2: | hdr A=1 | elapsed | MN | continuation(id, 2)                   | seg(ctx1, ...)     | ... |
//!          <---------------- RFC 4067 CTD ---------------> <-- RFC CDBs with edgemob FPTs ------->
//! ```
//!
//! Transfers for different MNs may interleave CTD by CTD on one connection;
//! the receiver keys reassembly by MN address (RFC 4067 §2.5 allows one
//! transfer per MN at a time). Within one transfer CTDs arrive in order
//! (TCP), and segments must arrive in order and without gaps.
//!
//! A receiver never allocates for what is only claimed: the manifest and the
//! segment headers are checked against [`Limits`] before anything is kept,
//! segments are kept as zero-copy slices of the received frames, and each
//! context is copied once into a buffer of its exact size when its last
//! octet arrives.

pub mod encode;
pub mod manifest;
pub mod reassembly;
pub mod segment;

use bytes::Bytes;

pub use encode::{EncodeOptions, EncodedInfo, MAX_CONTEXTS, MAX_KEY_LEN, encode_transfer};
pub use manifest::{Continuation, CtdRole, Manifest, ctd_role};
pub use reassembly::{ArrivedTransfer, Limits, Progress, Reassembly};

use crate::error::TransferError;
use crate::fpt::Fpt;
use crate::header::HEADER_LEN;
use crate::message::Message;

/// One context of a transfer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Context {
    /// What the octets are.
    pub fpt: Fpt,
    /// The octets.
    pub data: Bytes,
}

impl Context {
    /// A context.
    pub fn new(fpt: Fpt, data: impl Into<Bytes>) -> Self {
        Context {
            fpt,
            data: data.into(),
        }
    }
}

/// Decodes the concatenated CTD frames of one transfer for one MN, as
/// [`encode_transfer`] wrote them. A test and benchmark helper: connections
/// use [`crate::Endpoint`], which also handles interleaving.
pub fn decode_transfer(frames: &Bytes, limits: Limits) -> Result<ArrivedTransfer, TransferError> {
    let mut pos = 0;
    let mut reassembly: Option<Reassembly> = None;
    while pos < frames.len() {
        let len = frames
            .get(pos + 2..pos + HEADER_LEN)
            .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
        let end = (pos + len.max(HEADER_LEN)).min(frames.len());
        let msg = Message::decode_bytes(&frames.slice(pos..end))?;
        pos = end;
        let (ack, mn, cdbs, key) = match msg {
            Message::Ctd(c) => (c.ack_requested, c.mn, c.cdbs, None),
            Message::Pctd(p) => (p.ack_requested, p.mn, p.cdbs, Some(p.key)),
            _ => return Err(TransferError::BadManifest("not a CTD")),
        };
        let role = ctd_role(&cdbs)?;
        let (r, body) = match (role, reassembly.as_mut()) {
            (CtdRole::Plain, None) => (
                reassembly.insert(Reassembly::new(mn, None, limits)?),
                &cdbs[..],
            ),
            (CtdRole::First(m), None) => (
                reassembly.insert(Reassembly::new(mn, Some(m), limits)?),
                cdbs.get(1..).unwrap_or_default(),
            ),
            (CtdRole::Continuation(c), Some(r))
                if r.manifest().is_some_and(|m| m.transfer_id == c.transfer_id)
                    && c.ctd_index == r.ctds_received() =>
            {
                (r, cdbs.get(1..).unwrap_or_default())
            }
            _ => return Err(TransferError::BadManifest("CTD out of sequence")),
        };
        if r.absorb(body, ack, key)? == Progress::Complete {
            if pos != frames.len() {
                return Err(TransferError::BadManifest("frames after the last CTD"));
            }
            break;
        }
    }
    match reassembly {
        Some(r) => r.finish(),
        None => Err(TransferError::BadManifest("no CTD")),
    }
}

#[cfg(test)]
mod tests;

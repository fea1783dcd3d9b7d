//! The transfer manifest and continuation marker: the CDBs (FPT `0xE000`)
//! that tie several CTDs into one transfer.
//!
//! First CTD of a multi-CTD transfer, first CDB (24 octets, Length 3):
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       FPT = 0xE000            |  Length = 3   |0|  Reserved   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Kind = 1    |  Version = 1  |         Context Count         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Transfer ID                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     CTD Count (this one included)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  Total Context Octets (64 bits)               |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Every later CTD of the transfer, first CDB (16 octets, Length 2):
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       FPT = 0xE000            |  Length = 2   |0|  Reserved   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Kind = 2    |  Version = 1  |           Reserved            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Transfer ID                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               CTD Index (1 .. CTD Count − 1)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The continuation marker lets a receiver tell a CTD that continues a
//! transfer from a plain CTD that starts a new one, and drop leftovers of a
//! cancelled transfer (wrong Transfer ID) without guessing.

use bytes::BufMut;

use crate::cdb::{CDB_HEAD_LEN, Cdb, put_cdb_head};
use crate::error::TransferError;
use crate::fpt::Fpt;

/// Octets of the manifest CDB.
pub const MANIFEST_CDB_LEN: usize = 24;
/// Octets of the continuation CDB.
pub const CONTINUATION_CDB_LEN: usize = 16;

const KIND_MANIFEST: u8 = 1;
const KIND_CONTINUATION: u8 = 2;
const VERSION: u8 = 1;

/// What the first CTD of a multi-CTD transfer announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Sender-chosen id, repeated in every continuation.
    pub transfer_id: u32,
    /// CTDs in the transfer, the first included.
    pub ctd_count: u32,
    /// Contexts in the transfer.
    pub context_count: u16,
    /// Sum of the contexts' delivered lengths.
    pub total_octets: u64,
}

/// The marker of a later CTD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Continuation {
    /// Id from the manifest.
    pub transfer_id: u32,
    /// Position of this CTD in the transfer (the manifest's CTD is 0).
    pub ctd_index: u32,
}

/// How a CTD relates to transfers, read from its first CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtdRole {
    /// A complete transfer on its own (ordinary RFC 4067 CTD).
    Plain,
    /// Starts a multi-CTD transfer.
    First(Manifest),
    /// Continues one.
    Continuation(Continuation),
}

pub(crate) fn put_manifest<B: BufMut + ?Sized>(out: &mut B, m: &Manifest) {
    put_cdb_head(out, Fpt::TRANSFER_MANIFEST, MANIFEST_CDB_LEN, None);
    out.put_u8(KIND_MANIFEST);
    out.put_u8(VERSION);
    out.put_u16(m.context_count);
    out.put_u32(m.transfer_id);
    out.put_u32(m.ctd_count);
    out.put_u64(m.total_octets);
}

pub(crate) fn put_continuation<B: BufMut + ?Sized>(out: &mut B, c: &Continuation) {
    put_cdb_head(out, Fpt::TRANSFER_MANIFEST, CONTINUATION_CDB_LEN, None);
    out.put_u8(KIND_CONTINUATION);
    out.put_u8(VERSION);
    out.put_u16(0);
    out.put_u32(c.transfer_id);
    out.put_u32(c.ctd_index);
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)?.try_into().ok().map(u32::from_be_bytes)
}

/// Reads a CTD's role from its CDBs.
pub fn ctd_role(cdbs: &[Cdb]) -> Result<CtdRole, TransferError> {
    if let Some(position) = cdbs
        .iter()
        .skip(1)
        .position(|c| c.fpt == Fpt::TRANSFER_MANIFEST)
    {
        return Err(TransferError::ManifestOutOfPlace {
            position: position + 1,
        });
    }
    let Some(first) = cdbs.first().filter(|c| c.fpt == Fpt::TRANSFER_MANIFEST) else {
        return Ok(CtdRole::Plain);
    };
    if first.presence.is_some() {
        return Err(TransferError::BadManifest("presence vector set"));
    }
    let d = &first.data[..];
    let (kind, version) = match d {
        [kind, version, ..] => (*kind, *version),
        _ => return Err(TransferError::BadManifest("too short")),
    };
    if version != VERSION {
        return Err(TransferError::BadManifest("unknown version"));
    }
    match kind {
        KIND_MANIFEST if d.len() == MANIFEST_CDB_LEN - CDB_HEAD_LEN => {
            let context_count = u16::from_be_bytes([d[2], d[3]]);
            let (Some(transfer_id), Some(ctd_count), Some(hi), Some(lo)) =
                (be32(d, 4), be32(d, 8), be32(d, 12), be32(d, 16))
            else {
                return Err(TransferError::BadManifest("too short"));
            };
            if ctd_count == 0 {
                return Err(TransferError::BadManifest("CTD count 0"));
            }
            Ok(CtdRole::First(Manifest {
                transfer_id,
                ctd_count,
                context_count,
                total_octets: (u64::from(hi) << 32) | u64::from(lo),
            }))
        }
        KIND_CONTINUATION if d.len() == CONTINUATION_CDB_LEN - CDB_HEAD_LEN => {
            let (Some(transfer_id), Some(ctd_index)) = (be32(d, 4), be32(d, 8)) else {
                return Err(TransferError::BadManifest("too short"));
            };
            Ok(CtdRole::Continuation(Continuation {
                transfer_id,
                ctd_index,
            }))
        }
        KIND_MANIFEST | KIND_CONTINUATION => Err(TransferError::BadManifest("wrong size")),
        _ => Err(TransferError::BadManifest("unknown kind")),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::wire::Reader;

    fn cdb_of(write: impl Fn(&mut Vec<u8>)) -> Cdb {
        let mut v = Vec::new();
        write(&mut v);
        let b = Bytes::from(v);
        Cdb::read(&mut Reader::new(&b, 0)).expect("valid CDB")
    }

    #[test]
    fn manifest_round_trip_and_wire() {
        let m = Manifest {
            transfer_id: 0x0102_0304,
            ctd_count: 3,
            context_count: 2,
            total_octets: 0x1_0000_0001,
        };
        let mut v = Vec::new();
        put_manifest(&mut v, &m);
        #[rustfmt::skip]
        let wire = [
            0xE0, 0x00, 3, 0,
            1, 1, 0, 2,
            1, 2, 3, 4,
            0, 0, 0, 3,
            0, 0, 0, 1, 0, 0, 0, 1,
        ];
        assert_eq!(v, wire);
        let cdb = cdb_of(|o| put_manifest(o, &m));
        assert_eq!(ctd_role(&[cdb]), Ok(CtdRole::First(m)));
        let c = Continuation {
            transfer_id: 9,
            ctd_index: 2,
        };
        let cdb = cdb_of(|o| put_continuation(o, &c));
        assert_eq!(ctd_role(&[cdb]), Ok(CtdRole::Continuation(c)));
    }

    #[test]
    fn rejects_misplaced_or_bad_markers() {
        let m = cdb_of(|o| {
            put_manifest(
                o,
                &Manifest {
                    transfer_id: 1,
                    ctd_count: 0,
                    context_count: 0,
                    total_octets: 0,
                },
            )
        });
        assert_eq!(
            ctd_role(std::slice::from_ref(&m)),
            Err(TransferError::BadManifest("CTD count 0"))
        );
        let plain = Cdb::new(Fpt(1), vec![0u8; 4]);
        assert_eq!(
            ctd_role(&[plain.clone(), m]),
            Err(TransferError::ManifestOutOfPlace { position: 1 })
        );
        assert_eq!(ctd_role(&[plain]), Ok(CtdRole::Plain));
        assert_eq!(ctd_role(&[]), Ok(CtdRole::Plain));
        let odd = Cdb::new(Fpt::TRANSFER_MANIFEST, vec![7u8, 1, 0, 0]);
        assert_eq!(
            ctd_role(&[odd]),
            Err(TransferError::BadManifest("unknown kind"))
        );
    }
}

//! Receiver side of the large-context layer: turns the CDBs of one or more
//! CTDs back into contexts, checking every length, index and limit.
//!
//! Memory follows what arrived, never what was claimed: segments are kept
//! as zero-copy slices of the received frames, and a context is copied into
//! one buffer of its exact size only once all of its octets are here.

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};

use super::Context;
use super::manifest::Manifest;
use super::segment::parse_segment;
use crate::auth::KeyMaterial;
use crate::cdb::Cdb;
use crate::error::TransferError;
use crate::fpt::Fpt;

/// Limits a receiver enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most delivered context octets per transfer.
    pub max_transfer_bytes: u64,
    /// Most contexts per transfer.
    pub max_contexts: u32,
}

/// A transfer received in full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrivedTransfer {
    /// The MN.
    pub mn: IpAddr,
    /// Its contexts, in the order sent.
    pub contexts: Vec<Context>,
    /// `A` flag of the last CTD: the sender wants a CTDR.
    pub ack_requested: bool,
    /// Key material, if a PCTD carried it.
    pub key: Option<KeyMaterial>,
}

#[derive(Debug)]
struct Partial {
    index: u16,
    fpt: Fpt,
    total: u64,
    received: u64,
    pieces: Vec<Bytes>,
}

/// Whether a reassembly needs more CTDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More CTDs are announced.
    NeedMore,
    /// All announced CTDs are in; call [`Reassembly::finish`].
    Complete,
}

/// Reassembly state of one transfer.
#[derive(Debug)]
pub struct Reassembly {
    mn: IpAddr,
    limits: Limits,
    manifest: Option<Manifest>,
    ctds_received: u32,
    contexts: Vec<Context>,
    current: Option<Partial>,
    /// Delivered octets committed by started contexts (claimed totals).
    committed: u64,
    ack_requested: bool,
    key: Option<KeyMaterial>,
}

impl Reassembly {
    /// Starts a reassembly; `manifest` is `None` for a plain CTD.
    pub fn new(
        mn: IpAddr,
        manifest: Option<Manifest>,
        limits: Limits,
    ) -> Result<Self, TransferError> {
        if let Some(m) = manifest {
            if m.total_octets > limits.max_transfer_bytes {
                return Err(TransferError::TooLarge {
                    claimed: m.total_octets,
                    limit: limits.max_transfer_bytes,
                });
            }
            if u32::from(m.context_count) > limits.max_contexts {
                return Err(TransferError::TooManyContexts {
                    count: u64::from(m.context_count),
                    limit: u64::from(limits.max_contexts),
                });
            }
        }
        Ok(Reassembly {
            mn,
            limits,
            manifest,
            ctds_received: 0,
            contexts: Vec::new(),
            current: None,
            committed: 0,
            ack_requested: false,
            key: None,
        })
    }

    /// The manifest, for a multi-CTD transfer.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// CTDs absorbed so far.
    pub fn ctds_received(&self) -> u32 {
        self.ctds_received
    }

    fn max_octets(&self) -> u64 {
        match self.manifest {
            Some(m) => m.total_octets,
            None => self.limits.max_transfer_bytes,
        }
    }

    fn max_contexts(&self) -> u64 {
        match self.manifest {
            Some(m) => u64::from(m.context_count),
            None => u64::from(self.limits.max_contexts),
        }
    }

    fn commit(&mut self, octets: u64) -> Result<(), TransferError> {
        let contexts = self.contexts.len() as u64 + 1;
        if contexts > self.max_contexts() {
            return Err(TransferError::TooManyContexts {
                count: contexts,
                limit: self.max_contexts(),
            });
        }
        let claimed = self.committed.saturating_add(octets);
        if claimed > self.max_octets() {
            return Err(TransferError::TooLarge {
                claimed,
                limit: self.max_octets(),
            });
        }
        self.committed = claimed;
        Ok(())
    }

    fn incomplete(&self) -> Result<(), TransferError> {
        match &self.current {
            Some(p) => Err(TransferError::IncompleteContext {
                index: u32::from(p.index),
                received: p.received,
                total: p.total,
            }),
            None => Ok(()),
        }
    }

    /// Absorbs the context CDBs of one CTD (manifest/continuation CDB
    /// already stripped). `ack_requested` is the CTD's `A` flag.
    pub fn absorb(
        &mut self,
        cdbs: &[Cdb],
        ack_requested: bool,
        key: Option<KeyMaterial>,
    ) -> Result<Progress, TransferError> {
        self.ctds_received = self.ctds_received.saturating_add(1);
        self.ack_requested = ack_requested;
        if key.is_some() {
            self.key = key;
        }
        for cdb in cdbs {
            if cdb.presence.is_some() {
                return Err(TransferError::BadManifest(
                    "presence vectors are not supported by the transfer layer",
                ));
            }
            if cdb.fpt.is_edgemob() {
                self.absorb_segment(cdb)?;
            } else {
                self.incomplete()?;
                self.commit(cdb.data.len() as u64)?;
                self.contexts.push(Context {
                    fpt: cdb.fpt,
                    data: cdb.data.clone(),
                });
            }
        }
        Ok(match self.manifest {
            Some(m) if self.ctds_received < m.ctd_count => Progress::NeedMore,
            _ => Progress::Complete,
        })
    }

    fn absorb_segment(&mut self, cdb: &Cdb) -> Result<(), TransferError> {
        let seg = parse_segment(cdb.fpt, &cdb.data)?;
        let seg_len = seg.payload.len() as u64;
        let (offset, total) = (u64::from(seg.offset), u64::from(seg.total));
        if let Some(p) = &self.current {
            if seg.index != p.index || cdb.fpt != p.fpt {
                return self.incomplete();
            }
            if offset != p.received {
                return Err(TransferError::SegmentOutOfOrder {
                    index: p.index,
                    expected: p.received,
                    got: offset,
                });
            }
        } else {
            let expected = self.contexts.len() as u32;
            if u32::from(seg.index) != expected {
                return Err(TransferError::ContextIndexMismatch {
                    expected,
                    got: seg.index,
                });
            }
            if offset != 0 {
                return Err(TransferError::SegmentOutOfOrder {
                    index: seg.index,
                    expected: 0,
                    got: offset,
                });
            }
            self.commit(total)?;
            self.current = Some(Partial {
                index: seg.index,
                fpt: cdb.fpt,
                total,
                received: 0,
                pieces: Vec::new(),
            });
        }
        let Some(p) = self.current.as_mut() else {
            return Ok(());
        };
        let implied = offset + seg_len;
        if total != p.total || implied > p.total {
            return Err(TransferError::ContextLengthMismatch {
                index: p.index,
                announced: p.total,
                implied: implied.max(total),
            });
        }
        p.received = implied;
        if !seg.payload.is_empty() {
            p.pieces.push(seg.payload);
        }
        if p.received == p.total
            && let Some(done) = self.current.take()
        {
            let data = match <[Bytes; 1]>::try_from(done.pieces) {
                Ok([only]) => only,
                Err(pieces) => {
                    let mut buf = BytesMut::with_capacity(done.total as usize);
                    pieces.iter().for_each(|b| buf.extend_from_slice(b));
                    buf.freeze()
                }
            };
            self.contexts.push(Context {
                fpt: done.fpt,
                data,
            });
        }
        Ok(())
    }

    /// Ends the reassembly once [`Progress::Complete`]: checks that every
    /// context is whole and, for a manifest transfer, that the counts match.
    pub fn finish(self) -> Result<ArrivedTransfer, TransferError> {
        self.incomplete()?;
        if let Some(m) = self.manifest {
            if self.ctds_received != m.ctd_count {
                return Err(TransferError::ManifestMismatch {
                    what: "CTDs",
                    announced: u64::from(m.ctd_count),
                    received: u64::from(self.ctds_received),
                });
            }
            if self.contexts.len() != usize::from(m.context_count) {
                return Err(TransferError::ManifestMismatch {
                    what: "contexts",
                    announced: u64::from(m.context_count),
                    received: self.contexts.len() as u64,
                });
            }
            if self.committed != m.total_octets {
                return Err(TransferError::ManifestMismatch {
                    what: "octets",
                    announced: m.total_octets,
                    received: self.committed,
                });
            }
        }
        Ok(ArrivedTransfer {
            mn: self.mn,
            contexts: self.contexts,
            ack_requested: self.ack_requested,
            key: self.key,
        })
    }
}

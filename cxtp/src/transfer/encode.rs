//! Packs a transfer into CTD frames: one plain RFC CTD when it fits,
//! otherwise a manifest CTD plus continuation CTDs.
//!
//! Packing is a deterministic walk (`Packer`) run once to size the output
//! (frame count, exact octets) and once to write it, so the output buffer is
//! allocated once at its final size and no per-CDB buffers exist.

use std::net::IpAddr;

use bytes::{BufMut, BytesMut};

use super::Context;
use super::manifest::{
    CONTINUATION_CDB_LEN, Continuation, MANIFEST_CDB_LEN, Manifest, put_continuation, put_manifest,
};
use super::segment::{MAX_SEGMENT_PAYLOAD, SEGMENT_HEADER_LEN, put_segment_header};
use crate::auth::KeyMaterial;
use crate::cdb::{CDB_HEAD_LEN, MAX_CDB_DATA, put_cdb_head};
use crate::error::{EncodeError, TransferError};
use crate::header::{HEADER_LEN, Header, MAX_MESSAGE_LEN, MessageType};
use crate::wire::{addr_len, pad8, put_addr};

/// Most contexts one transfer carries (the segment index is 16 bits).
pub const MAX_CONTEXTS: usize = u16::MAX as usize;
/// Longest key a transfer's PCTD may carry (keeps the first CTD useful).
pub const MAX_KEY_LEN: usize = 1024;

/// How to frame a transfer.
#[derive(Clone, Debug, Default)]
pub struct EncodeOptions<'a> {
    /// Set the `A` flag on the transfer's last CTD.
    pub ack_requested: bool,
    /// Elapsed Time field of every CTD.
    pub elapsed_ms: u32,
    /// Id for the manifest and continuations.
    pub transfer_id: u32,
    /// Key material: the first CTD is then a PCTD carrying it.
    pub key: Option<&'a KeyMaterial>,
    /// Refuse transfers whose delivered octets exceed this.
    pub max_transfer_bytes: u64,
}

/// Result of [`encode_transfer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedInfo {
    /// CTD frames written.
    pub ctd_count: u32,
    /// Octets written.
    pub octets: usize,
    /// Delivered context octets (what the receiver will count).
    pub context_octets: u64,
}

/// One step of the packing walk.
#[derive(Clone, Copy, Debug)]
enum Step {
    BeginCtd,
    Segment {
        ctx: usize,
        offset: usize,
        len: usize,
    },
    Opaque {
        ctx: usize,
    },
}

/// Walks contexts into CTD-sized pieces. `multi` reserves room for the
/// manifest/continuation CDB at the start of each CTD.
struct Packer<'a> {
    contexts: &'a [Context],
    multi: bool,
    base_overhead: usize,
    first_extra: usize,
    ctx: usize,
    offset: usize,
    cap_left: usize,
    ctds: u32,
}

impl<'a> Packer<'a> {
    fn new(contexts: &'a [Context], mn: &IpAddr, key_len: Option<usize>, multi: bool) -> Self {
        Packer {
            contexts,
            multi,
            base_overhead: HEADER_LEN + 4 + addr_len(mn),
            first_extra: key_len.map_or(0, |k| 4 + k),
            ctx: 0,
            offset: 0,
            cap_left: 0,
            ctds: 0,
        }
    }

    fn begin(&mut self) -> Step {
        let marker = match (self.multi, self.ctds) {
            (false, _) => 0,
            (true, 0) => MANIFEST_CDB_LEN,
            (true, _) => CONTINUATION_CDB_LEN,
        };
        let extra = if self.ctds == 0 { self.first_extra } else { 0 };
        self.cap_left = MAX_MESSAGE_LEN - self.base_overhead - extra - marker;
        self.ctds += 1;
        Step::BeginCtd
    }

    fn next(&mut self) -> Option<Step> {
        if self.ctds == 0 {
            return Some(self.begin());
        }
        let c = self.contexts.get(self.ctx)?;
        if !c.fpt.is_edgemob() {
            let need = pad8(CDB_HEAD_LEN + c.data.len());
            if need > self.cap_left {
                return Some(self.begin());
            }
            self.cap_left -= need;
            self.ctx += 1;
            return Some(Step::Opaque { ctx: self.ctx - 1 });
        }
        let remaining = c.data.len() - self.offset;
        let head = CDB_HEAD_LEN + SEGMENT_HEADER_LEN;
        let len = if remaining <= MAX_SEGMENT_PAYLOAD && head + pad8(remaining) <= self.cap_left {
            remaining
        } else {
            // Fill what is left of this CTD with a whole number of words.
            let room = self.cap_left.saturating_sub(head) & !7;
            let len = room.min(MAX_SEGMENT_PAYLOAD).min(remaining);
            if len == 0 {
                return Some(self.begin());
            }
            len
        };
        self.cap_left -= head + pad8(len);
        let step = Step::Segment {
            ctx: self.ctx,
            offset: self.offset,
            len,
        };
        self.offset += len;
        if self.offset == c.data.len() {
            self.ctx += 1;
            self.offset = 0;
        }
        Some(step)
    }
}

/// Frame count and octets a packing would produce.
fn measure(contexts: &[Context], mn: &IpAddr, key_len: Option<usize>, multi: bool) -> (u32, usize) {
    let mut p = Packer::new(contexts, mn, key_len, multi);
    let mut octets = 0;
    while let Some(step) = p.next() {
        octets += match step {
            Step::BeginCtd => {
                p.base_overhead
                    + if p.ctds == 1 { p.first_extra } else { 0 }
                    + match (multi, p.ctds) {
                        (false, _) => 0,
                        (true, 1) => MANIFEST_CDB_LEN,
                        (true, _) => CONTINUATION_CDB_LEN,
                    }
            }
            Step::Segment { len, .. } => CDB_HEAD_LEN + SEGMENT_HEADER_LEN + pad8(len),
            Step::Opaque { ctx } => pad8(CDB_HEAD_LEN + contexts[ctx].data.len()),
        };
    }
    (p.ctds, octets)
}

fn validate(contexts: &[Context], opts: &EncodeOptions<'_>) -> Result<u64, TransferError> {
    if contexts.len() > MAX_CONTEXTS {
        return Err(TransferError::TooManyContexts {
            count: contexts.len() as u64,
            limit: MAX_CONTEXTS as u64,
        });
    }
    if let Some(k) = opts.key
        && k.key.len() > MAX_KEY_LEN
    {
        return Err(EncodeError::KeyTooLong { len: k.key.len() }.into());
    }
    let mut total: u64 = 0;
    for (index, c) in contexts.iter().enumerate() {
        if !c.fpt.is_context() {
            return Err(TransferError::ReservedFpt { index, fpt: c.fpt });
        }
        let delivered = if c.fpt.is_edgemob() {
            if c.data.len() > u32::MAX as usize {
                return Err(TransferError::TooLarge {
                    claimed: c.data.len() as u64,
                    limit: u64::from(u32::MAX),
                });
            }
            c.data.len()
        } else {
            if c.data.len() > MAX_CDB_DATA {
                return Err(TransferError::OpaqueContextTooLarge {
                    index,
                    fpt: c.fpt,
                    len: c.data.len(),
                });
            }
            pad8(CDB_HEAD_LEN + c.data.len()) - CDB_HEAD_LEN
        };
        total = total.saturating_add(delivered as u64);
    }
    if total > opts.max_transfer_bytes {
        return Err(TransferError::TooLarge {
            claimed: total,
            limit: opts.max_transfer_bytes,
        });
    }
    Ok(total)
}

/// Appends the CTD frames of a transfer to `out` (reserving the exact size
/// first). Nothing is written on error.
pub fn encode_transfer(
    mn: IpAddr,
    contexts: &[Context],
    opts: &EncodeOptions<'_>,
    out: &mut BytesMut,
) -> Result<EncodedInfo, TransferError> {
    let context_octets = validate(contexts, opts)?;
    let key_len = opts.key.map(|k| k.key.len());
    let (mut ctd_count, mut octets) = measure(contexts, &mn, key_len, false);
    let multi = ctd_count > 1;
    if multi {
        (ctd_count, octets) = measure(contexts, &mn, key_len, true);
    }
    out.reserve(octets);
    let start_len = out.len();

    let mut p = Packer::new(contexts, &mn, key_len, multi);
    let mut frame_start: Option<usize> = None;
    while let Some(step) = p.next() {
        match step {
            Step::BeginCtd => {
                if let Some(s) = frame_start {
                    patch_len(out, s);
                }
                frame_start = Some(out.len());
                let ctd_index = p.ctds - 1;
                let with_key = ctd_index == 0 && opts.key.is_some();
                let header = Header {
                    msg_type: if with_key {
                        MessageType::Pctd
                    } else {
                        MessageType::Ctd
                    },
                    ipv4: mn.is_ipv4(),
                    flag: opts.ack_requested && ctd_index + 1 == ctd_count,
                    length: 0, // patched when the frame is complete
                };
                out.put_slice(&header.to_bytes());
                out.put_u32(opts.elapsed_ms);
                put_addr(out, &mn);
                if let (true, Some(k)) = (with_key, opts.key) {
                    out.put_u16(k.algorithm.0);
                    out.put_u16(k.key.len() as u16); // <= MAX_KEY_LEN
                    out.put_slice(&k.key);
                }
                if multi && ctd_index == 0 {
                    put_manifest(
                        out,
                        &Manifest {
                            transfer_id: opts.transfer_id,
                            ctd_count,
                            context_count: contexts.len() as u16, // <= MAX_CONTEXTS
                            total_octets: context_octets,
                        },
                    );
                } else if multi {
                    put_continuation(
                        out,
                        &Continuation {
                            transfer_id: opts.transfer_id,
                            ctd_index,
                        },
                    );
                }
            }
            Step::Segment { ctx, offset, len } => {
                let c = &contexts[ctx];
                let cdb_len = CDB_HEAD_LEN + SEGMENT_HEADER_LEN + pad8(len);
                put_cdb_head(out, c.fpt, cdb_len, None);
                // Indices, offsets and lengths were bounded by `validate`.
                put_segment_header(
                    out,
                    ctx as u16,
                    len as u16,
                    offset as u32,
                    c.data.len() as u32,
                );
                out.put_slice(&c.data[offset..offset + len]);
                out.put_bytes(0, pad8(len) - len);
            }
            Step::Opaque { ctx } => {
                let c = &contexts[ctx];
                let cdb_len = pad8(CDB_HEAD_LEN + c.data.len());
                put_cdb_head(out, c.fpt, cdb_len, None);
                out.put_slice(&c.data);
                out.put_bytes(0, cdb_len - CDB_HEAD_LEN - c.data.len());
            }
        }
    }
    if let Some(s) = frame_start {
        patch_len(out, s);
    }
    debug_assert_eq!(out.len() - start_len, octets);
    Ok(EncodedInfo {
        ctd_count,
        octets,
        context_octets,
    })
}

/// Writes the Length field of the frame starting at `start`.
fn patch_len(out: &mut BytesMut, start: usize) {
    let len = out.len() - start;
    debug_assert!(len <= MAX_MESSAGE_LEN);
    out[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
}

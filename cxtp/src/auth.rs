//! Authorization tokens and replay protection (RFC 4067 §2.5.1, §3.2, §6.3).
//!
//! The token authorizes a context transfer for an MN:
//!
//! ```text
//! token = First(32, HMAC_SHA1(Key, (Previous IP address | Sequence Number | CDBs)))
//! ```
//!
//! where the address is the MN's previous address as it appears in the
//! message (4 or 16 octets), the sequence number is the 32-bit big-endian
//! field, and CDBs is the concatenation of the request blocks carried in the
//! CTAR, exactly as encoded. `First(32, ..)` is the first four octets of the
//! 20-octet digest, read as a big-endian `u32`.
//!
//! An AR "MUST ignore the CTAR message if it has already received one with
//! the same sequence number and MN IP address" (§3.2); the MN must not reuse
//! a sequence number within 7 seconds. [`ReplayCache`] remembers
//! `(MN, sequence)` pairs for such a window in bounded memory.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use thiserror::Error;

use crate::cdb::{Cdb, put_cdb_head};

type HmacSha1 = Hmac<Sha1>;

/// Token calculation algorithm codes (IANA registry of RFC 4065 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AuthAlgorithm(pub u16);

impl AuthAlgorithm {
    /// HMAC_SHA1, the only algorithm defined.
    pub const HMAC_SHA1: AuthAlgorithm = AuthAlgorithm(1);
}

/// The keying material a PCTD carries so the nAR can check the MN's token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyMaterial {
    /// Algorithm the key is for.
    pub algorithm: AuthAlgorithm,
    /// The shared MN–AR key.
    pub key: Bytes,
}

/// A 32-bit authorization token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AuthToken(pub u32);

impl AuthToken {
    /// The all-zero token a CT-Req carries when the nAR has no CTAR yet
    /// (RFC 4067 §2.5.6); the pAR then answers with key material.
    pub const NULL: AuthToken = AuthToken(0);

    /// Whether this is the null token.
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
}

fn mac_over(key: &[u8], mn: IpAddr, seq: u32) -> HmacSha1 {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac =
        <HmacSha1 as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    match mn {
        IpAddr::V4(a) => mac.update(&a.octets()),
        IpAddr::V6(a) => mac.update(&a.octets()),
    }
    mac.update(&seq.to_be_bytes());
    mac
}

fn update_with_cdbs(mac: &mut HmacSha1, cdbs: &[Cdb]) {
    const ZEROS: [u8; 8] = [0; 8];
    for cdb in cdbs {
        let len = cdb.encoded_len();
        let mut head = [0u8; 8];
        let mut w = &mut head[..];
        put_cdb_head(
            &mut w,
            cdb.fpt,
            len.min(crate::cdb::MAX_CDB_LEN) & !7,
            cdb.presence,
        );
        mac.update(&head[..cdb.head_len()]);
        mac.update(&cdb.data);
        let pad = len - cdb.head_len() - cdb.data.len();
        mac.update(&ZEROS[..pad]);
    }
}

fn first32(mac: HmacSha1) -> AuthToken {
    let digest = mac.finalize().into_bytes();
    let mut first = [0u8; 4];
    first.copy_from_slice(&digest[..4]);
    AuthToken(u32::from_be_bytes(first))
}

/// Computes the token over already-encoded request blocks.
pub fn compute_token_raw(key: &[u8], mn: IpAddr, seq: u32, cdb_octets: &[u8]) -> AuthToken {
    let mut mac = mac_over(key, mn, seq);
    mac.update(cdb_octets);
    first32(mac)
}

/// Computes the token over request blocks as edgemob encodes them.
pub fn compute_token(key: &[u8], mn: IpAddr, seq: u32, cdbs: &[Cdb]) -> AuthToken {
    let mut mac = mac_over(key, mn, seq);
    update_with_cdbs(&mut mac, cdbs);
    first32(mac)
}

/// Checks a token in constant time (no early exit on the first differing bit).
pub fn verify_token(key: &[u8], mn: IpAddr, seq: u32, cdbs: &[Cdb], token: AuthToken) -> bool {
    let mut mac = mac_over(key, mn, seq);
    update_with_cdbs(&mut mac, cdbs);
    mac.verify_truncated_left(&token.0.to_be_bytes()).is_ok()
}

/// Checks a token over already-encoded request blocks, in constant time.
pub fn verify_token_raw(
    key: &[u8],
    mn: IpAddr,
    seq: u32,
    cdb_octets: &[u8],
    token: AuthToken,
) -> bool {
    let mut mac = mac_over(key, mn, seq);
    mac.update(cdb_octets);
    mac.verify_truncated_left(&token.0.to_be_bytes()).is_ok()
}

/// Why a request was refused by the replay cache.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// This `(MN, sequence)` pair was seen within the window.
    #[error("duplicate sequence number {seq} for {mn}")]
    Duplicate {
        /// The MN.
        mn: IpAddr,
        /// The repeated sequence number.
        seq: u32,
    },
    /// The cache is full of unexpired entries; the request is refused rather
    /// than forgetting a live entry (which would let that one be replayed).
    #[error("replay cache full ({capacity} live entries)")]
    Full {
        /// The configured capacity.
        capacity: usize,
    },
}

/// Remembers `(MN, sequence)` pairs for `window`, at most `capacity` at once.
///
/// Memory is bounded by `capacity`. Entries are recorded in arrival order,
/// so expiry pops from the front; the `now` values given must not go
/// backwards (an `Instant` clock guarantees that).
#[derive(Debug)]
pub struct ReplayCache {
    window: Duration,
    capacity: usize,
    seen: HashSet<(IpAddr, u32)>,
    order: VecDeque<(Instant, IpAddr, u32)>,
}

impl ReplayCache {
    /// RFC 4067 §3.2: an MN must not reuse a sequence number within 7 s.
    pub const RFC_WINDOW: Duration = Duration::from_secs(7);

    /// A cache remembering pairs for `window`, holding at most `capacity`.
    pub fn new(window: Duration, capacity: usize) -> Self {
        ReplayCache {
            window,
            capacity,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Entries currently remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, mn, seq)) = self.order.front() {
            if now.saturating_duration_since(at) < self.window {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&(mn, seq));
        }
    }

    /// Records `(mn, seq)`; fails if it was seen within the window or the
    /// cache is full of live entries.
    pub fn check_and_record(
        &mut self,
        mn: IpAddr,
        seq: u32,
        now: Instant,
    ) -> Result<(), ReplayError> {
        self.expire(now);
        if self.seen.contains(&(mn, seq)) {
            return Err(ReplayError::Duplicate { mn, seq });
        }
        if self.order.len() >= self.capacity {
            return Err(ReplayError::Full {
                capacity: self.capacity,
            });
        }
        self.seen.insert((mn, seq));
        self.order.push_back((now, mn, seq));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::fpt::Fpt;

    const MN: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));

    #[test]
    fn token_matches_independent_hmac_sha1() {
        // Reference value from Python's hmac module:
        // hmac.new(b"edgemob-key", bytes([10,0,0,7]) + (0x01020304).to_bytes(4,"big")
        //          + bytes([0,1,1,0,0,0,0,0]), "sha1").digest()[:4]
        let token = compute_token(b"edgemob-key", MN, 0x0102_0304, &[Cdb::request(Fpt(1))]);
        assert_eq!(token, AuthToken(0xaec3_f0aa));
        let raw = compute_token_raw(b"edgemob-key", MN, 0x0102_0304, &[0, 1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(raw, token);
    }

    #[test]
    fn rfc2202_vector_truncated() {
        // RFC 2202 test case 2: key "Jefe", data "what do ya want for nothing?",
        // HMAC-SHA1 = effcdf6ae5eb2fa2d27416d5f184df9c259a7c79.
        // Split the data as address (4) | sequence (4) | rest.
        let data = b"what do ya want for nothing?";
        let mn = IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        let seq = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        let token = compute_token_raw(b"Jefe", mn, seq, &data[8..]);
        assert_eq!(token, AuthToken(0xeffc_df6a));
        assert!(verify_token_raw(b"Jefe", mn, seq, &data[8..], token));
        assert!(!verify_token_raw(
            b"Jefe",
            mn,
            seq,
            &data[8..],
            AuthToken(0xeffc_df6b)
        ));
        assert!(!verify_token_raw(b"Jeff", mn, seq, &data[8..], token));
    }

    #[test]
    fn verify_rejects_changed_fields() {
        let cdbs = [Cdb::request(Fpt::TCP_CONNECTION_IMAGE)];
        let token = compute_token(b"k", MN, 9, &cdbs);
        assert!(verify_token(b"k", MN, 9, &cdbs, token));
        assert!(!verify_token(b"k", MN, 10, &cdbs, token));
        assert!(!verify_token(
            b"k",
            "10.0.0.8".parse().expect("addr"),
            9,
            &cdbs,
            token
        ));
        assert!(!verify_token(b"k", MN, 9, &[], token));
    }

    #[test]
    fn replay_cache_rejects_duplicates_and_forgets_after_window() {
        let t0 = Instant::now();
        let mut cache = ReplayCache::new(Duration::from_secs(7), 2);
        assert_eq!(cache.check_and_record(MN, 1, t0), Ok(()));
        assert_eq!(
            cache.check_and_record(MN, 1, t0 + Duration::from_secs(6)),
            Err(ReplayError::Duplicate { mn: MN, seq: 1 })
        );
        let other: IpAddr = "10.0.0.9".parse().expect("addr");
        assert_eq!(cache.check_and_record(other, 1, t0), Ok(()));
        assert_eq!(
            cache.check_and_record(MN, 2, t0 + Duration::from_secs(1)),
            Err(ReplayError::Full { capacity: 2 })
        );
        assert_eq!(
            cache.check_and_record(MN, 1, t0 + Duration::from_secs(7)),
            Ok(())
        );
        assert_eq!(cache.len(), 1);
    }
}

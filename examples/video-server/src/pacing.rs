//! Pacing of response bodies: a per-connection token bucket.
//!
//! Credit accrues at the configured bit rate, up to [`DEPTH_CHUNKS`]
//! chunks; data is sent when the bucket holds a chunk's worth, and all the
//! credit is spent at once. Chunks are about 1 ms worth of data, at least
//! 1 KiB and at most 16 KiB; the session waits for them on a precise timer
//! ([`crate::timer`]). Timers still wake late on a busy machine; the deeper
//! bucket lets a late wake-up catch up, so the long-run rate is the
//! configured one. Credit is kept in
//! bit-nanoseconds (bits × 10⁹), so the rate is exact over any duration and
//! rounding never drifts.
//!
//! A connection that moves to another eNBC carries its remaining credit
//! (at most one chunk) and starts a new bucket there from the moment it
//! resumes: the time the handover took is not paid back in a burst.

use std::time::{Duration, Instant};

/// Largest chunk written at once when pacing.
pub const MAX_CHUNK: u64 = 16 * 1024;
/// Smallest chunk written at once when pacing.
pub const MIN_CHUNK: u64 = 1024;
/// Bucket depth in chunks: how far a late timer may be caught up.
pub const DEPTH_CHUNKS: u64 = 4;
/// Chunk size for unpaced responses.
pub const UNPACED_CHUNK: u64 = 64 * 1024;

const NS: u128 = 1_000_000_000;

/// Parses a bit rate: digits with an optional fraction and an optional SI
/// suffix `k`, `M` or `G` (powers of 1000; case does not matter), and an
/// optional trailing `bit/s` or `bps`: `0`, `500k`, `8M`, `1.5M`, `2Gbps`.
pub fn parse_bitrate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("bit/s")
        .or_else(|| t.strip_suffix("bps"))
        .unwrap_or(t)
        .trim_end();
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let num = num.trim_end();
    let bad = || format!("{s:?} is not a bit rate (examples: 0, 500k, 8M, 1.5G)");
    if num.is_empty()
        || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || num.bytes().filter(|&b| b == b'.').count() > 1
        || num.starts_with('.')
        || num.ends_with('.')
    {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let bits = (v * mult).round();
    if !(0.0..=1e15).contains(&bits) {
        return Err(format!("{s:?}: bit rate out of range (at most 1000T)"));
    }
    Ok(bits as u64)
}

/// The chunk size for a bit rate: about 1 ms of data, within
/// [`MIN_CHUNK`]..=[`MAX_CHUNK`] — a smooth stream, as a video server's
/// pacer sends it, so a client sees gaps of about a millisecond.
pub fn chunk_for(bits_per_s: u64) -> u64 {
    (bits_per_s / 8 / 1000).clamp(MIN_CHUNK, MAX_CHUNK)
}

/// A token bucket [`DEPTH_CHUNKS`] chunks deep.
#[derive(Debug, Clone)]
pub struct Pacer {
    bits_per_s: u64,
    chunk: u64,
    /// Credit in bit-nanoseconds at `at`.
    credit: u128,
    at: Instant,
}

impl Pacer {
    /// A bucket holding one chunk of credit; `None` when unpaced.
    pub fn new(bits_per_s: u64, now: Instant) -> Option<Pacer> {
        let chunk = chunk_for(bits_per_s);
        Pacer::with_credit(bits_per_s, chunk, now)
    }

    /// A bucket holding `credit` octets (capped at one chunk), as carried
    /// over from another eNBC; `None` when unpaced.
    pub fn with_credit(bits_per_s: u64, credit: u64, now: Instant) -> Option<Pacer> {
        if bits_per_s == 0 {
            return None;
        }
        let chunk = chunk_for(bits_per_s);
        Some(Pacer {
            bits_per_s,
            chunk,
            credit: u128::from(credit.min(chunk)) * 8 * NS,
            at: now,
        })
    }

    /// The chunk size, octets.
    pub fn chunk(&self) -> u64 {
        self.chunk
    }

    fn cap(&self) -> u128 {
        u128::from(self.chunk * DEPTH_CHUNKS) * 8 * NS
    }

    fn credit_at(&self, now: Instant) -> u128 {
        let dt = now.saturating_duration_since(self.at).as_nanos();
        (self.credit + dt.saturating_mul(u128::from(self.bits_per_s))).min(self.cap())
    }

    /// Whole octets that may be sent at `now`.
    pub fn available(&self, now: Instant) -> u64 {
        (self.credit_at(now) / (8 * NS)) as u64
    }

    /// Records that `octets` were sent at `now`.
    pub fn consume(&mut self, octets: u64, now: Instant) {
        let c = self.credit_at(now);
        self.credit = c.saturating_sub(u128::from(octets) * 8 * NS);
        self.at = now.max(self.at);
    }

    /// How long after `now` the bucket holds `octets` (zero if it already
    /// does). `octets` beyond the bucket's depth are never reached; they are
    /// capped.
    pub fn delay_for(&self, octets: u64, now: Instant) -> Duration {
        let want = u128::from(octets.min(self.chunk * DEPTH_CHUNKS)) * 8 * NS;
        let have = self.credit_at(now);
        if have >= want {
            return Duration::ZERO;
        }
        let ns = (want - have).div_ceil(u128::from(self.bits_per_s));
        Duration::from_nanos(ns.min(u128::from(u64::MAX)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("1", 1),
            ("500k", 500_000),
            ("500K", 500_000),
            ("8M", 8_000_000),
            ("8m", 8_000_000),
            ("1.5M", 1_500_000),
            ("2G", 2_000_000_000),
            ("2Gbps", 2_000_000_000),
            ("10 Mbit/s", 10_000_000),
            ("64000", 64_000),
        ];
        for (s, want) in ok {
            assert_eq!(parse_bitrate(s), Ok(*want), "{s}");
        }
        for bad in [
            "", "k", "-1", "1.2.3", ".5M", "5.M", "8MiB", "1e6", "abc", "8 M M", "9999999T",
        ] {
            assert!(parse_bitrate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn chunks() {
        assert_eq!(chunk_for(200_000_000), MAX_CHUNK);
        assert_eq!(chunk_for(40_000_000), 5000);
        assert_eq!(chunk_for(1_000_000), MIN_CHUNK);
        assert!(Pacer::new(0, Instant::now()).is_none());
    }

    #[test]
    fn starts_full_and_refills_at_the_rate() {
        let t0 = Instant::now();
        // 16 Mbit/s = 2,000,000 octets/s; chunk 2000 (1 ms).
        let mut p = Pacer::new(16_000_000, t0).unwrap();
        assert_eq!(p.chunk(), 2000);
        assert_eq!(p.available(t0), 2000);
        p.consume(2000, t0);
        assert_eq!(p.available(t0), 0);
        // 0.5 ms → 1000 octets.
        assert_eq!(p.available(t0 + Duration::from_micros(500)), 1000);
        assert_eq!(p.delay_for(2000, t0), Duration::from_millis(1));
        assert_eq!(
            p.delay_for(2000, t0 + Duration::from_micros(250)),
            Duration::from_micros(750)
        );
        // Never more than the bucket's depth, however long it idles.
        assert_eq!(
            p.available(t0 + Duration::from_secs(3600)),
            2000 * DEPTH_CHUNKS
        );
        assert_eq!(
            p.delay_for(1_000_000, t0),
            Duration::from_millis(DEPTH_CHUNKS)
        );
    }

    #[test]
    fn exact_over_time() {
        // Send as soon as allowed for 10 simulated seconds at 8 Mbit/s.
        let t0 = Instant::now();
        let mut p = Pacer::new(8_000_000, t0).unwrap();
        let mut now = t0;
        let mut sent = 0u64;
        while now < t0 + Duration::from_secs(10) {
            let n = p.chunk();
            now += p.delay_for(n, now);
            p.consume(n, now);
            sent += n;
        }
        // 10 s at 1,000,000 octets/s, plus the initial full bucket.
        let expect = 10_000_000 + p.chunk();
        assert!(sent.abs_diff(expect) <= p.chunk(), "sent {sent}");
    }

    #[test]
    fn odd_rates_do_not_drift() {
        let t0 = Instant::now();
        let mut p = Pacer::with_credit(1_234_567, 0, t0).unwrap();
        let mut now = t0;
        let mut sent = 0u64;
        for i in 0..10_000u64 {
            let n = 1 + i % 1000;
            now += p.delay_for(n, now);
            p.consume(n, now);
            sent += n;
        }
        let elapsed = (now - t0).as_secs_f64();
        let rate = sent as f64 * 8.0 / elapsed;
        assert!((rate - 1_234_567.0).abs() < 1.0, "rate {rate}");
    }

    #[test]
    fn carried_credit_is_capped_and_no_burst_after_a_pause() {
        let t0 = Instant::now();
        // 80 Mbit/s = 10,000,000 octets/s; chunk 10,000.
        let p = Pacer::with_credit(80_000_000, 1 << 30, t0).unwrap();
        assert_eq!(p.available(t0), 10_000);
        let p = Pacer::with_credit(80_000_000, 100, t0).unwrap();
        assert_eq!(p.available(t0), 100);
        // 0.1 ms later: 100 + 1000 octets.
        assert_eq!(p.available(t0 + Duration::from_micros(100)), 1100);
    }

    #[test]
    fn late_wake_ups_keep_the_rate() {
        // Every wake-up comes 2 ms after the 1 ms it asked for; spending all
        // credit each time still delivers the configured rate.
        let t0 = Instant::now();
        let mut p = Pacer::new(40_000_000, t0).unwrap();
        let mut now = t0;
        let mut sent = 0u64;
        while now < t0 + Duration::from_secs(1) {
            now += p.delay_for(p.chunk(), now) + Duration::from_millis(2);
            let n = p.available(now);
            p.consume(n, now);
            sent += n;
        }
        let rate = sent as f64 * 8.0 / (now - t0).as_secs_f64();
        assert!((rate - 40e6).abs() < 0.01 * 40e6, "rate {rate}");
    }
}

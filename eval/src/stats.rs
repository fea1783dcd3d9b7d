//! Descriptive statistics over `f64` samples: mean, sample standard
//! deviation, nearest-rank percentiles, min and max.
//!
//! # Conventions
//!
//! * **Non-finite values are ignored.** `NaN`, `+inf` and `-inf` are dropped
//!   before anything is computed; [`Summary::n`] counts the finite values that
//!   were used and [`Summary::ignored`] the ones that were dropped. A measured
//!   record never legitimately holds a non-finite duration, so dropping them is
//!   safer than letting one poison every statistic.
//! * **Empty input.** The single-statistic functions ([`mean`], [`sample_std`],
//!   [`percentile`], [`min`], [`max`]) return `None` when no finite value is
//!   left. [`Summary::of`] never fails: on empty input every statistic is
//!   `0.0` and `n == 0`, so serialized reports stay free of `NaN`/`null`;
//!   callers that must tell "no data" from "zero" look at `n`.
//! * **Standard deviation** is the sample (Bessel-corrected, `n - 1`)
//!   standard deviation; it is `0.0` for a single value.
//! * **Percentiles** use the *nearest-rank* method: for `p` in `[0, 100]` and
//!   `n` sorted values `x[1] <= … <= x[n]`, the `p`-th percentile is
//!   `x[max(1, ceil(p / 100 * n))]`. It is always one of the observed values
//!   (no interpolation), `p = 0` gives the minimum and `p = 100` the maximum.
//!   With 50 runs, p99 is therefore the largest value and p50 the 25th.
//! * The mean is computed with Welford's running update (no overflow of a
//!   running sum, exact for constant input) and clamped to `[min, max]`.

use serde::{Deserialize, Serialize};

/// Finite values of `xs`, sorted ascending.
fn sorted_finite(xs: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Welford's running mean and sum of squared deviations of finite values.
fn welford(xs: &[f64]) -> (usize, f64, f64) {
    let mut n = 0usize;
    let mut mean = 0.0f64;
    let mut m2 = 0.0f64;
    for &x in xs.iter().filter(|x| x.is_finite()) {
        n += 1;
        let delta = x - mean;
        mean += delta / n as f64;
        m2 += delta * (x - mean);
    }
    (n, mean, m2)
}

/// Largest magnitude among the finite values (0 when there is none).
fn max_abs(xs: &[f64]) -> f64 {
    xs.iter()
        .filter(|x| x.is_finite())
        .fold(0.0f64, |a, x| a.max(x.abs()))
}

/// Arithmetic mean of the finite values; `None` if there are none.
///
/// Always finite: should the running update overflow (values near
/// `f64::MAX` of both signs), the mean is recomputed as `sum(x / n)`.
pub fn mean(xs: &[f64]) -> Option<f64> {
    let (n, m, _) = welford(xs);
    if n == 0 {
        return None;
    }
    let m = if m.is_finite() {
        m
    } else {
        xs.iter()
            .filter(|x| x.is_finite())
            .map(|x| x / n as f64)
            .sum()
    };
    let (lo, hi) = (min(xs)?, max(xs)?);
    Some(m.clamp(lo, hi))
}

/// Sample standard deviation (`n - 1` in the denominator) of the finite
/// values; `Some(0.0)` for a single value, `None` for none.
///
/// Always finite: if the running update overflows it is redone on values
/// scaled by their largest magnitude, and a result beyond `f64::MAX`
/// saturates there.
pub fn sample_std(xs: &[f64]) -> Option<f64> {
    let (n, _, m2) = welford(xs);
    let std_of = |n: usize, m2: f64| (m2.max(0.0) / (n - 1) as f64).sqrt();
    match n {
        0 => None,
        1 => Some(0.0),
        _ if m2.is_finite() => Some(std_of(n, m2)),
        _ => {
            let scale = max_abs(xs);
            let scaled: Vec<f64> = xs.iter().map(|x| x / scale).collect();
            let (n, _, m2) = welford(&scaled);
            let s = std_of(n, m2) * scale;
            Some(if s.is_finite() { s } else { f64::MAX })
        }
    }
}

/// Smallest finite value; `None` if there is none.
pub fn min(xs: &[f64]) -> Option<f64> {
    xs.iter()
        .copied()
        .filter(|x| x.is_finite())
        .reduce(f64::min)
}

/// Largest finite value; `None` if there is none.
pub fn max(xs: &[f64]) -> Option<f64> {
    xs.iter()
        .copied()
        .filter(|x| x.is_finite())
        .reduce(f64::max)
}

/// Nearest-rank percentile of already sorted, finite values.
fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let n = sorted.len();
    let rank = (p / 100.0 * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// The `p`-th percentile (`0 <= p <= 100`) of the finite values by the
/// nearest-rank method (see the module docs). `None` for no finite value or
/// a `p` outside `[0, 100]` (including `NaN`).
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    nearest_rank(&sorted_finite(xs), p)
}

/// Every statistic the reports use, computed in one pass over a sample.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Number of finite values used.
    pub n: usize,
    /// Number of non-finite values dropped.
    pub ignored: usize,
    pub mean: f64,
    /// Sample standard deviation (`n - 1`).
    pub std: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Summarizes `xs`. Never fails: with no finite value every statistic is
    /// `0.0` and [`Summary::n`] is `0`.
    pub fn of(xs: &[f64]) -> Summary {
        let sorted = sorted_finite(xs);
        let ignored = xs.len() - sorted.len();
        if sorted.is_empty() {
            return Summary {
                ignored,
                ..Summary::default()
            };
        }
        let pct = |p| nearest_rank(&sorted, p).unwrap_or(0.0);
        Summary {
            n: sorted.len(),
            ignored,
            mean: mean(&sorted).unwrap_or(0.0),
            std: sample_std(&sorted).unwrap_or(0.0),
            min: sorted[0],
            p50: pct(50.0),
            p90: pct(90.0),
            p99: pct(99.0),
            max: sorted[sorted.len() - 1],
        }
    }

    /// True when the sample held at least one finite value.
    pub fn has_data(&self) -> bool {
        self.n > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_input_gives_none_and_zero_summary() {
        assert_eq!(mean(&[]), None);
        assert_eq!(sample_std(&[]), None);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(min(&[]), None);
        assert_eq!(max(&[]), None);
        let s = Summary::of(&[]);
        assert_eq!(s, Summary::default());
        assert!(!s.has_data());
    }

    #[test]
    fn non_finite_values_are_ignored() {
        let xs = [f64::NAN, 1.0, f64::INFINITY, 3.0, f64::NEG_INFINITY];
        let s = Summary::of(&xs);
        assert_eq!(s.n, 2);
        assert_eq!(s.ignored, 3);
        assert_eq!(s.mean, 2.0);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 3.0);
        assert_eq!(mean(&[f64::NAN]), None);
        let only_bad = Summary::of(&[f64::NAN, f64::INFINITY]);
        assert_eq!(only_bad.n, 0);
        assert_eq!(only_bad.ignored, 2);
        assert_eq!(only_bad.mean, 0.0);
    }

    #[test]
    fn extreme_values_stay_finite() {
        let xs = [f64::MAX, -f64::MAX, f64::MAX];
        let m = mean(&xs).unwrap();
        assert!(m.is_finite() && m > 0.0, "{m}");
        let s = sample_std(&xs).unwrap();
        assert!(s.is_finite() && s > 1e307, "{s}");
    }

    #[test]
    fn known_values() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sample variance 32 / 7.
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&xs), Some(5.0));
        let std = sample_std(&xs).unwrap();
        assert!((std - (32.0f64 / 7.0).sqrt()).abs() < 1e-12, "{std}");
        assert_eq!(sample_std(&[42.0]), Some(0.0));
    }

    #[test]
    fn nearest_rank_matches_the_textbook_example() {
        // Classic example: 15, 20, 35, 40, 50.
        let xs = [50.0, 15.0, 40.0, 20.0, 35.0];
        assert_eq!(percentile(&xs, 0.0), Some(15.0));
        assert_eq!(percentile(&xs, 5.0), Some(15.0));
        assert_eq!(percentile(&xs, 30.0), Some(20.0));
        assert_eq!(percentile(&xs, 40.0), Some(20.0));
        assert_eq!(percentile(&xs, 50.0), Some(35.0));
        assert_eq!(percentile(&xs, 100.0), Some(50.0));
        assert_eq!(percentile(&xs, 100.5), None);
        assert_eq!(percentile(&xs, -1.0), None);
        assert_eq!(percentile(&xs, f64::NAN), None);
    }

    #[test]
    fn fifty_runs_p99_is_the_largest_and_p50_the_25th() {
        let xs: Vec<f64> = (1..=50).map(f64::from).collect();
        let s = Summary::of(&xs);
        assert_eq!(s.p50, 25.0);
        assert_eq!(s.p90, 45.0);
        assert_eq!(s.p99, 50.0);
    }

    proptest! {
        #[test]
        fn percentiles_lie_within_min_max_and_are_monotone(
            xs in prop::collection::vec(-1e9f64..1e9, 1..200),
            mut ps in prop::collection::vec(0.0f64..=100.0, 2..10),
        ) {
            let s = Summary::of(&xs);
            prop_assert!(s.min <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.max);
            ps.sort_by(f64::total_cmp);
            let vals: Vec<f64> = ps.iter().map(|&p| percentile(&xs, p).unwrap()).collect();
            for w in vals.windows(2) {
                prop_assert!(w[0] <= w[1]);
            }
            for v in vals {
                prop_assert!(xs.contains(&v), "nearest rank returns an observed value");
            }
        }

        #[test]
        fn mean_lies_within_min_max_and_std_is_non_negative(
            xs in prop::collection::vec(-1e12f64..1e12, 1..200),
        ) {
            let s = Summary::of(&xs);
            prop_assert!(s.min <= s.mean && s.mean <= s.max);
            prop_assert!(s.std >= 0.0 && s.std.is_finite());
        }

        #[test]
        fn constant_sample_has_its_value_as_mean_and_every_percentile(
            c in -1e12f64..1e12, n in 1usize..300, p in 0.0f64..=100.0,
        ) {
            let xs = vec![c; n];
            prop_assert_eq!(mean(&xs), Some(c));
            prop_assert_eq!(sample_std(&xs), Some(0.0));
            prop_assert_eq!(percentile(&xs, p), Some(c));
        }

        #[test]
        fn order_does_not_matter(mut xs in prop::collection::vec(-1e6f64..1e6, 1..100)) {
            let a = Summary::of(&xs);
            xs.reverse();
            let b = Summary::of(&xs);
            prop_assert_eq!(a.p50, b.p50);
            prop_assert_eq!(a.p99, b.p99);
            prop_assert!((a.mean - b.mean).abs() <= 1e-6 * (1.0 + a.mean.abs()));
        }

        #[test]
        fn shifting_by_a_constant_keeps_std(
            xs in prop::collection::vec(-1e3f64..1e3, 2..100), k in -1e3f64..1e3,
        ) {
            let shifted: Vec<f64> = xs.iter().map(|x| x + k).collect();
            let a = sample_std(&xs).unwrap();
            let b = sample_std(&shifted).unwrap();
            prop_assert!((a - b).abs() <= 1e-7 * (1.0 + a), "{a} vs {b}");
        }

        #[test]
        fn arbitrary_bit_patterns_never_panic(bits in prop::collection::vec(any::<u64>(), 0..50)) {
            let xs: Vec<f64> = bits.into_iter().map(f64::from_bits).collect();
            let s = Summary::of(&xs);
            prop_assert_eq!(s.n + s.ignored, xs.len());
            for v in [s.mean, s.std, s.min, s.p50, s.p90, s.p99, s.max] {
                prop_assert!(v.is_finite(), "{s:?}");
            }
            prop_assert!(s.min <= s.mean && s.mean <= s.max, "{s:?}");
        }
    }
}

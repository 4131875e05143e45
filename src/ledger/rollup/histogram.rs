//! Latency and time-to-first-byte histograms in fixed buckets, so rollup rows can be
//! summed in SQL and percentiles still answered: a percentile is read from the bucket
//! that holds the nearest-rank sample. Pure arithmetic; the columns are `columns`'.

/// Upper bounds (inclusive, in ms) of the histogram buckets, roughly log-spaced from
/// 5 ms to 10 minutes: bucket `i` holds `BOUNDS[i-1] < v <= BOUNDS[i]` (bucket 0 holds
/// `v <= 5`), and one more bucket past the end holds everything above 10 minutes.
///
/// Changing these bounds changes what stored rows mean: append-only, by migration.
pub const BOUNDS_MS: [u64; 23] = [
    5, 10, 25, 50, 75, 100, 150, 250, 400, 600, 1_000, 1_500, 2_500, 4_000, 6_000, 10_000, 15_000,
    25_000, 40_000, 60_000, 120_000, 300_000, 600_000,
];

/// Buckets per histogram: one per bound plus the overflow bucket.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// Samples per bucket and the largest sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Samples per bucket, in `BOUNDS_MS` order, the overflow bucket last.
    pub buckets: [u64; BUCKETS],
    /// The largest sample; 0 when there is none.
    pub max: u64,
}

/// Nearest-rank percentiles read from a histogram; `None` when there is no sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketPercentiles {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
}

impl Histogram {
    /// A histogram of one sample.
    pub fn of(sample: u64) -> Self {
        let mut h = Self::default();
        h.record(sample);
        h
    }

    /// Count one sample.
    pub fn record(&mut self, sample: u64) {
        let i = BOUNDS_MS.partition_point(|b| *b < sample);
        if let Some(n) = self.buckets.get_mut(i) {
            *n = super::saturating(*n, 1);
        }
        self.max = self.max.max(sample);
    }

    /// Add `other`'s samples.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a = super::saturating(*a, b);
        }
        self.max = self.max.max(other.max);
    }

    /// Samples counted.
    pub fn count(&self) -> u64 {
        self.buckets
            .iter()
            .fold(0, |total, n| super::saturating(total, *n))
    }

    /// p50, p95 and p99: for each, the upper bound of the bucket holding the
    /// nearest-rank sample (the smallest sample with at least p% of samples at or below
    /// it), capped at the largest sample; in the overflow bucket, the largest sample.
    /// So the true nearest-rank value `v` always satisfies `bound_below < v <= answer`.
    pub fn percentiles(&self) -> BucketPercentiles {
        BucketPercentiles {
            p50: self.percentile(50),
            p95: self.percentile(95),
            p99: self.percentile(99),
        }
    }

    fn percentile(&self, p: u64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = u64::try_from((u128::from(p) * u128::from(n)).div_ceil(100))
            .unwrap_or(u64::MAX)
            .max(1);
        let mut seen: u64 = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            seen = super::saturating(seen, *count);
            if seen >= rank {
                let bound = BOUNDS_MS.get(i).copied().unwrap_or(self.max);
                return Some(bound.min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_fall_into_the_bucket_whose_bound_holds_them() {
        let h = Histogram::of(5);
        assert_eq!(h.buckets[0], 1, "a bound is inclusive");
        let h = Histogram::of(6);
        assert_eq!(h.buckets[1], 1);
        let h = Histogram::of(600_000);
        assert_eq!(h.buckets[BUCKETS - 2], 1);
        let h = Histogram::of(600_001);
        assert_eq!((h.buckets[BUCKETS - 1], h.max), (1, 600_001));
    }

    #[test]
    fn percentiles_are_the_bound_of_the_nearest_rank_bucket_capped_at_the_max() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        // Nearest ranks 50, 95, 99 are the samples 50, 95, 99: buckets (25, 50],
        // (75, 100], (75, 100]; the last two are capped at the largest sample, 100.
        let p = h.percentiles();
        assert_eq!((p.p50, p.p95, p.p99), (Some(50), Some(100), Some(100)));
        let p = Histogram::of(7).percentiles();
        assert_eq!(p.p99, Some(7), "one sample: never above it");
        assert_eq!(
            Histogram::default().percentiles(),
            BucketPercentiles::default()
        );
        let mut slow = Histogram::of(700_000);
        slow.record(900_000);
        assert_eq!(slow.percentiles().p50, Some(900_000), "overflow: the max");
    }
}

//! Latency histogram: log-bucketed counts (8 buckets per power of two,
//! so a percentile is within 12.5 % of the true value), one per thread,
//! merged at the end. Recording is an index computation and an increment.

use std::time::Duration;

/// Sub-buckets per power of two, as a bit count.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Enough buckets for 2^42 ns (over an hour).
const BUCKETS: usize = (42 - SUB_BITS as usize + 1) * SUB + SUB;

/// Counts of nanosecond values by bucket, plus the exact maximum.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max_ns: u64,
}

impl Histogram {
    /// Empty.
    pub(crate) fn new() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max_ns: 0,
        }
    }

    /// Counts one value.
    #[inline]
    pub(crate) fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = index(ns).min(BUCKETS - 1);
        self.counts[i] += 1;
        self.total += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// Adds `other`'s counts.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// The `q` quantile (0 < q ≤ 1): the upper edge of the bucket holding
    /// it, never above the maximum. Zero when empty.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let upper = lower_edge(i + 1).saturating_sub(1);
                return Duration::from_nanos(upper.min(self.max_ns));
            }
        }
        Duration::from_nanos(self.max_ns)
    }

    /// The largest value recorded.
    pub(crate) fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }
}

fn index(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros(); // >= SUB_BITS
    let mantissa = (ns >> (exp - SUB_BITS)) as usize & (SUB - 1);
    (exp - SUB_BITS + 1) as usize * SUB + mantissa
}

fn lower_edge(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let exp = (i / SUB) as u32 + SUB_BITS - 1;
    let mantissa = (i % SUB) as u64;
    (SUB as u64 + mantissa) << (exp - SUB_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        for ns in [0u64, 1, 7, 8, 15, 16, 17, 1000, 123_456, 9_999_999_999] {
            let i = index(ns);
            assert!(lower_edge(i) <= ns && ns < lower_edge(i + 1), "{ns}");
            assert!((lower_edge(i + 1) - lower_edge(i)) as f64 <= (ns.max(8) as f64) / 8.0 + 1.0);
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).as_micros();
        assert!((500..=570).contains(&p50), "{p50}");
        assert_eq!(h.quantile(1.0), Duration::from_micros(1000));
        assert_eq!(h.max(), Duration::from_micros(1000));
        let mut other = Histogram::new();
        other.record(Duration::from_secs(2));
        h.merge(&other);
        assert_eq!(h.max(), Duration::from_secs(2));
    }
}

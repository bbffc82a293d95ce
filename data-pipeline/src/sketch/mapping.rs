//! The logarithmic index mapping: value `v > 0` goes to bin `floor(log_gamma(v) + index_offset)`.

use crate::{Error, Result};

/// Maps positive values to integer bin indices with `index = floor(ln(v) / ln(gamma) + index_offset)`
/// and back, with a relative error of at most `(gamma - 1) / (gamma + 1)` on the way back.
///
/// The index offset only shifts the indices; it travels inside the encoded sketch so any value
/// works, but matching the backend's own (see [`super::DSM_INDEX_OFFSET`] and
/// [`super::TRACE_STATS_INDEX_OFFSET`]) spares it a conversion that would lose precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogarithmicMapping {
    gamma: f64,
    index_offset: f64,
    /// `1 / ln(gamma)`, precomputed.
    multiplier: f64,
    /// Values at or below this go to the zero bin (and their opposites to the zero bin too).
    min_indexable: f64,
    /// Values above this cannot be indexed (the index would leave `i32`).
    max_indexable: f64,
}

impl LogarithmicMapping {
    /// A mapping with base `gamma` (> 1) and `index_offset` (finite).
    pub fn new(gamma: f64, index_offset: f64) -> Result<Self> {
        if !(gamma.is_finite() && gamma > 1.0) {
            return Err(Error::invalid_argument(format!(
                "sketch gamma must be finite and > 1, got {gamma}"
            )));
        }
        if !index_offset.is_finite() {
            return Err(Error::invalid_argument(format!(
                "sketch index offset must be finite, got {index_offset}"
            )));
        }
        let multiplier = 1.0 / gamma.ln();
        // Keep every index inside i32 (one bin of margin each side) and every bin value finite.
        let min_indexable = f64::max(
            ((f64::from(i32::MIN) - index_offset) / multiplier + 1.0).exp(),
            f64::MIN_POSITIVE * gamma,
        );
        let max_indexable = f64::min(
            ((f64::from(i32::MAX) - index_offset) / multiplier - 1.0).exp(),
            // exp(709.78) is the largest finite exp(); leave one bin of headroom for value().
            f64::MAX / gamma,
        );
        Ok(LogarithmicMapping {
            gamma,
            index_offset,
            multiplier,
            min_indexable,
            max_indexable,
        })
    }

    /// A mapping that guarantees `relative_accuracy` (in (0, 1)): `gamma = (1 + a) / (1 - a)`.
    pub fn with_relative_accuracy(relative_accuracy: f64, index_offset: f64) -> Result<Self> {
        if !(relative_accuracy > 0.0 && relative_accuracy < 1.0) {
            return Err(Error::invalid_argument(format!(
                "sketch relative accuracy must be in (0, 1), got {relative_accuracy}"
            )));
        }
        Self::new(
            (1.0 + relative_accuracy) / (1.0 - relative_accuracy),
            index_offset,
        )
    }

    /// The base of the logarithm.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// The offset added to every index.
    pub fn index_offset(&self) -> f64 {
        self.index_offset
    }

    /// The relative accuracy the mapping guarantees: `1 - 2 / (1 + gamma)`.
    pub fn relative_accuracy(&self) -> f64 {
        1.0 - 2.0 / (1.0 + self.gamma)
    }

    /// The smallest positive value that gets its own bin; smaller magnitudes count as zero.
    pub fn min_indexable_value(&self) -> f64 {
        self.min_indexable
    }

    /// The largest value that can be indexed.
    pub fn max_indexable_value(&self) -> f64 {
        self.max_indexable
    }

    /// The bin index of a positive value in `[min_indexable_value, max_indexable_value]`.
    /// Values outside are clamped to the first/last indexable bin.
    #[inline]
    pub fn index(&self, value: f64) -> i32 {
        let v = value.clamp(self.min_indexable, self.max_indexable);
        // `as` saturates; the clamp above keeps the result inside i32 anyway.
        (v.ln() * self.multiplier + self.index_offset).floor() as i32
    }

    /// The smallest value of bin `index`.
    #[inline]
    pub fn lower_bound(&self, index: i32) -> f64 {
        ((f64::from(index) - self.index_offset) / self.multiplier).exp()
    }

    /// The value that represents bin `index` (within the relative accuracy of every value in it).
    #[inline]
    pub fn value(&self, index: i32) -> f64 {
        self.lower_bound(index) * (1.0 + self.relative_accuracy())
    }

    /// Whether two mappings index values identically (equal up to 1e-12, as encoded mappings
    /// may have gone through a text or float round trip).
    pub fn same_as(&self, other: &LogarithmicMapping) -> bool {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * f64::max(1.0, a.abs().max(b.abs()));
        close(self.gamma, other.gamma) && close(self.index_offset, other.index_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_parameters() {
        assert!(LogarithmicMapping::new(1.0, 0.0).is_err());
        assert!(LogarithmicMapping::new(f64::NAN, 0.0).is_err());
        assert!(LogarithmicMapping::new(1.01, f64::INFINITY).is_err());
        assert!(LogarithmicMapping::with_relative_accuracy(0.0, 0.0).is_err());
        assert!(LogarithmicMapping::with_relative_accuracy(1.0, 0.0).is_err());
    }

    #[test]
    fn relative_accuracy_of_dsm_gamma() {
        let m = LogarithmicMapping::new(1.015625, 1.8761281912861705).unwrap();
        // gamma = 130/128 means an accuracy of 1/129.
        assert!((m.relative_accuracy() - 1.0 / 129.0).abs() < 1e-15);
        let m2 = LogarithmicMapping::with_relative_accuracy(1.0 / 129.0, 0.0).unwrap();
        assert!((m2.gamma() - 1.015625).abs() < 1e-15);
    }

    #[test]
    fn every_value_comes_back_within_accuracy() {
        let m = LogarithmicMapping::new(1.015625, 1.8761281912861705).unwrap();
        let ra = m.relative_accuracy();
        let mut v = 1e-9;
        while v < 1e12 {
            let i = m.index(v);
            assert!(m.lower_bound(i) <= v * (1.0 + 1e-12), "{v}");
            assert!(m.lower_bound(i + 1) > v * (1.0 - 1e-12), "{v}");
            let back = m.value(i);
            assert!((back - v).abs() <= ra * v * (1.0 + 1e-9), "{v} -> {back}");
            v *= 1.37;
        }
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let m = LogarithmicMapping::new(1.015625, 0.0).unwrap();
        let hi = m.index(f64::MAX);
        let lo = m.index(f64::MIN_POSITIVE);
        assert!(hi > lo);
        assert!(m.value(hi).is_finite());
        assert!(m.value(lo) > 0.0);
    }
}

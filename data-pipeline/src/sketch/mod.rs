//! DDSketch: a quantile sketch with a relative-accuracy guarantee, in the flavour Datadog's
//! agent and backend read (logarithmic mapping, collapsing-lowest dense stores, protobuf).
//!
//! A value `v > 0` is counted in bin `floor(log_gamma(v) + index_offset)` of the positive store,
//! `-v` in the same bin of the negative store, and values too close to zero in a zero count.
//! Any quantile comes back within `(gamma - 1) / (gamma + 1)` of the true value, except when more
//! than `max_bins` bins were needed: then the lowest bins are folded together and the lowest
//! quantiles lose that guarantee.
//!
//! Two configurations are used in this crate:
//!
//! | user | constructor | gamma | index offset | max bins |
//! |---|---|---|---|---|
//! | Data Streams Monitoring (latencies in seconds, payload sizes in bytes) | [`DDSketch::data_streams`] | [`DSM_GAMMA`] = 1.015625 | [`DSM_INDEX_OFFSET`] (the backend's) | [`DEFAULT_MAX_BINS`] = 2048 |
//! | client-side trace stats (durations in ns) | [`DDSketch::trace_stats`] | from [`TRACE_STATS_RELATIVE_ACCURACY`] = 1/129 (~0.775%), i.e. also 1.015625 | [`TRACE_STATS_INDEX_OFFSET`] = 1338.5 (bins start at 1e-9) | 2048 |
//!
//! Any other is built with [`DDSketch::new`] from a [`LogarithmicMapping`].

mod mapping;
pub mod proto;
mod store;

pub use mapping::LogarithmicMapping;
pub use store::CollapsingLowestDenseStore;

use crate::{Error, ErrorKind, Result};
use prost::Message;

/// The logarithm base Data Streams Monitoring uses (relative accuracy 1/129).
pub const DSM_GAMMA: f64 = 1.015625;
/// The index offset of the Datadog backend's own sketches, used for DSM so the backend has no
/// conversion to do.
pub const DSM_INDEX_OFFSET: f64 = 1.8761281912861705;
/// The bin limit of each store in both configurations.
pub const DEFAULT_MAX_BINS: usize = 2048;
/// The relative accuracy of client-side trace stats sketches: 1/129, so gamma = 130/128.
pub const TRACE_STATS_RELATIVE_ACCURACY: f64 = 1.0 / 129.0;
/// The index offset of client-side trace stats sketches: `1 - floor(log_gamma(1e-9)) + 0.5`,
/// which puts the backend's smallest value (1e-9) at index 1.
pub const TRACE_STATS_INDEX_OFFSET: f64 = 1338.5;

/// Where a value goes in a sketch: computed once (the logarithm is the expensive part) and then
/// added, possibly to several sketches with the same mapping, or outside a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The zero count.
    Zero,
    /// Bin of the positive store.
    Positive(i32),
    /// Bin of the negative store.
    Negative(i32),
}

impl LogarithmicMapping {
    /// Where `value` goes; `None` for NaN. Infinities and values beyond the indexable range go
    /// to the extreme bins.
    #[inline]
    pub fn slot(&self, value: f64) -> Option<Slot> {
        if value > self.min_indexable_value() {
            Some(Slot::Positive(self.index(value)))
        } else if value < -self.min_indexable_value() {
            Some(Slot::Negative(self.index(-value)))
        } else if value.is_nan() {
            None
        } else {
            Some(Slot::Zero)
        }
    }
}

/// A DDSketch: a mapping, a positive and a negative store, and a zero count.
#[derive(Debug, Clone, PartialEq)]
pub struct DDSketch {
    mapping: LogarithmicMapping,
    positive: CollapsingLowestDenseStore,
    negative: CollapsingLowestDenseStore,
    zero_count: f64,
}

impl DDSketch {
    /// An empty sketch with `mapping` and stores of at most `max_bins` bins each.
    pub fn new(mapping: LogarithmicMapping, max_bins: usize) -> Self {
        DDSketch {
            mapping,
            positive: CollapsingLowestDenseStore::new(max_bins),
            negative: CollapsingLowestDenseStore::new(max_bins),
            zero_count: 0.0,
        }
    }

    /// The mapping of Data Streams Monitoring sketches: gamma [`DSM_GAMMA`], offset
    /// [`DSM_INDEX_OFFSET`].
    pub fn data_streams_mapping() -> LogarithmicMapping {
        // Constants that `new` accepts.
        LogarithmicMapping::new(DSM_GAMMA, DSM_INDEX_OFFSET).unwrap_or_else(|_| unreachable!())
    }

    /// The mapping of client-side trace stats sketches: relative accuracy
    /// [`TRACE_STATS_RELATIVE_ACCURACY`], offset [`TRACE_STATS_INDEX_OFFSET`].
    pub fn trace_stats_mapping() -> LogarithmicMapping {
        LogarithmicMapping::with_relative_accuracy(
            TRACE_STATS_RELATIVE_ACCURACY,
            TRACE_STATS_INDEX_OFFSET,
        )
        .unwrap_or_else(|_| unreachable!())
    }

    /// An empty Data Streams Monitoring sketch (see the module table).
    pub fn data_streams() -> Self {
        Self::new(Self::data_streams_mapping(), DEFAULT_MAX_BINS)
    }

    /// An empty client-side trace stats sketch (see the module table).
    pub fn trace_stats() -> Self {
        Self::new(Self::trace_stats_mapping(), DEFAULT_MAX_BINS)
    }

    /// The sketch's mapping.
    pub fn mapping(&self) -> &LogarithmicMapping {
        &self.mapping
    }

    /// The relative accuracy guaranteed on quantiles.
    pub fn relative_accuracy(&self) -> f64 {
        self.mapping.relative_accuracy()
    }

    /// Adds one occurrence of `value`. NaN is refused.
    pub fn add(&mut self, value: f64) -> Result<()> {
        self.add_with_count(value, 1.0)
    }

    /// Adds `count` (finite, >= 0) occurrences of `value`. NaN values are refused.
    pub fn add_with_count(&mut self, value: f64, count: f64) -> Result<()> {
        if !(count >= 0.0 && count.is_finite()) {
            return Err(Error::invalid_argument(format!(
                "sketch count must be finite and >= 0, got {count}"
            )));
        }
        match self.mapping.slot(value) {
            Some(slot) => {
                self.add_slot(slot, count);
                Ok(())
            }
            None => Err(Error::invalid_argument("cannot add NaN to a sketch")),
        }
    }

    /// Adds `count` to a slot computed with this sketch's mapping ([`LogarithmicMapping::slot`]).
    /// Counts that are not finite and > 0 are ignored.
    #[inline]
    pub fn add_slot(&mut self, slot: Slot, count: f64) {
        match slot {
            Slot::Zero => {
                if count > 0.0 && count.is_finite() {
                    self.zero_count += count
                }
            }
            Slot::Positive(i) => self.positive.add(i, count),
            Slot::Negative(i) => self.negative.add(i, count),
        }
    }

    /// Adds everything counted in `other` (which must have the same mapping) to this sketch.
    pub fn merge(&mut self, other: &DDSketch) -> Result<()> {
        if !self.mapping.same_as(&other.mapping) {
            return Err(Error::invalid_argument(
                "cannot merge sketches with different index mappings",
            ));
        }
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        self.zero_count += other.zero_count;
        Ok(())
    }

    /// The number of values added.
    pub fn count(&self) -> f64 {
        self.zero_count + self.positive.total_count() + self.negative.total_count()
    }

    /// The count of values in the zero bin.
    pub fn zero_count(&self) -> f64 {
        self.zero_count
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.count() == 0.0
    }

    /// The approximate sum of the values (each bin counted at its representative value), within
    /// the relative accuracy when all values have the same sign.
    pub fn sum(&self) -> f64 {
        let pos: f64 = self
            .positive
            .bins()
            .map(|(i, c)| self.mapping.value(i) * c)
            .sum();
        let neg: f64 = self
            .negative
            .bins()
            .map(|(i, c)| self.mapping.value(i) * c)
            .sum();
        pos - neg
    }

    /// The approximate smallest value, `None` when empty.
    pub fn min(&self) -> Option<f64> {
        if let Some((_, hi)) = self.negative.index_range() {
            Some(-self.mapping.value(hi))
        } else if self.zero_count > 0.0 {
            Some(0.0)
        } else {
            self.positive
                .index_range()
                .map(|(lo, _)| self.mapping.value(lo))
        }
    }

    /// The approximate largest value, `None` when empty.
    pub fn max(&self) -> Option<f64> {
        if let Some((_, hi)) = self.positive.index_range() {
            Some(self.mapping.value(hi))
        } else if self.zero_count > 0.0 {
            Some(0.0)
        } else {
            self.negative
                .index_range()
                .map(|(lo, _)| -self.mapping.value(lo))
        }
    }

    /// The value at quantile `q` in `[0, 1]`, within the relative accuracy; `None` when empty or
    /// when `q` is out of range.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let count = self.count();
        if count <= 0.0 {
            return None;
        }
        let rank = q * (count - 1.0);
        let neg = self.negative.total_count();
        if rank < neg {
            self.negative
                .key_at_rank(neg - 1.0 - rank)
                .map(|i| -self.mapping.value(i))
        } else if rank < neg + self.zero_count {
            Some(0.0)
        } else {
            self.positive
                .key_at_rank(rank - neg - self.zero_count)
                .map(|i| self.mapping.value(i))
        }
    }

    /// The positive store.
    pub fn positive_store(&self) -> &CollapsingLowestDenseStore {
        &self.positive
    }

    /// The negative store (bins indexed by the absolute value).
    pub fn negative_store(&self) -> &CollapsingLowestDenseStore {
        &self.negative
    }

    /// Empties the sketch.
    pub fn clear(&mut self) {
        self.positive.clear();
        self.negative.clear();
        self.zero_count = 0.0;
    }

    /// The protobuf message (contiguous bin counts, no sparse bins).
    pub fn to_proto(&self) -> proto::DdSketch {
        fn store(s: &CollapsingLowestDenseStore) -> proto::Store {
            proto::Store {
                bin_counts: Default::default(),
                contiguous_bin_counts: s.contiguous_counts().collect(),
                contiguous_bin_index_offset: if s.is_empty() { 0 } else { s.offset() },
            }
        }
        proto::DdSketch {
            mapping: Some(proto::IndexMapping {
                gamma: self.mapping.gamma(),
                index_offset: self.mapping.index_offset(),
                interpolation: proto::Interpolation::None as i32,
            }),
            positive_values: Some(store(&self.positive)),
            negative_values: Some(store(&self.negative)),
            zero_count: self.zero_count,
        }
    }

    /// The protobuf bytes, as carried in DSM `StatsPoint`s and trace stats summaries.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    /// Rebuilds a sketch from its protobuf message, with stores of at most `max_bins` bins.
    /// Counts that are not finite and > 0 are skipped; a mapping other than the exact
    /// logarithm is refused.
    pub fn from_proto(pb: &proto::DdSketch, max_bins: usize) -> Result<Self> {
        let m = pb
            .mapping
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Decode, "sketch has no index mapping"))?;
        if m.interpolation != proto::Interpolation::None as i32 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("sketch interpolation {} is not supported", m.interpolation),
            ));
        }
        let mapping = LogarithmicMapping::new(m.gamma, m.index_offset)?;
        let mut sketch = DDSketch::new(mapping, max_bins);
        fn fill(dst: &mut CollapsingLowestDenseStore, src: &proto::Store) {
            // Highest first (see CollapsingLowestDenseStore::merge).
            let off = i64::from(src.contiguous_bin_index_offset);
            for (i, &c) in src.contiguous_bin_counts.iter().enumerate().rev() {
                let idx = off + i as i64;
                if let Ok(idx) = i32::try_from(idx) {
                    dst.add(idx, c);
                }
            }
            let mut sparse: Vec<(i32, f64)> =
                src.bin_counts.iter().map(|(&i, &c)| (i, c)).collect();
            sparse.sort_by_key(|b| std::cmp::Reverse(b.0));
            for (i, c) in sparse {
                dst.add(i, c);
            }
        }
        if let Some(p) = &pb.positive_values {
            fill(&mut sketch.positive, p);
        }
        if let Some(n) = &pb.negative_values {
            fill(&mut sketch.negative, n);
        }
        if pb.zero_count > 0.0 && pb.zero_count.is_finite() {
            sketch.zero_count = pb.zero_count;
        }
        Ok(sketch)
    }

    /// Decodes protobuf bytes (see [`DDSketch::from_proto`]), with stores of at most
    /// [`DEFAULT_MAX_BINS`] bins.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let pb = proto::DdSketch::decode(bytes).map_err(|e| {
            Error::new(ErrorKind::Decode, format!("invalid DDSketch protobuf: {e}"))
        })?;
        Self::from_proto(&pb, DEFAULT_MAX_BINS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_rel(actual: f64, expected: f64, ra: f64) {
        let tol = ra * expected.abs() + 1e-12;
        assert!(
            (actual - expected).abs() <= tol,
            "{actual} not within {ra} of {expected}"
        );
    }

    #[test]
    fn configurations() {
        let dsm = DDSketch::data_streams();
        assert_eq!(dsm.mapping().gamma(), 1.015625);
        assert_eq!(dsm.mapping().index_offset(), DSM_INDEX_OFFSET);
        let stats = DDSketch::trace_stats();
        assert!((stats.mapping().gamma() - 1.015625).abs() < 1e-15);
        assert!((stats.relative_accuracy() - 0.007751937984496124).abs() < 1e-15);
        // The offset puts 1e-9 (the backend's smallest value) in bin 1.
        let g = stats.mapping().gamma();
        let derived = 1.0 - (1e-9f64.ln() / g.ln()).floor() + 0.5;
        assert_eq!(derived, TRACE_STATS_INDEX_OFFSET);
        assert_eq!(stats.mapping().index(1e-9), 1);
        assert_eq!(dsm.positive_store().max_bins(), 2048);
    }

    #[test]
    fn quantiles_within_accuracy() {
        for mut s in [DDSketch::data_streams(), DDSketch::trace_stats()] {
            let ra = s.relative_accuracy();
            let values: Vec<f64> = (1..=1000).map(|i| i as f64 * 0.37).collect();
            for &v in &values {
                s.add(v).unwrap();
            }
            assert_eq!(s.count(), 1000.0);
            for q in [0.0, 0.1, 0.5, 0.75, 0.9, 0.99, 1.0] {
                let rank = (q * 999.0) as usize;
                assert_rel(s.quantile(q).unwrap(), values[rank], ra);
            }
            assert_rel(s.min().unwrap(), 0.37, ra);
            assert_rel(s.max().unwrap(), 370.0, ra);
            let exact: f64 = values.iter().sum();
            assert_rel(s.sum(), exact, ra);
            assert_eq!(s.quantile(1.5), None);
        }
    }

    #[test]
    fn zero_and_negative_values() {
        let mut s = DDSketch::data_streams();
        for v in [-3.0, -1.0, 0.0, 0.0, 2.0] {
            s.add(v).unwrap();
        }
        assert_eq!(s.zero_count(), 2.0);
        assert_eq!(s.count(), 5.0);
        let ra = s.relative_accuracy();
        assert_rel(s.quantile(0.0).unwrap(), -3.0, ra);
        assert_rel(s.quantile(0.25).unwrap(), -1.0, ra);
        assert_eq!(s.quantile(0.5).unwrap(), 0.0);
        assert_rel(s.quantile(1.0).unwrap(), 2.0, ra);
        assert_rel(s.min().unwrap(), -3.0, ra);
        assert_rel(s.sum(), -2.0, 0.05);
        assert!(s.add(f64::NAN).is_err());
        assert!(s.add_with_count(1.0, -1.0).is_err());
        assert!(s.add_with_count(1.0, f64::INFINITY).is_err());
        assert_eq!(s.count(), 5.0);
        // Infinity lands in the last bin instead of failing.
        s.add(f64::INFINITY).unwrap();
        assert!(s.max().unwrap().is_finite());
    }

    #[test]
    fn empty_sketch() {
        let s = DDSketch::data_streams();
        assert!(s.is_empty());
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(s.min(), None);
        assert_eq!(s.max(), None);
        assert_eq!(s.sum(), 0.0);
    }

    #[test]
    fn merge_equals_adding_everything() {
        let mut a = DDSketch::data_streams();
        let mut b = DDSketch::data_streams();
        let mut all = DDSketch::data_streams();
        for i in 0..500 {
            let v = (i as f64).powf(1.3) - 50.0;
            if i % 2 == 0 { &mut a } else { &mut b }.add(v).unwrap();
            all.add(v).unwrap();
        }
        a.merge(&b).unwrap();
        assert_eq!(a.count(), all.count());
        for q in [0.0, 0.3, 0.5, 0.99, 1.0] {
            assert_eq!(a.quantile(q), all.quantile(q));
        }
        assert!(
            a.merge(&DDSketch::trace_stats()).is_err(),
            "same gamma, offsets differ"
        );
        let other = DDSketch::new(LogarithmicMapping::new(1.02, 0.0).unwrap(), 64);
        assert!(a.merge(&other).is_err());
    }

    #[test]
    fn collapsing_keeps_high_quantiles_accurate() {
        let mut s = DDSketch::new(DDSketch::data_streams_mapping(), 64);
        for i in 0..10_000 {
            s.add(1.0001f64.powi(i) * 1e-6 * (1.0 + i as f64)).unwrap();
        }
        assert_eq!(s.count(), 10_000.0);
        assert!(s.positive_store().is_collapsed());
        assert!(s.positive_store().bins().count() <= 64);
        let top = 1.0001f64.powi(9999) * 1e-6 * 10_000.0;
        assert_rel(s.quantile(1.0).unwrap(), top, s.relative_accuracy());
    }

    #[test]
    fn protobuf_round_trip() {
        let mut s = DDSketch::data_streams();
        for v in [0.0, 0.001, 0.5, 1.0, 2.5, 1e6, -7.0] {
            s.add(v).unwrap();
        }
        let bytes = s.encode_to_vec();
        let back = DDSketch::decode(&bytes).unwrap();
        assert_eq!(back, s);
        let pb = proto::DdSketch::decode(bytes.as_slice()).unwrap();
        let m = pb.mapping.unwrap();
        assert_eq!(m.gamma, DSM_GAMMA);
        assert_eq!(m.index_offset, DSM_INDEX_OFFSET);
        assert_eq!(pb.zero_count, 1.0);
        let pos = pb.positive_values.unwrap();
        assert_eq!(pos.contiguous_bin_counts.iter().sum::<f64>(), 5.0);
        assert_eq!(
            pos.contiguous_bin_index_offset,
            s.mapping().index(0.001),
            "first contiguous bin is the lowest value's"
        );
    }

    #[test]
    fn known_encoding_bytes() {
        // One value 1.0 in a DSM sketch: index floor(0 + 1.876...) = 1.
        let mut s = DDSketch::data_streams();
        s.add(1.0).unwrap();
        let bytes = s.encode_to_vec();
        let mut expected = vec![0x0a, 0x12, 0x09];
        expected.extend_from_slice(&DSM_GAMMA.to_le_bytes());
        expected.push(0x11);
        expected.extend_from_slice(&DSM_INDEX_OFFSET.to_le_bytes());
        // positiveValues: packed doubles [1.0] (tag 2, len 8), offset sint32 1 -> zigzag 2.
        expected.extend_from_slice(&[0x12, 0x0c, 0x12, 0x08]);
        expected.extend_from_slice(&1.0f64.to_le_bytes());
        expected.extend_from_slice(&[0x18, 0x02]);
        // negativeValues: present and empty.
        expected.extend_from_slice(&[0x1a, 0x00]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn decodes_sparse_bins_and_refuses_garbage() {
        let pb = proto::DdSketch {
            mapping: Some(proto::IndexMapping {
                gamma: DSM_GAMMA,
                index_offset: 0.0,
                interpolation: 0,
            }),
            positive_values: Some(proto::Store {
                bin_counts: [(5, 2.0), (-3, 1.0), (7, f64::NAN)].into_iter().collect(),
                contiguous_bin_counts: vec![1.0, 0.0, 4.0],
                contiguous_bin_index_offset: i32::MAX - 1,
            }),
            negative_values: None,
            zero_count: -4.0,
        };
        let s = DDSketch::from_proto(&pb, 2048).unwrap();
        assert_eq!(s.count(), 3.0 + 1.0, "the bin past i32::MAX is dropped");
        assert_eq!(s.zero_count(), 0.0);
        assert!(DDSketch::decode(&[0xff, 0xff, 0xff]).is_err());
        assert!(DDSketch::decode(&[]).is_err(), "no mapping");
        let mut cubic = pb.clone();
        cubic.mapping.as_mut().unwrap().interpolation = 3;
        assert_eq!(
            DDSketch::from_proto(&cubic, 16).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }
}

//! A dense bin store that keeps at most `max_bins` contiguous bins and, past that, folds the
//! lowest bins into one (so the accuracy guarantee is lost only on the lowest quantiles).

use std::collections::VecDeque;

/// Contiguous bin counts for indices `offset ..= offset + bins.len() - 1`, at most `max_bins` of
/// them. The first and last bins are never zero (the store is trimmed to what it holds).
#[derive(Debug, Clone, PartialEq)]
pub struct CollapsingLowestDenseStore {
    bins: VecDeque<f64>,
    offset: i32,
    max_bins: usize,
    count: f64,
    collapsed: bool,
}

impl CollapsingLowestDenseStore {
    /// An empty store of at most `max_bins` bins (at least 1).
    pub fn new(max_bins: usize) -> Self {
        CollapsingLowestDenseStore {
            bins: VecDeque::new(),
            offset: 0,
            max_bins: max_bins.max(1),
            count: 0.0,
            collapsed: false,
        }
    }

    /// The maximum number of bins.
    pub fn max_bins(&self) -> usize {
        self.max_bins
    }

    /// The sum of all counts.
    pub fn total_count(&self) -> f64 {
        self.count
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.bins.is_empty()
    }

    /// Whether low bins were folded together at some point (low quantiles lost their accuracy).
    pub fn is_collapsed(&self) -> bool {
        self.collapsed
    }

    /// The index of the first bin (meaningful only when not empty).
    pub fn offset(&self) -> i32 {
        self.offset
    }

    /// The lowest and highest non-empty indices.
    pub fn index_range(&self) -> Option<(i32, i32)> {
        if self.bins.is_empty() {
            None
        } else {
            Some((self.offset, self.last_index()))
        }
    }

    /// Iterates over `(index, count)` of the stored bins, lowest first (zero bins included).
    pub fn bins(&self) -> impl Iterator<Item = (i32, f64)> + '_ {
        self.bins
            .iter()
            .enumerate()
            .map(move |(i, &c)| (self.offset.wrapping_add(i as i32), c))
    }

    /// The contiguous counts, lowest index first.
    pub fn contiguous_counts(&self) -> impl Iterator<Item = f64> + '_ {
        self.bins.iter().copied()
    }

    fn last_index(&self) -> i32 {
        // len <= max_bins and the range was built from i32 indices, so this fits.
        (i64::from(self.offset) + self.bins.len() as i64 - 1) as i32
    }

    /// Adds `count` (must be > 0 and finite; anything else is ignored) to bin `index`.
    #[inline]
    pub fn add(&mut self, index: i32, count: f64) {
        if !(count > 0.0 && count.is_finite()) {
            return;
        }
        self.count += count;
        if self.bins.is_empty() {
            self.offset = index;
            self.bins.push_back(count);
            return;
        }
        let pos = i64::from(index) - i64::from(self.offset);
        let len = self.bins.len() as i64;
        if (0..len).contains(&pos) {
            self.bins[pos as usize] += count;
        } else if pos < 0 {
            self.extend_low(index, count);
        } else {
            self.extend_high(index, count);
        }
    }

    /// `index` is below the stored range.
    fn extend_low(&mut self, index: i32, count: f64) {
        let room = (self.max_bins - self.bins.len()) as i64;
        let need = i64::from(self.offset) - i64::from(index);
        if need <= room {
            for _ in 1..need {
                self.bins.push_front(0.0);
            }
            self.bins.push_front(count);
            self.offset = index;
        } else {
            // Grow down as far as allowed; the value lands in the (new) lowest bin.
            for _ in 0..room {
                self.bins.push_front(0.0);
            }
            self.offset = (i64::from(self.offset) - room) as i32;
            self.bins[0] += count;
            self.collapsed = true;
        }
    }

    /// `index` is above the stored range.
    fn extend_high(&mut self, index: i32, count: f64) {
        let max = self.max_bins as i64;
        let new_len = i64::from(index) - i64::from(self.offset) + 1;
        if new_len > max {
            // Fold the lowest bins so that `index` becomes the last of `max_bins` bins.
            let drop = new_len - max;
            self.collapsed = true;
            if drop >= self.bins.len() as i64 {
                // Everything stored folds into the new lowest bin.
                let folded: f64 = self.bins.iter().sum();
                self.bins.clear();
                self.offset = (i64::from(index) - max + 1) as i32;
                self.bins.push_back(folded);
            } else {
                let mut folded = 0.0;
                for _ in 0..drop {
                    folded += self.bins.pop_front().unwrap_or(0.0);
                }
                if let Some(first) = self.bins.front_mut() {
                    *first += folded;
                }
                self.offset = (i64::from(self.offset) + drop) as i32;
            }
        }
        // `index` is now within max_bins of offset: pad and add.
        let target = (i64::from(index) - i64::from(self.offset)) as usize;
        if target < self.bins.len() {
            // max_bins == 1 and everything folded into the only bin.
            self.bins[target] += count;
        } else {
            self.bins.resize(target, 0.0);
            self.bins.push_back(count);
        }
    }

    /// The index of the bin that holds the value of rank `rank` (0-based; ranks past the end
    /// give the last bin). `None` when empty.
    pub fn key_at_rank(&self, rank: f64) -> Option<i32> {
        let rank = rank.max(0.0);
        let mut n = 0.0;
        for (i, c) in self.bins() {
            n += c;
            if n > rank {
                return Some(i);
            }
        }
        self.index_range().map(|(_, hi)| hi)
    }

    /// Adds every bin of `other` into this store.
    pub fn merge(&mut self, other: &CollapsingLowestDenseStore) {
        // Highest bins first: the first add sets the top of the range, so lower ones collapse
        // into the lowest bin instead of pushing higher ones out repeatedly.
        for (i, c) in other.bins().collect::<Vec<_>>().into_iter().rev() {
            self.add(i, c);
        }
    }

    /// Empties the store, keeping its allocation.
    pub fn clear(&mut self) {
        self.bins.clear();
        self.offset = 0;
        self.count = 0.0;
        self.collapsed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(s: &CollapsingLowestDenseStore) -> Vec<(i32, f64)> {
        s.bins().collect()
    }

    #[test]
    fn adds_in_range_below_and_above() {
        let mut s = CollapsingLowestDenseStore::new(10);
        s.add(5, 1.0);
        s.add(7, 2.0);
        s.add(3, 1.0);
        s.add(5, 1.0);
        assert_eq!(
            contents(&s),
            vec![(3, 1.0), (4, 0.0), (5, 2.0), (6, 0.0), (7, 2.0)]
        );
        assert_eq!(s.total_count(), 5.0);
        assert!(!s.is_collapsed());
    }

    #[test]
    fn ignores_bad_counts() {
        let mut s = CollapsingLowestDenseStore::new(10);
        s.add(1, 0.0);
        s.add(1, -1.0);
        s.add(1, f64::NAN);
        s.add(1, f64::INFINITY);
        assert!(s.is_empty());
        assert_eq!(s.total_count(), 0.0);
    }

    #[test]
    fn collapses_lowest_when_growing_up() {
        let mut s = CollapsingLowestDenseStore::new(3);
        s.add(0, 1.0);
        s.add(1, 1.0);
        s.add(2, 1.0);
        s.add(3, 1.0); // bins 0 and 1 fold into 1
        assert_eq!(contents(&s), vec![(1, 2.0), (2, 1.0), (3, 1.0)]);
        assert!(s.is_collapsed());
        s.add(100, 5.0); // everything folds into 98
        assert_eq!(contents(&s), vec![(98, 4.0), (99, 0.0), (100, 5.0)]);
        assert_eq!(s.total_count(), 9.0);
    }

    #[test]
    fn low_values_fall_into_lowest_bin_when_full() {
        let mut s = CollapsingLowestDenseStore::new(3);
        s.add(10, 1.0);
        s.add(12, 1.0);
        s.add(-1_000_000, 1.0);
        assert_eq!(contents(&s), vec![(10, 2.0), (11, 0.0), (12, 1.0)]);
        s.add(i32::MIN, 1.0);
        assert_eq!(s.bins().next(), Some((10, 3.0)));
        let mut t = CollapsingLowestDenseStore::new(4);
        t.add(10, 1.0);
        t.add(5, 1.0); // room for 3 more below: 7..=10
        assert_eq!(contents(&t), vec![(7, 1.0), (8, 0.0), (9, 0.0), (10, 1.0)]);
    }

    #[test]
    fn extreme_indices_do_not_overflow() {
        let mut s = CollapsingLowestDenseStore::new(2048);
        s.add(i32::MIN, 1.0);
        s.add(i32::MAX, 1.0);
        assert_eq!(s.bins().count(), 2048);
        assert_eq!(s.index_range(), Some((i32::MAX - 2047, i32::MAX)));
        assert_eq!(s.total_count(), 2.0);
        let mut one = CollapsingLowestDenseStore::new(1);
        one.add(3, 1.0);
        one.add(9, 1.0);
        one.add(-4, 1.0);
        assert_eq!(contents(&one), vec![(9, 3.0)]);
    }

    #[test]
    fn rank_lookup() {
        let mut s = CollapsingLowestDenseStore::new(10);
        s.add(1, 2.0);
        s.add(4, 1.0);
        assert_eq!(s.key_at_rank(0.0), Some(1));
        assert_eq!(s.key_at_rank(1.5), Some(1));
        assert_eq!(s.key_at_rank(2.0), Some(4));
        assert_eq!(s.key_at_rank(99.0), Some(4));
        assert_eq!(CollapsingLowestDenseStore::new(3).key_at_rank(0.0), None);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = CollapsingLowestDenseStore::new(4);
        let mut b = CollapsingLowestDenseStore::new(4);
        a.add(1, 1.0);
        b.add(2, 1.0);
        b.add(6, 1.0);
        a.merge(&b);
        assert_eq!(contents(&a), vec![(3, 2.0), (4, 0.0), (5, 0.0), (6, 1.0)]);
        assert_eq!(a.total_count(), 3.0);
    }
}

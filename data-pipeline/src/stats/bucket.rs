//! One time bucket: per key, hits, errors, total duration, top-level hits and two DDSketches of
//! durations (ok spans, error spans), as the agent's `RawBucket` / `groupedStats`.
//!
//! # Lookup (hot path)
//! Keys are looked up by their *raw* fields first (as borrowed from the span): a hit costs one
//! hash and one comparison, with no normalization or obfuscation. Only a raw key seen for the
//! first time in the bucket is normalized/obfuscated ([`super::key::KeyNormalizer`]) and looked
//! up among the normalized keys, so spans whose raw fields differ but normalize alike (two SQL
//! queries differing by a literal) share one group. A raw key that normalization left unchanged
//! points straight at its group and costs no extra copy.
//!
//! # Cardinality
//! At most `max_keys` groups per bucket; a span whose normalized key is new past that limit is
//! counted in one overflow group whose fields read `tracer_blocked_value` (libdatadog's rule; the
//! agent has no such cap). Raw-key shortcuts are bounded too (`4 * max_keys`).
//!
//! Sketch values are the durations in ns as `f64` (the agent truncates them to 10 bits of
//! mantissa first, `nsTimestampToFloat`, which adds up to 0.1% of error on top of the sketch's
//! 0.775%; libdatadog does not, nor do we).

use super::key::{hash_flat, KeyFields, OwnedKey};
use super::payload::{ClientGroupedStats, ClientStatsBucket};
use crate::sketch::{DDSketch, LogarithmicMapping, Slot};
use hashbrown::HashTable;

/// Aggregated numbers of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    /// Spans counted.
    pub hits: u64,
    /// Spans with `error != 0`.
    pub errors: u64,
    /// Sum of durations (ns).
    pub duration: u64,
    /// Top-level spans counted.
    pub top_level_hits: u64,
    /// Durations of the spans without error.
    pub ok_summary: DDSketch,
    /// Durations of the spans with an error.
    pub error_summary: DDSketch,
}

impl GroupStats {
    fn new(mapping: LogarithmicMapping) -> GroupStats {
        GroupStats {
            hits: 0,
            errors: 0,
            duration: 0,
            top_level_hits: 0,
            ok_summary: DDSketch::new(mapping, crate::sketch::DEFAULT_MAX_BINS),
            error_summary: DDSketch::new(mapping, crate::sketch::DEFAULT_MAX_BINS),
        }
    }

    #[inline]
    fn add(&mut self, duration: u64, slot: Option<Slot>, error: bool, top_level: bool) {
        self.hits += 1;
        self.duration = self.duration.saturating_add(duration);
        if top_level {
            self.top_level_hits += 1;
        }
        let sketch = if error {
            self.errors += 1;
            &mut self.error_summary
        } else {
            &mut self.ok_summary
        };
        if let Some(slot) = slot {
            sketch.add_slot(slot, 1.0);
        }
    }

    fn heap_bytes(&self) -> usize {
        let bins = |s: &DDSketch| {
            s.positive_store().contiguous_counts().count()
                + s.negative_store().contiguous_counts().count()
        };
        (bins(&self.ok_summary) + bins(&self.error_summary)) * std::mem::size_of::<f64>()
    }
}

/// One span's contribution, computed once outside the bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub duration: u64,
    pub slot: Option<Slot>,
    pub error: bool,
    pub top_level: bool,
}

#[derive(Debug)]
struct Group {
    key: OwnedKey,
    stats: GroupStats,
}

/// Raw-key table entry: the key's hash and where its fields are stored.
#[derive(Debug, Clone, Copy)]
struct RawRef {
    hash: u64,
    /// Index into `groups` (raw key = normalized key) or, with [`RAW_FLAG`], into `raws`.
    at: u32,
}

const RAW_FLAG: u32 = 1 << 31;

/// One time bucket.
#[derive(Debug)]
pub struct Bucket {
    start: i64,
    mapping: LogarithmicMapping,
    max_keys: usize,
    groups: Vec<Group>,
    /// Raw keys that normalization changed, with their group.
    raws: Vec<(OwnedKey, u32)>,
    by_raw: HashTable<RawRef>,
    /// (hash, group index) of every group but the overflow one.
    by_norm: HashTable<(u64, u32)>,
    overflow: Option<u32>,
    collapsed_spans: u64,
}

impl Bucket {
    /// An empty bucket starting at `start` (ns), holding at most `max_keys` keys.
    pub fn new(start: i64, max_keys: usize) -> Bucket {
        Bucket::with_mapping(start, max_keys, DDSketch::trace_stats_mapping())
    }

    /// As [`Bucket::new`] with the sketches' mapping already built (building one takes two
    /// `exp`: the concentrator keeps one).
    pub(crate) fn with_mapping(start: i64, max_keys: usize, mapping: LogarithmicMapping) -> Bucket {
        Bucket {
            start,
            mapping,
            max_keys: max_keys.max(1),
            groups: Vec::new(),
            raws: Vec::new(),
            by_raw: HashTable::new(),
            by_norm: HashTable::new(),
            overflow: None,
            collapsed_spans: 0,
        }
    }

    /// Bucket start (ns since the epoch).
    pub fn start(&self) -> i64 {
        self.start
    }

    /// Number of groups (the overflow group included).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Spans counted in the overflow group because the key cap was reached.
    pub fn collapsed_spans(&self) -> u64 {
        self.collapsed_spans
    }

    /// The groups: key and numbers.
    pub fn groups(&self) -> impl Iterator<Item = (&OwnedKey, &GroupStats)> {
        self.groups.iter().map(|g| (&g.key, &g.stats))
    }

    /// The slot of a duration in this bucket's sketches.
    #[inline]
    pub(crate) fn slot(&self, duration: u64) -> Option<Slot> {
        self.mapping.slot(duration as f64)
    }

    /// Counts one span under its raw key, whose identity bytes are `raw_flat`
    /// ([`KeyFields::write_flat`]) and hash `raw_hash` ([`hash_flat`]). The first time the raw
    /// key is seen in this bucket, `raw` builds its fields and `normalize` turns them into the
    /// stored key.
    #[inline]
    pub(crate) fn add<'a>(
        &mut self,
        raw: impl FnOnce() -> KeyFields<'a>,
        raw_flat: &[u8],
        raw_hash: u64,
        hasher: &impl std::hash::BuildHasher,
        normalize: impl FnOnce(&KeyFields<'a>) -> KeyFields<'a>,
        sample: Sample,
    ) {
        let (groups, raws) = (&self.groups, &self.raws);
        let found = self.by_raw.find(raw_hash, |r| {
            r.hash == raw_hash
                && if r.at & RAW_FLAG == 0 {
                    groups[r.at as usize].key.matches_flat(raw_flat)
                } else {
                    raws[(r.at & !RAW_FLAG) as usize].0.matches_flat(raw_flat)
                }
        });
        let gi = match found {
            Some(r) if r.at & RAW_FLAG == 0 => r.at as usize,
            Some(r) => self.raws[(r.at & !RAW_FLAG) as usize].1 as usize,
            None => self.insert_raw(raw, raw_flat, raw_hash, hasher, normalize),
        };
        self.groups[gi]
            .stats
            .add(sample.duration, sample.slot, sample.error, sample.top_level);
    }

    #[cold]
    fn insert_raw<'a>(
        &mut self,
        raw: impl FnOnce() -> KeyFields<'a>,
        raw_flat: &[u8],
        raw_hash: u64,
        hasher: &impl std::hash::BuildHasher,
        normalize: impl FnOnce(&KeyFields<'a>) -> KeyFields<'a>,
    ) -> usize {
        let raw = raw();
        debug_assert!({
            let mut check = Vec::new();
            raw.write_flat(&mut check);
            check == raw_flat
        });
        let raw = &raw;
        let norm = normalize(raw);
        let unchanged = norm == *raw;
        let mut norm_buf = Vec::new();
        let (norm_flat, norm_hash) = if unchanged {
            (raw_flat, raw_hash)
        } else {
            norm.write_flat(&mut norm_buf);
            (&norm_buf[..], hash_flat(&norm_buf, hasher))
        };
        let groups = &self.groups;
        let existing = self
            .by_norm
            .find(norm_hash, |(h, i)| {
                *h == norm_hash && groups[*i as usize].key.matches_flat(norm_flat)
            })
            .map(|(_, i)| *i as usize);
        let gi = match existing {
            Some(i) => i,
            None if self.by_norm.len() >= self.max_keys => {
                self.collapsed_spans += 1;
                return self.overflow_group();
            }
            None => {
                let i = self.groups.len();
                self.groups.push(Group {
                    key: OwnedKey::from_flat(norm_flat, &norm),
                    stats: GroupStats::new(self.mapping),
                });
                self.by_norm
                    .insert_unique(norm_hash, (norm_hash, i as u32), |(h, _)| *h);
                i
            }
        };
        // Remember the raw key (bounded: past the cap raw keys are normalized at every span).
        if self.by_raw.len() < self.max_keys.saturating_mul(4) {
            let at = if unchanged && self.groups[gi].key.matches_flat(raw_flat) {
                gi as u32
            } else {
                self.raws
                    .push((OwnedKey::from_flat(raw_flat, raw), gi as u32));
                (self.raws.len() - 1) as u32 | RAW_FLAG
            };
            self.by_raw
                .insert_unique(raw_hash, RawRef { hash: raw_hash, at }, |r| r.hash);
        }
        gi
    }

    fn overflow_group(&mut self) -> usize {
        if let Some(i) = self.overflow {
            return i as usize;
        }
        let i = self.groups.len();
        self.groups.push(Group {
            key: OwnedKey::overflow(),
            stats: GroupStats::new(self.mapping),
        });
        self.overflow = Some(i as u32);
        i
    }

    /// Approximate heap bytes held (tables, keys, sketch bins), for memory reports.
    pub fn heap_bytes(&self) -> usize {
        let tables = self.by_raw.capacity() * std::mem::size_of::<RawRef>()
            + self.by_norm.capacity() * std::mem::size_of::<(u64, u32)>()
            // one control byte per slot
            + self.by_raw.capacity()
            + self.by_norm.capacity();
        let groups = self.groups.capacity() * std::mem::size_of::<Group>()
            + self
                .groups
                .iter()
                .map(|g| g.key.heap_bytes() + g.stats.heap_bytes())
                .sum::<usize>();
        let raws = self.raws.capacity() * std::mem::size_of::<(OwnedKey, u32)>()
            + self.raws.iter().map(|(k, _)| k.heap_bytes()).sum::<usize>();
        tables + groups + raws
    }

    /// The payload bucket (`duration` = the bucket size in ns).
    pub fn into_payload(self, duration: u64) -> ClientStatsBucket {
        ClientStatsBucket {
            start: u64::try_from(self.start).unwrap_or(0),
            duration,
            stats: self
                .groups
                .into_iter()
                .map(|g| ClientGroupedStats::from_group(&g.key, &g.stats))
                .collect(),
            agent_time_shift: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn fields(resource: &str) -> KeyFields<'_> {
        KeyFields {
            service: "svc".into(),
            name: "op".into(),
            resource: Cow::Borrowed(resource),
            is_trace_root: 1,
            ..Default::default()
        }
    }

    fn add<'a>(
        b: &mut Bucket,
        k: &KeyFields<'a>,
        st: &foldhash::fast::FixedState,
        norm: impl FnOnce(&KeyFields<'a>) -> KeyFields<'a>,
        s: Sample,
    ) {
        let mut flat = Vec::new();
        k.write_flat(&mut flat);
        b.add(|| k.clone(), &flat, hash_flat(&flat, st), st, norm, s);
    }

    fn sample(b: &Bucket, d: u64, error: bool) -> Sample {
        Sample {
            duration: d,
            slot: b.slot(d),
            error,
            top_level: !error,
        }
    }

    #[test]
    fn counts_and_normalized_sharing() {
        let st = foldhash::fast::FixedState::with_seed(3);
        let mut b = Bucket::new(10, 100);
        // Two raw resources normalizing to one key, one raw left unchanged.
        let norm = |k: &KeyFields<'static>| {
            let mut n = k.clone();
            if n.resource.starts_with("q") {
                n.resource = Cow::Borrowed("q?");
            }
            n
        };
        for (res, d, err) in [
            ("q1", 100, false),
            ("q2", 300, true),
            ("q1", 200, false),
            ("x", 50, false),
        ] {
            let k = fields(res);
            let s = sample(&b, d, err);
            add(&mut b, &k, &st, norm, s);
        }
        assert_eq!(b.len(), 2);
        let (k, g) = b.groups().find(|(k, _)| k.resource() == "q?").unwrap();
        assert_eq!(k.service(), "svc");
        assert_eq!(
            (g.hits, g.errors, g.duration, g.top_level_hits),
            (3, 1, 600, 2)
        );
        assert_eq!(g.ok_summary.count(), 2.0);
        assert_eq!(g.error_summary.count(), 1.0);
        assert_eq!(b.raws.len(), 2, "q1 and q2 kept as raw shortcuts");
        let (_, g) = b.groups().find(|(k, _)| k.resource() == "x").unwrap();
        assert_eq!(g.hits, 1);
        assert!(b.heap_bytes() > 0);
    }

    #[test]
    fn cap_sends_new_keys_to_overflow() {
        let st = foldhash::fast::FixedState::with_seed(3);
        let mut b = Bucket::new(0, 3);
        let names: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
        for n in &names {
            let k = fields(n);
            let s = sample(&b, 10, false);
            add(&mut b, &k, &st, |k| k.clone(), s);
        }
        // An existing key still merges after the cap.
        let k = fields("r0");
        let s = sample(&b, 10, false);
        add(&mut b, &k, &st, |k| k.clone(), s);
        assert_eq!(b.len(), 4);
        assert_eq!(b.collapsed_spans(), 7);
        let (ok, og) = b
            .groups()
            .find(|(k, _)| k.service() == "tracer_blocked_value")
            .unwrap();
        assert_eq!(ok.name(), "tracer_blocked_value");
        assert_eq!(og.hits, 7);
        let (_, g0) = b.groups().find(|(k, _)| k.resource() == "r0").unwrap();
        assert_eq!(g0.hits, 2);
        let p = b.into_payload(10);
        assert_eq!(p.stats.len(), 4);
        assert_eq!(p.stats.iter().map(|g| g.hits).sum::<u64>(), 11);
    }
}

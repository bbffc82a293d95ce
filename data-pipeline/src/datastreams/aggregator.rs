//! Aggregation of stats points into epoch-aligned time buckets.
//!
//! Inside a bucket, points are grouped by (service, pathway hash, parent hash, sorted edge tags)
//! ([`GroupKey`]); each group holds three DDSketches: pathway latency and edge latency in
//! seconds, payload size in bytes. Kafka offsets are kept per bucket and tag set, the maximum
//! seen.

use super::checkpoint::StatsPoint;
use super::hash::GroupKey;
use crate::sketch::{DDSketch, LogarithmicMapping, Slot};
use foldhash::fast::FixedState;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

const NS_PER_S: f64 = 1e9;

/// The DSM sketch mapping, built once.
pub(crate) fn dsm_mapping() -> &'static LogarithmicMapping {
    static MAPPING: OnceLock<LogarithmicMapping> = OnceLock::new();
    MAPPING.get_or_init(DDSketch::data_streams_mapping)
}

/// A stats point whose sketch slots are already computed (the logarithms are the costly part,
/// so they are done before taking the aggregator's lock).
#[derive(Debug, Clone)]
pub struct PreparedPoint {
    key: Arc<GroupKey>,
    timestamp_ns: i64,
    pathway_latency: Slot,
    edge_latency: Slot,
    payload_size: Slot,
}

impl PreparedPoint {
    /// Computes the sketch slots of `point`: latencies in seconds, payload size in bytes.
    #[inline]
    pub fn new(point: StatsPoint) -> Self {
        let slots = Slots::new(
            point.pathway_latency_ns,
            point.edge_latency_ns,
            point.payload_size,
        );
        PreparedPoint {
            key: point.key,
            timestamp_ns: point.timestamp_ns,
            pathway_latency: slots.pathway_latency,
            edge_latency: slots.edge_latency,
            payload_size: slots.payload_size,
        }
    }
}

/// The three sketch slots of a point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slots {
    pathway_latency: Slot,
    edge_latency: Slot,
    payload_size: Slot,
}

impl Slots {
    /// Latencies in ns (shown in seconds), payload size in bytes.
    #[inline]
    pub(crate) fn new(pathway_latency_ns: i64, edge_latency_ns: i64, payload_size: i64) -> Self {
        let m = dsm_mapping();
        // The inputs are finite, so slot() cannot be None.
        let slot = |v: f64| m.slot(v).unwrap_or(Slot::Zero);
        Slots {
            pathway_latency: slot(pathway_latency_ns as f64 / NS_PER_S),
            edge_latency: slot(edge_latency_ns as f64 / NS_PER_S),
            payload_size: slot(payload_size as f64),
        }
    }
}

/// Which Kafka offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OffsetKind {
    /// The offset of a message a producer wrote.
    Produce,
    /// The offset a consumer group committed (the next one it will read).
    Commit,
}

/// A Kafka offset observation, reported as a backlog.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaOffset {
    /// Produce or commit.
    pub kind: OffsetKind,
    /// The consumer group (commits only; ignored for produce).
    pub group: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The Kafka cluster id, empty if unknown.
    pub cluster_id: String,
    /// The offset.
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct OffsetKey {
    kind: OffsetKind,
    group: String,
    topic: String,
    partition: i32,
    cluster_id: String,
}

impl OffsetKey {
    fn tags(&self) -> Vec<String> {
        let mut tags = Vec::with_capacity(5);
        match self.kind {
            OffsetKind::Produce => tags.push("type:kafka_produce".to_owned()),
            OffsetKind::Commit => {
                tags.push("type:kafka_commit".to_owned());
                tags.push(format!("consumer_group:{}", self.group));
            }
        }
        tags.push(format!("topic:{}", self.topic));
        tags.push(format!("partition:{}", self.partition));
        if !self.cluster_id.is_empty() {
            tags.push(format!("kafka_cluster_id:{}", self.cluster_id));
        }
        tags
    }
}

/// The three sketches of one group.
#[derive(Debug, Clone)]
pub struct GroupStats {
    /// Pathway latency (now - pathway start) in seconds.
    pub pathway_latency: DDSketch,
    /// Edge latency (now - edge start) in seconds.
    pub edge_latency: DDSketch,
    /// Payload size in bytes.
    pub payload_size: DDSketch,
}

impl GroupStats {
    fn new() -> Self {
        GroupStats {
            pathway_latency: DDSketch::data_streams(),
            edge_latency: DDSketch::data_streams(),
            payload_size: DDSketch::data_streams(),
        }
    }
}

/// One aggregated group of a flushed bucket.
#[derive(Debug, Clone)]
pub struct AggregatedPoint {
    /// Service, hash, parent hash, sorted edge tags.
    pub key: Arc<GroupKey>,
    /// The sketches.
    pub stats: GroupStats,
}

/// A backlog: tags identifying a Kafka partition (and group) and an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// `type:kafka_produce|kafka_commit`, `consumer_group:`, `topic:`, `partition:`,
    /// `kafka_cluster_id:`.
    pub tags: Vec<String>,
    /// The largest offset seen in the bucket.
    pub value: i64,
}

/// A flushed bucket.
#[derive(Debug, Clone)]
pub struct FlushedBucket {
    /// Start, ns since the epoch (a multiple of the duration).
    pub start_ns: u64,
    /// Duration in ns.
    pub duration_ns: u64,
    /// The groups.
    pub points: Vec<AggregatedPoint>,
    /// The backlogs, sorted by tags.
    pub backlogs: Vec<Backlog>,
}

#[derive(Default)]
struct Bucket {
    groups: HashMap<Arc<GroupKey>, GroupStats, FixedState>,
    offsets: HashMap<OffsetKey, i64, FixedState>,
}

/// Time buckets of aggregated points and offsets.
pub struct Aggregator {
    bucket_ns: i64,
    max_groups: usize,
    groups: usize,
    points: u64,
    dropped: u64,
    buckets: BTreeMap<i64, Bucket>,
}

impl Aggregator {
    /// Buckets of `bucket_ns` nanoseconds (at least 1 ms), at most `max_groups` groups held
    /// across all buckets (more are dropped and counted).
    pub fn new(bucket_ns: u64, max_groups: usize) -> Self {
        Aggregator {
            bucket_ns: i64::try_from(bucket_ns).unwrap_or(i64::MAX).max(1_000_000),
            max_groups,
            groups: 0,
            points: 0,
            dropped: 0,
            buckets: BTreeMap::new(),
        }
    }

    /// The bucket duration in ns.
    pub fn bucket_ns(&self) -> u64 {
        self.bucket_ns as u64
    }

    fn bucket_start(&self, ts: i64) -> i64 {
        ts - ts.rem_euclid(self.bucket_ns)
    }

    /// Adds a point to the bucket of its timestamp. Returns false when it was dropped because
    /// the group limit is reached.
    #[inline]
    pub fn add(&mut self, p: PreparedPoint) -> bool {
        let slots = Slots {
            pathway_latency: p.pathway_latency,
            edge_latency: p.edge_latency,
            payload_size: p.payload_size,
        };
        self.add_ref(&p.key, p.timestamp_ns, slots)
    }

    /// [`Aggregator::add`] with a borrowed key (cloned only when it starts a new group).
    #[inline]
    pub(crate) fn add_ref(&mut self, key: &Arc<GroupKey>, timestamp_ns: i64, slots: Slots) -> bool {
        self.points += 1;
        let start = self.bucket_start(timestamp_ns);
        let bucket = self.buckets.entry(start).or_default();
        let stats = match bucket.groups.get_mut(key) {
            Some(s) => s,
            None => {
                if self.groups >= self.max_groups {
                    self.dropped += 1;
                    return false;
                }
                self.groups += 1;
                bucket
                    .groups
                    .entry(key.clone())
                    .or_insert_with(GroupStats::new)
            }
        };
        stats.pathway_latency.add_slot(slots.pathway_latency, 1.0);
        stats.edge_latency.add_slot(slots.edge_latency, 1.0);
        stats.payload_size.add_slot(slots.payload_size, 1.0);
        true
    }

    /// Points offered so far (added or dropped).
    pub fn points(&self) -> u64 {
        self.points
    }

    /// Records a Kafka offset observed at `now_ns`, keeping the maximum per tag set and bucket.
    pub fn add_offset(&mut self, o: KafkaOffset, now_ns: i64) {
        let start = self.bucket_start(now_ns);
        let key = OffsetKey {
            kind: o.kind,
            group: if o.kind == OffsetKind::Commit {
                o.group
            } else {
                String::new()
            },
            topic: o.topic,
            partition: o.partition,
            cluster_id: o.cluster_id,
        };
        let slot = self
            .buckets
            .entry(start)
            .or_default()
            .offsets
            .entry(key)
            .or_insert(o.offset);
        *slot = (*slot).max(o.offset);
    }

    /// Points dropped so far because of the group limit.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Removes and returns the buckets that are complete at `now_ns` (start + duration <=
    /// now), or all of them when `now_ns` is `None`, oldest first.
    pub fn flush(&mut self, now_ns: Option<i64>) -> Vec<FlushedBucket> {
        let taken = match now_ns {
            None => std::mem::take(&mut self.buckets),
            Some(now) => {
                // Buckets starting after now - duration are still open.
                let first_open = now.saturating_sub(self.bucket_ns).saturating_add(1);
                let open = self.buckets.split_off(&first_open);
                std::mem::replace(&mut self.buckets, open)
            }
        };
        let mut out = Vec::with_capacity(taken.len());
        for (start, bucket) in taken {
            self.groups = self.groups.saturating_sub(bucket.groups.len());
            let points = bucket
                .groups
                .into_iter()
                .map(|(key, stats)| AggregatedPoint { key, stats })
                .collect();
            let mut backlogs: Vec<Backlog> = bucket
                .offsets
                .into_iter()
                .map(|(k, value)| Backlog {
                    tags: k.tags(),
                    value,
                })
                .collect();
            backlogs.sort_by(|a, b| a.tags.cmp(&b.tags));
            out.push(FlushedBucket {
                // Buckets before the epoch are reported at 0 (u64 on the wire).
                start_ns: u64::try_from(start).unwrap_or(0),
                duration_ns: self.bucket_ns as u64,
                points,
                backlogs,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_700_000_003 * S; // 3 s into a bucket

    fn point(
        key: &Arc<GroupKey>,
        ts: i64,
        pathway_s: f64,
        edge_s: f64,
        size: i64,
    ) -> PreparedPoint {
        PreparedPoint::new(StatsPoint {
            key: key.clone(),
            timestamp_ns: ts,
            pathway_latency_ns: (pathway_s * 1e9) as i64,
            edge_latency_ns: (edge_s * 1e9) as i64,
            payload_size: size,
        })
    }

    #[test]
    fn groups_by_key_in_aligned_buckets() {
        let mut a = Aggregator::new(10 * S as u64, 100);
        let k1 = Arc::new(GroupKey::new("svc", 1, 0, &["type:kafka", "direction:out"]));
        let k1_again = Arc::new(GroupKey::new("svc", 1, 0, &["direction:out", "type:kafka"]));
        let k2 = Arc::new(GroupKey::new(
            "svc",
            1,
            0,
            &["direction:out", "type:kafka", "x:y"],
        ));
        assert!(a.add(point(&k1, T0, 1.0, 0.5, 100)));
        assert!(a.add(point(&k1_again, T0 + S, 2.0, 0.25, 300)));
        assert!(a.add(point(&k2, T0, 3.0, 0.0, 0)));
        assert!(a.add(point(&k1, T0 + 7 * S, 4.0, 1.0, 10))); // next bucket
        assert!(
            a.flush(Some(T0 + 6 * S)).is_empty(),
            "first bucket still open"
        );
        let flushed = a.flush(Some(T0 + 7 * S));
        assert_eq!(flushed.len(), 1);
        let b = &flushed[0];
        assert_eq!(b.start_ns, 1_700_000_000 * S as u64);
        assert_eq!(b.duration_ns, 10 * S as u64);
        assert_eq!(b.points.len(), 2);
        let g1 = b.points.iter().find(|p| *p.key == *k1).unwrap();
        assert_eq!(g1.stats.pathway_latency.count(), 2.0);
        let ra = g1.stats.edge_latency.relative_accuracy();
        assert!((g1.stats.pathway_latency.quantile(1.0).unwrap() - 2.0).abs() <= 2.0 * ra);
        assert!((g1.stats.edge_latency.quantile(0.0).unwrap() - 0.25).abs() <= 0.25 * ra);
        assert!((g1.stats.payload_size.quantile(1.0).unwrap() - 300.0).abs() <= 300.0 * ra);
        let g2 = b.points.iter().find(|p| *p.key == *k2).unwrap();
        assert_eq!(g2.stats.edge_latency.zero_count(), 1.0);
        assert_eq!(g2.stats.payload_size.zero_count(), 1.0);
        let rest = a.flush(None);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].start_ns, 1_700_000_010 * S as u64);
        assert!(a.is_empty());
    }

    #[test]
    fn offsets_keep_the_max_per_tag_set() {
        let mut a = Aggregator::new(10 * S as u64, 100);
        let produce = |p: i32, off: i64| KafkaOffset {
            kind: OffsetKind::Produce,
            group: "ignored".into(),
            topic: "orders".into(),
            partition: p,
            cluster_id: String::new(),
            offset: off,
        };
        a.add_offset(produce(0, 10), T0);
        a.add_offset(produce(0, 7), T0);
        a.add_offset(produce(1, 3), T0);
        a.add_offset(
            KafkaOffset {
                kind: OffsetKind::Commit,
                group: "billing".into(),
                topic: "orders".into(),
                partition: 0,
                cluster_id: "c1".into(),
                offset: 5,
            },
            T0,
        );
        let b = a.flush(None);
        assert_eq!(b.len(), 1);
        assert_eq!(
            b[0].backlogs,
            vec![
                Backlog {
                    tags: vec![
                        "type:kafka_commit".into(),
                        "consumer_group:billing".into(),
                        "topic:orders".into(),
                        "partition:0".into(),
                        "kafka_cluster_id:c1".into()
                    ],
                    value: 5
                },
                Backlog {
                    tags: vec![
                        "type:kafka_produce".into(),
                        "topic:orders".into(),
                        "partition:0".into()
                    ],
                    value: 10
                },
                Backlog {
                    tags: vec![
                        "type:kafka_produce".into(),
                        "topic:orders".into(),
                        "partition:1".into()
                    ],
                    value: 3
                },
            ]
        );
    }

    #[test]
    fn group_limit_drops_and_recovers_after_flush() {
        let mut a = Aggregator::new(10 * S as u64, 2);
        let keys: Vec<_> = (0..3)
            .map(|i| Arc::new(GroupKey::new("s", i, 0, &[])))
            .collect();
        assert!(a.add(point(&keys[0], T0, 0.0, 0.0, 0)));
        assert!(a.add(point(&keys[1], T0, 0.0, 0.0, 0)));
        assert!(!a.add(point(&keys[2], T0, 0.0, 0.0, 0)));
        assert!(
            a.add(point(&keys[1], T0, 0.0, 0.0, 0)),
            "existing groups still count"
        );
        assert_eq!(a.dropped(), 1);
        a.flush(None);
        assert!(a.add(point(&keys[2], T0, 0.0, 0.0, 0)));
    }

    #[test]
    fn negative_timestamps_align_down() {
        let mut a = Aggregator::new(10 * S as u64, 10);
        let k = Arc::new(GroupKey::new("s", 1, 0, &[]));
        a.add(point(&k, -S, 0.0, 0.0, 0));
        let b = a.flush(Some(0));
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].start_ns, 0, "before the epoch: reported at 0");
    }
}

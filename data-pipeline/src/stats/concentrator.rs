//! The concentrator: spans go into time buckets by their END time (`start + duration`, aligned
//! down to the bucket size, epoch-aligned), as in the agent's `SpanConcentrator`.
//!
//! - Two buckets stay open (the current and the previous one: `bufferLen` = 2): a flush emits
//!   the buckets that started at least two bucket sizes before `now` and keeps the others, so
//!   slightly late spans still land in the right bucket.
//! - A span ending before the oldest open bucket (`oldest_ts`) is counted in that bucket instead
//!   of reopening a bucket already sent. `oldest_ts` starts at the bucket of the creation time
//!   and moves to `align(now) - (bufferLen - 1) * size` at each flush.
//! - Buckets in the future are accepted.
//! - A forced flush (shutdown) emits everything.

use super::bucket::{Bucket, Sample};
use super::eligibility::{chunk_is_synthetics, is_eligible, MetricsScan};
use super::key::{hash_flat, write_span_key, KeyFields, KeyNormalizer, MetaScan, PeerTagKeys};
use super::payload::ClientStatsBucket;
use super::StatsConfig;
use crate::obfuscate::Obfuscator;
use crate::sketch::{DDSketch, LogarithmicMapping};
use crate::span::Span;

/// Buckets kept open behind the current one (the agent's `defaultBufferLen`).
const BUFFER_LEN: i64 = 2;

/// Aggregates spans into time buckets (see the module docs). Not thread-safe by itself: the
/// exporter keeps it behind a mutex and adds a whole payload per lock.
#[derive(Debug)]
pub struct Concentrator {
    bucket_ns: i64,
    oldest_ts: i64,
    /// Open buckets, in no particular order (there are 1-3 of them).
    buckets: Vec<Bucket>,
    /// Index of the bucket the last span went to (spans of a chunk usually share one).
    last_bucket: usize,
    max_keys: usize,
    kinds: Vec<String>,
    peer_keys: PeerTagKeys,
    extra_peer_keys: Vec<String>,
    normalizer: KeyNormalizer,
    hasher: foldhash::fast::FixedState,
    /// The sketches' mapping, built once.
    mapping: LogarithmicMapping,
    /// Reused buffer for the identity bytes of the current span's key.
    flat: Vec<u8>,
    spans_counted: u64,
}

impl Concentrator {
    /// A concentrator for `config`, created at `now_ns`, with the agent's peer tags and span
    /// kinds (empty when unknown) and the tracer language (for fallback service names).
    pub fn new(
        config: &StatsConfig,
        now_ns: i64,
        agent_peer_tags: &[String],
        agent_span_kinds: &[String],
        lang: &str,
    ) -> Concentrator {
        let bucket_ns = i64::try_from(config.bucket_size.as_nanos())
            .unwrap_or(i64::MAX)
            .max(1);
        let mut c = Concentrator {
            bucket_ns,
            oldest_ts: align(now_ns, bucket_ns),
            buckets: Vec::new(),
            last_bucket: 0,
            max_keys: config.max_keys_per_bucket,
            kinds: Vec::new(),
            peer_keys: PeerTagKeys::default(),
            extra_peer_keys: config.peer_tags_extra.clone(),
            normalizer: KeyNormalizer::new(lang),
            hasher: foldhash::fast::FixedState::with_seed(0x5eed_57a7),
            mapping: DDSketch::trace_stats_mapping(),
            flat: Vec::with_capacity(256),
            spans_counted: 0,
        };
        c.set_agent_info(config, agent_peer_tags, agent_span_kinds);
        c
    }

    /// Obfuscates the resources of stats keys with `obfuscator` (the user's settings) instead of
    /// the agent's defaults. For a new concentrator: keys already counted keep their resource.
    pub fn with_obfuscator(mut self, obfuscator: Obfuscator) -> Concentrator {
        let lang = self.normalizer.lang().to_owned();
        self.normalizer = KeyNormalizer::with_obfuscator(&lang, obfuscator);
        self
    }

    /// A concentrator with this one's settings (bucket size, key cap, span kinds, peer tags,
    /// normalizer: language and obfuscator) and no buckets, created at `now_ns`: what a forked
    /// child starts from.
    pub fn empty_like(&self, now_ns: i64) -> Concentrator {
        Concentrator {
            bucket_ns: self.bucket_ns,
            oldest_ts: align(now_ns, self.bucket_ns),
            buckets: Vec::new(),
            last_bucket: 0,
            max_keys: self.max_keys,
            kinds: self.kinds.clone(),
            peer_keys: self.peer_keys.clone(),
            extra_peer_keys: self.extra_peer_keys.clone(),
            normalizer: self.normalizer.clone(),
            hasher: self.hasher.clone(),
            mapping: self.mapping,
            flat: Vec::with_capacity(256),
            spans_counted: 0,
        }
    }

    /// Applies what the agent's `/info` says (peer tags, span kinds) to spans added from now on.
    pub fn set_agent_info(
        &mut self,
        config: &StatsConfig,
        agent_peer_tags: &[String],
        agent_span_kinds: &[String],
    ) {
        self.kinds = config.effective_span_kinds(agent_span_kinds);
        self.peer_keys = PeerTagKeys::new(
            agent_peer_tags
                .iter()
                .chain(self.extra_peer_keys.iter())
                .map(String::as_str),
        );
    }

    /// The bucket size in ns.
    pub fn bucket_size_ns(&self) -> i64 {
        self.bucket_ns
    }

    /// The peer tag keys in force.
    pub fn peer_tag_keys(&self) -> &[String] {
        self.peer_keys.keys()
    }

    /// The span kinds in force.
    pub fn span_kinds(&self) -> &[String] {
        &self.kinds
    }

    /// Eligible spans counted since creation.
    pub fn spans_counted(&self) -> u64 {
        self.spans_counted
    }

    /// Counts the eligible spans of one chunk (top-level marks must already be on the spans).
    /// Returns how many were counted.
    pub fn add_chunk(&mut self, chunk: &[Span<'_>]) -> usize {
        if chunk.is_empty() {
            return 0;
        }
        // One-span chunks (the most frequent): the root is the span, whose origin the meta scan
        // reads anyway.
        let single = chunk.len() == 1;
        let chunk_synthetics = !single && chunk_is_synthetics(chunk);
        let mut counted = 0;
        for span in chunk {
            let metrics = MetricsScan::of(span);
            if metrics.partial_snapshot {
                continue;
            }
            let meta = MetaScan::of(span, &self.peer_keys);
            if !is_eligible(&metrics, meta.span_kind, &self.kinds) {
                continue;
            }
            let synthetics = if single {
                meta.origin.starts_with("synthetics")
            } else {
                chunk_synthetics
            };
            self.add_span(span, &metrics, &meta, synthetics);
            counted += 1;
        }
        self.spans_counted += counted as u64;
        counted
    }

    #[inline]
    fn add_span(
        &mut self,
        span: &Span<'_>,
        metrics: &MetricsScan,
        meta: &MetaScan<'_>,
        synthetics: bool,
    ) {
        let end = span.start.saturating_add(span.duration);
        let btime = align(end, self.bucket_ns).max(self.oldest_ts);
        let bi = match self.buckets.get(self.last_bucket) {
            Some(b) if b.start() == btime => self.last_bucket,
            _ => match self.buckets.iter().position(|b| b.start() == btime) {
                Some(i) => i,
                None => {
                    self.buckets
                        .push(Bucket::with_mapping(btime, self.max_keys, self.mapping));
                    self.buckets.len() - 1
                }
            },
        };
        self.last_bucket = bi;
        // The key's bytes straight from the span; its fields only for a key new to the bucket.
        write_span_key(
            &mut self.flat,
            span,
            metrics,
            meta,
            synthetics,
            &self.peer_keys,
        );
        let hash = hash_flat(&self.flat, &self.hasher);
        let bucket = &mut self.buckets[bi];
        let duration = u64::try_from(span.duration).unwrap_or(0);
        let sample = Sample {
            duration,
            slot: bucket.slot(duration),
            error: span.error != 0,
            top_level: metrics.top_level,
        };
        let normalizer = &self.normalizer;
        let peer_keys = &self.peer_keys;
        bucket.add(
            || KeyFields::from_span(span, metrics, meta, synthetics, peer_keys),
            &self.flat,
            hash,
            &self.hasher,
            |k| normalizer.normalize(k),
            sample,
        );
    }

    /// Removes and returns the buckets due at `now_ns` (all of them when `force`), oldest
    /// first, and moves the oldest open bucket forward.
    pub fn flush(&mut self, now_ns: i64, force: bool) -> Vec<ClientStatsBucket> {
        let limit = now_ns.saturating_sub(BUFFER_LEN.saturating_mul(self.bucket_ns));
        let mut due: Vec<Bucket> = Vec::new();
        let mut i = 0;
        while i < self.buckets.len() {
            if force || self.buckets[i].start() <= limit {
                due.push(self.buckets.swap_remove(i));
            } else {
                i += 1;
            }
        }
        let new_oldest = align(now_ns, self.bucket_ns) - (BUFFER_LEN - 1) * self.bucket_ns;
        if new_oldest > self.oldest_ts {
            self.oldest_ts = new_oldest;
        }
        due.sort_by_key(|b| b.start());
        let size = u64::try_from(self.bucket_ns).unwrap_or(0);
        due.into_iter()
            .filter(|b| !b.is_empty())
            .map(|b| {
                if b.collapsed_spans() > 0 {
                    log::debug!(
                        "stats bucket {}: {} spans over the key cap counted as tracer_blocked_value",
                        b.start(),
                        b.collapsed_spans()
                    );
                }
                b.into_payload(size)
            })
            .collect()
    }

    /// The open buckets.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// Approximate heap bytes held by the open buckets.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.iter().map(Bucket::heap_bytes).sum::<usize>()
            + self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(Bucket::is_empty)
    }
}

/// `ts` aligned down to a multiple of `size` (Euclidean, so negative times stay below).
#[inline]
fn align(ts: i64, size: i64) -> i64 {
    ts - ts.rem_euclid(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::top_level::compute_top_level;
    use std::time::Duration;

    const S: i64 = 1_000_000_000;

    fn span(id: u64, parent: u64, start: i64, dur: i64) -> Span<'static> {
        Span {
            service: "svc".into(),
            name: "op".into(),
            resource: "GET /".into(),
            trace_id: 1,
            span_id: id,
            parent_id: parent,
            start,
            duration: dur,
            ..Default::default()
        }
    }

    fn conc(now: i64) -> Concentrator {
        Concentrator::new(&StatsConfig::default(), now, &[], &[], "rust")
    }

    #[test]
    fn buckets_by_end_time_and_flush_rules() {
        let t0 = 1_000 * S; // aligned
        let mut c = conc(t0);
        // Ends at t0+12s -> bucket t0+10s, even though it started in t0's bucket.
        let mut chunk = vec![span(1, 0, t0 + 5 * S, 7 * S), span(2, 1, t0 + S, S)];
        compute_top_level(&mut chunk);
        chunk[1].metrics.insert("_dd.measured", 1.0);
        assert_eq!(c.add_chunk(&chunk), 2);
        let mut starts: Vec<i64> = c.buckets().iter().map(Bucket::start).collect();
        starts.sort();
        assert_eq!(starts, [t0, t0 + 10 * S]);
        // At t0+19s nothing is due (bucket t0 needs now >= t0+20s).
        assert!(c.flush(t0 + 19 * S, false).is_empty());
        let out = c.flush(t0 + 20 * S, false);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].start, t0 as u64);
        assert_eq!(out[0].duration, 10 * S as u64);
        // oldest is now t0+10s: a late span ending at t0+3s lands in bucket t0+10s.
        let late = vec![span(3, 0, t0 + 2 * S, S)];
        let mut late = late;
        compute_top_level(&mut late);
        c.add_chunk(&late);
        assert_eq!(c.buckets().len(), 1);
        let rest = c.flush(t0 + 21 * S, true);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].start, (t0 + 10 * S) as u64);
        assert_eq!(rest[0].stats[0].hits, 2);
        assert!(c.is_empty());
    }

    #[test]
    fn spans_before_creation_go_to_the_first_bucket() {
        let t0 = 1_000 * S + 3 * S;
        let mut c = conc(t0);
        let mut chunk = vec![span(1, 0, 100 * S, S)];
        compute_top_level(&mut chunk);
        c.add_chunk(&chunk);
        assert_eq!(c.buckets()[0].start(), 1_000 * S);
    }

    #[test]
    fn ineligible_and_partial_spans_are_skipped() {
        let t0 = 1_000 * S;
        let mut c = conc(t0);
        let mut chunk = vec![
            span(1, 0, t0, 10),
            span(2, 1, t0, 10),
            span(3, 1, t0, 10),
            span(4, 1, t0, 10),
        ];
        compute_top_level(&mut chunk);
        chunk[2].meta.insert("span.kind", "client".into());
        chunk[3].metrics.insert("_dd.measured", 1.0);
        chunk[3].metrics.insert("_dd.partial_version", 2.0);
        assert_eq!(c.add_chunk(&chunk), 2);
        assert_eq!(c.spans_counted(), 2);
    }

    #[test]
    fn agent_info_changes_kinds_and_peer_tags() {
        let cfg = StatsConfig {
            peer_tags_extra: vec!["custom.peer".into()],
            bucket_size: Duration::from_secs(2),
            ..Default::default()
        };
        let mut c = Concentrator::new(&cfg, 0, &["db.name".into()], &[], "");
        assert_eq!(c.peer_tag_keys(), ["custom.peer", "db.name"]);
        assert_eq!(c.span_kinds().len(), 4);
        c.set_agent_info(&cfg, &[], &["server".into()]);
        assert_eq!(c.peer_tag_keys(), ["custom.peer"]);
        assert_eq!(c.span_kinds(), ["server"]);
        assert_eq!(c.bucket_size_ns(), 2 * S);
    }

    #[test]
    fn empty_like_keeps_the_settings_and_drops_the_buckets() {
        let cfg = StatsConfig {
            peer_tags_extra: vec!["custom.peer".into()],
            bucket_size: Duration::from_secs(2),
            max_keys_per_bucket: 1,
            ..Default::default()
        };
        let t0 = 1_000 * S;
        let mut c = Concentrator::new(&cfg, t0, &["db.name".into()], &[], "python");
        c.set_agent_info(&cfg, &["db.name".into()], &["server".into()]);
        let mut chunk = vec![span(1, 0, t0, 10)];
        compute_top_level(&mut chunk);
        c.add_chunk(&chunk);
        let mut e = c.empty_like(t0 + 11 * S);
        assert!(e.buckets().is_empty() && e.spans_counted() == 0);
        assert_eq!(c.buckets().len(), 1, "the original keeps its buckets");
        assert_eq!(e.bucket_size_ns(), 2 * S);
        assert_eq!(e.peer_tag_keys(), ["custom.peer", "db.name"]);
        assert_eq!(e.span_kinds(), ["server"]);
        assert_eq!(e.oldest_ts, t0 + 10 * S);
        // The key cap (1) and the language (fallback service name) come along.
        let mut chunk = vec![span(1, 0, t0 + 11 * S, 10), span(2, 0, t0 + 11 * S, 10)];
        chunk[0].service = "".into();
        chunk[1].resource = "other".into();
        compute_top_level(&mut chunk);
        assert_eq!(e.add_chunk(&chunk), 2);
        assert_eq!(
            e.buckets()[0].collapsed_spans(),
            1,
            "the second key is over the cap"
        );
        let out = e.flush(t0 + 100 * S, true);
        assert!(out[0]
            .stats
            .iter()
            .any(|g| g.service == "unnamed-python-service"));
    }

    #[test]
    fn synthetics_from_root_origin() {
        let t0 = 1_000 * S;
        let mut c = conc(t0);
        let mut chunk = vec![span(2, 1, t0, 10), span(1, 0, t0, 10)];
        chunk[1].meta.insert("_dd.origin", "synthetics".into());
        chunk[0].service = "other".into();
        compute_top_level(&mut chunk);
        c.add_chunk(&chunk);
        let out = c.flush(t0 + 100 * S, false);
        assert_eq!(out[0].stats.len(), 2);
        assert!(out[0].stats.iter().all(|g| g.synthetics));
    }

    #[test]
    fn synthetics_of_one_span_chunks() {
        let t0 = 1_000 * S;
        let mut c = conc(t0);
        for (i, origin) in ["synthetics-browser", "rum", ""].into_iter().enumerate() {
            let mut chunk = vec![span(i as u64 + 1, 0, t0, 10)];
            chunk[0].resource = format!("r{i}").into();
            if !origin.is_empty() {
                chunk[0].meta.insert("_dd.origin", origin.into());
            }
            compute_top_level(&mut chunk);
            c.add_chunk(&chunk);
        }
        let out = c.flush(t0 + 100 * S, false);
        let mut got: Vec<(String, bool)> = out[0]
            .stats
            .iter()
            .map(|g| (g.resource.clone(), g.synthetics))
            .collect();
        got.sort();
        let want = [("r0", true), ("r1", false), ("r2", false)];
        assert_eq!(got, want.map(|(r, b)| (r.to_string(), b)));
    }

    #[test]
    fn align_handles_negative() {
        assert_eq!(align(-1, 10), -10);
        assert_eq!(align(19, 10), 10);
    }
}

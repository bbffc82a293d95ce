//! Which spans are counted (agent: `SpanConcentrator.NewStatSpanWithConfig`):
//! top-level spans, measured spans (`_dd.measured` = 1) and spans whose `span.kind` (compared
//! lowercase) is one of the configured kinds, except partial snapshots of long-running spans
//! (`_dd.partial_version` >= 0).
//!
//! The metrics of a span are read in one pass ([`MetricsScan`]) that also picks up what the
//! key needs from them (HTTP and gRPC status codes), so a span's metrics are walked once.

use super::key::GRPC_STATUS_KEYS;
use super::top_level::{TOP_LEVEL_KEY, TRACER_TOP_LEVEL_KEY};
use crate::span::Span;

/// Metric marking a span the tracer wants stats for.
pub const MEASURED_KEY: &str = "_dd.measured";
/// Metric carried by partial snapshots of a long-running span.
pub const PARTIAL_VERSION_KEY: &str = "_dd.partial_version";
/// Meta holding the chunk's origin (`synthetics...` marks synthetic traffic).
pub const ORIGIN_KEY: &str = "_dd.origin";

/// What one pass over a span's metrics found. Duplicate keys: the last occurrence wins, as
/// everywhere in the span model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetricsScan {
    /// `_top_level` or `_dd.top_level` is 1.
    pub top_level: bool,
    /// `_dd.measured` is 1.
    pub measured: bool,
    /// `_dd.partial_version` >= 0.
    pub partial_snapshot: bool,
    /// Metric `http.status_code`, if present.
    pub http_status_code: Option<f64>,
    /// Metric values of the gRPC status keys, in [`GRPC_STATUS_KEYS`] order.
    pub grpc_status: [Option<f64>; 4],
}

impl MetricsScan {
    /// Reads the metrics of `span` once.
    #[inline]
    pub fn of(span: &Span<'_>) -> MetricsScan {
        let mut m = MetricsScan::default();
        let (mut top, mut tracer_top) = (false, false);
        for (k, v) in span.metrics.iter() {
            // The length is in the map entry itself: filtering on it first spares loading the
            // bytes of most keys (a cache miss each on large payloads; see benches/stats.rs).
            if METRIC_KEY_LENS & super::key::len_bit(k.len()) == 0 {
                continue;
            }
            let v = *v;
            // Every key of interest starts with '_', 'h', 'g' or 'r': skip the others cheaply.
            match k.as_bytes().first() {
                Some(b'_') => match k.as_ref() {
                    TOP_LEVEL_KEY => top = v == 1.0,
                    TRACER_TOP_LEVEL_KEY => tracer_top = v == 1.0,
                    MEASURED_KEY => m.measured = v == 1.0,
                    PARTIAL_VERSION_KEY => m.partial_snapshot = v >= 0.0,
                    _ => {}
                },
                Some(b'h') if k == "http.status_code" => m.http_status_code = Some(v),
                Some(b'g' | b'r') => {
                    if let Some(i) = GRPC_STATUS_KEYS.iter().position(|g| *g == k) {
                        m.grpc_status[i] = Some(v);
                    }
                }
                _ => {}
            }
        }
        m.top_level = top || tracer_top;
        m
    }
}

/// Bit `n` set for every length `n` of a metric key [`MetricsScan`] looks for.
const METRIC_KEY_LENS: u64 = super::key::len_bit(TOP_LEVEL_KEY.len())
    | super::key::len_bit(TRACER_TOP_LEVEL_KEY.len())
    | super::key::len_bit(MEASURED_KEY.len())
    | super::key::len_bit(PARTIAL_VERSION_KEY.len())
    | super::key::len_bit("http.status_code".len())
    | super::key::len_bit(GRPC_STATUS_KEYS[0].len())
    | super::key::len_bit(GRPC_STATUS_KEYS[1].len())
    | super::key::len_bit(GRPC_STATUS_KEYS[2].len())
    | super::key::len_bit(GRPC_STATUS_KEYS[3].len());

/// True when a span with these metrics and `span.kind` is counted.
#[inline]
pub fn is_eligible(metrics: &MetricsScan, span_kind: &str, kinds: &[String]) -> bool {
    if metrics.partial_snapshot {
        return false;
    }
    metrics.top_level
        || metrics.measured
        || (!span_kind.is_empty() && kinds.iter().any(|k| k.eq_ignore_ascii_case(span_kind)))
}

/// The root of a chunk, as the agent picks it (`traceutil.GetRoot`): the last span with
/// `parent_id == 0`, else the last span whose parent is not in the chunk, else the last span.
pub fn chunk_root<'s, 'a>(chunk: &'s [Span<'a>]) -> Option<&'s Span<'a>> {
    if let Some(r) = chunk.iter().rfind(|s| s.parent_id == 0) {
        return Some(r);
    }
    if chunk.len() <= 32 {
        let orphan = chunk
            .iter()
            .rfind(|s| !chunk.iter().any(|p| p.span_id == s.parent_id));
        return orphan.or(chunk.last());
    }
    let mut ids: Vec<u64> = chunk.iter().map(|s| s.span_id).collect();
    ids.sort_unstable();
    chunk
        .iter()
        .rfind(|s| ids.binary_search(&s.parent_id).is_err())
        .or(chunk.last())
}

/// True when the chunk's origin (meta `_dd.origin` of its root) marks synthetic traffic.
pub fn chunk_is_synthetics(chunk: &[Span<'_>]) -> bool {
    chunk_root(chunk)
        .and_then(|r| r.meta.get(ORIGIN_KEY))
        .is_some_and(|o| o.starts_with("synthetics"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds() -> Vec<String> {
        super::super::DEFAULT_SPAN_KINDS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn eligibility_rules() {
        let mut s = Span::default();
        let k = kinds();
        assert!(!is_eligible(&MetricsScan::of(&s), "", &k));
        assert!(is_eligible(&MetricsScan::of(&s), "Client", &k));
        assert!(!is_eligible(&MetricsScan::of(&s), "internal", &k));
        assert!(!is_eligible(&MetricsScan::of(&s), "client", &[]));
        s.metrics.insert(MEASURED_KEY, 1.0);
        assert!(is_eligible(&MetricsScan::of(&s), "", &k));
        s.metrics.insert(MEASURED_KEY, 2.0);
        assert!(!is_eligible(&MetricsScan::of(&s), "", &k));
        s.metrics.insert(TRACER_TOP_LEVEL_KEY, 1.0);
        assert!(is_eligible(&MetricsScan::of(&s), "", &k));
        s.metrics.insert(PARTIAL_VERSION_KEY, 0.0);
        assert!(!is_eligible(&MetricsScan::of(&s), "server", &k));
        s.metrics.insert(PARTIAL_VERSION_KEY, -1.0);
        assert!(is_eligible(&MetricsScan::of(&s), "", &k));
    }

    #[test]
    fn scan_picks_status_codes_last_wins() {
        let mut s = Span::default();
        s.metrics.push("http.status_code", 200.0);
        s.metrics.push("grpc.code", 5.0);
        s.metrics.push("http.status_code", 404.0);
        let m = MetricsScan::of(&s);
        assert_eq!(m.http_status_code, Some(404.0));
        assert_eq!(m.grpc_status, [None, Some(5.0), None, None]);
    }

    #[test]
    fn root_and_synthetics() {
        let sp = |id, parent| Span {
            span_id: id,
            parent_id: parent,
            ..Default::default()
        };
        let mut c = vec![sp(2, 1), sp(1, 0), sp(3, 1)];
        c[1].meta.insert(ORIGIN_KEY, "synthetics-browser".into());
        assert_eq!(chunk_root(&c).map(|s| s.span_id), Some(1));
        assert!(chunk_is_synthetics(&c));
        let c = vec![sp(2, 9), sp(3, 2), sp(4, 8)];
        assert_eq!(chunk_root(&c).map(|s| s.span_id), Some(4));
        let c = vec![sp(2, 3), sp(3, 2)];
        assert_eq!(chunk_root(&c).map(|s| s.span_id), Some(3));
        assert!(!chunk_is_synthetics(&c));
        assert!(chunk_root(&[]).is_none());
    }
}

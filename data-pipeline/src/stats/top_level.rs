//! Top-level spans: the entry point of a service in a chunk. A span is top-level when it is a
//! root (`parent_id == 0`), when its parent is not in the chunk, or when its parent belongs to
//! another service (agent: `traceutil.ComputeTopLevel`).
//!
//! The agent recomputes the mark (metric `_top_level` = 1, removed from the others) for every
//! chunk unless the request says `Datadog-Client-Computed-Top-Level`; a tracer may also set
//! `_dd.top_level` = 1 itself. Either metric at 1 makes a span top-level ([`is_top_level`]).
//!
//! When the exporter computes stats it sends that header, so it must leave the marks the agent
//! would have computed: [`compute_top_level`] does the agent's computation (which also
//! leaves a tracer's `_dd.top_level` alone), unless the tracer said it computed them itself
//! ([`super::StatsConfig::client_computed_top_level`]). One shortcut: a top-level span that
//! already carries `_dd.top_level` = 1 does not get `_top_level` = 1 added, because the agent adds
//! it to such spans when the header is set (`UpdateTracerTopLevel`): the agent ends with the
//! same marks.

use crate::span::Span;

/// Metric the agent (and this module) sets on top-level spans.
pub const TOP_LEVEL_KEY: &str = "_top_level";
/// Metric a tracer sets on the top-level spans it computed itself.
pub const TRACER_TOP_LEVEL_KEY: &str = "_dd.top_level";

/// True when `_top_level` or `_dd.top_level` is exactly 1.
pub fn is_top_level(span: &Span<'_>) -> bool {
    span.metrics
        .iter()
        .any(|(k, v)| *v == 1.0 && (k == TOP_LEVEL_KEY || k == TRACER_TOP_LEVEL_KEY))
}

/// Below this many spans a linear search for the parent beats building an index.
const LINEAR_LIMIT: usize = 16;

/// Marks the top-level spans of one chunk with `_top_level` = 1 and removes the mark from the
/// others (the agent's rule; `_dd.top_level` is left as the tracer set it).
pub fn compute_top_level(chunk: &mut [Span<'_>]) {
    if chunk.len() <= LINEAR_LIMIT {
        for i in 0..chunk.len() {
            let s = &chunk[i];
            let top = s.parent_id == 0
                || match chunk.iter().rfind(|p| p.span_id == s.parent_id) {
                    None => true,
                    Some(p) => p.service != s.service,
                };
            set_mark(&mut chunk[i], top);
        }
        return;
    }
    // Sorted (span id, index) pairs: one allocation, no hashing. On duplicate ids the last
    // span wins, as in the agent's id -> index map.
    let mut ids: Vec<(u64, u32)> = chunk
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i as u32))
        .collect();
    ids.sort_unstable();
    for i in 0..chunk.len() {
        let s = &chunk[i];
        let top = s.parent_id == 0 || {
            let end = ids.partition_point(|(id, _)| *id <= s.parent_id);
            match end.checked_sub(1).map(|j| ids[j]) {
                Some((id, pi)) if id == s.parent_id => chunk[pi as usize].service != s.service,
                _ => true,
            }
        };
        set_mark(&mut chunk[i], top);
    }
}

fn set_mark(span: &mut Span<'_>, top: bool) {
    if top {
        match span.metrics.get(TOP_LEVEL_KEY) {
            Some(v) if *v == 1.0 => {}
            // The tracer marked it `_dd.top_level` = 1: the agent sets `_top_level` = 1 itself on
            // such spans when the client computed top-level (`UpdateTracerTopLevel`), so the
            // insertion is left to it. Profiled: the insertion grows the decoded metrics (a
            // realloc), ~900 instructions per span of one-span chunks.
            None if span.metrics.get(TRACER_TOP_LEVEL_KEY) == Some(&1.0) => {}
            _ => {
                span.metrics.insert(TOP_LEVEL_KEY, 1.0);
            }
        }
    } else if span.metrics.contains_key(TOP_LEVEL_KEY) {
        span.metrics.remove(TOP_LEVEL_KEY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: u64, parent: u64, service: &str) -> Span<'static> {
        Span {
            span_id: id,
            parent_id: parent,
            service: service.to_string().into(),
            ..Default::default()
        }
    }

    fn marks(chunk: &[Span<'_>]) -> Vec<bool> {
        chunk.iter().map(is_top_level).collect()
    }

    #[test]
    fn agent_rules() {
        // root, same-service child, other-service child, orphan, grandchild of the other service
        let mut c = vec![
            span(1, 0, "web"),
            span(2, 1, "web"),
            span(3, 1, "db"),
            span(4, 99, "web"),
            span(5, 3, "db"),
        ];
        c[1].metrics.insert(TOP_LEVEL_KEY, 1.0); // stale mark: removed
        compute_top_level(&mut c);
        assert_eq!(marks(&c), [true, false, true, true, false]);
        assert!(!c[1].metrics.contains_key(TOP_LEVEL_KEY));
    }

    #[test]
    fn tracer_mark_is_kept_and_counts() {
        let mut c = vec![span(1, 0, "web"), span(2, 1, "web"), span(3, 0, "web")];
        c[1].metrics.insert(TRACER_TOP_LEVEL_KEY, 1.0);
        c[2].metrics.insert(TRACER_TOP_LEVEL_KEY, 1.0);
        compute_top_level(&mut c);
        assert_eq!(marks(&c), [true, true, true]);
        // A top-level span marked by the tracer is left to the agent (which adds `_top_level`).
        assert!(!c[2].metrics.contains_key(TOP_LEVEL_KEY));
        assert!(c[0].metrics.contains_key(TOP_LEVEL_KEY));
        c[1].metrics.insert(TRACER_TOP_LEVEL_KEY, 0.5);
        assert!(!is_top_level(&c[1]), "only exactly 1 counts");
    }

    #[test]
    fn large_chunk_uses_the_index_and_agrees() {
        // A chain of 100 spans alternating service every 10, plus orphans; compare with the
        // linear rule computed by hand.
        let mut c: Vec<Span<'static>> = (1..=100u64)
            .map(|i| span(i, i - 1, if (i / 10) % 2 == 0 { "a" } else { "b" }))
            .collect();
        c.push(span(1000, 5000, "a"));
        c.reverse();
        let expected: Vec<bool> = c
            .iter()
            .map(|s| {
                s.parent_id == 0
                    || c.iter()
                        .find(|p| p.span_id == s.parent_id)
                        .is_none_or(|p| p.service != s.service)
            })
            .collect();
        compute_top_level(&mut c);
        assert_eq!(marks(&c), expected);
        assert!(expected.iter().filter(|t| **t).count() > 5);
    }
}

//! Chunk rules: the agent's `normalizeTrace` (every span normalized, the chunk rejected when it
//! is empty, when a span cannot be repaired or belongs to another trace; duplicate span ids are
//! counted but kept).

use super::span::{normalize_span, SpanRules};
use super::stats::{NormalizeCounts, Reason};
use crate::span::{Span, Trace, TRACE_ID_HIGH_KEY};
use std::collections::HashSet;

/// The agent's `SameTraceID`: equal low 64 bits, and equal `_dd.p.tid` when both spans carry it
/// (tracers set it on the first span of a chunk only).
pub fn same_trace_id(a: &Span<'_>, b: &Span<'_>) -> bool {
    if a.trace_id != b.trace_id {
        return false;
    }
    match (a.meta.get(TRACE_ID_HIGH_KEY), b.meta.get(TRACE_ID_HIGH_KEY)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// Normalizes every span of `chunk`; `Err(reason)` when the chunk must be dropped.
///
/// Same order as the agent, so the counters match too: span by span, the foreign-span check,
/// then the span rules, then the duplicate-id check.
pub(crate) fn normalize_chunk(
    chunk: &mut Trace<'_>,
    rules: &SpanRules<'_>,
    counts: &mut NormalizeCounts,
) -> Result<(), Reason> {
    if chunk.is_empty() {
        counts.inc(Reason::EmptyTrace);
        return Err(Reason::EmptyTrace);
    }
    let n = chunk.len();
    // Small chunks (the common case) look for duplicate ids with a scan, no allocation.
    let mut seen: Option<HashSet<u64>> = (n > 32).then(|| HashSet::with_capacity(n));
    for i in 0..n {
        if i > 0 && !same_trace_id(&chunk[i], &chunk[0]) {
            counts.inc(Reason::ForeignSpan);
            return Err(Reason::ForeignSpan);
        }
        normalize_span(&mut chunk[i], rules, counts)?;
        let id = chunk[i].span_id;
        let dup = match seen.as_mut() {
            Some(set) => !set.insert(id),
            None => chunk[..i].iter().any(|s| s.span_id == id),
        };
        if dup {
            counts.inc(Reason::DuplicateSpanId);
        }
    }
    Ok(())
}

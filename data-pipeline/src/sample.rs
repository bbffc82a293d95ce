//! P0 dropping: once client-side stats account for every span, chunks the agent would not keep
//! need not be sent (only while the agent allows it: `/info` `client_drop_p0s`).
//!
//! A chunk is kept whole when any span has an error, or when its sampling priority (metric
//! `_sampling_priority_v1` of the first span carrying it) is absent or > 0. Otherwise only its
//! single-span-sampled spans (`_dd.span_sampling.mechanism` = 8) are kept, and the chunk goes
//! when none is. The counts of what was dropped travel in the `Datadog-Client-Dropped-P0-Traces`
//! and `-Spans` headers of the same request.
//!
//! libdatadog also keeps legacy App Analytics spans (metric `_dd1.sr.eausr`); the spec keeps
//! only single-span-sampled ones, and so does this module.

use crate::span::{Trace, SAMPLING_PRIORITY_KEY};

/// Metric set on spans kept by single-span sampling.
pub const SINGLE_SPAN_SAMPLING_MECHANISM_KEY: &str = "_dd.span_sampling.mechanism";
/// The value of [`SINGLE_SPAN_SAMPLING_MECHANISM_KEY`] meaning single-span sampling.
pub const SINGLE_SPAN_SAMPLING_MECHANISM: f64 = 8.0;

/// What [`drop_p0s`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DroppedP0 {
    /// Chunks removed whole.
    pub traces: u64,
    /// Spans removed (from removed chunks and from chunks reduced to their single-span-sampled
    /// spans).
    pub spans: u64,
}

impl std::ops::AddAssign for DroppedP0 {
    fn add_assign(&mut self, o: DroppedP0) {
        self.traces += o.traces;
        self.spans += o.spans;
    }
}

/// True when the chunk must be sent whole.
pub fn keep_chunk(chunk: &Trace<'_>) -> bool {
    if chunk.iter().any(|s| s.error != 0) {
        return true;
    }
    chunk
        .iter()
        .find_map(|s| s.metrics.get(SAMPLING_PRIORITY_KEY))
        .is_none_or(|p| *p > 0.0)
}

fn single_span_sampled(s: &crate::Span<'_>) -> bool {
    s.metrics.get(SINGLE_SPAN_SAMPLING_MECHANISM_KEY) == Some(&SINGLE_SPAN_SAMPLING_MECHANISM)
}

/// Removes P0 chunks (keeping their single-span-sampled spans) and says what went.
pub fn drop_p0s(traces: &mut Vec<Trace<'_>>) -> DroppedP0 {
    let mut dropped = DroppedP0::default();
    traces.retain_mut(|chunk| {
        if keep_chunk(chunk) {
            return true;
        }
        let before = chunk.len();
        chunk.retain(single_span_sampled);
        dropped.spans += (before - chunk.len()) as u64;
        if chunk.is_empty() {
            dropped.traces += 1;
            false
        } else {
            true
        }
    });
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Span;

    fn span(id: u64) -> Span<'static> {
        Span {
            span_id: id,
            trace_id: 1,
            ..Default::default()
        }
    }

    fn chunk(priority: Option<f64>, n: u64) -> Trace<'static> {
        let mut c: Trace<'static> = (1..=n).map(span).collect();
        if let Some(p) = priority {
            c[0].metrics.insert(SAMPLING_PRIORITY_KEY, p);
        }
        c
    }

    #[test]
    fn rules() {
        let mut with_error = chunk(Some(0.0), 3);
        with_error[2].error = 1;
        let mut single = chunk(Some(-1.0), 4);
        single[1]
            .metrics
            .insert(SINGLE_SPAN_SAMPLING_MECHANISM_KEY, 8.0);
        single[3]
            .metrics
            .insert(SINGLE_SPAN_SAMPLING_MECHANISM_KEY, 4.0);
        let mut second_carries = chunk(None, 2);
        second_carries[1].metrics.insert(SAMPLING_PRIORITY_KEY, 0.0);
        let mut traces = vec![
            chunk(None, 2),      // kept: no priority
            chunk(Some(1.0), 2), // kept
            chunk(Some(2.0), 1), // kept
            chunk(Some(0.0), 3), // dropped: 3 spans
            with_error,          // kept: error
            single,              // reduced to span 2: 3 spans dropped
            second_carries,      // priority found on the 2nd span: dropped (2 spans)
        ];
        let d = drop_p0s(&mut traces);
        assert_eq!(
            d,
            DroppedP0 {
                traces: 2,
                spans: 8
            }
        );
        let sizes: Vec<usize> = traces.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1, 3, 1]);
        assert_eq!(traces[4][0].span_id, 2);
        let mut sum = DroppedP0::default();
        sum += d;
        sum += d;
        assert_eq!(sum.spans, 16);
    }
}

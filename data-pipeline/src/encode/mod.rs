//! Encoding the span model as msgpack trace payloads (`/v0.4/traces`, `/v0.5/traces`), and
//! [`split_payload`] for a payload the agent refused as too large (HTTP 413).
//!
//! v0.4 carries everything in the model. v0.5 carries span links and span events as JSON in meta
//! (`_dd.span_links`, `events`) and drops `meta_struct`: see [`v05`].

use crate::error::{Error, ErrorKind, Result};
use crate::span::{Trace, Traces, SAMPLING_PRIORITY_KEY};

pub mod v04;
pub mod v05;
mod wire;

pub use crate::format::Format;

/// Entry points for `benches/codec.rs` only (not a stable API): they run this module's
/// primitive writer so the bench can compare it with `rmp::encode`.
#[doc(hidden)]
pub mod bench_hooks {
    use super::wire;
    use crate::error::Result;

    /// Writes `(str, uint, float64)` triples.
    pub fn write_triples(items: &[(&str, u64, f64)], out: &mut Vec<u8>) -> Result<()> {
        for (s, u, f) in items {
            wire::str(out, s)?;
            wire::uint(out, *u);
            wire::f64(out, *f);
        }
        Ok(())
    }
}

/// Encodes `traces` as a payload of `format`, appending to `out` (which is not cleared).
pub fn encode(format: Format, traces: &[Trace<'_>], out: &mut Vec<u8>) -> Result<()> {
    match format {
        Format::V04 => v04::encode(traces, out),
        Format::V05 => v05::encode(traces, out),
    }
}

/// Encodes `traces` as a payload of `format` into a new vector.
pub fn encode_to_vec(format: Format, traces: &[Trace<'_>]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode(format, traces, &mut out)?;
    Ok(out)
}

/// A first reservation for the output: a guess from the span count alone. Summing the string
/// lengths of every span for an exact size cost more than the vector's doubling growth it saves
/// (about a third of the v0.4 encode's instructions on the bench payload), so this stays cheap;
/// untouched reserved pages cost no memory.
pub(crate) fn initial_capacity(traces: &[Trace<'_>], bytes_per_span: usize) -> usize {
    let spans: usize = traces.iter().map(Vec::len).sum();
    16 + 5 * traces.len() + spans.saturating_mul(bytes_per_span)
}

/// Splits a payload of `format` into two payloads of the same format holding about half of its
/// spans each, for resending after the agent answered 413 (payload too large).
///
/// Traces (chunks) are kept whole and in order: the first payload gets the leading traces up to
/// half of the spans, the second the rest. A payload of a single trace is split between its
/// spans into two chunks of the same trace, the way a tracer's partial flush sends a trace in
/// pieces; then, if the first chunk carries the sampling priority (`_sampling_priority_v1`) and
/// the second does not, it is copied onto the second chunk's first span so that the agent keeps
/// honouring the tracer's decision for it. Nothing else is changed: no normalization, no
/// truncation; spans are decoded and re-encoded (v0.4 stays lossless; v0.5 is rebuilt with a
/// fresh string table per half). Use [`crate::decode::count_traces`] on each half for the
/// `X-Datadog-Trace-Count` header.
///
/// Errors: [`ErrorKind::Decode`] for a malformed payload, [`ErrorKind::InvalidArgument`] when
/// the payload holds fewer than two spans (nothing to split).
pub fn split_payload(format: Format, bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut first = crate::decode::decode(format, bytes)?;
    let second = split_traces(&mut first)?;
    Ok((
        encode_to_vec(format, &first)?,
        encode_to_vec(format, &second)?,
    ))
}

/// Moves about half of the spans of `traces` (by whole traces when there are several) into the
/// returned traces; see [`split_payload`].
pub fn split_traces<'a>(traces: &mut Traces<'a>) -> Result<Traces<'a>> {
    // Empty chunks carry nothing: leave them in the first half.
    let total: usize = traces.iter().map(Vec::len).sum();
    let non_empty = traces.iter().filter(|t| !t.is_empty()).count();
    if total < 2 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("cannot split a payload of {total} span(s)"),
        ));
    }
    if non_empty >= 2 {
        // The first index at which the leading traces reach half of the spans, leaving at least
        // one non-empty trace on each side.
        let mut acc = 0;
        let mut cut = traces.len();
        let mut seen_non_empty = 0;
        for (i, t) in traces.iter().enumerate() {
            if !t.is_empty() {
                seen_non_empty += 1;
            }
            acc += t.len();
            if seen_non_empty >= 1 && (2 * acc >= total || seen_non_empty == non_empty - 1) {
                cut = i + 1;
                break;
            }
        }
        return Ok(traces.split_off(cut));
    }
    // One non-empty trace: split its spans.
    let Some(trace) = traces.iter_mut().find(|t| !t.is_empty()) else {
        return Err(Error::new(ErrorKind::Internal, "no trace to split"));
    };
    let mut tail = trace.split_off(trace.len() / 2);
    let priority = trace
        .iter()
        .find_map(|s| s.metrics.get(SAMPLING_PRIORITY_KEY).copied());
    let tail_has_priority = tail
        .iter()
        .any(|s| s.metrics.contains_key(SAMPLING_PRIORITY_KEY));
    if let (Some(p), false, Some(first)) = (priority, tail_has_priority, tail.first_mut()) {
        first.metrics.push(SAMPLING_PRIORITY_KEY, p);
    }
    Ok(vec![tail])
}

#[cfg(test)]
mod tests;

//! The v0.4 encoder: everything in the model travels (see [`crate::decode::v04`] for the layout).
//!
//! Each span map always holds `service, name, resource, trace_id, span_id, parent_id, start,
//! duration, error, type, meta, metrics`; `meta_struct`, `span_links` and `span_events` are
//! written only when non-empty. Links always carry `trace_id, trace_id_high, span_id` and, when
//! set, `attributes, tracestate, flags`; events `time_unix_nano, name` and, when set,
//! `attributes`. Map entries are written in model order, duplicates included (the model keeps
//! them; a reader keeps the last, as the agent does). Integers use their smallest encoding.

use super::wire;
use crate::error::Result;
use crate::span::{AttributeScalar, AttributeValue, Span, SpanEvent, SpanLink, Trace};

/// Encodes `traces` as a v0.4 payload, appending to `out`.
pub fn encode(traces: &[Trace<'_>], out: &mut Vec<u8>) -> Result<()> {
    out.reserve(super::initial_capacity(traces, 512));
    wire::array_len(out, traces.len())?;
    for trace in traces {
        // Through `encode_trace` (its other caller is the exporter's chunk-by-chunk path), so
        // that `encode_span` keeps one caller: with two, it was compiled differently and this
        // encoder took 1.8% more instructions (callgrind, bench payload).
        encode_trace(trace, out)?;
    }
    Ok(())
}

/// Encodes one trace (an array of spans) as in a v0.4 payload, appending to `out`: the body of a
/// payload built chunk by chunk (the exporter's processing path, which writes the payload's
/// array header once the traces are counted).
pub(crate) fn encode_trace(trace: &Trace<'_>, out: &mut Vec<u8>) -> Result<()> {
    wire::array_len(out, trace.len())?;
    for span in trace {
        encode_span(span, out)?;
    }
    Ok(())
}

/// Field names with their msgpack `fixstr` header, written as one slice.
macro_rules! key {
    ($name:literal) => {{
        const K: &[u8] = {
            const S: &str = $name;
            const N: usize = S.len();
            const fn build() -> [u8; N + 1] {
                let mut a = [0u8; N + 1];
                a[0] = 0xa0 | N as u8;
                let b = S.as_bytes();
                let mut i = 0;
                while i < N {
                    a[i + 1] = b[i];
                    i += 1;
                }
                a
            }
            const A: [u8; N + 1] = build();
            &A
        };
        K
    }};
}

/// Encodes one span as a v0.4 map.
pub(crate) fn encode_span(span: &Span<'_>, out: &mut Vec<u8>) -> Result<()> {
    let n = 12
        + usize::from(!span.meta_struct.is_empty())
        + usize::from(!span.span_links.is_empty())
        + usize::from(!span.span_events.is_empty());
    out.push(0x80 | n as u8);
    out.extend_from_slice(key!("service"));
    wire::str(out, &span.service)?;
    out.extend_from_slice(key!("name"));
    wire::str(out, &span.name)?;
    out.extend_from_slice(key!("resource"));
    wire::str(out, &span.resource)?;
    out.extend_from_slice(key!("trace_id"));
    wire::uint(out, span.trace_id);
    out.extend_from_slice(key!("span_id"));
    wire::uint(out, span.span_id);
    out.extend_from_slice(key!("parent_id"));
    wire::uint(out, span.parent_id);
    out.extend_from_slice(key!("start"));
    wire::int(out, span.start);
    out.extend_from_slice(key!("duration"));
    wire::int(out, span.duration);
    out.extend_from_slice(key!("error"));
    wire::int(out, span.error as i64);
    out.extend_from_slice(key!("type"));
    wire::str(out, &span.r#type)?;

    out.extend_from_slice(key!("meta"));
    wire::map_len(out, span.meta.len())?;
    for (k, v) in span.meta.as_slice() {
        wire::str(out, k)?;
        wire::str(out, v)?;
    }
    out.extend_from_slice(key!("metrics"));
    wire::map_len(out, span.metrics.len())?;
    for (k, v) in span.metrics.as_slice() {
        wire::str(out, k)?;
        wire::f64(out, *v);
    }
    if !span.meta_struct.is_empty() {
        out.extend_from_slice(key!("meta_struct"));
        wire::map_len(out, span.meta_struct.len())?;
        for (k, v) in span.meta_struct.as_slice() {
            wire::str(out, k)?;
            wire::bin(out, v)?;
        }
    }
    if !span.span_links.is_empty() {
        out.extend_from_slice(key!("span_links"));
        wire::array_len(out, span.span_links.len())?;
        for link in &span.span_links {
            encode_link(link, out)?;
        }
    }
    if !span.span_events.is_empty() {
        out.extend_from_slice(key!("span_events"));
        wire::array_len(out, span.span_events.len())?;
        for event in &span.span_events {
            encode_event(event, out)?;
        }
    }
    Ok(())
}

fn encode_link(link: &SpanLink<'_>, out: &mut Vec<u8>) -> Result<()> {
    let n = 3
        + usize::from(!link.attributes.is_empty())
        + usize::from(!link.tracestate.is_empty())
        + usize::from(link.flags != 0);
    out.push(0x80 | n as u8);
    out.extend_from_slice(key!("trace_id"));
    wire::uint(out, link.trace_id);
    out.extend_from_slice(key!("trace_id_high"));
    wire::uint(out, link.trace_id_high);
    out.extend_from_slice(key!("span_id"));
    wire::uint(out, link.span_id);
    if !link.attributes.is_empty() {
        out.extend_from_slice(key!("attributes"));
        wire::map_len(out, link.attributes.len())?;
        for (k, v) in link.attributes.as_slice() {
            wire::str(out, k)?;
            wire::str(out, v)?;
        }
    }
    if !link.tracestate.is_empty() {
        out.extend_from_slice(key!("tracestate"));
        wire::str(out, &link.tracestate)?;
    }
    if link.flags != 0 {
        out.extend_from_slice(key!("flags"));
        wire::uint(out, u64::from(link.flags));
    }
    Ok(())
}

fn encode_event(event: &SpanEvent<'_>, out: &mut Vec<u8>) -> Result<()> {
    let n = 2 + usize::from(!event.attributes.is_empty());
    out.push(0x80 | n as u8);
    out.extend_from_slice(key!("time_unix_nano"));
    wire::uint(out, event.time_unix_nano);
    out.extend_from_slice(key!("name"));
    wire::str(out, &event.name)?;
    if !event.attributes.is_empty() {
        out.extend_from_slice(key!("attributes"));
        wire::map_len(out, event.attributes.len())?;
        for (k, v) in event.attributes.as_slice() {
            wire::str(out, k)?;
            match v {
                AttributeValue::Scalar(s) => encode_scalar(s, out)?,
                AttributeValue::Array(values) => {
                    out.push(0x82);
                    out.extend_from_slice(key!("type"));
                    out.push(4);
                    out.extend_from_slice(key!("array_value"));
                    out.push(0x81);
                    out.extend_from_slice(key!("values"));
                    wire::array_len(out, values.len())?;
                    for s in values {
                        encode_scalar(s, out)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn encode_scalar(s: &AttributeScalar<'_>, out: &mut Vec<u8>) -> Result<()> {
    out.push(0x82);
    out.extend_from_slice(key!("type"));
    match s {
        AttributeScalar::String(v) => {
            out.push(0);
            out.extend_from_slice(key!("string_value"));
            wire::str(out, v)?;
        }
        AttributeScalar::Bool(v) => {
            out.push(1);
            out.extend_from_slice(key!("bool_value"));
            wire::bool(out, *v);
        }
        AttributeScalar::Int(v) => {
            out.push(2);
            out.extend_from_slice(key!("int_value"));
            wire::int(out, *v);
        }
        AttributeScalar::Double(v) => {
            out.push(3);
            out.extend_from_slice(key!("double_value"));
            wire::f64(out, *v);
        }
    }
    Ok(())
}

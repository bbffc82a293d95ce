//! The v0.4 decoder: an array of traces, a trace an array of spans, a span a map of named fields.
//!
//! Span fields: `service, name, resource, type` (string), `trace_id, span_id, parent_id` (uint64),
//! `start, duration` (int64 ns), `error` (int32), `meta` (string -> string), `metrics`
//! (string -> float64), `meta_struct` (string -> bin holding a msgpack document), `span_links`
//! (array of maps `{trace_id, trace_id_high, span_id, attributes: string -> string, tracestate,
//! flags}`), `span_events` (array of maps `{time_unix_nano, name, attributes}`, an attribute being
//! a map `{type: 0 string | 1 bool | 2 int | 3 double | 4 array, string_value | bool_value |
//! int_value | double_value | array_value: {values: [attribute, ...]}}`). Unknown keys are skipped.

use super::reader::{presize, Reader};
use crate::error::Result;
use crate::span::{
    AttributeScalar, AttributeValue, Map, Span, SpanEvent, SpanLink, Str, Trace, Traces,
};
use std::borrow::Cow;

/// Smallest possible encoding of a span (an empty map), for pre-sizing.
const MIN_SPAN_BYTES: usize = 1;

/// Decodes a v0.4 payload, borrowing strings from `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Traces<'_>> {
    let mut r = Reader::new(bytes);
    let n = r.array_len("payload (array of traces)")?;
    let mut traces: Traces<'_> = Vec::with_capacity(presize(n, r.remaining(), 1));
    for _ in 0..n {
        traces.push(decode_trace(&mut r)?);
    }
    Ok(traces)
}

/// The number of traces in a v0.4 payload (its top-level array header).
pub fn count_traces(bytes: &[u8]) -> Result<usize> {
    Reader::new(bytes).array_len("payload (array of traces)")
}

/// Decodes one trace (also for [`super::stream`]).
pub(crate) fn decode_trace<'a>(r: &mut Reader<'a>) -> Result<Trace<'a>> {
    let n = r.array_len("trace (array of spans)")?;
    let mut trace = Vec::with_capacity(presize(n, r.remaining(), MIN_SPAN_BYTES));
    for _ in 0..n {
        if r.eat_nil() {
            continue;
        }
        trace.push(decode_span(r)?);
    }
    Ok(trace)
}

/// Decodes one v0.4 span map.
pub(crate) fn decode_span<'a>(r: &mut Reader<'a>) -> Result<Span<'a>> {
    let n = r.map_len("span (map)")?;
    let mut span = Span::default();
    for _ in 0..n {
        let key = r.key("span field name")?;
        // Dispatch on the length first: one compare picks the few candidates of that length.
        match key.len() {
            4 => match key {
                b"name" => span.name = r.str("span name")?,
                b"meta" => span.meta = decode_str_map(r, "span meta")?,
                b"type" => span.r#type = r.str("span type")?,
                _ => r.skip("unknown span field")?,
            },
            5 => match key {
                b"start" => span.start = r.i64("span start")?,
                b"error" => span.error = r.i32("span error")?,
                _ => r.skip("unknown span field")?,
            },
            7 => match key {
                b"service" => span.service = r.str("span service")?,
                b"span_id" => span.span_id = r.u64("span span_id")?,
                b"metrics" => span.metrics = decode_metrics(r)?,
                _ => r.skip("unknown span field")?,
            },
            8 => match key {
                b"resource" => span.resource = r.str("span resource")?,
                b"trace_id" => span.trace_id = r.u64("span trace_id")?,
                b"duration" => span.duration = r.i64("span duration")?,
                _ => r.skip("unknown span field")?,
            },
            9 if key == b"parent_id" => span.parent_id = r.u64("span parent_id")?,
            10 if key == b"span_links" => span.span_links = decode_links(r)?,
            11 => match key {
                b"meta_struct" => span.meta_struct = decode_meta_struct(r)?,
                b"span_events" => span.span_events = decode_events(r)?,
                _ => r.skip("unknown span field")?,
            },
            _ => r.skip("unknown span field")?,
        }
    }
    Ok(span)
}

/// A string -> string map (meta, link attributes).
fn decode_str_map<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<Map<'a, Str<'a>>> {
    let n = r.map_len(what)?;
    // A pair takes at least two bytes.
    let mut m = Map::with_capacity(presize(n, r.remaining(), 2));
    for _ in 0..n {
        let k = r.str(what)?;
        let v = r.str(what)?;
        m.push(k, v);
    }
    Ok(m)
}

fn decode_metrics<'a>(r: &mut Reader<'a>) -> Result<Map<'a, f64>> {
    let n = r.map_len("span metrics")?;
    let mut m = Map::with_capacity(presize(n, r.remaining(), 2));
    for _ in 0..n {
        let k = r.str("span metrics key")?;
        let v = r.f64("span metrics value")?;
        m.push(k, v);
    }
    Ok(m)
}

fn decode_meta_struct<'a>(r: &mut Reader<'a>) -> Result<Map<'a, Cow<'a, [u8]>>> {
    let n = r.map_len("span meta_struct")?;
    let mut m = Map::with_capacity(presize(n, r.remaining(), 2));
    for _ in 0..n {
        let k = r.str("span meta_struct key")?;
        let v = r.bin("span meta_struct value")?;
        m.push(k, Cow::Borrowed(v));
    }
    Ok(m)
}

fn decode_links<'a>(r: &mut Reader<'a>) -> Result<Vec<SpanLink<'a>>> {
    let n = r.array_len("span_links")?;
    let mut links = Vec::with_capacity(presize(n, r.remaining(), 1));
    for _ in 0..n {
        if r.eat_nil() {
            continue;
        }
        let fields = r.map_len("span link")?;
        let mut link = SpanLink::default();
        for _ in 0..fields {
            match r.key("span link field name")? {
                b"trace_id" => link.trace_id = r.u64("span link trace_id")?,
                b"trace_id_high" => link.trace_id_high = r.u64("span link trace_id_high")?,
                b"span_id" => link.span_id = r.u64("span link span_id")?,
                b"attributes" => link.attributes = decode_str_map(r, "span link attributes")?,
                b"tracestate" => link.tracestate = r.str("span link tracestate")?,
                b"flags" => link.flags = r.u32_lenient("span link flags")?,
                _ => r.skip("unknown span link field")?,
            }
        }
        links.push(link);
    }
    Ok(links)
}

fn decode_events<'a>(r: &mut Reader<'a>) -> Result<Vec<SpanEvent<'a>>> {
    let n = r.array_len("span_events")?;
    let mut events = Vec::with_capacity(presize(n, r.remaining(), 1));
    for _ in 0..n {
        if r.eat_nil() {
            continue;
        }
        let fields = r.map_len("span event")?;
        let mut event = SpanEvent::default();
        for _ in 0..fields {
            match r.key("span event field name")? {
                b"time_unix_nano" => event.time_unix_nano = r.u64("span event time_unix_nano")?,
                b"name" => event.name = r.str("span event name")?,
                b"attributes" => event.attributes = decode_event_attributes(r)?,
                _ => r.skip("unknown span event field")?,
            }
        }
        events.push(event);
    }
    Ok(events)
}

fn decode_event_attributes<'a>(r: &mut Reader<'a>) -> Result<Map<'a, AttributeValue<'a>>> {
    let n = r.map_len("span event attributes")?;
    let mut m = Map::with_capacity(presize(n, r.remaining(), 2));
    for _ in 0..n {
        let k = r.str("span event attribute key")?;
        if r.eat_nil() {
            continue;
        }
        match decode_any_value(r, true)? {
            Some(Any::Scalar(s)) => m.push(k, AttributeValue::Scalar(s)),
            Some(Any::Array(a)) => m.push(k, AttributeValue::Array(a)),
            None => {}
        }
    }
    Ok(m)
}

enum Any<'a> {
    Scalar(AttributeScalar<'a>),
    Array(Vec<AttributeScalar<'a>>),
}

/// One tagged attribute value `{type, <kind>_value}`. As in the agent, `type` decides (absent:
/// 0, string) and a value of another kind is ignored; an unknown type, or an array nested in an
/// array (which the model cannot hold and OpenTelemetry does not allow), yields `None` (dropped).
fn decode_any_value<'a>(r: &mut Reader<'a>, allow_array: bool) -> Result<Option<Any<'a>>> {
    let fields = r.map_len("span event attribute value")?;
    let mut ty: i64 = 0;
    let mut string = Str::default();
    let mut boolean = false;
    let mut int = 0i64;
    let mut double = 0f64;
    let mut array = Vec::new();
    for _ in 0..fields {
        match r.key("span event attribute value field name")? {
            b"type" => ty = r.i64("span event attribute type")?,
            b"string_value" => string = r.str("span event attribute string_value")?,
            b"bool_value" => boolean = r.bool("span event attribute bool_value")?,
            b"int_value" => int = r.i64("span event attribute int_value")?,
            b"double_value" => double = r.f64("span event attribute double_value")?,
            b"array_value" if allow_array => array = decode_array_value(r)?,
            _ => r.skip("unknown span event attribute value field")?,
        }
    }
    Ok(match ty {
        0 => Some(Any::Scalar(AttributeScalar::String(string))),
        1 => Some(Any::Scalar(AttributeScalar::Bool(boolean))),
        2 => Some(Any::Scalar(AttributeScalar::Int(int))),
        3 => Some(Any::Scalar(AttributeScalar::Double(double))),
        4 if allow_array => Some(Any::Array(array)),
        _ => None,
    })
}

/// `array_value`: `{values: [attribute value, ...]}` (nil: empty).
fn decode_array_value<'a>(r: &mut Reader<'a>) -> Result<Vec<AttributeScalar<'a>>> {
    let fields = r.map_len("span event attribute array_value")?;
    let mut values = Vec::new();
    for _ in 0..fields {
        match r.key("span event attribute array_value field name")? {
            b"values" => {
                let n = r.array_len("span event attribute array values")?;
                values = Vec::with_capacity(presize(n, r.remaining(), 1));
                for _ in 0..n {
                    if r.eat_nil() {
                        continue;
                    }
                    if let Some(Any::Scalar(s)) = decode_any_value(r, false)? {
                        values.push(s);
                    }
                }
            }
            _ => r.skip("unknown span event attribute array_value field")?,
        }
    }
    Ok(values)
}

//! The v0.5 decoder: `[string_table, traces]`, a trace an array of spans, a span an array of
//! exactly 12 elements: `service, name, resource` (table index), `trace_id, span_id, parent_id,
//! start, duration, error`, `meta` (index -> index), `metrics` (index -> float), `type` (index).
//!
//! An index outside the string table is a decode error, as in the agent. Table strings follow
//! the same rules as v0.4 strings (str or bin, nil is "", invalid UTF-8 repaired); spans share
//! them (a borrowed string is copied by reference, a repaired one is cloned).

use super::reader::{presize, shape_error, Reader};
use crate::error::Result;
use crate::span::{Map, Span, Str, Trace, Traces};

/// Number of elements of a v0.5 span.
pub(crate) const SPAN_FIELDS: usize = 12;

/// Smallest possible encoding of a v0.5 span: header + 12 one-byte elements.
const MIN_SPAN_BYTES: usize = 1 + SPAN_FIELDS;

/// Decodes a v0.5 payload, borrowing strings from `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Traces<'_>> {
    let mut r = Reader::new(bytes);
    read_outer_header(&mut r)?;
    let table = read_string_table(&mut r)?;
    let n = r.array_len("payload traces (array of traces)")?;
    let mut traces: Traces<'_> = Vec::with_capacity(presize(n, r.remaining(), 1));
    for _ in 0..n {
        traces.push(decode_trace(&mut r, &table)?);
    }
    Ok(traces)
}

/// The number of traces in a v0.5 payload; the string table is skipped by its length prefixes.
pub fn count_traces(bytes: &[u8]) -> Result<usize> {
    let mut r = Reader::new(bytes);
    read_outer_header(&mut r)?;
    let n = r.array_len("string table (array of strings)")?;
    for _ in 0..n {
        r.skip_str("string table entry")?;
    }
    r.array_len("payload traces (array of traces)")
}

fn read_outer_header(r: &mut Reader<'_>) -> Result<()> {
    let at = r.pos();
    let n = r.array_len("payload ([string_table, traces])")?;
    if n != 2 {
        return Err(shape_error(
            at,
            format_args!("v0.5 payload must be an array of 2 elements, found {n}"),
        ));
    }
    Ok(())
}

fn read_string_table<'a>(r: &mut Reader<'a>) -> Result<Vec<Str<'a>>> {
    let n = r.array_len("string table (array of strings)")?;
    let mut table = Vec::with_capacity(presize(n, r.remaining(), 1));
    for _ in 0..n {
        table.push(r.str("string table entry")?);
    }
    Ok(table)
}

fn decode_trace<'a>(r: &mut Reader<'a>, table: &[Str<'a>]) -> Result<Trace<'a>> {
    let n = r.array_len("trace (array of spans)")?;
    let mut trace = Vec::with_capacity(presize(n, r.remaining(), MIN_SPAN_BYTES));
    for _ in 0..n {
        trace.push(decode_span(r, table)?);
    }
    Ok(trace)
}

#[inline(always)]
fn string<'a>(r: &mut Reader<'a>, table: &[Str<'a>], what: &'static str) -> Result<Str<'a>> {
    let at = r.pos();
    let i = r.index(what)?;
    match table.get(i) {
        Some(s) => Ok(s.clone()),
        None => Err(bad_index(at, what, i, table.len())),
    }
}

#[cold]
#[inline(never)]
fn bad_index(at: usize, what: &str, i: usize, len: usize) -> crate::Error {
    shape_error(
        at,
        format_args!("{what}: string table index {i} out of range (table has {len} strings)"),
    )
}

fn decode_span<'a>(r: &mut Reader<'a>, table: &[Str<'a>]) -> Result<Span<'a>> {
    let at = r.pos();
    let n = r.array_len("span (array of 12)")?;
    if n != SPAN_FIELDS {
        return Err(shape_error(
            at,
            format_args!("v0.5 span must be an array of {SPAN_FIELDS} elements, found {n}"),
        ));
    }
    let service = string(r, table, "span service")?;
    let name = string(r, table, "span name")?;
    let resource = string(r, table, "span resource")?;
    let trace_id = r.u64("span trace_id")?;
    let span_id = r.u64("span span_id")?;
    let parent_id = r.u64("span parent_id")?;
    let start = r.i64("span start")?;
    let duration = r.i64("span duration")?;
    let error = r.i32("span error")?;

    let n = r.map_len("span meta")?;
    let mut meta = Map::with_capacity(presize(n, r.remaining(), 2));
    for _ in 0..n {
        let k = string(r, table, "span meta key")?;
        let v = string(r, table, "span meta value")?;
        meta.push(k, v);
    }
    let n = r.map_len("span metrics")?;
    let mut metrics = Map::with_capacity(presize(n, r.remaining(), 2));
    for _ in 0..n {
        let k = string(r, table, "span metrics key")?;
        let v = r.f64("span metrics value")?;
        metrics.push(k, v);
    }
    let r#type = string(r, table, "span type")?;
    Ok(Span {
        service,
        name,
        resource,
        r#type,
        trace_id,
        span_id,
        parent_id,
        start,
        duration,
        error,
        meta,
        metrics,
        ..Default::default()
    })
}

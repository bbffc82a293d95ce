//! The v0.5 encoder: `[string_table, traces]` with 12-element spans (see
//! [`crate::decode::v05`]).
//!
//! The string table is built while the spans are written: string 0 is "", each distinct string
//! gets the next index, found again through a hash table of indices (foldhash; span strings are
//! borrowed, never copied). The spans are written to a scratch buffer first, because the table
//! precedes them on the wire.
//!
//! What v0.5 cannot carry, and what happens to it (as libdatadog does):
//! - `span_links` become meta `_dd.span_links`: a JSON array of `{"trace_id": 32 lowercase hex
//!   digits (high then low 64 bits), "span_id": 16 hex digits, "tracestate"?, "attributes"?:
//!   {..}, "flags"?: n}`, optional members only when non-empty/non-zero, `flags` without the
//!   "flags set" bit 31 (the shape of the agent's `MarshalLinks`);
//! - `span_events` become meta `events`: a JSON array of `{"time_unix_nano": n, "name": s,
//!   "attributes"?: {key: value}}` with natural JSON values (string, bool, integer, number or
//!   null for a non-finite double, arrays of those), the shape of the agent's `MarshalEvents`;
//! - either replaces a meta entry of the same key the span already had;
//! - `meta_struct` is dropped: v0.5 meta is string -> string and the agent has no convention to
//!   rebuild it from a v0.5 payload. Use v0.4 when it matters (e.g. AppSec/IAST data). Each
//!   encode that drops some logs it once at debug level.

use super::wire;
use crate::error::{Error, ErrorKind, Result};
use crate::span::{AttributeScalar, AttributeValue, Span, SpanEvent, SpanLink, Trace};
use hashbrown::HashTable;
use std::borrow::Cow;
use std::hash::BuildHasher;

/// Meta key that carries span links in formats without a links field.
pub const SPAN_LINKS_META_KEY: &str = "_dd.span_links";
/// Meta key that carries span events in formats without an events field.
pub const SPAN_EVENTS_META_KEY: &str = "events";

/// Bit 31 of a link's `flags`: "flags were set" (v0.4 only; masked off in the JSON form).
const LINK_FLAGS_SET: u32 = 1 << 31;

/// The string table being built: distinct strings in first-seen order, and the same already
/// msgpack-encoded.
///
/// The hash table stores only indices into `strings` (4 bytes a slot) and each string is hashed
/// once per lookup with foldhash: on the bench payload this halved the interning cost compared
/// with a `HashMap<Cow<str>, u32>` and its entry API.
struct Interner<'t> {
    hasher: foldhash::fast::RandomState,
    index: HashTable<u32>,
    strings: Vec<Cow<'t, str>>,
    table: Vec<u8>,
}

impl<'t> Interner<'t> {
    fn new(expected_strings: usize) -> Self {
        let mut i = Interner {
            hasher: Default::default(),
            index: HashTable::with_capacity(expected_strings),
            strings: Vec::with_capacity(expected_strings),
            table: Vec::with_capacity(expected_strings * 16),
        };
        // String 0 is "" (the agent and tracers rely on it for absent strings).
        let h = i.hasher.hash_one("");
        // Cannot fail: the table is empty.
        let _ = i.insert(h, Cow::Borrowed(""));
        i
    }

    /// The index of `s`, looked up by its hash `h`.
    #[inline(always)]
    fn find(&self, h: u64, s: &str) -> Option<u32> {
        let strings = &self.strings;
        self.index
            .find(h, |&i| strings.get(i as usize).is_some_and(|t| t == s))
            .copied()
    }

    #[inline(never)]
    fn insert(&mut self, h: u64, s: Cow<'t, str>) -> Result<u32> {
        let i = u32::try_from(self.strings.len())
            .map_err(|_| Error::new(ErrorKind::Encode, "v0.5 string table exceeds 2^32 strings"))?;
        wire::str(&mut self.table, &s)?;
        self.strings.push(s);
        let (strings, hasher) = (&self.strings, &self.hasher);
        self.index.insert_unique(h, i, |&j| {
            strings
                .get(j as usize)
                .map_or(0, |t| hasher.hash_one(t.as_ref()))
        });
        Ok(i)
    }

    /// The index of a string borrowed from the traces being encoded.
    #[inline(always)]
    fn idx(&mut self, s: &'t str) -> Result<u32> {
        let h = self.hasher.hash_one(s);
        match self.find(h, s) {
            Some(i) => Ok(i),
            None => self.insert(h, Cow::Borrowed(s)),
        }
    }

    /// The index of a string built during encoding (JSON of links and events).
    fn idx_owned(&mut self, s: String) -> Result<u32> {
        let h = self.hasher.hash_one(s.as_str());
        match self.find(h, &s) {
            Some(i) => Ok(i),
            None => self.insert(h, Cow::Owned(s)),
        }
    }

    fn count(&self) -> usize {
        self.strings.len()
    }
}

/// Encodes `traces` as a v0.5 payload, appending to `out`.
pub fn encode(traces: &[Trace<'_>], out: &mut Vec<u8>) -> Result<()> {
    let spans: usize = traces.iter().map(Vec::len).sum();
    let mut strings = Interner::new(256 + spans * 4);
    let mut body = Vec::with_capacity(super::initial_capacity(traces, 160));
    let mut dropped_meta_struct = 0usize;
    wire::array_len(&mut body, traces.len())?;
    for trace in traces {
        wire::array_len(&mut body, trace.len())?;
        for span in trace {
            if !span.meta_struct.is_empty() {
                dropped_meta_struct += 1;
            }
            encode_span(span, &mut strings, &mut body)?;
        }
    }
    if dropped_meta_struct > 0 {
        log::debug!(
            "v0.5 cannot carry meta_struct: dropped it from {dropped_meta_struct} span(s); use v0.4 to keep it"
        );
    }
    out.reserve(5 + 5 + strings.table.len() + body.len());
    out.push(0x92);
    wire::array_len(out, strings.count())?;
    out.extend_from_slice(&strings.table);
    out.extend_from_slice(&body);
    Ok(())
}

fn encode_span<'t>(span: &'t Span<'_>, s: &mut Interner<'t>, out: &mut Vec<u8>) -> Result<()> {
    out.push(0x9c); // fixarray of 12
    wire::uint(out, s.idx(&span.service)?.into());
    wire::uint(out, s.idx(&span.name)?.into());
    wire::uint(out, s.idx(&span.resource)?.into());
    wire::uint(out, span.trace_id);
    wire::uint(out, span.span_id);
    wire::uint(out, span.parent_id);
    wire::int(out, span.start);
    wire::int(out, span.duration);
    wire::int(out, span.error as i64);
    if span.span_links.is_empty() && span.span_events.is_empty() {
        wire::map_len(out, span.meta.len())?;
        for (k, v) in span.meta.as_slice() {
            wire::uint(out, s.idx(k)?.into());
            wire::uint(out, s.idx(v)?.into());
        }
    } else {
        encode_meta_with_json(span, s, out)?;
    }
    wire::map_len(out, span.metrics.len())?;
    for (k, v) in span.metrics.as_slice() {
        wire::uint(out, s.idx(k)?.into());
        wire::f64(out, *v);
    }
    wire::uint(out, s.idx(&span.r#type)?.into());
    Ok(())
}

/// Meta plus the JSON forms of the span's links and events (replacing same-key entries).
fn encode_meta_with_json<'t>(
    span: &'t Span<'_>,
    s: &mut Interner<'t>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let links = (!span.span_links.is_empty()).then(|| links_json(&span.span_links));
    let events = (!span.span_events.is_empty()).then(|| events_json(&span.span_events));
    let replaced = |k: &str| {
        (links.is_some() && k == SPAN_LINKS_META_KEY)
            || (events.is_some() && k == SPAN_EVENTS_META_KEY)
    };
    let kept = span.meta.iter().filter(|(k, _)| !replaced(k)).count();
    wire::map_len(
        out,
        kept + usize::from(links.is_some()) + usize::from(events.is_some()),
    )?;
    for (k, v) in span.meta.as_slice() {
        if !replaced(k) {
            wire::uint(out, s.idx(k)?.into());
            wire::uint(out, s.idx(v)?.into());
        }
    }
    for (key, json) in [(SPAN_LINKS_META_KEY, links), (SPAN_EVENTS_META_KEY, events)] {
        if let Some(json) = json {
            wire::uint(out, s.idx(key)?.into());
            wire::uint(out, s.idx_owned(json?)?.into());
        }
    }
    Ok(())
}

fn json_err(e: serde_json::Error) -> Error {
    Error::new(ErrorKind::Encode, format!("JSON encoding failed: {e}"))
}

/// Appends a JSON string literal.
fn json_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    serde_json::to_writer(out, s).map_err(json_err)
}

/// The `_dd.span_links` JSON for `links`.
pub(crate) fn links_json(links: &[SpanLink<'_>]) -> Result<String> {
    let mut j = Vec::with_capacity(96 * links.len());
    j.push(b'[');
    for (i, l) in links.iter().enumerate() {
        if i > 0 {
            j.push(b',');
        }
        j.extend_from_slice(
            format!(
                "{{\"trace_id\":\"{:016x}{:016x}\",\"span_id\":\"{:016x}\"",
                l.trace_id_high, l.trace_id, l.span_id
            )
            .as_bytes(),
        );
        if !l.tracestate.is_empty() {
            j.extend_from_slice(b",\"tracestate\":");
            json_str(&mut j, &l.tracestate)?;
        }
        if !l.attributes.is_empty() {
            j.extend_from_slice(b",\"attributes\":{");
            for (n, (k, v)) in l.attributes.iter().enumerate() {
                if n > 0 {
                    j.push(b',');
                }
                json_str(&mut j, k)?;
                j.push(b':');
                json_str(&mut j, v)?;
            }
            j.push(b'}');
        }
        if l.flags != 0 {
            j.extend_from_slice(format!(",\"flags\":{}", l.flags & !LINK_FLAGS_SET).as_bytes());
        }
        j.push(b'}');
    }
    j.push(b']');
    String::from_utf8(j).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))
}

fn json_scalar(j: &mut Vec<u8>, s: &AttributeScalar<'_>) -> Result<()> {
    match s {
        AttributeScalar::String(v) => json_str(j, v),
        AttributeScalar::Bool(v) => {
            j.extend_from_slice(if *v { b"true" } else { b"false" });
            Ok(())
        }
        AttributeScalar::Int(v) => {
            j.extend_from_slice(v.to_string().as_bytes());
            Ok(())
        }
        // serde_json writes non-finite floats as null.
        AttributeScalar::Double(v) => serde_json::to_writer(j, v).map_err(json_err),
    }
}

/// The `events` JSON for `events`.
pub(crate) fn events_json(events: &[SpanEvent<'_>]) -> Result<String> {
    let mut j = Vec::with_capacity(64 * events.len());
    j.push(b'[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            j.push(b',');
        }
        j.extend_from_slice(
            format!("{{\"time_unix_nano\":{},\"name\":", e.time_unix_nano).as_bytes(),
        );
        json_str(&mut j, &e.name)?;
        if !e.attributes.is_empty() {
            j.extend_from_slice(b",\"attributes\":{");
            for (n, (k, v)) in e.attributes.iter().enumerate() {
                if n > 0 {
                    j.push(b',');
                }
                json_str(&mut j, k)?;
                j.push(b':');
                match v {
                    AttributeValue::Scalar(s) => json_scalar(&mut j, s)?,
                    AttributeValue::Array(a) => {
                        j.push(b'[');
                        for (m, s) in a.iter().enumerate() {
                            if m > 0 {
                                j.push(b',');
                            }
                            json_scalar(&mut j, s)?;
                        }
                        j.push(b']');
                    }
                }
            }
            j.push(b'}');
        }
        j.push(b'}');
    }
    j.push(b']');
    String::from_utf8(j).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))
}

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
///
/// Tried without gain (callgrind, v0.5 encode of the bench's `realistic` payload): slots holding
/// the string's place in `table` instead of an index into `strings` (+3M instructions); `idx`
/// out of line (53.5M -> 65.4M); comparing 8-16 byte strings as two words instead of `memcmp`
/// (49.4M -> 57.9M: `HashTable::find` stopped being inlined). Interning by pointer identity does
/// not apply to decoded v0.4 input: every occurrence of a string is its own copy in the buffer.
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

    /// The index of a string built during encoding (JSON of links and events), copied if new.
    fn idx_copied(&mut self, s: &str) -> Result<u32> {
        let h = self.hasher.hash_one(s);
        match self.find(h, s) {
            Some(i) => Ok(i),
            None => self.insert(h, Cow::Owned(s.to_owned())),
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
    let mut json = String::new();
    wire::array_len(&mut body, traces.len())?;
    for trace in traces {
        wire::array_len(&mut body, trace.len())?;
        for span in trace {
            if !span.meta_struct.is_empty() {
                dropped_meta_struct += 1;
            }
            encode_span(span, &mut strings, &mut json, &mut body)?;
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

fn encode_span<'t>(
    span: &'t Span<'_>,
    s: &mut Interner<'t>,
    json: &mut String,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.push(0x9c); // fixarray of 12
    wire::index(out, s.idx(&span.service)?);
    wire::index(out, s.idx(&span.name)?);
    wire::index(out, s.idx(&span.resource)?);
    wire::uint(out, span.trace_id);
    wire::uint(out, span.span_id);
    wire::uint(out, span.parent_id);
    wire::int(out, span.start);
    wire::int(out, span.duration);
    wire::int(out, span.error as i64);
    if span.span_links.is_empty() && span.span_events.is_empty() {
        wire::map_len(out, span.meta.len())?;
        for (k, v) in span.meta.as_slice() {
            wire::index(out, s.idx(k)?);
            wire::index(out, s.idx(v)?);
        }
    } else {
        encode_meta_with_json(span, s, json, out)?;
    }
    wire::map_len(out, span.metrics.len())?;
    for (k, v) in span.metrics.as_slice() {
        wire::index(out, s.idx(k)?);
        wire::f64(out, *v);
    }
    wire::index(out, s.idx(&span.r#type)?);
    Ok(())
}

/// Meta plus the JSON forms of the span's links and events (replacing same-key entries). The
/// JSON is written into `json`, a buffer reused from span to span.
fn encode_meta_with_json<'t>(
    span: &'t Span<'_>,
    s: &mut Interner<'t>,
    json: &mut String,
    out: &mut Vec<u8>,
) -> Result<()> {
    let has_links = !span.span_links.is_empty();
    let has_events = !span.span_events.is_empty();
    let replaced = |k: &str| {
        (has_links && k == SPAN_LINKS_META_KEY) || (has_events && k == SPAN_EVENTS_META_KEY)
    };
    let kept = span.meta.iter().filter(|(k, _)| !replaced(k)).count();
    wire::map_len(out, kept + usize::from(has_links) + usize::from(has_events))?;
    for (k, v) in span.meta.as_slice() {
        if !replaced(k) {
            wire::index(out, s.idx(k)?);
            wire::index(out, s.idx(v)?);
        }
    }
    if has_links {
        json.clear();
        write_links_json(json, &span.span_links);
        wire::index(out, s.idx(SPAN_LINKS_META_KEY)?);
        wire::index(out, s.idx_copied(json)?);
    }
    if has_events {
        json.clear();
        write_events_json(json, &span.span_events);
        wire::index(out, s.idx(SPAN_EVENTS_META_KEY)?);
        wire::index(out, s.idx_copied(json)?);
    }
    Ok(())
}

// The JSON of links and events is written by hand into a `String` reused from span to span.
// Against a fresh `Vec` per span filled with `format!`, `to_string` and `serde_json::to_writer`
// (then re-validated by `String::from_utf8` and copied into an owned string), this took the v0.5
// encode of the bench's `links` payload from 148.2M to 101.5M instructions (callgrind, whole
// v0.4 -> v0.5 conversion 266.9M -> 219.6M): `format!` and the growing vectors' reallocations
// were a third of the encoder there. The output is byte-identical to serde_json's (tested below).

/// Appends a JSON string literal: strings without a byte to escape are copied between quotes;
/// the rare others go through serde_json (which escapes exactly `"`, `\`, control characters).
fn json_str(out: &mut String, s: &str) {
    if needs_json_escape(s.as_bytes()) {
        // Serializing a `str` cannot fail; the fallback keeps the output valid JSON regardless.
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
    } else {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// True if `s` holds a byte JSON must escape: `"`, `\` or a control character. Branch-free
/// within 32-byte chunks so the compiler can vectorize it.
#[inline]
fn needs_json_escape(s: &[u8]) -> bool {
    s.chunks(32).any(|c| {
        c.iter().fold(false, |acc, &b| {
            acc | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    })
}

/// Appends `v` as 16 lowercase hex digits.
fn json_hex16(out: &mut String, v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(16);
    for i in 0..16 {
        out.push(char::from(DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize]));
    }
}

/// Appends an integer in decimal.
fn json_int(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Appends a float as serde_json writes it (with the same `zmij`): shortest round-trip form,
/// `null` if not finite.
fn json_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        out.push_str(zmij::Buffer::new().format_finite(v));
    } else {
        out.push_str("null");
    }
}

/// Appends the `_dd.span_links` JSON for `links`.
fn write_links_json(j: &mut String, links: &[SpanLink<'_>]) {
    j.push('[');
    for (i, l) in links.iter().enumerate() {
        if i > 0 {
            j.push(',');
        }
        j.push_str("{\"trace_id\":\"");
        json_hex16(j, l.trace_id_high);
        json_hex16(j, l.trace_id);
        j.push_str("\",\"span_id\":\"");
        json_hex16(j, l.span_id);
        j.push('"');
        if !l.tracestate.is_empty() {
            j.push_str(",\"tracestate\":");
            json_str(j, &l.tracestate);
        }
        if !l.attributes.is_empty() {
            j.push_str(",\"attributes\":{");
            for (n, (k, v)) in l.attributes.iter().enumerate() {
                if n > 0 {
                    j.push(',');
                }
                json_str(j, k);
                j.push(':');
                json_str(j, v);
            }
            j.push('}');
        }
        if l.flags != 0 {
            j.push_str(",\"flags\":");
            json_int(j, l.flags & !LINK_FLAGS_SET);
        }
        j.push('}');
    }
    j.push(']');
}

/// The `_dd.span_links` JSON for `links` (tests).
#[cfg(test)]
pub(crate) fn links_json(links: &[SpanLink<'_>]) -> String {
    let mut j = String::new();
    write_links_json(&mut j, links);
    j
}

fn json_scalar(j: &mut String, s: &AttributeScalar<'_>) {
    match s {
        AttributeScalar::String(v) => json_str(j, v),
        AttributeScalar::Bool(v) => j.push_str(if *v { "true" } else { "false" }),
        AttributeScalar::Int(v) => json_int(j, *v),
        AttributeScalar::Double(v) => json_f64(j, *v),
    }
}

/// Appends the `events` JSON for `events`.
fn write_events_json(j: &mut String, events: &[SpanEvent<'_>]) {
    j.push('[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            j.push(',');
        }
        j.push_str("{\"time_unix_nano\":");
        json_int(j, e.time_unix_nano);
        j.push_str(",\"name\":");
        json_str(j, &e.name);
        if !e.attributes.is_empty() {
            j.push_str(",\"attributes\":{");
            for (n, (k, v)) in e.attributes.iter().enumerate() {
                if n > 0 {
                    j.push(',');
                }
                json_str(j, k);
                j.push(':');
                match v {
                    AttributeValue::Scalar(s) => json_scalar(j, s),
                    AttributeValue::Array(a) => {
                        j.push('[');
                        for (m, s) in a.iter().enumerate() {
                            if m > 0 {
                                j.push(',');
                            }
                            json_scalar(j, s);
                        }
                        j.push(']');
                    }
                }
            }
            j.push('}');
        }
        j.push('}');
    }
    j.push(']');
}

/// The `events` JSON for `events` (tests).
#[cfg(test)]
pub(crate) fn events_json(events: &[SpanEvent<'_>]) -> String {
    let mut j = String::new();
    write_events_json(&mut j, events);
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_helpers_match_serde_json_and_format() {
        for s in [
            "",
            "plain",
            "quote\"d",
            "back\\slash",
            "ctl\u{1}\n\t\u{1f}",
            "del\u{7f}",
            "é ü 日本 \u{fffd} 🦀",
            "</script>",
        ] {
            let mut out = String::new();
            json_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
        for v in [0u64, 1, 0xa, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            let mut out = String::new();
            json_hex16(&mut out, v);
            assert_eq!(out, format!("{v:016x}"));
        }
        for v in [0i64, -1, 42, i64::MIN, i64::MAX] {
            let mut out = String::new();
            json_int(&mut out, v);
            assert_eq!(out, v.to_string());
        }
        for v in [
            0.0,
            -0.0,
            0.5,
            1.0,
            -3.25,
            1e21,
            1.5e-7,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let mut out = String::new();
            json_f64(&mut out, v);
            assert_eq!(out, serde_json::to_string(&v).unwrap(), "{v}");
        }
    }
}

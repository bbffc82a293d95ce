//! The one span model every stage and destination uses.
//!
//! Strings are [`Str`]s and binary values `Cow<[u8]>`s: a decoder borrows them from the input
//! buffer (no copy, no allocation per string), a stage that changes one (normalization,
//! obfuscation) replaces it with an owned value, and spans built through the API own theirs
//! (`Span<'static>`). `Str` is two words where `Cow<str>` is three: spans and meta entries are a
//! third smaller, which is most of the memory every stage streams through (see [`crate::text`]).
//!
//! Maps (`meta`, `metrics`, `meta_struct`, link and event attributes) are [`Map`]s: a vector of pairs
//! in wire order. Spans carry ~10-40 tags, where a linear scan beats hashing and decoding/encoding is a
//! plain push/iterate. A decoder pushes pairs as they come without looking for duplicates; lookups see
//! the *last* occurrence of a key (as the agent does when it decodes into a Go map), `insert` replaces
//! that occurrence, and `remove` removes every occurrence.
//!
//! The trace id is 128 bits: the low half is `trace_id`, the high half travels in meta `_dd.p.tid`
//! (16 lowercase hex digits) as on the wire; see [`Span::trace_id_128`].

use std::borrow::Cow;

pub use crate::text::Str;
/// Binary data that is borrowed from the input buffer or owned.
pub type Bin<'a> = Cow<'a, [u8]>;

/// Meta key holding the upper 64 bits of a 128-bit trace id as 16 lowercase hex digits.
pub const TRACE_ID_HIGH_KEY: &str = "_dd.p.tid";
/// Metric key holding the sampling priority of the chunk.
pub const SAMPLING_PRIORITY_KEY: &str = "_sampling_priority_v1";

/// An ordered map with string keys, stored as pairs in insertion (wire) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Map<'a, V> {
    entries: Vec<(Str<'a>, V)>,
}

impl<'a, V> Default for Map<'a, V> {
    fn default() -> Self {
        Map {
            entries: Vec::new(),
        }
    }
}

impl<'a, V> Map<'a, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Map {
            entries: Vec::with_capacity(n),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries
            .iter()
            .rfind(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v)
    }

    /// A mutable reference to the value for `key`, if present.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.entries
            .iter_mut()
            .rfind(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v)
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, replacing (in place) an existing entry; returns the old value.
    pub fn insert(&mut self, key: impl Into<Str<'a>>, value: V) -> Option<V> {
        let key = key.into();
        match self.entries.iter_mut().rfind(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Appends without looking for an existing key (decoders); a duplicate shadows earlier ones.
    pub fn push(&mut self, key: impl Into<Str<'a>>, value: V) {
        self.entries.push((key.into(), value));
    }

    /// Removes every occurrence of `key`, returning the value that was visible (the last).
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let mut found = None;
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].0.as_ref() == key {
                found = Some(self.entries.remove(i).1);
            } else {
                i += 1;
            }
        }
        found
    }

    /// Keeps the entries for which `f` returns true.
    pub fn retain(&mut self, mut f: impl FnMut(&Str<'a>, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| f(k, v))
    }

    /// Iterates over the entries in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Str<'a>, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Iterates mutably over the entries in order.
    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (&mut Str<'a>, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (k, v))
    }

    /// The entries as a slice of pairs.
    pub fn as_slice(&self) -> &[(Str<'a>, V)] {
        &self.entries
    }

    /// Mutable access to the underlying pairs (for stages that rewrite keys and values in bulk).
    pub fn entries_mut(&mut self) -> &mut Vec<(Str<'a>, V)> {
        &mut self.entries
    }
}

impl<'a, V> Map<'a, V> {
    /// Converts every key to an owned string and every value with `f`, detaching the map from the
    /// buffer it borrowed from.
    pub fn into_owned_with<W>(self, mut f: impl FnMut(V) -> W) -> Map<'static, W> {
        Map {
            entries: self
                .entries
                .into_iter()
                .map(|(k, v)| (k.into_static(), f(v)))
                .collect(),
        }
    }
}

impl<'a, K: Into<Str<'a>>, V> FromIterator<(K, V)> for Map<'a, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Map {
            entries: iter.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }
}

impl<'a, V> IntoIterator for Map<'a, V> {
    type Item = (Str<'a>, V);
    type IntoIter = std::vec::IntoIter<(Str<'a>, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// A link from a span to a span of another (or the same) trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanLink<'a> {
    /// Low 64 bits of the linked trace id.
    pub trace_id: u64,
    /// High 64 bits of the linked trace id (0 for 64-bit ids).
    pub trace_id_high: u64,
    /// The linked span id.
    pub span_id: u64,
    /// Link attributes.
    pub attributes: Map<'a, Str<'a>>,
    /// W3C tracestate of the linked context ("" when absent).
    pub tracestate: Str<'a>,
    /// W3C trace flags; as on the v0.4 wire, bit 31 set means "flags were set".
    pub flags: u32,
}

/// A scalar attribute value of a span event.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeScalar<'a> {
    /// A string.
    String(Str<'a>),
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A double.
    Double(f64),
}

/// An attribute value of a span event: a scalar or an array of scalars.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue<'a> {
    /// One scalar value.
    Scalar(AttributeScalar<'a>),
    /// An array of scalar values.
    Array(Vec<AttributeScalar<'a>>),
}

/// A timestamped event inside a span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanEvent<'a> {
    /// Event time, nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// Event name.
    pub name: Str<'a>,
    /// Event attributes.
    pub attributes: Map<'a, AttributeValue<'a>>,
}

/// One span, as every stage and destination sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Span<'a> {
    /// Service name.
    pub service: Str<'a>,
    /// Operation name.
    pub name: Str<'a>,
    /// Resource (e.g. the SQL query or the HTTP route).
    pub resource: Str<'a>,
    /// Span type (`web`, `sql`, `redis`, ...); "" when absent.
    pub r#type: Str<'a>,
    /// Low 64 bits of the trace id (the high half is meta `_dd.p.tid`).
    pub trace_id: u64,
    /// Span id.
    pub span_id: u64,
    /// Parent span id; 0 for a root span.
    pub parent_id: u64,
    /// Start, nanoseconds since the Unix epoch.
    pub start: i64,
    /// Duration in nanoseconds.
    pub duration: i64,
    /// Non-zero when the span is an error.
    pub error: i32,
    /// String tags.
    pub meta: Map<'a, Str<'a>>,
    /// Numeric tags.
    pub metrics: Map<'a, f64>,
    /// Structured tags: each value is a msgpack document.
    pub meta_struct: Map<'a, Bin<'a>>,
    /// Span links.
    pub span_links: Vec<SpanLink<'a>>,
    /// Span events.
    pub span_events: Vec<SpanEvent<'a>>,
}

/// A trace chunk: spans of one trace sent together.
pub type Trace<'a> = Vec<Span<'a>>;

/// What a tracer sends in one request: a list of trace chunks.
pub type Traces<'a> = Vec<Trace<'a>>;

impl SpanLink<'_> {
    /// The same link with every string owned (`'static`), detached from the decoded buffer.
    pub fn into_owned(self) -> SpanLink<'static> {
        SpanLink {
            trace_id: self.trace_id,
            trace_id_high: self.trace_id_high,
            span_id: self.span_id,
            attributes: self.attributes.into_owned_with(Str::into_static),
            tracestate: self.tracestate.into_static(),
            flags: self.flags,
        }
    }
}

impl AttributeScalar<'_> {
    /// The same scalar with its string (if any) owned.
    pub fn into_owned(self) -> AttributeScalar<'static> {
        match self {
            AttributeScalar::String(s) => AttributeScalar::String(s.into_static()),
            AttributeScalar::Bool(b) => AttributeScalar::Bool(b),
            AttributeScalar::Int(i) => AttributeScalar::Int(i),
            AttributeScalar::Double(d) => AttributeScalar::Double(d),
        }
    }
}

impl AttributeValue<'_> {
    /// The same value with every string owned.
    pub fn into_owned(self) -> AttributeValue<'static> {
        match self {
            AttributeValue::Scalar(s) => AttributeValue::Scalar(s.into_owned()),
            AttributeValue::Array(a) => {
                AttributeValue::Array(a.into_iter().map(AttributeScalar::into_owned).collect())
            }
        }
    }
}

impl SpanEvent<'_> {
    /// The same event with every string owned (`'static`).
    pub fn into_owned(self) -> SpanEvent<'static> {
        SpanEvent {
            time_unix_nano: self.time_unix_nano,
            name: self.name.into_static(),
            attributes: self.attributes.into_owned_with(AttributeValue::into_owned),
        }
    }
}

impl Span<'_> {
    /// The same span with every string and binary value owned (`'static`), detached from the
    /// buffer it was decoded from (e.g. to keep it after the caller's buffer is gone).
    pub fn into_owned(self) -> Span<'static> {
        Span {
            service: self.service.into_static(),
            name: self.name.into_static(),
            resource: self.resource.into_static(),
            r#type: self.r#type.into_static(),
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_id: self.parent_id,
            start: self.start,
            duration: self.duration,
            error: self.error,
            meta: self.meta.into_owned_with(Str::into_static),
            metrics: self.metrics.into_owned_with(|v| v),
            meta_struct: self
                .meta_struct
                .into_owned_with(|b| Cow::Owned(b.into_owned())),
            span_links: self
                .span_links
                .into_iter()
                .map(SpanLink::into_owned)
                .collect(),
            span_events: self
                .span_events
                .into_iter()
                .map(SpanEvent::into_owned)
                .collect(),
        }
    }
}

/// Detaches decoded traces from the buffer they borrow from (see [`Span::into_owned`]).
pub fn traces_into_owned(traces: Traces<'_>) -> Traces<'static> {
    traces
        .into_iter()
        .map(|t| t.into_iter().map(Span::into_owned).collect())
        .collect()
}

impl<'a> Span<'a> {
    /// The full 128-bit trace id: `_dd.p.tid` (if present and valid hex) as the high half.
    pub fn trace_id_128(&self) -> u128 {
        let high = self
            .meta
            .get(TRACE_ID_HIGH_KEY)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        (u128::from(high) << 64) | u128::from(self.trace_id)
    }

    /// Sets the 128-bit trace id: the low half in `trace_id`, the high half in meta `_dd.p.tid`
    /// (removed when the high half is 0).
    pub fn set_trace_id_128(&mut self, id: u128) {
        self.trace_id = id as u64;
        let high = (id >> 64) as u64;
        if high == 0 {
            self.meta.remove(TRACE_ID_HIGH_KEY);
        } else {
            self.meta
                .insert(TRACE_ID_HIGH_KEY, Str::owned(format!("{high:016x}")));
        }
    }

    /// The sampling priority of the span's chunk, if the span carries it.
    pub fn sampling_priority(&self) -> Option<f64> {
        self.metrics.get(SAMPLING_PRIORITY_KEY).copied()
    }

    /// End time in nanoseconds (start + duration, saturating).
    pub fn end(&self) -> i64 {
        self.start.saturating_add(self.duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_model_sizes() {
        // What normalization streams through per span: the span and its meta entries. A meta
        // entry is two `Str`s (32 bytes, half a cache line); `Cow<str>` made it 48.
        assert_eq!(std::mem::size_of::<(Str<'_>, Str<'_>)>(), 32);
        assert_eq!(std::mem::size_of::<(Str<'_>, f64)>(), 24);
        assert!(
            std::mem::size_of::<Span<'_>>() <= 232,
            "{}",
            std::mem::size_of::<Span<'_>>()
        );
    }

    #[test]
    fn map_insert_replaces_in_place() {
        let mut m: Map<'_, Str<'_>> = Map::new();
        m.insert("a", "1".into());
        m.insert("b", "2".into());
        assert_eq!(m.insert("a", "3".into()), Some(Str::borrowed("1")));
        let keys: Vec<_> = m.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(m.get("a").map(|v| v.as_ref()), Some("3"));
        assert_eq!(m.remove("b").as_deref(), Some("2"));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn duplicates_last_wins() {
        let mut m: Map<'_, f64> = Map::new();
        m.push("a", 1.0);
        m.push("b", 2.0);
        m.push("a", 3.0);
        assert_eq!(m.get("a"), Some(&3.0));
        m.insert("a", 4.0);
        assert_eq!(m.get("a"), Some(&4.0));
        assert_eq!(m.as_slice()[0].1, 1.0);
        assert_eq!(m.remove("a"), Some(4.0));
        assert!(!m.contains_key("a"));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn into_owned_keeps_everything() {
        let buf = String::from("svc");
        let mut s = Span {
            service: Str::borrowed(buf.as_str()),
            ..Default::default()
        };
        s.meta.push(Str::borrowed(buf.as_str()), Str::borrowed("v"));
        s.meta_struct.push("ms", Cow::Borrowed(&b"\x80"[..]));
        s.span_links.push(SpanLink {
            tracestate: Str::borrowed(buf.as_str()),
            ..Default::default()
        });
        s.span_events.push(SpanEvent {
            name: Str::borrowed(buf.as_str()),
            attributes: [(
                Cow::Borrowed("a"),
                AttributeValue::Array(vec![AttributeScalar::String(Str::borrowed("x"))]),
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        });
        let expected = s.clone();
        let owned: Span<'static> = s.into_owned();
        assert_eq!(owned, expected);
        drop(expected);
        drop(buf);
        assert!(owned.service.is_owned());
        assert_eq!(owned.span_events[0].name, "svc");
        let traces = traces_into_owned(vec![vec![owned.clone()]]);
        assert_eq!(traces[0][0], owned);
    }

    #[test]
    fn trace_id_128_round_trips_through_meta() {
        let mut s = Span::default();
        let id = (0x0123_4567_89ab_cdefu128 << 64) | 42;
        s.set_trace_id_128(id);
        assert_eq!(s.trace_id, 42);
        assert_eq!(
            s.meta.get(TRACE_ID_HIGH_KEY).map(|v| v.as_ref()),
            Some("0123456789abcdef")
        );
        assert_eq!(s.trace_id_128(), id);
        s.set_trace_id_128(7);
        assert!(!s.meta.contains_key(TRACE_ID_HIGH_KEY));
        assert_eq!(s.trace_id_128(), 7);
    }
}

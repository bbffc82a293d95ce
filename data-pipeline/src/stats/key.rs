//! The aggregation key of a span: the fields the agent groups stats by
//! (agent: `BucketsAggregationKey`, `NewAggregationFromSpan`, `matchingPeerTags`).
//!
//! | field | from |
//! |---|---|
//! | service, name, resource | the span, normalized and obfuscated as the agent does for client stats ([`KeyNormalizer`]) |
//! | type | the span |
//! | span kind | meta `span.kind` (as sent; compared lowercase where it matters) |
//! | HTTP status code | metric `http.status_code` (cast), else meta `http.status_code` parsed as u32, else 0 |
//! | HTTP method | meta `http.method` |
//! | HTTP endpoint | meta `http.endpoint` if not empty, else `http.route` |
//! | gRPC status code | the first of [`GRPC_STATUS_KEYS`] present and not empty in meta: a number, or a code name (`StatusCode.` prefix dropped, any case); an unknown name gives "" without looking further. Else the first present in metrics. |
//! | synthetics | the chunk's origin (root span's `_dd.origin`) starts with `synthetics` |
//! | is trace root | `parent_id == 0` (Trilean true = 1 / false = 2) |
//! | peer tags | `client`/`producer`/`consumer` spans: `key:value` for each configured key present and not empty, in sorted key order, IP addresses quantized. `internal` or kind-less spans with `_dd.base_service` set: `_dd.base_service:value` (only when peer tags are configured at all). Others: none. |
//!
//! Differences with libdatadog's `libdd-trace-stats` 13 (the agent is followed here): libdatadog
//! also reads the OTel names `http.response.status_code` / `http.request.method`, keeps looking
//! at the next gRPC key when a value does not parse, refuses gRPC codes above 255 and
//! non-integer metric codes, and adds `_dd.svc_src` and additional metric tags to its key.

use crate::span::Span;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher};

use super::eligibility::{MetricsScan, ORIGIN_KEY};
use crate::normalize::{normalize_name, normalize_service, truncate_utf8, MAX_RESOURCE_LEN};
use crate::obfuscate::ip::quantize_peer_ip_addresses;
use crate::obfuscate::replace::replace_stats_group;
use crate::obfuscate::{ObfuscationConfig, Obfuscator};

/// Meta key of the span kind.
pub const SPAN_KIND_KEY: &str = "span.kind";
/// Meta/metric key of the HTTP status code.
pub const HTTP_STATUS_CODE_KEY: &str = "http.status_code";
/// Meta key of the HTTP method.
pub const HTTP_METHOD_KEY: &str = "http.method";
/// Meta key of the HTTP endpoint (preferred).
pub const HTTP_ENDPOINT_KEY: &str = "http.endpoint";
/// Meta key of the HTTP route (when there is no endpoint).
pub const HTTP_ROUTE_KEY: &str = "http.route";
/// Meta key of the base service (service override on internal spans).
pub const BASE_SERVICE_KEY: &str = "_dd.base_service";
/// The keys that may carry a gRPC status code, in the agent's order of preference.
pub const GRPC_STATUS_KEYS: [&str; 4] = [
    "rpc.grpc.status_code",
    "grpc.code",
    "rpc.grpc.status.code",
    "grpc.status.code",
];

/// Trilean values of `IsTraceRoot`.
pub mod trilean {
    /// Not set (the overflow key).
    pub const NOT_SET: u8 = 0;
    /// True.
    pub const TRUE: u8 = 1;
    /// False.
    pub const FALSE: u8 = 2;
}

/// The peer tag keys in force: the agent's `/info` list plus the configured extra ones,
/// deduplicated and sorted (agent: `preparePeerTags`).
///
/// Looked up for every meta key of every client/producer/consumer span, so the lookup is
/// filtered first by (first byte, length) in a bit table, which rejects almost every key that
/// is not a peer tag without comparing strings (a binary search over the ~30 keys of the
/// agent's list cost ~1 us per span in `benches/stats.rs`).
#[derive(Debug, Clone)]
pub struct PeerTagKeys {
    keys: Vec<String>,
    /// As `filter`, for the peer keys and the other meta keys [`MetaScan`] looks for: one
    /// table lookup rejects most meta keys of a span (a global length mask let most through,
    /// the ~30 peer keys covering most lengths).
    scan_filter: Box<[u64; 256]>,
    /// For each first byte, bit `n` set when a key of length `n` (n < 63; longer keys set bit
    /// 63) starts with that byte.
    filter: Box<[u64; 256]>,
    index: hashbrown::HashMap<String, usize, foldhash::fast::FixedState>,
}

impl Default for PeerTagKeys {
    fn default() -> Self {
        PeerTagKeys::new(std::iter::empty())
    }
}

impl PeerTagKeys {
    /// Builds the list from the agent's keys and extra ones.
    pub fn new<'k>(keys: impl IntoIterator<Item = &'k str>) -> PeerTagKeys {
        let mut keys: Vec<String> = keys
            .into_iter()
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut filter = Box::new([0u64; 256]);
        let mut index = hashbrown::HashMap::with_hasher(foldhash::fast::FixedState::with_seed(7));
        for (i, k) in keys.iter().enumerate() {
            filter[usize::from(k.as_bytes()[0])] |= len_bit(k.len());
            index.insert(k.clone(), i);
        }
        let mut scan_filter = filter.clone();
        for k in SCANNED_META_KEYS {
            scan_filter[usize::from(k.as_bytes()[0])] |= len_bit(k.len());
        }
        PeerTagKeys {
            keys,
            scan_filter,
            filter,
            index,
        }
    }

    /// The keys, sorted.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// True when no key is configured (peer tags are then off, `_dd.base_service` included).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The index of `key` (whose first byte is `first` and length bit `bit`) among the keys.
    #[inline]
    fn position(&self, key: &str, first: u8, bit: u64) -> Option<usize> {
        if self.filter[usize::from(first)] & bit == 0 {
            return None;
        }
        self.index.get(key).copied()
    }
}

/// Bit of a key length in a length mask (lengths >= 63 share bit 63).
#[inline]
pub(crate) const fn len_bit(len: usize) -> u64 {
    1u64 << if len < 63 { len } else { 63 }
}

/// The meta keys [`MetaScan`] looks for, peer keys aside.
const SCANNED_META_KEYS: [&str; 11] = [
    SPAN_KIND_KEY,
    HTTP_STATUS_CODE_KEY,
    HTTP_METHOD_KEY,
    HTTP_ENDPOINT_KEY,
    HTTP_ROUTE_KEY,
    BASE_SERVICE_KEY,
    ORIGIN_KEY,
    GRPC_STATUS_KEYS[0],
    GRPC_STATUS_KEYS[1],
    GRPC_STATUS_KEYS[2],
    GRPC_STATUS_KEYS[3],
];

/// What one pass over a span's meta found for the key (last occurrence wins).
#[derive(Debug, Clone, Default)]
pub(crate) struct MetaScan<'s> {
    /// Peer tag candidates (key index, value), sorted by key index, whatever the span kind
    /// (decided later): collected in the same pass so the meta is walked once.
    pub peers: SmallVec<[(usize, &'s str); 8]>,
    pub span_kind: &'s str,
    pub http_status_code: Option<&'s str>,
    pub http_method: &'s str,
    pub http_endpoint: &'s str,
    pub http_route: &'s str,
    pub grpc: [Option<&'s str>; 4],
    pub base_service: &'s str,
    /// `_dd.origin` (read for one-span chunks, whose root is the span).
    pub origin: &'s str,
}

impl<'s> MetaScan<'s> {
    #[inline]
    pub(crate) fn of(span: &'s Span<'_>, peer_keys: &PeerTagKeys) -> MetaScan<'s> {
        let mut m = MetaScan::default();
        for (k, v) in span.meta.iter() {
            let Some(&first) = k.as_bytes().first() else {
                continue;
            };
            let bit = len_bit(k.len());
            if peer_keys.scan_filter[usize::from(first)] & bit == 0 {
                continue;
            }
            let v: &'s str = v.as_ref();
            if let Some(i) = peer_keys.position(k, first, bit) {
                match m.peers.binary_search_by_key(&i, |(j, _)| *j) {
                    Ok(at) => m.peers[at].1 = v,
                    Err(at) => m.peers.insert(at, (i, v)),
                }
            }
            match first {
                b's' if k == SPAN_KIND_KEY => m.span_kind = v,
                b'h' => match k.as_ref() {
                    HTTP_STATUS_CODE_KEY => m.http_status_code = Some(v),
                    HTTP_METHOD_KEY => m.http_method = v,
                    HTTP_ENDPOINT_KEY => m.http_endpoint = v,
                    HTTP_ROUTE_KEY => m.http_route = v,
                    _ => {}
                },
                b'g' | b'r' => {
                    if let Some(i) = GRPC_STATUS_KEYS.iter().position(|g| *g == k) {
                        m.grpc[i] = Some(v);
                    }
                }
                b'_' => match k.as_ref() {
                    BASE_SERVICE_KEY => m.base_service = v,
                    ORIGIN_KEY => m.origin = v,
                    _ => {}
                },
                _ => {}
            }
        }
        m
    }
}

impl<'s> MetaScan<'s> {
    /// The HTTP endpoint of the key: `http.endpoint` if not empty, else `http.route`.
    #[inline]
    pub(crate) fn endpoint(&self) -> &'s str {
        if self.http_endpoint.is_empty() {
            self.http_route
        } else {
            self.http_endpoint
        }
    }
}

/// The [`trilean`] value of "the span is the trace root" (`parent_id == 0`).
#[inline]
pub(crate) fn trace_root(span: &Span<'_>) -> u8 {
    if span.parent_id == 0 {
        trilean::TRUE
    } else {
        trilean::FALSE
    }
}

/// Writes the identity bytes of the raw key of `span` (what [`KeyFields::from_span`] then
/// [`KeyFields::write_flat`] give, without building the [`KeyFields`]).
#[inline]
pub(crate) fn write_span_key(
    out: &mut Vec<u8>,
    span: &Span<'_>,
    metrics: &MetricsScan,
    meta: &MetaScan<'_>,
    synthetics: bool,
    peer_keys: &PeerTagKeys,
) {
    let mut w = FlatWriter::new(out);
    for s in [
        span.service.as_ref(),
        span.name.as_ref(),
        span.resource.as_ref(),
        span.r#type.as_ref(),
        meta.span_kind,
        meta.http_method,
        meta.endpoint(),
    ] {
        w.segment(s);
    }
    for_each_peer_tag(meta, peer_keys, |k, v| {
        w.segment(k);
        w.segment(&v);
    });
    w.finish(
        http_status_code(metrics, meta),
        grpc_status_code(metrics, meta),
        synthetics,
        trace_root(span),
    );
}

/// The agent's HTTP status code: metric first (cast to u32), else meta parsed as a decimal u32.
pub(crate) fn http_status_code(metrics: &MetricsScan, meta: &MetaScan<'_>) -> u32 {
    if let Some(c) = metrics.http_status_code {
        // Go's uint32(float64) for in-range values; saturating outside (NaN -> 0).
        return c as u32;
    }
    meta.http_status_code.map_or(0, parse_go_uint32)
}

/// Go's `strconv.ParseUint(s, 10, 32)`, 0 on error (no sign, no spaces).
fn parse_go_uint32(s: &str) -> u32 {
    if s.starts_with('+') {
        return 0;
    }
    s.parse().unwrap_or(0)
}

/// The gRPC status codes by name, upper case (Go's `code.Code_value` plus the agent's one-word
/// and `CANCELED` spellings).
const GRPC_CODE_NAMES: &[(&str, u64)] = &[
    ("OK", 0),
    ("CANCELLED", 1),
    ("CANCELED", 1),
    ("UNKNOWN", 2),
    ("INVALID_ARGUMENT", 3),
    ("INVALIDARGUMENT", 3),
    ("DEADLINE_EXCEEDED", 4),
    ("DEADLINEEXCEEDED", 4),
    ("NOT_FOUND", 5),
    ("NOTFOUND", 5),
    ("ALREADY_EXISTS", 6),
    ("ALREADYEXISTS", 6),
    ("PERMISSION_DENIED", 7),
    ("PERMISSIONDENIED", 7),
    ("RESOURCE_EXHAUSTED", 8),
    ("RESOURCEEXHAUSTED", 8),
    ("FAILED_PRECONDITION", 9),
    ("FAILEDPRECONDITION", 9),
    ("ABORTED", 10),
    ("OUT_OF_RANGE", 11),
    ("OUTOFRANGE", 11),
    ("UNIMPLEMENTED", 12),
    ("INTERNAL", 13),
    ("UNAVAILABLE", 14),
    ("DATA_LOSS", 15),
    ("DATALOSS", 15),
    ("UNAUTHENTICATED", 16),
];

/// The agent's gRPC status code (see the module table); `None` is the empty string.
pub(crate) fn grpc_status_code(metrics: &MetricsScan, meta: &MetaScan<'_>) -> Option<u64> {
    for v in meta.grpc.iter().flatten() {
        if v.is_empty() {
            continue;
        }
        if !v.starts_with('+') {
            if let Ok(c) = v.parse::<u32>() {
                return Some(u64::from(c));
            }
        }
        let name = v.strip_prefix("StatusCode.").unwrap_or(v);
        if name.len() > 24 {
            return None;
        }
        let upper = name.to_uppercase();
        return GRPC_CODE_NAMES
            .iter()
            .find(|(n, _)| *n == upper)
            .map(|(_, c)| *c);
    }
    // Go's uint64(float64): saturating here outside the range (NaN -> 0).
    metrics
        .grpc_status
        .iter()
        .flatten()
        .next()
        .map(|c| *c as u64)
}

/// Peer tags of a key: inline up to 4 (no allocation for the usual client span).
pub type PeerTags<'a> = SmallVec<[(&'a str, Cow<'a, str>); 4]>;

/// Every field of a key, borrowed from a span (raw) or after normalization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyFields<'a> {
    /// Service.
    pub service: Cow<'a, str>,
    /// Operation name.
    pub name: Cow<'a, str>,
    /// Resource.
    pub resource: Cow<'a, str>,
    /// Span type.
    pub r#type: Cow<'a, str>,
    /// `span.kind` as sent.
    pub span_kind: &'a str,
    /// HTTP method.
    pub http_method: &'a str,
    /// HTTP endpoint (or route).
    pub http_endpoint: &'a str,
    /// HTTP status code (0 = none).
    pub http_status_code: u32,
    /// gRPC status code (`None` = "").
    pub grpc_status_code: Option<u64>,
    /// Synthetic traffic.
    pub synthetics: bool,
    /// [`trilean`] value of `parent_id == 0`.
    pub is_trace_root: u8,
    /// Peer tags as (key, value), in sorted key order.
    pub peer_tags: PeerTags<'a>,
}

impl<'a> KeyFields<'a> {
    /// The raw key of `span` (before normalization) from the scans of its metrics and meta.
    #[inline]
    pub(crate) fn from_span<'s: 'a>(
        span: &'a Span<'_>,
        metrics: &MetricsScan,
        meta: &MetaScan<'s>,
        synthetics: bool,
        peer_keys: &'a PeerTagKeys,
    ) -> KeyFields<'a> {
        let http_endpoint = meta.endpoint();
        KeyFields {
            service: Cow::Borrowed(span.service.as_ref()),
            name: Cow::Borrowed(span.name.as_ref()),
            resource: Cow::Borrowed(span.resource.as_ref()),
            r#type: Cow::Borrowed(span.r#type.as_ref()),
            span_kind: meta.span_kind,
            http_method: meta.http_method,
            http_endpoint,
            http_status_code: http_status_code(metrics, meta),
            grpc_status_code: grpc_status_code(metrics, meta),
            synthetics,
            is_trace_root: trace_root(span),
            peer_tags: peer_tags(meta, peer_keys),
        }
    }

    /// The string fields in key order: service, name, resource, type, span kind, HTTP method,
    /// HTTP endpoint, then each peer tag's key and value.
    #[inline]
    fn for_each_segment(&self, mut f: impl FnMut(&str)) {
        f(&self.service);
        f(&self.name);
        f(&self.resource);
        f(&self.r#type);
        f(self.span_kind);
        f(self.http_method);
        f(self.http_endpoint);
        for (k, v) in &self.peer_tags {
            f(k);
            f(v);
        }
    }

    /// Writes the key's identity bytes into `out` (cleared first): each string field as its
    /// length (u32 LE) and bytes, then the fixed fields (see [`FIXED_TRAILER`]). Two keys are
    /// equal exactly when their bytes are, so a lookup hashes and compares one buffer (profiled:
    /// hashing and comparing field by field cost ~1000 instructions per span, the buffer ~300).
    #[inline]
    pub(crate) fn write_flat(&self, out: &mut Vec<u8>) {
        let mut w = FlatWriter::new(out);
        self.for_each_segment(|s| w.segment(s));
        w.finish(
            self.http_status_code,
            self.grpc_status_code,
            self.synthetics,
            self.is_trace_root,
        );
    }

    /// The hash used by the bucket tables (both raw and normalized keys): [`hash_flat`] of
    /// [`KeyFields::write_flat`]. The concentrator reuses one buffer instead.
    #[cfg(test)]
    pub(crate) fn hash_with(&self, state: &impl BuildHasher) -> u64 {
        let mut flat = Vec::new();
        self.write_flat(&mut flat);
        hash_flat(&flat, state)
    }
}

/// Writes a key's identity bytes: the string fields in key order ([`KeyFields`]: service, name,
/// resource, type, span kind, HTTP method, HTTP endpoint, then each peer tag's key and value),
/// then the fixed fields. The concentrator writes a span's key straight from the span this way,
/// and builds a [`KeyFields`] only for a key new to the bucket.
pub(crate) struct FlatWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> FlatWriter<'o> {
    /// Starts writing into `out` (cleared).
    #[inline]
    pub(crate) fn new(out: &'o mut Vec<u8>) -> Self {
        out.clear();
        FlatWriter { out }
    }

    /// The next string field.
    #[inline]
    pub(crate) fn segment(&mut self, s: &str) {
        // Keys come from spans whose strings are far below 4 GiB.
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    /// The fixed fields, last.
    #[inline]
    pub(crate) fn finish(
        self,
        http_status_code: u32,
        grpc_status_code: Option<u64>,
        synthetics: bool,
        is_trace_root: u8,
    ) {
        let mut trailer = [0u8; FIXED_TRAILER];
        trailer[..4].copy_from_slice(&http_status_code.to_le_bytes());
        if let Some(c) = grpc_status_code {
            trailer[4] = 1;
            trailer[5..13].copy_from_slice(&c.to_le_bytes());
        }
        trailer[13] = u8::from(synthetics);
        trailer[14] = is_trace_root;
        self.out.extend_from_slice(&trailer);
    }
}

/// Bytes of the fixed fields at the end of a key's identity bytes: HTTP status code (u32 LE),
/// gRPC code present (u8) and value (u64 LE), synthetics (u8), trace root trilean (u8).
const FIXED_TRAILER: usize = 15;

/// The hash of a key's identity bytes.
#[inline]
pub(crate) fn hash_flat(flat: &[u8], state: &impl BuildHasher) -> u64 {
    let mut h = state.build_hasher();
    h.write(flat);
    h.finish()
}

/// The peer tags of a span (see the module table). Allocates only for spans that have some.
fn peer_tags<'a, 's: 'a>(meta: &MetaScan<'s>, keys: &'a PeerTagKeys) -> PeerTags<'a> {
    let mut out = PeerTags::new();
    for_each_peer_tag(meta, keys, |k, v| out.push((k, v)));
    out
}

/// Calls `f` with each peer tag (key, value) of a span, in key order (see the module table).
#[inline]
pub(crate) fn for_each_peer_tag<'a, 's: 'a>(
    meta: &MetaScan<'s>,
    keys: &'a PeerTagKeys,
    mut f: impl FnMut(&'a str, Cow<'a, str>),
) {
    if keys.is_empty() {
        return;
    }
    let kind = meta.span_kind;
    let peer_kind = kind.eq_ignore_ascii_case("client")
        || kind.eq_ignore_ascii_case("producer")
        || kind.eq_ignore_ascii_case("consumer");
    if !peer_kind {
        if (kind.is_empty() || kind.eq_ignore_ascii_case("internal"))
            && !meta.base_service.is_empty()
        {
            f(BASE_SERVICE_KEY, Cow::Borrowed(meta.base_service));
        }
        return;
    }
    for &(i, v) in &meta.peers {
        if !v.is_empty() {
            f(keys.keys[i].as_str(), quantize_peer_value(v));
        }
    }
}

/// A key as stored in a bucket: its identity bytes ([`KeyFields::write_flat`]) in one
/// allocation, and the fixed fields again for reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedKey {
    /// The identity bytes.
    bytes: Box<[u8]>,
    /// HTTP status code.
    pub http_status_code: u32,
    /// gRPC status code.
    pub grpc_status_code: Option<u64>,
    /// Synthetics.
    pub synthetics: bool,
    /// [`trilean`] value.
    pub is_trace_root: u8,
}

const FIXED_SEGMENTS: usize = 7;

impl OwnedKey {
    /// Copies a key.
    pub fn from_fields(k: &KeyFields<'_>) -> OwnedKey {
        let mut flat = Vec::new();
        k.write_flat(&mut flat);
        OwnedKey::from_flat(&flat, k)
    }

    /// A key from its identity bytes `flat` (those of `k`).
    pub(crate) fn from_flat(flat: &[u8], k: &KeyFields<'_>) -> OwnedKey {
        OwnedKey {
            bytes: flat.into(),
            http_status_code: k.http_status_code,
            grpc_status_code: k.grpc_status_code,
            synthetics: k.synthetics,
            is_trace_root: k.is_trace_root,
        }
    }

    /// The overflow key: every string field `tracer_blocked_value`, one peer tag
    /// `tracer_blocked_value`, no status codes, trace root not set.
    pub fn overflow() -> OwnedKey {
        let b = super::TRACER_BLOCKED_VALUE;
        let mut k = KeyFields {
            service: b.into(),
            name: b.into(),
            resource: b.into(),
            r#type: b.into(),
            span_kind: b,
            http_method: b,
            http_endpoint: b,
            is_trace_root: trilean::NOT_SET,
            ..Default::default()
        };
        k.peer_tags.push((b, Cow::Borrowed("")));
        OwnedKey::from_fields(&k)
    }

    /// The string segments, in order.
    fn segments(&self) -> impl Iterator<Item = &str> {
        let strings = self.bytes.len().saturating_sub(FIXED_TRAILER);
        let mut at = 0usize;
        std::iter::from_fn(move || {
            let len = self.bytes.get(at..at + 4)?;
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let start = at + 4;
            let end = start.checked_add(len).filter(|e| *e <= strings)?;
            at = end;
            // Written from `&str` segments: always UTF-8.
            Some(std::str::from_utf8(&self.bytes[start..end]).unwrap_or(""))
        })
    }

    #[inline]
    fn seg(&self, i: usize) -> &str {
        self.segments().nth(i).unwrap_or("")
    }

    /// Service.
    pub fn service(&self) -> &str {
        self.seg(0)
    }
    /// Name.
    pub fn name(&self) -> &str {
        self.seg(1)
    }
    /// Resource.
    pub fn resource(&self) -> &str {
        self.seg(2)
    }
    /// Type.
    pub fn r#type(&self) -> &str {
        self.seg(3)
    }
    /// Span kind.
    pub fn span_kind(&self) -> &str {
        self.seg(4)
    }
    /// HTTP method.
    pub fn http_method(&self) -> &str {
        self.seg(5)
    }
    /// HTTP endpoint.
    pub fn http_endpoint(&self) -> &str {
        self.seg(6)
    }
    /// Peer tags as (key, value).
    pub fn peer_tags(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut rest = self.segments().skip(FIXED_SEGMENTS);
        std::iter::from_fn(move || Some((rest.next()?, rest.next()?)))
    }

    /// True when `k` has the same fields.
    pub fn matches(&self, k: &KeyFields<'_>) -> bool {
        let mut flat = Vec::new();
        k.write_flat(&mut flat);
        self.matches_flat(&flat)
    }

    /// True when `flat` are this key's identity bytes (the hot path: one compare).
    #[inline]
    pub(crate) fn matches_flat(&self, flat: &[u8]) -> bool {
        *self.bytes == *flat
    }

    /// Heap bytes held by this key.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// Turns a raw key into the key the agent would store for the same span: service and name
/// normalized ([`crate::normalize`]), an empty resource replaced by the name, the resource
/// truncated to 5000 bytes and obfuscated by span type (SQL, Redis:
/// [`Obfuscator::obfuscate_resource`]), as the agent does to client stats
/// (`normalizeStatsGroup`, `obfuscateStatsGroup`), then the obfuscator's tag replacement rules
/// on the resource and HTTP status code (`ReplaceStatsGroup`). The span type is left as sent (the agent
/// does not touch it in stats either).
#[derive(Debug, Clone)]
pub struct KeyNormalizer {
    lang: String,
    obfuscator: Obfuscator,
}

impl Default for KeyNormalizer {
    fn default() -> Self {
        KeyNormalizer::new("")
    }
}

/// Applies a borrowing string function to a `Cow` without copying a borrowed input.
fn map_cow<'a>(s: Cow<'a, str>, f: impl for<'x> Fn(&'x str) -> Cow<'x, str>) -> Cow<'a, str> {
    match s {
        Cow::Borrowed(b) => f(b),
        Cow::Owned(o) => Cow::Owned(f(&o).into_owned()),
    }
}

impl KeyNormalizer {
    /// A normalizer for a tracer language (for the fallback service `unnamed-<lang>-service`),
    /// obfuscating with the agent's default settings.
    pub fn new(lang: &str) -> KeyNormalizer {
        let obfuscator = Obfuscator::new(ObfuscationConfig::default())
            .or_else(|_| Obfuscator::new(ObfuscationConfig::disabled()));
        // The default configuration builds; `disabled()` is a fallback that cannot fail
        // either (no pattern to compile).
        let obfuscator = obfuscator.unwrap_or_else(|_| unreachable!("default obfuscator"));
        KeyNormalizer::with_obfuscator(lang, obfuscator)
    }

    /// A normalizer obfuscating resources with `obfuscator` (the user's settings: SQL mode,
    /// database system, digits, aliases ...), as the exporter builds it from its builder options.
    /// Only [`Obfuscator::obfuscate_resource`] is used, whatever the obfuscator's span options.
    pub fn with_obfuscator(lang: &str, obfuscator: Obfuscator) -> KeyNormalizer {
        KeyNormalizer {
            lang: lang.to_string(),
            obfuscator,
        }
    }

    /// The tracer language.
    pub fn lang(&self) -> &str {
        &self.lang
    }

    /// The obfuscator of resources.
    pub fn obfuscator(&self) -> &Obfuscator {
        &self.obfuscator
    }

    /// The normalized key; its strings stay borrowed from `raw` when unchanged.
    pub fn normalize<'a>(&self, raw: &KeyFields<'a>) -> KeyFields<'a> {
        let mut k = raw.clone();
        let lang = self.lang.as_str();
        k.service = map_cow(raw.service.clone(), |s| normalize_service(s, lang).0);
        k.name = map_cow(raw.name.clone(), |s| normalize_name(s).0);
        if k.resource.is_empty() {
            k.resource = k.name.clone();
        }
        k.resource = map_cow(k.resource, |s| {
            Cow::Borrowed(truncate_utf8(s, MAX_RESOURCE_LEN))
        });
        let typ = k.r#type.clone();
        k.resource = map_cow(k.resource, |s| {
            self.obfuscator.obfuscate_resource(&typ, s, "")
        });
        replace_stats_group(
            &mut k.resource,
            &mut k.http_status_code,
            &self.obfuscator.config().replace_tags,
        );
        k
    }
}

/// IP addresses in a peer tag value become `blocked-ip-address` (agent:
/// `QuantizePeerIPAddresses`).
fn quantize_peer_value(v: &str) -> Cow<'_, str> {
    // Every address the quantizer rewrites contains a digit or ':' (IPv4 or IPv6): skip the
    // parser for the usual names (`postgres`, `main`).
    if !v.bytes().any(|b| b.is_ascii_digit() || b == b':') {
        return Cow::Borrowed(v);
    }
    quantize_peer_ip_addresses(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_with(meta: &[(&str, &str)], metrics: &[(&str, f64)]) -> Span<'static> {
        let mut s = Span {
            service: "svc".into(),
            name: "op".into(),
            resource: "res".into(),
            parent_id: 7,
            ..Default::default()
        };
        for (k, v) in meta {
            s.meta.push(k.to_string(), v.to_string().into());
        }
        for (k, v) in metrics {
            s.metrics.push(k.to_string(), *v);
        }
        s
    }

    fn key_of<'a>(s: &'a Span<'_>, peers: &'a PeerTagKeys) -> KeyFields<'a> {
        KeyFields::from_span(
            s,
            &MetricsScan::of(s),
            &MetaScan::of(s, peers),
            false,
            peers,
        )
    }

    #[test]
    fn http_fields() {
        let p = PeerTagKeys::default();
        let s = span_with(
            &[
                ("http.status_code", "404"),
                ("http.method", "GET"),
                ("http.route", "/users/{id}"),
            ],
            &[],
        );
        let k = key_of(&s, &p);
        assert_eq!(
            (k.http_status_code, k.http_method, k.http_endpoint),
            (404, "GET", "/users/{id}")
        );
        assert_eq!(k.is_trace_root, trilean::FALSE);
        let s = span_with(
            &[
                ("http.status_code", "404"),
                ("http.endpoint", "/e"),
                ("http.route", "/r"),
            ],
            &[("http.status_code", 503.0)],
        );
        let k = key_of(&s, &p);
        assert_eq!((k.http_status_code, k.http_endpoint), (503, "/e"));
        for bad in ["+200", "abc", "-1", "99999999999"] {
            let s = span_with(&[("http.status_code", bad)], &[]);
            assert_eq!(key_of(&s, &p).http_status_code, 0, "{bad}");
        }
        let s = span_with(&[("http.endpoint", ""), ("http.route", "/r")], &[]);
        assert_eq!(key_of(&s, &p).http_endpoint, "/r");
    }

    #[test]
    fn grpc_status_like_the_agent() {
        let p = PeerTagKeys::default();
        type Case<'c> = (&'c [(&'c str, &'c str)], &'c [(&'c str, f64)], Option<u64>);
        let cases: &[Case<'_>] = &[
            (&[("rpc.grpc.status_code", "3")], &[], Some(3)),
            (&[("grpc.code", "StatusCode.NOT_FOUND")], &[], Some(5)),
            (&[("grpc.code", "deadlineexceeded")], &[], Some(4)),
            (&[("grpc.code", "Canceled")], &[], Some(1)),
            (&[("grpc.status.code", "unauthenticated")], &[], Some(16)),
            (&[("grpc.code", "4294967295")], &[], Some(4294967295)),
            // The first present key decides, even when it does not parse.
            (
                &[("grpc.code", "nope"), ("grpc.status.code", "2")],
                &[],
                None,
            ),
            // Empty values are skipped.
            (
                &[("rpc.grpc.status_code", ""), ("grpc.code", "OK")],
                &[],
                Some(0),
            ),
            (&[], &[("grpc.status.code", 14.0)], Some(14)),
            (&[("grpc.code", "")], &[("grpc.code", 7.0)], Some(7)),
            (&[], &[], None),
        ];
        for (meta, metrics, want) in cases {
            let s = span_with(meta, metrics);
            assert_eq!(
                key_of(&s, &p).grpc_status_code,
                *want,
                "{meta:?} {metrics:?}"
            );
        }
    }

    #[test]
    fn peer_tags_by_kind() {
        let p = PeerTagKeys::new([
            "peer.service",
            "db.instance",
            "db.instance",
            "aws.queue.name",
        ]);
        assert_eq!(p.keys(), ["aws.queue.name", "db.instance", "peer.service"]);
        let meta: &[(&str, &str)] = &[
            ("peer.service", "billing"),
            ("db.instance", "old"),
            ("db.instance", "i-1"),
            ("aws.queue.name", ""),
            ("_dd.base_service", "base"),
        ];
        for (kind, want) in [
            (
                "client",
                vec![("db.instance", "i-1"), ("peer.service", "billing")],
            ),
            (
                "Producer",
                vec![("db.instance", "i-1"), ("peer.service", "billing")],
            ),
            (
                "consumer",
                vec![("db.instance", "i-1"), ("peer.service", "billing")],
            ),
            ("server", vec![]),
            ("internal", vec![("_dd.base_service", "base")]),
            ("", vec![("_dd.base_service", "base")]),
        ] {
            let mut m = meta.to_vec();
            if !kind.is_empty() {
                m.push(("span.kind", kind));
            }
            let s = span_with(&m, &[]);
            let k = key_of(&s, &p);
            let got: Vec<(&str, &str)> =
                k.peer_tags.iter().map(|(a, b)| (*a, b.as_ref())).collect();
            assert_eq!(got, want, "kind {kind:?}");
        }
        // No configured keys: nothing, not even the base service.
        let none = PeerTagKeys::default();
        let s = span_with(&[("_dd.base_service", "base")], &[]);
        assert!(key_of(&s, &none).peer_tags.is_empty());
    }

    #[test]
    fn owned_key_round_trip_and_hash() {
        let p = PeerTagKeys::new(["peer.service"]);
        let s = span_with(
            &[
                ("span.kind", "client"),
                ("peer.service", "x"),
                ("http.method", "POST"),
            ],
            &[],
        );
        let k = key_of(&s, &p);
        let o = OwnedKey::from_fields(&k);
        assert!(o.matches(&k));
        assert_eq!(o.service(), "svc");
        assert_eq!(o.http_method(), "POST");
        assert_eq!(o.peer_tags().collect::<Vec<_>>(), [("peer.service", "x")]);
        let mut other = k.clone();
        other.resource = "res2".into();
        assert!(!o.matches(&other));
        let st = foldhash::fast::FixedState::with_seed(1);
        assert_ne!(k.hash_with(&st), other.hash_with(&st));
        // Field boundaries matter: ("ab","c") and ("a","bc") differ.
        let mut a = k.clone();
        let mut b = k.clone();
        (a.service, a.name) = ("ab".into(), "c".into());
        (b.service, b.name) = ("a".into(), "bc".into());
        assert_ne!(a.hash_with(&st), b.hash_with(&st));
        let ov = OwnedKey::overflow();
        assert_eq!(ov.resource(), "tracer_blocked_value");
        assert_eq!(
            ov.peer_tags().collect::<Vec<_>>(),
            [("tracer_blocked_value", "")]
        );
        assert_eq!(ov.is_trace_root, trilean::NOT_SET);
    }

    #[test]
    fn normalizer_fills_and_obfuscates() {
        let n = KeyNormalizer::new("python");
        let p = PeerTagKeys::default();
        let mut s = span_with(&[], &[]);
        s.service = "".into();
        s.resource = "".into();
        let k = n.normalize(&key_of(&s, &p));
        assert_eq!(k.service, "unnamed-python-service");
        assert_eq!(k.resource, "op");
        let mut s = span_with(&[], &[]);
        s.r#type = "sql".into();
        s.resource = "SELECT * FROM users WHERE id = 42".into();
        let k = n.normalize(&key_of(&s, &p));
        assert_eq!(k.resource, "SELECT * FROM users WHERE id = ?");
        let plain = span_with(&[], &[]);
        let k = n.normalize(&key_of(&plain, &p));
        assert!(
            matches!(k.service, Cow::Borrowed(_)),
            "unchanged fields stay borrowed"
        );
    }

    #[test]
    fn normalizer_follows_the_sql_settings() {
        let mut s = span_with(&[], &[]);
        s.r#type = "sql".into();
        s.resource = "SELECT u.id AS uid FROM users2 u WHERE u.id = 42".into();
        let p = PeerTagKeys::default();
        let dflt = KeyNormalizer::new("python");
        assert_eq!(
            dflt.normalize(&key_of(&s, &p)).resource,
            "SELECT u.id FROM users2 u WHERE u.id = ?"
        );
        let mut cfg = ObfuscationConfig::default();
        cfg.sql.replace_digits = true;
        cfg.sql.keep_sql_alias = true;
        let custom =
            KeyNormalizer::with_obfuscator("python", Obfuscator::new(cfg.clone()).unwrap());
        assert_eq!(
            custom.normalize(&key_of(&s, &p)).resource,
            "SELECT u.id AS uid FROM users? u WHERE u.id = ?"
        );
        assert!(custom.obfuscator().config().sql.keep_sql_alias);
        // Span obfuscation switched off elsewhere does not matter: resources still are.
        cfg.redis.enabled = false;
        let n = KeyNormalizer::with_obfuscator("", Obfuscator::new(cfg).unwrap());
        assert_eq!(
            n.normalize(&key_of(&s, &p)).resource,
            "SELECT u.id AS uid FROM users? u WHERE u.id = ?"
        );
    }

    #[test]
    fn normalizer_applies_the_replace_rules() {
        let s = span_with(&[("http.status_code", "404")], &[]);
        let mut s = s;
        s.resource = "GET /users/alice@example.com".into();
        let p = PeerTagKeys::default();
        let raw = key_of(&s, &p);
        assert_eq!(raw.http_status_code, 404);
        let cfg = ObfuscationConfig {
            replace_tags: crate::obfuscate::replace::rules_from_triples([
                ("resource.name", "[^/]+@[^/]+", "?"),
                ("http.status_code", "^404$", "200"),
            ])
            .unwrap(),
            ..ObfuscationConfig::default()
        };
        let n = KeyNormalizer::with_obfuscator("python", Obfuscator::new(cfg).unwrap());
        let k = n.normalize(&raw);
        assert_eq!(
            (k.resource.as_ref(), k.http_status_code),
            ("GET /users/?", 200)
        );
        // Without rules, nothing changes.
        let k = KeyNormalizer::new("python").normalize(&raw);
        assert_eq!(
            (k.resource.as_ref(), k.http_status_code),
            ("GET /users/alice@example.com", 404)
        );
    }
}

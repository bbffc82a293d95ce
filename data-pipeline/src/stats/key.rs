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

use super::eligibility::MetricsScan;
use crate::normalize::{normalize_name, normalize_service, truncate_utf8, MAX_RESOURCE_LEN};
use crate::obfuscate::ip::quantize_peer_ip_addresses;
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
    /// Bit `n` set when some key is `n` bytes long (see [`len_bit`]).
    len_mask: u64,
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
        let len_mask = keys.iter().fold(0, |m, k| m | len_bit(k.len()));
        let mut filter = Box::new([0u64; 256]);
        let mut index = hashbrown::HashMap::with_hasher(foldhash::fast::FixedState::with_seed(7));
        for (i, k) in keys.iter().enumerate() {
            filter[usize::from(k.as_bytes()[0])] |= len_bit(k.len());
            index.insert(k.clone(), i);
        }
        PeerTagKeys {
            keys,
            len_mask,
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

    #[inline]
    fn position(&self, key: &str) -> Option<usize> {
        let first = *key.as_bytes().first()?;
        if self.filter[usize::from(first)] & len_bit(key.len()) == 0 {
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

/// Bit `n` set for every length `n` of a meta key [`MetaScan`] looks for (peer keys aside).
const META_KEY_LENS: u64 = len_bit(SPAN_KIND_KEY.len())
    | len_bit(HTTP_STATUS_CODE_KEY.len())
    | len_bit(HTTP_METHOD_KEY.len())
    | len_bit(HTTP_ENDPOINT_KEY.len())
    | len_bit(HTTP_ROUTE_KEY.len())
    | len_bit(BASE_SERVICE_KEY.len())
    | len_bit(GRPC_STATUS_KEYS[0].len())
    | len_bit(GRPC_STATUS_KEYS[1].len())
    | len_bit(GRPC_STATUS_KEYS[2].len())
    | len_bit(GRPC_STATUS_KEYS[3].len());

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
}

impl<'s> MetaScan<'s> {
    #[inline]
    pub(crate) fn of(span: &'s Span<'_>, peer_keys: &PeerTagKeys) -> MetaScan<'s> {
        let mut m = MetaScan::default();
        let lens = META_KEY_LENS | peer_keys.len_mask;
        for (k, v) in span.meta.iter() {
            // Length first: the bytes of most keys are never loaded (see `MetricsScan::of`).
            if lens & len_bit(k.len()) == 0 {
                continue;
            }
            let v: &'s str = v.as_ref();
            if let Some(i) = peer_keys.position(k) {
                match m.peers.binary_search_by_key(&i, |(j, _)| *j) {
                    Ok(at) => m.peers[at].1 = v,
                    Err(at) => m.peers.insert(at, (i, v)),
                }
            }
            match k.as_bytes().first() {
                Some(b's') if k == SPAN_KIND_KEY => m.span_kind = v,
                Some(b'h') => match k.as_ref() {
                    HTTP_STATUS_CODE_KEY => m.http_status_code = Some(v),
                    HTTP_METHOD_KEY => m.http_method = v,
                    HTTP_ENDPOINT_KEY => m.http_endpoint = v,
                    HTTP_ROUTE_KEY => m.http_route = v,
                    _ => {}
                },
                Some(b'g' | b'r') => {
                    if let Some(i) = GRPC_STATUS_KEYS.iter().position(|g| *g == k) {
                        m.grpc[i] = Some(v);
                    }
                }
                Some(b'_') if k == BASE_SERVICE_KEY => m.base_service = v,
                _ => {}
            }
        }
        m
    }
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
        let http_endpoint = if meta.http_endpoint.is_empty() {
            meta.http_route
        } else {
            meta.http_endpoint
        };
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
            is_trace_root: if span.parent_id == 0 {
                trilean::TRUE
            } else {
                trilean::FALSE
            },
            peer_tags: peer_tags(meta, peer_keys),
        }
    }

    /// Total length of the string fields (what an [`OwnedKey`] of them holds).
    #[inline]
    fn total_len(&self) -> usize {
        self.service.len()
            + self.name.len()
            + self.resource.len()
            + self.r#type.len()
            + self.span_kind.len()
            + self.http_method.len()
            + self.http_endpoint.len()
            + self
                .peer_tags
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    /// The hash used by the bucket tables (both raw and normalized keys).
    #[inline]
    pub(crate) fn hash_with(&self, state: &impl BuildHasher) -> u64 {
        let mut h = state.build_hasher();
        for s in [
            self.service.as_ref(),
            self.name.as_ref(),
            self.resource.as_ref(),
            self.r#type.as_ref(),
            self.span_kind,
            self.http_method,
            self.http_endpoint,
        ] {
            h.write(s.as_bytes());
            h.write_u8(0xff);
        }
        h.write_u32(self.http_status_code);
        h.write_u64(self.grpc_status_code.map_or(u64::MAX, |c| c));
        h.write_u8(u8::from(self.synthetics) | (self.is_trace_root << 1));
        for (k, v) in &self.peer_tags {
            h.write(k.as_bytes());
            h.write_u8(0xfe);
            h.write(v.as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
    }
}

/// The peer tags of a span (see the module table). Allocates only for spans that have some.
fn peer_tags<'a, 's: 'a>(meta: &MetaScan<'s>, keys: &'a PeerTagKeys) -> PeerTags<'a> {
    if keys.is_empty() {
        return PeerTags::new();
    }
    let kind = meta.span_kind;
    let peer_kind = kind.eq_ignore_ascii_case("client")
        || kind.eq_ignore_ascii_case("producer")
        || kind.eq_ignore_ascii_case("consumer");
    if !peer_kind {
        if (kind.is_empty() || kind.eq_ignore_ascii_case("internal"))
            && !meta.base_service.is_empty()
        {
            let mut one = PeerTags::new();
            one.push((BASE_SERVICE_KEY, Cow::Borrowed(meta.base_service)));
            return one;
        }
        return PeerTags::new();
    }
    let mut out = PeerTags::new();
    for &(i, v) in &meta.peers {
        if !v.is_empty() {
            out.push((keys.keys[i].as_str(), quantize_peer_value(v)));
        }
    }
    out
}

/// A key as stored in a bucket: every string in one buffer (one allocation per key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedKey {
    /// service, name, resource, type, span_kind, http_method, http_endpoint, then peer tag
    /// key/value pairs, concatenated.
    buf: Box<str>,
    /// End offset of each segment in `buf`.
    ends: Box<[u32]>,
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
        let mut segs: Vec<&str> = Vec::with_capacity(FIXED_SEGMENTS + 2 * k.peer_tags.len());
        segs.extend([
            k.service.as_ref(),
            k.name.as_ref(),
            k.resource.as_ref(),
            k.r#type.as_ref(),
            k.span_kind,
            k.http_method,
            k.http_endpoint,
        ]);
        for (pk, pv) in &k.peer_tags {
            segs.push(pk);
            segs.push(pv);
        }
        let mut buf = String::with_capacity(segs.iter().map(|s| s.len()).sum());
        let mut ends = Vec::with_capacity(segs.len());
        for s in segs {
            buf.push_str(s);
            // Keys are built from spans whose strings are far below 4 GiB in total.
            ends.push(u32::try_from(buf.len()).unwrap_or(u32::MAX));
        }
        OwnedKey {
            buf: buf.into_boxed_str(),
            ends: ends.into_boxed_slice(),
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

    #[inline]
    fn seg(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.buf.get(start..self.ends[i] as usize).unwrap_or("")
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
        let n = (self.ends.len() - FIXED_SEGMENTS) / 2;
        (0..n).map(move |i| {
            (
                self.seg(FIXED_SEGMENTS + 2 * i),
                self.seg(FIXED_SEGMENTS + 2 * i + 1),
            )
        })
    }

    /// True when `k` has the same fields.
    #[inline]
    pub fn matches(&self, k: &KeyFields<'_>) -> bool {
        self.buf.len() == k.total_len()
            && self.http_status_code == k.http_status_code
            && self.grpc_status_code == k.grpc_status_code
            && self.synthetics == k.synthetics
            && self.is_trace_root == k.is_trace_root
            && self.ends.len() == FIXED_SEGMENTS + 2 * k.peer_tags.len()
            && self.service() == k.service
            && self.resource() == k.resource
            && self.name() == k.name
            && self.r#type() == k.r#type
            && self.span_kind() == k.span_kind
            && self.http_endpoint() == k.http_endpoint
            && self.http_method() == k.http_method
            && self
                .peer_tags()
                .zip(k.peer_tags.iter())
                .all(|((a, b), (c, d))| a == *c && b == d.as_ref())
    }

    /// Heap bytes held by this key.
    pub fn heap_bytes(&self) -> usize {
        self.buf.len() + self.ends.len() * std::mem::size_of::<u32>()
    }
}

/// Turns a raw key into the key the agent would store for the same span: service and name
/// normalized ([`crate::normalize`]), an empty resource replaced by the name, the resource
/// truncated to 5000 bytes and obfuscated by span type (SQL, Redis:
/// [`Obfuscator::obfuscate_resource`]), as the agent does to client stats
/// (`normalizeStatsGroup`, `obfuscateStatsGroup`). The span type is left as sent (the agent
/// does not touch it in stats either).
#[derive(Debug)]
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
}

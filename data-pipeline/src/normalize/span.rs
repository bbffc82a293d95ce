//! Span rules: the agent's per-span normalization (`normalize`) and truncation (`Truncate`).

use super::stats::{NormalizeCounts, Reason};
use super::strings::{
    is_normalized_ascii_tag, is_normalized_name, normalize_name, normalize_peer_service,
    normalize_service, normalize_tag_value, normalize_type, truncate_utf8, PeerServiceIssue,
    MAX_SERVICE_LEN, MAX_TYPE_LEN,
};
use super::update_str;
use crate::span::{Span, Str, TRACE_ID_HIGH_KEY};
use std::borrow::Cow;

/// Start times before this (2000-01-01T00:00:00Z, in ns) are considered garbage.
pub const YEAR_2000_NS: i64 = 946_684_800_000_000_000;
/// Maximum length of a meta key (and of a metric key), in bytes, before truncation.
pub const MAX_META_KEY_LEN: usize = 200;
/// Maximum length of a meta value, in bytes, before truncation.
pub const MAX_META_VALUE_LEN: usize = 25_000;

const TAG_PEER_SERVICE: &str = "peer.service";
const TAG_BASE_SERVICE: &str = "_dd.base_service";
const TAG_ENV: &str = "env";
const TAG_HTTP_STATUS_CODE: &str = "http.status_code";
const TAG_COMPONENT: &str = "component";
const TAG_LINK_NAME: &str = "link.name";

/// What the span rules need to know besides the span.
pub(crate) struct SpanRules<'c> {
    /// Service given to spans without one (`unnamed-<lang>-service`).
    pub fallback_service: &'c str,
    /// The agent's `component2name` feature: a non-empty `component` tag replaces the name.
    pub component2name: bool,
    /// Resource length above which truncation has something to do.
    pub max_resource_len: usize,
}

/// True when `code` is a decimal number in 100..=599 (the agent's check for `http.status_code`).
pub fn is_valid_status_code(code: &str) -> bool {
    if is_three_digit_status(code.as_bytes()) {
        return true;
    }
    // Go's ParseUint: decimal digits only (an optional "+" is not accepted), no overflow.
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    match code.parse::<u64>() {
        Ok(c) => (100..600).contains(&c),
        Err(_) => false,
    }
}

/// The fast path of [`is_valid_status_code`]: the three digits tracers send (inlined into the
/// span rules, no call for the common span; bench `normalize_spans.tiny`).
#[inline(always)]
fn is_three_digit_status(code: &[u8]) -> bool {
    matches!(code, [b'1'..=b'5', b'0'..=b'9', b'0'..=b'9'])
}

/// The agent's duration rule: a negative duration, or one that overflows `start + duration`
/// (computed with Go's wrapping arithmetic), becomes 0. Returns the duration and whether it was
/// invalid.
pub fn fix_duration(start: i64, duration: i64) -> (i64, bool) {
    if duration < 0 || duration > i64::MAX.wrapping_sub(start) {
        return (0, true);
    }
    (duration, false)
}

/// The agent's start rule: a start before 2000-01-01 becomes `now - duration` (or `now` when
/// that is negative). Returns the start and whether it was invalid.
pub fn fix_start(start: i64, duration: i64, now: impl FnOnce() -> i64) -> (i64, bool) {
    if start < YEAR_2000_NS {
        let now = now();
        let new_start = now.wrapping_sub(duration);
        if new_start < 0 {
            return (now, true);
        }
        return (new_start, true);
    }
    (start, false)
}

/// Nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Index given by [`MetaScan`] for a key that is absent (`slice::get` of it is `None`).
pub(crate) const ABSENT: usize = usize::MAX;

/// Where the meta entries the span rules read are (index of the last occurrence of each key, or
/// [`ABSENT`]: plain integers, fewer registers than `Option`s in the scan loop), from one pass
/// over meta that compares key lengths first (most keys are rejected without reading their
/// bytes), and whether truncation may have anything to do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetaScan {
    peer: usize,
    base: usize,
    env: usize,
    status: usize,
    component: usize,
    /// `_dd.p.tid` (for the chunk's same-trace check).
    pub tid: usize,
    /// Maybe a meta key longer than [`MAX_META_KEY_LEN`] or value longer than
    /// [`MAX_META_VALUE_LEN`] (never false when there is one).
    long: bool,
}

/// Bit `n` set: some key [`scan_meta`] looks for is `n` bytes long.
const WANTED_KEY_LENS: u64 = 1 << TAG_ENV.len()
    | 1 << TAG_COMPONENT.len()
    | 1 << TRACE_ID_HIGH_KEY.len()
    | 1 << TAG_PEER_SERVICE.len()
    | 1 << TAG_HTTP_STATUS_CODE.len()
    | 1 << TAG_BASE_SERVICE.len();

/// Records entry `i` (key `k`, whose length passed [`WANTED_KEY_LENS`]) in `m` when it is one
/// of the keys looked for (`component` only when `component`: only `component2name` reads it).
/// Keys are compared as whole words (the length is known here).
#[inline(always)]
fn scan_key(m: &mut MetaScan, i: usize, k: &[u8], component: bool) {
    // Branches in order of frequency (9 bytes: `component`, `span.kind`, `_dd.p.tid`, ...),
    // split by a range test so that they stay branches: as a `match`, a jump table cost more
    // instructions per key than the compares (bench `normalize_spans`).
    let n = k.len();
    if n == 9 {
        // One load of the first 8 bytes for both keys.
        let (head, last) = (word8(k), k[8]);
        if head == word8(TRACE_ID_HIGH_KEY.as_bytes()) && last == b'd' {
            m.tid = i;
        } else if component && head == word8(TAG_COMPONENT.as_bytes()) && last == b't' {
            m.component = i;
        }
    } else if n > 9 {
        if n == 16 {
            // Both words loaded once for both keys.
            let (head, tail) = (word8(k), word8(&k[8..]));
            if head == word8(TAG_HTTP_STATUS_CODE.as_bytes())
                && tail == word8(&TAG_HTTP_STATUS_CODE.as_bytes()[8..])
            {
                m.status = i;
            } else if head == word8(TAG_BASE_SERVICE.as_bytes())
                && tail == word8(&TAG_BASE_SERVICE.as_bytes()[8..])
            {
                m.base = i;
            }
        } else if n == 12 && k == TAG_PEER_SERVICE.as_bytes() {
            m.peer = i;
        }
    } else if n == 3 && k == TAG_ENV.as_bytes() {
        m.env = i;
    }
}

/// The first 8 bytes of `k` as a word (0 when `k` is shorter).
#[inline(always)]
const fn word8(k: &[u8]) -> u64 {
    match k.first_chunk::<8>() {
        Some(w) => u64::from_le_bytes(*w),
        None => 0,
    }
}

/// True when some key [`scan_meta`] looks for has the length `len` (a length of 64+ may pass
/// here, then matches nothing in [`scan_key`]).
#[inline(always)]
fn wanted_len(len: usize) -> bool {
    (WANTED_KEY_LENS >> (len & 63)) & 1 != 0
}

/// One pass over `meta` for the keys the span and chunk rules look at (the last occurrence wins,
/// as in a Go map decoded from the same payload). Hand-written hot path: keys are matched by
/// length, then bytes (the side-by-side bench `normalize_spans` showed the `match` on whole
/// strings, one `memcmp` per key and candidate, as a large part of a valid span's cost), two
/// entries per step (fewer loop instructions per entry; same bench). `component`: look for the
/// `component` key too.
#[inline(always)]
pub(crate) fn scan_meta(meta: &[(Str<'_>, Str<'_>)], component: bool) -> MetaScan {
    let mut m = MetaScan {
        peer: ABSENT,
        base: ABSENT,
        env: ABSENT,
        status: ABSENT,
        component: ABSENT,
        tid: ABSENT,
        long: false,
    };
    // OR of all key (value) lengths: at most the limit means no length is over it; over it
    // (rare: some key of 128+ bytes or value of 16384+) lets `truncate_span` decide exactly.
    let (mut keys_or, mut values_or) = (0usize, 0usize);
    let mut pairs = meta.chunks_exact(2);
    let mut i = 0;
    for pair in &mut pairs {
        let [(k0, v0), (k1, v1)] = pair else {
            continue;
        };
        // `len_or_owned`: an owned key or value only makes `long` a false alarm, and
        // `wanted_len` reads the low 6 bits.
        let (l0, l1) = (k0.len_or_owned(), k1.len_or_owned());
        keys_or |= l0 | l1;
        values_or |= v0.len_or_owned() | v1.len_or_owned();
        if wanted_len(l0) {
            scan_key(&mut m, i, k0.as_bytes(), component);
        }
        if wanted_len(l1) {
            scan_key(&mut m, i + 1, k1.as_bytes(), component);
        }
        i += 2;
    }
    if let [(k, v)] = pairs.remainder() {
        let l = k.len_or_owned();
        keys_or |= l;
        values_or |= v.len_or_owned();
        if wanted_len(l) {
            scan_key(&mut m, i, k.as_bytes(), component);
        }
    }
    m.long = keys_or > MAX_META_KEY_LEN || values_or > MAX_META_VALUE_LEN;
    m
}

/// Values of the chunk's first span that passed their checks unchanged (empty: none). A later
/// span's value with the same bytes needs no check: the checks depend on the bytes alone, so
/// this is exact. Hand-written hot path: tracers repeat the root's service (as service and as
/// `_dd.base_service`, whose check is the service check) and env on a chunk's spans, and the
/// side-by-side bench `normalize_spans` showed these checks at about a sixth of a valid span's
/// cost; a word compare is a fraction of a check.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen<'a> {
    service: Passed<'a>,
    env: Passed<'a>,
}

impl<'a> Seen<'a> {
    /// The values of `span`, just normalized with `scan` without any fix (so every value present
    /// passed its check as it is, and meta indices are still those of `scan`).
    #[inline]
    pub(crate) fn of(span: &'a Span<'_>, scan: &MetaScan) -> Self {
        Seen {
            service: Passed::new(span.service.as_bytes()),
            env: Passed::new(
                span.meta
                    .as_slice()
                    .get(scan.env)
                    .map_or(&[][..], |(_, v)| v.as_bytes()),
            ),
        }
    }
}

/// A value that passed its check, with the words [`Passed::same`] compares (values of 4 to 16
/// bytes) taken once per chunk: the bench `normalize_spans` showed them rebuilt byte by byte
/// on every comparison.
#[derive(Debug, Clone, Copy, Default)]
struct Passed<'a> {
    bytes: &'a [u8],
    head: u64,
    tail: u64,
}

impl<'a> Passed<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let n = bytes.len();
        let (head, tail) = match n {
            8..=16 => (word8(bytes), word8(&bytes[n - 8..])),
            4..=7 => (word4(bytes).into(), word4(&bytes[n - 4..]).into()),
            _ => (0, 0),
        };
        Passed { bytes, head, tail }
    }

    /// `v` equals the value, false when the value is empty (so that an empty slot never
    /// matches); word compares for up to 16 bytes (no `memcmp` call).
    #[inline(always)]
    fn same(&self, v: &[u8]) -> bool {
        let n = v.len();
        if n != self.bytes.len() || n == 0 {
            return false;
        }
        match n {
            8..=16 => word8(v) == self.head && word8(&v[n - 8..]) == self.tail,
            4..=7 => u64::from(word4(v)) == self.head && u64::from(word4(&v[n - 4..])) == self.tail,
            _ => v == self.bytes,
        }
    }
}

/// The first 4 bytes of `k` as a word (0 when `k` is shorter).
#[inline(always)]
fn word4(k: &[u8]) -> u32 {
    match k.first_chunk::<4>() {
        Some(w) => u32::from_le_bytes(*w),
        None => 0,
    }
}

/// True when `s` needs no change as a service-like value (service, `peer.service`,
/// `_dd.base_service`, `env`): non-empty, at most 100 bytes, and already a normalized ASCII tag
/// value. The common case, checked without allocating or decoding characters.
#[inline]
fn is_clean_service(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_SERVICE_LEN && is_normalized_ascii_tag(s.as_bytes(), false)
}

/// The service rule, for a service that needs a fix (out of line: the common span skips it).
#[inline(never)]
fn fix_service(service: &mut Str<'_>, rules: &SpanRules<'_>, counts: &mut NormalizeCounts) {
    let mut reason = None;
    update_str(service, |s| {
        let (v, r) = normalize_service(s, "");
        reason = r;
        match r {
            Some(Reason::ServiceEmpty) | Some(Reason::ServiceInvalid) => {
                Cow::Owned(rules.fallback_service.to_owned())
            }
            _ => v,
        }
    });
    if let Some(r) = reason {
        counts.inc(r);
    }
}

/// The operation name rule, for a name that needs a fix (out of line).
#[inline(never)]
fn fix_name(name: &mut Str<'_>, counts: &mut NormalizeCounts) {
    let mut reason = None;
    update_str(name, |s| {
        let (v, r) = normalize_name(s);
        reason = r;
        v
    });
    if let Some(r) = reason {
        counts.inc(r);
    }
}

/// The `peer.service` / `_dd.base_service` rule on one value (equal to `seen`, a value that passed
/// this check: valid), counted under `truncate` or `invalid`. False when a fix path ran.
#[inline(always)]
fn fix_peer_service(
    value: &mut Str<'_>,
    seen: &Passed<'_>,
    truncate: Reason,
    invalid: Reason,
    counts: &mut NormalizeCounts,
) -> bool {
    if value.is_empty() || seen.same(value.as_bytes()) || is_clean_service(value) {
        return true;
    }
    fix_peer_service_slow(value, truncate, invalid, counts);
    false
}

#[inline(never)]
fn fix_peer_service_slow(
    value: &mut Str<'_>,
    truncate: Reason,
    invalid: Reason,
    counts: &mut NormalizeCounts,
) {
    let mut issue = None;
    update_str(value, |v| {
        let (n, is) = normalize_peer_service(v);
        issue = is;
        n
    });
    match issue {
        Some(PeerServiceIssue::TooLong) => counts.inc(truncate),
        Some(PeerServiceIssue::Invalid) => counts.inc(invalid),
        None => {}
    }
}

/// Normalizes one span in place (the agent's `normalize`). `Err(reason)` means the span is
/// unusable and its chunk must be dropped; every fix is counted in `counts`.
pub(crate) fn normalize_span(
    span: &mut Span<'_>,
    rules: &SpanRules<'_>,
    counts: &mut NormalizeCounts,
) -> Result<(), Reason> {
    let scan = scan_meta(span.meta.as_slice(), rules.component2name);
    normalize_scanned(span, &scan, &Seen::default(), rules, counts).map(|_| ())
}

/// [`normalize_span`] with the meta pass done (`scan` must describe `span.meta`), values equal to
/// those in `seen` taken as valid. `Ok((may_truncate, untouched))`: `may_truncate` when the span
/// may need truncation ([`truncate_span`] with `max_resource_len` has something to do; lengths
/// are taken before the fixes, which never lengthen a string, so `false` is exact);
/// `untouched` when no fix changed service, name, meta or their order (then
/// [`Seen::of`] may take the span's values).
#[inline(always)]
pub(crate) fn normalize_scanned(
    span: &mut Span<'_>,
    scan: &MetaScan,
    seen: &Seen<'_>,
    rules: &SpanRules<'_>,
    counts: &mut NormalizeCounts,
) -> Result<(bool, bool), Reason> {
    if span.trace_id == 0 {
        counts.inc(Reason::TraceIdZero);
        return Err(Reason::TraceIdZero);
    }
    if span.span_id == 0 {
        counts.inc(Reason::SpanIdZero);
        return Err(Reason::SpanIdZero);
    }

    let mut untouched = true;
    // Service.
    if !seen.service.same(span.service.as_bytes()) && !is_clean_service(&span.service) {
        fix_service(&mut span.service, rules, counts);
        untouched = false;
    }

    let entries = span.meta.entries_mut();
    if let Some((_, value)) = entries.get_mut(scan.peer) {
        untouched &= fix_peer_service(
            value,
            &Passed::default(),
            Reason::PeerServiceTruncate,
            Reason::PeerServiceInvalid,
            counts,
        );
    }
    if let Some((_, value)) = entries.get_mut(scan.base) {
        untouched &= fix_peer_service(
            value,
            &seen.service,
            Reason::BaseServiceTruncate,
            Reason::BaseServiceInvalid,
            counts,
        );
    }

    if rules.component2name {
        if let Some((_, c)) = entries.get(scan.component) {
            if !c.is_empty() {
                span.name = c.clone();
            }
        }
    }

    // Operation name.
    if !is_normalized_name(&span.name) {
        fix_name(&mut span.name, counts);
        untouched = false;
    }

    if span.resource.is_empty() {
        counts.inc(Reason::ResourceEmpty);
        span.resource = span.name.clone();
    }

    // A Zipkin-style root span carries parent id = trace id = span id.
    if span.parent_id == span.trace_id && span.parent_id == span.span_id {
        span.parent_id = 0;
    }

    let (duration, invalid) = fix_duration(span.start, span.duration);
    if invalid {
        counts.inc(Reason::InvalidDuration);
        span.duration = duration;
    }
    let (start, invalid) = fix_start(span.start, span.duration, now_ns);
    if invalid {
        counts.inc(Reason::InvalidStartDate);
        span.start = start;
    }

    if span.r#type.len() > MAX_TYPE_LEN {
        let mut reason = None;
        update_str(&mut span.r#type, |t| {
            let (v, r) = normalize_type(t);
            reason = r;
            Cow::Borrowed(v)
        });
        if let Some(r) = reason {
            counts.inc(r);
        }
    }

    let entries = span.meta.entries_mut();
    if let Some((_, value)) = entries.get_mut(scan.env) {
        if !value.is_empty()
            && !seen.env.same(value.as_bytes())
            && !is_normalized_ascii_tag(value.as_bytes(), false)
        {
            update_str(value, normalize_tag_value);
            untouched = false;
        }
    }
    if let Some((_, code)) = entries.get(scan.status) {
        if !is_three_digit_status(code.as_bytes()) && !is_valid_status_code(code) {
            counts.inc(Reason::InvalidHttpStatusCode);
            span.meta.remove(TAG_HTTP_STATUS_CODE);
            untouched = false;
        }
    }

    for link in &mut span.span_links {
        if let Some(name) = link.attributes.get_mut(TAG_LINK_NAME) {
            update_str(name, |n| normalize_name(n).0);
        }
    }

    let may_truncate = scan.long
        || span.resource.len() > rules.max_resource_len
        || span
            .metrics
            .as_slice()
            .iter()
            .fold(0, |or, (k, _)| or | k.len_or_owned())
            > MAX_META_KEY_LEN;
    Ok((may_truncate, untouched))
}

/// True for structured meta keys (`_dd.*.json`, `_dd.*.msgpack`, `_dd.*.protobuf`), which the
/// agent never truncates.
pub fn is_structured_meta_key(key: &str) -> bool {
    key.starts_with("_dd.")
        && (key.ends_with(".json") || key.ends_with(".msgpack") || key.ends_with(".protobuf"))
}

fn truncate_with_ellipsis(s: &mut Str<'_>, limit: usize) {
    let cut = truncate_utf8(s, limit).len();
    let mut owned = String::with_capacity(cut + 3);
    owned.push_str(&s[..cut]);
    owned.push_str("...");
    *s = Str::owned(owned);
}

/// The agent's truncation rules (`Truncate`), in place: the resource is cut to
/// `max_resource_len` bytes; meta keys longer than 200 bytes and meta values longer than 25000
/// bytes are cut and get a `...` suffix (structured `_dd.*.json|msgpack|protobuf` tags are left
/// alone); metric keys longer than 200 bytes likewise. Allocation-free when nothing is too long.
pub fn truncate_span(span: &mut Span<'_>, max_resource_len: usize) {
    if span.resource.len() > max_resource_len {
        update_str(&mut span.resource, |r| {
            Cow::Borrowed(truncate_utf8(r, max_resource_len))
        });
    }
    for (k, v) in span.meta.entries_mut().iter_mut() {
        if k.len() <= MAX_META_KEY_LEN && v.len() <= MAX_META_VALUE_LEN {
            continue;
        }
        if is_structured_meta_key(k) {
            continue;
        }
        if k.len() > MAX_META_KEY_LEN {
            truncate_with_ellipsis(k, MAX_META_KEY_LEN);
        }
        if v.len() > MAX_META_VALUE_LEN {
            truncate_with_ellipsis(v, MAX_META_VALUE_LEN);
        }
    }
    for (k, _) in span.metrics.entries_mut().iter_mut() {
        if k.len() > MAX_META_KEY_LEN {
            truncate_with_ellipsis(k, MAX_META_KEY_LEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        assert!(is_valid_status_code("100"));
        assert!(is_valid_status_code("599"));
        assert!(!is_valid_status_code("99"));
        assert!(!is_valid_status_code("600"));
        assert!(!is_valid_status_code("+200"));
        assert!(!is_valid_status_code("Invalid status code"));
        assert!(!is_valid_status_code("99999999999999999999999"));
    }

    #[test]
    fn meta_scan_matches_whole_keys_last_wins() {
        let keys = [
            "_dd.p.tie",
            "_dd.p.tid",
            "env",
            "enw",
            "http.status_cod",
            "http.status_codf",
            "http.status_code",
            "peer.servicf",
            "peer.service",
            "peer.service",
            "_dd.base_servicd",
            "componenu",
            "component",
            "_dd.p.tid_and_more_than_sixty_four_bytes_long_...........................",
        ];
        assert_eq!(
            keys[13].len() & 63,
            9,
            "a long key that passes the length filter"
        );
        let meta: Vec<(Str<'_>, Str<'_>)> = keys
            .iter()
            .map(|k| (Str::borrowed(k), Str::borrowed("v")))
            .collect();
        let m = scan_meta(&meta, true);
        assert_eq!(m.tid, 1);
        assert_eq!(m.env, 2);
        assert_eq!(m.status, 6);
        assert_eq!(m.peer, 9);
        assert_eq!(m.base, ABSENT);
        assert_eq!(m.component, 12);
        assert!(!m.long);
    }

    #[test]
    fn owned_keys_scan_like_borrowed_ones() {
        // The scan reads tagged lengths (`Str::len_or_owned`): owned keys must still be found
        // by their real length, and owned short values only make `long` a false alarm.
        let keys = ["env", "_dd.p.tid", "http.status_code", "peer.service", "x"];
        for owned in [false, true] {
            let meta: Vec<(Str<'_>, Str<'_>)> = keys
                .iter()
                .map(|k| {
                    if owned {
                        (Str::owned(k.to_string()), Str::owned("v".into()))
                    } else {
                        (Str::borrowed(k), Str::borrowed("v"))
                    }
                })
                .collect();
            let m = scan_meta(&meta, false);
            assert_eq!(
                (m.env, m.tid, m.status, m.peer),
                (0, 1, 2, 3),
                "owned={owned}"
            );
            assert_eq!(m.long, owned);
        }
        let mut span = Span::default();
        span.meta
            .push(Str::owned("k".into()), Str::owned("short".into()));
        span.meta
            .push("long", Str::owned("x".repeat(MAX_META_VALUE_LEN + 1)));
        truncate_span(&mut span, crate::normalize::MAX_RESOURCE_LEN);
        assert_eq!(span.meta.get("k").map(|v| v.as_str()), Some("short"));
        assert_eq!(
            span.meta.get("long").map(|v| v.len()),
            Some(MAX_META_VALUE_LEN + 3)
        );
    }

    #[test]
    fn passed_values_compare_as_bytes() {
        // Every length around the word boundaries, against itself, every one-byte change and
        // every other length.
        let base: Vec<u8> = (0..20u8).map(|i| b'a' + i).collect();
        for n in 0..=20 {
            let p = Passed::new(&base[..n]);
            assert_eq!(p.same(&base[..n]), n > 0, "n={n}");
            for i in 0..n {
                let mut v = base[..n].to_vec();
                v[i] = b'Z';
                assert!(!p.same(&v), "n={n} i={i}");
            }
            for m in 0..=20 {
                if m != n {
                    assert!(!p.same(&base[..m]), "n={n} m={m}");
                }
            }
        }
        assert!(!Passed::default().same(b""));
    }

    #[test]
    fn durations_follow_go_wrapping() {
        assert_eq!(fix_duration(0, -1), (0, true));
        assert_eq!(fix_duration(1, i64::MAX), (0, true));
        assert_eq!(fix_duration(-5, 10), (0, true)); // MaxInt64 - (-5) wraps negative in Go
        assert_eq!(fix_duration(YEAR_2000_NS, 10), (10, false));
        assert_eq!(fix_start(42, 10, || 100), (90, true));
        assert_eq!(fix_start(42, 1000, || 100), (100, true));
        assert_eq!(fix_start(YEAR_2000_NS, 10, || 100), (YEAR_2000_NS, false));
    }
}

//! String rules: service, operation name, tag and span type normalization, and UTF-8-safe
//! truncation, with the Datadog agent's exact results (its `traceutil/normalize` package is the
//! reference; these are independent implementations of the same rules).
//!
//! Every function returns a [`Cow`]: `Borrowed` (a sub-slice of the input, often the whole input)
//! when no character had to change, so the common case of an already valid value allocates
//! nothing.

use super::stats::Reason;
use std::borrow::Cow;
use unicode_general_category::{get_general_category, GeneralCategory};

/// Operation name given to a span without a usable one.
pub const DEFAULT_SPAN_NAME: &str = "unnamed_operation";
/// Service given to a span without a usable one when the tracer language is unknown.
pub const DEFAULT_SERVICE_NAME: &str = "unnamed-service";
/// Maximum length of an operation name, in bytes.
pub const MAX_NAME_LEN: usize = 100;
/// Maximum length of a service name, in bytes.
pub const MAX_SERVICE_LEN: usize = 100;
/// Maximum length of a span type, in bytes.
pub const MAX_TYPE_LEN: usize = 100;
/// Maximum length of a resource, in bytes (the agent's default `MaxResourceLen`).
pub const MAX_RESOURCE_LEN: usize = 5000;
/// Maximum number of characters kept by tag normalization.
pub const MAX_TAG_LEN: usize = 200;

/// Truncates `s` to at most `limit` bytes without splitting a UTF-8 character (the partial
/// character at the cut is dropped entirely). Borrowed: never allocates.
pub fn truncate_utf8(s: &str, limit: usize) -> &str {
    if s.len() <= limit {
        return s;
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The fallback service for a tracer language: `unnamed-<lang>-service`, or `unnamed-service`
/// when the language is unknown.
pub fn fallback_service(lang: &str) -> Cow<'static, str> {
    if lang.is_empty() {
        Cow::Borrowed(DEFAULT_SERVICE_NAME)
    } else {
        Cow::Owned(format!("unnamed-{lang}-service"))
    }
}

/// Normalizes a span operation name as the agent does: truncated to 100 bytes, then reduced to
/// a metric-name-like form (`[a-zA-Z][a-zA-Z0-9_.]*`, no `__`, no `_` before a `.`, no trailing
/// `_`). Returns the name and the reason it had to be fixed, if any; an empty or unusable name
/// becomes `unnamed_operation`.
pub fn normalize_name(name: &str) -> (Cow<'_, str>, Option<Reason>) {
    if name.is_empty() {
        return (
            Cow::Borrowed(DEFAULT_SPAN_NAME),
            Some(Reason::SpanNameEmpty),
        );
    }
    let mut reason = None;
    let name = if name.len() > MAX_NAME_LEN {
        reason = Some(Reason::SpanNameTruncate);
        truncate_utf8(name, MAX_NAME_LEN)
    } else {
        name
    };
    match metric_name(name) {
        Some(n) => (n, reason),
        None => (
            Cow::Borrowed(DEFAULT_SPAN_NAME),
            Some(Reason::SpanNameInvalid),
        ),
    }
}

/// Normalizes a service name as the agent does: truncated to 100 bytes, then normalized as a tag
/// value. An empty or unusable service becomes [`fallback_service`]`(lang)`. Returns the service
/// and the reason it had to be fixed, if any.
pub fn normalize_service<'a>(svc: &'a str, lang: &str) -> (Cow<'a, str>, Option<Reason>) {
    if svc.is_empty() {
        return (fallback_service(lang), Some(Reason::ServiceEmpty));
    }
    let (svc, reason) = if svc.len() > MAX_SERVICE_LEN {
        (
            truncate_utf8(svc, MAX_SERVICE_LEN),
            Some(Reason::ServiceTruncate),
        )
    } else {
        (svc, None)
    };
    let s = normalize_tag_value(svc);
    if s.is_empty() {
        return (fallback_service(lang), Some(Reason::ServiceInvalid));
    }
    (s, reason)
}

/// Which of the agent's checks failed for a peer service (or `_dd.base_service`) value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerServiceIssue {
    /// Longer than 100 bytes: truncated.
    TooLong,
    /// Nothing usable left after normalization: replaced with "".
    Invalid,
}

/// Normalizes a `peer.service` (or `_dd.base_service`) value: like a service, but an empty value
/// stays empty and an unusable one becomes "".
pub fn normalize_peer_service(svc: &str) -> (Cow<'_, str>, Option<PeerServiceIssue>) {
    if svc.is_empty() {
        return (Cow::Borrowed(""), None);
    }
    let (svc, issue) = if svc.len() > MAX_SERVICE_LEN {
        (
            truncate_utf8(svc, MAX_SERVICE_LEN),
            Some(PeerServiceIssue::TooLong),
        )
    } else {
        (svc, None)
    };
    let s = normalize_tag_value(svc);
    if s.is_empty() {
        return (Cow::Borrowed(""), Some(PeerServiceIssue::Invalid));
    }
    (s, issue)
}

/// Normalizes a full `key:value` tag: lower-cased, leading characters that are not letters (or
/// `:`) trimmed, runs of other invalid characters replaced with one `_`, trailing `_` removed,
/// at most 200 characters.
pub fn normalize_tag(tag: &str) -> Cow<'_, str> {
    normalize_tag_impl(tag, true)
}

/// Normalizes a tag value alone (service names, `env`): like [`normalize_tag`], but a value may
/// start with a digit or any other character (a leading invalid run becomes `_`).
pub fn normalize_tag_value(value: &str) -> Cow<'_, str> {
    normalize_tag_impl(value, false)
}

/// Truncates a span type to 100 bytes; returns it and whether it had to be truncated.
pub fn normalize_type(typ: &str) -> (&str, Option<Reason>) {
    if typ.len() > MAX_TYPE_LEN {
        (truncate_utf8(typ, MAX_TYPE_LEN), Some(Reason::TypeTruncate))
    } else {
        (typ, None)
    }
}

// --- tag normalization ---------------------------------------------------------------------

const fn is_valid_ascii_start(c: u8) -> bool {
    c.is_ascii_lowercase() || c == b':'
}

const fn is_valid_ascii_tag_char(c: u8) -> bool {
    is_valid_ascii_start(c) || c.is_ascii_digit() || c == b'.' || c == b'/' || c == b'-'
}

/// Byte classes for the "already normalized" checks (one table load per byte, OR-ed together
/// without branches; a string needs a second look only when the OR has a flag set).
const CLASS_INVALID: u8 = 1;
/// `_`: valid inside tags and names, but not everywhere (see the checks).
const CLASS_UNDERSCORE: u8 = 2;

/// Tag bytes: 0 for [`is_valid_ascii_tag_char`], [`CLASS_UNDERSCORE`] for `_`, [`CLASS_INVALID`]
/// otherwise (upper case, other punctuation, any byte of a non-ASCII character).
static TAG_CLASS: [u8; 256] = {
    let mut t = [CLASS_INVALID; 256];
    let mut i = 0;
    while i < 256 {
        if is_valid_ascii_tag_char(i as u8) {
            t[i] = 0;
        } else if i as u8 == b'_' {
            t[i] = CLASS_UNDERSCORE;
        }
        i += 1;
    }
    t
};

/// OR of the table classes of every byte. Hand-written hot path (the side-by-side bench
/// `normalize_spans`: the per-byte state machine it replaces was the largest cost of a valid span):
/// four independent accumulators let the loads overlap.
#[inline]
fn class_or(table: &[u8; 256], s: &[u8]) -> u8 {
    let mut chunks = s.chunks_exact(4);
    let (mut a, mut b, mut c, mut d) = (0u8, 0u8, 0u8, 0u8);
    for q in &mut chunks {
        a |= table[usize::from(q[0])];
        b |= table[usize::from(q[1])];
        c |= table[usize::from(q[2])];
        d |= table[usize::from(q[3])];
    }
    for &x in chunks.remainder() {
        a |= table[usize::from(x)];
    }
    a | b | c | d
}

/// Byte ranges (inclusive) that are valid in a normalized tag, besides `_`.
const TAG_RANGES: &[(u8, u8)] = &[(b'-', b':'), (b'a', b'z')];
/// Byte ranges (inclusive) that are valid in a metric name, besides `_`.
const NAME_RANGES: &[(u8, u8)] = &[(b'.', b'.'), (b'0', b'9'), (b'A', b'Z'), (b'a', b'z')];

/// [`class_or`] with `NAME_CLASS` (`NAME`) or `TAG_CLASS`, 16 bytes at a time where the CPU
/// allows (an invalid byte gives [`CLASS_INVALID`] alone, which the callers treat as the OR
/// would).
#[inline]
fn byte_class<const NAME: bool>(s: &[u8]) -> u8 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if s.len() >= 4 {
        return sse2::class::<NAME>(s);
    }
    class_or(if NAME { &NAME_CLASS } else { &TAG_CLASS }, s)
}

/// The byte-class check on 16 bytes at a time with SSE2 (always present on x86_64). Hand-written
/// hot path: the side-by-side bench `normalize_spans` showed the table loop at about a quarter
/// of a valid span's instructions, most of it per-string setup on 4-20 byte strings; this checks
/// a string of up to 16 bytes in one vector.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use super::{CLASS_INVALID, CLASS_UNDERSCORE, NAME_RANGES, TAG_RANGES};
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x,
        _mm_setzero_si128, _mm_sub_epi8, _mm_subs_epu8,
    };

    fn u64_at(s: &[u8], i: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&s[i..i + 8]);
        u64::from_le_bytes(b)
    }

    fn u32_at(s: &[u8], i: usize) -> u64 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&s[i..i + 4]);
        u64::from(u32::from_le_bytes(b))
    }

    /// 16 lanes holding only bytes of `s` (4 to 16 bytes), every byte of `s` in at least one
    /// lane (overlapping loads): right for "every byte is in the set" and "some byte is `_`".
    #[inline(always)]
    fn lanes(s: &[u8]) -> __m128i {
        let n = s.len();
        let (lo, hi) = if n >= 8 {
            (u64_at(s, 0), u64_at(s, n - 8))
        } else {
            let w = u32_at(s, 0) | u32_at(s, n - 4) << 32;
            (w, w)
        };
        // SAFETY: SSE2 is enabled for this build (the module's cfg), as on every x86_64 target.
        unsafe { _mm_set_epi64x(hi as i64, lo as i64) }
    }

    /// Lanes of `v` in `lo..=hi` set to all ones.
    #[inline(always)]
    fn in_range(v: __m128i, lo: u8, hi: u8) -> __m128i {
        // SAFETY: SSE2 is enabled for this build (the module's cfg).
        unsafe {
            let t = _mm_sub_epi8(v, _mm_set1_epi8(lo as i8));
            _mm_cmpeq_epi8(
                _mm_subs_epu8(t, _mm_set1_epi8((hi - lo) as i8)),
                _mm_setzero_si128(),
            )
        }
    }

    /// (every lane valid or `_`, some lane `_`).
    #[inline(always)]
    fn check(v: __m128i, ranges: &[(u8, u8)]) -> (bool, bool) {
        // SAFETY: SSE2 is enabled for this build (the module's cfg).
        unsafe {
            let us = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'_' as i8));
            let mut ok = us;
            for &(lo, hi) in ranges {
                ok = _mm_or_si128(ok, in_range(v, lo, hi));
            }
            (_mm_movemask_epi8(ok) == 0xffff, _mm_movemask_epi8(us) != 0)
        }
    }

    /// What `class_or` returns for `s` (at least 4 bytes) with the table of `NAME_RANGES` (`NAME`)
    /// or `TAG_RANGES` + `_` ([`CLASS_INVALID`] alone when some byte is invalid). The ranges are
    /// a const parameter so that each instance has its range constants folded (passed as a
    /// slice, the out-of-line instance rebuilt them from memory on every call: 2.5x the
    /// instructions in the bench `normalize_spans`); no `#[target_feature]` (SSE2 is enabled
    /// for the build, see the module's cfg) so that the check can be inlined into its callers.
    #[inline(always)]
    pub(super) fn class<const NAME: bool>(s: &[u8]) -> u8 {
        let ranges = if NAME { NAME_RANGES } else { TAG_RANGES };
        let n = s.len();
        let (mut ok, mut us) = (true, false);
        if n <= 16 {
            (ok, us) = check(lanes(s), ranges);
        } else {
            let mut i = 0;
            while ok && i + 16 <= n {
                let (o, u) = check(lanes(&s[i..i + 16]), ranges);
                (ok, us) = (o, us | u);
                i += 16;
            }
            if ok && i < n {
                let (o, u) = check(lanes(&s[n - 16..]), ranges);
                (ok, us) = (o, us | u);
            }
        }
        if !ok {
            CLASS_INVALID
        } else if us {
            CLASS_UNDERSCORE
        } else {
            0
        }
    }
}

/// True when no `_` of `s` is followed by a byte for which `bad_next` holds, and `s` does not end
/// with `_` when `trailing_ok` is false.
#[inline(never)]
fn underscores_ok(s: &[u8], bad_next: impl Fn(u8) -> bool, trailing_ok: bool) -> bool {
    let mut rest = s;
    while let Some(p) = rest.iter().position(|&b| b == b'_') {
        match rest.get(p + 1) {
            None => return trailing_ok,
            Some(&n) if bad_next(n) => return false,
            Some(_) => rest = &rest[p + 1..],
        }
    }
    true
}

/// True when `tag` is already in normal form and pure ASCII (the common case): at most
/// [`MAX_TAG_LEN`] bytes of `[a-z0-9:./_-]`, every `_` followed by another allowed character
/// (no `__`, no trailing `_`), and with `check_start`, a lower-case letter or `:` first.
/// Always inlined: a call per service-like value showed in the bench `normalize_spans`.
#[inline(always)]
pub(crate) fn is_normalized_ascii_tag(tag: &[u8], check_start: bool) -> bool {
    let Some(&first) = tag.first() else {
        return true;
    };
    if tag.len() > MAX_TAG_LEN || (check_start && !is_valid_ascii_start(first)) {
        return false;
    }
    match byte_class::<false>(tag) {
        0 => true,
        CLASS_UNDERSCORE => underscores_ok(tag, |n| n == b'_', false),
        _ => false,
    }
}

fn is_upper(c: char) -> bool {
    get_general_category(c) == GeneralCategory::UppercaseLetter
}

fn is_letter(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::UppercaseLetter
            | GeneralCategory::LowercaseLetter
            | GeneralCategory::TitlecaseLetter
            | GeneralCategory::ModifierLetter
            | GeneralCategory::OtherLetter
    )
}

fn is_digit(c: char) -> bool {
    if (c as u32) < 0x100 {
        c.is_ascii_digit()
    } else {
        get_general_category(c) == GeneralCategory::DecimalNumber
    }
}

/// The simple (one character) lower-case mapping of `c`, if it has one.
fn simple_lower(c: char) -> Option<char> {
    let mut it = c.to_lowercase();
    let l = it.next()?;
    if it.next().is_some() {
        return None;
    }
    Some(l)
}

fn normalize_tag_impl(v: &str, trim_start: bool) -> Cow<'_, str> {
    if is_normalized_ascii_tag(v.as_bytes(), trim_start) {
        return Cow::Borrowed(v);
    }
    normalize_tag_slow(v, trim_start)
}

/// The general tag normalization (any input; the fast check above only recognizes inputs this
/// returns unchanged).
fn normalize_tag_slow(v: &str, trim_start: bool) -> Cow<'_, str> {
    if v.is_empty() {
        return Cow::Borrowed("");
    }
    // The buffer is only materialized when a character has to be lower-cased; until then the
    // input is the buffer (the result may still be a borrowed sub-slice).
    let mut lowered: Option<Vec<u8>> = None;
    let mut trim = 0usize; // bytes trimmed at the start
    let mut cuts: Vec<(usize, usize)> = Vec::new(); // byte ranges replaced by one '_'
    let mut chars = 0usize; // characters kept so far
    let mut end = 0usize; // end of the last processed character

    for (i, c) in v.char_indices() {
        let width = c.len_utf8();
        end = i + width;
        let mut c = c;
        let mut done = false;
        if c.is_ascii_lowercase() || c == ':' {
            chars += 1;
            done = true;
        } else if c.is_ascii_uppercase() {
            lowered.get_or_insert_with(|| v.as_bytes().to_vec())[i] = c as u8 + (b'a' - b'A');
            chars += 1;
            done = true;
        }
        if !done && c.is_ascii() {
            // ASCII fast path (no Unicode tables): not a letter here (letters were handled).
            done = true;
            if trim_start && chars == 0 {
                trim = i + width;
            } else if c.is_ascii_digit() || c == '.' || c == '/' || c == '-' {
                chars += 1;
            } else {
                chars += 1;
                match cuts.last_mut() {
                    Some(last) if last.1 >= i => last.1 += width,
                    _ => cuts.push((i, i + width)),
                }
            }
        }
        if !done {
            if is_upper(c) {
                if let Some(low) = simple_lower(c) {
                    // Only when the lower-case form has the same width (e.g. not U+017F).
                    if low.len_utf8() == width {
                        let buf = lowered.get_or_insert_with(|| v.as_bytes().to_vec());
                        low.encode_utf8(&mut buf[i..i + width]);
                        c = low;
                    }
                }
            }
            if is_letter(c) {
                chars += 1;
            } else if trim_start && chars == 0 {
                trim = i + width;
            } else if is_digit(c) || c == '.' || c == '/' || c == '-' {
                chars += 1;
            } else {
                chars += 1;
                match cuts.last_mut() {
                    Some(last) if last.1 >= i => last.1 += width,
                    _ => cuts.push((i, i + width)),
                }
            }
        }
        if end >= 2 * MAX_TAG_LEN || chars >= MAX_TAG_LEN {
            break;
        }
    }

    if cuts.is_empty() {
        return match lowered {
            None => Cow::Borrowed(&v[trim..end]),
            Some(buf) => owned_utf8(&buf[trim..end]),
        };
    }
    let src: &[u8] = lowered.as_deref().unwrap_or(v.as_bytes());
    let mut out = Vec::with_capacity(end - trim);
    let mut pos = trim;
    for &(start, stop) in &cuts {
        out.extend_from_slice(&src[pos..start]);
        if stop >= end {
            // The cut reaches the end: drop it.
            pos = end;
            break;
        }
        out.push(b'_');
        pos = stop;
    }
    out.extend_from_slice(&src[pos..end]);
    owned_utf8(&out)
}

fn owned_utf8(bytes: &[u8]) -> Cow<'static, str> {
    // Always valid: bytes are only replaced at character boundaries by same-width characters.
    Cow::Owned(String::from_utf8_lossy(bytes).into_owned())
}

// --- operation names --------------------------------------------------------------------------

/// Operation name bytes: 0 for ASCII letters, digits and `.`, [`CLASS_UNDERSCORE`] for `_`,
/// [`CLASS_INVALID`] otherwise.
static NAME_CLASS: [u8; 256] = {
    let mut t = [CLASS_INVALID; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if c.is_ascii_alphanumeric() || c == b'.' {
            t[i] = 0;
        } else if c == b'_' {
            t[i] = CLASS_UNDERSCORE;
        }
        i += 1;
    }
    t
};

/// True when `name` is already a metric name: an ASCII letter, then letters, digits, `.` and `_`,
/// no `.` or `_` right after a `_` (a trailing `_` is allowed here: the caller strips it).
/// Table-driven, whole string at once (the side-by-side bench `normalize_spans` showed the
/// per-byte branches of the first version at a quarter of the span's cost).
fn is_valid_metric_name(name: &[u8]) -> bool {
    let Some(&first) = name.first() else {
        return false;
    };
    if !first.is_ascii_alphabetic() {
        return false;
    }
    match byte_class::<true>(name) {
        0 => true,
        CLASS_UNDERSCORE => underscores_ok(name, |n| n == b'_' || n == b'.', true),
        _ => false,
    }
}

/// True when [`normalize_name`] leaves `name` as it is, checked without per-character work:
/// at most [`MAX_NAME_LEN`] bytes, already a metric name, no trailing `_`.
#[inline]
pub(crate) fn is_normalized_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN && !name.ends_with('_') && is_valid_metric_name(name.as_bytes())
}

/// Reduces `name` (at most [`MAX_NAME_LEN`] bytes) to a metric-name form; `None` when it has no
/// ASCII letter at all.
fn metric_name(name: &str) -> Option<Cow<'_, str>> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > MAX_NAME_LEN {
        return None;
    }
    let start = b.iter().position(|c| c.is_ascii_alphabetic())?;
    let rest = &name[start..];
    if is_valid_metric_name(rest.as_bytes()) {
        let rest = rest.strip_suffix('_').unwrap_or(rest);
        return Some(Cow::Borrowed(rest));
    }
    Some(metric_name_slow(rest))
}

/// The general metric-name reduction of `rest` (starts with an ASCII letter; the fast check
/// above only recognizes inputs this returns unchanged, but for a trailing `_`).
fn metric_name_slow(rest: &str) -> Cow<'_, str> {
    let mut res: Vec<u8> = Vec::with_capacity(rest.len());
    for &c in rest.as_bytes() {
        // The first byte is a letter, so `res` is never empty when a '.' or other byte comes.
        let last = res.last().copied().unwrap_or(b'a');
        if c.is_ascii_alphanumeric() {
            res.push(c);
        } else if c == b'.' {
            if last == b'_' {
                if let Some(l) = res.last_mut() {
                    *l = b'.';
                }
            } else {
                res.push(b'.');
            }
        } else if last != b'.' && last != b'_' {
            res.push(b'_');
        }
    }
    if res.last() == Some(&b'_') {
        res.pop();
    }
    owned_utf8(&res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_paths_borrow() {
        assert!(matches!(normalize_tag("env:prod"), Cow::Borrowed(_)));
        assert!(matches!(normalize_tag_value("web-1"), Cow::Borrowed(_)));
        assert!(matches!(normalize_name("http.request").0, Cow::Borrowed(_)));
        let long = "a".repeat(888);
        match normalize_tag(&long) {
            Cow::Borrowed(s) => assert_eq!(s.len(), 200),
            Cow::Owned(_) => panic!("a truncated ASCII tag must stay borrowed"),
        }
    }

    #[test]
    fn tags() {
        assert_eq!(
            normalize_tag("Data🐨dog🐶 繋がっ⛰てて"),
            "data_dog_繋がっ_てて"
        );
        assert_eq!(
            normalize_tag_value(" #hashtag!@#spaces #__<>#  "),
            "_hashtag_spaces"
        );
        assert_eq!(normalize_tag("12.:trim@@"), ":trim");
        assert_eq!(
            normalize_tag("\u{017F}odd_\u{017F}case\u{017F}"),
            "\u{017F}odd_\u{017F}case\u{017F}"
        );
    }

    #[test]
    fn names() {
        assert_eq!(normalize_name("bad-name").0, "bad_name");
        assert_eq!(normalize_name("/").0, DEFAULT_SPAN_NAME);
        assert_eq!(normalize_name("a..b__c._d").0, "a..b_c.d");
    }

    /// Every string of up to `len` characters over `alphabet`.
    fn strings(alphabet: &[&str], len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..len {
            let mut next = Vec::new();
            for s in &last {
                for c in alphabet {
                    next.push(format!("{s}{c}"));
                }
            }
            all.extend(next.iter().cloned());
            last = next;
        }
        all
    }

    #[test]
    fn fast_checks_agree_with_the_general_rules() {
        let alphabet = ["a", "Z", "_", ".", "-", "1", ":", "/", " ", "é", "#"];
        let mut fast_hits = 0;
        for s in strings(&alphabet, 4) {
            for trim in [true, false] {
                let slow = normalize_tag_slow(&s, trim);
                if is_normalized_ascii_tag(s.as_bytes(), trim) {
                    fast_hits += 1;
                    assert_eq!(slow, s, "tag {s:?} trim {trim}");
                } else if s.is_ascii() {
                    assert_ne!(slow, s, "tag {s:?} trim {trim}: missed by the fast check");
                }
            }
            // The name check is the agent's own validity rule (not "the reduction changes
            // nothing": `a._a` is valid as it is); the byte-at-a-time form it replaced:
            let reference = |b: &[u8]| {
                let Some((&first, rest)) = b.split_first() else {
                    return false;
                };
                let mut prev_us = false;
                first.is_ascii_alphabetic()
                    && rest.iter().all(|&c| {
                        let ok =
                            c.is_ascii_alphanumeric() || ((c == b'.' || c == b'_') && !prev_us);
                        prev_us = c == b'_';
                        ok
                    })
            };
            assert_eq!(
                is_valid_metric_name(s.as_bytes()),
                reference(s.as_bytes()),
                "{s:?}"
            );
            fast_hits += usize::from(is_valid_metric_name(s.as_bytes()));
        }
        assert!(fast_hits > 1000, "{fast_hits}");
        // Lengths around the limits and every block size of the byte loop.
        for n in [1, 3, 4, 5, 7, 8, 9, 199, 200, 201] {
            let s = "ab_c".repeat(n).chars().take(n).collect::<String>();
            for trim in [true, false] {
                let fast = is_normalized_ascii_tag(s.as_bytes(), trim);
                assert_eq!(fast, normalize_tag_slow(&s, trim) == s, "{s:?}");
            }
            let upper = format!("{}A", &s[..n - 1]);
            assert!(!is_normalized_ascii_tag(upper.as_bytes(), false));
        }
    }

    #[test]
    fn vector_class_matches_the_tables() {
        // Range edges of both classes, `_`, non-ASCII and control bytes.
        let edge = [
            0x00u8, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x39, 0x3a, 0x3b, 0x40, 0x41, 0x5a, 0x5b, 0x5e,
            0x5f, 0x60, 0x61, 0x7a, 0x7b, 0x7f, 0x80, 0xc3, 0xff,
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in 0..=50usize {
            for round in 0..400 {
                // Mostly valid bytes with a few edge bytes, so every outcome shows up.
                let mut s: Vec<u8> = (0..len)
                    .map(|_| b"ab.-:09_zZ"[next() as usize % 10])
                    .collect();
                for _ in 0..(round % 3) {
                    if len > 0 {
                        let i = next() as usize % len;
                        s[i] = edge[next() as usize % edge.len()];
                    }
                }
                // An invalid byte decides alone (the vector check stops there).
                let norm = |c: u8| {
                    if c & CLASS_INVALID != 0 {
                        CLASS_INVALID
                    } else {
                        c
                    }
                };
                assert_eq!(
                    norm(byte_class::<false>(&s)),
                    norm(class_or(&TAG_CLASS, &s)),
                    "tag {s:?}"
                );
                assert_eq!(
                    norm(byte_class::<true>(&s)),
                    norm(class_or(&NAME_CLASS, &s)),
                    "name {s:?}"
                );
            }
        }
    }

    #[test]
    fn truncation_keeps_utf8() {
        assert_eq!(truncate_utf8("télé", 2), "t");
        assert_eq!(truncate_utf8("肋", 2), "");
        assert_eq!(truncate_utf8("abc", 5), "abc");
    }
}

//! Chunk rules: the agent's `normalizeTrace` (every span normalized, the chunk rejected when it
//! is empty, when a span cannot be repaired or belongs to another trace; duplicate span ids are
//! counted but kept).

use super::span::{normalize_scanned, scan_meta, MetaScan, Seen, SpanRules};
use super::stats::{NormalizeCounts, Reason};
use crate::span::{Span, Trace, TRACE_ID_HIGH_KEY};
use std::collections::HashSet;

/// The agent's `SameTraceID`: equal low 64 bits, and equal `_dd.p.tid` when both spans carry it
/// (tracers set it on the first span of a chunk only).
pub fn same_trace_id(a: &Span<'_>, b: &Span<'_>) -> bool {
    if a.trace_id != b.trace_id {
        return false;
    }
    match (a.meta.get(TRACE_ID_HIGH_KEY), b.meta.get(TRACE_ID_HIGH_KEY)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// Chunks up to this many spans look for duplicate ids in a stack array, larger ones in a set.
const SMALL_CHUNK: usize = 32;

/// Normalizes every span of `chunk`; `Err(reason)` when the chunk must be dropped, else
/// `Ok(true)` when some span may need truncation (see `normalize_scanned`).
///
/// Same order as the agent, so the counters match too: span by span, the foreign-span check,
/// then the span rules, then the duplicate-id check. One pass over each span's meta serves the
/// foreign-span check (`_dd.p.tid`) and the span rules.
pub(crate) fn normalize_chunk(
    chunk: &mut Trace<'_>,
    rules: &SpanRules<'_>,
    counts: &mut NormalizeCounts,
) -> Result<bool, Reason> {
    let Some((first, rest)) = chunk.split_first_mut() else {
        counts.inc(Reason::EmptyTrace);
        return Err(Reason::EmptyTrace);
    };
    let scan = scan_meta(first.meta.as_slice(), rules.component2name);
    let meta_len = first.meta.len();
    let (may_truncate, untouched) =
        normalize_scanned(first, &scan, &Seen::default(), rules, counts)?;
    if rest.is_empty() {
        // A chunk of one span (common: tracers flush single-span chunks) has no chunk rule left.
        return Ok(may_truncate);
    }
    normalize_rest(first, rest, &scan, meta_len, untouched, rules, counts).map(|t| t | may_truncate)
}

/// The chunk rules for the spans after the first (`first` just normalized with `scan`, which
/// described its meta of `meta_len` entries, `untouched` as returned by `normalize_scanned`).
/// Out of line: single-span chunks skip this setup (bench `normalize_spans.tiny`).
#[inline(never)]
fn normalize_rest(
    first: &Span<'_>,
    rest: &mut [Span<'_>],
    scan: &MetaScan,
    meta_len: usize,
    untouched: bool,
    rules: &SpanRules<'_>,
    counts: &mut NormalizeCounts,
) -> Result<bool, Reason> {
    let n = rest.len() + 1;
    let mut may_truncate = false;
    // The first span's values that passed their checks, for the next spans (see `Seen`).
    let passed = if untouched {
        Seen::of(first, scan)
    } else {
        Seen::default()
    };
    // The first span's `_dd.p.tid` as the other spans see it (after its normalization, which
    // only moves it when an entry before it was removed).
    let first_tid = if first.meta.len() == meta_len {
        first.meta.as_slice().get(scan.tid)
    } else {
        first
            .meta
            .as_slice()
            .iter()
            .rfind(|(k, _)| k == TRACE_ID_HIGH_KEY)
    };
    let first_tid = first_tid.map(|(_, v)| v);

    // Small chunks (the common case) look for duplicate ids in a stack array, no allocation;
    // `bits` has bit `id % 64` set for every id in it, so that most ids (random 64-bit numbers)
    // are known new without the search (the search was a tenth of a span's instructions in the
    // bench `normalize_spans`).
    let mut small = [0u64; SMALL_CHUNK];
    let mut bits = 0u64;
    let mut seen: Option<HashSet<u64>> = (n > SMALL_CHUNK).then(|| HashSet::with_capacity(n));
    match seen.as_mut() {
        Some(set) => {
            set.insert(first.span_id);
        }
        None => {
            small[0] = first.span_id;
            bits = id_bit(first.span_id);
        }
    }
    for (j, span) in rest.iter_mut().enumerate() {
        let i = j + 1;
        let scan = scan_meta(span.meta.as_slice(), rules.component2name);
        let foreign = span.trace_id != first.trace_id
            || match (first_tid, span.meta.as_slice().get(scan.tid)) {
                (Some(x), Some((_, y))) => x != y,
                _ => false,
            };
        if foreign {
            counts.inc(Reason::ForeignSpan);
            return Err(Reason::ForeignSpan);
        }
        may_truncate |= normalize_scanned(span, &scan, &passed, rules, counts)?.0;
        let id = span.span_id;
        let dup = match seen.as_mut() {
            Some(set) => !set.insert(id),
            None => {
                let bit = id_bit(id);
                let dup = bits & bit != 0 && small[..i].contains(&id);
                bits |= bit;
                small[i] = id;
                dup
            }
        };
        if dup {
            counts.inc(Reason::DuplicateSpanId);
        }
    }
    Ok(may_truncate)
}

/// The bit of `id` in the small-chunk filter of `normalize_rest`.
#[inline(always)]
fn id_bit(id: u64) -> u64 {
    1 << (id % 64)
}

#[cfg(test)]
mod tests {
    use super::super::{NormalizeConfig, Normalizer, YEAR_2000_NS};
    use super::*;
    use crate::span::Str;
    use std::borrow::Cow;

    fn span(id: u64, meta: &[(&'static str, &'static str)]) -> Span<'static> {
        let mut s = Span {
            service: Str::borrowed("svc"),
            name: Str::borrowed("op"),
            resource: Str::borrowed("res"),
            trace_id: 7,
            span_id: id,
            start: YEAR_2000_NS + 1,
            duration: 1,
            ..Default::default()
        };
        for (k, v) in meta {
            s.meta.push(Str::borrowed(k), Str::borrowed(v));
        }
        s
    }

    fn run(chunk: &mut Trace<'static>) -> (Result<(), String>, NormalizeCounts) {
        let mut counts = NormalizeCounts::new();
        let r = Normalizer::default()
            .normalize_chunk(chunk, &mut counts)
            .map_err(|e| e.to_string());
        (r, counts)
    }

    #[test]
    fn foreign_span_by_high_trace_id() {
        let tid = TRACE_ID_HIGH_KEY;
        // Both carry it and differ: foreign; only one carries it: same trace.
        let mut c = vec![span(1, &[(tid, "00000000000000aa")]), span(2, &[])];
        assert!(run(&mut c).0.is_ok());
        c.push(span(3, &[(tid, "00000000000000bb")]));
        let (r, counts) = run(&mut c);
        assert!(r.unwrap_err().contains("foreign_span"));
        assert_eq!(counts.get(Reason::ForeignSpan), 1);
        // The first span's invalid status code (before its `_dd.p.tid`) is removed by its
        // normalization: the comparison still sees its `_dd.p.tid`.
        let first = span(1, &[("http.status_code", "999"), (tid, "00000000000000aa")]);
        let mut c = vec![first.clone(), span(2, &[(tid, "00000000000000aa")])];
        let (r, counts) = run(&mut c);
        assert!(r.is_ok());
        assert_eq!(counts.get(Reason::InvalidHttpStatusCode), 1);
        let mut c = vec![first, span(2, &[(tid, "00000000000000bb")])];
        assert!(run(&mut c).0.is_err());
        // The last occurrence of a duplicated key is the one compared.
        let mut c = vec![
            span(1, &[(tid, "00000000000000bb"), (tid, "00000000000000aa")]),
            span(2, &[(tid, "00000000000000aa")]),
        ];
        assert!(run(&mut c).0.is_ok());
        let mut c = vec![span(1, &[]), span(2, &[])];
        c[1].trace_id = 8;
        assert!(run(&mut c).0.is_err());
    }

    #[test]
    fn component_to_name_with_and_without_trace_id_high() {
        let n = Normalizer::new(NormalizeConfig {
            component2name: true,
            ..Default::default()
        });
        let tid = TRACE_ID_HIGH_KEY;
        for first_meta in [
            &[(tid, "00000000000000aa"), ("component", "net/http")][..],
            &[("component", "net/http")][..],
        ] {
            let mut c = vec![
                span(1, first_meta),
                span(
                    2,
                    &[("component", "grpc-client"), (tid, "00000000000000aa")],
                ),
                span(3, &[("component", "")]),
            ];
            assert!(n
                .normalize_chunk(&mut c, &mut NormalizeCounts::new())
                .is_ok());
            assert_eq!(c[0].name, "net_http");
            assert_eq!(c[1].name, "grpc_client");
            assert_eq!(c[2].name, "op");
        }
    }

    #[test]
    fn first_span_values_reused_only_when_they_passed() {
        // Each later span must come out as if normalized alone, whatever the first span
        // carried (valid, needing a fix, empty): the chunk pass reuses the first span's
        // verdicts on equal bytes only.
        let long: &'static str = "s".repeat(120).leak();
        let values = ["web-store", "Web Store", "", long, "prod", "a__b", "x_"];
        let n = Normalizer::default();
        for first_svc in values {
            for first_env in values {
                for later in values {
                    let mut first = span(1, &[("env", first_env)]);
                    first.service = Str::borrowed(first_svc);
                    let mut chunk = vec![first.clone()];
                    let mut alone = NormalizeCounts::new();
                    n.normalize_span(&mut first, &mut alone).unwrap();
                    let mut expected = vec![first];
                    for id in 2..4 {
                        let mut s = span(id, &[("env", later), ("_dd.base_service", later)]);
                        s.service = Str::borrowed(later);
                        chunk.push(s.clone());
                        n.normalize_span(&mut s, &mut alone).unwrap();
                        expected.push(s);
                    }
                    let mut counts = NormalizeCounts::new();
                    n.normalize_chunk(&mut chunk, &mut counts).unwrap();
                    assert_eq!(chunk, expected, "{first_svc:?} {first_env:?} {later:?}");
                    assert_eq!(counts, alone, "{first_svc:?} {first_env:?} {later:?}");
                }
            }
        }
    }

    #[test]
    fn ids_sharing_a_filter_bit_are_not_duplicates() {
        // 1, 65 and 129 have the same bit in the small-chunk filter.
        let mut c: Trace<'static> = [1, 65, 129, 2].iter().map(|&i| span(i, &[])).collect();
        let (r, counts) = run(&mut c);
        assert!(r.is_ok());
        assert_eq!(counts.get(Reason::DuplicateSpanId), 0);
        c.push(span(65, &[]));
        let (_, counts) = run(&mut c);
        assert_eq!(counts.get(Reason::DuplicateSpanId), 1);
    }

    #[test]
    fn duplicate_ids_in_small_and_large_chunks() {
        for n in [3usize, 32, 33, 100] {
            let mut c: Trace<'static> = (1..=n as u64).map(|i| span(i, &[])).collect();
            c.push(span(2, &[]));
            c.push(span(n as u64, &[]));
            let (r, counts) = run(&mut c);
            assert!(r.is_ok());
            assert_eq!(counts.get(Reason::DuplicateSpanId), 2, "n={n}");
        }
    }

    #[test]
    fn truncation_runs_when_any_length_is_over() {
        let long_value: &'static str = "v".repeat(30_000).leak();
        let long_key: &'static str = "k".repeat(300).leak();
        let mut c = vec![span(1, &[]), span(2, &[("a", long_value)])];
        assert!(run(&mut c).0.is_ok());
        assert_eq!(c[1].meta.get("a").map(|v| v.len()), Some(25_003));
        let mut c = vec![span(1, &[]), span(2, &[])];
        c[1].metrics.push(Cow::Borrowed(long_key), 1.0);
        assert!(run(&mut c).0.is_ok());
        assert_eq!(c[1].metrics.as_slice()[0].0.len(), 203);
        let mut c = vec![span(1, &[])];
        c[0].resource = Str::borrowed(long_value);
        assert!(run(&mut c).0.is_ok());
        assert_eq!(c[0].resource.len(), 5000);
        // Long enough to be looked at (OR of lengths over the limit), short enough to stay.
        let mut c = vec![span(1, &[("a", &long_value[..20_000]), ("b", "x")])];
        assert!(run(&mut c).0.is_ok());
        assert_eq!(c[0].meta.get("a").map(|v| v.len()), Some(20_000));
        // Off: left alone.
        let mut c = vec![span(1, &[("a", long_value)])];
        let n = Normalizer::new(NormalizeConfig {
            truncate: false,
            ..Default::default()
        });
        assert!(n
            .normalize_chunk(&mut c, &mut NormalizeCounts::new())
            .is_ok());
        assert_eq!(c[0].meta.get("a").map(|v| v.len()), Some(30_000));
    }
}

//! Encoder tests: round trips through both formats with generated spans.

use super::*;
use crate::decode::{decode, Format};
use crate::span::Str;
use crate::span::{AttributeScalar, AttributeValue, Span, SpanEvent, SpanLink, Traces};
use std::borrow::Cow;

use crate::decode::gen;

/// What a span should look like after a trip through v0.5: links and events moved to meta
/// JSON, meta_struct gone.
fn as_v05<'a>(span: &Span<'a>) -> Span<'a> {
    let mut s = span.clone();
    if !s.span_links.is_empty() {
        s.meta.remove(v05::SPAN_LINKS_META_KEY);
        s.meta.push(
            v05::SPAN_LINKS_META_KEY,
            Str::owned(v05::links_json(&s.span_links)),
        );
    }
    if !s.span_events.is_empty() {
        s.meta.remove(v05::SPAN_EVENTS_META_KEY);
        s.meta.push(
            v05::SPAN_EVENTS_META_KEY,
            Str::owned(v05::events_json(&s.span_events)),
        );
    }
    s.span_links.clear();
    s.span_events.clear();
    s.meta_struct = Default::default();
    s
}

fn check_round_trips(traces: &Traces<'_>) {
    // model -> v0.4 -> model is lossless.
    let v04 = encode_to_vec(Format::V04, traces).unwrap();
    let back = decode(Format::V04, &v04).unwrap();
    assert_eq!(&back, traces);
    // ... and v0.4 -> model -> v0.4 is byte-identical.
    assert_eq!(encode_to_vec(Format::V04, &back).unwrap(), v04);

    // v0.4 -> model -> v0.5 -> model keeps everything v0.5 can carry.
    let v05 = encode_to_vec(Format::V05, &back).unwrap();
    let back5 = decode(Format::V05, &v05).unwrap();
    let expected: Traces<'_> = traces
        .iter()
        .map(|t| t.iter().map(as_v05).collect())
        .collect();
    assert_eq!(back5, expected);
    // v0.5 -> model -> v0.5 is byte-identical too (same string table order).
    assert_eq!(encode_to_vec(Format::V05, &back5).unwrap(), v05);
}

#[test]
fn realistic_round_trips() {
    check_round_trips(&gen::realistic_traces(42, 50, 10));
}

#[test]
fn arbitrary_round_trips() {
    let mut rng = gen::Rng::new(1234);
    for _ in 0..300 {
        check_round_trips(&gen::arbitrary_traces(&mut rng));
    }
}

#[test]
fn empty_and_default() {
    check_round_trips(&vec![]);
    check_round_trips(&vec![vec![]]);
    check_round_trips(&vec![vec![Span::default()]]);
}

#[test]
fn nan_metrics_survive_bit_for_bit() {
    let mut span = Span::default();
    let nan = f64::from_bits(0x7ff8_0000_0000_0123);
    span.metrics.push("nan", nan);
    for format in [Format::V04, Format::V05] {
        let bytes = encode_to_vec(format, &[vec![span.clone()]]).unwrap();
        let t = decode(format, &bytes).unwrap();
        assert_eq!(t[0][0].metrics.get("nan").unwrap().to_bits(), nan.to_bits());
    }
}

#[test]
fn v05_string_table_is_deduplicated_and_starts_empty() {
    let traces = gen::realistic_traces(9, 20, 10);
    let v05 = encode_to_vec(Format::V05, &traces).unwrap();
    let v04 = encode_to_vec(Format::V04, &traces).unwrap();
    assert!(v05.len() * 2 < v04.len(), "{} vs {}", v05.len(), v04.len());
    // [ [ "", ...
    assert_eq!(&v05[..1], &[0x92]);
    let mut r = rmp::decode::Bytes::new(&v05[1..]);
    let n = rmp::decode::read_array_len(&mut r).unwrap() as usize;
    let mut seen = std::collections::HashSet::new();
    let mut buf = vec![0u8; 1 << 17];
    for i in 0..n {
        let s = rmp::decode::read_str(&mut r, &mut buf).unwrap().to_owned();
        if i == 0 {
            assert_eq!(s, "");
        }
        assert!(seen.insert(s), "duplicate in string table");
    }
}

#[test]
fn v05_links_and_events_json() {
    let mut span = Span::default();
    span.meta.push("_dd.span_links", Str::borrowed("stale"));
    span.meta.push("keep", Str::borrowed("me"));
    span.span_links.push(SpanLink {
        trace_id: 0xa,
        trace_id_high: 0x1,
        span_id: 0xb,
        attributes: [("k", Str::borrowed("v\"q"))].into_iter().collect(),
        tracestate: Str::borrowed("dd=s:1"),
        flags: 0x8000_0001,
    });
    span.span_links.push(SpanLink {
        span_id: 1,
        ..Default::default()
    });
    span.span_events.push(SpanEvent {
        time_unix_nano: 5,
        name: Str::borrowed("exception"),
        attributes: [
            (
                Cow::Borrowed("s"),
                AttributeValue::Scalar(AttributeScalar::String("x".into())),
            ),
            (
                Cow::Borrowed("b"),
                AttributeValue::Scalar(AttributeScalar::Bool(false)),
            ),
            (
                Cow::Borrowed("i"),
                AttributeValue::Scalar(AttributeScalar::Int(-3)),
            ),
            (
                Cow::Borrowed("d"),
                AttributeValue::Scalar(AttributeScalar::Double(f64::NAN)),
            ),
            (
                Cow::Borrowed("a"),
                AttributeValue::Array(vec![AttributeScalar::Double(0.5), AttributeScalar::Int(1)]),
            ),
        ]
        .into_iter()
        .collect(),
    });
    span.meta_struct
        .push("appsec", Cow::Borrowed(&[0x80u8][..]));
    let bytes = encode_to_vec(Format::V05, &[vec![span]]).unwrap();
    let t = decode(Format::V05, &bytes).unwrap();
    let s = &t[0][0];
    assert_eq!(
        s.meta.get("_dd.span_links").map(|v| v.as_ref()),
        Some(
            "[{\"trace_id\":\"0000000000000001000000000000000a\",\"span_id\":\"000000000000000b\",\
             \"tracestate\":\"dd=s:1\",\"attributes\":{\"k\":\"v\\\"q\"},\"flags\":1},\
             {\"trace_id\":\"00000000000000000000000000000000\",\"span_id\":\"0000000000000001\"}]"
        )
    );
    assert_eq!(
        s.meta.get("events").map(|v| v.as_ref()),
        Some(
            "[{\"time_unix_nano\":5,\"name\":\"exception\",\"attributes\":\
             {\"s\":\"x\",\"b\":false,\"i\":-3,\"d\":null,\"a\":[0.5,1]}}]"
        )
    );
    // The stale entry was replaced, not duplicated; other meta kept.
    assert_eq!(
        s.meta
            .iter()
            .filter(|(k, _)| *k == "_dd.span_links")
            .count(),
        1
    );
    assert_eq!(s.meta.get("keep").map(|v| v.as_ref()), Some("me"));
    assert!(s.meta_struct.is_empty());
    // Both are valid JSON.
    for k in ["_dd.span_links", "events"] {
        let v: serde_json::Value = serde_json::from_str(s.meta.get(k).unwrap()).unwrap();
        assert!(v.is_array());
    }
}

#[test]
fn encode_appends() {
    let traces = gen::realistic_traces(2, 30, 10);
    let mut out = vec![1, 2, 3];
    encode(Format::V04, &traces, &mut out).unwrap();
    assert_eq!(&out[..3], &[1, 2, 3]);
    assert_eq!(decode(Format::V04, &out[3..]).unwrap(), traces);
    let n = out.len();
    encode(Format::V05, &traces, &mut out).unwrap();
    assert_eq!(decode(Format::V05, &out[n..]).unwrap(), traces);
}

//! Decoder tests: leniency matching the agent, and malformed input of every kind.

use super::*;
use crate::encode::{encode_to_vec, split_payload};
use crate::span::Str;
use crate::span::{AttributeScalar, AttributeValue, Span};
use crate::ErrorKind;
use rmp::encode as w;
use std::borrow::Cow;

use super::gen;

fn key(b: &mut Vec<u8>, k: &str) {
    w::write_str(b, k).unwrap();
}

/// A v0.4 payload of one trace holding the given span maps (already encoded).
fn v04_payload(spans: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    w::write_array_len(&mut b, 1).unwrap();
    w::write_array_len(&mut b, spans.len() as u32).unwrap();
    for s in spans {
        b.extend_from_slice(s);
    }
    b
}

fn decode_err(format: Format, bytes: &[u8]) -> crate::Error {
    match decode(format, bytes) {
        Ok(t) => panic!("expected an error, decoded {t:?}"),
        Err(e) => e,
    }
}

#[test]
fn v04_accepts_every_int_width_nil_and_bin() {
    let mut s = Vec::new();
    w::write_map_len(&mut s, 13).unwrap();
    key(&mut s, "service");
    w::write_bin(&mut s, b"svc").unwrap(); // bin accepted as a string
    key(&mut s, "name");
    w::write_nil(&mut s).unwrap(); // nil string -> ""
    key(&mut s, "resource");
    w::write_str(&mut s, "GET /").unwrap();
    key(&mut s, "trace_id");
    w::write_u8(&mut s, 7).unwrap(); // uint8
    key(&mut s, "span_id");
    w::write_i64(&mut s, -1).unwrap(); // negative -> reinterpreted
    key(&mut s, "parent_id");
    w::write_nil(&mut s).unwrap();
    key(&mut s, "start");
    w::write_u64(&mut s, 1_700_000_000_000_000_000).unwrap(); // uint64 into int64
    key(&mut s, "duration");
    w::write_i16(&mut s, 300).unwrap();
    key(&mut s, "error");
    w::write_u32(&mut s, 1).unwrap();
    key(&mut s, "metrics");
    w::write_map_len(&mut s, 4).unwrap();
    key(&mut s, "i");
    w::write_sint(&mut s, -5).unwrap(); // int metric
    key(&mut s, "u");
    w::write_u64(&mut s, u64::MAX).unwrap();
    key(&mut s, "f32");
    w::write_f32(&mut s, 0.5).unwrap();
    key(&mut s, "nil");
    w::write_nil(&mut s).unwrap();
    key(&mut s, "meta");
    w::write_nil(&mut s).unwrap(); // nil map -> empty
    key(&mut s, "unknown");
    // deep unknown value: {"x": [[[[1, {"y": ext}]]]]}
    s.extend_from_slice(&[
        0x81, 0xa1, b'x', 0x91, 0x91, 0x91, 0x92, 0x01, 0x81, 0xa1, b'y',
    ]);
    s.extend_from_slice(&[0xd5, 0x01, 0xaa, 0xbb]);
    key(&mut s, "type");
    w::write_str(&mut s, "web").unwrap();

    let bytes = v04_payload(&[s, vec![0xc0]]); // a nil span is skipped
    let t = decode(Format::V04, &bytes).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].len(), 1);
    let span = &t[0][0];
    assert_eq!(span.service, "svc");
    assert!(span.service.is_borrowed());
    assert_eq!(span.name, "");
    assert_eq!(span.trace_id, 7);
    assert_eq!(span.span_id, u64::MAX);
    assert_eq!(span.parent_id, 0);
    assert_eq!(span.start, 1_700_000_000_000_000_000);
    assert_eq!(span.duration, 300);
    assert_eq!(span.error, 1);
    assert_eq!(span.metrics.get("i"), Some(&-5.0));
    assert_eq!(span.metrics.get("u"), Some(&(u64::MAX as f64)));
    assert_eq!(span.metrics.get("f32"), Some(&0.5));
    assert_eq!(span.metrics.get("nil"), Some(&0.0));
    assert!(span.meta.is_empty());
    assert_eq!(span.r#type, "web");
    assert_eq!(count_traces(Format::V04, &bytes).unwrap(), 1);
}

#[test]
fn v04_repairs_invalid_utf8_like_the_agent() {
    let mut s = Vec::new();
    w::write_map_len(&mut s, 2).unwrap();
    key(&mut s, "service");
    w::write_str_len(&mut s, 4).unwrap();
    s.extend_from_slice(b"a\xe2\x82b");
    key(&mut s, "meta");
    w::write_map_len(&mut s, 1).unwrap();
    w::write_bin(&mut s, b"k\xff").unwrap();
    w::write_str(&mut s, "v").unwrap();
    let bytes = v04_payload(&[s]);
    let t = decode(Format::V04, &bytes).unwrap();
    assert_eq!(t[0][0].service, "a\u{fffd}\u{fffd}b");
    assert!(t[0][0].service.is_owned());
    assert_eq!(t[0][0].meta.get("k\u{fffd}").map(|v| v.as_ref()), Some("v"));
}

#[test]
fn v04_links_events_meta_struct_wire_layout() {
    // As dd-trace-* and the agent write them.
    let mut s = Vec::new();
    w::write_map_len(&mut s, 3).unwrap();
    key(&mut s, "meta_struct");
    w::write_map_len(&mut s, 1).unwrap();
    key(&mut s, "appsec");
    w::write_bin(&mut s, &[0x81, 0xa1, b'a', 0x01]).unwrap();
    key(&mut s, "span_links");
    w::write_array_len(&mut s, 2).unwrap();
    w::write_map_len(&mut s, 7).unwrap();
    key(&mut s, "trace_id");
    w::write_u64(&mut s, 1).unwrap();
    key(&mut s, "trace_id_high");
    w::write_u64(&mut s, 2).unwrap();
    key(&mut s, "span_id");
    w::write_u64(&mut s, 3).unwrap();
    key(&mut s, "attributes");
    w::write_map_len(&mut s, 1).unwrap();
    key(&mut s, "link.kind");
    key(&mut s, "follows_from");
    key(&mut s, "tracestate");
    key(&mut s, "dd=s:1");
    key(&mut s, "flags");
    w::write_u32(&mut s, 0x8000_0001).unwrap();
    key(&mut s, "future_field");
    w::write_array_len(&mut s, 1).unwrap();
    w::write_nil(&mut s).unwrap();
    w::write_nil(&mut s).unwrap(); // nil link: skipped
    key(&mut s, "span_events");
    w::write_array_len(&mut s, 1).unwrap();
    w::write_map_len(&mut s, 3).unwrap();
    key(&mut s, "time_unix_nano");
    w::write_u64(&mut s, 1_700_000_000_000_000_001).unwrap();
    key(&mut s, "name");
    key(&mut s, "exception");
    key(&mut s, "attributes");
    w::write_map_len(&mut s, 7).unwrap();
    for (k, ty, field) in [
        ("s", 0, "string_value"),
        ("b", 1, "bool_value"),
        ("i", 2, "int_value"),
        ("d", 3, "double_value"),
    ] {
        key(&mut s, k);
        w::write_map_len(&mut s, 2).unwrap();
        key(&mut s, "type");
        w::write_uint(&mut s, ty).unwrap();
        key(&mut s, field);
        match ty {
            0 => key(&mut s, "text"),
            1 => w::write_bool(&mut s, true).unwrap(),
            2 => {
                w::write_sint(&mut s, -42).unwrap();
            }
            _ => w::write_f64(&mut s, 2.5).unwrap(),
        }
    }
    key(&mut s, "arr");
    w::write_map_len(&mut s, 2).unwrap();
    key(&mut s, "type");
    w::write_uint(&mut s, 4).unwrap();
    key(&mut s, "array_value");
    w::write_map_len(&mut s, 1).unwrap();
    key(&mut s, "values");
    w::write_array_len(&mut s, 3).unwrap();
    w::write_map_len(&mut s, 2).unwrap();
    key(&mut s, "type");
    w::write_uint(&mut s, 2).unwrap();
    key(&mut s, "int_value");
    w::write_uint(&mut s, 1).unwrap();
    w::write_nil(&mut s).unwrap(); // nil element: dropped
    w::write_map_len(&mut s, 2).unwrap(); // nested array: dropped
    key(&mut s, "type");
    w::write_uint(&mut s, 4).unwrap();
    key(&mut s, "array_value");
    w::write_map_len(&mut s, 0).unwrap();
    key(&mut s, "nil");
    w::write_nil(&mut s).unwrap(); // nil attribute: dropped
    key(&mut s, "unknown_type");
    w::write_map_len(&mut s, 1).unwrap();
    key(&mut s, "type");
    w::write_uint(&mut s, 9).unwrap();

    let bytes = v04_payload(&[s]);
    let t = decode(Format::V04, &bytes).unwrap();
    let span = &t[0][0];
    assert_eq!(
        span.meta_struct.get("appsec").map(|v| v.as_ref()),
        Some(&[0x81, 0xa1, b'a', 0x01][..])
    );
    assert_eq!(span.span_links.len(), 1);
    let l = &span.span_links[0];
    assert_eq!((l.trace_id, l.trace_id_high, l.span_id), (1, 2, 3));
    assert_eq!(l.flags, 0x8000_0001);
    assert_eq!(l.tracestate, "dd=s:1");
    assert_eq!(
        l.attributes.get("link.kind").map(|v| v.as_ref()),
        Some("follows_from")
    );
    let e = &span.span_events[0];
    assert_eq!(e.time_unix_nano, 1_700_000_000_000_000_001);
    assert_eq!(e.name, "exception");
    assert_eq!(e.attributes.len(), 5);
    assert_eq!(
        e.attributes.get("s"),
        Some(&AttributeValue::Scalar(AttributeScalar::String(
            "text".into()
        )))
    );
    assert_eq!(
        e.attributes.get("b"),
        Some(&AttributeValue::Scalar(AttributeScalar::Bool(true)))
    );
    assert_eq!(
        e.attributes.get("i"),
        Some(&AttributeValue::Scalar(AttributeScalar::Int(-42)))
    );
    assert_eq!(
        e.attributes.get("d"),
        Some(&AttributeValue::Scalar(AttributeScalar::Double(2.5)))
    );
    assert_eq!(
        e.attributes.get("arr"),
        Some(&AttributeValue::Array(vec![AttributeScalar::Int(1)]))
    );
}

#[test]
fn v05_decodes_and_checks_indices() {
    let mut b = Vec::new();
    w::write_array_len(&mut b, 2).unwrap();
    w::write_array_len(&mut b, 5).unwrap();
    for s in ["", "svc", "op", "k", "v"] {
        w::write_str(&mut b, s).unwrap();
    }
    w::write_array_len(&mut b, 1).unwrap();
    w::write_array_len(&mut b, 1).unwrap();
    let span_start = b.len();
    w::write_array_len(&mut b, 12).unwrap();
    for i in [1u64, 2, 2] {
        w::write_uint(&mut b, i).unwrap();
    }
    w::write_u64(&mut b, u64::MAX).unwrap();
    w::write_i32(&mut b, -2).unwrap();
    w::write_nil(&mut b).unwrap();
    w::write_sint(&mut b, 10).unwrap();
    w::write_sint(&mut b, 20).unwrap();
    w::write_sint(&mut b, 0).unwrap();
    w::write_map_len(&mut b, 1).unwrap();
    w::write_uint(&mut b, 3).unwrap();
    w::write_uint(&mut b, 4).unwrap();
    w::write_map_len(&mut b, 1).unwrap();
    w::write_uint(&mut b, 3).unwrap();
    w::write_f64(&mut b, 1.5).unwrap();
    let type_at = b.len();
    w::write_uint(&mut b, 0).unwrap();
    let t = decode(Format::V05, &b).unwrap();
    let s = &t[0][0];
    assert_eq!((s.service.as_ref(), s.name.as_ref()), ("svc", "op"));
    assert_eq!(s.trace_id, u64::MAX);
    assert_eq!(s.span_id, (-2i64) as u64);
    assert_eq!(s.meta.get("k").map(|v| v.as_ref()), Some("v"));
    assert_eq!(s.metrics.get("k"), Some(&1.5));
    assert_eq!(count_traces(Format::V05, &b).unwrap(), 1);

    // Index out of range.
    let mut bad = b.clone();
    bad[type_at] = 5;
    let e = decode_err(Format::V05, &bad);
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.message().contains("out of range"), "{}", e.message());
    assert!(
        e.message().contains(&format!("at byte {type_at}")),
        "{}",
        e.message()
    );
    // Span of 11 elements.
    let mut bad = b.clone();
    bad[span_start] = 0x9b;
    let e = decode_err(Format::V05, &bad);
    assert!(e.message().contains("12 elements"), "{}", e.message());
    // Outer array of 3.
    let mut bad = b.clone();
    bad[0] = 0x93;
    assert!(decode_err(Format::V05, &bad)
        .message()
        .contains("2 elements"));
    assert!(count_traces(Format::V05, &bad).is_err());
}

/// Truncating a valid payload at every byte offset errors (or, for v0.4 cut right after a
/// complete value, decodes fewer items) and never panics.
#[test]
fn truncation_at_every_offset() {
    let mut traces = gen::realistic_traces(3, 2, 3);
    let span = &mut traces[0][0];
    span.meta_struct
        .push("appsec", Cow::Owned(vec![0x81, 0xa1, b'a', 0x01]));
    span.span_links.push(crate::span::SpanLink {
        trace_id: 1,
        trace_id_high: 2,
        span_id: 3,
        attributes: [("k", Str::borrowed("v"))].into_iter().collect(),
        tracestate: Str::borrowed("dd=s:1"),
        flags: 0x8000_0001,
    });
    span.span_events.push(crate::span::SpanEvent {
        time_unix_nano: 9,
        name: Str::borrowed("e"),
        attributes: [
            (
                Cow::Borrowed("s"),
                AttributeValue::Scalar(AttributeScalar::String("x".into())),
            ),
            (
                Cow::Borrowed("a"),
                AttributeValue::Array(vec![AttributeScalar::Bool(true)]),
            ),
        ]
        .into_iter()
        .collect(),
    });
    for format in [Format::V04, Format::V05] {
        let bytes = encode_to_vec(format, &traces).unwrap();
        for cut in 0..bytes.len() {
            let r = decode(format, &bytes[..cut]);
            assert!(
                r.is_err(),
                "{format} cut at {cut} of {} decoded",
                bytes.len()
            );
            let e = r.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Decode);
            assert!(e.message().contains("at byte"), "{}", e.message());
        }
        assert!(decode(format, &bytes).is_ok());
    }
}

#[test]
fn huge_length_prefixes_error_without_allocating() {
    let cases: Vec<(Format, Vec<u8>)> = vec![
        // 4G traces announced, nothing behind.
        (Format::V04, vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
        // 4G spans in one trace.
        (Format::V04, vec![0x91, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x80]),
        // A span map of 4G fields.
        (Format::V04, vec![0x91, 0x91, 0xdf, 0xff, 0xff, 0xff, 0xff]),
        // A 4 GB string.
        (
            Format::V04,
            vec![
                0x91, 0x91, 0x81, 0xa7, b's', b'e', b'r', b'v', b'i', b'c', b'e', 0xdb, 0xff, 0xff,
                0xff, 0xff,
            ],
        ),
        // meta of 4G pairs.
        (
            Format::V04,
            vec![
                0x91, 0x91, 0x81, 0xa4, b'm', b'e', b't', b'a', 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0,
            ],
        ),
        // v0.5 string table of 4G strings.
        (Format::V05, vec![0x92, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xa0]),
        // v0.5 traces of 4G.
        (
            Format::V05,
            vec![0x92, 0x91, 0xa0, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x90],
        ),
    ];
    for (format, bytes) in cases {
        let e = decode_err(format, &bytes);
        assert_eq!(e.kind(), ErrorKind::Decode, "{bytes:?}");
    }
    // The count itself is only a header read.
    assert_eq!(
        count_traces(Format::V04, &[0xdd, 0xff, 0xff, 0xff, 0xff]).unwrap(),
        u32::MAX as usize
    );
    assert!(count_traces(Format::V05, &[0x92, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xa0]).is_err());
}

#[test]
fn wrong_types_are_errors_that_say_where() {
    let span_with = |k: &str, v: &[u8]| {
        let mut s = vec![0x81];
        key(&mut s, k);
        s.extend_from_slice(v);
        v04_payload(&[s])
    };
    let cases: &[(&str, &[u8], &str)] = &[
        ("service", &[0x01], "span service: expected a string"),
        (
            "trace_id",
            &[0xa1, b'x'],
            "span trace_id: expected an integer",
        ),
        (
            "trace_id",
            &[0xcb, 0, 0, 0, 0, 0, 0, 0, 0],
            "expected an integer",
        ),
        (
            "start",
            &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            "does not fit in int64",
        ),
        (
            "error",
            &[0xce, 0xff, 0xff, 0xff, 0xff],
            "does not fit in int32",
        ),
        ("meta", &[0x91, 0xa0], "span meta: expected a map"),
        (
            "meta",
            &[0x81, 0xa1, b'k', 0x01],
            "span meta: expected a string",
        ),
        (
            "metrics",
            &[0x81, 0xa1, b'k', 0xa1, b'v'],
            "expected a number",
        ),
        (
            "meta_struct",
            &[0x81, 0xa1, b'k', 0x01],
            "expected binary data",
        ),
        ("span_links", &[0x81], "span_links: expected an array"),
        ("span_links", &[0x91, 0x01], "span link: expected a map"),
        (
            "span_events",
            &[0x91, 0x81, 0x01, 0x01],
            "span event field name: expected a string key",
        ),
        ("unknown", &[0xc1], "expected a msgpack value"),
    ];
    for (k, v, want) in cases {
        let bytes = span_with(k, v);
        let e = decode_err(Format::V04, &bytes);
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(
            e.message().contains(want),
            "{k}: {} (wanted {want})",
            e.message()
        );
        assert!(e.message().contains("at byte"), "{}", e.message());
    }
    // The offset is the value's: `service` value at byte 3 + 8 = 11.
    let e = decode_err(Format::V04, &span_with("service", &[0x01]));
    assert!(e.message().ends_with("at byte 11"), "{}", e.message());
    // Not an array at all.
    let e = decode_err(Format::V04, &[0x80]);
    assert!(e.message().contains("expected an array"), "{}", e.message());
    assert!(decode(Format::V04, &[]).is_err());
    assert!(decode(Format::V05, &[]).is_err());
}

#[test]
fn deep_nesting_in_unknown_keys_is_fine() {
    let mut s = vec![0x82];
    key(&mut s, "unknown");
    s.extend(std::iter::repeat_n(0x91u8, 100_000));
    s.push(0x00);
    key(&mut s, "name");
    key(&mut s, "op");
    let bytes = v04_payload(&[s]);
    let t = decode(Format::V04, &bytes).unwrap();
    assert_eq!(t[0][0].name, "op");
}

#[test]
fn trailing_bytes_are_ignored_like_the_agent() {
    let bytes = [0x91, 0x90, 0xff, 0xff];
    assert_eq!(decode(Format::V04, &bytes).unwrap(), vec![vec![]]);
}

#[test]
fn decode_owned_outlives_the_buffer() {
    let traces = gen::realistic_traces(1, 3, 4);
    let bytes = encode_to_vec(Format::V05, &traces).unwrap();
    let owned: crate::Traces<'static> = decode_owned(Format::V05, &bytes).unwrap();
    drop(bytes);
    assert_eq!(owned, traces);
}

#[test]
fn count_traces_matches_decode() {
    let mut rng = gen::Rng::new(11);
    for _ in 0..50 {
        let traces = gen::arbitrary_traces(&mut rng);
        for format in [Format::V04, Format::V05] {
            let bytes = encode_to_vec(format, &traces).unwrap();
            assert_eq!(count_traces(format, &bytes).unwrap(), traces.len());
        }
    }
}

#[test]
fn split_payload_halves() {
    let traces = gen::realistic_traces(5, 9, 4);
    for format in [Format::V04, Format::V05] {
        let bytes = encode_to_vec(format, &traces).unwrap();
        let (a, b) = split_payload(format, &bytes).unwrap();
        let (ta, tb) = (decode(format, &a).unwrap(), decode(format, &b).unwrap());
        assert_eq!((ta.len(), tb.len()), (5, 4));
        let mut joined = ta.clone();
        joined.extend(tb.clone());
        assert_eq!(joined, decode(format, &bytes).unwrap());
    }
    // One trace of 5 spans: split between spans, priority copied to the second chunk.
    let mut one = gen::realistic_traces(6, 1, 5);
    one[0][0]
        .metrics
        .insert(crate::span::SAMPLING_PRIORITY_KEY, 2.0);
    for s in &mut one[0][1..] {
        s.metrics.remove(crate::span::SAMPLING_PRIORITY_KEY);
    }
    let bytes = encode_to_vec(Format::V04, &one).unwrap();
    let (a, b) = split_payload(Format::V04, &bytes).unwrap();
    let (ta, tb) = (
        decode(Format::V04, &a).unwrap(),
        decode(Format::V04, &b).unwrap(),
    );
    assert_eq!((ta[0].len(), tb[0].len()), (2, 3));
    assert_eq!(tb[0][0].sampling_priority(), Some(2.0));
    assert_eq!(&tb[0][1..], &one[0][3..]);
    // Empty chunks stay in the first half; nothing to split errors.
    let mut with_empty = gen::realistic_traces(8, 2, 1);
    with_empty.insert(0, vec![]);
    let bytes = encode_to_vec(Format::V04, &with_empty).unwrap();
    let (a, b) = split_payload(Format::V04, &bytes).unwrap();
    assert_eq!(count_traces(Format::V04, &a).unwrap(), 2);
    assert_eq!(count_traces(Format::V04, &b).unwrap(), 1);
    let single = encode_to_vec(Format::V04, &[vec![Span::default()], vec![]]).unwrap();
    assert_eq!(
        split_payload(Format::V04, &single).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        split_payload(Format::V04, &[0x81]).unwrap_err().kind(),
        ErrorKind::Decode
    );
}

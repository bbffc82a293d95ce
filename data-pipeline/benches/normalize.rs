//! Span normalization throughput (spans/s): a clean span (nothing to fix, the common case) and a
//! span needing fixes; plus the string rules alone.
//! Run: `cargo bench -p data-pipeline --bench normalize`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use data_pipeline::normalize::{
    normalize_name, normalize_tag, normalize_tag_value, NormalizeConfig, NormalizeCounts,
    Normalizer,
};
use data_pipeline::span::Span;
use data_pipeline::span::Str;
use std::borrow::Cow;
use std::hint::black_box;

fn span(i: u64, dirty: bool) -> Span<'static> {
    let mut s = Span {
        service: Str::borrowed(if dirty {
            "My Service (Staging)"
        } else {
            "web-store"
        }),
        name: Str::borrowed(if dirty {
            "rack-request"
        } else {
            "rack.request"
        }),
        resource: Str::borrowed(if dirty { "" } else { "GET /users/:id" }),
        r#type: Str::borrowed("web"),
        trace_id: 42,
        span_id: i + 1,
        parent_id: i,
        start: 1_700_000_000_000_000_000,
        duration: 12_345,
        ..Default::default()
    };
    for (k, v) in [
        ("env", if dirty { "PROD" } else { "prod" }),
        ("version", "1.2.3"),
        ("http.method", "GET"),
        ("http.status_code", if dirty { "999" } else { "200" }),
        ("http.url", "https://example.com/users/1234?x=1"),
        ("component", "rack"),
        ("span.kind", "server"),
        ("language", "ruby"),
        ("runtime-id", "8b1bd1d4-7b0c-4d5d-9e44-7a8a2a2a8c3f"),
        ("peer.service", "users-db"),
    ] {
        s.meta.push(Str::borrowed(k), Str::borrowed(v));
    }
    s.metrics.push(Cow::Borrowed("_sampling_priority_v1"), 1.0);
    s.metrics.push(Cow::Borrowed("_dd.top_level"), 1.0);
    s
}

fn bench(c: &mut Criterion) {
    let n = Normalizer::new(NormalizeConfig {
        lang: "ruby".into(),
        ..NormalizeConfig::default()
    });
    let mut g = c.benchmark_group("normalize_chunk");
    for dirty in [false, true] {
        let chunk: Vec<Span<'static>> = (0..10).map(|i| span(i, dirty)).collect();
        g.throughput(Throughput::Elements(chunk.len() as u64));
        g.bench_function(
            if dirty {
                "10_spans_to_fix"
            } else {
                "10_clean_spans"
            },
            |b| {
                b.iter_batched_ref(
                    || chunk.clone(),
                    |c| {
                        let mut counts = NormalizeCounts::new();
                        let _ = n.normalize_chunk(black_box(c), &mut counts);
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    g.finish();
    let mut g = c.benchmark_group("normalize_strings");
    g.bench_function("tag_ok", |b| {
        b.iter(|| normalize_tag(black_box("good_tag")))
    });
    g.bench_function("tag_more", |b| {
        b.iter(|| normalize_tag(black_box("fun:k####y_ta@#g/1_@@#")))
    });
    g.bench_function("tag_value_digit", |b| {
        b.iter(|| normalize_tag_value(black_box("1service-name")))
    });
    g.bench_function("name_ok", |b| {
        b.iter(|| normalize_name(black_box("django.controller")))
    });
    g.bench_function("name_fix", |b| {
        b.iter(|| normalize_name(black_box("trace-api.request")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

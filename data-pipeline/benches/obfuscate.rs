//! Obfuscation throughput (ops/s): Redis, HTTP URL, JSON body, credit-card scan of a span.
//! Inputs are the agent's own benchmark inputs where it has one.
//! Run: `cargo bench -p data-pipeline --bench obfuscate`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use data_pipeline::obfuscate::{
    is_card_number, obfuscate_redis, obfuscate_url, quantize_redis, HttpConfig, JsonConfig,
    JsonObfuscator, ObfuscationConfig, Obfuscator,
};
use data_pipeline::span::Span;
use data_pipeline::span::Str;
use std::hint::black_box;

const ES_BODY: &str = r#"{ "query": { "bool": { "must": [ { "match": { "title": "smith" } } ], "must_not": [ { "match_phrase": { "title": "granny smith" } } ], "filter": [ { "exists": { "field": "title" } } ] } }, "aggs": { "my_agg": { "terms": { "field": "user", "size": 10 } } }, "highlight": { "pre_tags": [ "<em>" ], "post_tags": [ "</em>" ], "fields": { "body": { "number_of_fragments": 1, "fragment_size": 20 }, "title": {} } }, "size": 20, "from": 100, "_source": [ "title", "id" ], "sort": [ { "_id": { "order": "desc" } } ] }"#;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("obfuscate");
    g.throughput(Throughput::Elements(1));
    let geoadd = "GEOADD key longitude latitude member longitude latitude member longitude latitude member\n".repeat(5);
    g.bench_function("redis_obfuscate_geoadd_x5", |b| {
        b.iter(|| obfuscate_redis(black_box(&geoadd)))
    });
    g.bench_function("redis_obfuscate_get", |b| {
        b.iter(|| obfuscate_redis(black_box("GET user:1234")))
    });
    let q = "DEL k1\nDEL k2\nHMSET k1 \"a\" 1 \"b\" 2 \"c\" 3\nHMSET k2 \"d\" \"4\" \"e\" \"4\"\nDEL k3\nHMSET k3 \"f\" \"5\"\n".repeat(4);
    g.bench_function("redis_quantize", |b| {
        b.iter(|| quantize_redis(black_box(&q)))
    });
    let both = HttpConfig {
        remove_query_string: true,
        remove_paths_with_digits: true,
    };
    let none = HttpConfig::default();
    let url = "http://user:password@foo.com/id/123/page/1?search=bar&page=2#fragment";
    g.bench_function("http_url_both", |b| {
        b.iter(|| obfuscate_url(black_box(url), &both))
    });
    g.bench_function("http_url_default", |b| {
        b.iter(|| obfuscate_url(black_box("https://example.com/users/list?page=2"), &none))
    });
    let es = JsonObfuscator::new(&JsonConfig {
        enabled: true,
        keep_values: vec!["_source".into()],
        obfuscate_sql_values: vec![],
    });
    g.bench_function("json_es_body", |b| {
        b.iter(|| es.obfuscate(black_box(ES_BODY), None))
    });
    g.bench_function("credit_card_luhn", |b| {
        b.iter(|| is_card_number(black_box("4001 0200 0000 0009"), true))
    });
    let o = Obfuscator::new(ObfuscationConfig::default()).expect("config");
    let mut span = Span {
        r#type: Str::borrowed("web"),
        ..Default::default()
    };
    for (k, v) in [
        ("akey", "somestring"),
        ("bkey", "somestring"),
        ("card.number", "5105-1051-0510-5100"),
        ("_sample_rate", "1"),
        ("sql.query", "SELECT * FROM users WHERE id = 42"),
        ("http.url", "https://example.com/users/list?page=2"),
        ("http.method", "GET"),
    ] {
        span.meta.push(Str::borrowed(k), Str::borrowed(v));
    }
    g.bench_function("span_web_cc", |b| {
        b.iter_batched_ref(
            || span.clone(),
            |s| o.obfuscate_span(black_box(s)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

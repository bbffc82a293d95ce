//! Criterion benchmarks of the trace codecs on a realistic payload: 1,000 traces x 10 spans
//! (an HTTP root span with SQL and Redis children, 15-30 meta/metrics each), the same with
//! non-ASCII strings (`decode_v04_non_ascii`), plus a comparison of the hand-written msgpack
//! primitives with `rmp`'s.
//!
//! Run: `cargo bench -p data-pipeline --bench codec` (add `-- <filter>` to pick benchmarks).
//! Throughput is reported in bytes of the payload being decoded or produced; spans/s is
//! 10,000 spans divided by the time per iteration.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use data_pipeline::decode::{self, Format};
use data_pipeline::encode;
use std::hint::black_box;
use std::time::Duration;

#[path = "support/gen.rs"]
mod gen;

const TRACES: usize = 1_000;
const SPANS_PER_TRACE: usize = 10;

fn codec(c: &mut Criterion) {
    let traces = gen::realistic_traces(42, TRACES, SPANS_PER_TRACE);
    let v04 = encode::encode_to_vec(Format::V04, &traces).unwrap();
    let v05 = encode::encode_to_vec(Format::V05, &traces).unwrap();
    println!(
        "payload: {} traces x {} spans; v0.4 {} bytes, v0.5 {} bytes",
        TRACES,
        SPANS_PER_TRACE,
        v04.len(),
        v05.len()
    );

    let mut g = c.benchmark_group("codec");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    g.throughput(Throughput::Bytes(v04.len() as u64));
    g.bench_function("decode_v04", |b| {
        b.iter(|| decode::decode(Format::V04, black_box(&v04)).unwrap())
    });
    g.throughput(Throughput::Bytes(v05.len() as u64));
    g.bench_function("decode_v05", |b| {
        b.iter(|| decode::decode(Format::V05, black_box(&v05)).unwrap())
    });

    // The same payload with a third of the meta values and half of the resources made non-ASCII
    // (what `simdutf8` in the reader is for).
    let mut mixed = traces.clone();
    let words = [
        "café crème",
        "Straße",
        "日本語のテキスト",
        "🦀 résumé",
        "Привет, мир",
    ];
    for (n, span) in mixed.iter_mut().flatten().enumerate() {
        if n % 2 == 0 {
            span.resource = format!("{} {}", span.resource, words[n % words.len()]).into();
        }
        for (i, (_, v)) in span.meta.iter_mut().enumerate() {
            if i % 3 == 0 {
                *v = format!("{} {v}", words[i % words.len()]).into();
            }
        }
    }
    let v04_mixed = encode::encode_to_vec(Format::V04, &mixed).unwrap();
    g.throughput(Throughput::Bytes(v04_mixed.len() as u64));
    g.bench_function("decode_v04_non_ascii", |b| {
        b.iter(|| decode::decode(Format::V04, black_box(&v04_mixed)).unwrap())
    });

    let decoded = decode::decode(Format::V04, &v04).unwrap();
    g.throughput(Throughput::Bytes(v04.len() as u64));
    g.bench_function("encode_v04", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(v04.len()),
            |out| encode::encode(Format::V04, black_box(&decoded), out).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Bytes(v05.len() as u64));
    g.bench_function("encode_v05", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(v05.len()),
            |out| encode::encode(Format::V05, black_box(&decoded), out).unwrap(),
            BatchSize::LargeInput,
        )
    });

    // What the exporter does with a v0.4 payload bound for /v0.5/traces: decode, encode.
    g.throughput(Throughput::Bytes(v04.len() as u64));
    g.bench_function("v04_to_v05", |b| {
        b.iter(|| {
            let t = decode::decode(Format::V04, black_box(&v04)).unwrap();
            encode::encode_to_vec(Format::V05, &t).unwrap()
        })
    });

    g.throughput(Throughput::Bytes(v04.len() as u64));
    g.bench_function("count_traces_v04", |b| {
        b.iter(|| decode::count_traces(Format::V04, black_box(&v04)).unwrap())
    });
    g.throughput(Throughput::Bytes(v05.len() as u64));
    g.bench_function("count_traces_v05", |b| {
        b.iter(|| decode::count_traces(Format::V05, black_box(&v05)).unwrap())
    });
    g.finish();
}

/// The hand-written reader/writer against `rmp` on the codec's commonest values: strings,
/// unsigned ints and float64s (the justification the codec's comments point to).
fn primitives(c: &mut Criterion) {
    let mut rng = gen::Rng::new(7);
    let words: Vec<String> = (0..100_000)
        .map(|i| match i % 4 {
            0 => "http.status_code".to_owned(),
            1 => format!("value-{}", rng.next_u64()),
            2 => "SELECT id FROM users WHERE id = ?".to_owned(),
            _ => "_dd.p.tid".to_owned(),
        })
        .collect();
    let items: Vec<(&str, u64, f64)> = words
        .iter()
        .map(|w| (w.as_str(), rng.next_u64() >> (rng.below(64)), 1.5))
        .collect();
    let mut buf = Vec::new();
    encode::bench_hooks::write_triples(&items, &mut buf).unwrap();

    let mut g = c.benchmark_group("primitives");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("read_ours", |b| {
        b.iter(|| decode::bench_hooks::read_triples(black_box(&buf)).unwrap())
    });
    g.bench_function("read_rmp", |b| {
        b.iter(|| {
            let mut rest: &[u8] = black_box(&buf);
            let mut sum = 0u64;
            while !rest.is_empty() {
                let (s, r) = rmp::decode::read_str_from_slice(rest).unwrap();
                sum = sum.wrapping_add(s.len() as u64);
                rest = r;
                let u: u64 = rmp::decode::read_int(&mut rest).unwrap();
                sum = sum.wrapping_add(u);
                sum = sum.wrapping_add(rmp::decode::read_f64(&mut rest).unwrap().to_bits());
            }
            sum
        })
    });
    g.bench_function("write_ours", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(buf.len()),
            |out| encode::bench_hooks::write_triples(black_box(&items), out).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("write_rmp", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(buf.len()),
            |out| {
                for (s, u, f) in black_box(&items) {
                    rmp::encode::write_str(out, s).unwrap();
                    rmp::encode::write_uint(out, *u).unwrap();
                    rmp::encode::write_f64(out, *f).unwrap();
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, codec, primitives);
criterion_main!(benches);

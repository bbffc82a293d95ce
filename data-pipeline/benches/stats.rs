//! Client-side stats hot paths: adding spans to the concentrator (warm: keys already known, the
//! steady state; cold: a fresh concentrator, every key created, normalized and obfuscated),
//! top-level marking, flush + payload encoding; and the memory of a bucket for N keys (printed
//! before the measurements).
//!
//! `cargo bench -p data-pipeline --bench stats`
//!
//! Spans: `support::gen::realistic_traces(42, 1000, 10)` (web roots, SQL and Redis children with
//! 15-30 tags each), peer tags = the agent's default list. The same spans are what the
//! side-by-side comparison with libdatadog's `libdd-trace-stats` uses.

#[path = "support/gen.rs"]
mod gen;

use criterion::{BatchSize, Criterion, Throughput};
use data_pipeline::stats::top_level::compute_top_level;
use data_pipeline::stats::{Concentrator, StatsConfig, StatsMode, AGENT_DEFAULT_PEER_TAGS};
use data_pipeline::{Span, Traces};
use std::hint::black_box;

const T0: i64 = 1_700_000_000_000_000_000;

fn config() -> StatsConfig {
    StatsConfig {
        mode: StatsMode::On,
        ..Default::default()
    }
}

fn concentrator(now: i64) -> Concentrator {
    let peers: Vec<String> = AGENT_DEFAULT_PEER_TAGS
        .iter()
        .map(|s| s.to_string())
        .collect();
    Concentrator::new(&config(), now, &peers, &[], "python")
}

fn traces() -> Traces<'static> {
    let mut t = gen::realistic_traces(42, 1000, 10);
    for chunk in t.iter_mut() {
        compute_top_level(chunk);
    }
    t
}

fn span_count(t: &Traces<'_>) -> u64 {
    t.iter().map(|c| c.len() as u64).sum()
}

/// Heap bytes of one bucket holding `n` distinct keys (resources), each seen 10 times.
fn memory_report() {
    println!("stats bucket memory (one bucket, durations spread over ~3 decades):");
    for n in [100usize, 1000, 7000] {
        let mut c = Concentrator::new(
            &StatsConfig {
                max_keys_per_bucket: 10_000,
                ..config()
            },
            T0,
            &[],
            &[],
            "python",
        );
        let mut chunk: Vec<Span<'static>> = Vec::with_capacity(n * 10);
        for i in 0..n * 10 {
            chunk.push(Span {
                service: "web".into(),
                name: "http.request".into(),
                resource: format!("GET /api/v1/resource/{}", i % n).into(),
                r#type: "web".into(),
                span_id: i as u64 + 1,
                parent_id: 0,
                start: T0,
                duration: 100_000 + ((i as i64 * 7919) % 1000) * 1000,
                error: i32::from(i % 13 == 0),
                ..Default::default()
            });
        }
        compute_top_level(&mut chunk);
        c.add_chunk(&chunk);
        let bytes = c.heap_bytes();
        println!(
            "  {n:>5} keys: {:>9} bytes heap, {:>5} bytes/key",
            bytes,
            bytes / n
        );
    }
}

fn bench(c: &mut Criterion) {
    memory_report();
    let t = traces();
    let spans = span_count(&t);

    let mut g = c.benchmark_group("stats");
    g.throughput(Throughput::Elements(spans));

    // Steady state: every key already in the bucket.
    let mut warm = concentrator(T0);
    for chunk in &t {
        warm.add_chunk(chunk);
    }
    g.bench_function("add_warm/realistic_1000x10", |b| {
        b.iter(|| {
            for chunk in &t {
                black_box(warm.add_chunk(black_box(chunk)));
            }
        })
    });

    g.bench_function("add_cold/realistic_1000x10", |b| {
        b.iter_batched(
            || concentrator(T0),
            |mut c| {
                for chunk in &t {
                    black_box(c.add_chunk(black_box(chunk)));
                }
                c
            },
            BatchSize::LargeInput,
        )
    });

    g.bench_function("top_level/realistic_1000x10", |b| {
        b.iter_batched(
            || t.clone(),
            |mut tr| {
                for chunk in tr.iter_mut() {
                    compute_top_level(chunk);
                }
                tr
            },
            BatchSize::LargeInput,
        )
    });

    g.throughput(Throughput::Elements(1));
    g.bench_function("flush_encode/realistic_1000x10", |b| {
        b.iter_batched(
            || {
                let mut c = concentrator(T0);
                for chunk in &t {
                    c.add_chunk(chunk);
                }
                c
            },
            |mut c| {
                let buckets = c.flush(i64::MAX / 2, true);
                let p = data_pipeline::stats::ClientStatsPayload {
                    stats: buckets,
                    ..Default::default()
                };
                black_box(p.encode())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}

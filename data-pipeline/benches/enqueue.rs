//! The background exporter's enqueue path and its sustained throughput.
//!
//! - `enqueue/stalled_agent_*`: the cost of `enqueue` while the agent never answers (the worker is
//!   stuck on an in-flight request): payload copy, header check, fork check and queue push. Each
//!   sample gets a fresh exporter with a cap large enough that nothing is dropped.
//! - `enqueue/full_queue_*`: the same when the queue is at its cap (the payload is refused and
//!   counted).
//! - `enqueue/traces_stalled_agent_*`: `enqueue_traces` with spans built in memory (encoded into
//!   the queue by the calling thread): what libdatadog's `TraceBuffer::send_chunk` compares with.
//! - `throughput/*`: enqueue N payloads, then `flush`, into a loopback sink that answers 200 at
//!   once: spans per second delivered end to end (merge + HTTP).
//!
//! Percentiles (p50/p99) are printed by `benches/enqueue_latency.rs`; memory with the agent down
//! by `scripts/bench-background.sh`.
//!
//! `cargo bench -p data-pipeline --bench enqueue`

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use data_pipeline::exporter::{Exporter, ExporterBuilder};
use std::hint::black_box;
use std::time::{Duration, Instant};
use support::{v04_payload, Fault, FaultServer};

/// An agent that accepts connections and never answers.
fn stalled_agent() -> FaultServer {
    FaultServer::start_with(
        vec![],
        Fault::ok().delayed(Duration::from_secs(3600)),
        support::FAULT_INFO,
    )
}

fn exporter(url: &str, queue_max_bytes: usize) -> Exporter {
    let ex = ExporterBuilder::new()
        .url(url)
        .language("rust")
        .tracer_version("bench")
        .request_timeout(Duration::from_secs(3600))
        .queue_max_bytes(queue_max_bytes)
        .batch_max_delay(Duration::ZERO)
        .build()
        .expect("exporter");
    // Start the worker and let it get stuck on its first request (refused with a tiny cap: the
    // worker starts anyway).
    let _ = ex.enqueue(&v04_payload(1, 1, 1));
    std::thread::sleep(Duration::from_millis(50));
    ex
}

fn enqueue(c: &mut Criterion) {
    let agent = stalled_agent();
    let mut g = c.benchmark_group("enqueue");
    for (traces, spans) in [(1usize, 10usize), (1, 3)] {
        let payload = v04_payload(traces, spans, 1);
        g.throughput(Throughput::Bytes(payload.len() as u64));
        g.bench_function(format!("stalled_agent_{traces}x{spans}"), |b| {
            b.iter_custom(|iters| {
                // Room for every iteration: nothing is dropped.
                let cap = (iters as usize + 16) * (payload.len() + 128);
                let ex = exporter(&agent.url(), cap);
                let t0 = Instant::now();
                for _ in 0..iters {
                    ex.enqueue(black_box(&payload)).expect("enqueue");
                }
                let t = t0.elapsed();
                assert_eq!(ex.health().dropped.queue_full, 0);
                t
            })
        });
        let full = exporter(&agent.url(), 1);
        g.bench_function(format!("full_queue_{traces}x{spans}"), |b| {
            b.iter(|| full.enqueue(black_box(&payload)).is_err())
        });
        let chunks =
            data_pipeline::decode::decode_owned(data_pipeline::exporter::Format::V04, &payload)
                .expect("decode");
        g.bench_function(format!("traces_stalled_agent_{traces}x{spans}"), |b| {
            b.iter_custom(|iters| {
                let cap = (iters as usize + 16) * (payload.len() + 128);
                let ex = exporter(&agent.url(), cap);
                let t0 = Instant::now();
                for _ in 0..iters {
                    ex.enqueue_traces(black_box(&chunks))
                        .expect("enqueue_traces");
                }
                t0.elapsed()
            })
        });
    }
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let sink = FaultServer::sink();
    let ex = ExporterBuilder::new()
        .url(sink.url())
        .language("rust")
        .tracer_version("bench")
        .build()
        .expect("exporter");
    let mut g = c.benchmark_group("throughput");
    g.sample_size(20);
    for (payloads, spans) in [(1000usize, 10usize), (5000, 3)] {
        let payload = v04_payload(1, spans, 1);
        g.throughput(Throughput::Elements((payloads * spans) as u64));
        g.bench_function(format!("enqueue_flush_{payloads}x1x{spans}_to_sink"), |b| {
            b.iter(|| {
                for _ in 0..payloads {
                    ex.enqueue(black_box(&payload)).expect("enqueue");
                }
                ex.flush(Duration::from_secs(60)).expect("flush");
            })
        });
    }
    g.finish();
    let h = ex.health();
    assert!(h.balanced() && h.traces_dropped() == 0, "{h:?}");
}

criterion_group!(benches, enqueue, throughput);
criterion_main!(benches);

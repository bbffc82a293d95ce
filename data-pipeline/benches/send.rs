//! Passthrough send (v0.4 in, v0.4 out) to a loopback HTTP sink that answers 200 at once.
//!
//! `cargo bench -p data-pipeline --bench send`

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use data_pipeline::exporter::ExporterBuilder;
use std::hint::black_box;

fn send(c: &mut Criterion) {
    let sink = support::FaultServer::sink();
    let ex = ExporterBuilder::new()
        .url(sink.url())
        .language("rust")
        .tracer_version("bench")
        .build()
        .expect("exporter");
    let mut g = c.benchmark_group("send");
    for (traces, spans) in [(1000usize, 10usize), (1, 10)] {
        let payload = support::v04_payload(traces, spans, 1);
        g.throughput(Throughput::Elements((traces * spans) as u64));
        g.bench_function(format!("v04_passthrough_{traces}x{spans}"), |b| {
            b.iter(|| {
                let resp = ex.send(black_box(&payload)).expect("send");
                assert_eq!(resp.status, 200);
            })
        });
        let owned = bytes::Bytes::from(payload.clone());
        g.bench_function(format!("v04_passthrough_bytes_{traces}x{spans}"), |b| {
            b.iter(|| ex.send_bytes(black_box(owned.clone())).expect("send"))
        });
    }
    g.finish();
}

criterion_group!(benches, send);
criterion_main!(benches);

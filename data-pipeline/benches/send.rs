//! Passthrough send (v0.4 in, v0.4 out) to a loopback HTTP sink that answers 200 at once.
//!
//! `cargo bench -p data-pipeline --bench send`

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use data_pipeline::exporter::{ExporterBuilder, Format};
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
    // Conversion paths on the realistic payload: v0.4 in, v0.5 out (decode + encode), and spans
    // built through the API (encode only).
    let (traces, spans) = (1000usize, 10usize);
    let payload = support::v04_payload(traces, spans, 1);
    g.throughput(Throughput::Elements((traces * spans) as u64));
    let to_v05 = ExporterBuilder::new()
        .url(sink.url())
        .language("rust")
        .tracer_version("bench")
        .output_format(Format::V05)
        .build()
        .expect("exporter");
    to_v05.refresh_info().expect("/info");
    g.bench_function("v04_to_v05_1000x10", |b| {
        b.iter(|| to_v05.send(black_box(&payload)).expect("send"))
    });
    let decoded = data_pipeline::decode::decode(Format::V04, &payload).expect("decode");
    g.bench_function("send_traces_v04_1000x10", |b| {
        b.iter(|| ex.send_traces(black_box(&decoded)).expect("send"))
    });
    g.finish();
}

criterion_group!(benches, send);
criterion_main!(benches);

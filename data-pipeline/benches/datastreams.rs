//! Data Streams Monitoring hot paths: a checkpoint whose hash is cached, a context's encode +
//! decode (binary and base64), an aggregator add. The checkpoint includes the processor's fork
//! check: a `getpid` per call by default, one atomic load once a `pthread_atfork` notifier is
//! installed (`dsm_checkpoint_fork_notifier`, the C ABI's case).
//!
//! `cargo bench -p data-pipeline --bench datastreams`
//!
//! On a shared, loaded machine wall-clock figures include the time the thread waits for a CPU;
//! `DP_BENCH_CLOCK=cpu` measures the thread's CPU time instead (Linux
//! `CLOCK_THREAD_CPUTIME_ID`), which is what the code costs.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkGroup, Criterion, Throughput};
use data_pipeline::datastreams::aggregator::{Aggregator, PreparedPoint};
use data_pipeline::datastreams::checkpoint::StatsPoint;
use data_pipeline::datastreams::hash::GroupKey;
use data_pipeline::datastreams::{carrier, Config, PathwayContext, Processor};
use std::hint::black_box;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000_000_000;

fn processor() -> Processor {
    Processor::new(Config {
        service: "billing".into(),
        env: "prod".into(),
        flush_interval: None,
        // Nothing listens there: the final flush fails at once.
        agent_url: "unix:///nonexistent/dp-bench.sock".into(),
        ..Config::default()
    })
    .expect("processor")
}

/// Thread CPU time, in ns.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "ns (cpu)"
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        _t: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "ns (cpu)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

fn clock<M: Measurement + 'static>(c: &mut Criterion<M>) {
    c.bench_function("dsm_clock_now", |b| {
        b.iter(|| black_box(data_pipeline::datastreams::processor::now_ns()))
    });
}

/// The edge tags of the checkpoint benchmarks (a Kafka consume).
const TAGS: [&str; 4] = [
    "direction:in",
    "group:billing",
    "topic:orders",
    "type:kafka",
];

/// A processor whose hash cache is warm for [`TAGS`] after the returned upstream context, and
/// `<group>/cached_hash_explicit_now` run over it; the group is handed back open.
fn cached_hash_explicit_now<'a, M: Measurement + 'static>(
    c: &'a mut Criterion<M>,
    group: &str,
) -> (BenchmarkGroup<'a, M>, Processor, PathwayContext) {
    let dsm = processor();
    let upstream =
        PathwayContext::from_millis(0x1234_5678_9abc_def0, T0 / 1_000_000, T0 / 1_000_000);
    // Warm the hash cache.
    dsm.set_checkpoint_at(Some(&upstream), &TAGS, 512, T0);
    let mut g = c.benchmark_group(group);
    g.bench_function("cached_hash_explicit_now", |b| {
        b.iter(|| {
            black_box(dsm.set_checkpoint_at(
                Some(black_box(&upstream)),
                black_box(&TAGS),
                512,
                T0 + 1_000_000,
            ))
        })
    });
    (g, dsm, upstream)
}

fn checkpoint<M: Measurement + 'static>(c: &mut Criterion<M>) {
    let (mut g, dsm, upstream) = cached_hash_explicit_now(c, "dsm_checkpoint");
    g.bench_function("cached_hash_clock", |b| {
        b.iter(|| black_box(dsm.set_checkpoint(Some(black_box(&upstream)), black_box(&TAGS), 512)))
    });
    let mut headers = vec![("key".to_owned(), b"value".to_vec())];
    carrier::inject_kafka(&upstream, &mut headers);
    g.bench_function("kafka_consume_clock", |b| {
        b.iter(|| black_box(dsm.consume("orders", "billing", "", black_box(&headers), 512)))
    });
    g.finish();
    let _ = dsm.shutdown(std::time::Duration::from_millis(100));
}

extern "C" fn note_fork() {
    data_pipeline::exporter::fork::note_fork_in_child();
}

/// `dsm_checkpoint/cached_hash_explicit_now` once a `pthread_atfork` child handler is installed
/// (what the C ABI does at its first builder build): the processor's fork check is then one
/// atomic load instead of a `getpid` system call. Irreversible for the process: run last.
fn checkpoint_fork_notifier<M: Measurement + 'static>(c: &mut Criterion<M>) {
    // SAFETY: registers a handler that only increments an atomic (async-signal-safe).
    if unsafe { libc::pthread_atfork(None, None, Some(note_fork)) } == 0 {
        data_pipeline::exporter::fork::set_fork_notifier_installed();
    }
    let (g, dsm, _) = cached_hash_explicit_now(c, "dsm_checkpoint_fork_notifier");
    g.finish();
    let _ = dsm.shutdown(std::time::Duration::from_millis(100));
}

fn codec<M: Measurement + 'static>(c: &mut Criterion<M>) {
    let ctx =
        PathwayContext::from_millis(0x0123_4567_89ab_cdef, 1_700_000_000_000, 1_700_000_000_500);
    let mut g = c.benchmark_group("dsm_context");
    g.bench_function("encode_decode_binary", |b| {
        b.iter(|| {
            let bytes = black_box(&ctx).encode();
            black_box(PathwayContext::decode(black_box(&bytes)))
        })
    });
    g.bench_function("encode_decode_base64", |b| {
        b.iter(|| {
            let text = black_box(&ctx).encode_base64_buf();
            black_box(PathwayContext::decode_base64(black_box(text.as_bytes())))
        })
    });
    g.finish();
}

fn aggregator<M: Measurement + 'static>(c: &mut Criterion<M>) {
    let key = Arc::new(GroupKey::new(
        "billing",
        42,
        7,
        &[
            "direction:in",
            "group:billing",
            "topic:orders",
            "type:kafka",
        ],
    ));
    let mut agg = Aggregator::new(10_000_000_000, 50_000);
    let mut i = 0i64;
    c.bench_function("dsm_aggregator_add", |b| {
        b.iter(|| {
            i += 1;
            let p = PreparedPoint::new(StatsPoint {
                key: key.clone(),
                timestamp_ns: T0 + (i & 0xffff),
                pathway_latency_ns: 1_500_000_000 + (i & 0xfff) * 1_000_000,
                edge_latency_ns: 20_000_000 + (i & 0xff) * 100_000,
                payload_size: 512 + (i & 0x3f),
            });
            black_box(agg.add(p))
        })
    });
}

fn run<M: Measurement + 'static>(mut c: Criterion<M>) {
    checkpoint(&mut c);
    codec(&mut c);
    aggregator(&mut c);
    clock(&mut c);
    checkpoint_fork_notifier(&mut c);
    c.final_summary();
}

fn main() {
    if std::env::var("DP_BENCH_CLOCK").as_deref() == Ok("cpu") {
        run(Criterion::default()
            .with_measurement(ThreadCpuTime)
            .configure_from_args());
    } else {
        run(Criterion::default()
            .with_measurement(WallTime)
            .configure_from_args());
    }
}

//! Percentiles of single `enqueue` calls while the agent is stalled (accepts connections, never
//! answers): criterion gives means and medians, this gives p50/p90/p99/p99.9/max.
//!
//! Cases: one thread at a tracer's pace (100k spans/s as 10k payloads/s of 1 x 10), then tight
//! loops of 1 thread and 8 threads on one exporter, payloads of 1 trace x 10 spans (~2.7 kB) and
//! 1 x 3; fork detection by `getpid` (default) and by the `pthread_atfork` epoch (what the C ABI
//! installs). Page faults are counted on the enqueuing threads (the cost `chunk.rs` moves to the
//! worker) and in the whole process. Each call is timed with `Instant::now()` pairs; the timer's own cost (its median,
//! printed) is subtracted in the `net` columns. Nothing is dropped (fresh exporters every round
//! keep the queue under its cap).
//!
//! `cargo bench -p data-pipeline --bench enqueue_latency [-- --samples N]`

#[path = "../tests/support/mod.rs"]
mod support;

use data_pipeline::exporter::{fork, Exporter, ExporterBuilder};
use std::time::{Duration, Instant};
use support::{v04_payload, Fault, FaultServer};

/// Enqueues per exporter before a fresh one (bounds memory: 20k x 2.6 kB).
const ROUND: usize = 20_000;

fn exporter(url: &str) -> Exporter {
    let ex = ExporterBuilder::new()
        .url(url)
        .language("rust")
        .tracer_version("bench")
        .request_timeout(Duration::from_secs(3600))
        .queue_max_bytes(1 << 30)
        .batch_max_delay(Duration::ZERO)
        .build()
        .expect("exporter");
    ex.enqueue(&v04_payload(1, 1, 1)).expect("enqueue");
    std::thread::sleep(Duration::from_millis(20));
    ex
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn timer_overhead() -> u64 {
    let mut v: Vec<u64> = (0..200_000)
        .map(|_| {
            let t0 = Instant::now();
            let t1 = Instant::now();
            (t1 - t0).as_nanos() as u64
        })
        .collect();
    v.sort_unstable();
    percentile(&v, 0.5)
}

/// Minor page faults so far, of the process or of the calling thread.
fn minor_faults(who: libc::c_int) -> i64 {
    // SAFETY: getrusage with a valid, zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(who, &mut ru) };
    ru.ru_minflt
}

/// Runs `total` timed enqueues spread over `threads`; returns sorted latencies in ns and the
/// minor page faults per enqueue: on the enqueuing threads, and in the whole process (the
/// worker pre-faults chunks).
fn measure(url: &str, payload: &[u8], threads: usize, total: usize) -> (Vec<u64>, f64, f64) {
    let mut all = Vec::with_capacity(total);
    let (mut faults, mut app_faults) = (0i64, 0i64);
    let mut done = 0;
    while done < total {
        let n = ROUND.min(total - done);
        let ex = exporter(url);
        let per = n / threads;
        let f0 = minor_faults(libc::RUSAGE_SELF);
        let parts: Vec<(Vec<u64>, i64)> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    let ex = &ex;
                    s.spawn(move || {
                        let mut lat = Vec::with_capacity(per);
                        let f0 = minor_faults(libc::RUSAGE_THREAD);
                        for _ in 0..per {
                            let t0 = Instant::now();
                            let r = ex.enqueue(payload);
                            lat.push(t0.elapsed().as_nanos() as u64);
                            r.expect("enqueue");
                        }
                        // The latency vector was pre-sized: its pages faulted at its creation
                        // only if touched; count them in (conservative).
                        (lat, minor_faults(libc::RUSAGE_THREAD) - f0)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        faults += minor_faults(libc::RUSAGE_SELF) - f0;
        assert_eq!(ex.health().traces_dropped(), 0);
        for (p, f) in parts {
            all.extend(p);
            app_faults += f;
        }
        done += per * threads;
        drop(ex);
    }
    all.sort_unstable();
    let n = all.len().max(1) as f64;
    (all, app_faults as f64 / n, faults as f64 / n)
}

/// One thread enqueueing at a steady `per_sec` payloads per second (a real tracer's pace) for
/// `total` calls on one exporter.
fn measure_paced(url: &str, payload: &[u8], per_sec: u64, total: usize) -> (Vec<u64>, f64, f64) {
    let ex = exporter(url);
    let mut lat = Vec::with_capacity(total);
    let f_all = minor_faults(libc::RUSAGE_SELF);
    let f_app = minor_faults(libc::RUSAGE_THREAD);
    let start = Instant::now();
    for i in 0..total as u64 {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / per_sec);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let t0 = Instant::now();
        let r = ex.enqueue(payload);
        lat.push(t0.elapsed().as_nanos() as u64);
        r.expect("enqueue");
    }
    let app = minor_faults(libc::RUSAGE_THREAD) - f_app;
    let all = minor_faults(libc::RUSAGE_SELF) - f_all;
    assert_eq!(ex.health().traces_dropped(), 0);
    lat.sort_unstable();
    let n = total.max(1) as f64;
    (lat, app as f64 / n, all as f64 / n)
}

fn report(name: &str, lat: &[u64], overhead: u64, (app, all): (f64, f64)) {
    let net = |p: f64| percentile(lat, p).saturating_sub(overhead);
    println!(
        "{name:<34} n={:<7} p50 {:>6} ns  p90 {:>6}  p99 {:>7}  p99.9 {:>7}  max {:>8}   net p50 {:>6} ns  net p99 {:>7} ns  page faults/enqueue: app thread {app:.3}, process {all:.2}",
        lat.len(),
        percentile(lat, 0.5),
        percentile(lat, 0.9),
        percentile(lat, 0.99),
        percentile(lat, 0.999),
        lat[lat.len() - 1],
        net(0.5),
        net(0.99),
    );
}

extern "C" fn note_fork() {
    fork::note_fork_in_child();
}

fn main() {
    let mut samples = 200_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--samples" {
            samples = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--samples N");
        }
        // Other arguments (cargo bench passes --bench) are ignored.
    }
    let agent = FaultServer::start_with(
        vec![],
        Fault::ok().delayed(Duration::from_secs(3600)),
        support::FAULT_INFO,
    );
    let overhead = timer_overhead();
    println!("timer overhead (Instant::now pair, median): {overhead} ns");
    for mode in ["getpid", "atfork-epoch"] {
        if mode == "atfork-epoch" {
            // SAFETY: the handler only increments an atomic (async-signal-safe).
            let rc = unsafe { libc::pthread_atfork(None, None, Some(note_fork)) };
            assert_eq!(rc, 0);
            fork::set_fork_notifier_installed();
        }
        // 100k spans/s: 10k payloads of 1 x 10 per second, for 2 s.
        let payload = v04_payload(1, 10, 1);
        let (lat, app, all) = measure_paced(&agent.url(), &payload, 10_000, 20_000);
        report(
            &format!("{mode} 1x10 paced 100k spans/s 1t"),
            &lat,
            overhead,
            (app, all),
        );
        for (traces, spans) in [(1usize, 10usize), (1, 3)] {
            let payload = v04_payload(traces, spans, 1);
            for threads in [1usize, 8] {
                let (lat, app, all) = measure(&agent.url(), &payload, threads, samples);
                report(
                    &format!("{mode} {traces}x{spans} ({} B) {threads}t", payload.len()),
                    &lat,
                    overhead,
                    (app, all),
                );
            }
        }
    }
}

//! Memory with the agent down: enqueues a steady 100k spans/s (10k payloads of 1 trace x 10
//! spans per second) to an address where nothing listens, for 60 s, and samples the process's
//! resident memory (VmRSS). The queue must stay at its cap (`queue_max_bytes`, 32 MiB by default)
//! and drop the rest: RSS growth from before the exporter existed must stay within cap + 16 MiB.
//!
//! Run by `scripts/bench-background.sh`, or
//! `cargo bench -p data-pipeline --bench enqueue_rss -- [--seconds N] [--spans-per-sec N] [--queue-max-mib N]`.
//! Exit status 1 if the bound is passed.

#[path = "../tests/support/mod.rs"]
mod support;

use data_pipeline::exporter::ExporterBuilder;
use std::time::{Duration, Instant};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let (mut seconds, mut spans_per_sec, mut cap_mib) = (60u64, 100_000u64, 32u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = || args.next().and_then(|v| v.parse().ok()).expect("a number");
        match a.as_str() {
            "--seconds" => seconds = num(),
            "--spans-per-sec" => spans_per_sec = num(),
            "--queue-max-mib" => cap_mib = num(),
            _ => {}
        }
    }
    let spans = 10u64;
    let payload = support::v04_payload(1, spans as usize, 1);
    let port = support::free_port();
    let rss0 = rss_kib();
    let ex = ExporterBuilder::new()
        .url(format!("http://127.0.0.1:{port}"))
        .language("rust")
        .tracer_version("bench")
        .queue_max_bytes((cap_mib << 20) as usize)
        .build()
        .expect("exporter");
    let per_tick = (spans_per_sec / spans / 100).max(1); // payloads every 10 ms
    println!(
        "agent down (127.0.0.1:{port}); {spans_per_sec} spans/s as {} payloads/s of {} B; cap {cap_mib} MiB; {seconds} s",
        per_tick * 100,
        payload.len()
    );
    println!("rss before the exporter: {:.1} MiB", rss0 as f64 / 1024.0);
    let start = Instant::now();
    let mut max_rss = rss0;
    let mut next_print = Duration::from_secs(5);
    let mut tick = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        for _ in 0..per_tick {
            let _ = ex.enqueue(&payload);
        }
        tick += 1;
        let rss = rss_kib();
        max_rss = max_rss.max(rss);
        if start.elapsed() >= next_print {
            let h = ex.health();
            println!(
                "t={:>3}s rss {:>6.1} MiB (+{:>5.1})  pending {:>5.1} MiB  enqueued {:>8} traces  dropped {:>8} (breaker_open {}, queue_full {})  breaker {:?}",
                next_print.as_secs(),
                rss as f64 / 1024.0,
                (rss.saturating_sub(rss0)) as f64 / 1024.0,
                h.bytes_pending as f64 / (1 << 20) as f64,
                h.traces_enqueued,
                h.traces_dropped(),
                h.dropped.breaker_open,
                h.dropped.queue_full,
                h.breaker,
            );
            next_print += Duration::from_secs(5);
        }
        let due = start + Duration::from_millis(10 * tick);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let h = ex.health();
    let t0 = Instant::now();
    let shutdown = ex.shutdown(Duration::from_secs(1));
    let took = t0.elapsed();
    let growth = max_rss.saturating_sub(rss0);
    let bound = (cap_mib + 16) * 1024;
    println!(
        "achieved {:.0} spans/s enqueued; max rss growth {:.1} MiB (bound cap + 16 = {} MiB); pending at end {:.1} MiB",
        h.traces_enqueued as f64 * spans as f64 / elapsed,
        growth as f64 / 1024.0,
        cap_mib + 16,
        h.bytes_pending as f64 / (1 << 20) as f64
    );
    println!(
        "shutdown(1 s) took {took:?}: {:?}",
        shutdown.as_ref().map_err(|e| e.to_string())
    );
    let h = ex.health();
    println!("health: {}", h.to_json());
    assert!(h.balanced());
    if growth > bound {
        println!("FAIL: rss grew {growth} KiB > {bound} KiB");
        std::process::exit(1);
    }
    println!("PASS");
}

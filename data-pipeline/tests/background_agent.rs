//! The background exporter (`enqueue*`, `flush`, `shutdown`, `health`) against the real test
//! agent and a counting sink on loopback: what arrives, how it is batched, and the account.

mod background_support;
mod support;

use background_support::{arrivals_from, id_range, watchdog, CountingSink, MALFORMED_V04};
use data_pipeline::exporter::{BreakerState, ExporterBuilder, Format};
use data_pipeline::span::Span;
use data_pipeline::ErrorKind;
use std::time::{Duration, Instant};
use support::{v04_payload, FaultServer, TestAgent};

fn builder(url: &str, token: &str) -> ExporterBuilder {
    let mut b = ExporterBuilder::new();
    b.url(url)
        .language("rust")
        .tracer_version("0.0.1-bg")
        .service("bg-test")
        .test_session_token(token);
    b
}

#[test]
fn payloads_are_merged_delivered_once_and_accounted() {
    let _w = watchdog("merge test", Duration::from_secs(60));
    let agent = TestAgent::start();
    let token = "bg-merge";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .batch_max_delay(Duration::from_millis(200))
        .build()
        .unwrap();
    for i in 0..50u64 {
        ex.enqueue(&v04_payload(3, 2, 1000 + 3 * i)).unwrap();
    }
    ex.flush(Duration::from_secs(20)).unwrap();
    let got = arrivals_from(agent.requests(token));
    assert_eq!(got.id_set(), id_range(1000, 150));
    assert_eq!(got.duplicates(), 0);
    assert!(
        got.requests < 50,
        "50 payloads went out in {} requests: not batched",
        got.requests
    );
    let h = ex.health();
    assert_eq!(h.payloads_enqueued, 50);
    assert_eq!(h.traces_enqueued, 150);
    assert_eq!(h.traces_sent, 150);
    assert_eq!(h.requests_sent, got.requests as u64);
    assert_eq!(h.traces_dropped(), 0);
    assert_eq!((h.traces_pending, h.bytes_pending), (0, 0));
    assert!(h.balanced(), "{h:?}");
    assert!(h.worker_running);
    assert_eq!(h.breaker, BreakerState::Closed);
    // The trace-count header of every merged request matched its content.
    let (failures, report) = agent.check_failures(token);
    assert_eq!(failures, 0, "{report}");
    ex.shutdown(Duration::from_secs(5)).unwrap();
    assert!(!ex.health().worker_running);
}

#[test]
fn enqueue_traces_and_v05_output_go_through_the_decode_path() {
    let _w = watchdog("v05 test", Duration::from_secs(60));
    let agent = TestAgent::start();
    let token = "bg-v05";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .output_format(Format::V05)
        .batch_max_delay(Duration::from_millis(50))
        .build()
        .unwrap();
    let chunks: Vec<Vec<Span<'_>>> = (0..4u64)
        .map(|t| {
            (0..3u64)
                .map(|s| Span {
                    service: "api".into(),
                    name: "op".into(),
                    resource: "GET /x".into(),
                    trace_id: 500 + t,
                    span_id: s + 1,
                    parent_id: s,
                    start: 1_700_000_000_000_000_000,
                    duration: 10,
                    ..Span::default()
                })
                .collect()
        })
        .collect();
    ex.enqueue_traces(&chunks).unwrap();
    ex.enqueue(&v04_payload(2, 2, 600)).unwrap();
    ex.enqueue_traces(&[]).unwrap();
    ex.shutdown(Duration::from_secs(20)).unwrap();
    let reqs = agent.requests(token);
    assert!(reqs
        .iter()
        .filter(|r| r.path().contains("/traces"))
        .all(|r| r.path() == "/v0.5/traces"));
    let got = arrivals_from(reqs);
    let mut want = id_range(500, 4);
    want.extend([600, 601]);
    assert_eq!(got.id_set(), want);
    let h = ex.health();
    assert_eq!(h.traces_enqueued, 6);
    assert_eq!(
        h.spans_enqueued, 12,
        "spans are known for enqueue_traces only"
    );
    assert_eq!(h.traces_sent, 6);
    assert!(h.balanced());
    let (failures, report) = agent.check_failures(token);
    assert_eq!(failures, 0, "{report}");
}

#[test]
fn batch_delay_holds_small_payloads_and_batch_size_releases_them() {
    let _w = watchdog("delay test", Duration::from_secs(60));
    let sink = CountingSink::start();
    let ex = builder(&sink.url(), "")
        .batch_max_delay(Duration::from_secs(2))
        .batch_max_bytes(64 * 1024)
        .build()
        .unwrap();
    ex.enqueue(&v04_payload(1, 1, 1)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.arrivals().unique(), 0, "held for batch_max_delay");
    let end = Instant::now() + Duration::from_secs(15);
    while sink.arrivals().unique() == 0 {
        assert!(Instant::now() < end, "never sent after batch_max_delay");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A full batch goes out without waiting for the delay (no flush).
    let ex = builder(&sink.url(), "")
        .batch_max_delay(Duration::from_secs(3600))
        .batch_max_bytes(8 * 1024)
        .build()
        .unwrap();
    let mut id = 100;
    while ex.health().bytes_enqueued < 8 * 1024 {
        ex.enqueue(&v04_payload(2, 2, id)).unwrap();
        id += 2;
    }
    let end = Instant::now() + Duration::from_secs(15);
    while ex.health().traces_sent == 0 {
        assert!(Instant::now() < end, "a full batch was not sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sink.arrivals().id_set().contains(&100));
}

#[test]
fn malformed_payload_is_dropped_alone_after_the_agents_400() {
    let _w = watchdog("400 test", Duration::from_secs(60));
    let agent = TestAgent::start();
    let token = "bg-400";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .batch_max_delay(Duration::from_secs(60))
        .build()
        .unwrap();
    ex.enqueue(&v04_payload(2, 2, 10)).unwrap();
    // The header is valid, so enqueue accepts it; the agent refuses the merged batch.
    ex.enqueue(MALFORMED_V04).unwrap();
    ex.enqueue(&v04_payload(3, 1, 20)).unwrap();
    ex.flush(Duration::from_secs(20)).unwrap();
    let h = ex.health();
    assert_eq!(h.dropped.invalid, 1, "{h:?}");
    assert_eq!(h.traces_sent, 5);
    assert!(h.balanced());
    let got = arrivals_from(agent.requests(token));
    assert_eq!(got.undecodable, 1, "the merged batch the agent refused");
    assert_eq!(
        got.requests, 1,
        "the good payloads went out once more, merged"
    );
    assert_eq!(got.id_set(), [10, 11, 20, 21, 22].into_iter().collect());
    // Not a payload at all: refused at once, not counted.
    let err = ex.enqueue(b"\x81\xa1a\x01").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(ex.health().payloads_enqueued, 3);
}

#[test]
fn rates_from_background_answers_reach_the_tracer() {
    let _w = watchdog("rates test", Duration::from_secs(60));
    let agent = TestAgent::start();
    let token = "bg-rates";
    agent.start_session(token, Some(r#"{"service:bg-test,env:prod": 0.25}"#));
    let ex = builder(&agent.url(), token)
        .env("prod")
        .batch_max_delay(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(ex.sampling_rate("bg-test", "prod"), 1.0, "no feedback yet");
    ex.enqueue(&v04_payload(1, 1, 1)).unwrap();
    ex.flush(Duration::from_secs(20)).unwrap();
    assert_eq!(ex.sampling_rate("bg-test", "prod"), 0.25);
}

#[test]
fn shutdown_is_idempotent_and_later_enqueues_are_counted_drops() {
    let _w = watchdog("shutdown test", Duration::from_secs(60));
    let sink = CountingSink::start();
    let ex = builder(&sink.url(), "").build().unwrap();
    ex.enqueue(&v04_payload(2, 1, 1)).unwrap();
    ex.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(sink.arrivals().id_set(), id_range(1, 2), "shutdown drains");
    ex.shutdown(Duration::from_secs(1)).unwrap();
    let err = ex.enqueue(&v04_payload(3, 1, 10)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Shutdown);
    ex.flush(Duration::from_millis(10)).unwrap();
    let h = ex.health();
    assert_eq!(h.traces_enqueued, 5);
    assert_eq!(h.dropped.shutdown, 3);
    assert!(h.balanced());
    // The synchronous path still works.
    assert_eq!(ex.send(&v04_payload(1, 1, 99)).unwrap().status, 200);
    // An exporter that never enqueued shuts down at once.
    let idle = builder(&sink.url(), "").build().unwrap();
    idle.shutdown(Duration::from_secs(1)).unwrap();
    assert!(!idle.health().worker_running);
}

#[test]
fn drop_never_blocks_even_with_a_request_in_flight() {
    let _w = watchdog("drop test", Duration::from_secs(60));
    let server = FaultServer::start_with(
        vec![],
        support::Fault::ok().delayed(Duration::from_secs(20)),
        support::FAULT_INFO,
    );
    let ex = builder(&server.url(), "")
        .batch_max_delay(Duration::ZERO)
        .request_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    ex.enqueue(&v04_payload(1, 1, 1)).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while server.trace_requests().is_empty() {
        assert!(Instant::now() < end, "no request went out");
        std::thread::sleep(Duration::from_millis(10));
    }
    let t0 = Instant::now();
    drop(ex);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
}

#[test]
fn statsd_metrics_are_emitted_at_shutdown() {
    let _w = watchdog("statsd test", Duration::from_secs(60));
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sink = CountingSink::start();
    let ex = builder(&sink.url(), "")
        .statsd_url(format!("udp://{}", rx.local_addr().unwrap()))
        .env("prod")
        .build()
        .unwrap();
    ex.enqueue(&v04_payload(4, 1, 1)).unwrap();
    ex.shutdown(Duration::from_secs(10)).unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("sent.traces") {
        let n = rx.recv(&mut buf).expect("a statsd datagram");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        text.push('\n');
    }
    assert!(
        text.contains(
            "datadog.tracer.exporter.sent.traces:4|c|#lang:rust,tracer_version:0.0.1-bg,service:bg-test,env:prod"
        ),
        "{text}"
    );
    assert!(
        text.contains("datadog.tracer.exporter.enqueued.traces:4|c"),
        "{text}"
    );
    assert!(
        text.contains("datadog.tracer.exporter.queue.traces:0|g"),
        "{text}"
    );
}

/// 8 threads enqueue as fast as they can into a sink for `secs`; then shutdown. Every trace is
/// delivered exactly once or counted as dropped (queue full), and nothing hangs.
fn hammer(secs: u64) {
    let _w = watchdog("concurrency test", Duration::from_secs(secs + 120));
    let sink = CountingSink::start();
    let ex = builder(&sink.url(), "")
        .queue_max_bytes(4 << 20)
        .batch_max_delay(Duration::from_millis(20))
        .build()
        .unwrap();
    let stop = Instant::now() + Duration::from_secs(secs);
    let per_thread: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let ex = &ex;
                s.spawn(move || {
                    let base = (t + 1) << 40;
                    let (mut ok, mut full) = (0u64, 0u64);
                    let mut n = 0u64;
                    while Instant::now() < stop {
                        match ex.enqueue(&v04_payload(2, 3, base + 2 * n)) {
                            Ok(()) => ok += 2,
                            Err(e) => {
                                assert_eq!(e.kind(), ErrorKind::Overflow, "{e}");
                                full += 2;
                            }
                        }
                        n += 1;
                    }
                    (ok, full)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    ex.shutdown(Duration::from_secs(60)).unwrap();
    let accepted: u64 = per_thread.iter().map(|p| p.0).sum();
    let refused: u64 = per_thread.iter().map(|p| p.1).sum();
    let h = ex.health();
    let got = sink.arrivals();
    assert!(accepted > 0);
    assert_eq!(h.traces_enqueued, accepted + refused);
    assert_eq!(
        h.dropped.queue_full + h.dropped.breaker_open,
        refused,
        "{h:?}"
    );
    assert_eq!(
        h.traces_sent, accepted,
        "everything queued was delivered: {h:?}"
    );
    assert_eq!(got.unique(), accepted);
    assert_eq!(got.duplicates(), 0);
    assert_eq!(h.traces_pending, 0);
    assert!(h.balanced());
}

#[test]
fn eight_threads_for_two_seconds() {
    hammer(2);
}

#[test]
#[ignore = "long (10 s); run with --ignored"]
fn eight_threads_for_ten_seconds() {
    hammer(10);
}

#[test]
fn enqueue_trace_refs_delivers_what_enqueue_traces_does() {
    let _w = watchdog("trace refs", Duration::from_secs(60));
    let sink = CountingSink::start();
    let ex = builder(&sink.url(), "").build().unwrap();
    let chunk = |id: u64, n: u64| -> Vec<Span<'static>> {
        (0..n)
            .map(|s| Span {
                name: "op".into(),
                service: "svc".into(),
                trace_id: id,
                span_id: s + 1,
                ..Span::default()
            })
            .collect()
    };
    let owned: Vec<Vec<Span<'static>>> = (0..20).map(|i| chunk(100 + i, 1 + i % 4)).collect();
    let refs: Vec<&Vec<Span<'static>>> = owned.iter().collect();
    ex.enqueue_trace_refs(&refs).unwrap();
    ex.enqueue_trace_refs(&[]).unwrap();
    ex.enqueue_traces(&[chunk(500, 2)]).unwrap();
    ex.shutdown(Duration::from_secs(20)).unwrap();
    let mut want = id_range(100, 20);
    want.insert(500);
    assert_eq!(sink.arrivals().id_set(), want);
    let h = ex.health();
    assert_eq!(h.traces_sent, 21);
    let spans: u64 = (0..20u64).map(|i| 1 + i % 4).sum::<u64>() + 2;
    assert_eq!(h.spans_enqueued, spans);
}

#[test]
fn client_side_stats_through_the_background_path() {
    use data_pipeline::span::Map;
    use data_pipeline::stats::StatsMode;
    let _w = watchdog("stats test", Duration::from_secs(90));
    let agent = TestAgent::start();
    let token = "bg-stats";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .env("prod")
        .stats(StatsMode::Auto)
        .batch_max_delay(Duration::from_millis(50))
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    // 40 one-span traces: even ids kept (priority 1), odd ids P0 (priority 0).
    let chunks: Vec<Vec<Span<'static>>> = (0..40u64)
        .map(|i| {
            let mut metrics = Map::default();
            metrics.push("_sampling_priority_v1", if i % 2 == 0 { 1.0 } else { 0.0 });
            vec![Span {
                service: "bg-test".into(),
                name: "web.request".into(),
                resource: "GET /".into(),
                r#type: "web".into(),
                trace_id: 7000 + i,
                span_id: 1,
                start: now - 1_000_000,
                duration: 1_000_000,
                metrics,
                ..Span::default()
            }]
        })
        .collect();
    for c in chunks.chunks(5) {
        ex.enqueue_traces(c).unwrap();
    }
    ex.shutdown(Duration::from_secs(30)).unwrap();
    let h = ex.health();
    assert_eq!(h.traces_enqueued, 40);
    assert_eq!(h.traces_sent, 20, "{h:?}");
    assert_eq!(
        h.dropped.p0, 20,
        "P0 chunks are sampled out, and counted: {h:?}"
    );
    assert_eq!(h.traces_dropped(), 20);
    assert!(h.balanced());

    let reqs = agent.requests(token);
    let traces: Vec<_> = reqs.iter().filter(|r| r.path() == "/v0.4/traces").collect();
    assert!(!traces.is_empty());
    let mut p0_header = 0u64;
    for r in &traces {
        assert_eq!(r.header("Datadog-Client-Computed-Stats"), Some("true"));
        p0_header += r
            .header("Datadog-Client-Dropped-P0-Traces")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    assert_eq!(p0_header, 20, "the agent is told about every P0 dropped");
    let got = arrivals_from(reqs.clone());
    assert_eq!(
        got.id_set(),
        (0..40u64)
            .filter(|i| i % 2 == 0)
            .map(|i| 7000 + i)
            .collect()
    );
    // Stats for every span, kept or not, counted once (one shared stage), delivered by shutdown.
    let mut hits = 0u64;
    for r in reqs.iter().filter(|r| r.path() == "/v0.6/stats") {
        let v = rmpv::decode::read_value(&mut &r.body[..]).expect("stats payload");
        let field = |m: &rmpv::Value, k: &str| -> rmpv::Value {
            m.as_map()
                .and_then(|m| m.iter().find(|(key, _)| key.as_str() == Some(k)))
                .map(|(_, v)| v.clone())
                .unwrap_or(rmpv::Value::Nil)
        };
        for bucket in field(&v, "Stats").as_array().into_iter().flatten() {
            for group in field(bucket, "Stats").as_array().into_iter().flatten() {
                hits += field(group, "Hits").as_u64().unwrap_or(0);
            }
        }
    }
    assert_eq!(hits, 40);
}

//! The background exporter under faults, with real processes on loopback. The agent is down at
//! start, killed mid-run (even with a request in flight) and restarted on the same port, or slow;
//! a fault server answers 5xx bursts, 429 with Retry-After, resets, truncated answers and 413.
//!
//! In every case: no crash, no hang beyond the shutdown timeout, and an exact account:
//! enqueued = delivered (counted at the agent or server) + dropped (counted by reason).

mod background_support;
mod support;

use background_support::{id_range, reserve_port, watchdog, AgentProcess, Arrivals};
use data_pipeline::exporter::{BreakerState, Exporter, ExporterBuilder, Health};
use data_pipeline::ErrorKind;
use std::time::{Duration, Instant};
use support::{v04_payload, Fault, FaultServer};

fn builder(url: &str, token: &str) -> ExporterBuilder {
    let mut b = ExporterBuilder::new();
    b.url(url)
        .language("rust")
        .tracer_version("0.0.1-faults")
        .test_session_token(token)
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_secs(3))
        .batch_max_delay(Duration::from_millis(50));
    b
}

/// Enqueues `n` payloads of `per` traces (1 span each) with ids from `first`; all must be queued.
fn enqueue_range(ex: &Exporter, first: u64, n: u64, per: u64) {
    for i in 0..n {
        ex.enqueue(&v04_payload(per as usize, 1, first + i * per))
            .unwrap_or_else(|e| panic!("enqueue {i}: {e}"));
    }
}

/// The exact account, with `delivered` counted at the receiving end.
fn assert_account(h: &Health, enqueued: u64, delivered: &Arrivals) {
    assert_eq!(h.traces_enqueued, enqueued, "{h:?}");
    assert_eq!(h.traces_pending, 0, "{h:?}");
    assert_eq!(h.traces_sent, delivered.unique(), "sent vs received: {h:?}");
    assert_eq!(
        delivered.unique() + h.traces_dropped(),
        enqueued,
        "delivered + dropped = enqueued: {h:?}"
    );
    assert!(h.balanced(), "{h:?}");
}

/// Trace requests the fault server answered with 2xx in time (the script is played in order, one
/// request at a time; requests beyond the script get the fallback answer).
fn accepted(server: &FaultServer, script: &[Fault], fallback_ok: bool) -> Arrivals {
    let mut out = Arrivals::default();
    for (i, r) in server.trace_requests().iter().enumerate() {
        let ok = match script.get(i) {
            Some(Fault::Respond { status, delay, .. }) => {
                (200..300).contains(status) && *delay < Duration::from_secs(1)
            }
            Some(_) => false,
            None => fallback_ok,
        };
        if ok {
            out.add(background_support::trace_ids(&r.path, &r.body));
        }
    }
    out
}

#[test]
fn agent_down_at_start_then_up_delivers_everything_within_the_cap() {
    let _w = watchdog("agent down then up", Duration::from_secs(120));
    let port = reserve_port();
    let token = "bg-late-agent";
    let ex = builder(&format!("http://127.0.0.1:{port}"), token)
        .build()
        .unwrap();
    enqueue_range(&ex, 1, 40, 5);
    // Nothing listens yet: the breaker opens and the traces wait.
    let end = Instant::now() + Duration::from_secs(20);
    while ex.health().breaker == BreakerState::Closed {
        assert!(Instant::now() < end, "breaker never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = ex.flush(Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.message().contains("200 trace(s)"), "{err}");
    enqueue_range(&ex, 1001, 10, 5);
    std::thread::sleep(Duration::from_millis(500));
    let agent = AgentProcess::start(port);
    ex.shutdown(Duration::from_secs(30)).unwrap();
    let got = agent.arrivals(token);
    let mut want = id_range(1, 200);
    want.extend(id_range(1001, 50));
    assert_eq!(got.id_set(), want);
    assert_eq!(got.duplicates(), 0);
    let h = ex.health();
    assert_account(&h, 250, &got);
    assert_eq!(h.traces_dropped(), 0, "{h:?}");
    assert!(h.breaker_opened >= 1 && h.requests_failed >= 3, "{h:?}");
    assert_eq!(h.breaker, BreakerState::Closed);
}

#[test]
fn agent_killed_mid_run_and_restarted_on_the_same_port() {
    let _w = watchdog("agent killed", Duration::from_secs(180));
    let port = reserve_port();
    let token = "bg-killed";
    let mut first = AgentProcess::start(port);
    let ex = builder(&first.url(), token).build().unwrap();
    // Phase 1: delivered to the first agent.
    enqueue_range(&ex, 1, 20, 3);
    ex.flush(Duration::from_secs(20)).unwrap();
    assert_eq!(first.arrivals(token).id_set(), id_range(1, 60));
    // Phase 2: the agent stalls on the next request (it records a request before stalling) and is
    // killed while that request is in flight.
    first.settings(r#"{"trace_request_delay": 5.0}"#);
    enqueue_range(&ex, 1001, 10, 3);
    let end = Instant::now() + Duration::from_secs(10);
    let before_kill = loop {
        let got = first.arrivals(token);
        if got.ids.contains_key(&1001) {
            break got;
        }
        assert!(Instant::now() < end, "the stalled request never arrived");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        ex.health().traces_sent,
        60,
        "the stalled request is still in flight"
    );
    first.kill();
    // Phase 3: more traces while the agent is gone, then a new agent on the same port.
    enqueue_range(&ex, 2001, 10, 3);
    std::thread::sleep(Duration::from_secs(1));
    let second = AgentProcess::start(port);
    ex.shutdown(Duration::from_secs(30)).unwrap();
    let mut got = before_kill.clone();
    got.merge(&second.arrivals(token));
    let mut want = id_range(1, 60);
    want.extend(id_range(1001, 30));
    want.extend(id_range(2001, 30));
    assert_eq!(got.id_set(), want);
    let h = ex.health();
    assert_account(&h, 120, &got);
    assert_eq!(h.traces_dropped(), 0);
    assert!(h.requests_failed >= 1, "{h:?}");
}

#[test]
fn slow_agent_delays_but_never_blocks_or_loses() {
    let _w = watchdog("slow agent", Duration::from_secs(120));
    let agent = AgentProcess::start(reserve_port());
    let token = "bg-slow";
    agent.settings(r#"{"trace_request_delay": 1.0}"#);
    let ex = builder(&agent.url(), token).build().unwrap();
    let t_start = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..30u64 {
        let t0 = Instant::now();
        ex.enqueue(&v04_payload(2, 1, 1 + 2 * i)).unwrap();
        slowest = slowest.max(t0.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Not a benchmark: a bound far above any enqueue cost, far below one agent delay.
    assert!(
        slowest < Duration::from_millis(200),
        "an enqueue waited {slowest:?}"
    );
    ex.shutdown(Duration::from_secs(30)).unwrap();
    let got = agent.arrivals(token);
    assert_eq!(got.id_set(), id_range(1, 60));
    let h = ex.health();
    assert_account(&h, 60, &got);
    // Each request took 1 s: the agent really was slow, and payloads piled up into batches.
    assert!(
        t_start.elapsed() >= Duration::from_secs(h.requests_sent),
        "{h:?}"
    );
    assert!(h.requests_sent < 10, "batched while waiting: {h:?}");
}

#[test]
fn agent_slower_than_the_request_timeout_opens_the_breaker_then_recovers() {
    let _w = watchdog("timeouts", Duration::from_secs(120));
    let slow = Fault::ok().delayed(Duration::from_millis(1500));
    let script = vec![slow.clone(), slow.clone(), slow.clone(), slow];
    let server = FaultServer::start(script.clone());
    let ex = builder(&server.url(), "")
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    enqueue_range(&ex, 1, 5, 2);
    ex.shutdown(Duration::from_secs(30)).unwrap();
    let got = accepted(&server, &script, true);
    assert_eq!(got.id_set(), id_range(1, 10));
    let h = ex.health();
    assert_account(&h, 10, &got);
    assert!(h.breaker_opened >= 1, "{h:?}");
    assert!(h.requests_failed >= 4, "{h:?}");
}

#[test]
fn server_error_bursts_are_retried_then_dropped_beyond_max_retries() {
    let _w = watchdog("5xx", Duration::from_secs(120));
    // A short burst: retried through.
    let script = vec![
        Fault::status(503),
        Fault::status(500),
        Fault::status(502),
        Fault::ok(),
        Fault::status(504),
        Fault::ok(),
    ];
    let server = FaultServer::start(script.clone());
    let ex = builder(&server.url(), "").max_retries(3).build().unwrap();
    enqueue_range(&ex, 1, 3, 2);
    ex.flush(Duration::from_secs(20)).unwrap();
    enqueue_range(&ex, 101, 3, 2);
    ex.shutdown(Duration::from_secs(20)).unwrap();
    let got = accepted(&server, &script, true);
    let h = ex.health();
    assert_account(&h, 12, &got);
    assert_eq!(h.traces_dropped(), 0, "{h:?}");
    assert_eq!(h.retries, 4, "{h:?}");
    assert_eq!(h.requests_failed, 4);

    // A long burst: each batch gives up after max_retries; later batches go through.
    let mut script = vec![Fault::status(503); 6];
    script.push(Fault::ok());
    let server = FaultServer::start(script.clone());
    let ex = builder(&server.url(), "").max_retries(2).build().unwrap();
    for i in 0..3u64 {
        enqueue_range(&ex, 1000 * (i + 1), 1, 4);
        ex.flush(Duration::from_secs(20)).unwrap();
    }
    ex.shutdown(Duration::from_secs(20)).unwrap();
    let got = accepted(&server, &script, true);
    let h = ex.health();
    assert_account(&h, 12, &got);
    assert_eq!(
        h.dropped.retries_exhausted, 8,
        "two batches of 4 gave up: {h:?}"
    );
    assert_eq!(got.id_set(), id_range(3000, 4));
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let _w = watchdog("429", Duration::from_secs(60));
    let script = vec![Fault::status(429).header("Retry-After", "1"), Fault::ok()];
    let server = FaultServer::start(script.clone());
    let ex = builder(&server.url(), "").build().unwrap();
    enqueue_range(&ex, 1, 2, 2);
    ex.shutdown(Duration::from_secs(20)).unwrap();
    let reqs = server.trace_requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert_eq!(reqs[0].body, reqs[1].body, "the same batch again");
    let got = accepted(&server, &script, true);
    assert_account(&ex.health(), 4, &got);
}

#[test]
fn resets_and_truncated_answers_are_retried_without_loss() {
    let _w = watchdog("resets", Duration::from_secs(120));
    let script = vec![
        Fault::Reset,
        Fault::Truncated,
        Fault::ok(),
        Fault::Truncated,
        Fault::Reset,
        Fault::ok(),
    ];
    let server = FaultServer::start(script.clone());
    let ex = builder(&server.url(), "").build().unwrap();
    enqueue_range(&ex, 1, 4, 2);
    ex.flush(Duration::from_secs(20)).unwrap();
    enqueue_range(&ex, 101, 4, 2);
    ex.shutdown(Duration::from_secs(20)).unwrap();
    let got = accepted(&server, &script, true);
    let mut want = id_range(1, 8);
    want.extend(id_range(101, 8));
    assert_eq!(got.id_set(), want);
    let h = ex.health();
    assert_account(&h, 16, &got);
    assert_eq!(h.requests_failed, 4, "{h:?}");
    // A truncated answer means the server had the payload: it may arrive twice (at-least-once),
    // but the accepted requests hold each trace once.
    assert_eq!(got.duplicates(), 0);
}

#[test]
fn payload_too_large_is_split_and_delivered() {
    let _w = watchdog("413", Duration::from_secs(60));
    let script = vec![Fault::status(413), Fault::ok(), Fault::ok()];
    let server = FaultServer::start(script.clone());
    let ex = builder(&server.url(), "").build().unwrap();
    enqueue_range(&ex, 1, 1, 6);
    ex.shutdown(Duration::from_secs(20)).unwrap();
    assert_eq!(server.trace_requests().len(), 3);
    let got = accepted(&server, &script, true);
    assert_eq!(got.requests, 2);
    assert_eq!(got.id_set(), id_range(1, 6));
    assert_account(&ex.health(), 6, &got);
}

#[test]
fn cap_reached_while_agent_down_drops_and_counts_and_shutdown_is_bounded() {
    let _w = watchdog("cap", Duration::from_secs(60));
    let port = reserve_port();
    let ex = builder(&format!("http://127.0.0.1:{port}"), "")
        .queue_max_bytes(32 * 1024)
        .build()
        .unwrap();
    let (mut queued, mut refused) = (0u64, 0u64);
    for i in 0..200u64 {
        match ex.enqueue(&v04_payload(1, 2, 1 + i)) {
            Ok(()) => queued += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Overflow, "{e}");
                refused += 1;
            }
        }
    }
    assert!(
        queued > 0 && refused > 0,
        "{queued} queued, {refused} refused"
    );
    let h = ex.health();
    assert!(h.bytes_pending <= 32 * 1024, "{h:?}");
    assert_eq!(h.dropped.queue_full + h.dropped.breaker_open, refused);
    let t0 = Instant::now();
    let err = ex.shutdown(Duration::from_millis(800)).unwrap_err();
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(1300), "shutdown took {took:?}");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    let h = ex.health();
    assert_eq!(h.traces_enqueued, 200);
    assert_eq!(h.dropped.shutdown, queued, "{h:?}");
    assert_eq!(h.traces_pending, 0);
    assert!(h.balanced(), "{h:?}");
}

#[test]
fn shutdown_returns_in_time_while_a_request_hangs() {
    let _w = watchdog("hang", Duration::from_secs(60));
    let server = FaultServer::start_with(
        vec![],
        Fault::ok().delayed(Duration::from_secs(30)),
        support::FAULT_INFO,
    );
    let ex = builder(&server.url(), "")
        .request_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    enqueue_range(&ex, 1, 3, 2);
    let end = Instant::now() + Duration::from_secs(10);
    while server.trace_requests().is_empty() {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(10));
    }
    enqueue_range(&ex, 100, 2, 2);
    let t0 = Instant::now();
    let err = ex.shutdown(Duration::from_millis(500)).unwrap_err();
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(1000), "shutdown took {took:?}");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.message().contains("10 trace(s)"), "{err}");
    let h = ex.health();
    assert_eq!(h.dropped.shutdown, 10, "{h:?}");
    assert!(h.balanced());
    assert!(!h.worker_running, "the worker stopped: {h:?}");
}

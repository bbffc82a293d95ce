//! The stats flusher against a slow agent: a fault server on loopback that answers after a delay
//! (the test agent cannot be told to answer slowly).

mod support;

use data_pipeline::stats::flusher::{PayloadMeta, StatsSender, StatsWorker};
use data_pipeline::stats::{top_level, Concentrator, StatsConfig};
use data_pipeline::transport::AgentUrl;
use data_pipeline::ErrorKind;
use data_pipeline::Span;
use std::time::{Duration, Instant};
use support::{Fault, FaultServer};

/// A server that answers every request 200 after `delay`.
fn slow_agent(delay: Duration) -> FaultServer {
    let ok = Fault::Respond {
        status: 200,
        headers: Vec::new(),
        body: "{}".into(),
        delay,
    };
    FaultServer::start_with(vec![], ok, support::FAULT_INFO)
}

/// A worker flushing every 5 ms to a server that answers 200 after `delay`, holding one counted
/// span in a bucket that is complete within a few periods.
fn worker_with_one_old_span(server: &FaultServer) -> StatsWorker {
    let url = AgentUrl::parse(&server.url()).unwrap();
    let sender = StatsSender::new(
        &url,
        Duration::from_secs(1),
        Duration::from_secs(5),
        reqwest::header::HeaderMap::new(),
        PayloadMeta::default(),
    )
    .unwrap();
    let now = now_ns();
    // 10 ms buckets: the span's bucket is complete (past the buffer) within a few periods.
    let config = StatsConfig {
        bucket_size: Duration::from_millis(10),
        ..StatsConfig::default()
    };
    let mut conc = Concentrator::new(&config, now, &[], &[], "rust");
    assert_eq!(conc.add_chunk(&one_span_chunk(now)), 1);
    StatsWorker::start(conc, sender, Duration::from_millis(5)).unwrap()
}

/// One top-level span starting at `now_ns`.
fn one_span_chunk(now_ns: i64) -> Vec<Span<'static>> {
    let mut chunk = vec![Span {
        service: "svc".into(),
        name: "op".into(),
        resource: "GET /".into(),
        trace_id: 1,
        span_id: 1,
        start: now_ns,
        duration: 10,
        ..Default::default()
    }];
    top_level::compute_top_level(&mut chunk);
    chunk
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// The stats payloads the server received.
fn stats_requests(server: &FaultServer) -> usize {
    server
        .all_requests()
        .iter()
        .filter(|r| r.path.ends_with("/v0.6/stats"))
        .count()
}

/// Waits until the server has received a stats payload (the worker's periodic flush took the
/// bucket and is now waiting for the slow answer).
fn wait_for_stats_request(server: &FaultServer) {
    let end = Instant::now() + Duration::from_secs(10);
    while stats_requests(server) == 0 {
        assert!(Instant::now() < end, "the worker never sent its bucket");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn flush_returns_after_the_workers_send_in_flight() {
    let server = slow_agent(Duration::from_millis(400));
    let w = worker_with_one_old_span(&server);
    wait_for_stats_request(&server);
    // The concentrator is empty now; the flush must still wait for that send to end.
    w.flush(true, Duration::from_secs(5)).unwrap();
    assert_eq!(w.sent_payloads(), 1);
    w.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn flush_gives_up_on_the_workers_send_at_its_deadline() {
    let server = slow_agent(Duration::from_millis(600));
    let w = worker_with_one_old_span(&server);
    wait_for_stats_request(&server);
    let e = w.flush(true, Duration::from_millis(20)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    // Nothing was dropped: the worker's send completes.
    w.shutdown(Duration::from_secs(3)).unwrap();
    assert_eq!(w.sent_payloads(), 1);
}

#[test]
fn shutdown_sends_what_is_left_while_the_worker_is_sending() {
    // The worker's send takes 800 ms; later requests are answered at once.
    let slow = Fault::Respond {
        status: 200,
        headers: Vec::new(),
        body: "{}".into(),
        delay: Duration::from_millis(800),
    };
    let server = FaultServer::start_with(vec![slow], Fault::status(200), support::FAULT_INFO);
    let w = worker_with_one_old_span(&server);
    wait_for_stats_request(&server);
    w.with_concentrator(|c| c.add_chunk(&one_span_chunk(now_ns())));
    // A bound shorter than the worker's send: what is left must still be taken and sent.
    let _ = w.shutdown(Duration::from_millis(300));
    assert_eq!(stats_requests(&server), 2, "the open bucket was not sent");
}

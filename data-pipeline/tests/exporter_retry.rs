//! Retry behaviour of the exporter against a fault-injecting HTTP server on loopback (the test
//! agent cannot answer 5xx/429 or cut connections).

mod support;

use data_pipeline::exporter::{Exporter, ExporterBuilder, Format};
use data_pipeline::ErrorKind;
use std::time::{Duration, Instant};
use support::{v04_payload, Fault, FaultServer};

fn exporter(url: &str, send_timeout: Duration) -> Exporter {
    ExporterBuilder::new()
        .url(url)
        .language("rust")
        .tracer_version("0.0.1")
        .request_timeout(Duration::from_millis(500))
        .send_timeout(send_timeout)
        .max_retries(3)
        .build()
        .unwrap()
}

#[test]
fn server_errors_are_retried_until_delivered_once() {
    let server = FaultServer::start(vec![Fault::status(503), Fault::status(500), Fault::ok()]);
    let ex = exporter(&server.url(), Duration::from_secs(5));
    let payload = v04_payload(3, 2, 1);
    let resp = ex.send(&payload).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.rate("any", "env"), Some(1.0));
    let reqs = server.trace_requests();
    assert_eq!(reqs.len(), 3, "two failures then one success");
    for r in &reqs {
        assert_eq!(r.method, "PUT");
        assert_eq!(r.path, "/v0.4/traces");
        assert_eq!(r.body, payload, "the same bytes every attempt");
        assert_eq!(r.header("x-datadog-trace-count"), Some("3"));
    }
    // One more send goes out once (nothing left in the script).
    ex.send(&payload).unwrap();
    assert_eq!(server.trace_requests().len(), 4);
}

#[test]
fn client_errors_are_not_retried() {
    for status in [400, 401, 403, 404, 415, 422] {
        let server = FaultServer::start(vec![Fault::status(status)]);
        let ex = exporter(&server.url(), Duration::from_secs(5));
        let err = ex.send(&v04_payload(1, 1, 1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Http, "{status}: {err}");
        assert_eq!(err.http_status(), Some(status));
        assert!(err.message().contains(&status.to_string()), "{err}");
        assert_eq!(
            server.trace_requests().len(),
            1,
            "{status} must not be retried"
        );
    }
}

#[test]
fn retries_are_bounded_by_max_retries() {
    let server = FaultServer::start_with(vec![], Fault::status(502), support::FAULT_INFO);
    let ex = ExporterBuilder::new()
        .url(server.url())
        .max_retries(2)
        .send_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let err = ex.send(&v04_payload(1, 1, 1)).unwrap_err();
    assert_eq!(err.http_status(), Some(502));
    assert!(err.message().contains("after 2 retries"), "{err}");
    assert_eq!(server.trace_requests().len(), 3);

    let server = FaultServer::start(vec![Fault::status(503)]);
    let ex = ExporterBuilder::new()
        .url(server.url())
        .max_retries(0)
        .build()
        .unwrap();
    assert_eq!(
        ex.send(&v04_payload(1, 1, 1)).unwrap_err().http_status(),
        Some(503)
    );
    assert_eq!(server.trace_requests().len(), 1);
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let server = FaultServer::start(vec![
        Fault::status(429).header("Retry-After", "1"),
        Fault::ok(),
    ]);
    let ex = exporter(&server.url(), Duration::from_secs(5));
    ex.send(&v04_payload(1, 1, 1)).unwrap();
    let reqs = server.trace_requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, Retry-After was 1 s"
    );
    assert!(gap < Duration::from_secs(3), "waited too long: {gap:?}");
}

#[test]
fn retry_after_beyond_the_bound_fails_at_once() {
    let server = FaultServer::start(vec![Fault::status(429).header("Retry-After", "30")]);
    let ex = exporter(&server.url(), Duration::from_secs(2));
    let t0 = Instant::now();
    let err = ex.send(&v04_payload(1, 1, 1)).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(err.http_status(), Some(429));
    assert!(err.message().contains("send_timeout"), "{err}");
    assert_eq!(server.trace_requests().len(), 1);
}

#[test]
fn connection_reset_and_truncated_answers_are_retried() {
    let server = FaultServer::start(vec![Fault::Reset, Fault::Truncated, Fault::ok()]);
    let ex = exporter(&server.url(), Duration::from_secs(5));
    let resp = ex.send(&v04_payload(2, 3, 1)).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(server.trace_requests().len(), 3);
}

#[test]
fn slow_agent_times_out_within_the_bound() {
    let server = FaultServer::start_with(
        vec![],
        Fault::ok().delayed(Duration::from_secs(10)),
        support::FAULT_INFO,
    );
    let bound = Duration::from_millis(1200);
    let ex = exporter(&server.url(), bound);
    let t0 = Instant::now();
    let err = ex.send(&v04_payload(1, 1, 1)).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        took >= Duration::from_millis(500),
        "gave up early: {took:?}"
    );
    assert!(
        took <= bound + Duration::from_millis(150),
        "bound exceeded: {took:?}"
    );
    // 500 ms attempts within 1.2 s: the first attempt, a retry, maybe a third.
    let n = server.trace_requests().len();
    assert!((2..=3).contains(&n), "{n} attempts");
}

#[test]
fn unreachable_agent_is_a_network_error_within_the_bound() {
    let port = support::free_port();
    let ex = exporter(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2));
    let t0 = Instant::now();
    let err = ex.send(&v04_payload(1, 1, 1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert!(err.message().contains("after 3 retries"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn malformed_payload_is_refused_before_sending() {
    let server = FaultServer::start(vec![]);
    let ex = exporter(&server.url(), Duration::from_secs(2));
    let err = ex.send(b"\xc1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(server.trace_requests().is_empty());
}

#[test]
fn send_works_from_inside_a_tokio_runtime() {
    let server = FaultServer::start(vec![]);
    let ex = exporter(&server.url(), Duration::from_secs(5));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async { ex.send(&v04_payload(1, 1, 1)).map(|r| r.status) });
    assert_eq!(status.unwrap(), 200);
    assert_eq!(server.trace_requests().len(), 1);
}

#[test]
fn changed_agent_state_triggers_an_info_refresh() {
    let server = FaultServer::start(vec![
        Fault::ok().header("Datadog-Agent-State", "a"),
        Fault::ok().header("Datadog-Agent-State", "a"),
        Fault::ok().header("Datadog-Agent-State", "b"),
        // Slow enough that the /info fetched alongside surely completes first.
        Fault::ok().delayed(Duration::from_millis(300)),
    ]);
    let ex = exporter(&server.url(), Duration::from_secs(5));
    ex.refresh_info().unwrap();
    let infos = || {
        server
            .all_requests()
            .iter()
            .filter(|r| r.path == "/info")
            .count()
    };
    assert_eq!(infos(), 1);
    let payload = v04_payload(1, 1, 1);
    ex.send(&payload).unwrap();
    ex.send(&payload).unwrap();
    assert_eq!(infos(), 1, "same state: no refresh");
    ex.send(&payload).unwrap(); // state changes to "b"
    ex.send(&payload).unwrap(); // refresh runs alongside this send
    assert_eq!(infos(), 2, "changed state: one refresh");
}

#[test]
fn one_exporter_serves_many_threads() {
    let server = FaultServer::start(vec![]);
    let ex = exporter(&server.url(), Duration::from_secs(10));
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let ex = &ex;
            s.spawn(move || {
                for i in 0..10u64 {
                    let resp = ex.send(&v04_payload(2, 2, t * 100 + i * 2)).unwrap();
                    assert_eq!(resp.status, 200);
                }
            });
        }
    });
    let reqs = server.trace_requests();
    assert_eq!(reqs.len(), 40);
    let mut ids: Vec<u64> = reqs
        .iter()
        .map(|r| {
            let mut rd = &r.body[..];
            rmp::decode::read_array_len(&mut rd).unwrap();
            rmp::decode::read_array_len(&mut rd).unwrap();
            // First span's map: the trace id is the 5th key ("service","name","resource","type",
            // "trace_id") in support::v04_payload.
            let mut buf = [0u8; 64];
            rmp::decode::read_map_len(&mut rd).unwrap();
            for _ in 0..4 {
                rmp::decode::read_str(&mut rd, &mut buf).unwrap();
                rmp::decode::read_str(&mut rd, &mut [0u8; 128]).unwrap();
            }
            assert_eq!(
                rmp::decode::read_str(&mut rd, &mut buf).unwrap(),
                "trace_id"
            );
            rmp::decode::read_int(&mut rd).unwrap()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every payload arrived once");
}

/// Trace ids of the spans in a v0.4 body, in order.
fn trace_ids(body: &[u8]) -> Vec<u64> {
    data_pipeline::decode::decode(Format::V04, body)
        .unwrap()
        .iter()
        .flat_map(|t| t.iter().map(|s| s.trace_id))
        .collect()
}

#[test]
fn payload_too_large_is_split_in_halves_recursively() {
    // 4 traces: 413, then the first half (2 traces) 413 again, then everything passes.
    let server = FaultServer::start(vec![Fault::status(413), Fault::status(413)]);
    let ex = exporter(&server.url(), Duration::from_secs(5));
    let payload = v04_payload(4, 1, 100);
    let resp = ex.send(&payload).unwrap();
    assert_eq!(resp.status, 200);
    let reqs = server.trace_requests();
    let counts: Vec<_> = reqs
        .iter()
        .map(|r| r.header("x-datadog-trace-count").unwrap().to_string())
        .collect();
    assert_eq!(counts, ["4", "2", "1", "1", "2"]);
    assert_eq!(reqs[0].body, payload);
    let delivered: Vec<u64> = reqs[2..].iter().flat_map(|r| trace_ids(&r.body)).collect();
    assert_eq!(
        delivered,
        [100, 101, 102, 103],
        "every trace delivered once, in order"
    );
}

#[test]
fn a_single_span_too_large_is_an_error() {
    let server = FaultServer::start_with(vec![], Fault::status(413), support::FAULT_INFO);
    let ex = exporter(&server.url(), Duration::from_secs(5));
    let err = ex.send(&v04_payload(1, 2, 1)).unwrap_err();
    assert_eq!(err.http_status(), Some(413));
    assert!(err.message().contains("cannot be split"), "{err}");
    // 2 spans -> 1 + 1, each refused and not split further.
    assert_eq!(server.trace_requests().len(), 3);
}

#[test]
fn optimistic_v05_falls_back_to_v04_on_404() {
    let info = r#"{"endpoints": ["/v0.4/traces"]}"#;
    let server = FaultServer::start_with(vec![Fault::status(404)], Fault::ok(), info);
    let ex = ExporterBuilder::new()
        .url(server.url())
        .output_format(Format::V05)
        .build()
        .unwrap();
    let payload = v04_payload(2, 2, 1);
    assert_eq!(ex.send(&payload).unwrap().status, 200);
    ex.send(&payload).unwrap();
    let reqs = server.trace_requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/v0.5/traces", "/v0.4/traces", "/v0.4/traces"]);
    assert_eq!(reqs[1].body, payload, "re-sent as the original v0.4 bytes");
    assert!(!ex.agent_info().unwrap().supports_v05());
}

#[test]
fn v05_404_from_an_agent_that_lists_v05_is_an_error() {
    let server = FaultServer::start(vec![Fault::status(404)]);
    let ex = ExporterBuilder::new()
        .url(server.url())
        .output_format(Format::V05)
        .build()
        .unwrap();
    ex.refresh_info().unwrap();
    let err = ex.send(&v04_payload(1, 1, 1)).unwrap_err();
    assert_eq!(err.http_status(), Some(404));
    assert_eq!(server.trace_requests().len(), 1);
}

#[test]
fn malformed_payload_on_the_passthrough_path_is_refused_before_sending() {
    let server = FaultServer::start(vec![]);
    let ex = exporter(&server.url(), Duration::from_secs(5));
    let payload = v04_payload(3, 2, 1);
    for cut in [1, payload.len() / 2, payload.len() - 1] {
        let err = ex.send(&payload[..cut]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode, "cut at {cut}: {err}");
        assert!(err.message().contains("at byte"), "{err}");
    }
    assert_eq!(
        server.trace_requests().len(),
        0,
        "nothing malformed is sent"
    );
    ex.send(&payload).unwrap();
    assert_eq!(server.trace_requests().len(), 1);
}

//! The exporter against the real Datadog test agent: what arrives, field by field, and how.

mod support;

use data_pipeline::exporter::{Exporter, ExporterBuilder, Format};
use serde_json::Value;
use std::time::Duration;
use support::{v04_payload, TestAgent};

fn builder(url: &str, token: &str) -> ExporterBuilder {
    let mut b = ExporterBuilder::new();
    b.url(url)
        .language("python")
        .language_version("3.12.1")
        .language_interpreter("CPython")
        .tracer_version("2.9.0")
        .container_id("0123456789abcdef")
        .service("web-store")
        .env("prod")
        .test_session_token(token)
        .send_timeout(Duration::from_secs(10));
    b
}

/// Asserts the spans the agent decoded are those `v04_payload(traces, spans, first)` wrote.
fn assert_payload_traces(got: &Value, traces: usize, spans: usize, first: u64) {
    let got = got.as_array().expect("traces array");
    assert_eq!(got.len(), traces);
    let mut got: Vec<&Value> = got.iter().collect();
    got.sort_by_key(|t| t[0]["trace_id"].as_u64());
    for (t, trace) in got.iter().enumerate() {
        let trace_id = first + t as u64;
        let trace = trace.as_array().unwrap();
        assert_eq!(trace.len(), spans);
        for (s, span) in trace.iter().enumerate() {
            assert_eq!(span["service"], "web-store");
            assert_eq!(
                span["name"],
                if s == 0 {
                    "http.request"
                } else {
                    "postgres.query"
                }
            );
            assert_eq!(
                span["resource"],
                if s == 0 {
                    "GET /users/?"
                } else {
                    "SELECT * FROM users WHERE id = ?"
                }
            );
            assert_eq!(span["type"], if s == 0 { "web" } else { "sql" });
            assert_eq!(span["trace_id"].as_u64(), Some(trace_id));
            assert_eq!(
                span["span_id"].as_u64(),
                Some((trace_id << 16) + s as u64 + 1)
            );
            let parent = if s == 0 { 0 } else { (trace_id << 16) + 1 };
            assert_eq!(span["parent_id"].as_u64(), Some(parent));
            assert_eq!(
                span["start"].as_i64(),
                Some(1_700_000_000_000_000_000 + s as i64 * 1000)
            );
            assert_eq!(span["duration"].as_i64(), Some(1_500_000 - s as i64 * 1000));
            assert_eq!(span["error"].as_i64(), Some(0));
            assert_eq!(span["meta"]["env"], "prod");
            assert_eq!(span["meta"]["version"], "1.2.3");
            assert_eq!(span["meta"]["http.method"], "GET");
            if s == 0 {
                assert_eq!(span["metrics"]["_sampling_priority_v1"].as_f64(), Some(1.0));
            } else {
                assert_eq!(span["metrics"]["db.row_count"].as_f64(), Some(3.0));
            }
        }
    }
}

fn assert_spec_headers(req: &support::Request, traces: usize) {
    assert_eq!(req.method, "PUT");
    assert_eq!(req.header("Content-Type"), Some("application/msgpack"));
    assert_eq!(
        req.header("X-Datadog-Trace-Count"),
        Some(traces.to_string().as_str())
    );
    assert_eq!(req.header("Datadog-Meta-Lang"), Some("python"));
    assert_eq!(req.header("Datadog-Meta-Lang-Version"), Some("3.12.1"));
    assert_eq!(req.header("Datadog-Meta-Lang-Interpreter"), Some("CPython"));
    assert_eq!(req.header("Datadog-Meta-Tracer-Version"), Some("2.9.0"));
    assert_eq!(req.header("Datadog-Container-ID"), Some("0123456789abcdef"));
    assert_eq!(req.header("Datadog-Send-Real-Http-Status"), Some("1"));
    assert_eq!(req.header("Datadog-Client-Computed-Stats"), None);
}

fn assert_no_check_failures(agent: &TestAgent, token: &str) {
    let (n, text) = agent.check_failures(token);
    assert_eq!(n, 0, "test agent checks failed:\n{text}");
}

#[test]
fn v04_passthrough_goes_out_byte_for_byte() {
    let agent = TestAgent::start();
    let token = "v04-passthrough";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token).build().unwrap();
    let payload = v04_payload(5, 4, 1000);
    let resp = ex.send(&payload).unwrap();
    assert_eq!(resp.status, 200);
    assert!(std::str::from_utf8(&resp.body)
        .unwrap()
        .contains("rate_by_service"));

    assert_payload_traces(&agent.traces(token), 5, 4, 1000);
    let reqs: Vec<_> = agent
        .requests(token)
        .into_iter()
        .filter(|r| r.path() == "/v0.4/traces")
        .collect();
    assert_eq!(reqs.len(), 1);
    assert_spec_headers(&reqs[0], 5);
    assert_eq!(reqs[0].body, payload, "fast path: same bytes");
    assert_no_check_failures(&agent, token);
}

#[test]
fn unix_socket_transport() {
    let agent = TestAgent::start_uds();
    let token = "uds";
    agent.start_session(token, None);
    let ex = builder(&agent.uds_url().unwrap(), token).build().unwrap();
    assert!(ex.url().is_unix());
    let payload = v04_payload(2, 3, 77);
    assert_eq!(ex.send(&payload).unwrap().status, 200);
    // A second send reuses the connection and still arrives.
    assert_eq!(ex.send(&v04_payload(1, 3, 90)).unwrap().status, 200);
    let traces = agent.traces(token);
    assert_eq!(traces.as_array().unwrap().len(), 3);
    let info = ex.refresh_info().unwrap();
    assert!(info.has_endpoint("/v0.4/traces"));
    assert_no_check_failures(&agent, token);
}

#[test]
fn sampling_rates_come_back_per_service_and_env() {
    let agent = TestAgent::start();
    let token = "rates";
    agent.start_session(
        token,
        Some(r#"{"service:web-store,env:prod": 0.25, "service:,env:": 0.75}"#),
    );
    let ex = builder(&agent.url(), token).build().unwrap();
    let resp = ex.send(&v04_payload(1, 2, 5)).unwrap();
    assert_eq!(resp.rate("web-store", "prod"), Some(0.25));
    assert_eq!(resp.rate("web-store", "staging"), Some(0.75), "default key");
    assert_eq!(resp.rate("other", "prod"), Some(0.75));
    assert_no_check_failures(&agent, token);
}

#[test]
fn discovery_is_per_exporter_and_drives_the_output_format() {
    let agent = TestAgent::start();
    let ex = builder(&agent.url(), "info").build().unwrap();
    assert!(
        ex.agent_info().is_none(),
        "no /info before the first send or refresh"
    );
    let info = ex.refresh_info().unwrap();
    assert!(info.supports_v05());
    assert!(info.client_stats());
    assert_eq!(ex.agent_info().as_deref(), Some(&*info));

    // A second exporter aimed elsewhere keeps its own state.
    let other = ExporterBuilder::new()
        .url(format!("http://127.0.0.1:{}", support::free_port()))
        .build()
        .unwrap();
    assert!(other.agent_info().is_none());
    assert!(other.refresh_info().is_err());
    assert!(ex.agent_info().is_some());
}

#[test]
fn info_is_fetched_alongside_the_first_send() {
    let agent = TestAgent::start();
    let token = "info-alongside";
    agent.start_session(token, None);
    let ex: Exporter = builder(&agent.url(), token).build().unwrap();
    // Several sends: /info is requested alongside the first and kept once answered.
    for i in 0..5 {
        ex.send(&v04_payload(1, 1, 10 + i)).unwrap();
        if ex.agent_info().is_some() {
            break;
        }
    }
    assert!(ex.agent_info().is_some(), "/info never arrived");
    assert_eq!(ex.output_format(), Format::V04);
}

#[test]
fn header_checks_are_live() {
    // Proves the checks run: without a tracer version the agent refuses the payload.
    let agent = TestAgent::start();
    let token = "checks-live";
    agent.start_session(token, None);
    let ex = ExporterBuilder::new()
        .url(agent.url())
        .test_session_token(token)
        .build()
        .unwrap();
    let err = ex.send(&v04_payload(1, 1, 1)).unwrap_err();
    assert_eq!(err.http_status(), Some(400), "{err}");
    let (n, text) = agent.check_failures(token);
    assert!(n >= 1, "{text}");
    assert!(text.contains("meta_tracer_version_header"), "{text}");
}

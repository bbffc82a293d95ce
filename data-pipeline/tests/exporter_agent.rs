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
    agent.assert_no_check_failures(token);
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
    agent.assert_no_check_failures(token);
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
    agent.assert_no_check_failures(token);
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

/// Traces decoded from a payload written by `support::v04_payload` (through the crate's codec).
fn decoded(payload: &[u8]) -> data_pipeline::Traces<'_> {
    data_pipeline::decode::decode(Format::V04, payload).unwrap()
}

fn trace_requests(agent: &TestAgent, token: &str) -> Vec<support::Request> {
    agent
        .requests(token)
        .into_iter()
        .filter(|r| r.path().ends_with("/traces"))
        .collect()
}

#[test]
fn v04_in_v05_out_is_converted() {
    let agent = TestAgent::start();
    let token = "v04-to-v05";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .input_format(Format::V04)
        .output_format(Format::V05)
        .build()
        .unwrap();
    let payload = v04_payload(4, 3, 500);
    assert_eq!(ex.send(&payload).unwrap().status, 200);
    assert_payload_traces(&agent.traces(token), 4, 3, 500);
    let reqs = trace_requests(&agent, token);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path(), "/v0.5/traces");
    assert_spec_headers(&reqs[0], 4);
    let expected = data_pipeline::encode::encode_to_vec(Format::V05, &decoded(&payload)).unwrap();
    assert_eq!(reqs[0].body, expected);
    agent.assert_no_check_failures(token);
}

#[test]
fn v05_passthrough_goes_out_byte_for_byte() {
    let agent = TestAgent::start();
    let token = "v05-passthrough";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .input_format(Format::V05)
        .output_format(Format::V05)
        .build()
        .unwrap();
    let v05 = data_pipeline::encode::encode_to_vec(Format::V05, &decoded(&v04_payload(3, 5, 42)))
        .unwrap();
    assert_eq!(ex.send(&v05).unwrap().status, 200);
    assert_payload_traces(&agent.traces(token), 3, 5, 42);
    let reqs = trace_requests(&agent, token);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path(), "/v0.5/traces");
    assert_spec_headers(&reqs[0], 3);
    assert_eq!(reqs[0].body, v05, "fast path: same bytes");
    agent.assert_no_check_failures(token);
}

#[test]
fn v05_in_v04_out_is_converted() {
    let agent = TestAgent::start();
    let token = "v05-to-v04";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .input_format(Format::V05)
        .output_format(Format::V04)
        .build()
        .unwrap();
    let v05 =
        data_pipeline::encode::encode_to_vec(Format::V05, &decoded(&v04_payload(2, 2, 7))).unwrap();
    ex.send(&v05).unwrap();
    assert_payload_traces(&agent.traces(token), 2, 2, 7);
    let reqs = trace_requests(&agent, token);
    assert_eq!(reqs[0].path(), "/v0.4/traces");
    assert_spec_headers(&reqs[0], 2);
    agent.assert_no_check_failures(token);
}

#[test]
fn agent_without_v05_gets_v04() {
    let agent = TestAgent::start_with(
        &[(
            "DD_AGENT_EXTRA_INFO",
            r#"{"endpoints": ["/v0.4/traces", "/v0.6/stats"]}"#,
        )],
        &[],
    );
    let token = "no-v05";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .output_format(Format::V05)
        .build()
        .unwrap();
    assert!(!ex.refresh_info().unwrap().supports_v05());
    let payload = v04_payload(2, 2, 1);
    ex.send(&payload).unwrap();
    ex.send(&payload).unwrap();
    let reqs = trace_requests(&agent, token);
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.path(), "/v0.4/traces");
        assert_eq!(r.body, payload, "v0.4 in, v0.4 out: passthrough");
    }
    agent.assert_no_check_failures(token);
}

/// Spans built through the API with everything v0.4 carries.
fn rich_trace() -> Vec<data_pipeline::Span<'static>> {
    use data_pipeline::span::{AttributeScalar, AttributeValue, SpanEvent, SpanLink};
    let mut root = data_pipeline::Span {
        service: "api".into(),
        name: "http.request".into(),
        resource: "POST /orders".into(),
        r#type: "web".into(),
        span_id: 11,
        start: 1_700_000_000_123_456_789,
        duration: 42_000,
        error: 1,
        ..Default::default()
    };
    root.set_trace_id_128((0x0123_4567_89ab_cdefu128 << 64) | 0xfeed_beef);
    root.meta.insert("http.status_code", "500".into());
    root.meta.insert("error.message", "boom".into());
    root.metrics.insert("_sampling_priority_v1", 2.0);
    root.metrics.insert("ratio", 0.125);
    // meta_struct values are msgpack documents: {"a": 1}
    root.meta_struct.insert(
        "appsec",
        std::borrow::Cow::Owned(vec![0x81, 0xa1, b'a', 0x01]),
    );
    let mut link = SpanLink {
        trace_id: 0xaaaa,
        trace_id_high: 0xbbbb,
        span_id: 0xcccc,
        tracestate: "dd=s:1".into(),
        flags: 0x8000_0001,
        ..Default::default()
    };
    link.attributes.insert("link.kind", "follows".into());
    root.span_links.push(link);
    let mut event = SpanEvent {
        time_unix_nano: 1_700_000_000_200_000_000,
        name: "exception".into(),
        ..Default::default()
    };
    event.attributes.insert(
        "exception.message",
        AttributeValue::Scalar(AttributeScalar::String("boom".into())),
    );
    event
        .attributes
        .insert("retries", AttributeValue::Scalar(AttributeScalar::Int(3)));
    event.attributes.insert(
        "codes",
        AttributeValue::Array(vec![AttributeScalar::Int(1), AttributeScalar::Int(2)]),
    );
    root.span_events.push(event);
    let child = data_pipeline::Span {
        service: "api".into(),
        name: "db.query".into(),
        resource: "SELECT 1".into(),
        trace_id: root.trace_id,
        span_id: 12,
        parent_id: 11,
        start: root.start + 10,
        duration: 1000,
        ..Default::default()
    };
    vec![root, child]
}

#[test]
fn api_spans_with_128_bit_ids_links_events_and_meta_struct() {
    let agent = TestAgent::start();
    let token = "rich";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token).build().unwrap();
    let trace = rich_trace();
    assert_eq!(
        ex.send_traces(std::slice::from_ref(&trace)).unwrap().status,
        200
    );

    let got = agent.traces(token);
    let spans = got[0].as_array().expect("one trace");
    assert_eq!(spans.len(), 2);
    let root = spans.iter().find(|s| s["span_id"] == 11).unwrap();
    assert_eq!(root["trace_id"].as_u64(), Some(0xfeed_beef));
    assert_eq!(root["meta"]["_dd.p.tid"], "0123456789abcdef");
    assert_eq!(root["error"].as_i64(), Some(1));
    assert_eq!(root["meta"]["http.status_code"], "500");
    assert_eq!(root["metrics"]["ratio"].as_f64(), Some(0.125));
    assert_eq!(root["metrics"]["_sampling_priority_v1"].as_f64(), Some(2.0));
    let link = &root["span_links"][0];
    assert_eq!(link["trace_id"].as_u64(), Some(0xaaaa));
    assert_eq!(link["trace_id_high"].as_u64(), Some(0xbbbb));
    assert_eq!(link["span_id"].as_u64(), Some(0xcccc));
    assert_eq!(link["tracestate"], "dd=s:1");
    assert_eq!(link["flags"].as_u64(), Some(0x8000_0001));
    assert_eq!(link["attributes"]["link.kind"], "follows");
    let event = &root["span_events"][0];
    assert_eq!(event["name"], "exception");
    assert_eq!(
        event["time_unix_nano"].as_u64(),
        Some(1_700_000_000_200_000_000)
    );
    let attrs = &event["attributes"];
    assert_eq!(attrs["exception.message"]["string_value"], "boom");
    assert_eq!(attrs["retries"]["int_value"].as_i64(), Some(3));
    assert_eq!(
        attrs["codes"]["array_value"]["values"][1]["int_value"].as_i64(),
        Some(2)
    );
    assert_eq!(root["meta_struct"]["appsec"]["a"].as_i64(), Some(1));
    let child = spans.iter().find(|s| s["span_id"] == 12).unwrap();
    assert_eq!(child["parent_id"].as_u64(), Some(11));
    assert_eq!(child["trace_id"].as_u64(), Some(0xfeed_beef));

    // The raw body carries meta_struct as msgpack bin, and decodes back to what was sent.
    let reqs = trace_requests(&agent, token);
    assert_eq!(reqs.len(), 1);
    assert_spec_headers(&reqs[0], 1);
    let back = data_pipeline::decode::decode(Format::V04, &reqs[0].body).unwrap();
    assert_eq!(back, vec![trace]);
    agent.assert_no_check_failures(token);
}

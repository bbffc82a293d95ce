//! Normalization and obfuscation in the exporter, against the real Datadog test agent: what the
//! agent receives with the stages on is what the agent's own rules produce; with them off the
//! payload goes out untouched (the passthrough fast path).

mod support;

use data_pipeline::encode::encode_to_vec;
use data_pipeline::exporter::{CreditCardMode, ExporterBuilder, Format};
use data_pipeline::normalize::Reason;
use data_pipeline::span::Str;
use data_pipeline::span::{Span, Traces};
use serde_json::Value;
use std::time::Duration;
use support::TestAgent;

fn builder(url: &str, token: &str) -> ExporterBuilder {
    let mut b = ExporterBuilder::new();
    b.url(url)
        .language("python")
        .language_version("3.12.1")
        .language_interpreter("CPython")
        .tracer_version("2.9.0")
        .test_session_token(token)
        .send_timeout(Duration::from_secs(10));
    b
}

fn span(trace_id: u64, n: u64, ty: &'static str, resource: &'static str) -> Span<'static> {
    Span {
        service: Str::borrowed("web-store"),
        name: Str::borrowed("op"),
        resource: Str::borrowed(resource),
        r#type: Str::borrowed(ty),
        trace_id,
        span_id: trace_id * 100 + n,
        parent_id: if n == 1 { 0 } else { trace_id * 100 + 1 },
        start: 1_700_000_000_000_000_000 + n as i64,
        duration: 1_000,
        ..Default::default()
    }
}

fn with_meta(mut s: Span<'static>, meta: &[(&'static str, &'static str)]) -> Span<'static> {
    for (k, v) in meta {
        s.meta.push(Str::borrowed(k), Str::borrowed(v));
    }
    s
}

/// One trace with a span of each obfuscated kind (the inputs of the agent's own tests).
fn mixed_trace(trace_id: u64) -> Vec<Span<'static>> {
    vec![
        with_meta(
            span(trace_id, 1, "web", "GET /cart"),
            &[
                ("http.url", "http://mysite.mydomain/1/2?q=asd"),
                ("card.number", "5105-1051-0510-5100"),
                ("_dd.test", "5105-1051-0510-5100"),
                ("custom.tag", "/foo/bar/foo"),
            ],
        ),
        with_meta(
            span(trace_id, 2, "sql", "SELECT * FROM users WHERE id = 42"),
            &[
                ("sql.query", "SELECT * FROM users WHERE id = 42"),
                ("db.statement", "SELECT name FROM orders WHERE total > 100"),
                ("db.type", "postgresql"),
            ],
        ),
        span(
            trace_id,
            3,
            "sql",
            "SELECT * FROM users WHERE id = '' AND '",
        ),
        with_meta(
            span(trace_id, 4, "redis", "SET k v\nGET k"),
            &[("redis.raw_command", "SET key val")],
        ),
        with_meta(
            span(trace_id, 5, "memcached", "set"),
            &[("memcached.command", "set key 0 0 0\r\nvalue")],
        ),
        with_meta(
            span(
                trace_id,
                6,
                "cassandra",
                "SELECT * FROM table1 WHERE id = 42",
            ),
            &[],
        ),
    ]
}

fn payload(traces: &Traces<'_>) -> Vec<u8> {
    encode_to_vec(Format::V04, traces).expect("encode")
}

/// The agent's spans of one trace, by span id.
fn spans_by_id(traces: &Value, trace_id: u64) -> Vec<Value> {
    let t = traces
        .as_array()
        .expect("traces")
        .iter()
        .find(|t| t[0]["trace_id"].as_u64() == Some(trace_id))
        .unwrap_or_else(|| panic!("trace {trace_id} not received: {traces}"));
    let mut spans = t.as_array().expect("spans").clone();
    spans.sort_by_key(|s| s["span_id"].as_u64());
    spans
}

fn meta<'v>(s: &'v Value, k: &str) -> Option<&'v str> {
    s["meta"].get(k).and_then(Value::as_str)
}

#[test]
fn obfuscation_on_arrives_as_the_agent_would_make_it() {
    let agent = TestAgent::start();
    let token = "pipeline-obfuscate";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .obfuscate(true)
        .obfuscation_http_remove_query_string(true)
        .obfuscation_http_remove_paths_with_digits(true)
        .obfuscation_credit_cards(CreditCardMode::On)
        .replace_tags(
            r#"[{"name": "custom.tag", "pattern": "(/foo/bar/).*", "repl": "${1}extra"}]"#,
        )
        .build()
        .unwrap();
    let traces: Traces<'_> = vec![mixed_trace(7), mixed_trace(8)];
    assert_eq!(ex.send(&payload(&traces)).unwrap().status, 200);

    let got = agent.traces(token);
    assert_eq!(got.as_array().unwrap().len(), 2);
    for trace_id in [7, 8] {
        let s = spans_by_id(&got, trace_id);
        assert_eq!(s.len(), 6);
        // web: URL per the agent's HTTP rules, card number replaced, `_dd.*` keys skipped,
        // replace rule applied after obfuscation.
        assert_eq!(meta(&s[0], "http.url"), Some("http://mysite.mydomain/?/??"));
        assert_eq!(meta(&s[0], "card.number"), Some("?"));
        assert_eq!(meta(&s[0], "_dd.test"), Some("5105-1051-0510-5100"));
        assert_eq!(meta(&s[0], "custom.tag"), Some("/foo/bar/extra"));
        assert_eq!(s[0]["resource"], "GET /cart");
        // sql: resource and the query tags present obfuscated; sql.query not added where absent.
        assert_eq!(s[1]["resource"], "SELECT * FROM users WHERE id = ?");
        assert_eq!(
            meta(&s[1], "sql.query"),
            Some("SELECT * FROM users WHERE id = ?")
        );
        assert_eq!(
            meta(&s[1], "db.statement"),
            Some("SELECT name FROM orders WHERE total > ?")
        );
        assert_eq!(s[2]["resource"], "Non-parsable SQL query");
        assert_eq!(meta(&s[2], "sql.query"), None);
        // redis: resource quantized, raw command obfuscated.
        assert_eq!(s[3]["resource"], "SET GET");
        assert_eq!(meta(&s[3], "redis.raw_command"), Some("SET key ?"));
        // memcached: the agent's default drops the command.
        assert_eq!(meta(&s[4], "memcached.command"), Some(""));
        assert_eq!(s[5]["resource"], "SELECT * FROM table1 WHERE id = ?");
        // untouched fields
        assert_eq!(s[1]["service"], "web-store");
        assert_eq!(s[1]["duration"].as_i64(), Some(1_000));
    }
    let reqs = agent.requests(token);
    let req = reqs
        .iter()
        .find(|r| r.path() == "/v0.4/traces")
        .expect("trace request");
    assert_eq!(req.header("X-Datadog-Trace-Count"), Some("2"));
    agent.assert_no_check_failures(token);
}

#[test]
fn stages_off_take_the_fast_path_and_leave_the_payload_untouched() {
    let agent = TestAgent::start();
    let token = "pipeline-off";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token).build().unwrap();
    let traces: Traces<'_> = vec![mixed_trace(9)];
    let body = payload(&traces);
    assert_eq!(ex.send(&body).unwrap().status, 200);
    let reqs: Vec<_> = agent
        .requests(token)
        .into_iter()
        .filter(|r| r.path() == "/v0.4/traces")
        .collect();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].body, body, "fast path: the same bytes");
    let s = spans_by_id(&agent.traces(token), 9);
    assert_eq!(s[1]["resource"], "SELECT * FROM users WHERE id = 42");
    assert_eq!(meta(&s[0], "card.number"), Some("5105-1051-0510-5100"));
    assert_eq!(meta(&s[3], "redis.raw_command"), Some("SET key val"));
    assert_eq!(ex.normalize_counts().total(), 0);
    agent.assert_no_check_failures(token);
}

#[test]
fn normalization_drops_and_counts_what_the_agent_would_reject() {
    let agent = TestAgent::start();
    let token = "pipeline-normalize";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .normalize(true)
        .obfuscate(true)
        .build()
        .unwrap();
    let mut good = mixed_trace(11);
    good[0].service = Str::borrowed("");
    good[1].name = Str::borrowed("");
    good[2].duration = -5;
    let zero_span_id = {
        let mut t = mixed_trace(12);
        t[1].span_id = 0;
        t
    };
    let traces: Traces<'_> = vec![good, zero_span_id, mixed_trace(13)];
    assert_eq!(ex.send(&payload(&traces)).unwrap().status, 200);

    let got = agent.traces(token);
    let ids: Vec<u64> = got
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t[0]["trace_id"].as_u64())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&11) && ids.contains(&13));
    let s = spans_by_id(&got, 11);
    assert_eq!(s[0]["service"], "unnamed-python-service");
    assert_eq!(s[1]["name"], "unnamed_operation");
    assert_eq!(s[2]["duration"].as_i64(), Some(0));
    assert_eq!(s[1]["resource"], "SELECT * FROM users WHERE id = ?");
    let req = agent
        .requests(token)
        .into_iter()
        .find(|r| r.path() == "/v0.4/traces")
        .expect("trace request");
    assert_eq!(req.header("X-Datadog-Trace-Count"), Some("2"));

    let c = ex.normalize_counts();
    assert_eq!(c.get(Reason::SpanIdZero), 1);
    assert_eq!(c.get(Reason::ServiceEmpty), 1);
    assert_eq!(c.get(Reason::SpanNameEmpty), 1);
    assert_eq!(c.get(Reason::InvalidDuration), 1);
    agent.assert_no_check_failures(token);
}

#[test]
fn send_traces_and_v05_output_are_processed_too() {
    let agent = TestAgent::start();
    let token = "pipeline-v05";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .output_format(Format::V05)
        .obfuscate(true)
        .obfuscation_redis_remove_all_args(true)
        .build()
        .unwrap();
    assert_eq!(ex.send_traces(&[mixed_trace(21)]).unwrap().status, 200);
    let s = spans_by_id(&agent.traces(token), 21);
    assert_eq!(s[3]["resource"], "SET GET");
    assert_eq!(meta(&s[3], "redis.raw_command"), Some("SET ?"));
    assert_eq!(s[1]["resource"], "SELECT * FROM users WHERE id = ?");
    assert!(agent
        .requests(token)
        .iter()
        .any(|r| r.path() == "/v0.5/traces"));
    agent.assert_no_check_failures(token);
}

#[test]
fn send_traces_counts_only_the_chunks_that_go_out() {
    let agent = TestAgent::start();
    let token = "pipeline-send-traces-drop";
    agent.start_session(token, None);
    let ex = builder(&agent.url(), token)
        .normalize(true)
        .build()
        .unwrap();
    let mut bad = mixed_trace(31);
    bad[0].trace_id = 0;
    assert_eq!(ex.send_traces(&[bad, mixed_trace(32)]).unwrap().status, 200);
    let req = agent
        .requests(token)
        .into_iter()
        .find(|r| r.path() == "/v0.4/traces")
        .expect("trace request");
    assert_eq!(req.header("X-Datadog-Trace-Count"), Some("1"));
    assert_eq!(agent.traces(token).as_array().unwrap().len(), 1);
    assert_eq!(ex.normalize_counts().get(Reason::TraceIdZero), 1);
    agent.assert_no_check_failures(token);
}

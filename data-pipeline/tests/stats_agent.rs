//! Client-side stats, P0 dropping and sampling feedback against the real Datadog test agent.
//!
//! The spans are generated with their expected stats key written by hand next to them (not
//! computed by the engine's code), sent through the exporter, and the raw `/v0.6/stats` body the
//! agent received is decoded independently (msgpack with rmpv) and compared key by key: hits,
//! errors, duration, top-level hits, and the p50/p95/p99 of both sketches against the true
//! quantiles of the durations sent.

mod support;

use data_pipeline::exporter::{Exporter, ExporterBuilder};
use data_pipeline::sketch::DDSketch;
use data_pipeline::span::SAMPLING_PRIORITY_KEY;
use data_pipeline::stats::{StatsMode, StatsState};
use data_pipeline::{Span, Trace};
use rmpv::Value;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{field, Request, TestAgent};

/// The expected key of a span, as the agent would aggregate it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    service: String,
    name: String,
    resource: String,
    r#type: String,
    span_kind: String,
    http_status_code: u64,
    http_method: String,
    http_endpoint: String,
    grpc_status_code: String,
    synthetics: bool,
    is_trace_root: u64,
    peer_tags: Vec<String>,
}

#[derive(Debug, Default)]
struct Expected {
    hits: u64,
    errors: u64,
    duration: u64,
    top_level_hits: u64,
    ok: Vec<f64>,
    err: Vec<f64>,
}

#[derive(Debug, Default)]
struct Got {
    hits: u64,
    errors: u64,
    duration: u64,
    top_level_hits: u64,
    ok: Option<DDSketch>,
    err: Option<DDSketch>,
}

/// A small deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    /// Log-uniform duration between 50 us and 2 s.
    fn duration(&mut self) -> i64 {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        (50_000f64 * (40_000f64).powf(u)) as i64
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

struct Generated {
    traces: Vec<Trace<'static>>,
    expected: BTreeMap<Key, Expected>,
    dropped_traces: u64,
    dropped_spans: u64,
    kept_spans: u64,
}

fn key(service: &str, name: &str, resource: &str, typ: &str, kind: &str) -> Key {
    Key {
        service: service.into(),
        name: name.into(),
        resource: resource.into(),
        r#type: typ.into(),
        span_kind: kind.into(),
        http_status_code: 0,
        http_method: String::new(),
        http_endpoint: String::new(),
        grpc_status_code: String::new(),
        synthetics: false,
        is_trace_root: 2,
        peer_tags: vec![],
    }
}

fn record(exp: &mut BTreeMap<Key, Expected>, k: Key, s: &Span<'_>, top: bool) {
    let e = exp.entry(k).or_default();
    e.hits += 1;
    e.duration += s.duration as u64;
    if top {
        e.top_level_hits += 1;
    }
    if s.error != 0 {
        e.errors += 1;
        e.err.push(s.duration as f64);
    } else {
        e.ok.push(s.duration as f64);
    }
}

/// `n` traces: a web root (server), a postgres child (client, other service: top-level, peer
/// tags db.name + an IP in peer.hostname), a template child (internal: not counted), a measured
/// redis child, a gRPC client child. Every 4th trace is P0 (half of those with a
/// single-span-sampled postgres span), every 7th is an error, every 9th synthetic.
fn generate(n: u64, seed: u64) -> Generated {
    let mut rng = Lcg(seed);
    let base = now_ns() - 3_000_000_000;
    let mut g = Generated {
        traces: vec![],
        expected: BTreeMap::new(),
        dropped_traces: 0,
        dropped_spans: 0,
        kept_spans: 0,
    };
    for t in 1..=n {
        let tid = seed * 1_000_000 + t;
        let p0 = t % 4 == 0;
        let sss = p0 && t % 8 == 0;
        let error = t % 7 == 0;
        let synthetics = t % 9 == 0;
        let mk = |id: u64,
                  parent: u64,
                  service: &str,
                  name: &str,
                  resource: String,
                  typ: &str,
                  d: i64| Span {
            service: service.to_string().into(),
            name: name.to_string().into(),
            resource: resource.into(),
            r#type: typ.to_string().into(),
            trace_id: tid,
            span_id: (tid << 8) + id,
            parent_id: if parent == 0 { 0 } else { (tid << 8) + parent },
            start: base + (t as i64) * 1000,
            duration: d,
            ..Default::default()
        };
        let mut root = mk(
            1,
            0,
            "web",
            "http.request",
            "GET /users/{id}".into(),
            "web",
            rng.duration(),
        );
        root.meta.insert("span.kind", "server".into());
        root.meta.insert("http.method", "GET".into());
        root.meta.insert("http.route", "/users/{id}".into());
        root.meta
            .insert("http.status_code", if error { "500" } else { "200" }.into());
        if error {
            root.error = 1;
        }
        if synthetics {
            root.meta.insert("_dd.origin", "synthetics-browser".into());
        }
        root.metrics
            .insert(SAMPLING_PRIORITY_KEY, if p0 { 0.0 } else { 1.0 });
        let mut pg = mk(
            2,
            1,
            "postgres",
            "postgresql.query",
            format!("SELECT * FROM users WHERE id = {}", rng.next() % 1000),
            "sql",
            rng.duration(),
        );
        pg.meta.insert("span.kind", "client".into());
        pg.meta.insert("db.name", "main".into());
        pg.meta.insert(
            "peer.hostname",
            format!("10.0.{}.{}", t % 3, t % 250).into(),
        );
        if sss {
            pg.metrics.insert("_dd.span_sampling.mechanism", 8.0);
        }
        if t % 5 == 0 {
            pg.error = 1;
        }
        let tpl = mk(
            3,
            1,
            "web",
            "template.render",
            "users.html".into(),
            "template",
            rng.duration(),
        );
        let mut redis = mk(
            4,
            1,
            "web",
            "redis.command",
            format!("GET user:{}", rng.next() % 100),
            "redis",
            rng.duration(),
        );
        redis.metrics.insert("_dd.measured", 1.0);
        let mut grpc = mk(
            5,
            1,
            "web",
            "grpc.client",
            "/users.Users/Get".into(),
            "rpc",
            rng.duration(),
        );
        grpc.meta.insert("span.kind", "client".into());
        grpc.meta
            .insert("rpc.grpc.status_code", "StatusCode.NOT_FOUND".into());

        // Expected keys, by hand.
        let mut k = key("web", "http.request", "GET /users/{id}", "web", "server");
        k.http_status_code = if error { 500 } else { 200 };
        k.http_method = "GET".into();
        k.http_endpoint = "/users/{id}".into();
        k.is_trace_root = 1;
        k.synthetics = synthetics;
        record(&mut g.expected, k, &root, true);
        let mut k = key(
            "postgres",
            "postgresql.query",
            "SELECT * FROM users WHERE id = ?",
            "sql",
            "client",
        );
        k.peer_tags = vec![
            "db.name:main".into(),
            "peer.hostname:blocked-ip-address".into(),
        ];
        k.synthetics = synthetics;
        record(&mut g.expected, k, &pg, true);
        let mut k = key("web", "redis.command", "GET", "redis", "");
        k.synthetics = synthetics;
        record(&mut g.expected, k, &redis, false);
        let mut k = key("web", "grpc.client", "/users.Users/Get", "rpc", "client");
        k.grpc_status_code = "5".into();
        k.synthetics = synthetics;
        record(&mut g.expected, k, &grpc, false);

        let any_error = error || pg.error != 0;
        let chunk = vec![root, pg, tpl, redis, grpc];
        if p0 && !any_error {
            if sss {
                g.dropped_spans += 4;
                g.kept_spans += 1;
            } else {
                g.dropped_traces += 1;
                g.dropped_spans += 5;
            }
        } else {
            g.kept_spans += 5;
        }
        g.traces.push(chunk);
    }
    g
}

fn builder(url: &str, token: &str) -> ExporterBuilder {
    let mut b = ExporterBuilder::new();
    b.url(url)
        .language("python")
        .language_version("3.12.1")
        .tracer_version("2.9.0")
        .service("web")
        .env("prod")
        .app_version("1.2.3")
        .hostname("host-1")
        .runtime_id("rt-42")
        .test_session_token(token)
        .stats(StatsMode::Auto)
        .stats_peer_tags(["peer.hostname"])
        .send_timeout(Duration::from_secs(10));
    b
}

fn s(v: &Value, k: &str) -> String {
    field(v, k)
        .as_str()
        .unwrap_or_else(|| panic!("{k} not a string"))
        .to_string()
}

fn u(v: &Value, k: &str) -> u64 {
    field(v, k)
        .as_u64()
        .unwrap_or_else(|| panic!("{k} not an uint"))
}

/// Decodes every `/v0.6/stats` body of the session, summing keys over buckets.
fn received_stats(reqs: &[Request]) -> (BTreeMap<Key, Got>, Vec<Value>) {
    let mut got: BTreeMap<Key, Got> = BTreeMap::new();
    let mut payloads = vec![];
    for r in reqs.iter().filter(|r| r.path() == "/v0.6/stats") {
        let p = rmpv::decode::read_value(&mut &r.body[..]).expect("stats body is msgpack");
        for b in field(&p, "Stats").as_array().expect("Stats array") {
            assert_eq!(u(b, "Start") % 10_000_000_000, 0, "bucket start aligned");
            assert_eq!(u(b, "Duration"), 10_000_000_000);
            for g in field(b, "Stats").as_array().expect("grouped stats") {
                let k = Key {
                    service: s(g, "Service"),
                    name: s(g, "Name"),
                    resource: s(g, "Resource"),
                    r#type: s(g, "Type"),
                    span_kind: s(g, "SpanKind"),
                    http_status_code: u(g, "HTTPStatusCode"),
                    http_method: s(g, "HTTPMethod"),
                    http_endpoint: s(g, "HTTPEndpoint"),
                    grpc_status_code: s(g, "GRPCStatusCode"),
                    synthetics: field(g, "Synthetics").as_bool().expect("bool"),
                    is_trace_root: u(g, "IsTraceRoot"),
                    peer_tags: field(g, "PeerTags")
                        .as_array()
                        .expect("PeerTags")
                        .iter()
                        .map(|t| t.as_str().expect("tag").to_string())
                        .collect(),
                };
                assert_eq!(s(g, "DBType"), "");
                let e = got.entry(k).or_default();
                e.hits += u(g, "Hits");
                e.errors += u(g, "Errors");
                e.duration += u(g, "Duration");
                e.top_level_hits += u(g, "TopLevelHits");
                for (name, slot) in [("OkSummary", &mut e.ok), ("ErrorSummary", &mut e.err)] {
                    let bytes = field(g, name).as_slice().expect("summary is bin");
                    let sk = DDSketch::decode(bytes).expect("summary decodes");
                    assert!((sk.relative_accuracy() - 1.0 / 129.0).abs() < 1e-9);
                    match slot {
                        Some(prev) => prev.merge(&sk).expect("same mapping"),
                        None => *slot = Some(sk),
                    }
                }
            }
        }
        payloads.push(p);
    }
    (got, payloads)
}

fn check_quantiles(what: &str, sketch: &DDSketch, mut values: Vec<f64>) {
    assert_eq!(sketch.count(), values.len() as f64, "{what}: sketch count");
    if values.is_empty() {
        return;
    }
    values.sort_by(f64::total_cmp);
    let ra = sketch.relative_accuracy();
    for q in [0.5, 0.95, 0.99] {
        let truth = values[(q * (values.len() - 1) as f64).floor() as usize];
        let est = sketch.quantile(q).expect("quantile");
        assert!(
            (est - truth).abs() <= ra * truth * (1.0 + 1e-9),
            "{what} p{}: {est} vs {truth} (rel {})",
            q * 100.0,
            (est - truth).abs() / truth
        );
    }
}

fn send_all(ex: &Exporter, traces: &[Trace<'static>]) {
    for part in traces.chunks(50) {
        let payload =
            data_pipeline::encode::encode_to_vec(data_pipeline::format::Format::V04, part)
                .expect("encode");
        ex.send(&payload).expect("send");
    }
}

#[test]
fn stats_arrive_and_match_the_spans_sent() {
    let agent = TestAgent::start();
    let token = "stats-match";
    agent.start_session(token, None);
    let g = generate(240, 7);
    let ex = builder(&agent.url(), token).build().unwrap();
    assert_eq!(ex.stats_state(), StatsState::WaitingForAgent);
    send_all(&ex, &g.traces);
    assert_eq!(ex.stats_state(), StatsState::Enabled);
    assert!(ex.stats_enabled());
    ex.shutdown(Duration::from_secs(10)).unwrap();

    let reqs = agent.requests(token);
    // Trace requests: stats headers and P0 counts equal to what the generator dropped.
    let trace_reqs: Vec<&Request> = reqs.iter().filter(|r| r.path() == "/v0.4/traces").collect();
    assert_eq!(trace_reqs.len(), g.traces.len().div_ceil(50));
    let (mut dt, mut ds, mut spans) = (0u64, 0u64, 0u64);
    for r in &trace_reqs {
        assert_eq!(r.header("Datadog-Client-Computed-Stats"), Some("true"));
        assert_eq!(r.header("Datadog-Client-Computed-Top-Level"), Some("true"));
        dt += r
            .header("Datadog-Client-Dropped-P0-Traces")
            .unwrap()
            .parse::<u64>()
            .unwrap();
        ds += r
            .header("Datadog-Client-Dropped-P0-Spans")
            .unwrap()
            .parse::<u64>()
            .unwrap();
        let body = rmpv::decode::read_value(&mut &r.body[..]).unwrap();
        let chunks = body.as_array().unwrap();
        assert_eq!(
            r.header("X-Datadog-Trace-Count").unwrap(),
            chunks.len().to_string()
        );
        spans += chunks
            .iter()
            .map(|c| c.as_array().unwrap().len() as u64)
            .sum::<u64>();
    }
    assert!(g.dropped_traces > 0 && g.dropped_spans > g.dropped_traces);
    assert_eq!((dt, ds), (g.dropped_traces, g.dropped_spans));
    assert_eq!(spans, g.kept_spans, "only the P0 spans left the payload");
    let (failures, report) = agent.check_failures(token);
    assert_eq!(failures, 0, "{report}");

    // Stats requests: Meta headers and payload fields.
    let stats_reqs: Vec<&Request> = reqs.iter().filter(|r| r.path() == "/v0.6/stats").collect();
    assert!(!stats_reqs.is_empty(), "no stats request arrived");
    for r in &stats_reqs {
        assert_eq!(r.header("Content-Type"), Some("application/msgpack"));
        assert_eq!(r.header("Datadog-Meta-Lang"), Some("python"));
        assert_eq!(r.header("Datadog-Meta-Tracer-Version"), Some("2.9.0"));
    }
    let (got, payloads) = received_stats(&reqs);
    for (i, p) in payloads.iter().enumerate() {
        assert_eq!(s(p, "Hostname"), "host-1");
        assert_eq!(s(p, "Env"), "prod");
        assert_eq!(s(p, "Version"), "1.2.3");
        assert_eq!(s(p, "Service"), "web");
        assert_eq!(s(p, "RuntimeID"), "rt-42");
        assert_eq!(s(p, "Lang"), "python");
        assert_eq!(u(p, "Sequence"), i as u64 + 1);
    }
    let extra: Vec<&Key> = got
        .keys()
        .filter(|k| !g.expected.contains_key(*k))
        .collect();
    let missing: Vec<&Key> = g
        .expected
        .keys()
        .filter(|k| !got.contains_key(*k))
        .collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{} unexpected keys (first: {:?}), {} missing (first: {:?})",
        extra.len(),
        extra.first(),
        missing.len(),
        missing.first()
    );
    for (k, e) in &g.expected {
        let r = &got[k];
        assert_eq!(
            (r.hits, r.errors, r.duration, r.top_level_hits),
            (e.hits, e.errors, e.duration, e.top_level_hits),
            "{k:?}"
        );
        check_quantiles(&format!("{k:?} ok"), r.ok.as_ref().unwrap(), e.ok.clone());
        check_quantiles(
            &format!("{k:?} err"),
            r.err.as_ref().unwrap(),
            e.err.clone(),
        );
    }
    // Every eligible span was counted once, including those of dropped chunks.
    let counted: u64 = got.values().map(|r| r.hits).sum();
    assert_eq!(counted, 240 * 4);

    // The agent itself decoded the payloads.
    let (status, body) = agent.get(&format!("/test/session/stats?test_session_token={token}"));
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(stats_reqs.len()));
}

#[test]
fn agent_that_refuses_client_stats_gets_untouched_spans() {
    let agent = TestAgent::start_with(
        &[("DD_AGENT_EXTRA_INFO", r#"{"client_drop_p0s": false}"#)],
        &[],
    );
    let token = "stats-refused";
    agent.start_session(token, None);
    let g = generate(20, 3);
    let ex = builder(&agent.url(), token).build().unwrap();
    send_all(&ex, &g.traces);
    assert_eq!(ex.stats_state(), StatsState::NotSupportedByAgent);
    ex.shutdown(Duration::from_secs(5)).unwrap();
    let reqs = agent.requests(token);
    assert!(reqs.iter().all(|r| r.path() != "/v0.6/stats"));
    let traces: Vec<&Request> = reqs.iter().filter(|r| r.path() == "/v0.4/traces").collect();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].header("Datadog-Client-Computed-Stats"), None);
    assert_eq!(traces[0].header("Datadog-Client-Dropped-P0-Traces"), None);
    let body = rmpv::decode::read_value(&mut &traces[0].body[..]).unwrap();
    assert_eq!(body.as_array().unwrap().len(), 20, "P0 chunks kept");
}

#[test]
fn stats_on_without_p0_permission_keeps_p0s() {
    let agent = TestAgent::start_with(
        &[("DD_AGENT_EXTRA_INFO", r#"{"client_drop_p0s": false}"#)],
        &[],
    );
    let token = "stats-on";
    agent.start_session(token, None);
    let g = generate(12, 5);
    let ex = builder(&agent.url(), token)
        .stats(StatsMode::On)
        .build()
        .unwrap();
    send_all(&ex, &g.traces);
    ex.refresh_info().unwrap();
    assert_eq!(ex.stats_state(), StatsState::Enabled);
    assert!(!ex.stats().unwrap().p0_dropping());
    ex.shutdown(Duration::from_secs(5)).unwrap();
    let reqs = agent.requests(token);
    let t = reqs.iter().find(|r| r.path() == "/v0.4/traces").unwrap();
    assert_eq!(t.header("Datadog-Client-Computed-Stats"), Some("true"));
    assert_eq!(t.header("Datadog-Client-Dropped-P0-Traces"), Some("0"));
    let (got, _) = received_stats(&reqs);
    assert_eq!(got.values().map(|r| r.hits).sum::<u64>(), 12 * 4);
}

#[test]
fn sampling_feedback_per_exporter() {
    let agent = TestAgent::start();
    let token = "stats-rates";
    agent.start_session(
        token,
        Some(r#"{"service:web,env:prod": 0.25, "service:,env:": 0.5}"#),
    );
    let ex = builder(&agent.url(), token)
        .stats(StatsMode::Off)
        .build()
        .unwrap();
    assert_eq!(ex.sampling_rate("web", "prod"), 1.0, "no feedback yet");
    let g = generate(2, 11);
    send_all(&ex, &g.traces);
    assert_eq!(ex.sampling_rate("web", "prod"), 0.25);
    assert_eq!(ex.sampling_rate("other", "prod"), 0.5, "default key");
    assert_eq!(ex.sampling_rates().len(), 2);
    assert_eq!(ex.stats_state(), StatsState::Disabled);
    // A second exporter has its own feedback.
    let other = builder(&agent.url(), token).build().unwrap();
    assert_eq!(other.sampling_rate("web", "prod"), 1.0);
}

/// One SQL span (a client root of its own chunk) and the stats key resource the agent received.
fn sql_stats_resource(agent: &TestAgent, token: &str, b: &mut ExporterBuilder) -> (String, String) {
    agent.start_session(token, None);
    let ex = b.build().unwrap();
    let span = Span {
        service: "db".into(),
        name: "postgres.query".into(),
        resource: "SELECT u.id AS uid FROM users2 u WHERE u.id = 42".into(),
        r#type: "sql".into(),
        trace_id: 77,
        span_id: 1,
        start: now_ns() - 1_000_000,
        duration: 500_000,
        ..Default::default()
    };
    send_all(&ex, &[vec![span]]);
    assert_eq!(ex.stats_state(), StatsState::Enabled);
    ex.shutdown(Duration::from_secs(5)).unwrap();
    let reqs = agent.requests(token);
    let (got, _) = received_stats(&reqs);
    assert_eq!(got.len(), 1, "{got:?}");
    let trace = reqs.iter().find(|r| r.path() == "/v0.4/traces").unwrap();
    let body = rmpv::decode::read_value(&mut &trace.body[..]).unwrap();
    let sent = s(&body[0][0], "resource");
    (got.keys().next().unwrap().resource.clone(), sent)
}

#[test]
fn stats_keys_follow_the_sql_settings() {
    let agent = TestAgent::start();
    let raw = "SELECT u.id AS uid FROM users2 u WHERE u.id = 42";
    // Agent defaults: aliases dropped, digits kept; the span itself is not obfuscated (off
    // towards an agent) but its stats key is.
    let (key, sent) = sql_stats_resource(
        &agent,
        "stats-sql-default",
        &mut builder(&agent.url(), "stats-sql-default"),
    );
    assert_eq!(key, "SELECT u.id FROM users2 u WHERE u.id = ?");
    assert_eq!(sent, raw);
    // The user's settings, span obfuscation still off: the key follows them.
    let mut b = builder(&agent.url(), "stats-sql-custom");
    b.obfuscation_sql_replace_digits(true)
        .obfuscation_sql_keep_alias(true);
    let (key, sent) = sql_stats_resource(&agent, "stats-sql-custom", &mut b);
    assert_eq!(key, "SELECT u.id AS uid FROM users? u WHERE u.id = ?");
    assert_eq!(sent, raw);
    // With span obfuscation on, the key is the obfuscation of the span as sent, which is what
    // the agent's own stats would use (it obfuscates every span it receives, already obfuscated
    // or not). Obfuscating `users?` again splits the `?` off: not idempotent with digits replaced.
    let mut b = builder(&agent.url(), "stats-sql-both");
    b.obfuscation_sql_replace_digits(true)
        .obfuscation_sql_keep_alias(true)
        .obfuscate(true);
    let (key, sent) = sql_stats_resource(&agent, "stats-sql-both", &mut b);
    assert_eq!(sent, "SELECT u.id AS uid FROM users? u WHERE u.id = ?");
    assert_eq!(key, "SELECT u.id AS uid FROM users ? u WHERE u.id = ?");
}

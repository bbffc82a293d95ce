//! Data Streams Monitoring against the real Datadog test agent: checkpoints with known times go
//! out through the real HTTP transport (TCP and unix socket), and what the agent received is
//! read back from `/test/session/requests` and decoded independently (rmpv, flate2, prost
//! through the sketch decoder). The agent is started by the shared launcher of `tests/support/`.

use data_pipeline::datastreams::{Config, KafkaOffset, OffsetKind, Processor};
use data_pipeline::sketch::DDSketch;
use data_pipeline::ErrorKind;
use rmpv::Value;
use support::{
    decode_pipeline_stats, field, Fault, FaultServer, Request, TestAgent, DSM_EXTRA_INFO,
};

mod support;

const S: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

fn start_agent(args: &[&str]) -> TestAgent {
    TestAgent::start_with(&[("DD_AGENT_EXTRA_INFO", DSM_EXTRA_INFO)], args)
}

fn config(service: &str, agent_url: String, token: &str) -> Config {
    Config {
        service: service.into(),
        env: "dsm-test".into(),
        version: "1.2.3".into(),
        lang: "cpp".into(),
        lang_version: "17".into(),
        tracer_version: "0.1.0-test".into(),
        agent_url,
        flush_interval: None,
        process_tags: vec!["entrypoint.name:dsm-agent-test".into()],
        extra_headers: vec![("X-Datadog-Test-Session-Token".into(), token.into())],
        ..Config::default()
    }
}

/// A bucket start a minute ago (complete, so nothing about "now" matters).
fn past_bucket() -> i64 {
    let now = data_pipeline::datastreams::processor::now_ns();
    now - now.rem_euclid(10 * S) - 60 * S
}

fn sketch(v: &Value, k: &str) -> DDSketch {
    match field(v, k) {
        Value::Binary(b) => DDSketch::decode(b).unwrap_or_else(|e| panic!("{k}: {e}")),
        other => panic!("{k} is not bin: {other}"),
    }
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The pipeline stats payloads of a session, decoded (gunzipped first if the agent kept gzip).
fn pipeline_payloads(agent: &TestAgent, token: &str) -> Vec<(Request, Value)> {
    agent
        .requests(token)
        .into_iter()
        .filter(|r| r.path().starts_with("/v0.1/pipeline_stats"))
        .map(|r| {
            let v = decode_pipeline_stats(&r.body);
            (r, v)
        })
        .collect()
}

fn assert_within(actual: f64, expected: f64, sketch: &DDSketch, what: &str) {
    let tol = expected.abs() * sketch.relative_accuracy() + 1e-9;
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: {actual} not within {tol} of {expected}"
    );
}

#[test]
fn pipeline_stats_reach_the_test_agent() {
    let agent = start_agent(&[]);
    let (status, info) = agent.get("/info");
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert!(
        info["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "/v0.1/pipeline_stats"),
        "{info}"
    );
    let token = format!("dsm-tcp-{}", std::process::id());
    agent.start_session(&token, None);

    let producer = Processor::new(config("svc-producer", agent.url(), &token)).unwrap();
    let consumer = Processor::new(config("svc-consumer", agent.url(), &token)).unwrap();
    let t0 = past_bucket();

    // Three messages produced at t0+1s, +2s, +3s and consumed 0.5 s, 1 s and 2 s later; the
    // consumer produces each onward 250 ms after consuming.
    let queue_times = [500 * MS, S, 2 * S];
    let mut produced = Vec::new();
    let mut consumed = Vec::new();
    let mut forwarded = Vec::new();
    for (i, q) in queue_times.iter().enumerate() {
        let t_produce = t0 + (i as i64 + 1) * S;
        let mut headers = vec![("key".to_owned(), b"order-1".to_vec())];
        let p = producer.produce_at(None, "orders", "c1", &mut headers, 100, Some(t_produce));
        let c = consumer.consume_at(
            "orders",
            "billing",
            "c1",
            &headers,
            149,
            Some(t_produce + q),
        );
        let mut out = Vec::new();
        let f = consumer.produce_at(
            Some(&c),
            "invoices",
            "c1",
            &mut out,
            10,
            Some(t_produce + q + 250 * MS),
        );
        produced.push(p);
        consumed.push(c);
        forwarded.push(f);
    }
    // Same pathway every time: one group per checkpoint kind.
    assert!(produced.iter().all(|p| p.hash() == produced[0].hash()));
    assert!(consumed.iter().all(|c| c.hash() == consumed[0].hash()));

    let off = |kind, group: &str, partition, offset| KafkaOffset {
        kind,
        group: group.into(),
        topic: "orders".into(),
        partition,
        cluster_id: "c1".into(),
        offset,
    };
    producer.track_kafka_offset(off(OffsetKind::Produce, "", 0, 150), Some(t0 + S));
    producer.track_kafka_offset(off(OffsetKind::Produce, "", 0, 100), Some(t0 + 2 * S));
    consumer.track_kafka_offset(off(OffsetKind::Commit, "billing", 0, 120), Some(t0 + 3 * S));

    producer.flush().unwrap();
    consumer.flush().unwrap();
    assert_eq!(producer.stats().payloads_sent, 1);
    assert_eq!(consumer.stats().payloads_sent, 1);

    let payloads = pipeline_payloads(&agent, &token);
    assert_eq!(payloads.len(), 2, "one payload per processor/service");
    for (req, v) in &payloads {
        assert_eq!(req.method, "POST");
        assert_eq!(req.header("Content-Type"), Some("application/msgpack"));
        assert_eq!(req.header("Datadog-Meta-Lang"), Some("cpp"));
        assert_eq!(req.header("Datadog-Meta-Lang-Version"), Some("17"));
        assert_eq!(
            req.header("Datadog-Meta-Tracer-Version"),
            Some("0.1.0-test")
        );
        assert_eq!(field(v, "Env").as_str(), Some("dsm-test"));
        assert_eq!(field(v, "Version").as_str(), Some("1.2.3"));
        assert_eq!(field(v, "Lang").as_str(), Some("cpp"));
        assert_eq!(field(v, "TracerVersion").as_str(), Some("0.1.0-test"));
        assert_eq!(field(v, "ProductMask").as_u64(), Some(3));
        assert_eq!(
            strs(field(v, "ProcessTags")),
            ["entrypoint.name:dsm-agent-test"]
        );
        let buckets = field(v, "Stats").as_array().unwrap();
        assert_eq!(buckets.len(), 1);
        assert_eq!(field(&buckets[0], "Start").as_u64(), Some(t0 as u64));
        assert_eq!(field(&buckets[0], "Duration").as_u64(), Some(10 * S as u64));
    }
    let by_service = |s: &str| {
        payloads
            .iter()
            .find(|(_, v)| field(v, "Service").as_str() == Some(s))
            .map(|(_, v)| &field(v, "Stats").as_array().unwrap()[0])
            .unwrap_or_else(|| panic!("no payload for {s}"))
    };

    // Producer: one point, a new pathway, payload 100 + the injected header (21 + 28).
    let pb = by_service("svc-producer");
    let points = field(pb, "Stats").as_array().unwrap();
    assert_eq!(points.len(), 1);
    let p = &points[0];
    assert_eq!(field(p, "Hash").as_u64(), Some(produced[0].hash()));
    assert_eq!(field(p, "ParentHash").as_u64(), Some(0));
    assert_eq!(field(p, "TimestampType").as_str(), Some("current"));
    assert_eq!(
        strs(field(p, "EdgeTags")),
        [
            "direction:out",
            "kafka_cluster_id:c1",
            "topic:orders",
            "type:kafka"
        ]
    );
    let size = sketch(p, "PayloadSize");
    assert_eq!(size.count(), 3.0);
    assert_within(
        size.quantile(0.5).unwrap(),
        149.0,
        &size,
        "producer payload size",
    );
    assert_eq!(sketch(p, "EdgeLatency").zero_count(), 3.0);
    let backlogs = field(pb, "Backlogs").as_array().unwrap();
    assert_eq!(backlogs.len(), 1);
    assert_eq!(
        strs(field(&backlogs[0], "Tags")),
        [
            "type:kafka_produce",
            "topic:orders",
            "partition:0",
            "kafka_cluster_id:c1"
        ]
    );
    assert_eq!(
        field(&backlogs[0], "Value").as_i64(),
        Some(150),
        "the max offset"
    );

    // Consumer: consume (parent = producer) and forward (parent = consume).
    let cb = by_service("svc-consumer");
    let points = field(cb, "Stats").as_array().unwrap();
    assert_eq!(points.len(), 2);
    let find = |h: u64| {
        points
            .iter()
            .find(|p| field(p, "Hash").as_u64() == Some(h))
            .unwrap_or_else(|| panic!("no point {h}"))
    };
    let c = find(consumed[0].hash());
    assert_eq!(field(c, "ParentHash").as_u64(), Some(produced[0].hash()));
    assert_eq!(
        strs(field(c, "EdgeTags")),
        [
            "direction:in",
            "group:billing",
            "kafka_cluster_id:c1",
            "topic:orders",
            "type:kafka"
        ]
    );
    let edge = sketch(c, "EdgeLatency");
    assert_eq!(edge.count(), 3.0);
    assert_within(edge.quantile(0.0).unwrap(), 0.5, &edge, "consume edge p0");
    assert_within(edge.quantile(0.5).unwrap(), 1.0, &edge, "consume edge p50");
    assert_within(edge.quantile(1.0).unwrap(), 2.0, &edge, "consume edge p100");
    let pathway = sketch(c, "PathwayLatency");
    assert_within(
        pathway.quantile(1.0).unwrap(),
        2.0,
        &pathway,
        "consume pathway p100",
    );
    let f = find(forwarded[0].hash());
    assert_eq!(field(f, "ParentHash").as_u64(), Some(consumed[0].hash()));
    let edge = sketch(f, "EdgeLatency");
    assert_within(edge.quantile(0.5).unwrap(), 0.25, &edge, "forward edge");
    let pathway = sketch(f, "PathwayLatency");
    assert_within(
        pathway.quantile(0.0).unwrap(),
        0.75,
        &pathway,
        "forward pathway p0",
    );
    assert_within(
        pathway.quantile(1.0).unwrap(),
        2.25,
        &pathway,
        "forward pathway p100",
    );
    let backlogs = field(cb, "Backlogs").as_array().unwrap();
    assert_eq!(backlogs.len(), 1);
    assert_eq!(
        strs(field(&backlogs[0], "Tags")),
        [
            "type:kafka_commit",
            "consumer_group:billing",
            "topic:orders",
            "partition:0",
            "kafka_cluster_id:c1"
        ]
    );
    assert_eq!(field(&backlogs[0], "Value").as_i64(), Some(120));

    producer
        .shutdown(std::time::Duration::from_secs(5))
        .unwrap();
    consumer
        .shutdown(std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        pipeline_payloads(&agent, &token).len(),
        2,
        "nothing left to send"
    );
}

#[test]
fn pipeline_stats_over_a_unix_socket_and_background_flush() {
    let sock = support::temp_path("dsm-agent", "sock");
    let sock_s = sock.to_string_lossy().into_owned();
    let agent = start_agent(&["--trace-uds-socket", &sock_s]);
    let token = format!("dsm-uds-{}", std::process::id());
    agent.start_session(&token, None);
    let url = agent.uds_url().unwrap();
    let dsm = Processor::new(Config {
        flush_interval: Some(std::time::Duration::from_millis(100)),
        ..config("svc-uds", url, &token)
    })
    .unwrap();
    // A checkpoint in a complete bucket: the background thread sends it on its own.
    let t0 = past_bucket();
    let ctx = dsm.set_checkpoint_at(None, &["direction:out", "type:http"], 42, t0 + S);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let payloads = loop {
        let p = pipeline_payloads(&agent, &token);
        if !p.is_empty() || std::time::Instant::now() > end {
            break p;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(
        payloads.len(),
        1,
        "the periodic flush delivered over the socket"
    );
    let (_, v) = &payloads[0];
    assert_eq!(field(v, "Service").as_str(), Some("svc-uds"));
    let point = &field(&field(v, "Stats").as_array().unwrap()[0], "Stats")
        .as_array()
        .unwrap()[0];
    assert_eq!(field(point, "Hash").as_u64(), Some(ctx.hash()));
    dsm.shutdown(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(dsm.stats().payloads_sent, 1);
}

#[test]
fn agent_404_backs_off_logs_once_and_counts() {
    // The test agent serves the endpoint: an agent older than 7.34 is played by a loopback
    // server answering 404 (and 404 on /info).
    let server = FaultServer::start_with(vec![], Fault::status(404), "");
    let dsm = Processor::new(config("svc-old-agent", server.url(), "t")).unwrap();
    let t0 = past_bucket();
    dsm.set_checkpoint_at(None, &["type:x"], 0, t0);
    let e = dsm.flush().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    dsm.set_checkpoint_at(None, &["type:x"], 0, t0);
    assert_eq!(dsm.flush().unwrap_err().kind(), ErrorKind::Unsupported);
    let s = dsm.stats();
    assert_eq!(s.agent_too_old, 1);
    assert_eq!(s.payloads_dropped, 1);
    assert_eq!(s.payloads_sent, 0);
    let reqs = server.all_requests();
    assert_eq!(
        reqs.len(),
        1,
        "backing off: the second payload was not sent"
    );
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v0.1/pipeline_stats");
    assert_eq!(reqs[0].header("content-encoding"), Some("gzip"));
    assert_eq!(reqs[0].header("x-datadog-test-session-token"), Some("t"));
}

#[test]
fn started_from_the_exporter_settings() {
    // A tracer configures its exporter once; data streams follow it (URL, service, env,
    // version, language, tracer version, test session token).
    let agent = start_agent(&[]);
    let token = format!("dsm-from-exporter-{}", std::process::id());
    agent.start_session(&token, None);
    let exporter = data_pipeline::exporter::ExporterBuilder::new()
        .url(agent.url())
        .service("svc-exported")
        .env("exp-env")
        .app_version("7.7.7")
        .language("ruby")
        .language_version("3.3")
        .tracer_version("2.1.0")
        .test_session_token(token.as_str())
        .build()
        .unwrap();
    let dsm = Processor::from_exporter(&exporter, |c| c.flush_interval = None).unwrap();
    let t0 = past_bucket();
    let ctx = dsm.set_checkpoint_at(None, &["direction:out", "type:sqs", "topic:q"], 9, t0 + S);
    dsm.flush().unwrap();
    let payloads = pipeline_payloads(&agent, &token);
    assert_eq!(payloads.len(), 1, "the exporter's session token was sent");
    let (req, v) = &payloads[0];
    assert_eq!(req.header("Datadog-Meta-Lang"), Some("ruby"));
    assert_eq!(req.header("Datadog-Meta-Lang-Version"), Some("3.3"));
    assert_eq!(req.header("Datadog-Meta-Tracer-Version"), Some("2.1.0"));
    assert_eq!(field(v, "Service").as_str(), Some("svc-exported"));
    assert_eq!(field(v, "Env").as_str(), Some("exp-env"));
    assert_eq!(field(v, "Version").as_str(), Some("7.7.7"));
    assert_eq!(field(v, "Lang").as_str(), Some("ruby"));
    let point = &field(&field(v, "Stats").as_array().unwrap()[0], "Stats")
        .as_array()
        .unwrap()[0];
    assert_eq!(field(point, "Hash").as_u64(), Some(ctx.hash()));
}

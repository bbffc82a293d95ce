//! Data Streams Monitoring against the real Datadog test agent: checkpoints with known times go
//! out through the real HTTP transport (TCP and unix socket), and what the agent received is
//! read back from `/test/session/requests` and decoded independently (rmpv, flate2, prost
//! through the sketch decoder).

use data_pipeline::datastreams::{Config, KafkaOffset, OffsetKind, Processor};
use data_pipeline::sketch::DDSketch;
use data_pipeline::ErrorKind;
use rmpv::Value;
use std::io::Read;
use support::{NotFoundServer, Request, TestAgent};

const S: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

/// `/info` must list the pipeline stats endpoint: the test agent serves it without listing it.
const EXTRA_INFO: &str = r#"{"endpoints": ["/v0.4/traces", "/v0.5/traces", "/v0.6/stats", "/v0.7/config", "/info", "/v0.1/pipeline_stats"]}"#;

fn start_agent(args: &[&str]) -> TestAgent {
    TestAgent::start_with(&[("DD_AGENT_EXTRA_INFO", EXTRA_INFO)], args)
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

fn field<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.as_map()
        .unwrap_or_else(|| panic!("not a map: {v}"))
        .iter()
        .find(|(kk, _)| kk.as_str() == Some(k))
        .map(|(_, vv)| vv)
        .unwrap_or_else(|| panic!("no field {k} in {v}"))
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
            let mut raw = r.body.clone();
            if raw.starts_with(&[0x1f, 0x8b]) {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(raw.as_slice())
                    .read_to_end(&mut out)
                    .expect("gzip body");
                raw = out;
            }
            let v = rmpv::decode::read_value(&mut raw.as_slice()).expect("msgpack body");
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
    // server answering 404.
    let server = NotFoundServer::start();
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
    let reqs = server.requests();
    assert_eq!(
        reqs.len(),
        1,
        "backing off: the second payload was not sent"
    );
    assert!(
        reqs[0].starts_with("POST /v0.1/pipeline_stats "),
        "{}",
        reqs[0]
    );
    assert!(
        reqs[0]
            .to_ascii_lowercase()
            .contains("\r\ncontent-encoding: gzip\r\n"),
        "{}",
        reqs[0]
    );
}

/// A self-contained launcher for the real test agent and a loopback 404 server. (When the
/// shared launcher of `tests/support/` is on main, this module gives way to it.)
mod support {
    use base64::Engine as _;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind 127.0.0.1:0")
    }

    /// A unique temp path, short enough for a unix socket.
    pub fn temp_path(stem: &str, ext: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("dp-{stem}-{}-{n}.{ext}", std::process::id()))
    }

    fn binary() -> PathBuf {
        if let Some(p) = std::env::var_os("DP_TEST_AGENT").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            assert!(p.exists(), "DP_TEST_AGENT={} does not exist", p.display());
            return p;
        }
        let p = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../.cache/venv/bin/ddapm-test-agent"
        ));
        assert!(
            p.exists(),
            "the Datadog test agent is missing: run scripts/setup-test-env.sh or set DP_TEST_AGENT"
        );
        p
    }

    /// One request as the agent recorded it.
    #[derive(Debug, Clone)]
    pub struct Request {
        pub method: String,
        pub url: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Request {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        pub fn path(&self) -> &str {
            let rest = self
                .url
                .split_once("://")
                .map_or(self.url.as_str(), |(_, r)| r);
            rest.find('/').map_or("/", |i| &rest[i..])
        }
    }

    /// A running `ddapm-test-agent` on free ports (trace and both OTLP), killed on drop.
    pub struct TestAgent {
        child: Child,
        port: u16,
        uds: Option<PathBuf>,
        log: PathBuf,
    }

    impl TestAgent {
        pub fn start_with(env: &[(&str, &str)], args: &[&str]) -> TestAgent {
            let uds = args
                .iter()
                .position(|a| *a == "--trace-uds-socket")
                .and_then(|i| args.get(i + 1))
                .map(PathBuf::from);
            let mut last_log = String::new();
            for _ in 0..3 {
                let (port, http, grpc) = (free_port(), free_port(), free_port());
                if port == http || port == grpc || http == grpc {
                    continue;
                }
                let log = temp_path("dsm-agent", "log");
                let f = std::fs::File::create(&log).expect("agent log");
                let mut cmd = Command::new(binary());
                cmd.args(["--host", "127.0.0.1", "--log-level", "WARNING"])
                    .args(["--port", &port.to_string()])
                    .args(["--otlp-http-port", &http.to_string()])
                    .args(["--otlp-grpc-port", &grpc.to_string()])
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::from(f.try_clone().expect("log handle")))
                    .stderr(Stdio::from(f));
                for (k, v) in env {
                    cmd.env(k, v);
                }
                let mut agent = TestAgent {
                    child: cmd.spawn().expect("start the test agent"),
                    port,
                    uds: uds.clone(),
                    log,
                };
                if agent.wait_ready() {
                    return agent;
                }
                last_log = std::fs::read_to_string(&agent.log).unwrap_or_default();
            }
            panic!("the test agent did not become ready:\n{last_log}");
        }

        fn wait_ready(&mut self) -> bool {
            let end = Instant::now() + Duration::from_secs(30);
            while Instant::now() < end {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return false;
                }
                if self.uds.as_ref().is_none_or(|p| p.exists())
                    && matches!(get(self.addr(), "/info"), Ok((200, _)))
                {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        }

        fn addr(&self) -> SocketAddr {
            SocketAddr::from(([127, 0, 0, 1], self.port))
        }

        pub fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        pub fn uds_url(&self) -> Option<String> {
            self.uds.as_ref().map(|p| format!("unix://{}", p.display()))
        }

        pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
            get(self.addr(), path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
        }

        pub fn start_session(&self, token: &str, _rates: Option<&str>) {
            let (status, body) =
                self.get(&format!("/test/session/start?test_session_token={token}"));
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        }

        pub fn requests(&self, token: &str) -> Vec<Request> {
            let (status, body) = self.get(&format!(
                "/test/session/requests?test_session_token={token}"
            ));
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            let v: serde_json::Value = serde_json::from_slice(&body).expect("requests JSON");
            v.as_array()
                .expect("requests: an array")
                .iter()
                .map(|r| Request {
                    method: r["method"].as_str().unwrap_or_default().into(),
                    url: r["url"].as_str().unwrap_or_default().into(),
                    headers: r["headers"]
                        .as_object()
                        .map(|h| {
                            h.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().into()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    body: base64::engine::general_purpose::STANDARD
                        .decode(r["body"].as_str().unwrap_or_default())
                        .expect("body is base64"),
                })
                .collect()
        }
    }

    impl Drop for TestAgent {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&self.log);
            if let Some(p) = &self.uds {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// HTTP/1.0 GET, answer read to EOF.
    fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp)?;
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad answer");
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(bad)?;
        let head = String::from_utf8_lossy(&resp[..split]);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        Ok((status, resp[split + 4..].to_vec()))
    }

    /// An HTTP server on 127.0.0.1 answering 404 to everything (an agent older than 7.34),
    /// recording each request's head. Stops on drop.
    pub struct NotFoundServer {
        addr: SocketAddr,
        heads: Arc<Mutex<Vec<String>>>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl NotFoundServer {
        pub fn start() -> NotFoundServer {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.set_nonblocking(true).expect("nonblocking");
            let addr = listener.local_addr().expect("addr");
            let heads = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (h, st) = (heads.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => serve(conn, &h),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
            NotFoundServer {
                addr,
                heads,
                stop,
                thread: Some(thread),
            }
        }

        pub fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        pub fn requests(&self) -> Vec<String> {
            self.heads.lock().unwrap().clone()
        }
    }

    /// Serves one keep-alive connection: every request (Content-Length bodies) gets a 404.
    fn serve(mut conn: TcpStream, heads: &Mutex<Vec<String>>) {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i;
                }
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let len: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.drain(..end + 4 + len);
            heads.lock().unwrap().push(head);
            let answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
            if conn.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }

    impl Drop for NotFoundServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

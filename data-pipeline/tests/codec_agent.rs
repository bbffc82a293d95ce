//! The codecs against a real decoder: payloads we encode are sent to the Datadog test agent
//! (`ddapm-test-agent`), which must accept them, and what it decoded must be what we sent.
//!
//! The agent binary comes from env `DP_TEST_AGENT`, else `<repo>/.cache/venv/bin/ddapm-test-agent`
//! (created by `scripts/setup-test-env.sh`). It is started on free loopback ports.

use data_pipeline::decode::{decode, Format};
use data_pipeline::encode::encode_to_vec;
use data_pipeline::span::Str;
use data_pipeline::span::{AttributeScalar, AttributeValue, Span, SpanEvent, SpanLink};
use serde_json::Value;
use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../benches/support/gen.rs"]
mod gen;

fn agent_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("DP_TEST_AGENT") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/venv/bin/ddapm-test-agent");
    assert!(
        p.exists(),
        "ddapm-test-agent not found: set DP_TEST_AGENT or run scripts/setup-test-env.sh ({})",
        p.display()
    );
    p
}

/// A test agent process on free ports, killed on drop.
struct Agent {
    child: Child,
    port: u16,
    _dir: TempDir,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_ports() -> [u16; 3] {
    // Held together so the three differ; released just before the agent binds them.
    let l: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    [0, 1, 2].map(|i| l[i].local_addr().unwrap().port())
}

impl Agent {
    fn start() -> Agent {
        let [port, http, grpc] = free_ports();
        let dir =
            std::env::temp_dir().join(format!("dp-codec-agent-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(agent_binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--otlp-http-port", &http.to_string()])
            .args(["--otlp-grpc-port", &grpc.to_string()])
            .args(["--log-level", "WARNING"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ddapm-test-agent");
        let agent = Agent {
            child,
            port,
            _dir: TempDir(dir),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = agent.request("GET", "/info", &[], b"") {
                return agent;
            }
            assert!(Instant::now() < deadline, "test agent not ready in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A minimal HTTP/1.1 exchange (Connection: close); returns status and body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())?;
        s.write_all(body)?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp)?;
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no header end"))?;
        let head = String::from_utf8_lossy(&resp[..split]).to_string();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("bad status line"))?;
        let mut body = resp[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Ok((status, body))
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.request("GET", path, &[], b"").unwrap();
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
    out
}

/// Realistic traces plus one span carrying links, events and meta_struct.
fn payload_traces() -> data_pipeline::Traces<'static> {
    let mut traces = gen::realistic_traces(77, 5, 4);
    let span: &mut Span = &mut traces[1][2];
    span.meta_struct.push(
        "appsec",
        Cow::Owned(vec![0x81, 0xa4, b'r', b'u', b'l', b'e', 0xa2, b'r', b'1']),
    );
    span.span_links.push(SpanLink {
        trace_id: 0xdead,
        trace_id_high: 0xbeef,
        span_id: 0xf00d,
        attributes: [("link.kind", Str::borrowed("follows_from"))]
            .into_iter()
            .collect(),
        tracestate: Str::borrowed("dd=s:2;o:rum"),
        flags: 0x8000_0001,
    });
    span.span_events.push(SpanEvent {
        time_unix_nano: 1_700_000_000_123_456_789,
        name: Str::borrowed("exception"),
        attributes: [
            (
                Cow::Borrowed("exception.message"),
                AttributeValue::Scalar(AttributeScalar::String("boom".into())),
            ),
            (
                Cow::Borrowed("exception.escaped"),
                AttributeValue::Scalar(AttributeScalar::Bool(true)),
            ),
            (
                Cow::Borrowed("retries"),
                AttributeValue::Scalar(AttributeScalar::Int(3)),
            ),
            (
                Cow::Borrowed("ratio"),
                AttributeValue::Scalar(AttributeScalar::Double(0.25)),
            ),
            (
                Cow::Borrowed("tags"),
                AttributeValue::Array(vec![
                    AttributeScalar::String("a".into()),
                    AttributeScalar::String("b".into()),
                ]),
            ),
        ]
        .into_iter()
        .collect(),
    });
    traces
}

fn send(agent: &Agent, format: Format, token: &str, body: &[u8], traces: usize) {
    let (status, _) = agent
        .request(
            "GET",
            &format!("/test/session/start?test_session_token={token}"),
            &[],
            b"",
        )
        .unwrap();
    assert_eq!(status, 200);
    let (status, resp) = agent
        .request(
            "PUT",
            format.endpoint_path(),
            &[
                ("Content-Type", "application/msgpack".to_owned()),
                ("X-Datadog-Trace-Count", traces.to_string()),
                ("X-Datadog-Test-Session-Token", token.to_owned()),
                ("Datadog-Meta-Lang", "rust".to_owned()),
            ],
            body,
        )
        .unwrap();
    assert_eq!(status, 200, "{format}: {}", String::from_utf8_lossy(&resp));
}

/// Finds a received span by span id.
fn received(got: &Value, span_id: u64) -> &Value {
    got.as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t.as_array().unwrap())
        .find(|s| s["span_id"].as_u64() == Some(span_id))
        .unwrap_or_else(|| panic!("span {span_id} not received"))
}

fn check_common(sent: &Span<'_>, got: &Value) {
    assert_eq!(got["service"], sent.service.as_ref());
    assert_eq!(got["name"], sent.name.as_ref());
    assert_eq!(got["resource"], sent.resource.as_ref());
    assert_eq!(got["type"], sent.r#type.as_ref());
    assert_eq!(got["trace_id"].as_u64(), Some(sent.trace_id));
    assert_eq!(got["parent_id"].as_u64(), Some(sent.parent_id));
    assert_eq!(got["start"].as_i64(), Some(sent.start));
    assert_eq!(got["duration"].as_i64(), Some(sent.duration));
    assert_eq!(got["error"].as_i64(), Some(sent.error as i64));
    for (k, v) in sent.meta.iter() {
        if k == "_dd.span_links" || k == "events" {
            continue;
        }
        assert_eq!(got["meta"][k.as_ref()], v.as_ref(), "meta {k}");
    }
    for (k, v) in sent.metrics.iter() {
        assert_eq!(got["metrics"][k.as_ref()].as_f64(), Some(*v), "metric {k}");
    }
}

#[test]
fn test_agent_accepts_and_reads_back_our_payloads() {
    let agent = Agent::start();
    let traces = payload_traces();
    let spans: usize = traces.iter().map(Vec::len).sum();

    // v0.4: everything travels, links/events/meta_struct included.
    let v04 = encode_to_vec(Format::V04, &traces).unwrap();
    send(&agent, Format::V04, "codec-v04", &v04, traces.len());
    let got = agent.json("/test/session/traces?test_session_token=codec-v04");
    let n: usize = got
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_array().unwrap().len())
        .sum();
    assert_eq!(n, spans);
    for span in traces.iter().flatten() {
        check_common(span, received(&got, span.span_id));
    }
    let special = &traces[1][2];
    let g = received(&got, special.span_id);
    assert_eq!(g["meta_struct"]["appsec"]["rule"], "r1");
    let link = &g["span_links"][0];
    assert_eq!(link["trace_id"].as_u64(), Some(0xdead));
    assert_eq!(link["trace_id_high"].as_u64(), Some(0xbeef));
    assert_eq!(link["span_id"].as_u64(), Some(0xf00d));
    assert_eq!(link["flags"].as_u64(), Some(0x8000_0001));
    assert_eq!(link["tracestate"], "dd=s:2;o:rum");
    assert_eq!(link["attributes"]["link.kind"], "follows_from");
    let event = &g["span_events"][0];
    assert_eq!(event["name"], "exception");
    assert_eq!(
        event["time_unix_nano"].as_u64(),
        Some(1_700_000_000_123_456_789)
    );
    let attrs = &event["attributes"];
    assert_eq!(attrs["exception.message"]["type"], 0);
    assert_eq!(attrs["exception.message"]["string_value"], "boom");
    assert_eq!(attrs["exception.escaped"]["bool_value"], true);
    assert_eq!(attrs["retries"]["int_value"], 3);
    assert_eq!(attrs["ratio"]["double_value"], 0.25);
    assert_eq!(attrs["tags"]["type"], 4);
    assert_eq!(
        attrs["tags"]["array_value"]["values"][1]["string_value"],
        "b"
    );

    // v0.5: links and events arrive as JSON meta, meta_struct is dropped.
    let v05 = encode_to_vec(Format::V05, &traces).unwrap();
    send(&agent, Format::V05, "codec-v05", &v05, traces.len());
    let got = agent.json("/test/session/traces?test_session_token=codec-v05");
    for span in traces.iter().flatten() {
        check_common(span, received(&got, span.span_id));
    }
    let g = received(&got, special.span_id);
    let links: Value = serde_json::from_str(g["meta"]["_dd.span_links"].as_str().unwrap()).unwrap();
    assert_eq!(links[0]["trace_id"], "000000000000beef000000000000dead");
    assert_eq!(links[0]["span_id"], "000000000000f00d");
    assert_eq!(links[0]["flags"], 1);
    let events: Value = serde_json::from_str(g["meta"]["events"].as_str().unwrap()).unwrap();
    assert_eq!(
        events[0]["attributes"]["tags"],
        serde_json::json!(["a", "b"])
    );
    assert!(g
        .get("meta_struct")
        .is_none_or(|m| m.as_object().is_none_or(|o| o.is_empty())));

    // And what we encode is what we decode.
    assert_eq!(decode(Format::V04, &v04).unwrap(), traces);
}

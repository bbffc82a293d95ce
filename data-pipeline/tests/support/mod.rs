//! Shared helpers for the integration tests: the real Datadog test agent ([`TestAgent`]) and a
//! fault-injecting HTTP/1.1 server on loopback ([`FaultServer`]) for what the test agent cannot do
//! (5xx, 429, resets, truncated answers).
//!
//! Every server binds 127.0.0.1 on ports picked at run time.

#![allow(dead_code)]

use base64::Engine as _;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Header checks the test agent runs on every trace request.
pub const ENABLED_CHECKS: &str =
    "trace_count_header,meta_tracer_version_header,trace_content_length";

/// How long a test agent may take to answer `/info` after its start.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A free TCP port on 127.0.0.1 (bound then released: the caller binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind 127.0.0.1:0")
}

/// A unique path in the temp dir (short enough for a unix socket).
pub fn temp_path(stem: &str, ext: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("dp-{stem}-{}-{n}.{ext}", std::process::id()))
}

/// The test agent binary: `DP_TEST_AGENT`, else `<repo>/.cache/venv/bin/ddapm-test-agent`.
/// Panics (never skips) when it is missing.
pub fn test_agent_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("DP_TEST_AGENT").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "DP_TEST_AGENT={} does not exist; run scripts/setup-test-env.sh or fix the variable",
            p.display()
        );
        return p;
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = repo.join(".cache/venv/bin/ddapm-test-agent");
    assert!(
        p.exists(),
        "the Datadog test agent is missing: run scripts/setup-test-env.sh (it installs {}) or set \
         DP_TEST_AGENT to a ddapm-test-agent binary",
        p.display()
    );
    p
}

/// One request as the test agent recorded it (`/test/session/requests`).
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Headers in the order received.
    pub headers: Vec<(String, String)>,
    /// Body (base64-decoded).
    pub body: Vec<u8>,
}

impl Request {
    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The URL's path.
    pub fn path(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, r)| r);
        rest.find('/').map_or("/", |i| &rest[i..])
    }
}

/// `DD_AGENT_EXTRA_INFO` for the Data Streams tests: `/info` must list the pipeline stats
/// endpoint, which the test agent serves without listing it.
pub const DSM_EXTRA_INFO: &str = r#"{"endpoints": ["/v0.4/traces", "/v0.5/traces", "/v0.6/stats", "/v0.7/config", "/info", "/v0.1/pipeline_stats"]}"#;

/// The value of key `k` in the msgpack map `m` (`None`: not a map, or no such key).
pub fn find_field<'v>(m: &'v rmpv::Value, k: &str) -> Option<&'v rmpv::Value> {
    m.as_map()?
        .iter()
        .find(|(key, _)| key.as_str() == Some(k))
        .map(|(_, v)| v)
}

/// The value of key `k` in the msgpack map `m`; panics (showing `m`) when there is none.
pub fn field<'v>(m: &'v rmpv::Value, k: &str) -> &'v rmpv::Value {
    find_field(m, k).unwrap_or_else(|| panic!("no field {k} in {m}"))
}

/// A `/v0.1/pipeline_stats` body decoded: gunzipped first if the agent kept the gzip, then
/// msgpack.
pub fn decode_pipeline_stats(body: &[u8]) -> rmpv::Value {
    let mut out = Vec::new();
    let raw = if body.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("gzip body");
        out.as_slice()
    } else {
        body
    };
    rmpv::decode::read_value(&mut &raw[..]).expect("msgpack body")
}

/// A running `ddapm-test-agent`, killed on drop.
pub struct TestAgent {
    child: Child,
    /// Trace port.
    pub port: u16,
    /// OTLP HTTP port.
    pub otlp_http_port: u16,
    /// OTLP gRPC port.
    pub otlp_grpc_port: u16,
    /// The unix socket, in UDS mode.
    pub uds: Option<PathBuf>,
    log: PathBuf,
}

impl TestAgent {
    /// Starts a test agent with the header checks on.
    pub fn start() -> TestAgent {
        Self::start_with(&[], &[])
    }

    /// Starts a test agent that also listens on a unix socket for traces.
    pub fn start_uds() -> TestAgent {
        let sock = temp_path("agent", "sock");
        let sock_s = sock.to_string_lossy().into_owned();
        Self::start_with(&[], &["--trace-uds-socket", &sock_s])
    }

    /// Starts a test agent with extra environment variables and arguments (a
    /// `--trace-uds-socket PATH` argument is noticed and waited for).
    pub fn start_with(env: &[(&str, &str)], args: &[&str]) -> TestAgent {
        let bin = test_agent_binary();
        let mut last_log = String::new();
        // A port picked free may be taken by another suite before the agent binds it: retry.
        for _ in 0..3 {
            let (port, http, grpc) = (free_port(), free_port(), free_port());
            if port == http || port == grpc || http == grpc {
                continue;
            }
            let log = temp_path("agent", "log");
            let log_file = std::fs::File::create(&log).expect("cannot create the agent log");
            let mut cmd = Command::new(&bin);
            cmd.args(["--host", "127.0.0.1", "--log-level", "WARNING"])
                .args(["--port", &port.to_string()])
                .args(["--otlp-http-port", &http.to_string()])
                .args(["--otlp-grpc-port", &grpc.to_string()])
                .args(["--pool-trace-check-failures", "true"])
                .args(args)
                .env("ENABLED_CHECKS", ENABLED_CHECKS)
                .stdin(Stdio::null())
                .stdout(Stdio::from(
                    log_file.try_clone().expect("cannot clone the log handle"),
                ))
                .stderr(Stdio::from(log_file));
            for (k, v) in env {
                cmd.env(k, v);
            }
            let uds = args
                .iter()
                .position(|a| *a == "--trace-uds-socket")
                .and_then(|i| args.get(i + 1))
                .map(PathBuf::from);
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut agent = TestAgent {
                child,
                port,
                otlp_http_port: http,
                otlp_grpc_port: grpc,
                uds,
                log,
            };
            if agent.wait_ready() {
                return agent;
            }
            last_log = std::fs::read_to_string(&agent.log).unwrap_or_default();
        }
        panic!("the test agent did not become ready; its log:\n{last_log}");
    }

    /// Polls `/info` (and the socket file in UDS mode) until ready; false if the process died or
    /// the bound passed.
    fn wait_ready(&mut self) -> bool {
        let end = Instant::now() + READY_TIMEOUT;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let sock_ok = self.uds.as_ref().is_none_or(|p| p.exists());
            if sock_ok {
                if let Ok((200, _)) = http_request(self.addr(), "GET", "/info", &[], &[]) {
                    return true;
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The trace address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `unix:///path` in UDS mode.
    pub fn uds_url(&self) -> Option<String> {
        self.uds.as_ref().map(|p| format!("unix://{}", p.display()))
    }

    /// GET `path`; panics on a transport error.
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        http_request(self.addr(), "GET", path, &[], &[])
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
    }

    /// Starts session `token`, with `agent_sample_rate_by_service` JSON if given.
    pub fn start_session(&self, token: &str, rates: Option<&str>) {
        let mut path = format!("/test/session/start?test_session_token={}", enc(token));
        if let Some(r) = rates {
            path.push_str("&agent_sample_rate_by_service=");
            path.push_str(&enc(r));
        }
        let (status, body) = self.get(&path);
        assert_eq!(
            status,
            200,
            "session start: {}",
            String::from_utf8_lossy(&body)
        );
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(
            status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "GET {path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    /// The session's traces, as the agent decoded them.
    pub fn traces(&self, token: &str) -> Value {
        self.json(&format!(
            "/test/session/traces?test_session_token={}",
            enc(token)
        ))
    }

    /// The session's raw requests.
    pub fn requests(&self, token: &str) -> Vec<Request> {
        let v = self.json(&format!(
            "/test/session/requests?test_session_token={}",
            enc(token)
        ));
        let arr = v.as_array().expect("requests: not an array");
        arr.iter()
            .map(|r| Request {
                method: r["method"].as_str().unwrap_or_default().to_string(),
                url: r["url"].as_str().unwrap_or_default().to_string(),
                headers: r["headers"]
                    .as_object()
                    .map(|h| {
                        h.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
                body: base64::engine::general_purpose::STANDARD
                    .decode(r["body"].as_str().unwrap_or_default())
                    .expect("requests: body is not base64"),
            })
            .collect()
    }

    /// The number of header/payload check failures of the session and the agent's report.
    pub fn check_failures(&self, token: &str) -> (usize, String) {
        let (status, body) = self.get(&format!(
            "/test/trace_check/failures?test_session_token={}",
            enc(token)
        ));
        let text = String::from_utf8_lossy(&body).into_owned();
        if status == 200 {
            return (0, text);
        }
        let count = text
            .split("with ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        (count, text)
    }

    /// Fails the test when the agent's trace checks failed for the session.
    pub fn assert_no_check_failures(&self, token: &str) {
        let (n, text) = self.check_failures(token);
        assert_eq!(n, 0, "test agent checks failed:\n{text}");
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A minimal HTTP/1.0 client (one request per connection; the answer is read to EOF).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
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
    let split = find(&resp, b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no end of headers"))?;
    let head = String::from_utf8_lossy(&resp[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad status line"))?;
    Ok((status, resp[split + 4..].to_vec()))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// FaultServer
// ---------------------------------------------------------------------------------------------

/// What the fault server does with one trace request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with a status, headers and body, after a delay.
    Respond {
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Body.
        body: String,
        /// Wait before answering.
        delay: Duration,
    },
    /// Reset the connection (RST) without answering.
    Reset,
    /// Send headers announcing a body longer than what follows, then close.
    Truncated,
}

impl Fault {
    /// `status` with an empty JSON body, at once.
    pub fn status(status: u16) -> Fault {
        Fault::Respond {
            status,
            headers: Vec::new(),
            body: "{}".into(),
            delay: Duration::ZERO,
        }
    }

    /// 200 with a `rate_by_service` body.
    pub fn ok() -> Fault {
        Fault::Respond {
            status: 200,
            headers: Vec::new(),
            body: r#"{"rate_by_service": {"service:,env:": 1.0}}"#.into(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Fault {
        if let Fault::Respond { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    /// Sets the delay.
    pub fn delayed(mut self, d: Duration) -> Fault {
        if let Fault::Respond { delay, .. } = &mut self {
            *delay = d;
        }
        self
    }
}

/// A request the fault server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Headers (names lowercased).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// When it was fully received.
    pub at: Instant,
}

impl Recorded {
    /// A header by (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct FaultState {
    script: VecDeque<Fault>,
    fallback: Fault,
    info: String,
    requests: Vec<Recorded>,
    keep: bool,
    count: usize,
}

/// A real HTTP/1.1 server on 127.0.0.1:0 answering trace requests from a script (then with a
/// fallback answer), and `GET /info` with a fixed body. Keeps every request. Stops on drop.
pub struct FaultServer {
    addr: SocketAddr,
    state: Arc<Mutex<FaultState>>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

/// The `/info` body the fault server answers by default (v0.4 and v0.5 listed).
pub const FAULT_INFO: &str =
    r#"{"version": "fault", "endpoints": ["/v0.4/traces", "/v0.5/traces", "/v0.6/stats"]}"#;

impl FaultServer {
    /// Starts a server that plays `script` for trace requests, then answers 200.
    pub fn start(script: Vec<Fault>) -> FaultServer {
        Self::start_with(script, Fault::ok(), FAULT_INFO)
    }

    /// A sink for benchmarks: answers 200 at once to everything, counts requests, keeps none.
    pub fn sink() -> FaultServer {
        let s = Self::start_with(vec![], Fault::ok(), FAULT_INFO);
        s.state.lock().unwrap().keep = false;
        s
    }

    /// Number of requests received, `/info` included.
    pub fn request_count(&self) -> usize {
        self.state.lock().unwrap().count
    }

    /// Starts a server with a script, the answer after the script, and the `/info` body (an
    /// empty body makes `/info` answer 404).
    pub fn start_with(script: Vec<Fault>, fallback: Fault, info: &str) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(FaultState {
            script: script.into(),
            fallback,
            info: info.into(),
            requests: Vec::new(),
            keep: true,
            count: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let accept = thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (st, sp) = (st.clone(), sp.clone());
                        thread::spawn(move || serve(conn, st, sp));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultServer {
            addr,
            state,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request but `/info`, in arrival order.
    pub fn trace_requests(&self) -> Vec<Recorded> {
        let s = self.state.lock().unwrap();
        s.requests
            .iter()
            .filter(|r| r.path != "/info")
            .cloned()
            .collect()
    }

    /// Every request, `/info` included.
    pub fn all_requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Serves one connection (keep-alive) until the client closes, a fault closes it, or stop.
fn serve(mut conn: TcpStream, state: Arc<Mutex<FaultState>>, stop: Arc<AtomicBool>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    loop {
        let Some(req) = read_request(&mut conn, &mut buf) else {
            return;
        };
        let fault = {
            let mut s = state.lock().unwrap();
            let fault = if req.path == "/info" {
                if s.info.is_empty() {
                    Fault::status(404)
                } else {
                    Fault::Respond {
                        status: 200,
                        headers: vec![("Content-Type".into(), "application/json".into())],
                        body: s.info.clone(),
                        delay: Duration::ZERO,
                    }
                }
            } else {
                s.script.pop_front().unwrap_or_else(|| s.fallback.clone())
            };
            s.count += 1;
            if s.keep {
                s.requests.push(req);
            }
            fault
        };
        match fault {
            Fault::Respond {
                status,
                headers,
                body,
                delay,
            } => {
                let end = Instant::now() + delay;
                while Instant::now() < end {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    thread::sleep(
                        Duration::from_millis(5).min(end.saturating_duration_since(Instant::now())),
                    );
                }
                let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                head.push_str(&body);
                // One write: a head/body pair of writes meets Nagle + delayed ACK (40 ms stalls).
                if conn.write_all(head.as_bytes()).is_err() {
                    return;
                }
            }
            Fault::Reset => {
                reset(&conn);
                return;
            }
            Fault::Truncated => {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"rate_by");
                let _ = conn.flush();
                return;
            }
        }
    }
}

/// Closes with RST (SO_LINGER 0).
fn reset(conn: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Reads one HTTP/1.1 request (Content-Length bodies only).
fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let mut chunk = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let total = head_end + 4 + len;
    while buf.len() < total {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end + 4..total].to_vec();
    buf.drain(..total);
    Some(Recorded {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    })
}

// ---------------------------------------------------------------------------------------------
// Payloads written independently of the crate's codec (rmp only), for passthrough tests.
// ---------------------------------------------------------------------------------------------

/// A v0.4 payload of `traces` traces of `spans` spans each: realistic web/sql spans with a few
/// meta and metrics entries. Trace ids start at `first_trace_id`.
pub fn v04_payload(traces: usize, spans: usize, first_trace_id: u64) -> Vec<u8> {
    use rmp::encode::*;
    let mut b = Vec::new();
    write_array_len(&mut b, traces as u32).unwrap();
    for t in 0..traces {
        let trace_id = first_trace_id + t as u64;
        write_array_len(&mut b, spans as u32).unwrap();
        for s in 0..spans {
            let span_id = (trace_id << 16) + s as u64 + 1;
            let parent = if s == 0 { 0 } else { (trace_id << 16) + 1 };
            write_map_len(&mut b, 12).unwrap();
            for (k, v) in [
                ("service", "web-store"),
                (
                    "name",
                    if s == 0 {
                        "http.request"
                    } else {
                        "postgres.query"
                    },
                ),
                (
                    "resource",
                    if s == 0 {
                        "GET /users/?"
                    } else {
                        "SELECT * FROM users WHERE id = ?"
                    },
                ),
                ("type", if s == 0 { "web" } else { "sql" }),
            ] {
                write_str(&mut b, k).unwrap();
                write_str(&mut b, v).unwrap();
            }
            for (k, v) in [
                ("trace_id", trace_id),
                ("span_id", span_id),
                ("parent_id", parent),
            ] {
                write_str(&mut b, k).unwrap();
                write_uint(&mut b, v).unwrap();
            }
            write_str(&mut b, "start").unwrap();
            write_sint(&mut b, 1_700_000_000_000_000_000 + (s as i64) * 1000).unwrap();
            write_str(&mut b, "duration").unwrap();
            write_sint(&mut b, 1_500_000 - (s as i64) * 1000).unwrap();
            write_str(&mut b, "error").unwrap();
            write_sint(&mut b, 0).unwrap();
            write_str(&mut b, "meta").unwrap();
            write_map_len(&mut b, 4).unwrap();
            for (k, v) in [
                ("env", "prod"),
                ("version", "1.2.3"),
                ("http.method", "GET"),
                ("component", "test"),
            ] {
                write_str(&mut b, k).unwrap();
                write_str(&mut b, v).unwrap();
            }
            write_str(&mut b, "metrics").unwrap();
            let metrics: &[(&str, f64)] = if s == 0 {
                &[("_sampling_priority_v1", 1.0), ("_dd.top_level", 1.0)]
            } else {
                &[("db.row_count", 3.0), ("_dd.measured", 1.0)]
            };
            write_map_len(&mut b, metrics.len() as u32).unwrap();
            for (k, v) in metrics {
                write_str(&mut b, k).unwrap();
                write_f64(&mut b, *v).unwrap();
            }
        }
    }
    b
}

//! Helpers for the background exporter's tests (`tests/background_*.rs`): a test agent started on a
//! port chosen in advance (so that it can come up late, or be killed and restarted on the same
//! port), a counting HTTP sink, trace-id bookkeeping and a watchdog.
//!
//! Needs `mod support;` (tests/support) next to `mod background_support;`.

#![allow(dead_code)]

use crate::support::{self, free_port, http_request, temp_path, test_agent_binary, ENABLED_CHECKS};
use data_pipeline::decode::decode_owned;
use data_pipeline::exporter::Format;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Trace ids of the traces in a trace payload (`path` says the format); `None` if it does not
/// decode.
pub fn try_trace_ids(path: &str, body: &[u8]) -> Option<Vec<u64>> {
    let format = if path.contains("v0.5") {
        Format::V05
    } else {
        Format::V04
    };
    let traces = decode_owned(format, body).ok()?;
    Some(
        traces
            .iter()
            .filter_map(|t| t.first().map(|s| s.trace_id))
            .collect(),
    )
}

/// Like [`try_trace_ids`], panicking on a payload that does not decode.
pub fn trace_ids(path: &str, body: &[u8]) -> Vec<u64> {
    try_trace_ids(path, body).unwrap_or_else(|| panic!("undecodable payload on {path}"))
}

/// What arrived somewhere: every trace id, with how many times it arrived.
#[derive(Debug, Default, Clone)]
pub struct Arrivals {
    pub ids: HashMap<u64, u32>,
    /// Requests that decoded (their traces are in `ids`).
    pub requests: usize,
    /// Requests whose payload did not decode (the agent refused them).
    pub undecodable: usize,
}

impl Arrivals {
    pub fn add(&mut self, ids: impl IntoIterator<Item = u64>) {
        self.requests += 1;
        for id in ids {
            *self.ids.entry(id).or_default() += 1;
        }
    }

    /// Distinct traces.
    pub fn unique(&self) -> u64 {
        self.ids.len() as u64
    }

    /// Traces that arrived more than once.
    pub fn duplicates(&self) -> u64 {
        self.ids.values().filter(|n| **n > 1).count() as u64
    }

    pub fn merge(&mut self, other: &Arrivals) {
        self.requests += other.requests;
        self.undecodable += other.undecodable;
        for (id, n) in &other.ids {
            *self.ids.entry(*id).or_default() += n;
        }
    }

    pub fn id_set(&self) -> HashSet<u64> {
        self.ids.keys().copied().collect()
    }
}

/// A `ddapm-test-agent` on a port chosen by the caller. Killed on drop.
pub struct AgentProcess {
    child: Child,
    pub port: u16,
    log: std::path::PathBuf,
}

/// Picks a free port to start an agent on later.
pub fn reserve_port() -> u16 {
    free_port()
}

impl AgentProcess {
    /// Starts an agent on `port` and waits until `/info` answers (panics after 30 s).
    pub fn start(port: u16) -> AgentProcess {
        let bin = test_agent_binary();
        let log = temp_path("bg-agent", "log");
        let log_file = std::fs::File::create(&log).expect("agent log");
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--log-level", "WARNING"])
            .args(["--port", &port.to_string()])
            .args(["--otlp-http-port", &free_port().to_string()])
            .args(["--otlp-grpc-port", &free_port().to_string()])
            // trace_stall makes `settings({"trace_request_delay": ..})` effective (0 by default).
            .env("ENABLED_CHECKS", format!("{ENABLED_CHECKS},trace_stall"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().expect("log handle")))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut a = AgentProcess { child, port, log };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = a.child.try_wait() {
                panic!(
                    "test agent on port {port} exited ({status}): {}",
                    std::fs::read_to_string(&a.log).unwrap_or_default()
                );
            }
            if let Ok((200, _)) = http_request(a.addr(), "GET", "/info", &[], &[]) {
                return a;
            }
            assert!(Instant::now() < end, "test agent on port {port} not ready");
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts a session.
    pub fn start_session(&self, token: &str) {
        let (status, body) = http_request(
            self.addr(),
            "GET",
            &format!(
                "/test/session/start?test_session_token={}",
                support::enc(token)
            ),
            &[],
            &[],
        )
        .expect("session start");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    /// POST /test/settings with a JSON body.
    pub fn settings(&self, json: &str) {
        let (status, body) = http_request(
            self.addr(),
            "POST",
            "/test/settings",
            &[("Content-Type", "application/json")],
            json.as_bytes(),
        )
        .expect("settings");
        assert!(
            status < 300,
            "settings: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// Every trace the session received, decoded from its raw requests.
    pub fn arrivals(&self, token: &str) -> Arrivals {
        let (status, body) = http_request(
            self.addr(),
            "GET",
            &format!(
                "/test/session/requests?test_session_token={}",
                support::enc(token)
            ),
            &[],
            &[],
        )
        .expect("session requests");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).expect("requests JSON");
        let mut out = Arrivals::default();
        for r in v.as_array().expect("requests array") {
            let url = r["url"].as_str().unwrap_or_default();
            if !url.contains("/traces") {
                continue;
            }
            use base64::Engine as _;
            let body = base64::engine::general_purpose::STANDARD
                .decode(r["body"].as_str().unwrap_or_default())
                .expect("base64 body");
            match try_trace_ids(url, &body) {
                Some(ids) => out.add(ids),
                None => out.undecodable += 1,
            }
        }
        out
    }

    /// Kills the agent now (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An HTTP/1.1 sink on 127.0.0.1:0 answering 200 at once to everything, decoding every trace
/// payload to record which trace ids arrived. Bodies are not kept.
pub struct CountingSink {
    addr: SocketAddr,
    arrivals: Arc<Mutex<Arrivals>>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl CountingSink {
    pub fn start() -> CountingSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let arrivals = Arc::new(Mutex::new(Arrivals::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (arrivals.clone(), stop.clone());
        let accept = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (a, s) = (a.clone(), s.clone());
                        thread::spawn(move || serve(conn, a, s));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        CountingSink {
            addr,
            arrivals,
            stop,
            accept: Some(accept),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn arrivals(&self) -> Arrivals {
        self.arrivals.lock().unwrap().clone()
    }
}

impl Drop for CountingSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(mut conn: TcpStream, arrivals: Arc<Mutex<Arrivals>>, stop: Arc<AtomicBool>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        // Read one request: headers, then Content-Length bytes.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            match conn.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
                Err(_) => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let path = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let len: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let total = head_end + 4 + len;
        while buf.len() < total {
            match conn.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        let body = &buf[head_end + 4..total];
        let answer: &[u8] = if path.contains("/traces") {
            let ids = trace_ids(&path, body);
            arrivals.lock().unwrap().add(ids);
            br#"{"rate_by_service": {"service:,env:": 0.5}}"#
        } else if path == "/info" {
            br#"{"version": "sink", "endpoints": ["/v0.4/traces", "/v0.5/traces"]}"#
        } else {
            b"{}"
        };
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        )
        .into_bytes();
        out.extend_from_slice(answer);
        if conn.write_all(&out).is_err() {
            return;
        }
        buf.drain(..total);
    }
}

/// Aborts the whole test process if the returned guard is not dropped within `limit` (a hung
/// exporter must fail the suite, not stall it).
pub struct Watchdog {
    done: Arc<AtomicBool>,
}

pub fn watchdog(what: &'static str, limit: Duration) -> Watchdog {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    thread::spawn(move || {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if d.load(Ordering::Relaxed) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("watchdog: {what} still running after {limit:?}: aborting");
        std::process::abort();
    });
    Watchdog { done }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Waits for `pid` until `limit`; kills it and answers `None` if it is still running then.
pub fn wait_child(pid: libc::pid_t, limit: Duration) -> Option<i32> {
    let end = Instant::now() + limit;
    loop {
        let mut status = 0;
        // SAFETY: waiting on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return if libc::WIFEXITED(status) {
                Some(libc::WEXITSTATUS(status))
            } else {
                Some(1000 + libc::WTERMSIG(status))
            };
        }
        if r < 0 || Instant::now() >= end {
            // SAFETY: killing and reaping our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let mut s = 0;
            // SAFETY: as above.
            unsafe { libc::waitpid(pid, &mut s, 0) };
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reaps every `(label, pid)` child within `limit` each; what went wrong, per child (a non-zero
/// exit, a signal, or a hang: killed).
pub fn reap_children(children: Vec<(u64, libc::pid_t)>, limit: Duration) -> Vec<String> {
    let mut failures = Vec::new();
    for (k, pid) in children {
        match wait_child(pid, limit) {
            Some(0) => {}
            Some(code) => failures.push(format!("child {k}: exit {code}")),
            None => failures.push(format!("child {k}: hung (killed)")),
        }
    }
    failures
}

/// Ids `first..first + n` as a set.
pub fn id_range(first: u64, n: u64) -> HashSet<u64> {
    (first..first + n).collect()
}

/// Every trace in the trace requests a `support::TestAgent` session recorded.
pub fn arrivals_from(reqs: Vec<support::Request>) -> Arrivals {
    let mut out = Arrivals::default();
    for r in reqs.iter().filter(|r| r.path().contains("/traces")) {
        match try_trace_ids(r.path(), &r.body) {
            Some(ids) => out.add(ids),
            None => out.undecodable += 1,
        }
    }
    out
}

/// A v0.4 payload whose header says one trace but whose span is not a map: the agent answers
/// 400 to it (and to any batch it is merged into).
pub const MALFORMED_V04: &[u8] = &[0x91, 0x91, 0x05];

//! A minimal, fast HTTP/1.1 agent stand-in on 127.0.0.1:0 for the `send` cases.
//!
//! One thread per connection, keep-alive, `Content-Length` and chunked bodies. Every trace request
//! is answered `200 {"rate_by_service":{}}` as soon as its body has been read; `GET /info`
//! returns a small agent description listing `/v0.4/traces` and `/v0.5/traces`; anything else
//! gets `200 {}`. The sink counts what it receives (requests, body bytes, the
//! `X-Datadog-Trace-Count` header and the trace count read from the body's outer msgpack arrays,
//! and the client-side stats headers: computed stats, dropped P0 traces and spans) so the harness
//! can check that both sides deliver the same traces, and it can keep the last trace body for a
//! full decode outside the timed loop. `/info` allows client-side stats (see [`info_response`]).
//!
//! The test agent handles ~100k spans/s, far too slow to measure an exporter: this sink spends
//! a memcpy and a few header compares per request.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// What the sink has received so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Requests to `/v0.4/traces` or `/v0.5/traces`.
    pub trace_requests: u64,
    /// Sum of trace request body sizes (after de-chunking).
    pub body_bytes: u64,
    /// Sum of the `X-Datadog-Trace-Count` headers.
    pub header_traces: u64,
    /// Sum of the trace counts read from the bodies.
    pub body_traces: u64,
    /// Other requests (`/info`, stats, telemetry ...).
    pub other_requests: u64,
    /// Trace requests whose body could not be read as a v0.4/v0.5 payload.
    pub bad_bodies: u64,
    /// Trace requests with `Datadog-Client-Computed-Stats: true` (or `yes`).
    pub computed_stats_requests: u64,
    /// Sum of the `Datadog-Client-Dropped-P0-Traces` headers.
    pub dropped_p0_traces: u64,
    /// Sum of the `Datadog-Client-Dropped-P0-Spans` headers.
    pub dropped_p0_spans: u64,
    /// Requests to `/v0.6/stats`.
    pub stats_requests: u64,
}

impl Counts {
    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            trace_requests: self.trace_requests - earlier.trace_requests,
            body_bytes: self.body_bytes - earlier.body_bytes,
            header_traces: self.header_traces - earlier.header_traces,
            body_traces: self.body_traces - earlier.body_traces,
            other_requests: self.other_requests - earlier.other_requests,
            bad_bodies: self.bad_bodies - earlier.bad_bodies,
            computed_stats_requests: self.computed_stats_requests - earlier.computed_stats_requests,
            dropped_p0_traces: self.dropped_p0_traces - earlier.dropped_p0_traces,
            dropped_p0_spans: self.dropped_p0_spans - earlier.dropped_p0_spans,
            stats_requests: self.stats_requests - earlier.stats_requests,
        }
    }
}

#[derive(Default)]
struct Shared {
    trace_requests: AtomicU64,
    body_bytes: AtomicU64,
    header_traces: AtomicU64,
    body_traces: AtomicU64,
    other_requests: AtomicU64,
    bad_bodies: AtomicU64,
    computed_stats_requests: AtomicU64,
    dropped_p0_traces: AtomicU64,
    dropped_p0_spans: AtomicU64,
    stats_requests: AtomicU64,
    capture: AtomicBool,
    /// (path, body) of the last trace request, when `capture` is on.
    last: Mutex<Option<(String, Vec<u8>)>>,
    stop: AtomicBool,
    /// The `/info` answer ([`info_response`]).
    info: Vec<u8>,
}

/// A running sink. Dropping it stops accepting (open connections end with their peers).
pub struct Sink {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
}

const TRACES_RESPONSE: &[u8] = b"{\"rate_by_service\":{}}";
/// What a current agent answers, in short: client-side stats allowed (`client_drop_p0s`, the stats
/// endpoint), the four span kinds it computes stats for and its default peer tags, so that an
/// exporter with stats on (either side) computes them as it would against a real agent.
/// Exporters with stats off ignore these fields.
fn info_response() -> Vec<u8> {
    let peer_tags: Vec<String> = data_pipeline::stats::AGENT_DEFAULT_PEER_TAGS
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect();
    format!(
        r#"{{"version":"7.60.0","endpoints":["/v0.4/traces","/v0.5/traces","/v0.6/stats","/info"],"client_drop_p0s":true,"span_kinds_stats_computed":["server","consumer","client","producer"],"peer_tags":[{}],"feature_flags":[],"config":{{"statsd_port":0,"receiver_port":0}}}}"#,
        peer_tags.join(",")
    )
    .into_bytes()
}

impl Sink {
    /// Binds 127.0.0.1:0 and starts accepting.
    pub fn start() -> io::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            info: info_response(),
            ..Shared::default()
        });
        let s = shared.clone();
        thread::Builder::new()
            .name("sink-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let s = s.clone();
                    let _ = thread::Builder::new()
                        .name("sink-conn".into())
                        .spawn(move || {
                            let _ = serve(conn, &s);
                        });
                }
            })?;
        Ok(Sink { addr, shared })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the counters.
    pub fn counts(&self) -> Counts {
        let s = &self.shared;
        Counts {
            trace_requests: s.trace_requests.load(Ordering::SeqCst),
            body_bytes: s.body_bytes.load(Ordering::SeqCst),
            header_traces: s.header_traces.load(Ordering::SeqCst),
            body_traces: s.body_traces.load(Ordering::SeqCst),
            other_requests: s.other_requests.load(Ordering::SeqCst),
            bad_bodies: s.bad_bodies.load(Ordering::SeqCst),
            computed_stats_requests: s.computed_stats_requests.load(Ordering::SeqCst),
            dropped_p0_traces: s.dropped_p0_traces.load(Ordering::SeqCst),
            dropped_p0_spans: s.dropped_p0_spans.load(Ordering::SeqCst),
            stats_requests: s.stats_requests.load(Ordering::SeqCst),
        }
    }

    /// Keep (or stop keeping) the last trace body.
    pub fn set_capture(&self, on: bool) {
        self.shared.capture.store(on, Ordering::SeqCst);
        if !on {
            if let Ok(mut l) = self.shared.last.lock() {
                *l = None;
            }
        }
    }

    /// The last captured trace request: (path, body).
    pub fn take_last(&self) -> Option<(String, Vec<u8>)> {
        self.shared.last.lock().ok().and_then(|mut l| l.take())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, s: &Shared) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::with_capacity(256 * 1024, conn);
    let mut line = String::new();
    let mut body: Vec<u8> = Vec::new();
    loop {
        // Request line.
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let http10 = parts.next() == Some("HTTP/1.0");

        // Headers.
        let mut content_length: usize = 0;
        let mut chunked = false;
        let mut close = http10;
        let mut trace_count: u64 = 0;
        let mut expect_continue = false;
        let mut computed_stats = false;
        let (mut p0_traces, mut p0_spans) = (0u64, 0u64);
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let Some((name, value)) = l.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("x-datadog-trace-count") {
                trace_count = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("expect") {
                expect_continue = value.eq_ignore_ascii_case("100-continue");
            } else if name.eq_ignore_ascii_case("datadog-client-computed-stats") {
                computed_stats = value.eq_ignore_ascii_case("true") || value == "yes";
            } else if name.eq_ignore_ascii_case("datadog-client-dropped-p0-traces") {
                p0_traces = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("datadog-client-dropped-p0-spans") {
                p0_spans = value.parse().unwrap_or(0);
            }
        }
        if expect_continue {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }

        // Body.
        body.clear();
        if chunked {
            read_chunked(&mut reader, &mut body, &mut line)?;
        } else if content_length > 0 {
            body.resize(content_length, 0);
            reader.read_exact(&mut body)?;
        }

        let is_traces = path.starts_with("/v0.4/traces") || path.starts_with("/v0.5/traces");
        let response: &[u8] = if is_traces {
            s.trace_requests.fetch_add(1, Ordering::Relaxed);
            s.body_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            s.header_traces.fetch_add(trace_count, Ordering::Relaxed);
            if computed_stats {
                s.computed_stats_requests.fetch_add(1, Ordering::Relaxed);
            }
            s.dropped_p0_traces.fetch_add(p0_traces, Ordering::Relaxed);
            s.dropped_p0_spans.fetch_add(p0_spans, Ordering::Relaxed);
            match body_trace_count(path.starts_with("/v0.5"), &body) {
                Some(n) => s.body_traces.fetch_add(n, Ordering::Relaxed),
                None => s.bad_bodies.fetch_add(1, Ordering::Relaxed),
            };
            if s.capture.load(Ordering::Relaxed) {
                // Swap buffers rather than copy: no cost in the measured path.
                if let Ok(mut last) = s.last.lock() {
                    let mut kept = last.take().map(|(_, b)| b).unwrap_or_default();
                    std::mem::swap(&mut kept, &mut body);
                    *last = Some((path.clone(), kept));
                }
            }
            TRACES_RESPONSE
        } else {
            s.other_requests.fetch_add(1, Ordering::Relaxed);
            if path.starts_with("/v0.6/stats") {
                s.stats_requests.fetch_add(1, Ordering::Relaxed);
            }
            if method == "GET" && path.starts_with("/info") {
                &s.info
            } else {
                b"{}"
            }
        };
        let mut head = Vec::with_capacity(128);
        let _ = write!(
            head,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
            response.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        head.extend_from_slice(response);
        writer.write_all(&head)?;
        if close {
            return Ok(());
        }
    }
}

fn read_chunked<R: BufRead>(r: &mut R, body: &mut Vec<u8>, line: &mut String) -> io::Result<()> {
    loop {
        line.clear();
        r.read_line(line)?;
        let size_str = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                line.clear();
                if r.read_line(line)? == 0 || line.trim().is_empty() {
                    return Ok(());
                }
            }
        }
        let at = body.len();
        body.resize(at + size, 0);
        r.read_exact(&mut body[at..])?;
        line.clear();
        r.read_line(line)?; // CRLF after the chunk
    }
}

/// The number of traces in a v0.4 or v0.5 body, from its outer arrays only.
pub fn body_trace_count(v05: bool, body: &[u8]) -> Option<u64> {
    let mut rd = body;
    if !v05 {
        return rmp::decode::read_array_len(&mut rd).ok().map(u64::from);
    }
    if rmp::decode::read_array_len(&mut rd).ok()? != 2 {
        return None;
    }
    let strings = rmp::decode::read_array_len(&mut rd).ok()?;
    for _ in 0..strings {
        let len = rmp::decode::read_str_len(&mut rd).ok()? as usize;
        rd = rd.get(len..)?;
    }
    rmp::decode::read_array_len(&mut rd).ok().map(u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_keep_alive_requests() {
        let sink = Sink::start().unwrap();
        let mut c = TcpStream::connect(sink.url().trim_start_matches("http://")).unwrap();
        let body = [0x92u8, 0x90, 0x90]; // [[], []]: two empty traces
        for _ in 0..3 {
            let mut req = format!(
                "PUT /v0.4/traces HTTP/1.1\r\nHost: x\r\nX-Datadog-Trace-Count: 2\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            req.extend_from_slice(&body);
            c.write_all(&req).unwrap();
            let mut buf = [0u8; 512];
            let n = c.read(&mut buf).unwrap();
            let resp = String::from_utf8_lossy(&buf[..n]);
            assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
            assert!(resp.ends_with("{\"rate_by_service\":{}}"), "{resp}");
        }
        let n = sink.counts();
        assert_eq!(n.trace_requests, 3);
        assert_eq!(n.header_traces, 6);
        assert_eq!(n.body_traces, 6);
        assert_eq!(n.body_bytes, 9);
    }

    #[test]
    fn info_allows_client_stats() {
        let v: serde_json::Value = serde_json::from_slice(&info_response()).unwrap();
        assert_eq!(v["client_drop_p0s"], true);
        assert!(v["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "/v0.6/stats"));
        assert_eq!(
            v["peer_tags"].as_array().unwrap().len(),
            data_pipeline::stats::AGENT_DEFAULT_PEER_TAGS.len()
        );
    }

    #[test]
    fn v05_trace_count_skips_the_string_table() {
        // [["", "a"], [[], [], []]]
        let body = [0x92u8, 0x92, 0xa0, 0xa1, b'a', 0x93, 0x90, 0x90, 0x90];
        assert_eq!(body_trace_count(true, &body), Some(3));
        assert_eq!(body_trace_count(true, &body[..4]), None);
    }
}

//! The exporter's health as DogStatsD metrics (`datadog.tracer.exporter.*`), sent by the background
//! worker every [`STATSD_INTERVAL`] and when it stops, over UDP (`udp://host:port`) or a unix
//! datagram socket (`unix:///path`).
//!
//! One line a metric (`name:value|type|#tag:value,...`), so a few lines of code replace a client
//! crate. Counters go out as deltas since the previous emission (`|c`), gauges as values (`|g`).
//! Sends never block: the socket is non-blocking, and a datagram the kernel refuses is lost
//! and not retried, as is usual for DogStatsD.
//!
//! | metric | type | tags |
//! |---|---|---|
//! | `datadog.tracer.exporter.enqueued.payloads` / `.traces` / `.bytes` | count | |
//! | `datadog.tracer.exporter.sent.requests` / `.traces` / `.bytes` | count | |
//! | `datadog.tracer.exporter.dropped.traces` | count | `reason:<queue_full,...>` |
//! | `datadog.tracer.exporter.dropped.bytes` | count | |
//! | `datadog.tracer.exporter.retries` | count | |
//! | `datadog.tracer.exporter.requests.failed` | count | |
//! | `datadog.tracer.exporter.queue.payloads` / `.traces` / `.bytes` | gauge | |
//! | `datadog.tracer.exporter.breaker.open` | gauge (0/1) | |
//!
//! Every line also carries the exporter's `lang`, `tracer_version`, `service` and `env` tags when
//! they are set.

use super::health::{BreakerState, DropReason, Health};
use crate::{Error, Result};
use std::fmt::Write as _;
use std::net::UdpSocket;
#[cfg(unix)]
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// How often the worker emits.
pub const STATSD_INTERVAL: Duration = Duration::from_secs(10);
/// Metric name prefix.
pub const PREFIX: &str = "datadog.tracer.exporter.";
/// Largest datagram sent (lines are packed up to this size).
const MAX_DATAGRAM: usize = 1432;

/// Where metrics go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StatsdAddr {
    /// `udp://host:port`.
    Udp(String),
    /// `unix:///path` (datagram socket).
    Unix(PathBuf),
}

impl StatsdAddr {
    /// Parses `udp://host:port` or `unix:///absolute/path`.
    pub(crate) fn parse(url: &str) -> Result<StatsdAddr> {
        if let Some(rest) = url.strip_prefix("udp://") {
            let ok = rest
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(Error::invalid_argument(format!(
                    "statsd_url {url:?}: expected udp://host:port"
                )));
            }
            return Ok(StatsdAddr::Udp(rest.to_string()));
        }
        if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(Error::invalid_argument(format!(
                    "statsd_url {url:?}: expected unix:///absolute/path"
                )));
            }
            return Ok(StatsdAddr::Unix(PathBuf::from(path)));
        }
        Err(Error::invalid_argument(format!(
            "statsd_url {url:?}: expected udp://host:port or unix:///path"
        )))
    }
}

enum Socket {
    Udp(UdpSocket),
    #[cfg(unix)]
    Unix(UnixDatagram),
}

/// The emitter (owned by the worker thread).
pub(crate) struct Statsd {
    addr: StatsdAddr,
    socket: Option<Socket>,
    tags: String,
    last: Health,
}

impl Statsd {
    /// An emitter for `addr` with constant tags `k:v` (empty values skipped). The socket opens at
    /// the first emission.
    pub(crate) fn new(addr: StatsdAddr, tags: &[(&str, &str)]) -> Statsd {
        let mut t = String::new();
        for (k, v) in tags.iter().filter(|(_, v)| !v.is_empty()) {
            t.push_str(if t.is_empty() { "|#" } else { "," });
            // DogStatsD separators cannot appear inside a tag.
            let clean: String = v
                .chars()
                .map(|c| {
                    if matches!(c, '|' | ',' | '#' | '\n') {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            let _ = write!(t, "{k}:{clean}");
        }
        Statsd {
            addr,
            socket: None,
            tags: t,
            last: Health::default(),
        }
    }

    fn connect(&self) -> std::io::Result<Socket> {
        match &self.addr {
            StatsdAddr::Udp(hostport) => {
                let bind = if hostport.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(hostport.as_str())?;
                s.set_nonblocking(true)?;
                Ok(Socket::Udp(s))
            }
            #[cfg(unix)]
            StatsdAddr::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)?;
                s.set_nonblocking(true)?;
                Ok(Socket::Unix(s))
            }
            #[cfg(not(unix))]
            StatsdAddr::Unix(_) => Err(std::io::Error::other("unix sockets unsupported")),
        }
    }

    /// Emits the change since the previous call.
    pub(crate) fn emit(&mut self, now: &Health) {
        let lines = self.lines(now);
        self.last = *now;
        if self.socket.is_none() {
            match self.connect() {
                Ok(s) => self.socket = Some(s),
                Err(e) => {
                    log::debug!("statsd {:?}: {e}", self.addr);
                    return;
                }
            }
        }
        for datagram in pack(&lines) {
            let sent = match &self.socket {
                Some(Socket::Udp(s)) => s.send(datagram.as_bytes()),
                #[cfg(unix)]
                Some(Socket::Unix(s)) => s.send(datagram.as_bytes()),
                None => return,
            };
            if let Err(e) = sent {
                log::debug!("statsd {:?}: {e}", self.addr);
                // Reconnect next time (the listener may have restarted).
                self.socket = None;
                return;
            }
        }
    }

    /// The metric lines for `now` (counters as deltas since the last emission).
    pub(crate) fn lines(&self, now: &Health) -> Vec<String> {
        let last = &self.last;
        let mut out = Vec::new();
        let mut count = |name: &str, extra: &str, now: u64, before: u64| {
            let delta = now.saturating_sub(before);
            if delta > 0 {
                out.push(format!("{PREFIX}{name}:{delta}|c{}{extra}", self.tags));
            }
        };
        count(
            "enqueued.payloads",
            "",
            now.payloads_enqueued,
            last.payloads_enqueued,
        );
        count(
            "enqueued.traces",
            "",
            now.traces_enqueued,
            last.traces_enqueued,
        );
        count(
            "enqueued.bytes",
            "",
            now.bytes_enqueued,
            last.bytes_enqueued,
        );
        count("sent.requests", "", now.requests_sent, last.requests_sent);
        count("sent.traces", "", now.traces_sent, last.traces_sent);
        count("sent.bytes", "", now.bytes_sent, last.bytes_sent);
        for r in DropReason::ALL {
            let sep = if self.tags.is_empty() { "|#" } else { "," };
            let tag = format!("{sep}reason:{}", r.as_str());
            count(
                "dropped.traces",
                &tag,
                now.dropped.get(r),
                last.dropped.get(r),
            );
        }
        count("dropped.bytes", "", now.bytes_dropped, last.bytes_dropped);
        count("retries", "", now.retries, last.retries);
        count(
            "requests.failed",
            "",
            now.requests_failed,
            last.requests_failed,
        );
        let open = u64::from(now.breaker != BreakerState::Closed);
        for (name, v) in [
            ("queue.payloads", now.payloads_pending),
            ("queue.traces", now.traces_pending),
            ("queue.bytes", now.bytes_pending),
            ("breaker.open", open),
        ] {
            out.push(format!("{PREFIX}{name}:{v}|g{}", self.tags));
        }
        out
    }
}

/// Packs lines into datagrams of at most [`MAX_DATAGRAM`] bytes, newline-separated.
fn pack(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lines {
        match out.last_mut() {
            Some(d) if d.len() + 1 + l.len() <= MAX_DATAGRAM => {
                d.push('\n');
                d.push_str(l);
            }
            _ => out.push(l.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            StatsdAddr::parse("udp://127.0.0.1:8125").unwrap(),
            StatsdAddr::Udp("127.0.0.1:8125".into())
        );
        assert_eq!(
            StatsdAddr::parse("unix:///var/run/dsd.socket").unwrap(),
            StatsdAddr::Unix("/var/run/dsd.socket".into())
        );
        for bad in [
            "udp://host",
            "udp://:1",
            "udp://h:0",
            "unix://rel",
            "http://x:1",
            "",
        ] {
            assert!(StatsdAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_are_deltas_and_gauges_with_tags() {
        let mut s = Statsd::new(
            StatsdAddr::Udp("127.0.0.1:1".into()),
            &[("lang", "rust"), ("env", ""), ("service", "a|b")],
        );
        let mut h = Health {
            traces_enqueued: 10,
            traces_sent: 7,
            traces_pending: 3,
            breaker: BreakerState::Open,
            ..Health::default()
        };
        h.dropped.queue_full = 2;
        let lines = s.lines(&h);
        assert!(
            lines.contains(
                &"datadog.tracer.exporter.enqueued.traces:10|c|#lang:rust,service:a_b".to_string()
            ),
            "{lines:#?}"
        );
        assert!(lines.contains(
            &"datadog.tracer.exporter.dropped.traces:2|c|#lang:rust,service:a_b,reason:queue_full"
                .to_string()
        ));
        assert!(lines.contains(
            &"datadog.tracer.exporter.queue.traces:3|g|#lang:rust,service:a_b".to_string()
        ));
        assert!(lines.contains(
            &"datadog.tracer.exporter.breaker.open:1|g|#lang:rust,service:a_b".to_string()
        ));
        assert!(
            !lines.iter().any(|l| l.contains("retries")),
            "zero deltas are skipped"
        );
        s.last = h;
        h.traces_enqueued = 15;
        let lines = s.lines(&h);
        assert!(lines.contains(
            &"datadog.tracer.exporter.enqueued.traces:5|c|#lang:rust,service:a_b".to_string()
        ));
        assert!(!lines.iter().any(|l| l.contains("dropped")));
        let bare = Statsd::new(StatsdAddr::Udp("x:1".into()), &[]);
        let mut h = Health::default();
        h.dropped.shutdown = 1;
        assert!(bare
            .lines(&h)
            .contains(&"datadog.tracer.exporter.dropped.traces:1|c|#reason:shutdown".to_string()));
    }

    #[test]
    fn packs_within_datagram_size() {
        let lines: Vec<String> = (0..100).map(|i| format!("{PREFIX}m{i}:1|c")).collect();
        let d = pack(&lines);
        assert!(d.len() > 1);
        assert!(d.iter().all(|x| x.len() <= MAX_DATAGRAM));
        assert_eq!(d.iter().map(|x| x.lines().count()).sum::<usize>(), 100);
    }

    #[test]
    fn emits_over_udp() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let addr = rx.local_addr().unwrap();
        let mut s = Statsd::new(StatsdAddr::Udp(addr.to_string()), &[("lang", "rust")]);
        let h = Health {
            requests_sent: 4,
            ..Health::default()
        };
        s.emit(&h);
        let mut buf = [0u8; 2048];
        let n = rx.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(
            text.contains("datadog.tracer.exporter.sent.requests:4|c|#lang:rust"),
            "{text}"
        );
    }
}

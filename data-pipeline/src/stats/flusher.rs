//! [`StatsWorker`]: owns an exporter's concentrator and the background thread that flushes the
//! complete buckets every bucket period and POSTs them to `/v0.6/stats` (msgpack, the exporter's
//! Meta headers).
//!
//! - The thread wakes every period, flushes what is due and sends it (one retry on a network
//!   error, 408, 429 or 5xx, within the request timeout).
//! - [`StatsWorker::shutdown`] stops the thread, flushes every bucket (complete or not) and
//!   sends them, within the given time; [`StatsWorker::flush`] sends what is due (or
//!   everything) from the caller's thread.
//! - Dropping the worker only tells the thread to stop: it never blocks and never sends (call
//!   `shutdown` first to deliver the last buckets).
//!
//! The worker has its own HTTP transport (runtime and connection), so a slow stats request never
//! holds a trace send back and the other way round.

use super::concentrator::Concentrator;
use super::payload::{ClientStatsBucket, ClientStatsPayload};
use super::STATS_PATH;
use crate::transport::retry::{classify_status, Verdict};
use crate::transport::{AgentUrl, Transport};
use crate::{Error, ErrorKind, Result};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What every stats payload of an exporter says about its sender.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadMeta {
    /// `Hostname`.
    pub hostname: String,
    /// `Env`.
    pub env: String,
    /// `Version` (application version).
    pub version: String,
    /// `Lang`.
    pub lang: String,
    /// `TracerVersion`.
    pub tracer_version: String,
    /// `RuntimeID`.
    pub runtime_id: String,
    /// `Service`.
    pub service: String,
    /// `ContainerID`.
    pub container_id: String,
}

/// Delivers stats payloads to one agent.
#[derive(Debug)]
pub struct StatsSender {
    transport: Transport,
    headers: HeaderMap,
    meta: PayloadMeta,
    sequence: AtomicU64,
    request_timeout: Duration,
    sent_payloads: AtomicU64,
}

impl StatsSender {
    /// A sender to `url` with `headers` (content type and Meta headers) on every request.
    pub fn new(
        url: &AgentUrl,
        connect_timeout: Duration,
        request_timeout: Duration,
        headers: HeaderMap,
        meta: PayloadMeta,
    ) -> Result<StatsSender> {
        Ok(StatsSender {
            transport: Transport::new(url, connect_timeout)?,
            headers,
            meta,
            sequence: AtomicU64::new(0),
            request_timeout,
            sent_payloads: AtomicU64::new(0),
        })
    }

    /// The payload for `buckets`, with the next sequence number.
    pub fn payload(&self, buckets: Vec<ClientStatsBucket>) -> ClientStatsPayload {
        let m = &self.meta;
        ClientStatsPayload {
            hostname: m.hostname.clone(),
            env: m.env.clone(),
            version: m.version.clone(),
            stats: buckets,
            lang: m.lang.clone(),
            tracer_version: m.tracer_version.clone(),
            runtime_id: m.runtime_id.clone(),
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed) + 1,
            service: m.service.clone(),
            container_id: m.container_id.clone(),
        }
    }

    /// POSTs `buckets` (nothing when empty) before `deadline`.
    pub fn send(&self, buckets: Vec<ClientStatsBucket>, deadline: Instant) -> Result<()> {
        if buckets.is_empty() {
            return Ok(());
        }
        let body = Bytes::from(self.payload(buckets).encode());
        let mut last = None;
        for attempt in 0..2 {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(50).min(remaining / 2));
            }
            let timeout = remaining.min(self.request_timeout);
            let r = self.transport.block_on(self.transport.client().request(
                reqwest::Method::POST,
                STATS_PATH,
                self.headers.clone(),
                Some(body.clone()),
                timeout,
            ));
            match r {
                Ok(resp) => match classify_status(resp.status) {
                    Verdict::Delivered => {
                        self.sent_payloads.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Verdict::Retry => {
                        last = Some(Error::http(resp.status, stats_refused(resp.status)))
                    }
                    _ => return Err(Error::http(resp.status, stats_refused(resp.status))),
                },
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::new(ErrorKind::Timeout, "stats payload not sent: no time left")
        }))
    }

    /// Payloads delivered so far.
    pub fn sent_payloads(&self) -> u64 {
        self.sent_payloads.load(Ordering::Relaxed)
    }
}

fn stats_refused(status: u16) -> String {
    format!("agent answered {status} to {STATS_PATH}")
}

#[derive(Debug, Default)]
struct Control {
    stop: bool,
    exited: bool,
}

#[derive(Debug)]
struct Shared {
    concentrator: Mutex<Concentrator>,
    sender: StatsSender,
    control: Mutex<Control>,
    wake: Condvar,
    period: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks leaves consistent state: a panic elsewhere does not
    // poison the stats.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The concentrator plus the thread that flushes it (see the module docs). `Send + Sync`.
#[derive(Debug)]
pub struct StatsWorker {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl StatsWorker {
    /// Starts the flushing thread (named `dp-stats`), which flushes every `period`.
    pub fn start(
        concentrator: Concentrator,
        sender: StatsSender,
        period: Duration,
    ) -> Result<StatsWorker> {
        let shared = Arc::new(Shared {
            concentrator: Mutex::new(concentrator),
            sender,
            control: Mutex::new(Control::default()),
            wake: Condvar::new(),
            period: period.max(Duration::from_millis(1)),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dp-stats".into())
            .spawn(move || run(&s))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("cannot start the stats thread: {e}"),
                )
            })?;
        Ok(StatsWorker {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `f` on the concentrator (under its lock).
    pub fn with_concentrator<R>(&self, f: impl FnOnce(&mut Concentrator) -> R) -> R {
        f(&mut lock(&self.shared.concentrator))
    }

    /// Flushes from the caller's thread: the due buckets, or all of them when `force`, sent
    /// before `timeout` passes. Returns the number of buckets sent.
    pub fn flush(&self, force: bool, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        let buckets = lock(&self.shared.concentrator).flush(super::now_ns(), force);
        let n = buckets.len();
        self.shared.sender.send(buckets, deadline)?;
        Ok(n)
    }

    /// Stops the thread, then flushes and sends every bucket within `timeout`.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        {
            let mut c = lock(&self.shared.control);
            c.stop = true;
        }
        self.shared.wake.notify_all();
        let result = self.flush(true, timeout).map(|_| ());
        // Join the thread if it is gone (it exits at once unless a send is in flight).
        let c = lock(&self.shared.control);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (c, _) = self
            .shared
            .wake
            .wait_timeout_while(c, remaining, |c| !c.exited)
            .unwrap_or_else(|p| p.into_inner());
        if c.exited {
            drop(c);
            if let Some(t) = lock(&self.thread).take() {
                let _ = t.join();
            }
        }
        result
    }

    /// True once the thread was told to stop.
    pub fn is_stopped(&self) -> bool {
        lock(&self.shared.control).stop
    }

    /// Stats payloads delivered so far.
    pub fn sent_payloads(&self) -> u64 {
        self.shared.sender.sent_payloads()
    }
}

impl Drop for StatsWorker {
    fn drop(&mut self) {
        lock(&self.shared.control).stop = true;
        self.shared.wake.notify_all();
        // Not joined: the thread may be in a send and drop must not block.
    }
}

fn run(s: &Shared) {
    let mut next = Instant::now() + s.period;
    loop {
        {
            let c = lock(&s.control);
            let wait = next.saturating_duration_since(Instant::now());
            let (mut c, _) = s
                .wake
                .wait_timeout_while(c, wait, |c| !c.stop)
                .unwrap_or_else(|p| p.into_inner());
            if c.stop {
                c.exited = true;
                drop(c);
                s.wake.notify_all();
                return;
            }
        }
        if Instant::now() < next {
            continue;
        }
        next += s.period;
        if next < Instant::now() {
            next = Instant::now() + s.period;
        }
        let buckets = lock(&s.concentrator).flush(super::now_ns(), false);
        if buckets.is_empty() {
            continue;
        }
        let n = buckets.len();
        let deadline = Instant::now() + s.sender.request_timeout * 2;
        match s.sender.send(buckets, deadline) {
            Ok(()) => log::debug!("stats: sent {n} bucket(s)"),
            Err(e) => log::warn!("stats: {n} bucket(s) lost: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::StatsConfig;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn worker_is_send_sync_and_stops_without_an_agent() {
        assert_send_sync::<StatsWorker>();
        let url = AgentUrl::parse("http://127.0.0.1:1").unwrap();
        let sender = StatsSender::new(
            &url,
            Duration::from_millis(50),
            Duration::from_millis(50),
            HeaderMap::new(),
            PayloadMeta::default(),
        )
        .unwrap();
        let conc = Concentrator::new(&StatsConfig::default(), 0, &[], &[], "");
        let w = StatsWorker::start(conc, sender, Duration::from_millis(5)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        // Nothing to send: shutdown succeeds and the thread is joined.
        w.shutdown(Duration::from_millis(500)).unwrap();
        assert!(w.is_stopped());
        assert!(lock(&w.thread).is_none(), "thread joined");
        assert_eq!(w.sent_payloads(), 0);
    }

    #[test]
    fn sequence_increases() {
        let url = AgentUrl::parse("http://127.0.0.1:1").unwrap();
        let s = StatsSender::new(
            &url,
            Duration::from_millis(50),
            Duration::from_millis(50),
            HeaderMap::new(),
            PayloadMeta {
                env: "e".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.payload(vec![]).sequence, 1);
        let p = s.payload(vec![]);
        assert_eq!((p.sequence, p.env.as_str()), (2, "e"));
        let err = s
            .send(
                vec![ClientStatsBucket::default()],
                Instant::now() + Duration::from_millis(300),
            )
            .unwrap_err();
        assert!(matches!(
            err.kind(),
            ErrorKind::Network | ErrorKind::Timeout
        ));
    }
}

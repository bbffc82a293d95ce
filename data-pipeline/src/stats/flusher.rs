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
//!
//! **Fork-safe** (as the background exporter, see [`crate::exporter::fork`]): the concentrator,
//! the thread and the transport belong to the process that created them ([`ForkLocal`] cells). In
//! a forked child the next call builds new ones (and starts a new thread): the child never uses
//! the parent's dead thread, runtime or connections, never waits on a lock the parent held at the
//! fork (only `try_lock` touches the parent's copy), and never sends the parent's pending buckets
//! (they are the parent's to send; the child starts empty, with the parent's settings and agent
//! information). The parent is unaffected. After `shutdown`, a child starts shut down too.

use super::concentrator::Concentrator;
use super::payload::{ClientStatsBucket, ClientStatsPayload};
use super::STATS_PATH;
use crate::exporter::fork::ForkLocal;
use crate::in_flight::{InFlight, Sending};
use crate::transport::retry::{classify_status, Verdict};
use crate::transport::{AgentUrl, Transport};
use crate::{Error, ErrorKind, Result};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
pub struct StatsSender {
    /// Per process: a forked child builds its own at its first send.
    transport: ForkLocal<Transport>,
    url: AgentUrl,
    connect_timeout: Duration,
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
            transport: ForkLocal::new(Transport::new(url, connect_timeout)?),
            url: url.clone(),
            connect_timeout,
            headers,
            meta,
            sequence: AtomicU64::new(0),
            request_timeout,
            sent_payloads: AtomicU64::new(0),
        })
    }

    /// A sender with the same settings, fresh counters and no transport yet (built at its first
    /// send): what a forked child uses.
    fn renew(&self) -> StatsSender {
        StatsSender {
            transport: ForkLocal::empty(),
            url: self.url.clone(),
            connect_timeout: self.connect_timeout,
            headers: self.headers.clone(),
            meta: self.meta.clone(),
            sequence: AtomicU64::new(0),
            request_timeout: self.request_timeout,
            sent_payloads: AtomicU64::new(0),
        }
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
        let transport = self
            .transport
            .get(|_| Transport::new(&self.url, self.connect_timeout))?;
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
            let r = transport.block_on(transport.client().request(
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

impl std::fmt::Debug for StatsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsSender")
            .field("url", &self.url)
            .field("meta", &self.meta)
            .field("sequence", &self.sequence)
            .finish()
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
    /// The sends in progress: a flush returns only once they ended (see [`InFlight`]).
    in_flight: InFlight,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks leaves consistent state: a panic elsewhere does not
    // poison the stats.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The concentrator plus the thread that flushes it (see the module docs). `Send + Sync`.
pub struct StatsWorker {
    period: Duration,
    /// `shutdown` was called: a forked child starts shut down too.
    shut: AtomicBool,
    /// What a child builds its concentrator from when the parent's cannot be read (its lock was
    /// held at the fork): an empty concentrator with the settings (obfuscator, language, key
    /// cap) and agent information known at start. Never locked, never counts spans.
    template: Concentrator,
    /// The sender's settings, for a child's new sender (never sends itself).
    sender: StatsSender,
    /// This process's concentrator, sender and thread.
    local: ForkLocal<Local>,
}

/// The part of a [`StatsWorker`] that belongs to one process.
struct Local {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Local {
    /// Starts the flushing thread (named `dp-stats`) over `shared` (handed back on failure).
    fn start(shared: Arc<Shared>) -> std::result::Result<Local, (Error, Arc<Shared>)> {
        let s = shared.clone();
        match std::thread::Builder::new()
            .name("dp-stats".into())
            .spawn(move || run(&s))
        {
            Ok(thread) => Ok(Local {
                shared,
                thread: Mutex::new(Some(thread)),
            }),
            Err(e) => Err((
                Error::new(
                    ErrorKind::Internal,
                    format!("cannot start the stats thread: {e}"),
                ),
                shared,
            )),
        }
    }

    /// No thread (shut down, or it could not start): flushes happen on callers' threads only.
    fn without_thread(shared: Arc<Shared>) -> Local {
        {
            let mut c = lock(&shared.control);
            c.stop = true;
            c.exited = true;
        }
        Local {
            shared,
            thread: Mutex::new(None),
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        lock(&self.shared.control).stop = true;
        self.shared.wake.notify_all();
        // Not joined: the thread may be in a send and drop must not block.
    }
}

impl std::fmt::Debug for StatsWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsWorker")
            .field("period", &self.period)
            .field("shut", &self.shut)
            .field("template", &self.template)
            .finish()
    }
}

impl StatsWorker {
    /// Starts the flushing thread (named `dp-stats`), which flushes every `period`.
    pub fn start(
        concentrator: Concentrator,
        sender: StatsSender,
        period: Duration,
    ) -> Result<StatsWorker> {
        let period = period.max(Duration::from_millis(1));
        let template = concentrator.empty_like(super::now_ns());
        let sender_template = sender.renew();
        let local = Local::start(Arc::new(Shared {
            concentrator: Mutex::new(concentrator),
            sender,
            control: Mutex::new(Control::default()),
            wake: Condvar::new(),
            period,
            in_flight: InFlight::default(),
        }))
        .map_err(|(e, _)| e)?;
        Ok(StatsWorker {
            period,
            shut: AtomicBool::new(false),
            template,
            sender: sender_template,
            local: ForkLocal::new(local),
        })
    }

    /// This process's part: in a forked child, a new one on first use (see the module docs).
    fn local(&self) -> &Local {
        self.local.get_or_make(|stale| self.renew(stale))
    }

    /// Builds a child's part. The parent's (`stale`) is touched only through `try_lock`, and only
    /// read: the child's concentrator is an empty one with its settings and agent information
    /// (the parent's buckets are the parent's to send), or with those known at start when the
    /// lock was held at the fork.
    #[cold]
    fn renew(&self, stale: Option<&Local>) -> Local {
        let now = super::now_ns();
        let concentrator = match stale.map(|p| p.shared.concentrator.try_lock()) {
            Some(Ok(c)) => c.empty_like(now),
            Some(Err(std::sync::TryLockError::Poisoned(c))) => c.into_inner().empty_like(now),
            Some(Err(std::sync::TryLockError::WouldBlock)) => {
                log::warn!(
                    "stats: the concentrator was in use at the fork; the child starts with the settings known at start"
                );
                self.template.empty_like(now)
            }
            None => self.template.empty_like(now),
        };
        let shared = Arc::new(Shared {
            concentrator: Mutex::new(concentrator),
            sender: self.sender.renew(),
            control: Mutex::new(Control::default()),
            wake: Condvar::new(),
            period: self.period,
            in_flight: InFlight::default(),
        });
        if self.shut.load(Ordering::Acquire) {
            return Local::without_thread(shared);
        }
        Local::start(shared).unwrap_or_else(|(e, shared)| {
            log::warn!("stats: {e}; buckets are sent only by explicit flushes");
            Local::without_thread(shared)
        })
    }

    /// Runs `f` on the concentrator (under its lock).
    pub fn with_concentrator<R>(&self, f: impl FnOnce(&mut Concentrator) -> R) -> R {
        f(&mut lock(&self.local().shared.concentrator))
    }

    /// Flushes from the caller's thread: the due buckets, or all of them when `force`, sent
    /// before `timeout` passes; then waits (within `timeout` too) for the background thread's
    /// send, if one is in progress, so that everything counted before the call has been sent
    /// when it returns (`Timeout` if that send was still running; it goes on). Returns the
    /// number of buckets this call sent.
    pub fn flush(&self, force: bool, timeout: Duration) -> Result<usize> {
        flush_now(&self.local().shared, force, timeout)
    }

    /// Stops the thread, then flushes and sends every bucket within `timeout`.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        self.shut.store(true, Ordering::Release);
        let local = self.local();
        let shared = &local.shared;
        {
            let mut c = lock(&shared.control);
            c.stop = true;
        }
        shared.wake.notify_all();
        let result = flush_now(shared, true, timeout).map(|_| ());
        // Join the thread if it is gone (it exits at once unless a send is in flight).
        let c = lock(&shared.control);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (c, _) = shared
            .wake
            .wait_timeout_while(c, remaining, |c| !c.exited)
            .unwrap_or_else(|p| p.into_inner());
        if c.exited {
            drop(c);
            if let Some(t) = lock(&local.thread).take() {
                let _ = t.join();
            }
        }
        result
    }

    /// True once the thread was told to stop.
    pub fn is_stopped(&self) -> bool {
        lock(&self.local().shared.control).stop
    }

    /// Stats payloads delivered so far (by this process).
    pub fn sent_payloads(&self) -> u64 {
        self.local().shared.sender.sent_payloads()
    }
}

fn flush_now(shared: &Shared, force: bool, timeout: Duration) -> Result<usize> {
    let deadline = Instant::now() + timeout;
    let (buckets, sending) = take_buckets(shared, force);
    let n = buckets.len();
    let sent = shared.sender.send(buckets, deadline);
    drop(sending);
    sent?;
    if !shared.in_flight.wait_idle(Some(deadline)) {
        return Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "stats flush: sent {n} bucket(s), but the background flush was still sending at the deadline"
            ),
        ));
    }
    Ok(n)
}

/// Takes the due buckets (all when `force`) and registers their send in `in_flight`, both under
/// the concentrator's lock (see [`InFlight::start`]).
fn take_buckets(shared: &Shared, force: bool) -> (Vec<ClientStatsBucket>, Sending<'_>) {
    let mut concentrator = lock(&shared.concentrator);
    let buckets = concentrator.flush(super::now_ns(), force);
    (buckets, shared.in_flight.start())
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
        let (buckets, _sending) = take_buckets(s, false);
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

    /// A sender to a closed port (nothing is ever delivered).
    fn unreachable_sender() -> StatsSender {
        let url = AgentUrl::parse("http://127.0.0.1:1").unwrap();
        StatsSender::new(
            &url,
            Duration::from_millis(50),
            Duration::from_millis(50),
            HeaderMap::new(),
            PayloadMeta::default(),
        )
        .unwrap()
    }

    #[test]
    fn worker_is_send_sync_and_stops_without_an_agent() {
        assert_send_sync::<StatsWorker>();
        let sender = unreachable_sender();
        let conc = Concentrator::new(&StatsConfig::default(), 0, &[], &[], "");
        let w = StatsWorker::start(conc, sender, Duration::from_millis(5)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        // Nothing to send: shutdown succeeds and the thread is joined.
        w.shutdown(Duration::from_millis(500)).unwrap();
        assert!(w.is_stopped());
        assert!(lock(&w.local().thread).is_none(), "thread joined");
        assert_eq!(w.sent_payloads(), 0);
    }

    /// A worker whose concentrator has a language, a replace rule and a peer tag.
    fn configured_worker() -> StatsWorker {
        let sender = unreachable_sender();
        let obf = crate::obfuscate::ObfuscationConfig {
            replace_tags: crate::obfuscate::replace::rules_from_triples([(
                "resource.name",
                "[^/]+@[^/]+",
                "?",
            )])
            .unwrap(),
            ..Default::default()
        };
        let conc = Concentrator::new(&StatsConfig::default(), 0, &["db.name".into()], &[], "php")
            .with_obfuscator(crate::obfuscate::Obfuscator::new(obf).unwrap());
        StatsWorker::start(conc, sender, Duration::from_secs(60)).unwrap()
    }

    /// The (service, resource) of one span counted by `local`'s concentrator.
    fn counted_key(local: &Local) -> (String, String) {
        let mut chunk = vec![crate::span::Span {
            service: "".into(),
            name: "op".into(),
            resource: "GET /users/alice@example.com".into(),
            span_id: 1,
            start: super::super::now_ns(),
            duration: 10,
            ..Default::default()
        }];
        crate::stats::top_level::compute_top_level(&mut chunk);
        let mut c = lock(&local.shared.concentrator);
        assert_eq!(c.add_chunk(&chunk), 1);
        let out = c.flush(super::super::now_ns(), true);
        let g = &out[0].stats[0];
        (g.service.clone(), g.resource.clone())
    }

    #[test]
    fn a_child_built_while_the_concentrator_is_busy_keeps_the_settings() {
        let w = configured_worker();
        // Shut down first so the rebuilt part starts no thread.
        w.shutdown(Duration::from_millis(500)).unwrap();
        let parent = w.local();
        let held = lock(&parent.shared.concentrator);
        let child = w.renew(Some(parent));
        drop(held);
        assert_eq!(
            lock(&child.shared.concentrator).peer_tag_keys(),
            ["db.name"]
        );
        let want = (
            "unnamed-php-service".to_string(),
            "GET /users/?".to_string(),
        );
        assert_eq!(counted_key(&child), want);
    }

    #[test]
    fn a_child_takes_the_parents_settings_without_touching_its_buckets() {
        let w = configured_worker();
        w.shutdown(Duration::from_millis(500)).unwrap();
        let parent = w.local();
        let info = ["peer.service".to_string()];
        w.with_concentrator(|c| c.set_agent_info(&StatsConfig::default(), &info, &[]));
        w.with_concentrator(|c| {
            let mut chunk = vec![crate::span::Span {
                name: "op".into(),
                span_id: 1,
                start: super::super::now_ns(),
                duration: 10,
                ..Default::default()
            }];
            crate::stats::top_level::compute_top_level(&mut chunk);
            c.add_chunk(&chunk);
        });
        let child = w.renew(Some(parent));
        assert_eq!(lock(&parent.shared.concentrator).buckets().len(), 1);
        let c = lock(&child.shared.concentrator);
        assert!(c.buckets().is_empty());
        assert_eq!(c.peer_tag_keys(), info);
        drop(c);
        let want = (
            "unnamed-php-service".to_string(),
            "GET /users/?".to_string(),
        );
        assert_eq!(counted_key(&child), want);
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

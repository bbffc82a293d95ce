//! The public entry of Data Streams Monitoring: [`Processor`] (alias [`DataStreams`]).
//!
//! A tracer creates one per process. Checkpoints ([`Processor::set_checkpoint`], the Kafka
//! helpers) are cheap and can be called from any thread: the pathway hash comes from a cache,
//! the sketch bins are computed before a short lock on the aggregator. A background thread
//! flushes complete 10 s buckets to the agent's `/v0.1/pipeline_stats`; [`Processor::flush`]
//! sends everything now and [`Processor::shutdown`] (or drop) sends what is left and stops the
//! thread.
//!
//! An agent answering 404 does not support DSM (older than 7.34): the processor says so once in
//! the log, counts it ([`Stats::agent_too_old`]) and drops payloads for
//! [`Config::agent_too_old_backoff`] before trying again.

use super::aggregator::{Aggregator, FlushedBucket, KafkaOffset, OffsetKind, PreparedPoint, Slots};
use super::carrier;
use super::checkpoint::{self, Plan, StatsPoint};
use super::context::PathwayContext;
use super::hash::HashCache;
use super::payload::{self, PayloadMeta, PRODUCT_APM, PRODUCT_DSM};
use super::sender::{header_map, HttpSender, PayloadSender};
use crate::exporter::{Exporter, ExporterBuilder};
use crate::transport::AgentUrl;
use crate::{Error, ErrorKind, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The agent path the payloads are posted to.
pub const PIPELINE_STATS_PATH: &str = "/v0.1/pipeline_stats";

/// The header carrying a Datadog test agent session token.
pub const TEST_SESSION_TOKEN_HEADER: &str = "X-Datadog-Test-Session-Token";
/// The header carrying the container id.
pub const CONTAINER_ID_HEADER: &str = "Datadog-Container-ID";

/// Processor configuration. `Default` gives a 10 s bucket flushed every 10 s to
/// `http://localhost:8126`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The service (empty: `unnamed-<lang>-service`).
    pub service: String,
    /// The environment (may be empty; it is hashed as is).
    pub env: String,
    /// The application version (`Version`).
    pub version: String,
    /// The tracer language (`Lang`, `Datadog-Meta-Lang`).
    pub lang: String,
    /// The language version (`Datadog-Meta-Lang-Version`; empty: header not sent).
    pub lang_version: String,
    /// The tracer version (`TracerVersion`, `Datadog-Meta-Tracer-Version`).
    pub tracer_version: String,
    /// The agent: `http://host:port` or `unix:///path/to/socket` (parsed by
    /// [`AgentUrl::parse`]).
    pub agent_url: String,
    /// Bucket duration (at least 1 ms; 10 s by default, as everywhere in DSM).
    pub bucket_duration: Duration,
    /// How often the background thread flushes complete buckets; `None`: no background thread,
    /// only explicit [`Processor::flush`] / shutdown.
    pub flush_interval: Option<Duration>,
    /// Process tags, sent in `ProcessTags`.
    pub process_tags: Vec<String>,
    /// Whether process tags are also appended to the node hash input (off by default; all
    /// services of a pathway must agree).
    pub hash_process_tags: bool,
    /// `ProductMask` (bit 0 APM, bit 1 DSM).
    pub product_mask: u64,
    /// Time bound of one connection attempt to the agent.
    pub connect_timeout: Duration,
    /// Time bound of one HTTP request to the agent (connection, request and whole answer).
    pub request_timeout: Duration,
    /// How long payloads are dropped after the agent answered 404.
    pub agent_too_old_backoff: Duration,
    /// Groups (distinct aggregation keys) held at most across open buckets; more points are
    /// dropped and counted.
    pub max_groups: usize,
    /// Entries of the pathway hash cache.
    pub hash_cache_capacity: usize,
    /// Extra HTTP headers sent with every payload (e.g. `Datadog-Container-ID`, a test
    /// session token).
    pub extra_headers: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            service: String::new(),
            env: String::new(),
            version: String::new(),
            lang: "rust".to_owned(),
            lang_version: String::new(),
            tracer_version: env!("CARGO_PKG_VERSION").to_owned(),
            agent_url: "http://localhost:8126".to_owned(),
            bucket_duration: Duration::from_secs(10),
            flush_interval: Some(Duration::from_secs(10)),
            process_tags: Vec::new(),
            hash_process_tags: false,
            product_mask: PRODUCT_APM | PRODUCT_DSM,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            agent_too_old_backoff: Duration::from_secs(300),
            max_groups: 50_000,
            hash_cache_capacity: HashCache::DEFAULT_CAPACITY,
            extra_headers: Vec::new(),
        }
    }
}

/// The alias under which tracers look for the configuration of [`DataStreams`].
pub type DataStreamsConfig = Config;

impl Config {
    /// The configuration that sends where `exporter` sends, as the same application: agent
    /// address, service, env, application version, language (and its version), tracer version,
    /// container id, test session token and timeouts come from the exporter; the rest has its
    /// default (change it before [`Processor::new`]).
    pub fn from_exporter(exporter: &Exporter) -> Config {
        Self::from_settings(exporter.url(), exporter.settings())
    }

    /// [`Config::from_exporter`] for an exporter not built yet: the same settings taken from
    /// its builder. Fails like [`ExporterBuilder::build`] on an unusable agent address.
    pub fn from_exporter_builder(builder: &ExporterBuilder) -> Result<Config> {
        Ok(Self::from_settings(
            &builder.resolve_url()?,
            &builder.config,
        ))
    }

    fn from_settings(url: &AgentUrl, c: &crate::exporter::builder::ExporterConfig) -> Config {
        let m = &c.metadata;
        let mut extra_headers = Vec::new();
        if !m.container_id.is_empty() {
            extra_headers.push((CONTAINER_ID_HEADER.to_owned(), m.container_id.clone()));
        }
        if !c.test_session_token.is_empty() {
            extra_headers.push((
                TEST_SESSION_TOKEN_HEADER.to_owned(),
                c.test_session_token.clone(),
            ));
        }
        let default = Config::default();
        Config {
            service: m.service.clone(),
            env: m.env.clone(),
            version: m.app_version.clone(),
            lang: if m.language.is_empty() {
                default.lang.clone()
            } else {
                m.language.clone()
            },
            lang_version: m.language_version.clone(),
            tracer_version: if m.tracer_version.is_empty() {
                default.tracer_version.clone()
            } else {
                m.tracer_version.clone()
            },
            agent_url: url.to_string(),
            connect_timeout: c.connect_timeout,
            request_timeout: c.request_timeout,
            extra_headers,
            ..default
        }
    }
}

/// Counters since the processor was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Checkpoints recorded.
    pub checkpoints: u64,
    /// Checkpoints not aggregated (group limit reached, or after shutdown).
    pub dropped_points: u64,
    /// Payloads the agent accepted.
    pub payloads_sent: u64,
    /// Payloads that failed (network error, timeout, HTTP error other than 404).
    pub send_errors: u64,
    /// 404 answers: the agent does not support DSM.
    pub agent_too_old: u64,
    /// Payloads dropped without sending while backing off after a 404.
    pub payloads_dropped: u64,
    /// Buckets flushed.
    pub buckets_flushed: u64,
}

#[derive(Default)]
struct Counters {
    /// Checkpoints after shutdown (not aggregated); the others are counted by the aggregator.
    closed_points: AtomicU64,
    payloads_sent: AtomicU64,
    send_errors: AtomicU64,
    agent_too_old: AtomicU64,
    payloads_dropped: AtomicU64,
    buckets_flushed: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The current time in ns since the Unix epoch (0 if the clock is before it).
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data here (plain maps and counters).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Inner {
    service: String,
    env: String,
    meta: PayloadMeta,
    headers: reqwest::header::HeaderMap,
    cache: HashCache,
    agg: Mutex<Aggregator>,
    sender: Box<dyn PayloadSender>,
    counters: Counters,
    /// Set once shut down: no more aggregation.
    closed: AtomicBool,
    /// Wakes the background thread to stop.
    stop: Mutex<bool>,
    stop_cv: Condvar,
    backoff_until: Mutex<Option<Instant>>,
    backoff: Duration,
    warned_too_old: AtomicBool,
}

struct Worker {
    handle: JoinHandle<()>,
    done: mpsc::Receiver<()>,
}

/// The Data Streams Monitoring processor: checkpoints in, pipeline stats to the agent.
/// `Send + Sync`; share it (`Arc`) between threads.
pub struct Processor {
    inner: Arc<Inner>,
    worker: Mutex<Option<Worker>>,
}

/// The processor under its product name.
pub type DataStreams = Processor;

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Processor>();
};

impl Processor {
    /// A processor sending to `config.agent_url` through the shared HTTP transport; starts the
    /// background flush thread when `config.flush_interval` is set. Fails with
    /// `InvalidArgument` on an unusable agent URL, a zero timeout or a header that cannot be
    /// sent (`Unsupported` for `https://` without the `https` feature).
    pub fn new(config: Config) -> Result<Self> {
        let url = AgentUrl::parse(&config.agent_url)?;
        for (name, d) in [
            ("connect_timeout", config.connect_timeout),
            ("request_timeout", config.request_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::invalid_argument(format!("{name} must be > 0")));
            }
        }
        let sender = HttpSender::new(&url, config.connect_timeout, config.request_timeout)?;
        Self::with_sender(config, Box::new(sender))
    }

    /// A processor configured from `exporter`'s settings ([`Config::from_exporter`]) with
    /// `configure` applied on top (e.g. to turn the background thread off).
    pub fn from_exporter(exporter: &Exporter, configure: impl FnOnce(&mut Config)) -> Result<Self> {
        let mut config = Config::from_exporter(exporter);
        configure(&mut config);
        Self::new(config)
    }

    /// A processor sending through `sender` (tests, other transports).
    pub(crate) fn with_sender(config: Config, sender: Box<dyn PayloadSender>) -> Result<Self> {
        let service = if config.service.is_empty() {
            format!("unnamed-{}-service", config.lang)
        } else {
            config.service.clone()
        };
        let bucket_ns = u64::try_from(config.bucket_duration.as_nanos()).unwrap_or(u64::MAX);
        let mut headers: Vec<(String, String)> = [
            ("Content-Type", "application/msgpack"),
            ("Content-Encoding", "gzip"),
            ("Datadog-Meta-Lang", config.lang.as_str()),
            (
                "Datadog-Meta-Tracer-Version",
                config.tracer_version.as_str(),
            ),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        if !config.lang_version.is_empty() {
            headers.push((
                "Datadog-Meta-Lang-Version".to_owned(),
                config.lang_version.clone(),
            ));
        }
        headers.extend(config.extra_headers.iter().cloned());
        let headers = header_map(&headers)?;
        let hashed_process_tags = if config.hash_process_tags {
            config.process_tags.clone()
        } else {
            Vec::new()
        };
        let inner = Arc::new(Inner {
            env: config.env.clone(),
            meta: PayloadMeta {
                env: config.env.clone(),
                version: config.version.clone(),
                lang: config.lang.clone(),
                tracer_version: config.tracer_version.clone(),
                process_tags: config.process_tags.clone(),
                product_mask: config.product_mask,
            },
            service,
            headers,
            cache: HashCache::new(config.hash_cache_capacity, hashed_process_tags),
            agg: Mutex::new(Aggregator::new(bucket_ns, config.max_groups)),
            sender,
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
            backoff_until: Mutex::new(None),
            backoff: config.agent_too_old_backoff,
            warned_too_old: AtomicBool::new(false),
        });
        let worker = match config.flush_interval {
            Some(interval) => Some(spawn_worker(inner.clone(), interval)?),
            None => None,
        };
        Ok(Processor {
            inner,
            worker: Mutex::new(worker),
        })
    }

    /// The service checkpoints are attributed to.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// Records a checkpoint now: see [`Processor::set_checkpoint_with`].
    pub fn set_checkpoint(
        &self,
        ctx: Option<&PathwayContext>,
        edge_tags: &[&str],
        payload_size: i64,
    ) -> PathwayContext {
        self.set_checkpoint_with(ctx, edge_tags, payload_size, None, None)
    }

    /// Records a checkpoint at `now_ns` (ns since the epoch): see
    /// [`Processor::set_checkpoint_with`].
    pub fn set_checkpoint_at(
        &self,
        ctx: Option<&PathwayContext>,
        edge_tags: &[&str],
        payload_size: i64,
        now_ns: i64,
    ) -> PathwayContext {
        self.set_checkpoint_with(ctx, edge_tags, payload_size, Some(now_ns), None)
    }

    /// Records a checkpoint of a message of `payload_size` bytes described by `edge_tags`
    /// (`direction:in|out`, `type:`, `topic:` ...), following `ctx` (the message's context,
    /// `None` to start a pathway), at `now_ns` (`None`: now) for `service` (`None`: the
    /// configured one). Returns the context to carry on (inject it into what is sent next).
    pub fn set_checkpoint_with(
        &self,
        ctx: Option<&PathwayContext>,
        edge_tags: &[&str],
        payload_size: i64,
        now_ns: Option<i64>,
        service: Option<&str>,
    ) -> PathwayContext {
        // The hot path: no clone of the cached key, logarithms before the lock.
        let inner = &*self.inner;
        let service = service.unwrap_or(&inner.service);
        let plan = Plan::new(ctx, edge_tags, now_ns.unwrap_or_else(self::now_ns));
        if inner.closed.load(Ordering::Relaxed) {
            bump(&inner.counters.closed_points);
            return inner
                .cache
                .with(service, &inner.env, edge_tags, plan.parent, |c| {
                    plan.next(c.hash)
                });
        }
        let slots = Slots::new(
            plan.pathway_latency(),
            plan.edge_latency(),
            payload_size.max(0),
        );
        inner
            .cache
            .with(service, &inner.env, edge_tags, plan.parent, |cached| {
                lock(&inner.agg).add_ref(&cached.key, plan.now, slots);
                plan.next(cached.hash)
            })
    }

    fn compute(
        &self,
        ctx: Option<&PathwayContext>,
        edge_tags: &[&str],
        payload_size: i64,
        now: Option<i64>,
        service: Option<&str>,
    ) -> (PathwayContext, StatsPoint) {
        checkpoint::checkpoint(
            &self.inner.cache,
            service.unwrap_or(&self.inner.service),
            &self.inner.env,
            ctx,
            edge_tags,
            now.unwrap_or_else(now_ns),
            payload_size,
        )
    }

    fn record(&self, point: StatsPoint) {
        if self.inner.closed.load(Ordering::Relaxed) {
            bump(&self.inner.counters.closed_points);
            return;
        }
        let prepared = PreparedPoint::new(point);
        lock(&self.inner.agg).add(prepared);
    }

    /// Kafka produce: checkpoint `direction:out, topic:<topic>, type:kafka[,
    /// kafka_cluster_id:<id>]` and inject the new context into `headers` (replacing a previous
    /// one). The parent is `parent` when given (e.g. the context of the consume this produce
    /// follows), else the context already in `headers`, else a new pathway. `payload_size` is
    /// the message as built (key + value + headers); the bytes the injected header adds are
    /// counted too. Returns the new context.
    pub fn produce(
        &self,
        parent: Option<&PathwayContext>,
        topic: &str,
        cluster_id: &str,
        headers: &mut Vec<(String, Vec<u8>)>,
        payload_size: i64,
    ) -> PathwayContext {
        self.produce_at(parent, topic, cluster_id, headers, payload_size, None)
    }

    /// [`Processor::produce`] at `now_ns` (`None`: now).
    pub fn produce_at(
        &self,
        parent: Option<&PathwayContext>,
        topic: &str,
        cluster_id: &str,
        headers: &mut Vec<(String, Vec<u8>)>,
        payload_size: i64,
        now_ns: Option<i64>,
    ) -> PathwayContext {
        let from_headers;
        let parent = match parent {
            Some(p) => Some(p),
            None => {
                from_headers = carrier::extract_kafka(headers);
                from_headers.as_ref()
            }
        };
        let topic_tag = format!("topic:{topic}");
        let cluster_tag;
        let mut tags = vec!["direction:out", topic_tag.as_str(), "type:kafka"];
        if !cluster_id.is_empty() {
            cluster_tag = format!("kafka_cluster_id:{cluster_id}");
            tags.push(&cluster_tag);
        }
        let (next, mut point) = self.compute(parent, &tags, payload_size, now_ns, None);
        let delta = carrier::inject_kafka(&next, headers);
        point.payload_size = point.payload_size.saturating_add(delta).max(0);
        self.record(point);
        next
    }

    /// Kafka consume: extract the context from `headers` and checkpoint `direction:in,
    /// group:<group>, topic:<topic>, type:kafka[, kafka_cluster_id:<id>]` (`group:` left out
    /// when empty). Returns the context of the work that follows (the parent of what it
    /// produces).
    pub fn consume(
        &self,
        topic: &str,
        group: &str,
        cluster_id: &str,
        headers: &[(String, Vec<u8>)],
        payload_size: i64,
    ) -> PathwayContext {
        self.consume_at(topic, group, cluster_id, headers, payload_size, None)
    }

    /// [`Processor::consume`] at `now_ns` (`None`: now).
    pub fn consume_at(
        &self,
        topic: &str,
        group: &str,
        cluster_id: &str,
        headers: &[(String, Vec<u8>)],
        payload_size: i64,
        now_ns: Option<i64>,
    ) -> PathwayContext {
        let ctx = carrier::extract_kafka(headers);
        let group_tag = format!("group:{group}");
        let topic_tag = format!("topic:{topic}");
        let cluster_tag = format!("kafka_cluster_id:{cluster_id}");
        let mut tags = Vec::with_capacity(5);
        tags.push("direction:in");
        if !group.is_empty() {
            tags.push(&group_tag);
        }
        tags.push(&topic_tag);
        tags.push("type:kafka");
        if !cluster_id.is_empty() {
            tags.push(&cluster_tag);
        }
        self.set_checkpoint_with(ctx.as_ref(), &tags, payload_size, now_ns, None)
    }

    /// Records the offset of a message produced to `topic`/`partition` (backlog
    /// `type:kafka_produce`).
    pub fn track_kafka_produce_offset(&self, topic: &str, partition: i32, offset: i64) {
        self.track_kafka_offset(
            KafkaOffset {
                kind: OffsetKind::Produce,
                group: String::new(),
                topic: topic.to_owned(),
                partition,
                cluster_id: String::new(),
                offset,
            },
            None,
        );
    }

    /// Records the offset `group` committed on `topic`/`partition` (the next offset it will
    /// read; backlog `type:kafka_commit`).
    pub fn track_kafka_commit_offset(&self, group: &str, topic: &str, partition: i32, offset: i64) {
        self.track_kafka_offset(
            KafkaOffset {
                kind: OffsetKind::Commit,
                group: group.to_owned(),
                topic: topic.to_owned(),
                partition,
                cluster_id: String::new(),
                offset,
            },
            None,
        );
    }

    /// Records any Kafka offset (with a cluster id, at a given time; `None`: now). The largest
    /// offset per tag set and bucket is reported.
    pub fn track_kafka_offset(&self, offset: KafkaOffset, now_ns: Option<i64>) {
        if self.inner.closed.load(Ordering::Relaxed) {
            return;
        }
        let now = now_ns.unwrap_or_else(self::now_ns);
        lock(&self.inner.agg).add_offset(offset, now);
    }

    /// Sends every bucket now, complete or not. Errors if a payload could not be delivered
    /// (the data is dropped either way).
    pub fn flush(&self) -> Result<()> {
        self.inner.flush(None)
    }

    /// Sends the buckets complete at `now_ns` (what the background thread does every
    /// interval).
    pub fn flush_complete(&self, now_ns: i64) -> Result<()> {
        self.inner.flush(Some(now_ns))
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (points, dropped) = {
            let agg = lock(&self.inner.agg);
            (agg.points(), agg.dropped())
        };
        let closed = g(&c.closed_points);
        Stats {
            checkpoints: points + closed,
            dropped_points: dropped + closed,
            payloads_sent: g(&c.payloads_sent),
            send_errors: g(&c.send_errors),
            agent_too_old: g(&c.agent_too_old),
            payloads_dropped: g(&c.payloads_dropped),
            buckets_flushed: g(&c.buckets_flushed),
        }
    }

    /// Stops aggregating, sends what is left and stops the background thread, waiting at most
    /// `timeout`. On timeout the thread finishes its last send in the background and exits by
    /// itself (it is never left running). Calling it again does nothing.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let worker = lock(&self.worker).take();
        let Some(worker) = worker else {
            return self.inner.flush(None);
        };
        *lock(&self.inner.stop) = true;
        self.inner.stop_cv.notify_all();
        match worker.done.recv_timeout(timeout) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = worker.handle.join();
                Ok(())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::new(
                ErrorKind::Timeout,
                format!("data streams shutdown did not finish within {timeout:?}"),
            )),
        }
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        let _ = self.shutdown(Duration::from_secs(1));
    }
}

fn spawn_worker(inner: Arc<Inner>, interval: Duration) -> Result<Worker> {
    let (tx, rx) = mpsc::channel();
    let interval = interval.max(Duration::from_millis(10));
    let handle = std::thread::Builder::new()
        .name("dp-datastreams".to_owned())
        .spawn(move || {
            loop {
                let stopped = {
                    let guard = lock(&inner.stop);
                    let (guard, _) = inner
                        .stop_cv
                        .wait_timeout_while(guard, interval, |stop| !*stop)
                        .unwrap_or_else(|e| e.into_inner());
                    *guard
                };
                if stopped {
                    break;
                }
                let _ = inner.flush(Some(now_ns()));
            }
            let _ = inner.flush(None);
            let _ = tx.send(());
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot start the data streams thread: {e}"),
            )
        })?;
    Ok(Worker { handle, done: rx })
}

impl Inner {
    fn flush(&self, now_ns: Option<i64>) -> Result<()> {
        let buckets = lock(&self.agg).flush(now_ns);
        if buckets.is_empty() {
            return Ok(());
        }
        self.counters
            .buckets_flushed
            .fetch_add(buckets.len() as u64, Ordering::Relaxed);
        self.send(&buckets)
    }

    fn in_backoff(&self) -> bool {
        let mut until = lock(&self.backoff_until);
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn send(&self, buckets: &[FlushedBucket]) -> Result<()> {
        let payloads = payload::encode_payloads(&self.meta, &self.service, buckets)?;
        let mut result = Ok(());
        for (service, body) in payloads {
            if self.in_backoff() {
                bump(&self.counters.payloads_dropped);
                result = Err(Error::new(
                    ErrorKind::Unsupported,
                    "the agent does not support data streams (404); payload dropped",
                ));
                continue;
            }
            let body = payload::gzip(&body)?;
            match self.sender.send(body, &self.headers) {
                Ok(status) if (200..300).contains(&status) => {
                    bump(&self.counters.payloads_sent);
                }
                Ok(404) => {
                    bump(&self.counters.agent_too_old);
                    *lock(&self.backoff_until) = Some(Instant::now() + self.backoff);
                    if !self.warned_too_old.swap(true, Ordering::Relaxed) {
                        log::warn!(
                            "the Datadog agent answered 404 on {PIPELINE_STATS_PATH}: it does not support \
                             Data Streams Monitoring (upgrade to 7.34+); data streams payloads are dropped \
                             for {:?} at a time",
                            self.backoff
                        );
                    }
                    result = Err(Error::new(
                        ErrorKind::Unsupported,
                        "the agent does not support data streams (404)",
                    ));
                }
                Ok(status) => {
                    bump(&self.counters.send_errors);
                    log::warn!(
                        "data streams payload for {service} rejected by the agent: HTTP {status}"
                    );
                    result = Err(Error::http(
                        status,
                        format!("agent answered {status} on {PIPELINE_STATS_PATH}"),
                    ));
                }
                Err(e) => {
                    bump(&self.counters.send_errors);
                    log::warn!("data streams payload for {service} not sent: {e}");
                    result = Err(e);
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastreams::hash::{node_hash, pathway_hash};
    use rmpv::Value;
    use std::io::Read;

    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_700_000_000 * S;
    const NONE: [&str; 0] = [];

    type Sent = Vec<(Vec<u8>, Vec<(String, String)>)>;

    /// Records bodies and answers with scripted statuses (then 200).
    #[derive(Clone, Default)]
    struct Recorder {
        bodies: Arc<Mutex<Sent>>,
        statuses: Arc<Mutex<Vec<Result<u16>>>>,
    }

    impl PayloadSender for Recorder {
        fn send(&self, body: Vec<u8>, headers: &reqwest::header::HeaderMap) -> Result<u16> {
            let headers = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            lock(&self.bodies).push((body, headers));
            let mut s = lock(&self.statuses);
            if s.is_empty() {
                Ok(200)
            } else {
                s.remove(0)
            }
        }
    }

    impl Recorder {
        fn payloads(&self) -> Vec<Value> {
            lock(&self.bodies)
                .iter()
                .map(|(b, _)| {
                    let mut raw = Vec::new();
                    flate2::read::GzDecoder::new(b.as_slice())
                        .read_to_end(&mut raw)
                        .unwrap();
                    rmpv::decode::read_value(&mut raw.as_slice()).unwrap()
                })
                .collect()
        }
    }

    fn get<'a>(v: &'a Value, k: &str) -> &'a Value {
        v.as_map()
            .unwrap()
            .iter()
            .find(|(kk, _)| kk.as_str() == Some(k))
            .map(|(_, vv)| vv)
            .unwrap()
    }

    fn config() -> Config {
        Config {
            service: "svc-a".into(),
            env: "prod".into(),
            version: "1.0".into(),
            lang: "cpp".into(),
            lang_version: "17".into(),
            tracer_version: "9.9.9".into(),
            flush_interval: None,
            extra_headers: vec![("X-Extra".into(), "1".into())],
            ..Config::default()
        }
    }

    fn processor(rec: &Recorder, cfg: Config) -> Processor {
        Processor::with_sender(cfg, Box::new(rec.clone())).unwrap()
    }

    #[test]
    fn checkpoint_hashes_match_the_spec() {
        let rec = Recorder::default();
        let p = processor(&rec, config());
        let c = p.set_checkpoint_at(
            None,
            &["direction:out", "topic:orders", "type:kafka"],
            10,
            T0,
        );
        assert_eq!(c.hash(), 12637414960767859789);
        let parent = PathwayContext::from_millis(c.hash(), 0, 0);
        let c2 = p.set_checkpoint_at(Some(&parent), &["type:kafka", "direction:out"], 0, T0);
        assert_eq!(
            c2.hash(),
            pathway_hash(
                node_hash("svc-a", "prod", &["direction:out", "type:kafka"], &NONE),
                c.hash()
            )
        );
        assert_eq!(p.stats().checkpoints, 2);
    }

    #[test]
    fn kafka_produce_consume_and_flush() {
        let rec = Recorder::default();
        let producer = processor(&rec, config());
        let mut headers = vec![("k".to_owned(), b"v".to_vec())];
        let c1 = producer.produce_at(None, "orders", "", &mut headers, 100, Some(T0));
        assert_eq!(c1.hash(), 12637414960767859789, "same as the spec's vector");
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[1].0, "dd-pathway-ctx-base64");
        producer.track_kafka_offset(
            KafkaOffset {
                kind: OffsetKind::Produce,
                group: String::new(),
                topic: "orders".into(),
                partition: 0,
                cluster_id: String::new(),
                offset: 41,
            },
            Some(T0),
        );

        let consumer = processor(
            &rec,
            Config {
                service: "svc-b".into(),
                ..config()
            },
        );
        let c2 = consumer.consume_at("orders", "billing", "", &headers, 100, Some(T0 + 2 * S));
        assert_eq!(c2.hash(), 4959881512605734190);
        let mut out = Vec::new();
        let c3 = consumer.produce_at(Some(&c2), "invoices", "", &mut out, 5, Some(T0 + 3 * S));
        assert_eq!(c3.hash(), 4586166705438433406);

        producer.flush().unwrap();
        consumer.flush().unwrap();
        let payloads = rec.payloads();
        assert_eq!(payloads.len(), 2);
        let (_, hdrs) = &lock(&rec.bodies)[0];
        assert!(hdrs.contains(&("content-encoding".to_owned(), "gzip".to_owned())));
        assert!(hdrs.contains(&("content-type".to_owned(), "application/msgpack".to_owned())));
        assert!(hdrs.contains(&("datadog-meta-lang".to_owned(), "cpp".to_owned())));
        assert!(hdrs.contains(&("datadog-meta-lang-version".to_owned(), "17".to_owned())));
        assert!(hdrs.contains(&("datadog-meta-tracer-version".to_owned(), "9.9.9".to_owned())));
        assert!(hdrs.contains(&("x-extra".to_owned(), "1".to_owned())));

        let a = &payloads[0];
        assert_eq!(get(a, "Service").as_str(), Some("svc-a"));
        let bucket = &get(a, "Stats").as_array().unwrap()[0];
        let point = &get(bucket, "Stats").as_array().unwrap()[0];
        assert_eq!(get(point, "Hash").as_u64(), Some(c1.hash()));
        let Value::Binary(size) = get(point, "PayloadSize") else {
            panic!()
        };
        let size = crate::sketch::DDSketch::decode(size).unwrap();
        // 100 + "dd-pathway-ctx-base64" (21) + 28 chars of base64.
        let expected = 149.0;
        assert!(
            (size.quantile(0.5).unwrap() - expected).abs() <= expected * size.relative_accuracy()
        );
        assert_eq!(
            get(&get(bucket, "Backlogs").as_array().unwrap()[0], "Value").as_i64(),
            Some(41)
        );

        let b = &payloads[1];
        assert_eq!(get(b, "Service").as_str(), Some("svc-b"));
        let points = get(&get(b, "Stats").as_array().unwrap()[0], "Stats")
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(points.len(), 2);
        let consume = points
            .iter()
            .find(|p| get(p, "Hash").as_u64() == Some(c2.hash()))
            .unwrap();
        assert_eq!(get(consume, "ParentHash").as_u64(), Some(c1.hash()));
        let Value::Binary(edge) = get(consume, "EdgeLatency") else {
            panic!()
        };
        let edge = crate::sketch::DDSketch::decode(edge).unwrap();
        assert!((edge.quantile(1.0).unwrap() - 2.0).abs() <= 2.0 * edge.relative_accuracy());
        let tags: Vec<_> = get(consume, "EdgeTags")
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            tags,
            [
                "direction:in",
                "group:billing",
                "topic:orders",
                "type:kafka"
            ]
        );
    }

    #[test]
    fn produce_uses_headers_context_when_no_parent() {
        let rec = Recorder::default();
        let p = processor(&rec, config());
        let upstream = PathwayContext::from_millis(12345, T0 / 1_000_000, T0 / 1_000_000);
        let mut headers = Vec::new();
        carrier::inject_kafka(&upstream, &mut headers);
        let c = p.produce_at(None, "t", "cluster-1", &mut headers, 0, Some(T0 + S));
        assert_eq!(headers.len(), 1, "replaced");
        assert_eq!(carrier::extract_kafka(&headers).unwrap().hash(), c.hash());
        assert_eq!(
            c.hash(),
            pathway_hash(
                node_hash(
                    "svc-a",
                    "prod",
                    &[
                        "direction:out",
                        "kafka_cluster_id:cluster-1",
                        "topic:t",
                        "type:kafka"
                    ],
                    &NONE
                ),
                12345
            )
        );
        assert_eq!(c.pathway_start_ns(), T0);
    }

    #[test]
    fn flush_complete_keeps_open_buckets() {
        let rec = Recorder::default();
        let p = processor(&rec, config());
        p.set_checkpoint_at(None, &["type:x"], 0, T0 + S);
        p.set_checkpoint_at(None, &["type:x"], 0, T0 + 11 * S);
        p.flush_complete(T0 + 15 * S).unwrap();
        assert_eq!(rec.payloads().len(), 1);
        assert_eq!(p.stats().buckets_flushed, 1);
        p.flush_complete(T0 + 15 * S).unwrap();
        assert_eq!(rec.payloads().len(), 1, "nothing new complete");
        p.flush().unwrap();
        let all = rec.payloads();
        assert_eq!(all.len(), 2);
        assert_eq!(
            get(&get(&all[1], "Stats").as_array().unwrap()[0], "Start").as_u64(),
            Some((T0 + 10 * S) as u64)
        );
        p.flush().unwrap();
        assert_eq!(rec.payloads().len(), 2, "empty flush sends nothing");
    }

    #[test]
    fn agent_404_backs_off_and_is_counted() {
        let rec = Recorder::default();
        lock(&rec.statuses).push(Ok(404));
        let p = processor(&rec, config());
        p.set_checkpoint_at(None, &["type:x"], 0, T0);
        let e = p.flush().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        p.set_checkpoint_at(None, &["type:x"], 0, T0);
        assert!(p.flush().is_err());
        let s = p.stats();
        assert_eq!(s.agent_too_old, 1);
        assert_eq!(
            s.payloads_dropped, 1,
            "second payload dropped while backing off"
        );
        assert_eq!(lock(&rec.bodies).len(), 1, "not sent");
        assert!(p.inner.warned_too_old.load(Ordering::Relaxed));

        // After the back-off, sending resumes.
        let rec = Recorder::default();
        lock(&rec.statuses).push(Ok(404));
        let p = processor(
            &rec,
            Config {
                agent_too_old_backoff: Duration::ZERO,
                ..config()
            },
        );
        p.set_checkpoint_at(None, &["type:x"], 0, T0);
        assert!(p.flush().is_err());
        p.set_checkpoint_at(None, &["type:x"], 0, T0);
        p.flush().unwrap();
        assert_eq!(p.stats().payloads_sent, 1);
    }

    #[test]
    fn send_errors_are_counted() {
        let rec = Recorder::default();
        lock(&rec.statuses).push(Ok(500));
        lock(&rec.statuses).push(Err(Error::new(ErrorKind::Network, "refused")));
        let p = processor(&rec, config());
        p.set_checkpoint_at(None, &["type:x"], 0, T0);
        assert_eq!(p.flush().unwrap_err().http_status(), Some(500));
        p.set_checkpoint_at(None, &["type:x"], 0, T0);
        assert_eq!(p.flush().unwrap_err().kind(), ErrorKind::Network);
        assert_eq!(p.stats().send_errors, 2);
    }

    #[test]
    fn one_payload_per_service() {
        let rec = Recorder::default();
        let p = processor(&rec, config());
        p.set_checkpoint_with(None, &["type:x"], 0, Some(T0), Some("other"));
        p.set_checkpoint_at(None, &["type:x"], 0, T0);
        p.flush().unwrap();
        let services: Vec<_> = rec
            .payloads()
            .iter()
            .map(|v| get(v, "Service").as_str().unwrap().to_owned())
            .collect();
        assert_eq!(services, ["other", "svc-a"]);
    }

    #[test]
    fn background_thread_flushes_and_stops_cleanly() {
        let rec = Recorder::default();
        let p = processor(
            &rec,
            Config {
                bucket_duration: Duration::from_millis(20),
                flush_interval: Some(Duration::from_millis(20)),
                ..config()
            },
        );
        p.set_checkpoint(None, &["type:x"], 0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while lock(&rec.bodies).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            lock(&rec.bodies).len(),
            1,
            "periodic flush sent the complete bucket"
        );
        p.set_checkpoint_at(None, &["type:x"], 0, i64::MAX / 2); // far future: only a final flush sends it
        p.shutdown(Duration::from_secs(5)).unwrap();
        assert_eq!(
            lock(&rec.bodies).len(),
            2,
            "shutdown flushed the open bucket"
        );
        assert!(lock(&p.worker).is_none());
        // After shutdown: contexts still flow, nothing is aggregated.
        let c = p.set_checkpoint(None, &["type:x"], 0);
        assert_ne!(c.hash(), 0);
        assert_eq!(p.stats().dropped_points, 1);
        p.shutdown(Duration::from_secs(1)).unwrap();
        drop(p);
        assert_eq!(lock(&rec.bodies).len(), 2);
    }

    #[test]
    fn drop_flushes_without_thread() {
        let rec = Recorder::default();
        {
            let p = processor(&rec, config());
            p.set_checkpoint_at(None, &["type:x"], 0, T0);
        }
        assert_eq!(lock(&rec.bodies).len(), 1);
    }

    #[test]
    fn empty_service_gets_a_default() {
        let rec = Recorder::default();
        let p = processor(
            &rec,
            Config {
                service: String::new(),
                ..config()
            },
        );
        assert_eq!(p.service(), "unnamed-cpp-service");
    }

    #[test]
    fn config_from_the_exporter_settings() {
        let mut b = ExporterBuilder::new();
        b.url("unix:///tmp/dp-agent.sock")
            .service("web")
            .env("staging")
            .app_version("4.5.6")
            .language("python")
            .language_version("3.12")
            .tracer_version("2.0.0")
            .container_id("cid")
            .test_session_token("tok")
            .connect_timeout(Duration::from_millis(300))
            .request_timeout(Duration::from_millis(700));
        let exporter = b.build().unwrap();
        for c in [
            Config::from_exporter(&exporter),
            Config::from_exporter_builder(&b).unwrap(),
        ] {
            assert_eq!(c.agent_url, "unix:///tmp/dp-agent.sock");
            assert_eq!(
                (c.service.as_str(), c.env.as_str(), c.version.as_str()),
                ("web", "staging", "4.5.6")
            );
            assert_eq!(
                (
                    c.lang.as_str(),
                    c.lang_version.as_str(),
                    c.tracer_version.as_str()
                ),
                ("python", "3.12", "2.0.0")
            );
            assert_eq!(c.connect_timeout, Duration::from_millis(300));
            assert_eq!(c.request_timeout, Duration::from_millis(700));
            assert_eq!(
                c.extra_headers,
                [
                    (CONTAINER_ID_HEADER.to_owned(), "cid".to_owned()),
                    (TEST_SESSION_TOKEN_HEADER.to_owned(), "tok".to_owned())
                ]
            );
            assert_eq!(c.flush_interval, Config::default().flush_interval);
        }
        // Unset metadata keeps the processor's own defaults.
        let c = Config::from_exporter_builder(&ExporterBuilder::new()).unwrap();
        assert_eq!(c.lang, "rust");
        assert_eq!(c.agent_url, "http://localhost:8126");
        assert!(c.extra_headers.is_empty());
        assert_eq!(
            Config::from_exporter_builder(ExporterBuilder::new().url("nope"))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArgument
        );
        let p = Processor::from_exporter(&exporter, |c| c.flush_interval = None).unwrap();
        assert_eq!(p.service(), "web");
        assert!(lock(&p.worker).is_none());
    }

    #[test]
    fn new_validates_url_timeouts_and_headers() {
        let bad = |c: Config| Processor::new(c).err().map(|e| e.kind());
        assert_eq!(
            bad(Config {
                agent_url: "localhost:8126".into(),
                ..config()
            }),
            Some(ErrorKind::InvalidArgument)
        );
        assert_eq!(
            bad(Config {
                request_timeout: Duration::ZERO,
                ..config()
            }),
            Some(ErrorKind::InvalidArgument)
        );
        assert_eq!(
            bad(Config {
                extra_headers: vec![("X-Token".into(), "a\r\nb".into())],
                ..config()
            }),
            Some(ErrorKind::InvalidArgument)
        );
        assert_eq!(
            bad(Config {
                lang: "c pp\n".into(),
                ..config()
            }),
            Some(ErrorKind::InvalidArgument)
        );
    }
}

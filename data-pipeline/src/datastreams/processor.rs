//! The public entry of Data Streams Monitoring: [`Processor`] (alias [`DataStreams`]).
//!
//! A tracer creates one per process. Checkpoints ([`Processor::set_checkpoint`], the Kafka
//! helpers) are cheap and can be called from any thread: the pathway hash comes from a cache,
//! the sketch bins are computed before a short lock on the aggregator. A background thread
//! flushes complete 10 s buckets to the agent's `/v0.1/pipeline_stats`; [`Processor::flush`]
//! sends everything now and [`Processor::shutdown`] (or drop) sends what is left and stops the
//! thread, both within a time bound ([`Processor::flush_within`]); [`Processor::close_now`]
//! stops without sending or waiting (a C `_free` never blocks on I/O).
//!
//! Carriers: [`Processor::produce`] / [`Processor::consume`] work on Kafka header lists;
//! [`Processor::kafka_produce_checkpoint`] / [`Processor::kafka_consume_checkpoint`] do the
//! same checkpoints for callers that keep their headers themselves (bindings).
//!
//! Fork-safe: the aggregator, hash cache, sender (runtime, connections) and flush thread belong
//! to the process that created them (a [`ForkLocal`], as for the background exporter, see
//! [`crate::exporter::fork`]). In a forked child the next call builds new ones with the same
//! settings and starts a new flush thread: the child never uses the parent's dead thread or
//! client, never waits on a lock the parent held at the fork, and never sends the parent's pending
//! points (they are the parent's to send); its counters start at zero. The parent is unaffected.
//! A child of a shut down processor starts shut down.
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
use crate::exporter::fork::ForkLocal;
use crate::exporter::{Exporter, ExporterBuilder};
use crate::in_flight::InFlight;
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
    /// To build a forked child's cache and aggregator.
    cache_capacity: usize,
    hashed_process_tags: Vec<String>,
    bucket_ns: u64,
    max_groups: usize,
    agg: Mutex<Aggregator>,
    sender: Box<dyn PayloadSender>,
    counters: Counters,
    /// Set once shut down: no more aggregation.
    closed: AtomicBool,
    /// Tells the background thread to stop, and how.
    stop: Mutex<Stop>,
    stop_cv: Condvar,
    request_timeout: Duration,
    backoff_until: Mutex<Option<Instant>>,
    backoff: Duration,
    warned_too_old: AtomicBool,
    /// The sends in progress: a flush returns only once they ended (see [`InFlight`]).
    in_flight: InFlight,
}

/// What the background thread is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Keep flushing periodically.
    Run,
    /// Send what is left, by this deadline, then exit.
    Flush(Instant),
    /// Exit without sending anything more.
    Discard,
}

struct Worker {
    handle: JoinHandle<()>,
    /// The result of the final flush, when the thread ends.
    done: mpsc::Receiver<Result<()>>,
}

/// The Data Streams Monitoring processor: checkpoints in, pipeline stats to the agent.
/// `Send + Sync`; share it (`Arc`) between threads.
pub struct Processor {
    /// This process's state (see the module docs).
    local: ForkLocal<Local>,
    flush_interval: Option<Duration>,
}

/// The part of a [`Processor`] that belongs to one process.
struct Local {
    inner: Arc<Inner>,
    worker: Mutex<Option<Worker>>,
}

impl Drop for Local {
    /// Tells a thread still running (a loser of a race to build a child's state) to exit.
    fn drop(&mut self) {
        let mut stop = lock(&self.inner.stop);
        if *stop == Stop::Run {
            *stop = Stop::Discard;
        }
        drop(stop);
        self.inner.stop_cv.notify_all();
    }
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
        let sender = HttpSender::new(&url, config.connect_timeout)?;
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
            cache: HashCache::new(config.hash_cache_capacity, hashed_process_tags.clone()),
            cache_capacity: config.hash_cache_capacity,
            hashed_process_tags,
            bucket_ns,
            max_groups: config.max_groups,
            agg: Mutex::new(Aggregator::new(bucket_ns, config.max_groups)),
            sender,
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            stop: Mutex::new(Stop::Run),
            stop_cv: Condvar::new(),
            request_timeout: config.request_timeout,
            backoff_until: Mutex::new(None),
            backoff: config.agent_too_old_backoff,
            warned_too_old: AtomicBool::new(false),
            in_flight: InFlight::default(),
        });
        let worker = match config.flush_interval {
            Some(interval) => Some(spawn_worker(inner.clone(), interval)?),
            None => None,
        };
        Ok(Processor {
            local: ForkLocal::new(Local {
                inner,
                worker: Mutex::new(worker),
            }),
            flush_interval: config.flush_interval,
        })
    }

    /// This process's state: in a forked child, a new one on first use (see the module docs).
    #[inline]
    fn local(&self) -> &Local {
        self.local.get_or_make(|stale| self.renew(stale))
    }

    /// This process's state, `inner` part.
    #[inline]
    fn inner(&self) -> &Inner {
        &self.local().inner
    }

    /// Builds a forked child's state from the parent's (`stale`), reading only its settings.
    #[cold]
    fn renew(&self, stale: Option<&Local>) -> Local {
        // `local` is built with `ForkLocal::new` and a cell once filled is never emptied: in a
        // child there always is the parent's state.
        let Some(parent) = stale else {
            unreachable!("a processor's state cell is never empty")
        };
        let inner = Arc::new(parent.inner.renew());
        let worker = match self.flush_interval {
            Some(interval) if !inner.closed.load(Ordering::Relaxed) => {
                match spawn_worker(inner.clone(), interval) {
                    Ok(w) => Some(w),
                    Err(e) => {
                        log::warn!("data streams: {e}; points are sent only by explicit flushes");
                        None
                    }
                }
            }
            _ => None,
        };
        Local {
            inner,
            worker: Mutex::new(worker),
        }
    }

    /// The service checkpoints are attributed to.
    pub fn service(&self) -> &str {
        &self.inner().service
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
        let inner = self.inner();
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
        // The context header is replaced: what the old one weighed is not part of the message.
        let old_context: i64 = headers
            .iter()
            .filter(|(k, _)| k == carrier::PROPAGATION_KEY_BASE64)
            .map(|(k, v)| (k.len() + v.len()) as i64)
            .sum();
        let next = self.kafka_produce_checkpoint(
            parent,
            topic,
            cluster_id,
            payload_size.saturating_sub(old_context),
            now_ns,
        );
        carrier::inject_kafka(&next, headers);
        next
    }

    /// The checkpoint of a Kafka produce, for callers that keep the headers themselves (the C
    /// ABI, other bindings): edge tags `direction:out, topic:<topic>, type:kafka[,
    /// kafka_cluster_id:<id>]`, parent `parent` (`None`: a new pathway), at `now_ns` (`None`:
    /// now). `payload_size` is the message without the context header; the header the caller
    /// then injects ([`carrier::PROPAGATION_KEY_BASE64`] and the base64 text of the returned
    /// context) is added to it.
    pub fn kafka_produce_checkpoint(
        &self,
        parent: Option<&PathwayContext>,
        topic: &str,
        cluster_id: &str,
        payload_size: i64,
        now_ns: Option<i64>,
    ) -> PathwayContext {
        let topic_tag = format!("topic:{topic}");
        let cluster_tag;
        let mut tags = vec!["direction:out", topic_tag.as_str(), "type:kafka"];
        if !cluster_id.is_empty() {
            cluster_tag = format!("kafka_cluster_id:{cluster_id}");
            tags.push(&cluster_tag);
        }
        // One fork check for both steps.
        let inner = self.inner();
        let (next, mut point) = inner.compute(parent, &tags, payload_size, now_ns);
        let header =
            (carrier::PROPAGATION_KEY_BASE64.len() + next.encode_base64_buf().len()) as i64;
        point.payload_size = payload_size.saturating_add(header).max(0);
        inner.record(point);
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
        self.kafka_consume_checkpoint(ctx.as_ref(), topic, group, cluster_id, payload_size, now_ns)
    }

    /// The checkpoint of a Kafka consume of a message whose context `ctx` the caller extracted
    /// (`None`: none): edge tags `direction:in, group:<group>, topic:<topic>, type:kafka[,
    /// kafka_cluster_id:<id>]` (`group:` left out when empty), at `now_ns` (`None`: now).
    pub fn kafka_consume_checkpoint(
        &self,
        ctx: Option<&PathwayContext>,
        topic: &str,
        group: &str,
        cluster_id: &str,
        payload_size: i64,
        now_ns: Option<i64>,
    ) -> PathwayContext {
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
        self.set_checkpoint_with(ctx, &tags, payload_size, now_ns, None)
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
        let inner = self.inner();
        if inner.closed.load(Ordering::Relaxed) {
            return;
        }
        let now = now_ns.unwrap_or_else(self::now_ns);
        lock(&inner.agg).add_offset(offset, now);
    }

    /// Sends every bucket now, complete or not. Errors if a payload could not be delivered
    /// (the data is dropped either way). Then, when the background thread is still sending
    /// buckets it took, waits for that send: everything recorded before the call has been sent
    /// (or has failed) when it returns.
    pub fn flush(&self) -> Result<()> {
        self.inner().flush(None, None)
    }

    /// [`Processor::flush`] within `timeout`: each request is bounded by what is left of it
    /// (and by the request timeout); payloads left when it is over are dropped and the call
    /// fails with `Timeout`. It also fails with `Timeout` when the background thread's send is
    /// still in progress at the deadline (that send goes on; nothing is dropped).
    pub fn flush_within(&self, timeout: Duration) -> Result<()> {
        self.inner().flush(None, Some(deadline(timeout)))
    }

    /// Sends the buckets complete at `now_ns` (what the background thread does every
    /// interval).
    pub fn flush_complete(&self, now_ns: i64) -> Result<()> {
        self.inner().flush(Some(now_ns), None)
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let inner = self.inner();
        let c = &inner.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (points, dropped) = {
            let agg = lock(&inner.agg);
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

    /// Stops aggregating, sends what is left and stops the background thread, all within
    /// `timeout` (the last requests are cut short by it). Should the thread still be busy then,
    /// it exits by itself as soon as its current request ends (it is never left running).
    /// Calling it again does nothing.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        let local = self.local();
        let inner = &*local.inner;
        if inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let end = deadline(timeout);
        let worker = lock(&local.worker).take();
        let Some(worker) = worker else {
            return inner.flush(None, Some(end));
        };
        *lock(&inner.stop) = Stop::Flush(end);
        inner.stop_cv.notify_all();
        // A little slack past the deadline for the thread to notice it and exit.
        let wait = end.saturating_duration_since(Instant::now()) + Duration::from_millis(50);
        match worker.done.recv_timeout(wait) {
            Ok(result) => {
                let _ = worker.handle.join();
                result
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = worker.handle.join();
                Ok(())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::new(
                ErrorKind::Timeout,
                format!("data streams shutdown did not finish within {timeout:?}"),
            )),
        }
    }

    /// Stops at once without sending anything more and without waiting: checkpoints are no
    /// longer aggregated, what was not flushed is dropped, and the background thread exits by
    /// itself (after the request it may be in, bounded by the request timeout). Never blocks on
    /// I/O; what a C `_free` does. Calling [`Processor::shutdown`] first sends what is left.
    pub fn close_now(&self) {
        let local = self.local();
        let inner = &*local.inner;
        inner.closed.store(true, Ordering::SeqCst);
        *lock(&inner.stop) = Stop::Discard;
        inner.stop_cv.notify_all();
        // Dropping the handle detaches the thread.
        drop(lock(&local.worker).take());
        lock(&inner.agg).flush(None);
    }
}

/// `now + timeout`, saturating far in the future.
fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

impl Drop for Processor {
    /// [`Processor::shutdown`] with a 1 s bound (use `close_now` first to never wait). In a
    /// forked child that never used the processor: nothing to send, nothing built.
    fn drop(&mut self) {
        if self.local.current().is_none() {
            return;
        }
        let _ = self.shutdown(Duration::from_secs(1));
    }
}

fn spawn_worker(inner: Arc<Inner>, interval: Duration) -> Result<Worker> {
    let (tx, rx) = mpsc::channel();
    let interval = interval.max(Duration::from_millis(10));
    let handle = std::thread::Builder::new()
        .name("dp-datastreams".to_owned())
        .spawn(move || {
            let stop = loop {
                let stop = {
                    let guard = lock(&inner.stop);
                    let (guard, _) = inner
                        .stop_cv
                        .wait_timeout_while(guard, interval, |stop| *stop == Stop::Run)
                        .unwrap_or_else(|e| e.into_inner());
                    *guard
                };
                if stop != Stop::Run {
                    break stop;
                }
                let _ = inner.flush(Some(now_ns()), None);
            };
            let result = match stop {
                Stop::Flush(end) => inner.flush(None, Some(end)),
                _ => Ok(()),
            };
            let _ = tx.send(result);
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
    /// The checkpoint (next context and its point) of a message for the configured service,
    /// not recorded yet.
    fn compute(
        &self,
        ctx: Option<&PathwayContext>,
        edge_tags: &[&str],
        payload_size: i64,
        now: Option<i64>,
    ) -> (PathwayContext, StatsPoint) {
        checkpoint::checkpoint(
            &self.cache,
            &self.service,
            &self.env,
            ctx,
            edge_tags,
            now.unwrap_or_else(now_ns),
            payload_size,
        )
    }

    /// Adds `point` to the aggregator (once closed: only counts it in `closed_points`).
    fn record(&self, point: StatsPoint) {
        if self.closed.load(Ordering::Relaxed) {
            bump(&self.counters.closed_points);
            return;
        }
        let prepared = PreparedPoint::new(point);
        lock(&self.agg).add(prepared);
    }

    /// The state of a forked child: this one's settings, an empty cache and aggregator, zeroed
    /// counters, a new sender. Reads only what no lock guards.
    fn renew(&self) -> Inner {
        Inner {
            service: self.service.clone(),
            env: self.env.clone(),
            meta: self.meta.clone(),
            headers: self.headers.clone(),
            cache: HashCache::new(self.cache_capacity, self.hashed_process_tags.clone()),
            cache_capacity: self.cache_capacity,
            hashed_process_tags: self.hashed_process_tags.clone(),
            bucket_ns: self.bucket_ns,
            max_groups: self.max_groups,
            agg: Mutex::new(Aggregator::new(self.bucket_ns, self.max_groups)),
            sender: self.sender.renew(),
            counters: Counters::default(),
            closed: AtomicBool::new(self.closed.load(Ordering::SeqCst)),
            stop: Mutex::new(Stop::Run),
            stop_cv: Condvar::new(),
            request_timeout: self.request_timeout,
            backoff_until: Mutex::new(None),
            backoff: self.backoff,
            warned_too_old: AtomicBool::new(false),
            in_flight: InFlight::default(),
        }
    }

    /// Sends the buckets complete at `now_ns` (`None`: all), each request finishing by
    /// `deadline` if given, then waits (until `deadline`) for any other flush's send still in
    /// progress (see [`InFlight`]): `Timeout` if one was still running (it goes on).
    fn flush(&self, now_ns: Option<i64>, deadline: Option<Instant>) -> Result<()> {
        let (buckets, sending) = {
            let mut agg = lock(&self.agg);
            (agg.flush(now_ns), self.in_flight.start())
        };
        let sent = if buckets.is_empty() {
            Ok(())
        } else {
            self.counters
                .buckets_flushed
                .fetch_add(buckets.len() as u64, Ordering::Relaxed);
            self.send(&buckets, deadline)
        };
        drop(sending);
        sent?;
        if !self.in_flight.wait_idle(deadline) {
            return Err(Error::new(
                ErrorKind::Timeout,
                "data streams flush: another flush was still sending at the deadline",
            ));
        }
        Ok(())
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

    fn send(&self, buckets: &[FlushedBucket], deadline: Option<Instant>) -> Result<()> {
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
            let timeout = match deadline {
                None => self.request_timeout,
                Some(end) => end
                    .saturating_duration_since(Instant::now())
                    .min(self.request_timeout),
            };
            if timeout.is_zero() {
                bump(&self.counters.send_errors);
                result = Err(Error::new(
                    ErrorKind::Timeout,
                    format!("data streams payload for {service} not sent: out of time"),
                ));
                continue;
            }
            let body = payload::gzip(&body)?;
            match self.sender.send(body, &self.headers, timeout) {
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
        delay: Arc<Mutex<Option<Duration>>>,
    }

    impl PayloadSender for Recorder {
        fn renew(&self) -> Box<dyn PayloadSender> {
            Box::new(self.clone())
        }

        fn send(
            &self,
            body: Vec<u8>,
            headers: &reqwest::header::HeaderMap,
            timeout: Duration,
        ) -> Result<u16> {
            if let Some(delay) = *lock(&self.delay) {
                // A slow agent: answers after `delay`, or times out first.
                std::thread::sleep(delay.min(timeout));
                if delay > timeout {
                    return Err(Error::new(ErrorKind::Timeout, "slow agent"));
                }
            }
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
        assert!(p.inner().warned_too_old.load(Ordering::Relaxed));

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
        assert!(lock(&p.local().worker).is_none());
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
        assert!(lock(&p.local().worker).is_none());
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

    #[test]
    fn kafka_checkpoints_without_header_lists_match_the_list_helpers() {
        let rec = Recorder::default();
        let p = processor(&rec, config());
        let mut headers = vec![("k".to_owned(), b"v".to_vec())];
        let a = p.produce_at(None, "orders", "c1", &mut headers, 100, Some(T0));
        let b = p.kafka_produce_checkpoint(None, "orders", "c1", 100, Some(T0));
        assert_eq!(a, b);
        let c = p.consume_at("orders", "g", "c1", &headers, 7, Some(T0 + S));
        let d = p.kafka_consume_checkpoint(Some(&a), "orders", "g", "c1", 7, Some(T0 + S));
        assert_eq!(c, d);
        // Re-producing over headers that already carry a context: the old header is not
        // counted twice (100 in, the header replaced: still 100 + 49 in the sketch).
        let e = p.produce_at(Some(&c), "orders", "c1", &mut headers, 149, Some(T0 + S));
        assert_eq!(headers.len(), 2);
        p.flush().unwrap();
        let payloads = rec.payloads();
        let points = get(&get(&payloads[0], "Stats").as_array().unwrap()[0], "Stats")
            .as_array()
            .unwrap()
            .clone();
        let size_of = |h: u64| {
            let pt = points
                .iter()
                .find(|pt| get(pt, "Hash").as_u64() == Some(h))
                .unwrap();
            let Value::Binary(b) = get(pt, "PayloadSize") else {
                panic!()
            };
            crate::sketch::DDSketch::decode(b).unwrap()
        };
        let first = size_of(a.hash());
        assert_eq!(first.count(), 2.0);
        assert!((first.quantile(1.0).unwrap() - 149.0).abs() <= 149.0 * first.relative_accuracy());
        let again = size_of(e.hash());
        assert!((again.quantile(1.0).unwrap() - 149.0).abs() <= 149.0 * again.relative_accuracy());
    }

    /// A processor whose background-style flush (`flush_complete` on another thread) has taken
    /// the one complete bucket and is sending it, taking `delay`.
    fn busy_flush(
        delay: Duration,
    ) -> (
        Recorder,
        Arc<Processor>,
        std::thread::JoinHandle<Result<()>>,
    ) {
        let rec = Recorder::default();
        *lock(&rec.delay) = Some(delay);
        let p = Arc::new(processor(&rec, config()));
        p.set_checkpoint_at(None, &["type:x"], 0, T0 + S);
        let background = {
            let p = Arc::clone(&p);
            std::thread::spawn(move || p.flush_complete(T0 + 15 * S))
        };
        while p.stats().buckets_flushed == 0 {
            std::thread::yield_now();
        }
        (rec, p, background)
    }

    #[test]
    fn flush_waits_for_a_flush_that_is_still_sending() {
        let (rec, p, background) = busy_flush(Duration::from_millis(300));
        // The aggregator is empty now; the flush must still wait for the send in progress.
        p.flush().unwrap();
        assert_eq!(p.stats().payloads_sent, 1);
        background.join().unwrap().unwrap();
        assert_eq!(rec.payloads().len(), 1);
    }

    #[test]
    fn flush_within_gives_up_on_a_busy_flush_at_its_deadline() {
        let (_rec, p, background) = busy_flush(Duration::from_millis(500));
        let e = p.flush_within(Duration::from_millis(20)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        background.join().unwrap().unwrap();
        let s = p.stats();
        assert_eq!(
            s.payloads_sent, 1,
            "the busy flush's payload is not dropped"
        );
        assert_eq!(s.send_errors, 0);
    }

    #[test]
    fn flush_within_bounds_each_request() {
        let rec = Recorder::default();
        *lock(&rec.delay) = Some(Duration::from_secs(5));
        let p = processor(&rec, config());
        p.set_checkpoint_with(None, &["type:x"], 0, Some(T0), Some("a"));
        p.set_checkpoint_with(None, &["type:x"], 0, Some(T0), Some("b"));
        let t = Instant::now();
        let e = p.flush_within(Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(p.stats().send_errors, 2, "timed out, then out of time");
        assert_eq!(lock(&rec.bodies).len(), 0);
    }

    #[test]
    fn shutdown_is_bounded_and_close_now_never_waits() {
        for worker in [None, Some(Duration::from_secs(60))] {
            let rec = Recorder::default();
            *lock(&rec.delay) = Some(Duration::from_secs(5));
            let p = processor(
                &rec,
                Config {
                    flush_interval: worker,
                    ..config()
                },
            );
            p.set_checkpoint_at(None, &["type:x"], 0, T0);
            let t = Instant::now();
            assert!(p.shutdown(Duration::from_millis(200)).is_err());
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        }
        let rec = Recorder::default();
        let p = processor(
            &rec,
            Config {
                flush_interval: Some(Duration::from_secs(60)),
                ..config()
            },
        );
        p.set_checkpoint_at(None, &["type:x"], 0, T0);
        let t = Instant::now();
        p.close_now();
        drop(p);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert!(lock(&rec.bodies).is_empty(), "nothing sent after close_now");
    }
}

//! [`Exporter`]: sends trace payloads to one agent, synchronously, with retries within a time bound.

use super::background::Background;
use super::builder::ExporterConfig;
use super::chunk::{write_header_in_room, HEADER_ROOM};
use super::codec::{self, Format};
use super::fork::{ForkLocal, ForkLocalMutex};
use super::pipeline::Pipeline;
use super::response::{AgentResponse, RatesByService};
use super::TracerMetadata;
use crate::decode::stream::V04Stream;
use crate::encode::v04 as encode_v04;
use crate::info::{AgentInfo, InfoState, AGENT_STATE_HEADER, INFO_PATH};
use crate::sample::DroppedP0;
use crate::stats::flusher::PayloadMeta;
use crate::stats::stage::{add_stats_headers, StageSetup};
use crate::stats::{StatsStage, StatsState};
use crate::transport::retry::{classify_status, parse_retry_after, Jitter, RetryPolicy, Verdict};
use crate::transport::{AgentUrl, HttpResponse, Transport};
use crate::{Error, ErrorKind, Result, Trace, Traces};
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Cap of the first reservation for such a body (it grows past it if needed).
const MAX_GUESS: usize = 256 << 20;

/// Request header carrying the number of traces in the payload.
pub const TRACE_COUNT_HEADER: &str = "x-datadog-trace-count";
/// Request header carrying the test agent session token.
pub const TEST_SESSION_TOKEN_HEADER: &str = "x-datadog-test-session-token";

/// A payload ready to go: its bytes, format and trace count.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub(super) body: Bytes,
    pub(super) format: Format,
    pub(super) traces: usize,
    /// Set when client-side stats were computed for it: what P0 dropping removed (headers).
    pub(super) stats: Option<DroppedP0>,
}

/// What the background worker's private exporter shares with the exporter the application holds:
/// the processing stages (normalization and obfuscation with their counts, and client-side stats:
/// spans the worker processes land in the same counters and buckets) and the latest sampling
/// rates (answers to background requests update them too).
#[derive(Clone)]
pub(super) struct Shared {
    pipeline: Arc<Pipeline>,
    stats: Option<Arc<StatsStage>>,
    rates: Arc<ForkLocalMutex<Arc<RatesByService>>>,
}

/// Sends trace payloads to one agent: synchronously (`send*`), or through a background worker
/// thread that batches and retries (`enqueue*`, `flush`, `shutdown`, `health`; see
/// [`super::background`]).
///
/// Thread-safe (`Send + Sync`): `send` may be called from several threads at once; connections are
/// pooled and reused. Each exporter has its own runtime, connection pool and `/info` state.
///
/// Fork-safe: in a forked child, the first call builds a new runtime and client (and a new
/// background worker); the parent's are leaked, not dropped (see [`super::fork`]).
///
/// Sends are synchronous and bounded: one call never takes longer than the configured
/// `send_timeout`. Calling `send` from inside a tokio runtime is allowed (it then runs on a helper
/// thread).
///
/// Agent discovery: `/info` is fetched while the first send is in flight (not before it: the two
/// run concurrently and the send returns when both are done), and
/// again every 5 minutes or when the agent's `Datadog-Agent-State` changes. Its answer only matters
/// for the v0.5 output format: until it is known, v0.5 is sent optimistically, and if the agent
/// answers 404 and does not list `/v0.5/traces`, the same payload is re-sent as v0.4 (and v0.4 is
/// used from then on, logged once). So no send pays a separate sequential `/info` round-trip, and no
/// payload is lost to an agent without v0.5.
///
/// Client-side stats (builder option `stats`, off by default; see [`crate::stats::stage`]): in
/// `Auto` mode the first send waits once for `/info`; while the agent allows it, every send
/// computes stats, drops P0 chunks and says so in its headers, and a background thread flushes
/// the stats to `/v0.6/stats` every bucket period. Call [`Exporter::shutdown`] before dropping
/// the exporter to deliver the last buckets and the queued traces (drop never blocks). The
/// `rate_by_service` of the last answer (to a send or a background request) is kept:
/// [`Exporter::sampling_rate`].
pub struct Exporter {
    /// Runtime, client and `/info` state of the current process.
    conn: ForkLocal<Conn>,
    url: AgentUrl,
    pub(super) config: ExporterConfig,
    policy: RetryPolicy,
    headers: HeaderMap,
    /// Set once v0.5 turned out unavailable (logged once).
    v05_unavailable: AtomicBool,
    /// The stages and state shared with the background worker's exporter.
    shared: Shared,
    /// The background worker's side; `None` in the worker's own private exporter.
    pub(super) background: Option<Background>,
}

/// What does not survive `fork()`: the runtime with its HTTP client, and the `/info` state (its
/// lock may be held by a thread that does not exist in the child).
struct Conn {
    transport: Transport,
    info: Mutex<InfoState>,
}

impl Conn {
    fn new(url: &AgentUrl, connect_timeout: Duration) -> Result<Conn> {
        Ok(Conn {
            transport: Transport::new(url, connect_timeout)?,
            info: Mutex::default(),
        })
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("url", &self.url)
            .field("input_format", &self.config.input_format)
            .field("output_format", &self.config.output_format)
            .finish_non_exhaustive()
    }
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value).map_err(|_| {
        Error::invalid_argument(format!(
            "{name}: {value:?} cannot be sent as an HTTP header value (visible ASCII only)"
        ))
    })
}

/// Rebuilds `e` with `extra` appended to its message, keeping kind and HTTP status.
fn annotate(e: &Error, extra: &str) -> Error {
    let msg = format!("{} ({extra})", e.message());
    match e.http_status() {
        Some(status) => Error::http(status, msg),
        None => Error::new(e.kind(), msg),
    }
}

fn status_error(resp: &HttpResponse, path: &str) -> Error {
    let reason = reqwest::StatusCode::from_u16(resp.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let body = String::from_utf8_lossy(&resp.body[..resp.body.len().min(256)]);
    let body = body.trim();
    let mut msg = format!("agent answered {} {reason} to {path}", resp.status);
    if !body.is_empty() {
        msg.push_str(": ");
        msg.push_str(body);
    }
    Error::http(resp.status, msg)
}

/// Resets the `fetching` flag when an `/info` fetch ends or is abandoned.
struct FetchGuard<'a>(&'a Mutex<InfoState>);

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        lock(self.0).fetching = false;
    }
}

fn lock(m: &Mutex<InfoState>) -> MutexGuard<'_, InfoState> {
    // The state stays consistent even if a holder panicked: every update is a plain store.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Exporter {
    /// A builder (same as [`super::ExporterBuilder::new`]).
    pub fn builder() -> super::ExporterBuilder {
        super::ExporterBuilder::new()
    }

    pub(crate) fn new(url: AgentUrl, config: ExporterConfig) -> Result<Exporter> {
        let mut ex = Self::with_shared(url, config, None)?;
        let shared = ex.shared.clone();
        ex.background = Some(Background::new(ex.url.clone(), ex.config.clone(), shared)?);
        Ok(ex)
    }

    /// An exporter for synchronous sends only (the background worker's own), sharing `shared`.
    pub(super) fn for_worker(
        url: AgentUrl,
        config: ExporterConfig,
        shared: Shared,
    ) -> Result<Exporter> {
        Self::with_shared(url, config, Some(shared))
    }

    fn with_shared(
        url: AgentUrl,
        config: ExporterConfig,
        shared: Option<Shared>,
    ) -> Result<Exporter> {
        let m = &config.metadata;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/msgpack"),
        );
        for (name, value) in [
            ("datadog-meta-lang", &m.language),
            ("datadog-meta-lang-version", &m.language_version),
            ("datadog-meta-lang-interpreter", &m.language_interpreter),
            ("datadog-meta-tracer-version", &m.tracer_version),
            ("datadog-container-id", &m.container_id),
            (TEST_SESSION_TOKEN_HEADER, &config.test_session_token),
        ] {
            if !value.is_empty() {
                headers.insert(HeaderName::from_static(name), header_value(name, value)?);
            }
        }
        headers.insert(
            HeaderName::from_static("datadog-send-real-http-status"),
            HeaderValue::from_static("1"),
        );
        let conn = ForkLocal::new(Conn::new(&url, config.connect_timeout)?);
        let shared = match shared {
            Some(shared) => shared,
            None => {
                // A Datadog agent applies its own rules: the stages default to off
                // (bypasses_agent = false).
                let pipeline = Arc::new(Pipeline::new(&config.processing, &m.language, false)?);
                // Stats keys are obfuscated with the user's settings, whatever the span
                // options say (see pipeline.rs).
                let obfuscator = Some(pipeline.stats_obfuscator().clone());
                Shared {
                    pipeline,
                    stats: StatsStage::new(
                        &config.stats,
                        StageSetup {
                            url: &url,
                            connect_timeout: config.connect_timeout,
                            request_timeout: config.request_timeout,
                            headers: headers.clone(),
                            meta: PayloadMeta {
                                hostname: m.hostname.clone(),
                                env: m.env.clone(),
                                version: m.app_version.clone(),
                                lang: m.language.clone(),
                                tracer_version: m.tracer_version.clone(),
                                runtime_id: m.runtime_id.clone(),
                                service: m.service.clone(),
                                container_id: m.container_id.clone(),
                            },
                            obfuscator,
                        },
                    )?
                    .map(Arc::new),
                    rates: Arc::new(ForkLocalMutex::inherited(Arc::default())),
                }
            }
        };
        let policy = RetryPolicy {
            max_retries: config.max_retries,
            ..RetryPolicy::default()
        };
        Ok(Exporter {
            conn,
            url,
            config,
            policy,
            headers,
            v05_unavailable: AtomicBool::new(false),
            shared,
            background: None,
        })
    }

    /// The runtime, client and `/info` state of this process (built anew after a fork).
    fn conn(&self) -> Result<&Conn> {
        self.conn
            .get(|_| Conn::new(&self.url, self.config.connect_timeout))
    }

    /// Resets the runtime and client for a forked child now rather than at the next send.
    pub(super) fn reset_conn_after_fork(&self) {
        let _ = self
            .conn
            .get_strict(|_| Conn::new(&self.url, self.config.connect_timeout));
    }

    /// Runs `fut` on this process's runtime.
    pub(super) fn block_on<F>(&self, fut: F) -> Result<F::Output>
    where
        F: Future + Send,
        F::Output: Send,
    {
        Ok(self.conn()?.transport.block_on(fut))
    }

    /// The agent address.
    pub fn url(&self) -> &AgentUrl {
        &self.url
    }

    /// The tracer and application metadata.
    pub fn metadata(&self) -> &TracerMetadata {
        &self.config.metadata
    }

    /// Every setting the builder collected (for components started from the exporter's
    /// settings, such as data streams).
    pub(crate) fn settings(&self) -> &ExporterConfig {
        &self.config
    }

    /// The format `send` expects.
    pub fn input_format(&self) -> Format {
        self.config.input_format
    }

    /// The configured output format (v0.5 may still fall back to v0.4, see the type's docs).
    pub fn output_format(&self) -> Format {
        self.config.output_format
    }

    /// The last `/info` answer, if one was received.
    pub fn agent_info(&self) -> Option<Arc<AgentInfo>> {
        let conn = self.conn.current()?;
        let info = lock(&conn.info).info.clone();
        info
    }

    /// Fetches `/info` now (blocking, bounded by the request timeout) and keeps the answer.
    pub fn refresh_info(&self) -> Result<Arc<AgentInfo>> {
        let timeout = self.config.request_timeout;
        self.conn()?
            .transport
            .block_on(async { self.fetch_info(Instant::now() + timeout).await })
    }

    /// Sends a payload in the input format. On the fast path (input format = output format, no
    /// processing configured) the bytes go out as they are, after counting the traces; otherwise
    /// they are decoded, processed and re-encoded. The payload is copied once; use
    /// [`Exporter::send_bytes`] to hand over an owned buffer without a copy.
    pub fn send(&self, payload: &[u8]) -> Result<AgentResponse> {
        self.send_payload(payload, None)
    }

    /// [`Exporter::send`] without copying the payload on the fast path.
    pub fn send_bytes(&self, payload: Bytes) -> Result<AgentResponse> {
        self.send_payload(&payload, Some(&payload))
    }

    /// Encodes `traces` in the output format and sends them.
    pub fn send_traces(&self, traces: &[Trace<'_>]) -> Result<AgentResponse> {
        let deadline = Instant::now() + self.config.send_timeout;
        self.await_info_for_stats(deadline);
        if self.has_processing() {
            // Processed once, before the format is chosen (a v0.5 -> v0.4 fallback re-encodes,
            // it must not count stats twice).
            let mut owned: Traces<'_> = traces.to_vec();
            let stats = self.process(&mut owned);
            return self.run(deadline, |format| {
                Ok(Prepared {
                    body: Bytes::from(codec::encode_to_vec(format, &owned)?),
                    format,
                    traces: owned.len(),
                    stats,
                })
            });
        }
        self.run(deadline, |format| {
            Ok(Prepared {
                body: Bytes::from(codec::encode_to_vec(format, traces)?),
                format,
                traces: traces.len(),
                stats: None,
            })
        })
    }

    fn send_payload(&self, payload: &[u8], owned: Option<&Bytes>) -> Result<AgentResponse> {
        let deadline = Instant::now() + self.config.send_timeout;
        let input = self.config.input_format;
        self.await_info_for_stats(deadline);
        if self.has_processing() {
            if input == Format::V04
                && self.config.output_format == Format::V04
                && !self.stats_computing()
            {
                // Normalization/obfuscation only, v0.4 to v0.4: chunk by chunk (see
                // `process_v04`).
                let (body, traces) = self.process_v04(payload)?;
                return self.run(deadline, |format| {
                    debug_assert_eq!(format, Format::V04);
                    Ok(Prepared {
                        body: body.clone(),
                        format: Format::V04,
                        traces,
                        stats: None,
                    })
                });
            }
            // Decoded and processed once, whatever format is sent (see `send_traces`).
            let mut traces = codec::decode(input, payload)?;
            let stats = self.process(&mut traces);
            return self.run(deadline, |format| {
                Ok(Prepared {
                    body: Bytes::from(codec::encode_to_vec(format, &traces)?),
                    format,
                    traces: traces.len(),
                    stats,
                })
            });
        }
        self.run(deadline, |format| {
            if format == input && !self.has_processing() {
                // No decode on this path, but malformed input is still refused here (with an
                // offset) rather than forwarded: a structural walk, no allocation.
                let traces = codec::validate(input, payload)?;
                let body = match owned {
                    Some(b) => b.clone(),
                    None => Bytes::copy_from_slice(payload),
                };
                return Ok(Prepared {
                    body,
                    format,
                    traces,
                    stats: None,
                });
            }
            // Transcoding only (no stage wants the spans).
            let traces = codec::decode(input, payload)?;
            let body = codec::encode_to_vec(format, &traces)?;
            Ok(Prepared {
                body: Bytes::from(body),
                format,
                traces: traces.len(),
                stats: None,
            })
        })
    }

    /// What normalization fixed and dropped since the exporter was built, per reason (the
    /// agent's `reason:` names; zero everywhere while `normalize` is off). Includes the spans the
    /// background worker processed. Per process: a forked child counts from zero, as its
    /// [`super::Health`] does.
    pub fn normalize_counts(&self) -> crate::normalize::NormalizeCounts {
        self.shared.pipeline.normalize_counts()
    }

    /// True while client-side stats are computed on sends.
    fn stats_computing(&self) -> bool {
        self.shared
            .stats
            .as_deref()
            .is_some_and(StatsStage::computing)
    }

    /// The processing path without stats, v0.4 to v0.4: decode one chunk, normalize and
    /// obfuscate it, encode it, then the next chunk. The same body as decoding the whole
    /// payload, [`Exporter::process`], then encoding (the stages work chunk by chunk in payload
    /// order either way), without holding every decoded span of the payload: a chunk's spans
    /// are still in cache when they are encoded, and the allocator hands the freed span vectors
    /// of one chunk to the next. On the bench's `send_processed_v04.realistic`: 0.93x -> 1.39x
    /// libdatadog's plain send (wall), 143.6M -> 137.8M instructions per payload, peak RSS
    /// 41 -> 22 MiB (see bench/README.md). Counts are merged only when the whole payload
    /// decoded, as before (a malformed payload counts nothing). Returns the body and its trace
    /// count.
    fn process_v04(&self, payload: &[u8]) -> Result<(Bytes, usize)> {
        let mut stream = V04Stream::new(payload)?;
        // The body is about the input's size; reserved but untouched pages cost no memory.
        let guess = (payload.len() + payload.len() / 8).min(MAX_GUESS);
        let mut out = Vec::with_capacity(HEADER_ROOM + guess);
        // Room for the payload's array header, written once the kept traces are counted.
        out.extend_from_slice(&[0u8; HEADER_ROOM]);
        let mut counts = crate::normalize::NormalizeCounts::new();
        let mut chunk = Vec::new();
        let mut kept = 0usize;
        while stream.next_into(&mut chunk)? {
            if self.shared.pipeline.process_chunk(&mut chunk, &mut counts) {
                encode_v04::encode_trace(&chunk, &mut out)?;
                kept += 1;
            }
        }
        self.shared.pipeline.merge_counts(&counts);
        let start = write_header_in_room(&mut out, kept as u64);
        Ok((Bytes::from(out).slice(start..), kept))
    }

    /// True when a stage (normalization, obfuscation, stats, ...) must see the spans, which rules
    /// out the passthrough fast path.
    pub(super) fn has_processing(&self) -> bool {
        self.shared.pipeline.is_active() || self.stats_computing()
    }

    /// THE place where spans are transformed between decode and encode (normalize, obfuscate,
    /// compute stats, drop P0s). Called once per send, only when [`Exporter::has_processing`] is
    /// true. Returns what P0 dropping removed when stats were computed (for the headers).
    pub(super) fn process(&self, traces: &mut Traces<'_>) -> Option<DroppedP0> {
        // Normalization and obfuscation first (exporter/pipeline.rs), then stats on their result.
        self.shared.pipeline.process(traces);
        self.shared.stats.as_deref().and_then(|s| s.process(traces))
    }

    /// Auto stats mode: the first send waits (once, bounded by the request timeout and the
    /// send's deadline) for `/info`, so that its spans already get stats when the agent allows.
    pub(super) fn await_info_for_stats(&self, deadline: Instant) {
        if !self
            .shared
            .stats
            .as_deref()
            .is_some_and(StatsStage::should_await_info)
        {
            return;
        }
        if self.agent_info().is_some() {
            return;
        }
        let r = self
            .block_on(async { self.fetch_info(deadline).await })
            .and_then(|r| r);
        if let Err(e) = r {
            log::debug!("client-side stats: /info not available yet: {e}");
        }
    }

    /// What the exporter does about client-side stats now.
    pub fn stats_state(&self) -> StatsState {
        self.shared
            .stats
            .as_deref()
            .map_or(StatsState::Disabled, StatsStage::state)
    }

    /// True while client-side stats are computed (see [`Exporter::stats_state`]).
    pub fn stats_enabled(&self) -> bool {
        self.stats_state() == StatsState::Enabled
    }

    /// The stats stage, when stats are configured.
    pub fn stats(&self) -> Option<&StatsStage> {
        self.shared.stats.as_deref()
    }

    /// Sends the complete stats buckets now (all of them when `force`), within `timeout`;
    /// returns the number of buckets sent (0 when stats are off).
    pub fn flush_stats(&self, force: bool, timeout: Duration) -> Result<usize> {
        match &self.shared.stats {
            Some(s) => s.flush(force, timeout),
            None => Ok(0),
        }
    }

    /// Stops background work and delivers what it holds within `timeout`: first the traces the
    /// background worker has queued (see [`super::background`]), then every stats bucket, with
    /// the time left. It always returns within `timeout`. Synchronous sends still work afterwards,
    /// with client-side stats off (P0 chunks are sent again). Later enqueues are refused.
    ///
    /// Errors: `Timeout` when queued traces were left (dropped, counted as `shutdown` in
    /// [`Exporter::health`]) or stats buckets could not be delivered in time.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let traces = match &self.background {
            Some(b) => b.shutdown(timeout),
            None => Ok(()),
        };
        let stats = match &self.shared.stats {
            Some(s) => s.shutdown(deadline.saturating_duration_since(Instant::now())),
            None => Ok(()),
        };
        traces.and(stats)
    }

    /// The sampling rate the agent asks for (service, env), from the `rate_by_service` of the
    /// last response that carried rates: the (service, env) key, else the default key, else 1.0
    /// (no feedback yet: keep everything).
    pub fn sampling_rate(&self, service: &str, env: &str) -> f64 {
        self.sampling_rates().get(service, env).unwrap_or(1.0)
    }

    /// The `rate_by_service` of the last response that carried rates (empty before).
    pub fn sampling_rates(&self) -> Arc<RatesByService> {
        self.shared.rates.lock().clone()
    }

    /// Keeps `rates` for [`Exporter::sampling_rate`] unless empty (an answer without rates leaves
    /// the last ones in place).
    pub(super) fn keep_rates(&self, rates: RatesByService) {
        if !rates.is_empty() {
            *self.shared.rates.lock() = Arc::new(rates);
        }
    }

    /// The format to send now: v0.4, or v0.5 unless the agent is known not to serve it.
    pub(super) fn target_format(&self) -> Format {
        if self.config.output_format == Format::V04 {
            return Format::V04;
        }
        if self.v05_unavailable.load(Ordering::Relaxed) {
            return Format::V04;
        }
        let supports = self
            .conn()
            .ok()
            .and_then(|c| lock(&c.info).info.as_ref().map(|i| i.supports_v05()));
        match supports {
            Some(false) => {
                self.note_no_v05();
                Format::V04
            }
            _ => Format::V05,
        }
    }

    /// After the agent answered 404 to v0.5: true (and v0.5 is given up for the next sends)
    /// unless its `/info`, already known (e.g. fetched alongside the send) or fetched now, says it
    /// serves v0.5.
    pub(super) async fn v05_refused(&self, deadline: Instant) -> bool {
        if let Some(refused) = self.known_v05_refused() {
            return refused;
        }
        let supports = self
            .fetch_info(deadline)
            .await
            .ok()
            .map(|i| i.supports_v05());
        self.v05_verdict(supports)
    }

    /// [`Exporter::v05_refused`] when `/info` is already known (no request); `None` when it
    /// is not.
    pub(super) fn known_v05_refused(&self) -> Option<bool> {
        let info = self.agent_info()?;
        Some(self.v05_verdict(Some(info.supports_v05())))
    }

    /// True (and v0.5 given up) unless `supports` says the agent serves v0.5.
    fn v05_verdict(&self, supports: Option<bool>) -> bool {
        if supports == Some(true) {
            return false;
        }
        self.note_no_v05();
        true
    }

    pub(super) fn note_no_v05(&self) {
        if !self.v05_unavailable.swap(true, Ordering::Relaxed) {
            log::warn!(
                "agent at {} does not list /v0.5/traces: sending v0.4 instead",
                self.url
            );
        }
    }

    /// Prepares the payload for the target format and delivers it before `deadline`, refreshing
    /// `/info` alongside when due.
    fn run(
        &self,
        deadline: Instant,
        prepare: impl Fn(Format) -> Result<Prepared> + Sync,
    ) -> Result<AgentResponse> {
        let target = self.target_format();
        let prepared = prepare(target)?;
        let work = async {
            let result = self.deliver_with_info(prepared, deadline).await;
            match result {
                Err(e) if target == Format::V05 && e.http_status() == Some(404) => {
                    // Optimistic v0.5 refused: fall back unless the agent says it serves it.
                    if !self.v05_refused(deadline).await {
                        return Err(e);
                    }
                    let prepared = prepare(Format::V04)?;
                    self.deliver(prepared, deadline).await
                }
                other => other,
            }
        };
        let bound = deadline.saturating_duration_since(Instant::now());
        self.conn()?.transport.block_on(async {
            match tokio::time::timeout(bound, work).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "send to {} did not finish within send_timeout ({:?})",
                        self.url, self.config.send_timeout
                    ),
                )),
            }
        })
    }

    /// Delivers while fetching `/info` concurrently when a refresh is due (see `with_info`).
    async fn deliver_with_info(&self, p: Prepared, deadline: Instant) -> Result<AgentResponse> {
        self.with_info(self.deliver(p, deadline), deadline).await
    }

    /// Runs `work` while fetching `/info` concurrently when a refresh is due. Both run at once and
    /// this returns when both are done (the fetch is bounded by the request timeout and
    /// `deadline`), so a refresh costs max(work, /info) rather than their sum, and `/info` always
    /// arrives: abandoning the fetch when the work wins would starve it on a loaded machine.
    pub(super) async fn with_info<T>(&self, work: impl Future<Output = T>, deadline: Instant) -> T {
        let Ok(conn) = self.conn() else {
            return work.await;
        };
        let due = {
            let mut s = lock(&conn.info);
            let due = s.needs_refresh(Instant::now());
            if due {
                s.fetching = true;
            }
            due
        };
        if !due {
            return work.await;
        }
        let guard = FetchGuard(&conn.info);
        let fetch = async {
            let _guard = guard;
            let _ = self.fetch_info_inner(deadline).await;
        };
        let (r, ()) = tokio::join!(work, fetch);
        r
    }

    /// Fetches `/info` (bounded by the request timeout and `deadline`) and stores the answer.
    pub(super) async fn fetch_info(&self, deadline: Instant) -> Result<Arc<AgentInfo>> {
        let conn = self.conn()?;
        lock(&conn.info).fetching = true;
        let _guard = FetchGuard(&conn.info);
        self.fetch_info_inner(deadline).await
    }

    async fn fetch_info_inner(&self, deadline: Instant) -> Result<Arc<AgentInfo>> {
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .min(self.config.request_timeout);
        let conn = self.conn()?;
        let result = async {
            let resp = conn
                .transport
                .client()
                .request(
                    reqwest::Method::GET,
                    INFO_PATH,
                    HeaderMap::new(),
                    None,
                    timeout,
                )
                .await?;
            if resp.status != 200 {
                return Err(status_error(&resp, INFO_PATH));
            }
            Ok((Arc::new(AgentInfo::parse(&resp.body)?), resp))
        }
        .await;
        let mut s = lock(&conn.info);
        s.fetched_at = Some(Instant::now());
        match result {
            Ok((info, resp)) => {
                s.stale = false;
                s.observe_state(resp.header(AGENT_STATE_HEADER));
                s.info = Some(info.clone());
                drop(s);
                if let Some(stats) = &self.shared.stats {
                    stats.on_agent_info(&info);
                }
                if info.supports_v05() {
                    self.v05_unavailable.store(false, Ordering::Relaxed);
                }
                log::debug!("agent at {}: /info refreshed", self.url);
                Ok(info)
            }
            Err(e) => {
                log::debug!("agent at {}: /info failed: {e}", self.url);
                Err(e)
            }
        }
    }

    fn request_headers(&self, traces: usize, stats: Option<DroppedP0>) -> HeaderMap {
        let mut h = self.headers.clone();
        h.insert(
            HeaderName::from_static(TRACE_COUNT_HEADER),
            HeaderValue::from(traces),
        );
        if let Some(dropped) = stats {
            add_stats_headers(&mut h, dropped);
        }
        h
    }

    /// Delivers one payload before `deadline`: retries per [`crate::transport::retry`], splits on
    /// 413.
    fn deliver<'s>(
        &'s self,
        p: Prepared,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Result<AgentResponse>> + Send + 's>> {
        Box::pin(async move {
            let path = p.format.endpoint_path();
            let mut jitter = Jitter::new();
            let mut retries = 0u32;
            loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("send to {}{path}: send_timeout reached", self.url),
                    ));
                }
                let attempt = self
                    .put(&p, remaining.min(self.config.request_timeout))
                    .await;
                let (error, retry_after) = match attempt {
                    Ok(resp) => match classify_status(resp.status) {
                        Verdict::Delivered => {
                            let r = AgentResponse::new(resp.status, resp.body.to_vec());
                            self.keep_rates(r.rate_by_service.clone());
                            return Ok(r);
                        }
                        Verdict::Split => return self.split(p, deadline, &resp).await,
                        Verdict::Fail => return Err(status_error(&resp, path)),
                        Verdict::Retry => (
                            status_error(&resp, path),
                            resp.header("retry-after").and_then(parse_retry_after),
                        ),
                    },
                    Err(e) => (e, None),
                };
                if retries >= self.policy.max_retries {
                    return Err(if retries == 0 {
                        error
                    } else {
                        annotate(&error, &format!("after {retries} retries"))
                    });
                }
                retries += 1;
                let wait = retry_after.unwrap_or_else(|| self.policy.backoff(retries, &mut jitter));
                if Instant::now() + wait >= deadline {
                    return Err(annotate(
                        &error,
                        &format!("no retry: waiting {wait:?} would pass send_timeout"),
                    ));
                }
                log::debug!("{error}; retry {retries} in {wait:?}");
                tokio::time::sleep(wait).await;
            }
        })
    }

    /// One attempt: sends `p` to its endpoint and reads the answer within `timeout` (an HTTP error
    /// status is an answer, not an error), noting the agent's state header.
    pub(super) async fn put(&self, p: &Prepared, timeout: Duration) -> Result<HttpResponse> {
        let resp = self
            .conn()?
            .transport
            .client()
            .request(
                reqwest::Method::PUT,
                p.format.endpoint_path(),
                self.request_headers(p.traces, p.stats),
                Some(p.body.clone()),
                timeout,
            )
            .await?;
        self.observe_agent_state(&resp);
        Ok(resp)
    }

    /// 413: sends each half of the payload (recursively, down to single spans); answers the last
    /// response, or the first error after trying both halves.
    async fn split(
        &self,
        p: Prepared,
        deadline: Instant,
        resp: &HttpResponse,
    ) -> Result<AgentResponse> {
        let path = p.format.endpoint_path();
        let (a, b) = match codec::split_payload(p.format, &p.body) {
            Ok(halves) => halves,
            Err(e) if e.kind() == ErrorKind::InvalidArgument => {
                return Err(annotate(
                    &status_error(resp, path),
                    "payload too large and cannot be split further",
                ))
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::with_capacity(2);
        for (i, half) in [a, b].into_iter().enumerate() {
            let traces = codec::count_traces(p.format, &half)?;
            let half = Prepared {
                body: Bytes::from(half),
                format: p.format,
                traces,
                // The dropped counts travel once, with the first half.
                stats: p
                    .stats
                    .map(|d| if i == 0 { d } else { DroppedP0::default() }),
            };
            out.push(self.deliver(half, deadline).await);
        }
        let mut last = None;
        for r in out {
            last = Some(r?);
        }
        last.ok_or_else(|| Error::new(ErrorKind::Internal, "split produced no halves"))
    }

    fn observe_agent_state(&self, resp: &HttpResponse) {
        let Ok(conn) = self.conn() else { return };
        if lock(&conn.info).observe_state(resp.header(AGENT_STATE_HEADER)) {
            log::debug!(
                "agent at {}: state changed, /info will be refreshed",
                self.url
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Str;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn exporter_is_send_and_sync() {
        assert_send_sync::<Exporter>();
    }

    #[test]
    fn annotate_keeps_kind_and_status() {
        let e = annotate(&Error::http(503, "busy"), "after 2 retries");
        assert_eq!(e.http_status(), Some(503));
        assert_eq!(e.message(), "busy (after 2 retries)");
        let e = annotate(&Error::new(ErrorKind::Timeout, "slow"), "x");
        assert_eq!(e.kind(), ErrorKind::Timeout);
    }

    /// Payloads for the processing paths: realistic chunks, arbitrary ones (many rejected or
    /// repaired by normalization), and spans each stage changes or leaves alone.
    fn processing_payload() -> crate::Traces<'static> {
        use crate::span::Span;

        let mut traces = crate::decode::gen::realistic_and_arbitrary(11, 30, 8, 5, 30);
        let span = |id: u64, ty: &'static str, resource: &'static str| Span {
            service: Str::borrowed("svc"),
            name: Str::borrowed("op"),
            resource: Str::borrowed(resource),
            r#type: Str::borrowed(ty),
            trace_id: 77,
            span_id: id,
            start: 1_700_000_000_000_000_000,
            duration: 5,
            ..Default::default()
        };
        let mut chunk = vec![
            span(1, "web", "GET /"),
            span(2, "sql", "SELECT a FROM b WHERE c = 'it\\'s' AND d = 1"),
            span(3, "sql", "SELECT * FROM t WHERE x = \"unterminated"),
            span(4, "redis", "SET k v"),
            span(5, "memcached", "set"),
            span(6, "custom", ""),
            span(7, "http", "GET"),
        ];
        for (i, key, value) in [
            (0, "http.url", "https://u:p@x.com/a/1?q=2"),
            (0, "card", "4111111111111111"),
            (0, "component", "flask"),
            (1, "sql.query", ""),
            (1, "db.statement", "UPDATE t SET a = 1"),
            (3, "redis.raw_command", "SET k secret"),
            (4, "memcached.command", "set k 0 0 5\r\nvalue"),
            (6, "http.status_code", "abc"),
        ] {
            chunk[i].meta.push(key, Str::borrowed(value));
        }
        chunk[5].service = Str::borrowed("Bad Service!");
        traces.push(chunk);
        traces.push(vec![span(8, "web", "GET /untouched")]);
        traces.push(Vec::new());
        traces.push(vec![
            span(9, "web", "x"),
            Span {
                trace_id: 78,
                ..span(10, "web", "y")
            },
        ]);
        traces
    }

    /// The chunk-by-chunk v0.4 path gives the bytes and counts of decoding the whole payload,
    /// processing it and encoding it, with several settings.
    #[test]
    fn chunk_by_chunk_equals_whole_payload_processing() {
        use crate::exporter::CreditCardMode;
        let traces = processing_payload();
        let mut builders = Vec::new();
        for (what, normalize, obfuscate) in [
            ("both", true, true),
            ("normalize", true, false),
            ("obfuscate", false, true),
        ] {
            let mut b = super::super::ExporterBuilder::new();
            b.normalize(normalize).obfuscate(obfuscate);
            builders.push((what, b));
        }
        let mut b = super::super::ExporterBuilder::new();
        b.normalize(true)
            .obfuscate(true)
            .language("go")
            .normalization_component_to_name(true)
            .obfuscation_credit_cards(CreditCardMode::Luhn)
            .obfuscation_http_remove_query_string(true)
            .obfuscation_http_remove_paths_with_digits(true)
            .obfuscation_sql_table_names(true)
            .replace_tags(r#"[{"name":"*","pattern":"secret","repl":"?"}]"#);
        builders.push(("settings", b));
        let payload = codec::encode_to_vec(Format::V04, &traces).unwrap();
        for (what, builder) in &builders {
            let streamed = builder.clone().build().unwrap();
            let whole = builder.clone().build().unwrap();
            let (body, n) = streamed.process_v04(&payload).unwrap();
            let mut want = codec::decode(Format::V04, &payload).unwrap();
            assert_eq!(whole.process(&mut want), None);
            let want_body = codec::encode_to_vec(Format::V04, &want).unwrap();
            assert_eq!(n, want.len(), "{what}");
            if *what != "obfuscate" {
                assert!(n < traces.len(), "{what}: some chunks are dropped");
            }
            assert_eq!(&body[..], &want_body[..], "{what}");
            assert_eq!(
                streamed.normalize_counts(),
                whole.normalize_counts(),
                "{what}"
            );
        }
    }

    #[test]
    fn chunk_by_chunk_refuses_malformed_payloads_without_counting() {
        let traces = processing_payload();
        let payload = codec::encode_to_vec(Format::V04, &traces).unwrap();
        let cut = &payload[..payload.len() - 3];
        let ex = super::super::ExporterBuilder::new()
            .normalize(true)
            .obfuscate(true)
            .build()
            .unwrap();
        let e = ex.process_v04(cut).unwrap_err();
        assert_eq!(
            e.to_string(),
            codec::decode(Format::V04, cut).unwrap_err().to_string()
        );
        assert_eq!(ex.normalize_counts().total(), 0);
        // An empty payload: the smallest header.
        let (body, n) = ex.process_v04(&[0x90]).unwrap();
        assert_eq!((&body[..], n), (&[0x90u8][..], 0));
    }

    #[test]
    fn headers_per_spec() {
        let ex = super::super::ExporterBuilder::new()
            .language("python")
            .language_version("3.12")
            .language_interpreter("CPython")
            .tracer_version("2.1.0")
            .container_id("cid")
            .build()
            .unwrap();
        let h = ex.request_headers(7, None);
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(get("content-type").as_deref(), Some("application/msgpack"));
        assert_eq!(get("x-datadog-trace-count").as_deref(), Some("7"));
        assert_eq!(get("datadog-meta-lang").as_deref(), Some("python"));
        assert_eq!(get("datadog-meta-lang-version").as_deref(), Some("3.12"));
        assert_eq!(
            get("datadog-meta-lang-interpreter").as_deref(),
            Some("CPython")
        );
        assert_eq!(get("datadog-meta-tracer-version").as_deref(), Some("2.1.0"));
        assert_eq!(get("datadog-container-id").as_deref(), Some("cid"));
        assert_eq!(get("datadog-send-real-http-status").as_deref(), Some("1"));
        assert_eq!(get(TEST_SESSION_TOKEN_HEADER), None);
        assert_eq!(h.len(), 8);
    }
}

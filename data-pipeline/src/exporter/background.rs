//! The background exporter: [`Exporter::enqueue`] hands payloads to one worker thread per exporter,
//! which batches them and delivers them. The application never waits for the agent.
//!
//! - **Never blocks.** `enqueue` copies the payload into a bounded queue (see [`super::queue`]) and
//!   returns. It takes one short lock, does not touch the clock, and wakes the worker only when it
//!   must. The worker thread starts on the first enqueue.
//! - **Batches.** The worker sends once `batch_max_bytes` of payload is queued, or once the oldest
//!   payload has waited `batch_max_delay`, or at once on `flush`/`shutdown`. v0.4 payloads are merged
//!   without decoding (see [`super::batch`]). There is never more than one request in flight.
//! - **Bounded memory.** At most `queue_max_bytes` are held, counting the batch being sent. Beyond
//!   that, new payloads are dropped and counted, and `enqueue` returns an `Overflow` error.
//! - **Faults.** HTTP answers are classified as for `send` ([`crate::transport::retry`]).
//!   Retryable answers (408, 429 with `Retry-After`, 5xx) are retried up to `max_retries` with
//!   exponential backoff and jitter, within a retry budget. Network errors and timeouts drive a
//!   circuit breaker ([`super::breaker`]): data is kept within the cap while the agent is
//!   unreachable, a probe goes out periodically, and the backlog drains when it answers. A 413 splits
//!   the payload. A 404 on v0.5 falls back to v0.4. A 400 on a merged batch isolates the malformed
//!   payload and drops it alone.
//! - **Bounded waits.** `flush(timeout)` and `shutdown(timeout)` always return within their
//!   timeout, with a `Timeout` error saying what was not delivered. Dropping the exporter never
//!   blocks: the worker is told to stop, and what it still held is counted as dropped.
//! - **Accounted.** Every trace enqueued ends up delivered or dropped for a reason, and
//!   [`Exporter::health`] balances at any instant (see [`super::health`]). With a `statsd_url`, the
//!   counters also go out as DogStatsD metrics every 10 s ([`super::statsd`]).
//! - **Fork-safe.** A forked child detects the fork on its next call and starts over with an
//!   empty queue, zeroed counters and a new worker and transport. The parent's queued traces are
//!   left to the parent and not counted by the child. Explicit hooks pause the worker around a fork
//!   ([`super::fork`]).

use super::batch::{self, Part, Process, Rejected};
use super::breaker::{Breaker, RetryBudget, Tripped};
use super::builder::ExporterConfig;
use super::chunk::{chunk_capacity, Pool};
use super::codec::Format;
use super::exporter::{Exporter, Prepared, Shared as ExporterShare};
use super::fork::{self, ForkAware, ForkLocal};
use super::health::{DropReason, Health, Tally, WorkerCounters};
use super::queue::{dropped_error, Batch, Item, Limits, Pushed, QueueState, Taken};
use super::response::RatesByService;
use super::statsd::{Statsd, StatsdAddr, STATSD_INTERVAL};
use crate::transport::retry::{classify_status, parse_retry_after, Jitter, RetryPolicy, Verdict};
use crate::transport::{AgentUrl, HttpResponse};
use crate::{Error, ErrorKind, Result, Trace};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

/// Default `batch_max_bytes`: a batch goes out once this much payload is queued.
pub const DEFAULT_BATCH_MAX_BYTES: usize = 1 << 20;
/// Default `batch_max_delay`: the longest a payload waits in the queue while the worker is idle.
pub const DEFAULT_BATCH_MAX_DELAY: Duration = Duration::from_secs(1);
/// Default `queue_max_bytes`: the memory bound of the queue (payloads plus per-payload overhead).
pub const DEFAULT_QUEUE_MAX_BYTES: usize = 32 << 20;
/// Longest `Retry-After` honoured; a longer one is shortened to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How long `before_fork` waits for a worker to reach a safe point.
const PAUSE_WAIT: Duration = Duration::from_secs(1);
/// Warnings about dropped data are logged at most this often per reason.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Options of the background side, taken from the builder.
#[derive(Debug, Clone)]
struct Options {
    batch_max_bytes: usize,
    batch_max_delay: Duration,
    queue_max_bytes: usize,
    max_retries: u32,
    statsd: Option<StatsdAddr>,
}

impl Options {
    fn from_config(c: &ExporterConfig) -> Result<Options> {
        let statsd = if c.statsd_url.is_empty() {
            None
        } else {
            Some(StatsdAddr::parse(&c.statsd_url)?)
        };
        Ok(Options {
            batch_max_bytes: c.batch_max_bytes,
            batch_max_delay: c.batch_max_delay,
            queue_max_bytes: c.queue_max_bytes,
            max_retries: c.max_retries,
            statsd,
        })
    }
}

/// Runs `f` with the exporter's span processing (`None` when no stage is on), as
/// [`batch::build`] and [`batch::isolate`] take it.
fn with_processing<R>(ex: &Exporter, f: impl FnOnce(Process<'_>) -> R) -> R {
    let process_fn = |t: &mut crate::Traces<'_>| ex.process(t);
    f(if ex.has_processing() {
        Some(&process_fn)
    } else {
        None
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent before it can panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The background side of one exporter (one per [`Exporter`], none in the worker's own).
pub(crate) struct Background {
    root: Arc<Root>,
}

/// What survives a fork: the configuration and the per-process state cell.
struct Root {
    url: AgentUrl,
    config: ExporterConfig,
    /// The stats stage and rates store the worker's exporter shares with the application's.
    share: ExporterShare,
    opts: Options,
    shared: ForkLocal<Arc<Shared>>,
    /// `shutdown` was called: a child starts shut down too.
    shut: AtomicBool,
}

/// The state of one process: queue, worker, counters. A forked child builds a new one.
struct Shared {
    opts: Options,
    /// What the worker builds its own exporter from. Kept here rather than captured by the worker
    /// thread's closure: in a forked child the parent's worker thread is gone, and what only its
    /// stack referenced would look lost to leak checkers, while `Shared` stays reachable (see
    /// `fork.rs`).
    template: (AgentUrl, ExporterConfig, ExporterShare),
    limits: Limits,
    q: Mutex<QueueState>,
    /// Pre-faulted chunk buffers (see [`super::chunk`]).
    pool: Arc<Pool>,
    /// Tells the worker's runtime to refill `pool` while a request is in flight.
    refill: tokio::sync::Notify,
    /// Signalled (with `q`) when the worker resolves a batch or exits.
    done: Condvar,
    counters: WorkerCounters,
    gate: Gate,
    /// Set once: the worker must stop now and drop what it holds.
    abort: AtomicBool,
    abort_notify: tokio::sync::Notify,
    started: AtomicBool,
    worker: OnceLock<Thread>,
    join: Mutex<Option<JoinHandle<()>>>,
    forks: u64,
    /// The running worker's state (its transport, connection pool, ...), boxed and pointed to from
    /// here for one reason: in a forked child the worker thread is gone, and its state must stay
    /// reachable (through `Shared`, see `fork.rs`) rather than look lost to leak checkers. Never
    /// dereferenced.
    anchor: std::sync::atomic::AtomicPtr<u8>,
}

impl Shared {
    fn new(
        opts: Options,
        template: (AgentUrl, ExporterConfig, ExporterShare),
        forks: u64,
        closing: bool,
    ) -> Shared {
        let mut q = QueueState::default();
        q.closing = closing;
        let limits = Limits {
            queue_max_bytes: opts.queue_max_bytes,
            batch_max_bytes: opts.batch_max_bytes,
        };
        Shared {
            pool: Pool::new(chunk_capacity(opts.batch_max_bytes, opts.queue_max_bytes)),
            refill: tokio::sync::Notify::new(),
            limits,
            template,
            opts,
            q: Mutex::new(q),
            done: Condvar::new(),
            counters: WorkerCounters::default(),
            gate: Gate::default(),
            abort: AtomicBool::new(false),
            abort_notify: tokio::sync::Notify::new(),
            started: AtomicBool::new(false),
            worker: OnceLock::new(),
            join: Mutex::new(None),
            forks,
            anchor: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    fn wake(&self) {
        if let Some(t) = self.worker.get() {
            t.unpark();
        }
    }

    /// Wakes the worker if the push asked for it; the result for `enqueue`.
    fn after_push(&self, pushed: Pushed, traces: u32) -> Result<()> {
        match pushed {
            Pushed::Queued { wake, refill } => {
                if refill {
                    // Either the parked worker or, mid-request, its runtime refills the pool.
                    self.refill.notify_one();
                }
                if wake || refill {
                    self.wake();
                }
                Ok(())
            }
            Pushed::Dropped(reason) => Err(dropped_error(reason, traces)),
        }
    }

    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Acquire)
    }

    /// Tells the worker to stop now (it drops what it holds, counted as `shutdown`).
    fn abort(&self) {
        self.abort.store(true, Ordering::Release);
        self.abort_notify.notify_one();
        self.wake();
    }

    /// Starts the worker thread unless it runs already (cheap check first).
    fn ensure_worker(self: &Arc<Self>) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let mut join = lock(&self.join);
        if self.started.load(Ordering::Relaxed) {
            return;
        }
        let sh = self.clone();
        match std::thread::Builder::new()
            .name("dp-exporter".into())
            .spawn(move || Worker::run(sh))
        {
            Ok(h) => {
                let _ = self.worker.set(h.thread().clone());
                *join = Some(h);
            }
            Err(e) => log::error!("cannot start the exporter's background thread: {e}"),
        }
        self.started.store(true, Ordering::Release);
    }

    /// Waits on `done` until `cond` holds or `deadline` passes.
    fn wait_until(
        &self,
        deadline: Instant,
        mut cond: impl FnMut(&QueueState) -> bool,
    ) -> MutexGuard<'_, QueueState> {
        let mut q = lock(&self.q);
        while !cond(&q) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            q = match self.done.wait_timeout(q, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        q
    }

    fn health(&self) -> Health {
        let mut h = Health::default();
        let exited = {
            let q = lock(&self.q);
            q.fill(&mut h);
            q.worker_exited
        };
        self.counters.fill(&mut h);
        h.forks = self.forks;
        h.worker_running = self.worker.get().is_some() && !exited;
        h
    }
}

/// Lets `before_fork` stop the worker at a safe point: outside every critical section of ours,
/// never holding the queue lock. The worker marks itself busy while it runs our code and idle
/// while it waits (parked, or awaiting the network inside its runtime).
#[derive(Debug, Default)]
struct Gate {
    paused: AtomicBool,
    busy: AtomicBool,
}

impl Gate {
    /// Worker: about to run our code. Parks while paused.
    fn enter(&self) {
        loop {
            // SeqCst on both sides (Dekker): either the pauser sees `busy`, or this sees `paused`.
            self.busy.store(true, Ordering::SeqCst);
            if !self.paused.load(Ordering::SeqCst) {
                return;
            }
            self.busy.store(false, Ordering::SeqCst);
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    /// Worker: about to wait.
    fn leave(&self) {
        self.busy.store(false, Ordering::SeqCst);
    }

    /// Pauses; true once the worker is at a safe point (false if `wait` passed first).
    fn pause(&self, wait: Duration) -> bool {
        self.paused.store(true, Ordering::SeqCst);
        let end = Instant::now() + wait;
        while self.busy.load(Ordering::SeqCst) {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        true
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

impl Root {
    /// The state for a new process.
    fn fresh(&self, stale: Option<&Arc<Shared>>) -> Result<Arc<Shared>> {
        let forks = stale.map_or(0, |s| s.forks + 1);
        Ok(Arc::new(Shared::new(
            self.opts.clone(),
            (self.url.clone(), self.config.clone(), self.share.clone()),
            forks,
            self.shut.load(Ordering::Acquire),
        )))
    }
}

impl ForkAware for Root {
    fn before_fork(&self) {
        if let Some(sh) = self.shared.current() {
            if !sh.gate.pause(PAUSE_WAIT) {
                log::warn!("before_fork: the exporter's worker did not reach a safe point in time");
            }
        }
    }

    fn after_fork_parent(&self) {
        if let Some(sh) = self.shared.current() {
            sh.gate.resume();
            sh.wake();
        }
    }

    fn after_fork_child(&self) {
        let _ = self.shared.get_strict(|stale| self.fresh(stale));
    }
}

impl Background {
    pub(super) fn new(
        url: AgentUrl,
        config: ExporterConfig,
        share: ExporterShare,
    ) -> Result<Background> {
        let opts = Options::from_config(&config)?;
        let shared = Shared::new(
            opts.clone(),
            (url.clone(), config.clone(), share.clone()),
            0,
            false,
        );
        let root = Arc::new(Root {
            url,
            config,
            share,
            shared: ForkLocal::new(Arc::new(shared)),
            opts,
            shut: AtomicBool::new(false),
        });
        let weak: Weak<Root> = Arc::downgrade(&root);
        fork::register(weak)?;
        Ok(Background { root })
    }

    /// This process's state (cheap fork check).
    #[inline]
    fn shared(&self) -> Result<&Arc<Shared>> {
        self.root.shared.get(|stale| self.root.fresh(stale))
    }

    /// This process's state (strict fork check, off the hot path).
    fn shared_strict(&self) -> Result<&Arc<Shared>> {
        self.root.shared.get_strict(|stale| self.root.fresh(stale))
    }

    /// Queues a v0.4 payload by copying it into the current chunk.
    fn enqueue_copy(&self, payload: &[u8], header: (u32, u8), spans: u32) -> Result<()> {
        let sh = self.shared()?;
        sh.ensure_worker();
        let pushed = lock(&sh.q).push_copy(payload, header, spans, sh.limits, &sh.pool, || {
            sh.counters.breaker_state() != super::health::BreakerState::Closed
        });
        sh.after_push(pushed, header.0)
    }

    /// Queues a payload as it is.
    fn enqueue_item(&self, item: Item) -> Result<()> {
        let sh = self.shared()?;
        sh.ensure_worker();
        let traces = item.traces;
        let pushed = lock(&sh.q).push(item, sh.limits, || {
            sh.counters.breaker_state() != super::health::BreakerState::Closed
        });
        sh.after_push(pushed, traces)
    }

    fn flush(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let sh = self.shared_strict()?;
        let target = {
            let mut q = lock(&sh.q);
            let target = q.next_seq();
            if q.done_seq >= target {
                return Ok(());
            }
            q.flush_target = q.flush_target.max(target);
            q.kick += 1;
            target
        };
        sh.wake();
        let q = sh.wait_until(deadline, |q| q.done_seq >= target || q.worker_exited);
        if q.done_seq >= target {
            return Ok(());
        }
        let (_, traces, bytes) = q.pending();
        Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "flush did not finish within {timeout:?}: {traces} trace(s) ({bytes} bytes) still pending"
            ),
        ))
    }

    /// Drains and stops the worker within `timeout` (see [`Exporter::shutdown`]).
    pub(super) fn shutdown(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        self.root.shut.store(true, Ordering::Release);
        let sh = self.shared_strict()?;
        {
            let mut q = lock(&sh.q);
            q.closing = true;
            q.kick += 1;
            if sh.worker.get().is_none() {
                // No worker (never started, or it could not be): nothing will send these.
                q.clear();
                q.worker_exited = true;
                drop(q);
                sh.done.notify_all();
                return Ok(());
            }
        }
        sh.wake();
        // Keep a little time to stop the worker and count what it held if draining runs late.
        let grace = (timeout / 10).min(Duration::from_millis(50));
        let drain_until = deadline.checked_sub(grace).unwrap_or(deadline);
        let q = sh.wait_until(drain_until, |q| q.worker_exited);
        if q.worker_exited {
            drop(q);
            self.reap(sh);
            return Ok(());
        }
        let (_, pending, _) = q.pending();
        drop(q);
        sh.abort();
        let q = sh.wait_until(deadline, |q| q.worker_exited);
        let exited = q.worker_exited;
        drop(q);
        if exited {
            self.reap(sh);
        }
        Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "shutdown did not finish within {timeout:?}: {pending} trace(s) not delivered \
                 (dropped, counted as `shutdown`)"
            ),
        ))
    }

    /// Joins the worker thread if it has ended (never waits for it).
    fn reap(&self, sh: &Shared) {
        let mut j = lock(&sh.join);
        if j.as_ref().is_some_and(|h| h.is_finished()) {
            if let Some(h) = j.take() {
                let _ = h.join();
            }
        }
    }

    fn health(&self) -> Health {
        match self.shared_strict() {
            Ok(sh) => sh.health(),
            Err(_) => Health::default(),
        }
    }
}

impl Drop for Background {
    /// Never blocks: tells the worker to stop; it counts what it still holds as dropped.
    fn drop(&mut self) {
        if let Some(sh) = self.root.shared.current() {
            sh.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------------------

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Elapsed,
    /// A flush or shutdown arrived.
    Kicked,
    Aborted,
}

/// How one attempt ended.
enum Attempt {
    Answered(HttpResponse),
    Failed(Error),
    Aborted,
}

struct Worker {
    sh: Arc<Shared>,
    ex: Exporter,
    policy: RetryPolicy,
    breaker: Breaker,
    budget: RetryBudget,
    jitter: Jitter,
    statsd: Option<Statsd>,
    next_emit: Option<Instant>,
    /// When the worker first saw the oldest queued payload.
    first_seen: Option<Instant>,
    /// Outcome of the batch in hand, added to the tally when it resolves.
    outcome: Tally,
    last_warn: [Option<Instant>; DropReason::ALL.len()],
}

impl Worker {
    fn run(sh: Arc<Shared>) {
        sh.gate.enter();
        let (url, config, share) = &sh.template;
        let ex = loop {
            match Exporter::for_worker(url.clone(), config.clone(), share.clone()) {
                Ok(ex) => break ex,
                Err(e) => {
                    log::error!(
                        "exporter worker: cannot create its transport: {e}; retrying in 1 s"
                    );
                    let closing = lock(&sh.q).closing;
                    if sh.aborted() || closing {
                        lock(&sh.q).clear();
                        Self::exit(&sh);
                        return;
                    }
                    sh.gate.leave();
                    std::thread::park_timeout(Duration::from_secs(1));
                    sh.gate.enter();
                }
            }
        };
        let m = &config.metadata;
        let statsd = sh.opts.statsd.clone().map(|a| {
            Statsd::new(
                a,
                &[
                    ("lang", m.language.as_str()),
                    ("tracer_version", m.tracer_version.as_str()),
                    ("service", m.service.as_str()),
                    ("env", m.env.as_str()),
                ],
            )
        });
        let mut w = Box::new(Worker {
            policy: RetryPolicy {
                max_retries: sh.opts.max_retries,
                ..RetryPolicy::default()
            },
            next_emit: statsd.as_ref().map(|_| Instant::now() + STATSD_INTERVAL),
            statsd,
            sh,
            ex,
            breaker: Breaker::new(),
            budget: RetryBudget::new(),
            jitter: Jitter::new(),
            first_seen: None,
            outcome: Tally::default(),
            last_warn: [None; DropReason::ALL.len()],
        });
        let sh = w.sh.clone();
        sh.anchor
            .store((&mut *w as *mut Worker).cast(), Ordering::Release);
        while let Some(batch) = w.next_batch() {
            w.process(batch);
        }
        if let Some(s) = &mut w.statsd {
            s.emit(&w.sh.health());
        }
        sh.anchor.store(std::ptr::null_mut(), Ordering::Release);
        drop(w);
        Self::exit(&sh);
    }

    fn exit(sh: &Shared) {
        lock(&sh.q).worker_exited = true;
        sh.done.notify_all();
        sh.gate.leave();
    }

    /// Parks until `until` (or an unpark), as a safe point for `before_fork`. Refills the chunk
    /// pool first.
    fn park(&self, until: Option<Instant>) {
        self.sh.pool.refill();
        self.sh.gate.leave();
        match until {
            Some(t) => std::thread::park_timeout(t.saturating_duration_since(Instant::now())),
            None => std::thread::park(),
        }
        self.sh.gate.enter();
    }

    fn maybe_emit(&mut self, now: Instant) {
        if self.next_emit.is_some_and(|t| now >= t) {
            let h = self.sh.health();
            if let Some(s) = &mut self.statsd {
                s.emit(&h);
            }
            self.next_emit = Some(now + STATSD_INTERVAL);
        }
    }

    /// Waits for the next batch: `None` once shut down and drained, or aborted.
    fn next_batch(&mut self) -> Option<Batch> {
        loop {
            let now = Instant::now();
            if self.sh.aborted() {
                lock(&self.sh.q).clear();
                return None;
            }
            self.maybe_emit(now);
            let mut q = lock(&self.sh.q);
            q.worker_waiting = false;
            let due = if q.is_empty() {
                self.first_seen = None;
                if q.closing {
                    return None;
                }
                None
            } else {
                let first = *self.first_seen.get_or_insert(now);
                let due = first + self.sh.opts.batch_max_delay;
                if q.closing
                    || q.flush_pending()
                    || q.queued_at_least(self.sh.opts.batch_max_bytes)
                    || now >= due
                {
                    let b = q.take_batch(self.sh.opts.batch_max_bytes);
                    self.first_seen = if q.is_empty() { None } else { Some(now) };
                    if b.is_some() {
                        return b;
                    }
                }
                Some(due)
            };
            q.worker_waiting = true;
            drop(q);
            let until = match (due, self.next_emit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.park(until);
        }
    }

    /// Builds, sends and resolves one batch.
    fn process(&mut self, mut batch: Batch) {
        // Auto stats mode: wait once for /info (bounded), so the first batch gets stats too.
        self.sh.gate.leave();
        self.ex
            .await_info_for_stats(Instant::now() + self.ex.config.request_timeout);
        self.sh.gate.enter();
        let target = self.ex.target_format();
        let taken = std::mem::replace(&mut batch.taken, Taken::Items(Vec::new()));
        let (items, merged) = match taken {
            Taken::Chunk(c) => {
                let (body, items) = c.seal(&self.sh.pool);
                (items, Some(body))
            }
            Taken::Items(items) => (items, None),
        };
        let (part, rejected) = with_processing(&self.ex, |process| {
            batch::build(items, merged, target, process)
        });
        self.reject(rejected);
        if let Some(part) = part {
            self.send(part);
        }
        let mut q = lock(&self.sh.q);
        q.resolve(&batch, &mut self.outcome);
        drop(q);
        self.sh.done.notify_all();
    }

    fn reject(&mut self, r: Rejected) {
        if r.traces > 0 || r.bytes > 0 {
            self.drop_traces(
                Rejected::REASON,
                r.traces,
                r.bytes,
                "malformed payload, or chunk refused by normalization",
            );
        }
        if r.p0_traces > 0 {
            // Sampled out, not lost: counted, and not worth a warning.
            self.outcome.drop_traces(DropReason::P0, r.p0_traces, 0);
        }
    }

    fn drop_part(&mut self, part: &Part, reason: DropReason, why: &str) {
        self.drop_traces(reason, part.account, part.enqueued_bytes, why);
    }

    fn drop_traces(&mut self, reason: DropReason, traces: u64, bytes: u64, why: &str) {
        self.outcome.drop_traces(reason, traces, bytes);
        let i = reason.index();
        let now = Instant::now();
        if self.last_warn[i].is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
            self.last_warn[i] = Some(now);
            log::warn!(
                "exporter to {}: dropped {traces} trace(s) ({}): {why} (logged once a minute per reason; see health())",
                self.ex.url(),
                reason.as_str()
            );
        } else {
            log::debug!("dropped {traces} trace(s) ({}): {why}", reason.as_str());
        }
    }

    fn publish_breaker(&self) {
        self.sh
            .counters
            .breaker
            .store(self.breaker.state().to_u8(), Ordering::Relaxed);
    }

    /// Sleeps until `until`; a flush or shutdown ends it early when `kickable`.
    fn sleep(&mut self, until: Instant, kickable: bool) -> Wake {
        let kick = kickable.then(|| lock(&self.sh.q).kick);
        loop {
            if self.sh.aborted() {
                return Wake::Aborted;
            }
            let now = Instant::now();
            if now >= until {
                return Wake::Elapsed;
            }
            if let Some(k) = kick {
                if lock(&self.sh.q).kick != k {
                    return Wake::Kicked;
                }
            }
            self.maybe_emit(now);
            let wake_at = self.next_emit.map_or(until, |e| e.min(until));
            self.park(Some(wake_at));
        }
    }

    /// One request, abandoned at once if the worker is aborted.
    fn attempt(&mut self, part: &Part) -> Attempt {
        if self.sh.aborted() {
            return Attempt::Aborted;
        }
        let timeout = self.ex.config.request_timeout;
        let prepared = Prepared {
            body: part.body.clone(),
            format: part.format,
            traces: part.traces,
            stats: part.p0,
        };
        let (ex, sh) = (&self.ex, &self.sh);
        sh.pool.refill();
        sh.gate.leave();
        // While the request is in flight (possibly for long: a stalled agent), keep the chunk pool
        // full so that `enqueue` never faults pages in (see `chunk.rs`).
        let housekeeping = async {
            loop {
                sh.refill.notified().await;
                if !sh.gate.paused.load(Ordering::SeqCst) {
                    sh.pool.refill();
                }
            }
        };
        let out = ex.block_on(async {
            tokio::select! {
                biased;
                _ = sh.abort_notify.notified() => None,
                r = ex.with_info(ex.put(&prepared, timeout), Instant::now() + timeout) => Some(r),
                () = housekeeping => None,
            }
        });
        sh.gate.enter();
        match out {
            Ok(None) => Attempt::Aborted,
            Ok(Some(Ok(resp))) => Attempt::Answered(resp),
            Ok(Some(Err(e))) | Err(e) => Attempt::Failed(e),
        }
    }

    /// True when v0.5 is refused for good (the agent does not list it): fall back to v0.4.
    fn v05_refused(&mut self) -> bool {
        if let Some(refused) = self.ex.known_v05_refused() {
            // No request: no need to leave the gate.
            return refused;
        }
        let deadline = Instant::now() + self.ex.config.request_timeout;
        let ex = &self.ex;
        // Out of the gate while it may wait for `/info`.
        self.sh.gate.leave();
        let refused = ex.block_on(ex.v05_refused(deadline));
        self.sh.gate.enter();
        refused.unwrap_or_else(|_| {
            // No runtime to ask with: as when `/info` cannot be fetched.
            ex.note_no_v05();
            true
        })
    }

    /// The agent's sampling rates go where [`Exporter::sampling_rate`] reads them.
    fn store_rates(&self, resp: &HttpResponse) {
        self.ex
            .keep_rates(RatesByService::from_response_body(&resp.body));
    }

    /// Delivers one part, retrying as the rules say, until it is delivered or dropped.
    fn send(&mut self, mut part: Part) {
        let mut retries = 0u32;
        let mut fallback_tried = false;
        loop {
            if self.sh.aborted() {
                return self.drop_part(&part, DropReason::Shutdown, "exporter stopped");
            }
            if let Some(at) = self.breaker.probe_at() {
                if self.sleep(at, true) == Wake::Aborted {
                    continue;
                }
                self.breaker.start_probe();
                self.publish_breaker();
            }
            let resp = match self.attempt(&part) {
                Attempt::Aborted => {
                    return self.drop_part(&part, DropReason::Shutdown, "exporter stopped")
                }
                Attempt::Failed(e) => {
                    WorkerCounters::bump(&self.sh.counters.requests_failed);
                    let now = Instant::now();
                    if self.breaker.failure(now, &mut self.jitter) == Tripped::Opened {
                        WorkerCounters::bump(&self.sh.counters.breaker_opened);
                        log::warn!(
                            "agent at {} unreachable ({e}); keeping traces up to queue_max_bytes and probing",
                            self.ex.url()
                        );
                    } else {
                        log::debug!("{e}");
                    }
                    self.publish_breaker();
                    WorkerCounters::bump(&self.sh.counters.retries);
                    if self.breaker.probe_at().is_none() {
                        let n = self.breaker.consecutive_failures();
                        let wait = self.policy.backoff(n, &mut self.jitter);
                        self.sleep(now + wait, true);
                    }
                    continue;
                }
                Attempt::Answered(resp) => resp,
            };
            // Any answer proves the agent reachable.
            self.breaker.success();
            self.publish_breaker();
            match classify_status(resp.status) {
                Verdict::Delivered => {
                    self.budget.earn();
                    self.outcome.sent(part.account, part.body.len() as u64);
                    self.store_rates(&resp);
                    return;
                }
                Verdict::Split => {
                    WorkerCounters::bump(&self.sh.counters.requests_failed);
                    match batch::split(&part) {
                        Ok((a, b)) => {
                            self.send(a);
                            self.send(b);
                        }
                        Err(e) => self.drop_part(
                            &part,
                            DropReason::Http4xx,
                            &format!("413 and the payload cannot be split: {e}"),
                        ),
                    }
                    return;
                }
                Verdict::Fail => {
                    WorkerCounters::bump(&self.sh.counters.requests_failed);
                    if resp.status == 404
                        && part.format == Format::V05
                        && !fallback_tried
                        && self.v05_refused()
                    {
                        fallback_tried = true;
                        match batch::convert(&part, Format::V04) {
                            Ok(p) => {
                                part = p;
                                continue;
                            }
                            Err(e) => {
                                return self.drop_part(
                                    &part,
                                    DropReason::Invalid,
                                    &format!("cannot convert to v0.4: {e}"),
                                )
                            }
                        }
                    }
                    // Isolation decodes each payload to find the malformed ones: only for parts
                    // sent without decoding (see `Part::decoded`).
                    if resp.status == 400 && !part.isolated && !part.decoded && part.items.len() > 1
                    {
                        let (fixed, rejected) =
                            with_processing(&self.ex, |process| batch::isolate(part, process));
                        self.reject(rejected);
                        match fixed {
                            Some(p) => {
                                part = p;
                                continue;
                            }
                            None => return,
                        }
                    }
                    let why = format!("agent answered {}", resp.status);
                    return self.drop_part(&part, DropReason::Http4xx, &why);
                }
                Verdict::Retry => {
                    WorkerCounters::bump(&self.sh.counters.requests_failed);
                    if retries < self.policy.max_retries && self.budget.try_spend() {
                        retries += 1;
                        WorkerCounters::bump(&self.sh.counters.retries);
                        let wait = resp
                            .header("retry-after")
                            .and_then(parse_retry_after)
                            .map(|d| d.min(MAX_RETRY_AFTER))
                            .unwrap_or_else(|| self.policy.backoff(retries, &mut self.jitter));
                        self.sleep(Instant::now() + wait, false);
                        continue;
                    }
                    let why = format!(
                        "agent answered {} after {retries} retries (max_retries {}, or retry budget spent)",
                        resp.status, self.policy.max_retries
                    );
                    return self.drop_part(&part, DropReason::RetriesExhausted, &why);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The public API
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Where `enqueue_traces` encodes before copying into the queue.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Largest scratch buffer kept between `enqueue_traces` calls.
const SCRATCH_KEEP: usize = 1 << 20;

impl Exporter {
    fn background(&self) -> Result<&Background> {
        self.background
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "no background side"))
    }

    /// Queues a payload (a msgpack array of traces in the input format) for the background worker
    /// and returns at once. The payload is copied: the caller keeps it.
    ///
    /// Only the outer array header is read here (the trace count), so a payload whose spans are
    /// malformed is caught later, by the worker or the agent, and dropped alone as
    /// [`DropReason::Invalid`]. An empty array is accepted and ignored.
    ///
    /// Errors: `Decode` (not an array of traces: nothing is counted), `Overflow` (the queue is at
    /// `queue_max_bytes`: dropped and counted), `Shutdown` (after [`Exporter::shutdown`]: dropped
    /// and counted).
    pub fn enqueue(&self, payload: &[u8]) -> Result<()> {
        let format = self.config.input_format;
        let (traces, header_len) = Item::header(format, payload)?;
        if traces == 0 {
            return Ok(());
        }
        let bg = self.background()?;
        match format {
            Format::V04 => bg.enqueue_copy(payload, (traces, header_len), 0),
            Format::V05 => bg.enqueue_item(Item {
                body: Bytes::copy_from_slice(payload),
                format,
                header_len,
                traces,
                spans: 0,
                bare: false,
            }),
        }
    }

    /// [`Exporter::enqueue`] taking an owned buffer (no copy).
    pub fn enqueue_bytes(&self, payload: Bytes) -> Result<()> {
        let item = Item::parse(self.config.input_format, payload, 0)?;
        if item.traces == 0 {
            return Ok(());
        }
        self.background()?.enqueue_item(item)
    }

    /// Queues trace chunks for the background worker: they are encoded (v0.4) into the queue here,
    /// then batched like payloads. Errors as for [`Exporter::enqueue`], plus `Encode`.
    pub fn enqueue_traces(&self, traces: &[Trace<'_>]) -> Result<()> {
        if traces.is_empty() {
            return Ok(());
        }
        let spans: usize = traces.iter().map(Vec::len).sum();
        let spans = u32::try_from(spans).unwrap_or(u32::MAX);
        let bg = self.background()?;
        // Encoded into a per-thread scratch buffer (warm memory), then copied into the queue.
        SCRATCH.with(|scratch| {
            let mut buf = scratch.take();
            buf.clear();
            let result = crate::encode::encode(Format::V04, traces, &mut buf)
                .and_then(|()| Item::header(Format::V04, &buf))
                .and_then(|header| bg.enqueue_copy(&buf, header, spans));
            if buf.capacity() <= SCRATCH_KEEP {
                scratch.set(buf);
            }
            result
        })
    }

    /// [`Exporter::enqueue_traces`] for chunks that are not in one slice (a binding's handles):
    /// each chunk is encoded where it is, without copying or viewing its spans first.
    pub fn enqueue_trace_refs(&self, traces: &[&Trace<'_>]) -> Result<()> {
        if traces.is_empty() {
            return Ok(());
        }
        let spans: usize = traces.iter().map(|t| t.len()).sum();
        let spans = u32::try_from(spans).unwrap_or(u32::MAX);
        let n = u32::try_from(traces.len())
            .map_err(|_| Error::invalid_argument("too many trace chunks in one call"))?;
        let bg = self.background()?;
        SCRATCH.with(|scratch| {
            let mut buf = scratch.take();
            buf.clear();
            let result = (|| {
                // Writing to a Vec cannot fail.
                let _ = rmp::encode::write_array_len(&mut buf, n);
                for t in traces {
                    // One chunk at a time, then drop its one-element array header (0x91).
                    let at = buf.len();
                    crate::encode::encode(Format::V04, std::slice::from_ref(*t), &mut buf)?;
                    buf.remove(at);
                }
                let header = Item::header(Format::V04, &buf)?;
                bg.enqueue_copy(&buf, header, spans)
            })();
            if buf.capacity() <= SCRATCH_KEEP {
                scratch.set(buf);
            }
            result
        })
    }

    /// Sends everything enqueued before this call now (without waiting for `batch_max_delay`) and
    /// waits until it is delivered or dropped, for at most `timeout`. Payloads enqueued meanwhile
    /// by other threads are not waited for.
    ///
    /// Errors: `Timeout` (still pending when `timeout` passed: they stay queued and go out
    /// later; the message says how many). Use [`Exporter::health`] for what was dropped.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.background()?.flush(timeout)
    }

    /// A snapshot of the background counters (see [`Health`]). Cheap: one short lock.
    pub fn health(&self) -> Health {
        match self.background() {
            Ok(b) => b.health(),
            Err(_) => Health::default(),
        }
    }

    /// Pauses this exporter's background worker at a safe point before `fork()` (waits at most
    /// about a second). Prefer the process-wide [`fork::before_fork`], which covers every exporter.
    pub fn before_fork(&self) {
        if let Some(b) = &self.background {
            b.root.before_fork();
        }
    }

    /// Resumes the worker paused by [`Exporter::before_fork`] (in the parent).
    pub fn after_fork_parent(&self) {
        if let Some(b) = &self.background {
            b.root.after_fork_parent();
        }
    }

    /// Resets this exporter in a forked child now (see [`fork`]); a no-op in the process that
    /// created it.
    pub fn after_fork_child(&self) {
        if let Some(b) = &self.background {
            b.root.after_fork_child();
        }
        self.reset_conn_after_fork();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn shared_state_is_send_and_sync() {
        assert_send_sync::<Shared>();
        assert_send_sync::<Background>();
    }

    #[test]
    fn gate_pause_waits_for_busy_worker() {
        let gate = Arc::new(Gate::default());
        let g = gate.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let left = Arc::new(AtomicBool::new(false));
        let l = left.clone();
        let worker = std::thread::spawn(move || {
            g.enter();
            tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            l.store(true, Ordering::SeqCst);
            g.leave();
            // Blocks here while paused.
            g.enter();
            g.leave();
        });
        rx.recv().unwrap();
        assert!(gate.pause(Duration::from_secs(5)));
        // Whatever the scheduling delays (a timed check failed on a loaded machine).
        assert!(left.load(Ordering::SeqCst), "waited for the busy section");
        assert!(!gate.busy.load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!gate.busy.load(Ordering::SeqCst), "stays out while paused");
        gate.resume();
        worker.join().unwrap();
        // A bounded wait when the worker never leaves.
        gate.busy.store(true, Ordering::SeqCst);
        assert!(!gate.pause(Duration::from_millis(20)));
    }
}

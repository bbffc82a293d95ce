//! [`StatsStage`]: the stats and P0-dropping stage as the exporter drives it, and the state
//! machine that turns it on and off with what the agent says in `/info`.
//!
//! | mode | `/info` unknown | `client_drop_p0s` and `/v0.6/stats` | otherwise |
//! |---|---|---|---|
//! | `Auto` | [`StatsState::WaitingForAgent`] (first send waits for `/info` once) | `Enabled`, P0s dropped | `NotSupportedByAgent` |
//! | `On` | `Enabled`, P0s kept | `Enabled`, P0s dropped | `Enabled`, P0s kept |
//! | `Off` | `Disabled` | `Disabled` | `Disabled` |
//!
//! The state is re-evaluated at every `/info` answer. Buckets computed while enabled are flushed
//! by the worker whatever the state is afterwards.

use super::flusher::{PayloadMeta, StatsSender, StatsWorker};
use super::top_level::compute_top_level;
use super::{
    Concentrator, StatsConfig, StatsMode, StatsState, CLIENT_COMPUTED_STATS_HEADER,
    CLIENT_COMPUTED_TOP_LEVEL_HEADER, DROPPED_P0_SPANS_HEADER, DROPPED_P0_TRACES_HEADER,
};
use crate::info::AgentInfo;
use crate::obfuscate::Obfuscator;
use crate::sample::{drop_p0s, DroppedP0};
use crate::span::Traces;
use crate::transport::AgentUrl;
use crate::Result;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

/// The stats stage of one exporter. `Send + Sync`.
#[derive(Debug)]
pub struct StatsStage {
    config: StatsConfig,
    state: AtomicU8,
    p0_dropping: AtomicBool,
    /// Set once the first send waited for `/info` (Auto mode), so later sends never wait.
    info_awaited: AtomicBool,
    /// Set by `shutdown`: stats stay off (nothing would flush them any more).
    shut: AtomicBool,
    worker: StatsWorker,
    dropped_traces: AtomicU64,
    dropped_spans: AtomicU64,
}

/// What the exporter hands the stage to build it.
#[derive(Debug)]
pub struct StageSetup<'a> {
    /// Agent address.
    pub url: &'a AgentUrl,
    /// Connect timeout of the stats transport.
    pub connect_timeout: Duration,
    /// Timeout of one stats request.
    pub request_timeout: Duration,
    /// Headers of every stats request (content type, Meta headers, test token).
    pub headers: HeaderMap,
    /// Payload metadata.
    pub meta: PayloadMeta,
    /// Obfuscator of the resources of stats keys (the exporter's stats obfuscator, with the
    /// user's settings); `None`: the agent's default settings.
    pub obfuscator: Option<Obfuscator>,
}

impl StatsStage {
    /// The stage for `config`; `None` when stats are off.
    pub fn new(config: &StatsConfig, setup: StageSetup<'_>) -> Result<Option<StatsStage>> {
        if config.mode == StatsMode::Off {
            return Ok(None);
        }
        config.validate()?;
        let lang = setup.meta.lang.clone();
        let sender = StatsSender::new(
            setup.url,
            setup.connect_timeout,
            setup.request_timeout,
            setup.headers,
            setup.meta,
        )?;
        let mut conc = Concentrator::new(config, super::now_ns(), &[], &[], &lang);
        if let Some(o) = setup.obfuscator {
            conc = conc.with_obfuscator(o);
        }
        let worker = StatsWorker::start(conc, sender, config.bucket_size)?;
        let state = match config.mode {
            StatsMode::On => StatsState::Enabled,
            _ => StatsState::WaitingForAgent,
        };
        Ok(Some(StatsStage {
            config: config.clone(),
            state: AtomicU8::new(state as u8),
            p0_dropping: AtomicBool::new(false),
            info_awaited: AtomicBool::new(false),
            shut: AtomicBool::new(false),
            worker,
            dropped_traces: AtomicU64::new(0),
            dropped_spans: AtomicU64::new(0),
        }))
    }

    /// The current state.
    pub fn state(&self) -> StatsState {
        StatsState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// True while stats are computed (spans must then go through [`StatsStage::process`]).
    pub fn computing(&self) -> bool {
        self.state() == StatsState::Enabled
    }

    /// True while P0 chunks are dropped.
    pub fn p0_dropping(&self) -> bool {
        self.computing() && self.p0_dropping.load(Ordering::Acquire)
    }

    /// True (once) when a send should wait for `/info` before processing: Auto mode, nothing
    /// known yet.
    pub(crate) fn should_await_info(&self) -> bool {
        self.config.mode == StatsMode::Auto
            && self.state() == StatsState::WaitingForAgent
            && !self.info_awaited.swap(true, Ordering::AcqRel)
    }

    /// Applies an `/info` answer (state, P0 dropping, peer tags, span kinds).
    pub(crate) fn on_agent_info(&self, info: &AgentInfo) {
        if self.shut.load(Ordering::Acquire) {
            return;
        }
        let allowed = info.client_stats();
        let new = match self.config.mode {
            StatsMode::Off => StatsState::Disabled,
            StatsMode::On => StatsState::Enabled,
            StatsMode::Auto if allowed => StatsState::Enabled,
            StatsMode::Auto => StatsState::NotSupportedByAgent,
        };
        self.worker.with_concentrator(|c| {
            c.set_agent_info(
                &self.config,
                &info.peer_tags,
                &info.span_kinds_stats_computed,
            )
        });
        self.p0_dropping.store(allowed, Ordering::Release);
        let old = self.state.swap(new as u8, Ordering::AcqRel);
        if old != new as u8 {
            log::info!(
                "client-side stats: {:?} -> {new:?} (P0 dropping {})",
                StatsState::from_u8(old),
                if allowed { "on" } else { "off" }
            );
        }
    }

    /// Computes stats for `traces` (marking top-level spans first unless the tracer did) and
    /// drops P0 chunks when allowed. `None` when stats are not computed (nothing was touched);
    /// else what was dropped, for the request headers.
    pub fn process(&self, traces: &mut Traces<'_>) -> Option<DroppedP0> {
        if !self.computing() {
            return None;
        }
        if !self.config.client_computed_top_level {
            for chunk in traces.iter_mut() {
                compute_top_level(chunk);
            }
        }
        self.worker.with_concentrator(|c| {
            for chunk in traces.iter() {
                c.add_chunk(chunk);
            }
        });
        let dropped = if self.p0_dropping() {
            drop_p0s(traces)
        } else {
            DroppedP0::default()
        };
        self.dropped_traces
            .fetch_add(dropped.traces, Ordering::Relaxed);
        self.dropped_spans
            .fetch_add(dropped.spans, Ordering::Relaxed);
        Some(dropped)
    }

    /// P0 chunks and spans dropped since creation.
    pub fn dropped_total(&self) -> DroppedP0 {
        DroppedP0 {
            traces: self.dropped_traces.load(Ordering::Relaxed),
            spans: self.dropped_spans.load(Ordering::Relaxed),
        }
    }

    /// Sends the due buckets now (all of them when `force`) within `timeout`.
    pub fn flush(&self, force: bool, timeout: Duration) -> Result<usize> {
        self.worker.flush(force, timeout)
    }

    /// Stops the flushing thread and sends every bucket within `timeout`. Stats are off from
    /// then on ([`StatsState::Disabled`]): later sends keep their P0 chunks and leave the stats
    /// to the agent, since nothing would flush client-side ones any more.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        self.shut.store(true, Ordering::Release);
        self.state
            .store(StatsState::Disabled as u8, Ordering::Release);
        self.worker.shutdown(timeout)
    }

    /// The worker (concentrator access, counters).
    pub fn worker(&self) -> &StatsWorker {
        &self.worker
    }
}

/// Adds the client-stats headers of a trace request: computed stats and top level, dropped
/// P0 counts.
pub(crate) fn add_stats_headers(h: &mut HeaderMap, dropped: DroppedP0) {
    let t = HeaderValue::from_static("true");
    h.insert(
        HeaderName::from_static(CLIENT_COMPUTED_STATS_HEADER),
        t.clone(),
    );
    h.insert(HeaderName::from_static(CLIENT_COMPUTED_TOP_LEVEL_HEADER), t);
    h.insert(
        HeaderName::from_static(DROPPED_P0_TRACES_HEADER),
        HeaderValue::from(dropped.traces),
    );
    h.insert(
        HeaderName::from_static(DROPPED_P0_SPANS_HEADER),
        HeaderValue::from(dropped.spans),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{Span, SAMPLING_PRIORITY_KEY};

    fn stage(mode: StatsMode) -> Option<StatsStage> {
        let url = AgentUrl::parse("http://127.0.0.1:1").unwrap();
        StatsStage::new(
            &StatsConfig {
                mode,
                ..Default::default()
            },
            StageSetup {
                url: &url,
                connect_timeout: Duration::from_millis(20),
                request_timeout: Duration::from_millis(20),
                headers: HeaderMap::new(),
                meta: PayloadMeta::default(),
                obfuscator: None,
            },
        )
        .unwrap()
    }

    fn info(drop: bool, stats: bool) -> AgentInfo {
        AgentInfo {
            client_drop_p0s: drop,
            endpoints: if stats {
                vec!["/v0.6/stats".into()]
            } else {
                vec![]
            },
            ..Default::default()
        }
    }

    fn p0_traces() -> Traces<'static> {
        let mut root = Span {
            span_id: 1,
            trace_id: 1,
            start: super::super::now_ns(),
            duration: 5,
            ..Default::default()
        };
        root.metrics.insert(SAMPLING_PRIORITY_KEY, 0.0);
        vec![vec![root]]
    }

    #[test]
    fn state_machine() {
        assert!(stage(StatsMode::Off).is_none());
        let s = stage(StatsMode::Auto).unwrap();
        assert_eq!(s.state(), StatsState::WaitingForAgent);
        assert!(s.should_await_info());
        assert!(!s.should_await_info(), "only once");
        let mut t = p0_traces();
        assert_eq!(s.process(&mut t), None);
        assert_eq!(t.len(), 1, "untouched while waiting");
        s.on_agent_info(&info(true, false));
        assert_eq!(s.state(), StatsState::NotSupportedByAgent);
        s.on_agent_info(&info(true, true));
        assert_eq!(s.state(), StatsState::Enabled);
        assert!(s.p0_dropping());
        let d = s.process(&mut t).unwrap();
        assert_eq!(
            d,
            DroppedP0 {
                traces: 1,
                spans: 1
            }
        );
        assert!(t.is_empty());
        assert_eq!(s.worker().with_concentrator(|c| c.spans_counted()), 1);
        assert_eq!(s.dropped_total().traces, 1);

        let on = stage(StatsMode::On).unwrap();
        assert_eq!(on.state(), StatsState::Enabled);
        assert!(!on.should_await_info());
        let mut t = p0_traces();
        assert_eq!(on.process(&mut t), Some(DroppedP0::default()));
        assert_eq!(t.len(), 1, "P0s kept until the agent allows dropping");
        on.on_agent_info(&info(false, false));
        assert_eq!(on.state(), StatsState::Enabled);
        assert!(!on.p0_dropping());

        // After shutdown stats stay off, whatever the agent says.
        // (Its buckets cannot be delivered: nothing listens on port 1.)
        assert!(s.shutdown(Duration::from_millis(200)).is_err());
        assert_eq!(s.state(), StatsState::Disabled);
        s.on_agent_info(&info(true, true));
        assert_eq!(s.state(), StatsState::Disabled);
        let mut t = p0_traces();
        assert_eq!(s.process(&mut t), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn headers() {
        let mut h = HeaderMap::new();
        add_stats_headers(
            &mut h,
            DroppedP0 {
                traces: 2,
                spans: 7,
            },
        );
        assert_eq!(h["datadog-client-computed-stats"], "true");
        assert_eq!(h["datadog-client-computed-top-level"], "true");
        assert_eq!(h["datadog-client-dropped-p0-traces"], "2");
        assert_eq!(h["datadog-client-dropped-p0-spans"], "7");
    }
}

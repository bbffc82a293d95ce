//! Client-side statistics: what the agent would compute from every span (hits, errors, durations,
//! latency distributions per service/name/resource/...), computed here so that the exporter may
//! drop unsampled (P0) chunks and the agent still sees complete numbers.
//!
//! The data's way, per chunk (driven by the exporter):
//!
//! ```text
//! top_level (mark `_top_level` unless the tracer did)  ->  eligibility (top-level, measured,
//! span.kind; no partial snapshots)  ->  key (normalized + obfuscated fields, peer tags)  ->
//! concentrator (10 s buckets by end time)  ->  bucket (hits, errors, duration, sketches)
//!   ... every bucket period:  concentrator.flush  ->  payload (msgpack)  ->  flusher (POST /v0.6/stats)
//! ```
//!
//! The Datadog agent (`pkg/trace/stats`, `pkg/trace/traceutil`) is the reference for every rule;
//! where libdatadog's `libdd-trace-stats` differs, the module that implements the rule says so.

pub mod bucket;
pub mod concentrator;
pub mod eligibility;
pub mod flusher;
pub mod key;
pub mod payload;
pub mod stage;
pub mod top_level;

pub use bucket::{Bucket, GroupStats};
pub use concentrator::Concentrator;
pub use flusher::StatsWorker;
pub use key::{KeyFields, PeerTagKeys};
pub use payload::{ClientGroupedStats, ClientStatsBucket, ClientStatsPayload};
pub use stage::StatsStage;

use crate::{Error, Result};
use std::time::Duration;

/// Default bucket size: the agent's 10 s.
pub const DEFAULT_BUCKET_SIZE: Duration = Duration::from_secs(10);
/// Default cap on distinct keys per bucket (libdatadog's default, just under a hash table's
/// growth threshold).
pub const DEFAULT_MAX_KEYS_PER_BUCKET: usize = 7000;
/// `span.kind` values that make a span eligible when neither the builder nor the agent says
/// otherwise.
pub const DEFAULT_SPAN_KINDS: &[&str] = &["client", "server", "producer", "consumer"];
/// The peer tag keys a current agent lists in `/info` by default (`peer_tags`; the agent's
/// `defaultPeerTags`). The exporter takes the list from `/info`; this copy is for tests,
/// benchmarks and tracers that configure peer tags without an agent.
pub const AGENT_DEFAULT_PEER_TAGS: &[&str] = &[
    "_dd.base_service",
    "amqp.destination",
    "amqp.exchange",
    "amqp.queue",
    "aws.queue.name",
    "bucketname",
    "cassandra.cluster",
    "db.cassandra.contact.points",
    "db.couchbase.seed.nodes",
    "db.hostname",
    "db.instance",
    "db.name",
    "db.system",
    "hazelcast.instance",
    "messaging.kafka.bootstrap.servers",
    "mongodb.db",
    "msmq.queue.path",
    "net.peer.name",
    "network.destination.name",
    "peer.hostname",
    "peer.service",
    "queuename",
    "rpc.service",
    "rulename",
    "server.address",
    "statemachinename",
    "streamname",
    "tablename",
    "topicname",
];
/// The stats endpoint.
pub const STATS_PATH: &str = crate::info::V06_STATS;
/// Value of every string field of the overflow key (see [`bucket`]).
pub const TRACER_BLOCKED_VALUE: &str = "tracer_blocked_value";

/// Request header: the client computed stats, the agent must not.
pub const CLIENT_COMPUTED_STATS_HEADER: &str = "datadog-client-computed-stats";
/// Request header: the `_top_level` marks on the spans are the client's, the agent must not
/// recompute them.
pub const CLIENT_COMPUTED_TOP_LEVEL_HEADER: &str = "datadog-client-computed-top-level";
/// Request header: chunks dropped because their priority was <= 0.
pub const DROPPED_P0_TRACES_HEADER: &str = "datadog-client-dropped-p0-traces";
/// Request header: spans dropped with those chunks (single-span-sampled survivors excluded).
pub const DROPPED_P0_SPANS_HEADER: &str = "datadog-client-dropped-p0-spans";

/// Whether client-side stats are wanted. Off by default (as in tracers, stats computation is
/// opt-in; `Auto` is the recommended opt-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatsMode {
    /// Compute stats and drop P0 chunks only while the agent allows it (`/info` has
    /// `client_drop_p0s: true` and lists `/v0.6/stats`). The first send waits for `/info` once.
    Auto,
    /// Always compute and send stats; P0 chunks are still dropped only while the agent allows it.
    On,
    /// Never compute stats (spans pass through untouched, the agent computes stats). Default.
    #[default]
    Off,
}

impl std::str::FromStr for StatsMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(StatsMode::Auto),
            "on" | "true" => Ok(StatsMode::On),
            "off" | "false" => Ok(StatsMode::Off),
            other => Err(Error::invalid_argument(format!(
                "stats mode {other:?}: expected auto, on or off"
            ))),
        }
    }
}

/// What an exporter currently does about stats (see [`crate::exporter::Exporter::stats_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StatsState {
    /// Configured off.
    Disabled = 0,
    /// Auto mode, the agent's `/info` is not known yet: spans go out untouched.
    WaitingForAgent = 1,
    /// Auto mode, the agent does not allow client-side stats: spans go out untouched.
    NotSupportedByAgent = 2,
    /// Stats are computed; P0 chunks are dropped too when `p0_dropping` is true.
    Enabled = 3,
}

impl StatsState {
    pub(crate) fn from_u8(v: u8) -> StatsState {
        match v {
            1 => StatsState::WaitingForAgent,
            2 => StatsState::NotSupportedByAgent,
            3 => StatsState::Enabled,
            _ => StatsState::Disabled,
        }
    }
}

/// Stats configuration (set through the exporter builder's `stats_*` options).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsConfig {
    /// Auto / on / off (default off).
    pub mode: StatsMode,
    /// Bucket size (default 10 s); also the flush period.
    pub bucket_size: Duration,
    /// Peer tag keys added to those the agent lists in `/info`.
    pub peer_tags_extra: Vec<String>,
    /// `span.kind` values that make a span eligible. `None`: the agent's
    /// `span_kinds_stats_computed`, else [`DEFAULT_SPAN_KINDS`]. `Some(empty)`: kinds never
    /// make a span eligible.
    pub span_kinds: Option<Vec<String>>,
    /// Distinct keys per bucket before spans go to the overflow key.
    pub max_keys_per_bucket: usize,
    /// True when the tracer marked top-level spans itself (`_top_level` / `_dd.top_level`):
    /// they are then trusted instead of computed per chunk.
    pub client_computed_top_level: bool,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            mode: StatsMode::Off,
            bucket_size: DEFAULT_BUCKET_SIZE,
            peer_tags_extra: Vec::new(),
            span_kinds: None,
            max_keys_per_bucket: DEFAULT_MAX_KEYS_PER_BUCKET,
            client_computed_top_level: false,
        }
    }
}

impl StatsConfig {
    /// Checks the values (`InvalidArgument` when the bucket is not a whole number of
    /// milliseconds >= 1 ms, or the key cap is 0).
    pub fn validate(&self) -> Result<()> {
        let ns = self.bucket_size.as_nanos();
        if ns < 1_000_000 || ns % 1_000_000 != 0 || ns > 3_600_000_000_000 {
            return Err(Error::invalid_argument(format!(
                "stats_bucket_size must be a whole number of milliseconds between 1 ms and 1 h, got {:?}",
                self.bucket_size
            )));
        }
        if self.max_keys_per_bucket == 0 {
            return Err(Error::invalid_argument(
                "stats_max_keys_per_bucket must be > 0",
            ));
        }
        Ok(())
    }

    /// The span kinds in force given what the agent lists.
    pub fn effective_span_kinds(&self, agent: &[String]) -> Vec<String> {
        match &self.span_kinds {
            Some(k) => k.iter().map(|s| s.to_ascii_lowercase()).collect(),
            None if !agent.is_empty() => agent.iter().map(|s| s.to_ascii_lowercase()).collect(),
            None => DEFAULT_SPAN_KINDS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Current time in nanoseconds since the Unix epoch (0 before it).
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_and_kinds() {
        assert!(StatsConfig::default().validate().is_ok());
        let bad = StatsConfig {
            bucket_size: Duration::from_micros(1500),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = StatsConfig {
            max_keys_per_bucket: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let c = StatsConfig::default();
        assert_eq!(c.effective_span_kinds(&[]), DEFAULT_SPAN_KINDS);
        assert_eq!(c.effective_span_kinds(&["Server".into()]), ["server"]);
        let c = StatsConfig {
            span_kinds: Some(vec![]),
            ..Default::default()
        };
        assert!(c.effective_span_kinds(&["server".into()]).is_empty());
        assert_eq!("on".parse::<StatsMode>().unwrap(), StatsMode::On);
        assert!("maybe".parse::<StatsMode>().is_err());
        assert_eq!(StatsState::from_u8(3), StatsState::Enabled);
        assert_eq!(StatsState::from_u8(9), StatsState::Disabled);
    }
}

//! Agent discovery: what `GET /info` says about the agent, kept per exporter (two exporters aimed at
//! two agents never see each other's answer).
//!
//! The exporter refreshes it every [`INFO_REFRESH_INTERVAL`] and as soon as a response carries a
//! `Datadog-Agent-State` header that differs from the last one seen.

use crate::{Error, ErrorKind, Result};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// Discovery endpoint.
pub const INFO_PATH: &str = "/info";
/// How often the exporter refreshes `/info`.
pub const INFO_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Response header whose change means the agent's configuration changed.
pub const AGENT_STATE_HEADER: &str = "datadog-agent-state";

/// The v0.4 traces endpoint (every agent serves it).
pub const V04_TRACES: &str = "/v0.4/traces";
/// The v0.5 traces endpoint.
pub const V05_TRACES: &str = "/v0.5/traces";
/// The client-side stats endpoint.
pub const V06_STATS: &str = "/v0.6/stats";
/// The data streams endpoint.
pub const PIPELINE_STATS: &str = "/v0.1/pipeline_stats";

/// What the agent says about itself. Unknown fields are ignored; missing ones take their default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AgentInfo {
    /// Agent version.
    pub version: Option<String>,
    /// Endpoints the agent serves (`/v0.4/traces`, `/v0.6/stats`, ...).
    pub endpoints: Vec<String>,
    /// True when the agent lets the client drop P0 traces (with client-side stats).
    pub client_drop_p0s: bool,
    /// `span.kind` values for which stats are computed.
    pub span_kinds_stats_computed: Vec<String>,
    /// Peer tags that become part of stats keys.
    pub peer_tags: Vec<String>,
    /// Agent feature flags.
    pub feature_flags: Vec<String>,
    /// Version of the agent's obfuscator.
    pub obfuscation_version: Option<u32>,
    /// The agent's configuration (free-form).
    pub config: serde_json::Value,
}

impl AgentInfo {
    /// Parses a `/info` body.
    pub fn parse(body: &[u8]) -> Result<AgentInfo> {
        serde_json::from_slice(body).map_err(|e| {
            Error::new(
                ErrorKind::Decode,
                format!("invalid agent /info response: {e}"),
            )
        })
    }

    /// True when the agent lists `endpoint`.
    pub fn has_endpoint(&self, endpoint: &str) -> bool {
        self.endpoints.iter().any(|e| e == endpoint)
    }

    /// True when v0.5 trace payloads may be sent.
    pub fn supports_v05(&self) -> bool {
        self.has_endpoint(V05_TRACES)
    }

    /// True when the client may compute stats and drop P0 traces.
    pub fn client_stats(&self) -> bool {
        self.client_drop_p0s && self.has_endpoint(V06_STATS)
    }

    /// True when data streams payloads may be sent.
    pub fn data_streams(&self) -> bool {
        self.has_endpoint(PIPELINE_STATS)
    }
}

/// One exporter's discovery state.
#[derive(Debug, Default)]
pub(crate) struct InfoState {
    /// The last successful answer.
    pub info: Option<std::sync::Arc<AgentInfo>>,
    /// When the last fetch (successful or not) ended.
    pub fetched_at: Option<Instant>,
    /// The last `Datadog-Agent-State` value seen.
    pub agent_state: Option<String>,
    /// Set when the agent state changed: refresh at the next occasion.
    pub stale: bool,
    /// A fetch is running.
    pub fetching: bool,
}

/// After a failed fetch, wait this long before trying again (the agent may not be up yet).
const RETRY_FAILED_FETCH_AFTER: Duration = Duration::from_secs(10);

impl InfoState {
    /// True when a fetch should start now.
    pub fn needs_refresh(&self, now: Instant) -> bool {
        if self.fetching {
            return false;
        }
        if self.stale {
            return true;
        }
        match (self.fetched_at, &self.info) {
            (None, _) => true,
            (Some(at), Some(_)) => now.duration_since(at) >= INFO_REFRESH_INTERVAL,
            (Some(at), None) => now.duration_since(at) >= RETRY_FAILED_FETCH_AFTER,
        }
    }

    /// Records a response's `Datadog-Agent-State`; true when it changed from a known value.
    pub fn observe_state(&mut self, state: Option<&str>) -> bool {
        let Some(state) = state else { return false };
        match &self.agent_state {
            Some(old) if old == state => false,
            old => {
                let changed = old.is_some();
                self.agent_state = Some(state.to_string());
                if changed {
                    self.stale = true;
                }
                changed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_agent_answer() {
        let body = br#"{"version": "7.60.0", "endpoints": ["/v0.4/traces", "/v0.5/traces", "/v0.6/stats"],
            "client_drop_p0s": true, "span_kinds_stats_computed": ["server"], "peer_tags": ["db.name"],
            "feature_flags": ["x"], "obfuscation_version": 1, "config": {"statsd_port": 8125},
            "unknown_field": [1, 2]}"#;
        let info = AgentInfo::parse(body).unwrap();
        assert_eq!(info.version.as_deref(), Some("7.60.0"));
        assert!(info.supports_v05());
        assert!(info.client_stats());
        assert!(!info.data_streams());
        assert_eq!(info.peer_tags, ["db.name"]);
        assert_eq!(info.obfuscation_version, Some(1));
        assert_eq!(info.config["statsd_port"], 8125);

        let info = AgentInfo::parse(br#"{"endpoints": ["/v0.4/traces", "/v0.6/stats"]}"#).unwrap();
        assert!(!info.supports_v05());
        assert!(!info.client_stats(), "client_drop_p0s defaults to false");
        assert_eq!(
            AgentInfo::parse(b"not json").unwrap_err().kind(),
            ErrorKind::Decode
        );
    }

    #[test]
    fn refresh_schedule() {
        let t0 = Instant::now();
        let mut s = InfoState::default();
        assert!(s.needs_refresh(t0));
        s.fetching = true;
        assert!(!s.needs_refresh(t0));
        s.fetching = false;
        s.fetched_at = Some(t0);
        s.info = Some(Default::default());
        assert!(!s.needs_refresh(t0 + Duration::from_secs(60)));
        assert!(s.needs_refresh(t0 + INFO_REFRESH_INTERVAL));
        assert!(!s.observe_state(Some("a")), "first state is not a change");
        assert!(!s.needs_refresh(t0));
        assert!(!s.observe_state(Some("a")));
        assert!(!s.observe_state(None));
        assert!(s.observe_state(Some("b")));
        assert!(s.needs_refresh(t0));
        // A failed fetch is retried, but not at every send.
        let mut s = InfoState {
            fetched_at: Some(t0),
            ..Default::default()
        };
        assert!(!s.needs_refresh(t0 + Duration::from_secs(1)));
        assert!(s.needs_refresh(t0 + RETRY_FAILED_FETCH_AFTER));
        s.stale = true;
        assert!(s.needs_refresh(t0));
    }
}

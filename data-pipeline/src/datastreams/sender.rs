//! Delivery of a finished payload to the agent, behind a small trait so the flush logic can be
//! tested without a network.

use super::processor::PIPELINE_STATS_PATH;
use crate::{Error, ErrorKind, Result};
use std::time::Duration;

/// Posts one gzipped pipeline-stats payload to the agent's `/v0.1/pipeline_stats` and returns
/// the HTTP status. Network errors and timeouts are errors; an HTTP error status is not.
pub(crate) trait PayloadSender: Send + Sync {
    /// Sends `body` with `headers`.
    fn send(&self, body: Vec<u8>, headers: &[(String, String)]) -> Result<u16>;
}

/// The HTTP sender (placeholder until the shared transport lands).
pub(crate) struct HttpSender {
    url: String,
    _timeout: Duration,
}

impl HttpSender {
    /// A sender to `agent_url` with a per-request `timeout`.
    pub(crate) fn new(agent_url: &str, timeout: Duration) -> Result<Self> {
        Ok(HttpSender {
            url: agent_url.to_owned(),
            _timeout: timeout,
        })
    }
}

impl PayloadSender for HttpSender {
    fn send(&self, _body: Vec<u8>, _headers: &[(String, String)]) -> Result<u16> {
        Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "no HTTP transport yet for {}{PIPELINE_STATS_PATH}",
                self.url
            ),
        ))
    }
}

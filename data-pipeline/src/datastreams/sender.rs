//! Delivery of a finished payload to the agent, behind a small trait so the flush logic can be
//! tested without a network.
//!
//! [`HttpSender`] is a stop-gap until the shared `crate::transport` client lands: a reqwest
//! client (HTTP/1.1 over TCP, or over a unix socket for `unix://` agent URLs) driven by its own
//! current-thread tokio runtime, called from the processor's flush thread.

use super::processor::PIPELINE_STATS_PATH;
use crate::{Error, ErrorKind, Result};
use std::time::Duration;

/// Posts one gzipped pipeline-stats payload to the agent's `/v0.1/pipeline_stats` and returns
/// the HTTP status. Network errors and timeouts are errors; an HTTP error status is not.
pub(crate) trait PayloadSender: Send + Sync {
    /// Sends `body` with `headers`.
    fn send(&self, body: Vec<u8>, headers: &[(String, String)]) -> Result<u16>;
}

/// Where the agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `http://host:port` (no trailing slash).
    Http(String),
    /// A unix socket path.
    Unix(std::path::PathBuf),
}

fn parse_agent_url(url: &str) -> Result<Target> {
    let bad = |why: &str| Error::invalid_argument(format!("agent URL {url:?}: {why}"));
    if let Some(path) = url.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(bad("a unix socket path must be absolute (unix:///path)"));
        }
        return Ok(Target::Unix(path.into()));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "http" {
        return Err(bad("only http:// and unix:// are supported"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(Target::Http(url.trim_end_matches('/').to_owned()))
}

/// The HTTP sender.
pub(crate) struct HttpSender {
    /// Always `Some` until drop.
    runtime: Option<tokio::runtime::Runtime>,
    client: reqwest::Client,
    endpoint: String,
    timeout: Duration,
}

impl HttpSender {
    /// A sender to `agent_url` (`http://host:port` or `unix:///path`) whose requests (connect,
    /// send, answer) take at most `timeout`.
    pub(crate) fn new(agent_url: &str, timeout: Duration) -> Result<Self> {
        let target = parse_agent_url(agent_url)?;
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("data-pipeline/", env!("CARGO_PKG_VERSION")));
        let endpoint = match &target {
            Target::Http(base) => format!("{base}{PIPELINE_STATS_PATH}"),
            Target::Unix(path) => {
                #[cfg(unix)]
                {
                    builder = builder.unix_socket(path.clone());
                }
                #[cfg(not(unix))]
                {
                    let _ = path;
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        "unix sockets are not supported on this platform",
                    ));
                }
                format!("http://localhost{PIPELINE_STATS_PATH}")
            }
        };
        let client = builder.build().map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot create the HTTP client: {e}"),
            )
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("cannot create a tokio runtime: {e}"),
                )
            })?;
        Ok(HttpSender {
            runtime: Some(runtime),
            client,
            endpoint,
            timeout,
        })
    }

    async fn post(&self, body: Vec<u8>, headers: &[(String, String)]) -> Result<u16> {
        let mut req = self.client.post(&self.endpoint).body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let exchange = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            // Read the (small) answer so the connection can be reused.
            let _ = resp.bytes().await;
            Ok::<u16, reqwest::Error>(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "POST {}: no answer within {:?}",
                    self.endpoint, self.timeout
                ),
            )),
            Ok(Ok(status)) => Ok(status),
            Ok(Err(e)) => {
                let kind = if e.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Network
                };
                let mut msg = format!("POST {}: {e}", self.endpoint);
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    msg.push_str(": ");
                    msg.push_str(&s.to_string());
                    source = s.source();
                }
                Err(Error::new(kind, msg))
            }
        }
    }
}

impl PayloadSender for HttpSender {
    fn send(&self, body: Vec<u8>, headers: &[(String, String)]) -> Result<u16> {
        let Some(runtime) = &self.runtime else {
            return Err(Error::new(ErrorKind::Shutdown, "the sender is shut down"));
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Called from inside an async runtime (an async host): block on a scoped thread.
            std::thread::scope(|s| {
                s.spawn(|| runtime.block_on(self.post(body, headers)))
                    .join()
                    .unwrap_or_else(|_| {
                        Err(Error::new(
                            ErrorKind::Internal,
                            "the sending thread panicked",
                        ))
                    })
            })
        } else {
            runtime.block_on(self.post(body, headers))
        }
    }
}

impl Drop for HttpSender {
    fn drop(&mut self) {
        // Dropping a runtime from inside another one panics; shutdown_background never does.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_urls() {
        assert_eq!(
            parse_agent_url("http://127.0.0.1:8126/").unwrap(),
            Target::Http("http://127.0.0.1:8126".into())
        );
        assert_eq!(
            parse_agent_url("unix:///var/run/datadog/apm.socket").unwrap(),
            Target::Unix("/var/run/datadog/apm.socket".into())
        );
        for bad in [
            "",
            "localhost:8126",
            "unix://relative.sock",
            "ftp://x",
            "http://",
        ] {
            assert_eq!(
                parse_agent_url(bad).unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn usable_and_droppable_inside_an_async_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s =
                HttpSender::new("unix:///nonexistent/dp-dsm.sock", Duration::from_secs(2)).unwrap();
            assert_eq!(s.send(vec![], &[]).unwrap_err().kind(), ErrorKind::Network);
            drop(s);
            let p = crate::datastreams::Processor::new(crate::datastreams::Config {
                agent_url: "unix:///nonexistent/dp-dsm.sock".into(),
                ..Default::default()
            })
            .unwrap();
            p.set_checkpoint(None, &["type:x"], 1);
            drop(p); // final flush fails (no agent), the thread stops, nothing panics
        });
    }

    #[test]
    fn unreachable_socket_fails_fast_as_a_network_error() {
        let s = HttpSender::new("unix:///nonexistent/dp-dsm.sock", Duration::from_secs(2)).unwrap();
        let t = std::time::Instant::now();
        let e = s.send(vec![1, 2, 3], &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network, "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}

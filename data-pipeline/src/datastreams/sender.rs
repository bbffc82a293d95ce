//! Delivery of a finished payload to the agent, behind a small trait so the flush logic can be
//! tested without a network.
//!
//! [`HttpSender`] posts through the shared [`crate::transport`] client (HTTP/1.1 over TCP, or
//! over a unix socket for `unix://` agent URLs) on its own [`Transport`] runtime, driven by the
//! processor's flush thread (or by the thread calling `flush` / `shutdown`).
//!
//! Fork: a forked child's processor gets a new sender ([`PayloadSender::renew`]); the HTTP
//! sender's transport is also per process (a [`ForkLocal`], built at the first send), so the
//! parent's runtime and pooled connections are never used in a child.

use super::processor::PIPELINE_STATS_PATH;
use crate::exporter::fork::ForkLocal;
use crate::transport::{AgentUrl, Transport};
use crate::{Error, Result};
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// Posts one gzipped pipeline-stats payload to the agent's `/v0.1/pipeline_stats` and returns
/// the HTTP status. Network errors and timeouts are errors; an HTTP error status is not.
pub(crate) trait PayloadSender: Send + Sync {
    /// Sends `body` with `headers`; the whole exchange takes at most `timeout`.
    fn send(&self, body: Vec<u8>, headers: &HeaderMap, timeout: Duration) -> Result<u16>;

    /// A sender to the same place for a forked child: it must not use anything of this one that
    /// does not survive a fork (runtime, connections, locks) and must not fail (what it needs is
    /// built at its first send).
    fn renew(&self) -> Box<dyn PayloadSender>;
}

/// Turns `(name, value)` pairs into a header map; a name or value that cannot be sent is an
/// `InvalidArgument` error naming it.
pub(crate) fn header_map(headers: &[(String, String)]) -> Result<HeaderMap> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            Error::invalid_argument(format!("{name:?} is not a valid HTTP header name"))
        })?;
        let v = HeaderValue::from_str(value).map_err(|_| {
            Error::invalid_argument(format!(
                "header {name}: {value:?} cannot be sent as an HTTP header value (visible ASCII only)"
            ))
        })?;
        map.append(n, v);
    }
    Ok(map)
}

/// The HTTP sender: one [`Transport`] (runtime + pooled client) aimed at the agent.
pub(crate) struct HttpSender {
    /// Per process (see the module docs).
    transport: ForkLocal<Transport>,
    url: AgentUrl,
    connect_timeout: Duration,
}

impl HttpSender {
    /// A sender to `url` whose connection attempts take at most `connect_timeout`.
    pub(crate) fn new(url: &AgentUrl, connect_timeout: Duration) -> Result<Self> {
        Ok(HttpSender {
            transport: ForkLocal::new(Transport::new(url, connect_timeout)?),
            url: url.clone(),
            connect_timeout,
        })
    }
}

impl PayloadSender for HttpSender {
    fn renew(&self) -> Box<dyn PayloadSender> {
        Box::new(HttpSender {
            transport: ForkLocal::empty(),
            url: self.url.clone(),
            connect_timeout: self.connect_timeout,
        })
    }

    fn send(&self, body: Vec<u8>, headers: &HeaderMap, timeout: Duration) -> Result<u16> {
        let transport = self
            .transport
            .get(|_| Transport::new(&self.url, self.connect_timeout))?;
        let client = transport.client();
        let fut = client.request(
            reqwest::Method::POST,
            PIPELINE_STATS_PATH,
            headers.clone(),
            Some(Bytes::from(body)),
            timeout,
        );
        // `block_on` moves to a scoped thread when called from inside an async runtime.
        transport.block_on(fut).map(|resp| resp.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn sender(url: &str) -> HttpSender {
        HttpSender::new(&AgentUrl::parse(url).unwrap(), Duration::from_secs(2)).unwrap()
    }

    #[test]
    fn header_maps_validate() {
        let m = header_map(&[("X-A".into(), "1".into()), ("x-a".into(), "2".into())]).unwrap();
        assert_eq!(m.get_all("x-a").iter().count(), 2);
        for bad in [
            ("bad name".to_owned(), "v".to_owned()),
            ("X".into(), "a\nb".into()),
        ] {
            assert_eq!(
                header_map(&[bad]).unwrap_err().kind(),
                ErrorKind::InvalidArgument
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
            let s = sender("unix:///nonexistent/dp-dsm.sock");
            assert_eq!(
                s.send(vec![], &HeaderMap::new(), Duration::from_secs(2))
                    .unwrap_err()
                    .kind(),
                ErrorKind::Network
            );
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
        let s = sender("unix:///nonexistent/dp-dsm.sock");
        let t = std::time::Instant::now();
        let e = s
            .send(vec![1, 2, 3], &HeaderMap::new(), Duration::from_secs(2))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network, "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}

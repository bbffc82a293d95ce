//! The HTTP client (TCP or unix socket) and the tokio runtime that drives it.
//!
//! [`Transport::new`] is the one place where a runtime and a client are created: a later fork-safety
//! change compares [`Transport::created_pid`] with the current pid and builds a fresh `Transport` in
//! the child (the parent's runtime and pooled sockets must then be leaked, not dropped).

use super::url::AgentUrl;
use crate::{Error, ErrorKind, Result};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use std::future::Future;
use std::time::Duration;

/// Responses larger than this are cut (agents answer a few hundred bytes).
pub const MAX_RESPONSE_BODY: usize = 4 << 20;

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A current-thread tokio runtime plus an HTTP client bound to one agent address.
///
/// `Sync`: several threads may call [`Transport::block_on`] at once; tokio lets one of them drive
/// the I/O while the others' futures are polled on their own threads.
pub struct Transport {
    /// Always `Some` until drop (taken there to shut it down without blocking).
    runtime: Option<tokio::runtime::Runtime>,
    client: HttpClient,
    created_pid: u32,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("url", &self.client.url)
            .field("created_pid", &self.created_pid)
            .finish()
    }
}

impl Transport {
    /// Creates the runtime and the client for `url`.
    pub fn new(url: &AgentUrl, connect_timeout: Duration) -> Result<Transport> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("cannot create a tokio runtime: {e}"),
                )
            })?;
        let client = HttpClient::new(url, connect_timeout)?;
        Ok(Transport {
            runtime: Some(runtime),
            client,
            created_pid: std::process::id(),
        })
    }

    /// The client (cheap to clone: it shares the connection pool).
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// The process id that created this transport.
    pub fn created_pid(&self) -> u32 {
        self.created_pid
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        match &self.runtime {
            Some(rt) => rt,
            // Only `drop` takes the runtime; nothing can call a method after that.
            None => unreachable!("runtime used after drop"),
        }
    }

    /// Runs `fut` to completion on this runtime. Safe to call from inside another tokio runtime
    /// (an async tracer): the future then runs on a short-lived scoped thread instead of
    /// panicking.
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| match s.spawn(|| self.runtime().block_on(fut)).join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            })
        } else {
            self.runtime().block_on(fut)
        }
    }
}

impl Drop for Transport {
    /// Never blocks: pooled connections are closed and a DNS lookup still running on the blocking
    /// pool is left to finish on its own.
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// An HTTP/1.1 client aimed at one agent, over TCP or a unix socket. Clones share connections.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    url: AgentUrl,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("url", &self.url)
            .finish()
    }
}

/// An HTTP response with its body read in full (up to [`MAX_RESPONSE_BODY`]).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl HttpClient {
    /// A client for `url` with a connect timeout. Proxies from the environment are ignored: an
    /// agent is local.
    pub fn new(url: &AgentUrl, connect_timeout: Duration) -> Result<HttpClient> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(concat!("data-pipeline/", env!("CARGO_PKG_VERSION")));
        if let AgentUrl::Unix { path } = url {
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
        }
        let client = builder.build().map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot create the HTTP client: {e}"),
            )
        })?;
        Ok(HttpClient {
            client,
            url: url.clone(),
        })
    }

    /// The agent address.
    pub fn url(&self) -> &AgentUrl {
        &self.url
    }

    /// Sends one request to endpoint `path` and reads the whole response, all within `timeout`.
    /// Errors are `Timeout` or `Network`; an HTTP error status is a response, not an error.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<HttpResponse> {
        let what = format!("{method} {}{path}", self.url);
        let mut req = self
            .client
            .request(method, self.url.request_url(path))
            .headers(headers);
        if let Some(body) = body {
            req = req.body(body);
        }
        let exchange = async {
            let mut resp = req.send().await?;
            let status = resp.status().as_u16();
            let headers = std::mem::take(resp.headers_mut());
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                let room = MAX_RESPONSE_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() == MAX_RESPONSE_BODY {
                    break;
                }
            }
            Ok::<_, reqwest::Error>(HttpResponse {
                status,
                headers,
                body: Bytes::from(body),
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("{what}: no complete response within {timeout:?}"),
            )),
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(network_error(&what, &e)),
        }
    }
}

/// Maps a reqwest error to `Timeout` or `Network`, with the whole cause chain in the message.
fn network_error(what: &str, e: &reqwest::Error) -> Error {
    let mut msg = format!("{what}: ");
    if e.is_connect() {
        msg.push_str("cannot connect: ");
    }
    msg.push_str(&e.to_string());
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Network
    };
    Error::new(kind, msg)
}

//! Getting bytes to an agent: addresses ([`url`]), the HTTP client over TCP or a unix socket with its
//! runtime ([`client`]) and the retry rules ([`retry`]).

pub mod client;
pub mod retry;
pub mod url;

pub use client::{HttpClient, HttpResponse, Transport};
pub use retry::RetryPolicy;
pub use url::AgentUrl;

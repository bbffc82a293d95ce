//! Agent URLs: `http://host[:port][/prefix]`, `unix:///path/to/socket` (and `https://` with the
//! `https` cargo feature), and the resolution tracers expect from the environment.
//!
//! Resolution from the environment happens only when the tracer asks for it
//! ([`AgentUrl::from_env`]); nothing else in the crate reads these variables.

use crate::{Error, ErrorKind, Result};
use std::fmt;
use std::path::{Path, PathBuf};

/// Host used when neither a URL nor `DD_AGENT_HOST` is given.
pub const DEFAULT_AGENT_HOST: &str = "localhost";
/// Trace port used when neither a URL nor `DD_TRACE_AGENT_PORT` is given.
pub const DEFAULT_AGENT_PORT: u16 = 8126;
/// The agent's default unix socket for traces.
pub const DEFAULT_AGENT_SOCKET: &str = "/var/run/datadog/apm.socket";

/// Environment variable holding a full agent URL (wins over host and port).
pub const ENV_AGENT_URL: &str = "DD_TRACE_AGENT_URL";
/// Environment variable holding the agent host.
pub const ENV_AGENT_HOST: &str = "DD_AGENT_HOST";
/// Environment variable holding the agent's trace port.
pub const ENV_AGENT_PORT: &str = "DD_TRACE_AGENT_PORT";

/// The URL scheme of a TCP agent address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS (needs the `https` cargo feature to be used).
    Https,
}

/// Where the agent listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentUrl {
    /// An HTTP(S) endpoint over TCP.
    Tcp {
        /// `http` or `https`.
        scheme: Scheme,
        /// Host name or IP address; IPv6 addresses are kept in brackets (`[::1]`).
        host: String,
        /// TCP port.
        port: u16,
        /// Path prefix put before every endpoint path (`""` or `/something`, no trailing `/`).
        prefix: String,
    },
    /// A unix domain socket.
    Unix {
        /// Absolute path of the socket.
        path: PathBuf,
    },
}

impl Default for AgentUrl {
    /// `http://localhost:8126`.
    fn default() -> Self {
        AgentUrl::Tcp {
            scheme: Scheme::Http,
            host: DEFAULT_AGENT_HOST.to_string(),
            port: DEFAULT_AGENT_PORT,
            prefix: String::new(),
        }
    }
}

impl fmt::Display for AgentUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentUrl::Tcp {
                scheme,
                host,
                port,
                prefix,
            } => {
                let scheme = match scheme {
                    Scheme::Http => "http",
                    Scheme::Https => "https",
                };
                write!(f, "{scheme}://{host}:{port}{prefix}")
            }
            AgentUrl::Unix { path } => write!(f, "unix://{}", path.display()),
        }
    }
}

impl std::str::FromStr for AgentUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        AgentUrl::parse(s)
    }
}

impl AgentUrl {
    /// Parses `http://host[:port][/prefix]`, `https://...` or `unix:///absolute/path`.
    ///
    /// A missing port means 80 (`http`) or 443 (`https`), as in any URL. Query strings, fragments
    /// and user info are refused. Errors are `InvalidArgument` (`Unsupported` for `https` without
    /// the `https` feature).
    pub fn parse(url: &str) -> Result<AgentUrl> {
        let url = url.trim();
        let bad = |why: &str| Error::invalid_argument(format!("invalid agent URL {url:?}: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected http://host:port or unix:///path"))?;
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "unix" => {
                if !rest.starts_with('/') {
                    return Err(bad("a unix socket path must be absolute (unix:///path)"));
                }
                if rest.len() == 1 || rest.contains('\0') {
                    return Err(bad("empty or invalid socket path"));
                }
                Ok(AgentUrl::Unix {
                    path: PathBuf::from(rest),
                })
            }
            "http" | "https" => {
                let scheme = if scheme == "http" {
                    Scheme::Http
                } else {
                    if !cfg!(feature = "https") {
                        return Err(Error::new(
                            ErrorKind::Unsupported,
                            format!(
                                "agent URL {url:?}: https needs data-pipeline's `https` feature"
                            ),
                        ));
                    }
                    Scheme::Https
                };
                if rest.contains(['?', '#']) {
                    return Err(bad("query strings and fragments are not allowed"));
                }
                let (authority, path) = match rest.find('/') {
                    Some(i) => rest.split_at(i),
                    None => (rest, ""),
                };
                if authority.contains('@') {
                    return Err(bad("user info is not allowed"));
                }
                let (host, port) = split_host_port(authority).map_err(&bad)?;
                let port = match port {
                    Some(p) => p,
                    None if scheme == Scheme::Http => 80,
                    None => 443,
                };
                let prefix = path.trim_end_matches('/');
                if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(bad("invalid characters in the path"));
                }
                Ok(AgentUrl::Tcp {
                    scheme,
                    host,
                    port,
                    prefix: prefix.to_string(),
                })
            }
            _ => Err(bad("unknown scheme (expected http, https or unix)")),
        }
    }

    /// Resolves the agent address the way tracers do, from the process environment:
    /// `DD_TRACE_AGENT_URL` if set and not empty; else, when neither `DD_AGENT_HOST` nor
    /// `DD_TRACE_AGENT_PORT` is set and the agent's default socket
    /// ([`DEFAULT_AGENT_SOCKET`]) exists, that socket; else `http://DD_AGENT_HOST:DD_TRACE_AGENT_PORT`
    /// with `localhost` and `8126` as defaults. An invalid value is an `InvalidArgument` error that
    /// names the variable.
    pub fn from_env() -> Result<AgentUrl> {
        Self::resolve(|name| std::env::var(name).ok(), |p| p.exists())
    }

    /// [`AgentUrl::from_env`] with the environment and the file-system check supplied by the
    /// caller (tests, or tracers that keep their own configuration store).
    pub fn resolve(
        var: impl Fn(&str) -> Option<String>,
        exists: impl Fn(&Path) -> bool,
    ) -> Result<AgentUrl> {
        let non_empty = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(url) = non_empty(ENV_AGENT_URL) {
            return AgentUrl::parse(&url)
                .map_err(|e| Error::new(e.kind(), format!("{ENV_AGENT_URL}: {}", e.message())));
        }
        let host = non_empty(ENV_AGENT_HOST);
        let port = non_empty(ENV_AGENT_PORT);
        if host.is_none() && port.is_none() && exists(Path::new(DEFAULT_AGENT_SOCKET)) {
            return Ok(AgentUrl::Unix {
                path: PathBuf::from(DEFAULT_AGENT_SOCKET),
            });
        }
        let port = match port {
            Some(p) => match p.trim().parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => {
                    return Err(Error::invalid_argument(format!(
                        "{ENV_AGENT_PORT}: invalid port {p:?}"
                    )))
                }
            },
            None => DEFAULT_AGENT_PORT,
        };
        let host = match host {
            Some(h) => {
                let h = h.trim();
                // A bare IPv6 address (`::1`) gets its brackets.
                let h = if h.contains(':') && !h.starts_with('[') {
                    format!("[{h}]")
                } else {
                    h.to_string()
                };
                if split_host_port(&h)
                    .map(|(_, p)| p.is_some())
                    .unwrap_or(true)
                {
                    return Err(Error::invalid_argument(format!(
                        "{ENV_AGENT_HOST}: invalid host {h:?}"
                    )));
                }
                h
            }
            None => DEFAULT_AGENT_HOST.to_string(),
        };
        Ok(AgentUrl::Tcp {
            scheme: Scheme::Http,
            host,
            port,
            prefix: String::new(),
        })
    }

    /// True for a unix socket address.
    pub fn is_unix(&self) -> bool {
        matches!(self, AgentUrl::Unix { .. })
    }

    /// The URL to put on an HTTP request for endpoint `path` (which starts with `/`). Requests over a
    /// unix socket are addressed to `http://localhost`.
    pub fn request_url(&self, path: &str) -> String {
        match self {
            AgentUrl::Tcp {
                scheme,
                host,
                port,
                prefix,
            } => {
                let scheme = match scheme {
                    Scheme::Http => "http",
                    Scheme::Https => "https",
                };
                format!("{scheme}://{host}:{port}{prefix}{path}")
            }
            AgentUrl::Unix { .. } => format!("http://localhost{path}"),
        }
    }
}

/// Splits `host[:port]` / `[v6][:port]`; validates the host's characters and the port.
fn split_host_port(authority: &str) -> std::result::Result<(String, Option<u16>), &'static str> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed [ in an IPv6 host")?;
        let v6 = &rest[..end];
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("invalid IPv6 address");
        }
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after the IPv6 address")?),
        };
        (format!("[{v6}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("empty host");
    }
    if !host.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    {
        return Err("invalid characters in the host");
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => Some(p),
            _ => return Err("invalid port"),
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn tcp(host: &str, port: u16, prefix: &str) -> AgentUrl {
        AgentUrl::Tcp {
            scheme: Scheme::Http,
            host: host.into(),
            port,
            prefix: prefix.into(),
        }
    }

    #[test]
    fn parses_http_and_unix() {
        assert_eq!(
            AgentUrl::parse("http://localhost:8126").unwrap(),
            tcp("localhost", 8126, "")
        );
        assert_eq!(
            AgentUrl::parse(" HTTP://10.0.0.1:1/ ").unwrap(),
            tcp("10.0.0.1", 1, "")
        );
        assert_eq!(
            AgentUrl::parse("http://agent").unwrap(),
            tcp("agent", 80, "")
        );
        assert_eq!(
            AgentUrl::parse("http://[::1]:9000/proxy/").unwrap(),
            tcp("[::1]", 9000, "/proxy")
        );
        assert_eq!(
            AgentUrl::parse("unix:///var/run/datadog/apm.socket").unwrap(),
            AgentUrl::Unix {
                path: PathBuf::from("/var/run/datadog/apm.socket")
            }
        );
        let u = AgentUrl::parse("http://[::1]:9000/proxy").unwrap();
        assert_eq!(u.request_url("/info"), "http://[::1]:9000/proxy/info");
        assert_eq!(u.to_string(), "http://[::1]:9000/proxy");
        let u = AgentUrl::parse("unix:///tmp/a.sock").unwrap();
        assert_eq!(
            u.request_url("/v0.4/traces"),
            "http://localhost/v0.4/traces"
        );
        assert!(u.is_unix());
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "",
            "localhost:8126",
            "ftp://x:1",
            "http://",
            "http://:8126",
            "http://host:0",
            "http://host:99999",
            "http://host:abc",
            "http://user@host:1",
            "http://host:1/?q=1",
            "http://ho st:1",
            "http://[::1",
            "http://[zz]:1",
            "unix://relative/path",
            "unix:///",
        ] {
            let err = AgentUrl::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
        #[cfg(not(feature = "https"))]
        assert_eq!(
            AgentUrl::parse("https://h:1").unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }

    fn resolve(vars: &[(&str, &str)], socket: bool) -> Result<AgentUrl> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AgentUrl::resolve(|k| vars.get(k).cloned(), |_| socket)
    }

    #[test]
    fn env_resolution_order() {
        assert_eq!(resolve(&[], false).unwrap(), tcp("localhost", 8126, ""));
        assert_eq!(
            resolve(&[], true).unwrap(),
            AgentUrl::Unix {
                path: PathBuf::from(DEFAULT_AGENT_SOCKET)
            }
        );
        assert_eq!(
            resolve(&[(ENV_AGENT_HOST, "agent")], true).unwrap(),
            tcp("agent", 8126, "")
        );
        assert_eq!(
            resolve(&[(ENV_AGENT_PORT, "9999")], false).unwrap(),
            tcp("localhost", 9999, "")
        );
        assert_eq!(
            resolve(&[(ENV_AGENT_HOST, "::1"), (ENV_AGENT_PORT, "1")], false).unwrap(),
            tcp("[::1]", 1, "")
        );
        assert_eq!(
            resolve(
                &[
                    (ENV_AGENT_URL, "unix:///x.sock"),
                    (ENV_AGENT_HOST, "agent"),
                    (ENV_AGENT_PORT, "1")
                ],
                false
            )
            .unwrap(),
            AgentUrl::Unix {
                path: PathBuf::from("/x.sock")
            }
        );
        // Empty values count as unset.
        assert_eq!(
            resolve(&[(ENV_AGENT_URL, ""), (ENV_AGENT_HOST, " ")], false).unwrap(),
            tcp("localhost", 8126, "")
        );
        let err = resolve(&[(ENV_AGENT_PORT, "http")], false).unwrap_err();
        assert!(err.message().contains(ENV_AGENT_PORT), "{err}");
        let err = resolve(&[(ENV_AGENT_URL, "nonsense")], false).unwrap_err();
        assert!(err.message().contains(ENV_AGENT_URL), "{err}");
        assert!(resolve(&[(ENV_AGENT_HOST, "a:1")], false).is_err());
    }
}

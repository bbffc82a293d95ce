//! The engine's one error type: a stable kind (mapped 1:1 to a C status code by the FFI crate) and a
//! human-readable message.

use std::fmt;

/// What went wrong, coarse enough to be stable across versions (the C ABI maps each kind to a
/// `dp_status` number). New kinds are appended; none is ever renumbered or reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A caller passed an invalid value (bad URL, unknown option value, NULL, invalid UTF-8, ...).
    InvalidArgument,
    /// Input bytes could not be decoded (malformed msgpack, wrong shape).
    Decode,
    /// Data could not be encoded in the requested format.
    Encode,
    /// A network or socket error (connect refused, reset, ...).
    Network,
    /// The operation did not finish within its time bound.
    Timeout,
    /// The agent answered with an HTTP error status.
    Http,
    /// The agent or the configuration does not support what was asked.
    Unsupported,
    /// The object was shut down or is otherwise unusable.
    Shutdown,
    /// Work was dropped because a bound (queue bytes, cardinality) was reached.
    Overflow,
    /// A bug in the engine (an invariant was broken).
    Internal,
}

/// An engine error: a kind and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    http_status: Option<u16>,
}

impl Error {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            http_status: None,
        }
    }

    /// An invalid-argument error.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// A decode error that says where: `offset` is the byte offset in the input.
    pub fn decode(offset: usize, message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Decode, format!("{message} at byte {offset}"))
    }

    /// An HTTP error status returned by the agent.
    pub fn http(status: u16, message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Http,
            message: message.into(),
            http_status: Some(status),
        }
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status, for `ErrorKind::Http`.
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The trace payload formats the engine reads and writes (see [`crate::decode`] and
//! [`crate::encode`], which both re-export [`Format`]).

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A msgpack trace payload format of the agent's trace intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `/v0.4/traces`: an array of traces, each an array of spans, each span a map with named
    /// fields (carries everything: meta_struct, span links and span events included).
    V04,
    /// `/v0.5/traces`: `[string_table, traces]`, each span a 12-element array whose strings are
    /// indices into the string table (no meta_struct, links or events fields).
    V05,
}

impl Format {
    /// The agent endpoint path that accepts this format (`/v0.4/traces`, `/v0.5/traces`).
    pub fn endpoint_path(self) -> &'static str {
        match self {
            Format::V04 => "/v0.4/traces",
            Format::V05 => "/v0.5/traces",
        }
    }

    /// The short name (`v0.4`, `v0.5`), as accepted by [`FromStr`] and written by [`Display`].
    ///
    /// [`Display`]: fmt::Display
    pub fn as_str(self) -> &'static str {
        match self {
            Format::V04 => "v0.4",
            Format::V05 => "v0.5",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = Error;

    /// Parses `v0.4` / `v0.5` (also accepted: `0.4`, `v04`, `/v0.4/traces` and the same for 0.5,
    /// case-insensitively).
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let t = t
            .strip_prefix('/')
            .map(|t| t.strip_suffix("/traces").unwrap_or(t))
            .unwrap_or(&t);
        match t {
            "v0.4" | "0.4" | "v04" => Ok(Format::V04),
            "v0.5" | "0.5" | "v05" => Ok(Format::V05),
            _ => Err(Error::invalid_argument(format!(
                "unknown trace format {s:?} (expected \"v0.4\" or \"v0.5\")"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn parses_and_displays() {
        for f in [Format::V04, Format::V05] {
            assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
            assert_eq!(f.endpoint_path().parse::<Format>().unwrap(), f);
        }
        assert_eq!("V0.5".parse::<Format>().unwrap(), Format::V05);
        assert_eq!(" 0.4 ".parse::<Format>().unwrap(), Format::V04);
        assert_eq!(Format::V05.endpoint_path(), "/v0.5/traces");
        let e = "v0.7".parse::<Format>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("v0.7"));
    }
}

//! SQL obfuscation with results identical to the Datadog agent's (`pkg/obfuscate`, the version in
//! `tests/go-differential/go.mod`): literals become `?`, comments and aliases go, value lists
//! collapse to one `?`, and table names, commands, comments and procedures can be collected.
//!
//! Two engines, as in the agent, picked by [`SqlConfig::obfuscation_mode`]:
//! - the legacy tokenizer and filters (the default; modules `tokenizer` and `legacy`);
//! - the go-sqllexer based modes `obfuscate_only`, `normalize_only`, `obfuscate_and_normalize`
//!   (modules `lexer` and `modes`).
//!
//! Both are single-pass over the bytes, without regular expressions, writing into one output
//! buffer sized from the input. Bad input never panics: an unterminated string or comment is an
//! [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) error carrying the agent's
//! message (legacy), or is obfuscated as far as it goes (sqllexer modes, which never fail).
//!
//! ```
//! use data_pipeline::obfuscate::sql::{obfuscate_sql, SqlConfig};
//! let out = obfuscate_sql("SELECT * FROM users WHERE id IN (1, 2, 3)", &SqlConfig::default()).unwrap();
//! assert_eq!(out.query, "SELECT * FROM users WHERE id IN ( ? )");
//! ```

mod config;
mod legacy;
mod lexer;
mod metadata;
mod modes;
mod text;
mod tokenizer;

pub use config::{ObfuscationMode, SqlConfig};

use crate::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};

/// An obfuscated query and the metadata collected on the way (empty unless asked for).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObfuscatedSql {
    /// The obfuscated query.
    pub query: String,
    /// The tables the query addresses, comma-separated, each once, in order of appearance
    /// (`table_names`).
    pub table_names: String,
    /// The commands met (`collect_commands`): legacy keeps repeats, the sqllexer modes don't.
    pub commands: Vec<String>,
    /// The comments met (`collect_comments`).
    pub comments: Vec<String>,
    /// Procedure names (`collect_procedures`, sqllexer normalizing modes).
    pub procedures: Vec<String>,
    /// The byte size of the metadata, counted as the agent counts it.
    pub metadata_size: i64,
}

/// An SQL obfuscator with the agent's adaptive escape handling: the legacy tokenizer first reads
/// backslashes in strings as escapes; when a query fails that way but succeeds with backslashes
/// read literally, the obfuscator switches to literal backslashes for the queries that follow
/// (and back again in the opposite case), as the agent's `Obfuscator` does. Safe to share between
/// threads.
#[derive(Debug, Default)]
pub struct SqlObfuscator {
    literal_escapes: AtomicBool,
}

impl SqlObfuscator {
    /// A new obfuscator reading backslashes as escapes (the agent's starting state).
    pub fn new() -> Self {
        Self::default()
    }

    /// A new obfuscator starting with the given escape mode.
    pub fn with_literal_escapes(literal_escapes: bool) -> Self {
        SqlObfuscator {
            literal_escapes: AtomicBool::new(literal_escapes),
        }
    }

    /// Whether backslashes in strings are currently read literally.
    pub fn literal_escapes(&self) -> bool {
        self.literal_escapes.load(Ordering::Relaxed)
    }

    /// Obfuscates `query` with `config`.
    pub fn obfuscate(&self, query: &str, config: &SqlConfig) -> Result<ObfuscatedSql> {
        self.obfuscate_for_dbms(query, config, "")
    }

    /// Obfuscates `query` with `config`, `dbms` (when not empty) in place of `config.dbms` (the
    /// agent's `ObfuscateSQLStringForDBMS`: a span's `db.type` overrides the configured system).
    pub fn obfuscate_for_dbms(
        &self,
        query: &str,
        config: &SqlConfig,
        dbms: &str,
    ) -> Result<ObfuscatedSql> {
        let dbms_name = if dbms.is_empty() { &config.dbms } else { dbms };
        let src = query.as_bytes();
        match config.obfuscation_mode {
            ObfuscationMode::Legacy => self.legacy(src, config, dbms_name),
            ObfuscationMode::ObfuscateOnly => {
                let dbms = lexer::Dbms::from_config(dbms_name);
                let out = modes::obfuscate(src, &modes::ObfOpts::from_config(config), dbms);
                Ok(ObfuscatedSql {
                    query: text::into_string(out),
                    ..ObfuscatedSql::default()
                })
            }
            ObfuscationMode::NormalizeOnly | ObfuscationMode::ObfuscateAndNormalize => {
                let dbms = lexer::Dbms::from_config(dbms_name);
                let obf = modes::ObfOpts::from_config(config);
                let norm = modes::NormOpts::from_config(config);
                let obf = (config.obfuscation_mode == ObfuscationMode::ObfuscateAndNormalize)
                    .then_some(&obf);
                let (out, meta) = modes::normalize(src, obf, &norm, dbms);
                Ok(ObfuscatedSql {
                    query: text::into_string(out),
                    table_names: meta.tables.join(","),
                    commands: meta.commands,
                    comments: meta.comments,
                    procedures: meta.procedures,
                    metadata_size: meta.size,
                })
            }
        }
    }

    fn legacy(&self, src: &[u8], config: &SqlConfig, dbms: &str) -> Result<ObfuscatedSql> {
        let lesc = self.literal_escapes();
        let dbms = tokenizer::LegacyDbms::from_config(dbms);
        let first = legacy::attempt(src, lesc, config, dbms);
        let attempt = match first {
            Ok(a) => a,
            Err((msg, seen_escape)) => {
                if seen_escape {
                    if let Ok(a) = legacy::attempt(src, !lesc, config, dbms) {
                        self.literal_escapes.store(!lesc, Ordering::Relaxed);
                        return Ok(Self::result(a));
                    }
                }
                return Err(Error::invalid_argument(msg));
            }
        };
        Ok(Self::result(attempt))
    }

    fn result(a: legacy::Attempt) -> ObfuscatedSql {
        ObfuscatedSql {
            query: text::into_string(a.query),
            table_names: text::into_string(a.metadata.tables_csv),
            commands: a.metadata.commands,
            comments: a.metadata.comments,
            procedures: Vec::new(),
            metadata_size: a.metadata.size,
        }
    }
}

/// Obfuscates `query` with `config`, starting from the agent's default escape state (use one
/// [`SqlObfuscator`] to keep the agent's adaptive escape state across queries).
///
/// Errors (legacy mode only): [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument)
/// with the agent's message, e.g. `at position 41: unexpected EOF in string`, or
/// `result is empty`.
pub fn obfuscate_sql(query: &str, config: &SqlConfig) -> Result<ObfuscatedSql> {
    SqlObfuscator::new().obfuscate(query, config)
}

#[cfg(test)]
mod tests;

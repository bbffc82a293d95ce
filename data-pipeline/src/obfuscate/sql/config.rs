//! The SQL obfuscator's configuration: the agent's `SQLConfig`, field for field, and its JSON form.

use crate::{Error, Result};

/// Which SQL obfuscator runs: the agent's original tokenizer ("legacy", the default) or one of the
/// go-sqllexer based modes (config key `obfuscation_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ObfuscationMode {
    /// No mode set (`""`): the legacy tokenizer and filters; the agent's default.
    #[default]
    Legacy,
    /// `normalize_only`: normalize without replacing literals.
    NormalizeOnly,
    /// `obfuscate_only`: replace literals, keep the text otherwise as it is.
    ObfuscateOnly,
    /// `obfuscate_and_normalize`: both.
    ObfuscateAndNormalize,
}

impl ObfuscationMode {
    /// Parses the agent's spelling; an unknown value is an error with the agent's message.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" => Ok(Self::Legacy),
            "normalize_only" => Ok(Self::NormalizeOnly),
            "obfuscate_only" => Ok(Self::ObfuscateOnly),
            "obfuscate_and_normalize" => Ok(Self::ObfuscateAndNormalize),
            other => Err(Error::invalid_argument(format!(
                "invalid obfuscation mode: {other}"
            ))),
        }
    }

    /// The agent's spelling of the mode (`""` for legacy).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "",
            Self::NormalizeOnly => "normalize_only",
            Self::ObfuscateOnly => "obfuscate_only",
            Self::ObfuscateAndNormalize => "obfuscate_and_normalize",
        }
    }
}

/// SQL obfuscation settings: every field of the agent's `SQLConfig` (the deprecated `cache` flag
/// is accepted in JSON and ignored). `Default` is the agent's default: everything off.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SqlConfig {
    /// The database system (`mssql`, `postgresql`, `mysql`, `oracle`, `snowflake`, ...). The legacy
    /// obfuscator knows `mssql` and `postgresql` only, spelled exactly so; the sqllexer modes also
    /// accept the aliases `sql-server`, `sqlserver` and `postgres`.
    pub dbms: String,
    /// Collect the names of the tables the query addresses (`table_names`).
    pub table_names: bool,
    /// Collect the commands (SELECT, UPDATE, ...) (`collect_commands`).
    pub collect_commands: bool,
    /// Collect the comments (`collect_comments`).
    pub collect_comments: bool,
    /// Collect procedure names (sqllexer modes only) (`collect_procedures`).
    pub collect_procedures: bool,
    /// Replace digits in table names and identifiers with `?` (`replace_digits`).
    pub replace_digits: bool,
    /// Keep `AS alias` (`keep_sql_alias`).
    pub keep_sql_alias: bool,
    /// Obfuscate the body of `$func$...$func$` as SQL instead of replacing it (`dollar_quoted_func`).
    pub dollar_quoted_func: bool,
    /// Legacy or one of the sqllexer modes (`obfuscation_mode`).
    pub obfuscation_mode: ObfuscationMode,
    /// Normalizing modes: no space after `(` / before `)` (`remove_space_between_parentheses`).
    pub remove_space_between_parentheses: bool,
    /// Obfuscating sqllexer modes: keep `NULL` (`keep_null`).
    pub keep_null: bool,
    /// Obfuscating sqllexer modes: keep `TRUE`/`FALSE` (`keep_boolean`).
    pub keep_boolean: bool,
    /// Obfuscating sqllexer modes: keep `$1`-style parameters (`keep_positional_parameter`).
    pub keep_positional_parameter: bool,
    /// Normalizing modes: keep a trailing `;` (`keep_trailing_semicolon`).
    pub keep_trailing_semicolon: bool,
    /// Normalizing modes: keep identifier quotes (`keep_identifier_quotation`).
    pub keep_identifier_quotation: bool,
    /// Obfuscating sqllexer modes: keep the literal after a JSON operator (`keep_json_path`).
    pub keep_json_path: bool,
    /// Obfuscating sqllexer modes: replace `@p1` / `:name` bind parameters (`replace_bind_parameter`).
    pub replace_bind_parameter: bool,
}

impl SqlConfig {
    /// Reads a config object with the agent's JSON keys (`dbms`, `replace_digits`, `keep_sql_alias`,
    /// `dollar_quoted_func`, `obfuscation_mode`, `table_names`, ...). Absent or `null` keys keep their
    /// default and unknown keys are ignored, as the agent's JSON decoding does; a value of the wrong
    /// type or an unknown `obfuscation_mode` is an `InvalidArgument` error.
    pub fn from_json(value: &serde_json::Value) -> Result<Self> {
        let mut cfg = SqlConfig::default();
        let obj = match value {
            serde_json::Value::Null => return Ok(cfg),
            serde_json::Value::Object(o) => o,
            _ => {
                return Err(Error::invalid_argument(
                    "SQL obfuscation config must be a JSON object",
                ))
            }
        };
        for (key, v) in obj {
            if v.is_null() {
                continue;
            }
            let flag = |v: &serde_json::Value| {
                v.as_bool().ok_or_else(|| {
                    Error::invalid_argument(format!("config key {key:?}: expected a boolean"))
                })
            };
            let text = |v: &serde_json::Value| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    Error::invalid_argument(format!("config key {key:?}: expected a string"))
                })
            };
            match key.as_str() {
                "dbms" => cfg.dbms = text(v)?,
                "obfuscation_mode" => cfg.obfuscation_mode = ObfuscationMode::parse(&text(v)?)?,
                "table_names" => cfg.table_names = flag(v)?,
                "collect_commands" => cfg.collect_commands = flag(v)?,
                "collect_comments" => cfg.collect_comments = flag(v)?,
                "collect_procedures" => cfg.collect_procedures = flag(v)?,
                "replace_digits" => cfg.replace_digits = flag(v)?,
                "keep_sql_alias" => cfg.keep_sql_alias = flag(v)?,
                "dollar_quoted_func" => cfg.dollar_quoted_func = flag(v)?,
                "remove_space_between_parentheses" => {
                    cfg.remove_space_between_parentheses = flag(v)?
                }
                "keep_null" => cfg.keep_null = flag(v)?,
                "keep_boolean" => cfg.keep_boolean = flag(v)?,
                "keep_positional_parameter" => cfg.keep_positional_parameter = flag(v)?,
                "keep_trailing_semicolon" => cfg.keep_trailing_semicolon = flag(v)?,
                "keep_identifier_quotation" => cfg.keep_identifier_quotation = flag(v)?,
                "keep_json_path" => cfg.keep_json_path = flag(v)?,
                "replace_bind_parameter" => cfg.replace_bind_parameter = flag(v)?,
                "cache" => {
                    flag(v)?;
                }
                _ => {}
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_keys_and_errors() {
        let cfg = SqlConfig::from_json(&json!({
            "dbms": "postgresql", "replace_digits": true, "obfuscation_mode": "obfuscate_only",
            "keep_json_path": true, "unknown": 3, "keep_null": null
        }))
        .unwrap();
        assert_eq!(cfg.dbms, "postgresql");
        assert!(cfg.replace_digits && cfg.keep_json_path && !cfg.keep_null);
        assert_eq!(cfg.obfuscation_mode, ObfuscationMode::ObfuscateOnly);
        let err = SqlConfig::from_json(&json!({"obfuscation_mode": "nope"})).unwrap_err();
        assert_eq!(err.message(), "invalid obfuscation mode: nope");
        assert!(SqlConfig::from_json(&json!({"table_names": "yes"})).is_err());
        assert_eq!(
            SqlConfig::from_json(&json!(null)).unwrap(),
            SqlConfig::default()
        );
    }
}

//! Conformance ops for SQL obfuscation: `obfuscate.sql`.
//!
//! `{"op":"obfuscate.sql","query":Q,"config":{..}}` answers `{"result": ".."}` or `{"error": ".."}`.
//! The config object uses the agent's keys (`dbms`, `replace_digits`, `keep_sql_alias`,
//! `dollar_quoted_func`, `obfuscation_mode`, `table_names`, ...); absent keys take the defaults.
//! When the config asks for metadata (`table_names`, `collect_commands`, `collect_comments`,
//! `collect_procedures`), the answer also carries `"metadata": {"tables_csv", "commands",
//! "comments", "procedures", "size"}`.

use data_pipeline::obfuscate::sql::{SqlConfig, SqlObfuscator};
use serde_json::{json, Value};

/// Answers `obfuscate.sql`; `None` for any other op.
pub fn handle(op: &str, req: &Value) -> Option<Value> {
    if op != "obfuscate.sql" {
        return None;
    }
    let Some(query) = req.get("query").and_then(Value::as_str) else {
        return Some(json!({"error": "missing string field \"query\""}));
    };
    let config = match SqlConfig::from_json(req.get("config").unwrap_or(&Value::Null)) {
        Ok(c) => c,
        Err(e) => return Some(json!({"error": e.message()})),
    };
    // a fresh obfuscator per request: the answer depends on this request only
    Some(match SqlObfuscator::new().obfuscate(query, &config) {
        Ok(out) => {
            let mut answer = json!({"result": out.query});
            if config.table_names
                || config.collect_commands
                || config.collect_comments
                || config.collect_procedures
            {
                answer["metadata"] = json!({
                    "tables_csv": out.table_names,
                    "commands": out.commands,
                    "comments": out.comments,
                    "procedures": out.procedures,
                    "size": out.metadata_size,
                });
            }
            answer
        }
        Err(e) => json!({"error": e.message()}),
    })
}

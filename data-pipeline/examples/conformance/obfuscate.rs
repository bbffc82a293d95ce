//! Conformance ops of the obfuscation area (`obfuscate.*`, `quantize.*`), answered with the
//! engine's public API (`data_pipeline::obfuscate`).
//!
//! | op | request | answer |
//! |---|---|---|
//! | `obfuscate.redis` | `command`, `config`? (`remove_all_args`) | `result` |
//! | `quantize.redis` | `resource` | `result` |
//! | `obfuscate.memcached` | `command`, `config`? (`keep_command`, default **true**: without it every command becomes "") | `result` |
//! | `obfuscate.http_url` | `url`, `config` (`remove_query_string`, `remove_paths_with_digits`) | `result` |
//! | `obfuscate.json` | `input`, `config` (`keep_keys`, `transform_keys`) | `result` |
//! | `obfuscate.credit_card` | `value`, `config`? (`luhn`) | `is_card` |
//! | `obfuscate.credit_card_iin` | `prefix` (integer) | `maybe`, `yes` |
//! | `obfuscate.peer_ips` | `input` | `result` |
//! | `obfuscate.span` | `span`, `config` | `span` |
//! | `obfuscate.chunk` | `chunk`, `config` | `chunk` (obfuscation, truncation when `config.truncate`, replace rules) |
//! | `obfuscate.stats_group` | `type`, `resource`, `db_type`?, `config`? | `resource` (the agent's `obfuscateStatsGroup`) |
//! | `obfuscate.sql` | answered by the SQL module (see `handle`) | |
//!
//! A span `config` has the agent's obfuscation keys (`redis`, `valkey`, `memcached`, `http`,
//! `elasticsearch`, `opensearch`, `mongodb`, `credit_cards`, `tag_replace_rules`), plus `sql`: the
//! agent's SQL settings (`dbms`, `table_names`, `replace_digits`, `keep_sql_alias`,
//! `dollar_quoted_func`, `obfuscation_mode`; the agent derives them from its feature flags, e.g.
//! `sqllexer` = `obfuscation_mode: obfuscate_only`, `table_names`); what is absent is off, as in the
//! agent's tests (Go zero values), not the deployed agent's defaults.

use super::spanjson::{span_from_json, span_to_json};
use data_pipeline::obfuscate::{
    self, credit_cards, CreditCardsConfig, HttpConfig, JsonConfig, JsonObfuscator,
    ObfuscationConfig, Obfuscator, ReplaceRule,
};
use serde_json::{json, Value};

fn field<'v>(req: &'v Value, k: &str) -> Result<&'v str, String> {
    req.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field {k:?}"))
}

fn flag(v: Option<&Value>, k: &str, default: bool) -> bool {
    v.and_then(|c| c.get(k))
        .and_then(Value::as_bool)
        .unwrap_or(default)
}

fn strings(v: Option<&Value>, k: &str) -> Vec<String> {
    v.and_then(|c| c.get(k))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn json_config(v: Option<&Value>) -> JsonConfig {
    JsonConfig {
        enabled: flag(v, "enabled", false),
        keep_values: strings(v, "keep_values"),
        obfuscate_sql_values: strings(v, "obfuscate_sql_values"),
    }
}

/// Reads the agent-style obfuscation config of a span op (absent = off).
fn span_config(c: Option<&Value>) -> Result<ObfuscationConfig, String> {
    let mut cfg = ObfuscationConfig::disabled();
    let sub = |k: &str| c.and_then(|c| c.get(k));
    cfg.redis.enabled = flag(sub("redis"), "enabled", false);
    cfg.redis.remove_all_args = flag(sub("redis"), "remove_all_args", false);
    cfg.valkey.enabled = flag(sub("valkey"), "enabled", false);
    cfg.valkey.remove_all_args = flag(sub("valkey"), "remove_all_args", false);
    cfg.memcached.enabled = flag(sub("memcached"), "enabled", false);
    cfg.memcached.keep_command = flag(sub("memcached"), "keep_command", false);
    cfg.http = HttpConfig {
        remove_query_string: flag(sub("http"), "remove_query_string", false),
        remove_paths_with_digits: flag(sub("http"), "remove_paths_with_digits", false),
    };
    cfg.elasticsearch = json_config(sub("elasticsearch"));
    cfg.opensearch = json_config(sub("opensearch"));
    cfg.mongodb = json_config(sub("mongodb"));
    cfg.credit_cards = CreditCardsConfig {
        enabled: flag(sub("credit_cards"), "enabled", false),
        luhn: flag(sub("credit_cards"), "luhn", false),
        keep_values: strings(sub("credit_cards"), "keep_values"),
    };
    for r in sub("tag_replace_rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let get = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        cfg.replace_tags.push(
            ReplaceRule::new(get("name"), get("pattern"), get("repl"))
                .map_err(|e| e.to_string())?,
        );
    }
    if let Some(sql) = sub("sql") {
        let text = |k: &str| {
            sql.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        cfg.sql = obfuscate::SqlSettings {
            dbms: text("dbms"),
            table_names: flag(Some(sql), "table_names", false),
            replace_digits: flag(Some(sql), "replace_digits", false),
            keep_sql_alias: flag(Some(sql), "keep_sql_alias", false),
            dollar_quoted_func: flag(Some(sql), "dollar_quoted_func", false),
            obfuscation_mode: text("obfuscation_mode"),
        };
    }
    cfg.truncate = flag(c, "truncate", false);
    Ok(cfg)
}

fn http_config(req: &Value) -> HttpConfig {
    let c = req.get("config");
    HttpConfig {
        remove_query_string: flag(c, "remove_query_string", false),
        remove_paths_with_digits: flag(c, "remove_paths_with_digits", false),
    }
}

fn run(op: &str, req: &Value) -> Result<Value, String> {
    Ok(match op {
        "obfuscate.redis" => {
            let cmd = field(req, "command")?;
            if flag(req.get("config"), "remove_all_args", false) {
                json!({"result": obfuscate::remove_all_redis_args(cmd)})
            } else {
                json!({"result": obfuscate::obfuscate_redis(cmd)})
            }
        }
        "quantize.redis" => json!({"result": obfuscate::quantize_redis(field(req, "resource")?)}),
        "obfuscate.memcached" => {
            let keep = flag(req.get("config"), "keep_command", true);
            json!({"result": obfuscate::obfuscate_memcached(field(req, "command")?, keep)})
        }
        "obfuscate.http_url" => {
            json!({"result": obfuscate::obfuscate_url(field(req, "url")?, &http_config(req))})
        }
        "obfuscate.json" => {
            let c = req.get("config");
            let o = JsonObfuscator::new(&JsonConfig {
                enabled: true,
                keep_values: strings(c, "keep_keys"),
                obfuscate_sql_values: strings(c, "transform_keys"),
            });
            // SQL values go through the same path spans use (the default SQL settings, legacy).
            let ob = Obfuscator::new(ObfuscationConfig::disabled()).map_err(|e| e.to_string())?;
            let sql = |v: &str| match ob.obfuscate_sql(v, "") {
                Ok(q) => q.query,
                Err(_) => obfuscate::json::SQL_FAILURE_TEXT.to_string(),
            };
            json!({"result": o.obfuscate(field(req, "input")?, Some(&sql)).0})
        }
        "obfuscate.credit_card" => {
            let luhn = flag(req.get("config"), "luhn", false);
            json!({"is_card": obfuscate::is_card_number(field(req, "value")?, luhn)})
        }
        "obfuscate.credit_card_iin" => {
            let p = req
                .get("prefix")
                .and_then(Value::as_u64)
                .ok_or("missing integer field \"prefix\"")?;
            let p = u32::try_from(p).map_err(|e| e.to_string())?;
            let (maybe, yes) = credit_cards::iin_prefix(p);
            json!({"maybe": maybe, "yes": yes})
        }
        "obfuscate.peer_ips" => {
            json!({"result": obfuscate::quantize_peer_ip_addresses(field(req, "input")?)})
        }
        "obfuscate.span" => {
            let mut span = span_from_json(req.get("span").ok_or("missing field \"span\"")?)?;
            let o = Obfuscator::new(span_config(req.get("config"))?).map_err(|e| e.to_string())?;
            let mut chunk = vec![span];
            o.obfuscate_chunk(&mut chunk);
            span = chunk.pop().ok_or("empty chunk")?;
            json!({"span": span_to_json(&span)})
        }
        "obfuscate.chunk" => {
            let spans = req
                .get("chunk")
                .and_then(Value::as_array)
                .ok_or("missing array field \"chunk\"")?;
            let mut chunk = spans
                .iter()
                .map(span_from_json)
                .collect::<Result<Vec<_>, _>>()?;
            let o = Obfuscator::new(span_config(req.get("config"))?).map_err(|e| e.to_string())?;
            o.obfuscate_chunk(&mut chunk);
            json!({"chunk": chunk.iter().map(span_to_json).collect::<Vec<_>>()})
        }
        "obfuscate.stats_group" => {
            let o = Obfuscator::new(span_config(req.get("config"))?).map_err(|e| e.to_string())?;
            let db_type = req.get("db_type").and_then(Value::as_str).unwrap_or("");
            let r = o.obfuscate_resource(field(req, "type")?, field(req, "resource")?, db_type);
            json!({ "resource": r })
        }
        _ => return Err(String::new()),
    })
}

/// Answers the `obfuscate.*` and `quantize.*` ops; `None` for an op this area does not know.
pub fn handle(op: &str, req: &Value) -> Option<Value> {
    // LEAD: `obfuscate.sql` belongs to the SQL module: chain `obfuscate_sql::handle` here, e.g.
    // `if op == "obfuscate.sql" { return obfuscate_sql::handle(op, req); }`.
    if op == "obfuscate.sql" {
        return None;
    }
    match run(op, req) {
        Ok(v) => Some(v),
        Err(e) if e.is_empty() => None,
        Err(e) => Some(json!({ "error": e })),
    }
}

//! The standalone obfuscation functions: the agent's rules on one value at a time (SQL, Redis,
//! Memcached, HTTP URLs, JSON bodies, credit card numbers), for tracers that obfuscate themselves
//! (e.g. before putting a query in a span) or check values. Results are `dp_string`s the caller
//! frees.
//!
//! SQL settings travel in an opaque `dp_sql_config` built with setters (not a JSON string): the
//! settings are checked when set (an unknown mode is an error at once), a call does not parse
//! anything, and the type can gain settings without breaking the ABI. NULL stands for the agent's
//! defaults everywhere a config is taken.

use engine::obfuscate::{
    self, json::SQL_FAILURE_TEXT, sql::ObfuscationMode, sql::SqlConfig, sql::SqlObfuscator,
    HttpConfig, JsonConfig, JsonObfuscator,
};

use crate::error::{arg_mut, dp_error, free_box, FfiError, FfiResult, OutParam};
use crate::slice::dp_str;
use crate::string::dp_string;

/// SQL obfuscation settings (the agent's `SQLConfig`). Create with `dp_sql_config_new` (the agent's
/// defaults: legacy obfuscator, every option off), change with the `dp_sql_config_set_*` setters,
/// free with `dp_sql_config_free`.
///
/// Movable between threads; setters need exclusive use, but any number of threads may pass the
/// same config to `dp_obfuscate_sql` at once (it is only read).
pub struct dp_sql_config {
    config: SqlConfig,
}

const _: () = {
    crate::assert_thread::send::<dp_sql_config>();
    crate::assert_thread::sync::<dp_sql_config>();
};

/// A new SQL config with the agent's defaults. Never NULL unless the library panicked.
#[no_mangle]
pub extern "C" fn dp_sql_config_new() -> *mut dp_sql_config {
    boundary! {
        Box::into_raw(Box::new(dp_sql_config { config: SqlConfig::default() }))
    }
}

/// Frees a SQL config. NULL is a no-op.
///
/// # Safety
/// `cfg` is NULL or a live config, not freed before and not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn dp_sql_config_free(cfg: *mut dp_sql_config) {
    boundary! {
        // SAFETY: by contract NULL or a live config given up by the caller.
        unsafe { free_box(cfg) }
    }
}

/// Runs `f` on the settings behind `cfg`.
unsafe fn with_config(cfg: *mut dp_sql_config, f: impl FnOnce(&mut SqlConfig)) -> FfiResult {
    // SAFETY: forwarded contract (NULL or a live config used by this call alone).
    f(&mut unsafe { arg_mut(cfg, "cfg") }?.config);
    Ok(())
}

/// The database system: `mysql`, `postgresql`, `mssql`, `oracle`, `snowflake`, `sqlite`, ... (the
/// agent's spellings; the sqllexer modes also accept `postgres`, `sqlserver`, `sql-server`). Default
/// "" (none). Copied.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently; `dbms` is a valid view.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_dbms(
    cfg: *mut dp_sql_config,
    dbms: dp_str,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let dbms = unsafe { dbms.to_string("dbms") }?;
        // SAFETY: forwarded contract.
        unsafe { with_config(cfg, |c| c.dbms = dbms) }
    }
}

/// The obfuscator: "" (the agent's default, legacy tokenizer), `obfuscate_only`, `normalize_only`
/// or `obfuscate_and_normalize` (go-sqllexer modes). Anything else is `DP_STATUS_INVALID_ARGUMENT`
/// and leaves the config unchanged.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently; `mode` is a valid view.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_obfuscation_mode(
    cfg: *mut dp_sql_config,
    mode: dp_str,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let mode = ObfuscationMode::parse(unsafe { mode.as_str("mode") }?)?;
        // SAFETY: forwarded contract.
        unsafe { with_config(cfg, |c| c.obfuscation_mode = mode) }
    }
}

/// Collect the names of the tables the query reads or writes (`dp_obfuscate_sql`'s `tables_out`). Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_table_names(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.table_names = enabled) } }
}

/// Collect the commands (`SELECT`, `UPDATE`, ...) (reported by the conformance driver only; kept for parity with the agent's `SQLConfig`). Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_collect_commands(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.collect_commands = enabled) } }
}

/// Collect the comments (as `collect_commands`). Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_collect_comments(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.collect_comments = enabled) } }
}

/// Collect procedure names (normalizing modes; as `collect_commands`). Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_collect_procedures(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.collect_procedures = enabled) } }
}

/// Replace digits in table names and identifiers with `?`. Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_replace_digits(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.replace_digits = enabled) } }
}

/// Keep `AS alias`. Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_keep_sql_alias(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.keep_sql_alias = enabled) } }
}

/// Obfuscate the body of `$func$...$func$` as SQL instead of replacing it. Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_dollar_quoted_func(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.dollar_quoted_func = enabled) } }
}

/// Normalizing modes: no space after `(` and before `)`. Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_remove_space_between_parentheses(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.remove_space_between_parentheses = enabled) } }
}

/// sqllexer obfuscating modes: keep `NULL`. Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_keep_null(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.keep_null = enabled) } }
}

/// sqllexer obfuscating modes: keep `TRUE` / `FALSE`. Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_keep_boolean(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.keep_boolean = enabled) } }
}

/// sqllexer obfuscating modes: keep `$1`-style parameters. Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_keep_positional_parameter(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.keep_positional_parameter = enabled) } }
}

/// Normalizing modes: keep a trailing `;`. Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_keep_trailing_semicolon(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.keep_trailing_semicolon = enabled) } }
}

/// Normalizing modes: keep identifier quotes. Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_keep_identifier_quotation(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.keep_identifier_quotation = enabled) } }
}

/// sqllexer obfuscating modes: keep the literal after a JSON operator. Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_keep_json_path(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.keep_json_path = enabled) } }
}

/// sqllexer obfuscating modes: replace `@p1` / `:name` bind parameters. Default false.
///
/// # Safety
/// `cfg` is NULL or a live config not used concurrently.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_sql_config_set_replace_bind_parameter(
    cfg: *mut dp_sql_config,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_config(cfg, |c| c.replace_bind_parameter = enabled) } }
}

/// Obfuscates a SQL query as the agent does (literals become `?`, comments go, value lists collapse,
/// ...), with `cfg` (NULL = the agent's defaults). Each call starts from the agent's initial escape
/// state, so the result depends on this call's arguments only.
///
/// On success `*out` receives the obfuscated query and, when `tables_out` is not NULL,
/// `*tables_out` the comma-separated table names (empty unless `dp_sql_config_set_table_names`).
/// Errors: `DP_STATUS_INVALID_ARGUMENT` with the agent's message when the legacy obfuscator cannot
/// parse the query (the agent then reports `Non-parsable SQL query`), `DP_STATUS_INVALID_UTF8`,
/// `DP_STATUS_NULL_ARGUMENT` (`out`).
///
/// # Safety
/// `query` is a valid view; `cfg` is NULL or a live config; `out` is valid for a write; `tables_out`
/// is NULL or valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_obfuscate_sql(
    query: dp_str,
    cfg: *const dp_sql_config,
    out: *mut *mut dp_string,
    tables_out: *mut *mut dp_string,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let query = unsafe { query.as_str("query") }?;
        let out = OutParam::new(out, "out")?;
        let tables_out = (!tables_out.is_null())
            .then(|| OutParam::new(tables_out, "tables_out"))
            .transpose()?;
        let default;
        // SAFETY: forwarded contract.
        let config = match unsafe { cfg.as_ref() } {
            Some(c) => &c.config,
            None => {
                default = SqlConfig::default();
                &default
            }
        };
        let result = SqlObfuscator::new().obfuscate(query, config)?;
        dp_string::write(out, result.query)?;
        if let Some(t) = tables_out {
            dp_string::write(t, result.table_names)?;
        }
        Ok(())
    }
}

/// Runs `f` on the UTF-8 text of `input` and writes its result to `out`.
unsafe fn transform(
    input: dp_str,
    arg: &str,
    out: *mut *mut dp_string,
    f: impl FnOnce(&str) -> FfiResult<String>,
) -> FfiResult {
    // SAFETY: forwarded contract.
    let input = unsafe { input.as_str(arg) }?;
    let out = OutParam::new(out, "out")?;
    dp_string::write(out, f(input)?)
}

/// Obfuscates a Redis (or Valkey) command as the agent does for `redis.raw_command`: the arguments
/// of known commands that may carry data become `?`; with `remove_all_args` every argument does.
/// Several commands may be separated by newlines.
///
/// # Safety
/// `command` is a valid view; `out` is valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_obfuscate_redis(
    command: dp_str,
    remove_all_args: bool,
    out: *mut *mut dp_string,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            transform(command, "command", out, |c| {
                Ok(if remove_all_args {
                    obfuscate::remove_all_redis_args(c).into_owned()
                } else {
                    obfuscate::obfuscate_redis(c).into_owned()
                })
            })
        }
    }
}

/// Quantizes a Redis resource as the agent does for the resource of Redis spans: the command names
/// only (`SET k v\nGET k` -> `SET GET`), `...` after too many.
///
/// # Safety
/// `resource` is a valid view; `out` is valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_quantize_redis(
    resource: dp_str,
    out: *mut *mut dp_string,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe { transform(resource, "resource", out, |r| Ok(obfuscate::quantize_redis(r).into_owned())) }
    }
}

/// Obfuscates a Memcached command as the agent does for `memcached.command`: the stored value is
/// dropped; without `keep_command` the result is "" (the agent's default).
///
/// # Safety
/// `command` is a valid view; `out` is valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_obfuscate_memcached(
    command: dp_str,
    keep_command: bool,
    out: *mut *mut dp_string,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe {
            transform(command, "command", out, |c| {
                Ok(obfuscate::obfuscate_memcached(c, keep_command).into_owned())
            })
        }
    }
}

/// Obfuscates a URL as the agent does for `http.url`: user info removed; with
/// `remove_query_string` the query becomes `?`; with `remove_paths_with_digits` path segments that
/// contain a digit become `?`. A URL that does not parse becomes `?`.
///
/// # Safety
/// `url` is a valid view; `out` is valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_obfuscate_http_url(
    url: dp_str,
    remove_query_string: bool,
    remove_paths_with_digits: bool,
    out: *mut *mut dp_string,
) -> *mut dp_error {
    boundary! {
        let cfg = HttpConfig { remove_query_string, remove_paths_with_digits };
        // SAFETY: forwarded contract.
        unsafe { transform(url, "url", out, |u| Ok(obfuscate::obfuscate_url(u, &cfg).into_owned())) }
    }
}

/// Comma- or space-separated keys, empty items dropped.
unsafe fn key_list(keys: dp_str, arg: &str) -> FfiResult<Vec<String>> {
    // SAFETY: forwarded contract.
    let keys = unsafe { keys.as_str(arg) }?;
    Ok(keys
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Obfuscates a JSON body as the agent does for `elasticsearch.body`, `opensearch.body` and
/// `mongodb.query`: every scalar value becomes `"?"`, except the values under the keys of
/// `keep_keys` (kept as they are) and the string values under `sql_keys` (obfuscated as SQL with
/// `sql_cfg`, NULL = defaults). Keys are comma- or space-separated; either list may be empty.
/// Invalid JSON is obfuscated as far as it parses, as in the agent.
///
/// # Safety
/// `json`, `keep_keys`, `sql_keys` are valid views; `sql_cfg` is NULL or a live config; `out` is
/// valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_obfuscate_json(
    json: dp_str,
    keep_keys: dp_str,
    sql_keys: dp_str,
    sql_cfg: *const dp_sql_config,
    out: *mut *mut dp_string,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let (keep_values, obfuscate_sql_values) =
            unsafe { (key_list(keep_keys, "keep_keys")?, key_list(sql_keys, "sql_keys")?) };
        let default;
        // SAFETY: forwarded contract.
        let sql = match unsafe { sql_cfg.as_ref() } {
            Some(c) => &c.config,
            None => {
                default = SqlConfig::default();
                &default
            }
        };
        let o = JsonObfuscator::new(&JsonConfig { enabled: true, keep_values, obfuscate_sql_values });
        let engine = SqlObfuscator::new();
        let to_sql = |v: &str| match engine.obfuscate(v, sql) {
            Ok(q) => q.query,
            Err(_) => SQL_FAILURE_TEXT.to_owned(),
        };
        // SAFETY: forwarded contract.
        unsafe { transform(json, "json", out, |j| Ok(o.obfuscate(j, Some(&to_sql)).0.into_owned())) }
    }
}

/// Whether `value` looks like a credit card number by the agent's rules (digits with optional
/// spaces or dashes, a known issuer prefix and length; with `luhn`, a valid Luhn checksum too).
/// Writes `*out`.
///
/// # Safety
/// `value` is a valid view; `out` is valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_is_credit_card(
    value: dp_str,
    luhn: bool,
    out: *mut bool,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let value = unsafe { value.as_str("value") }?;
        let out = OutParam::new(out, "out")?;
        let yes = obfuscate::is_card_number(value, luhn);
        // SAFETY: checked non-NULL, valid for writes by contract.
        unsafe { out.write(yes) };
        Ok::<(), FfiError>(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::error::{dp_status, take_status as status};
    use crate::string::{dp_string_free, dp_string_view};

    /// Takes the text of a returned string and frees it.
    fn text(s: *mut dp_string) -> String {
        unsafe {
            let v = dp_string_view(s);
            let t = std::str::from_utf8(std::slice::from_raw_parts(v.ptr.cast::<u8>(), v.len))
                .unwrap()
                .to_owned();
            dp_string_free(s);
            t
        }
    }

    fn bad_utf8() -> dp_str {
        dp_str {
            ptr: b"\xff\xfe".as_ptr().cast(),
            len: 2,
        }
    }

    #[test]
    fn sql_defaults_config_tables_and_errors() {
        let mut out = std::ptr::null_mut();
        let mut tables = std::ptr::null_mut();
        unsafe {
            let q = dp_str::of("SELECT * FROM users WHERE id = 42");
            assert_eq!(
                status(dp_obfuscate_sql(
                    q,
                    std::ptr::null(),
                    &mut out,
                    std::ptr::null_mut()
                )),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(text(out), "SELECT * FROM users WHERE id = ?");

            let cfg = dp_sql_config_new();
            assert_eq!(
                status(dp_sql_config_set_table_names(cfg, true)),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(
                status(dp_sql_config_set_dbms(cfg, dp_str::of("postgresql"))),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(
                status(dp_obfuscate_sql(q, cfg, &mut out, &mut tables)),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(text(out), "SELECT * FROM users WHERE id = ?");
            assert_eq!(text(tables), "users");

            assert_eq!(
                status(dp_sql_config_set_obfuscation_mode(
                    cfg,
                    dp_str::of("fastest")
                )),
                dp_status::DP_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(
                status(dp_sql_config_set_obfuscation_mode(
                    cfg,
                    dp_str::of("obfuscate_only")
                )),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(
                status(dp_sql_config_set_keep_null(cfg, true)),
                dp_status::DP_STATUS_OK
            );
            let q2 = dp_str::of("SELECT a FROM t WHERE b IS NULL AND c = 'x'");
            assert_eq!(
                status(dp_obfuscate_sql(q2, cfg, &mut out, std::ptr::null_mut())),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(text(out), "SELECT a FROM t WHERE b IS NULL AND c = ?");
            dp_sql_config_free(cfg);
            dp_sql_config_free(std::ptr::null_mut());

            let bad = dp_str::of("SELECT * FROM users WHERE id = '' AND '");
            out = std::ptr::null_mut();
            let err = dp_obfuscate_sql(bad, std::ptr::null(), &mut out, std::ptr::null_mut());
            assert!(out.is_null(), "out-param written on error");
            assert_eq!(status(err), dp_status::DP_STATUS_INVALID_ARGUMENT);
            assert_eq!(
                status(dp_obfuscate_sql(
                    bad_utf8(),
                    std::ptr::null(),
                    &mut out,
                    std::ptr::null_mut()
                )),
                dp_status::DP_STATUS_INVALID_UTF8
            );
            assert_eq!(
                status(dp_obfuscate_sql(
                    q,
                    std::ptr::null(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut()
                )),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                status(dp_sql_config_set_keep_boolean(std::ptr::null_mut(), true)),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
        }
    }

    #[test]
    fn redis_memcached_http_json_cards() {
        let mut out = std::ptr::null_mut();
        unsafe {
            assert!(dp_obfuscate_redis(dp_str::of("SET key val"), false, &mut out).is_null());
            assert_eq!(text(out), "SET key ?");
            assert!(dp_obfuscate_redis(dp_str::of("SET key val"), true, &mut out).is_null());
            assert_eq!(text(out), "SET ?");
            assert!(dp_quantize_redis(dp_str::of("SET k v\nGET k"), &mut out).is_null());
            assert_eq!(text(out), "SET GET");
            let mc = dp_str::of("set key 0 0 0\r\nvalue");
            assert!(dp_obfuscate_memcached(mc, true, &mut out).is_null());
            assert_eq!(text(out), "set key 0 0 0");
            assert!(dp_obfuscate_memcached(mc, false, &mut out).is_null());
            assert_eq!(text(out), "");
            let url = dp_str::of("http://mysite.mydomain/1/2?q=asd");
            assert!(dp_obfuscate_http_url(url, true, true, &mut out).is_null());
            assert_eq!(text(out), "http://mysite.mydomain/?/??");
            assert!(dp_obfuscate_http_url(url, false, false, &mut out).is_null());
            assert_eq!(text(out), "http://mysite.mydomain/1/2?q=asd");
            let body = dp_str::of(
                r#"{"query": "select * from t where id = 2", "hello": "world", "hi": "there"}"#,
            );
            assert!(dp_obfuscate_json(
                body,
                dp_str::of("hello"),
                dp_str::of("query"),
                std::ptr::null(),
                &mut out
            )
            .is_null());
            let got = text(out);
            assert_eq!(
                got,
                r#"{"query":"select * from t where id = ?","hello":"world","hi":"?"}"#
            );
            let mut yes = false;
            assert!(
                dp_is_credit_card(dp_str::of("5105-1051-0510-5100"), false, &mut yes).is_null()
            );
            assert!(yes);
            assert!(dp_is_credit_card(dp_str::of("not-a-cc"), true, &mut yes).is_null());
            assert!(!yes);
            assert_eq!(
                status(dp_is_credit_card(bad_utf8(), false, &mut yes)),
                dp_status::DP_STATUS_INVALID_UTF8
            );
            assert_eq!(
                status(dp_is_credit_card(
                    dp_str::of("1"),
                    false,
                    std::ptr::null_mut()
                )),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                status(dp_obfuscate_redis(bad_utf8(), false, &mut out)),
                dp_status::DP_STATUS_INVALID_UTF8
            );
        }
    }
}

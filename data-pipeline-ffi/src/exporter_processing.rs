//! The exporter's processing options (normalization and obfuscation; one
//! `dp_exporter_builder_set_<option>` per engine option, like `exporter_builder.rs`) and the
//! normalization counters of an exporter.

use engine::exporter::CreditCardMode;

use crate::error::{arg_ref, dp_error, FfiError};
use crate::exporter::dp_exporter;
use crate::exporter_builder::{dp_exporter_builder, set_str, with_builder};
use crate::normalize::{dp_normalize_reason, reason_from_c};
use crate::slice::dp_str;

/// Credit card obfuscation in span tags: one of the `DP_CREDIT_CARDS_*` values.
pub type dp_credit_card_mode = u32;
/// Tags are not checked.
pub const DP_CREDIT_CARDS_OFF: dp_credit_card_mode = 0;
/// Values that look like a card number become `?` (the agent's default).
pub const DP_CREDIT_CARDS_ON: dp_credit_card_mode = 1;
/// As `DP_CREDIT_CARDS_ON`, with the Luhn checksum required too.
pub const DP_CREDIT_CARDS_LUHN: dp_credit_card_mode = 2;

fn credit_card_mode(mode: dp_credit_card_mode) -> Result<CreditCardMode, FfiError> {
    match mode {
        DP_CREDIT_CARDS_OFF => Ok(CreditCardMode::Off),
        DP_CREDIT_CARDS_ON => Ok(CreditCardMode::On),
        DP_CREDIT_CARDS_LUHN => Ok(CreditCardMode::Luhn),
        other => Err(FfiError::invalid_argument(format!(
            "argument `mode` is {other}; expected DP_CREDIT_CARDS_OFF (0), _ON (1) or _LUHN (2)"
        ))),
    }
}

/// How many times normalization fixed a span or dropped a chunk for `reason` since the exporter
/// was built (0 while the `normalize` option is off, for an unknown reason, or when `exporter` is
/// NULL). Dropped chunks are never sent.
///
/// # Safety
/// `exporter` is NULL or a live exporter.
#[no_mangle]
pub unsafe extern "C" fn dp_exporter_normalize_count(
    exporter: *const dp_exporter,
    reason: dp_normalize_reason,
) -> u64 {
    boundary! {
        // SAFETY: forwarded contract.
        match (unsafe { arg_ref(exporter, "exporter") }, reason_from_c(reason)) {
            (Ok(e), Some(r)) => e.exporter.normalize_counts().get(r),
            _ => 0,
        }
    }
}

/// Normalize spans as the agent does (service, name, resource, type, ids, times, `http.status_code`, truncation); chunks the agent would reject are dropped and counted (`dp_exporter_normalize_count`). Default off towards a Datadog agent, which normalizes what it receives.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_normalize(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.normalize(enabled); Ok(()) }) } }
}

/// Obfuscate spans as the agent does (SQL, Redis/Valkey, Memcached, HTTP URLs, JSON bodies, credit cards, replace rules) with the `obfuscation_*` options. Default off towards a Datadog agent, which obfuscates with its own settings. Either stage on means payloads are decoded and re-encoded (no passthrough).
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscate(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscate(enabled); Ok(()) }) } }
}

/// SQL obfuscator: "" (the agent's default, legacy), `obfuscate_only`, `normalize_only` or `obfuscate_and_normalize`. Checked by `dp_exporter_builder_build`. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_sql_mode(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.obfuscation_sql_mode(v); }) } }
}

/// Database system assumed for SQL spans without a `db.type` tag (`postgresql`, `mysql`, `mssql`, ...); "" = none. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_sql_dbms(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.obfuscation_sql_dbms(v); }) } }
}

/// Replace digits in SQL table names and identifiers with `?`. Default false.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_sql_replace_digits(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_sql_replace_digits(enabled); Ok(()) }) } }
}

/// Keep SQL `AS alias`. Default false.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_sql_keep_alias(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_sql_keep_alias(enabled); Ok(()) }) } }
}

/// Obfuscate the body of `$func$...$func$` as SQL. Default false.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_sql_dollar_quoted_func(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_sql_dollar_quoted_func(enabled); Ok(()) }) } }
}

/// Add `sql.tables` (the tables a query addresses) to SQL spans. Default false.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_sql_table_names(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_sql_table_names(enabled); Ok(()) }) } }
}

/// Keep SQL obfuscation results by query text (bounded at 4 MB, then emptied), as the agent's
/// obfuscation cache. Results are identical either way. Default true.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_sql_cache(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_sql_cache(enabled); Ok(()) }) } }
}

/// Obfuscate `redis.raw_command` (Redis resources are quantized regardless). Default true.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_redis(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_redis(enabled); Ok(()) }) } }
}

/// Replace every Redis argument with `?`. Default false.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_redis_remove_all_args(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_redis_remove_all_args(enabled); Ok(()) }) } }
}

/// Obfuscate `valkey.raw_command`. Default true.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_valkey(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_valkey(enabled); Ok(()) }) } }
}

/// Replace every Valkey argument with `?`. Default false.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_valkey_remove_all_args(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_valkey_remove_all_args(enabled); Ok(()) }) } }
}

/// Obfuscate `memcached.command`. Default true.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_memcached(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_memcached(enabled); Ok(()) }) } }
}

/// Keep the Memcached command without its value (else the tag becomes ""). Default false.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_memcached_keep_command(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_memcached_keep_command(enabled); Ok(()) }) } }
}

/// Replace the query string of `http.url` with `?`. Default false.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_http_remove_query_string(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_http_remove_query_string(enabled); Ok(()) }) } }
}

/// Replace `http.url` path segments containing digits with `?`. Default false.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_http_remove_paths_with_digits(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_http_remove_paths_with_digits(enabled); Ok(()) }) } }
}

/// Credit card numbers in tags: `DP_CREDIT_CARDS_OFF`, `DP_CREDIT_CARDS_ON` (default) or `DP_CREDIT_CARDS_LUHN` (Luhn checksum required too). Another value is `DP_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_credit_cards(
    builder: *mut dp_exporter_builder,
    mode: dp_credit_card_mode,
) -> *mut dp_error {
    boundary! {
        let mode = credit_card_mode(mode)?;
        // SAFETY: forwarded contract.
        unsafe { with_builder(builder, |b| { b.obfuscation_credit_cards(mode); Ok(()) }) }
    }
}

/// Tag keys never checked for card numbers (comma- or space-separated), on top of the agent's allow-list. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_credit_cards_keep_values(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.obfuscation_credit_cards_keep_values(&v); }) } }
}

/// Obfuscate `elasticsearch.body`. Default true.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_elasticsearch(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_elasticsearch(enabled); Ok(()) }) } }
}

/// Keys whose values stay in `elasticsearch.body` (comma- or space-separated). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_elasticsearch_keep_values(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.obfuscation_elasticsearch_keep_values(&v); }) } }
}

/// Keys whose values in `elasticsearch.body` are obfuscated as SQL (comma- or space-separated). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_elasticsearch_obfuscate_sql_values(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.obfuscation_elasticsearch_obfuscate_sql_values(&v); }) } }
}

/// Obfuscate `opensearch.body`. Default true.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_opensearch(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_opensearch(enabled); Ok(()) }) } }
}

/// Keys whose values stay in `opensearch.body` (comma- or space-separated). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_opensearch_keep_values(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.obfuscation_opensearch_keep_values(&v); }) } }
}

/// Keys whose values in `opensearch.body` are obfuscated as SQL (comma- or space-separated). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_opensearch_obfuscate_sql_values(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.obfuscation_opensearch_obfuscate_sql_values(&v); }) } }
}

/// Obfuscate `mongodb.query`. Default true.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_mongodb(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.obfuscation_mongodb(enabled); Ok(()) }) } }
}

/// Keys whose values stay in `mongodb.query` (comma- or space-separated). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_mongodb_keep_values(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.obfuscation_mongodb_keep_values(&v); }) } }
}

/// Keys whose values in `mongodb.query` are obfuscated as SQL (comma- or space-separated). Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_obfuscation_mongodb_obfuscate_sql_values(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.obfuscation_mongodb_obfuscate_sql_values(&v); }) } }
}

/// Tag replacement rules in the agent's JSON form (`DD_APM_REPLACE_TAGS`), e.g. `[{"name": "http.url", "pattern": "token=[^&]+", "repl": "token=?"}]`; applied with obfuscation. Checked by `dp_exporter_builder_build`; "" = none. Copied.
///
/// # Safety
/// `builder` is NULL or a live builder; `value` is a valid `dp_str`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_replace_tags(
    builder: *mut dp_exporter_builder,
    value: dp_str,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { set_str(builder, value, |b, v| { b.replace_tags(v); }) } }
}

/// The agent's `component2name` feature: a non-empty `component` tag becomes the span name. Default false.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_exporter_builder_set_normalization_component_to_name(
    builder: *mut dp_exporter_builder,
    enabled: bool,
) -> *mut dp_error {
    // SAFETY: forwarded contract.
    boundary! { unsafe { with_builder(builder, |b| { b.normalization_component_to_name(enabled); Ok(()) }) } }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::error::{dp_status, take_status as status};
    use crate::exporter::dp_exporter_free;
    use crate::exporter_builder::{
        dp_exporter_builder_build, dp_exporter_builder_free, dp_exporter_builder_new,
    };
    use crate::normalize::DP_NORMALIZE_SERVICE_EMPTY;

    #[test]
    fn processing_options_are_set_and_checked() {
        unsafe {
            let b = dp_exporter_builder_new();
            assert!(dp_exporter_builder_set_normalize(b, true).is_null());
            assert!(dp_exporter_builder_set_obfuscate(b, true).is_null());
            assert!(
                dp_exporter_builder_set_obfuscation_credit_cards(b, DP_CREDIT_CARDS_LUHN).is_null()
            );
            assert_eq!(
                status(dp_exporter_builder_set_obfuscation_credit_cards(b, 7)),
                dp_status::DP_STATUS_INVALID_ARGUMENT
            );
            assert!(
                dp_exporter_builder_set_obfuscation_credit_cards_keep_values(b, dp_str::of("a,b"))
                    .is_null()
            );
            assert!(
                dp_exporter_builder_set_obfuscation_sql_mode(b, dp_str::of("obfuscate_only"))
                    .is_null()
            );
            let mut ex = std::ptr::null_mut();
            assert_eq!(
                status(dp_exporter_builder_build(b, &mut ex)),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(
                dp_exporter_normalize_count(ex, DP_NORMALIZE_SERVICE_EMPTY),
                0
            );
            assert_eq!(dp_exporter_normalize_count(ex, 999), 0);
            assert_eq!(dp_exporter_normalize_count(std::ptr::null(), 0), 0);
            dp_exporter_free(ex);

            // checked by build: the bad value is reported there
            let b = dp_exporter_builder_new();
            assert!(
                dp_exporter_builder_set_replace_tags(b, dp_str::of("[{\"name\": 1}]")).is_null()
            );
            let mut ex = std::ptr::null_mut();
            assert_eq!(
                status(dp_exporter_builder_build(b, &mut ex)),
                dp_status::DP_STATUS_INVALID_ARGUMENT
            );
            assert!(ex.is_null());
            let b = dp_exporter_builder_new();
            assert!(dp_exporter_builder_set_obfuscation_sql_mode(b, dp_str::of("nope")).is_null());
            assert_eq!(
                status(dp_exporter_builder_build(b, &mut ex)),
                dp_status::DP_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(
                status(dp_exporter_builder_set_obfuscate(
                    std::ptr::null_mut(),
                    true
                )),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            dp_exporter_builder_free(std::ptr::null_mut());
        }
    }
}

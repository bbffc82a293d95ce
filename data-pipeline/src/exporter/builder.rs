//! [`ExporterBuilder`]: every exporter option, each with one setter (the C ABI binds each as
//! `dp_exporter_builder_set_<name>`; [`ExporterBuilder::OPTIONS`] lists the names).

use super::background::{
    DEFAULT_BATCH_MAX_BYTES, DEFAULT_BATCH_MAX_DELAY, DEFAULT_QUEUE_MAX_BYTES,
};
use super::codec::Format;
use super::pipeline::{split_list, CreditCardMode, ProcessingConfig};
use super::statsd::StatsdAddr;
use super::Exporter;
use crate::transport::AgentUrl;
use crate::{Error, Result};
use std::time::Duration;

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default timeout of one HTTP request (send and full response).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Default bound on the total time of one send, retries and 413 splits included.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of retries after the first attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Where the agent address comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum UrlSource {
    /// `http://localhost:8126`.
    #[default]
    Default,
    /// Set by the tracer (parsed at build time).
    Explicit(String),
    /// Resolved from the environment at build time ([`AgentUrl::from_env`]).
    Env,
}

/// Who is sending: the tracer and the application it instruments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TracerMetadata {
    /// Tracer language (`Datadog-Meta-Lang`), e.g. `python`.
    pub language: String,
    /// Language version (`Datadog-Meta-Lang-Version`), e.g. `3.12.1`.
    pub language_version: String,
    /// Language interpreter (`Datadog-Meta-Lang-Interpreter`), e.g. `CPython`.
    pub language_interpreter: String,
    /// Tracer version (`Datadog-Meta-Tracer-Version`).
    pub tracer_version: String,
    /// Default service of the application.
    pub service: String,
    /// Environment (`env`).
    pub env: String,
    /// Application version (`version`).
    pub app_version: String,
    /// Host name reported with client-side stats.
    pub hostname: String,
    /// Container id (`Datadog-Container-ID`), empty when not in a container.
    pub container_id: String,
    /// Runtime id of the tracer process (`RuntimeID` of client-side stats payloads).
    pub runtime_id: String,
}

/// The complete exporter configuration, as the builder collected it.
#[derive(Debug, Clone)]
pub(crate) struct ExporterConfig {
    pub url: UrlSource,
    pub metadata: TracerMetadata,
    pub input_format: Format,
    pub output_format: Format,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub send_timeout: Duration,
    pub max_retries: u32,
    pub test_session_token: String,
    pub stats: crate::stats::StatsConfig,
    pub processing: ProcessingConfig,
    pub batch_max_bytes: usize,
    pub batch_max_delay: Duration,
    pub queue_max_bytes: usize,
    pub statsd_url: String,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig {
            url: UrlSource::Default,
            metadata: TracerMetadata::default(),
            input_format: Format::V04,
            output_format: Format::V04,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            test_session_token: String::new(),
            stats: crate::stats::StatsConfig::default(),
            processing: ProcessingConfig::default(),
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            batch_max_delay: DEFAULT_BATCH_MAX_DELAY,
            queue_max_bytes: DEFAULT_QUEUE_MAX_BYTES,
            statsd_url: String::new(),
        }
    }
}

/// Builds an [`Exporter`]. Setters take `&mut self` and return it for chaining; options are only
/// validated by [`ExporterBuilder::build`], which may be called several times.
///
/// ```no_run
/// use data_pipeline::exporter::{ExporterBuilder, Format};
/// let exporter = ExporterBuilder::new()
///     .url("http://localhost:8126")
///     .language("python")
///     .tracer_version("2.0.0")
///     .output_format(Format::V04)
///     .build()?;
/// # Ok::<(), data_pipeline::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ExporterBuilder {
    pub(crate) config: ExporterConfig,
}

/// Generates the setters and [`ExporterBuilder::OPTIONS`] from one list, so they cannot drift.
macro_rules! options {
    ($( $(#[$doc:meta])* $name:ident($arg:ident: $ty:ty) => |$cfg:ident| $body:expr; )*) => {
        impl ExporterBuilder {
            /// The snake_case name of every option setter, in declaration order. The C ABI has one
            /// `dp_exporter_builder_set_<name>` per entry.
            pub const OPTIONS: &'static [&'static str] = &[$(stringify!($name)),*];

            $(
                $(#[$doc])*
                pub fn $name(&mut self, $arg: $ty) -> &mut Self {
                    let $cfg = &mut self.config;
                    $body;
                    self
                }
            )*
        }
    };
}

options! {
    /// The agent address: `http://host:port` or `unix:///path/to/socket` (parsed by `build`).
    /// Replaces an earlier `url_from_env(true)`.
    url(url: impl Into<String>) => |c| c.url = UrlSource::Explicit(url.into());
    /// When true, `build` resolves the agent address from the environment
    /// (`DD_TRACE_AGENT_URL`, else `DD_AGENT_HOST` + `DD_TRACE_AGENT_PORT`; see
    /// [`AgentUrl::from_env`]), replacing an earlier `url`. When false, undoes an earlier
    /// `url_from_env(true)` (back to `http://localhost:8126`).
    url_from_env(enabled: bool) => |c| {
        if enabled {
            c.url = UrlSource::Env;
        } else if c.url == UrlSource::Env {
            c.url = UrlSource::Default;
        }
    };
    /// Tracer language (`Datadog-Meta-Lang`).
    language(language: impl Into<String>) => |c| c.metadata.language = language.into();
    /// Language version (`Datadog-Meta-Lang-Version`).
    language_version(version: impl Into<String>) => |c| c.metadata.language_version = version.into();
    /// Language interpreter (`Datadog-Meta-Lang-Interpreter`).
    language_interpreter(interpreter: impl Into<String>) => |c| c.metadata.language_interpreter = interpreter.into();
    /// Tracer version (`Datadog-Meta-Tracer-Version`).
    tracer_version(version: impl Into<String>) => |c| c.metadata.tracer_version = version.into();
    /// The application's default service.
    service(service: impl Into<String>) => |c| c.metadata.service = service.into();
    /// The application's environment.
    env(env: impl Into<String>) => |c| c.metadata.env = env.into();
    /// The application's version.
    app_version(version: impl Into<String>) => |c| c.metadata.app_version = version.into();
    /// The host name.
    hostname(hostname: impl Into<String>) => |c| c.metadata.hostname = hostname.into();
    /// The container id (`Datadog-Container-ID`); empty for none.
    container_id(id: impl Into<String>) => |c| c.metadata.container_id = id.into();
    /// Format of the payloads given to [`Exporter::send`] (default v0.4).
    input_format(format: Format) => |c| c.input_format = format;
    /// Format sent to the agent (default v0.4). v0.5 is used only when the agent lists
    /// `/v0.5/traces` in `/info`; otherwise the exporter falls back to v0.4.
    output_format(format: Format) => |c| c.output_format = format;
    /// Timeout of a connection attempt (default 1 s).
    connect_timeout(timeout: std::time::Duration) => |c| c.connect_timeout = timeout;
    /// Timeout of one HTTP request, response body included (default 3 s).
    request_timeout(timeout: std::time::Duration) => |c| c.request_timeout = timeout;
    /// Bound on the total time of one send (encoding, retries, waits and 413 splits included;
    /// default 5 s). A send never takes longer.
    send_timeout(timeout: std::time::Duration) => |c| c.send_timeout = timeout;
    /// Retries after the first attempt (default 3; 0 = no retry). The background worker uses it
    /// per batch for retryable answers (408, 429, 5xx).
    max_retries(retries: u32) => |c| c.max_retries = retries;
    /// Test agent session token (`X-Datadog-Test-Session-Token`); empty for none.
    test_session_token(token: impl Into<String>) => |c| c.test_session_token = token.into();
    /// Runtime id of the tracer process, reported with client-side stats; empty for none.
    runtime_id(id: impl Into<String>) => |c| c.metadata.runtime_id = id.into();
    /// Client-side stats and P0 dropping: `Off` (default), `Auto` (while the agent's `/info`
    /// allows them; the recommended opt-in) or `On` (stats always; P0 dropping still only when
    /// the agent allows it). See [`crate::stats::stage`].
    stats(mode: crate::stats::StatsMode) => |c| c.stats.mode = mode;
    /// Stats bucket size and flush period (default 10 s; whole milliseconds, 1 ms to 1 h).
    stats_bucket_size(size: std::time::Duration) => |c| c.stats.bucket_size = size;
    /// Peer tag keys aggregated in addition to those the agent lists in `/info`.
    stats_peer_tags(keys: impl IntoIterator<Item = impl Into<String>>) => |c| {
        c.stats.peer_tags_extra = keys.into_iter().map(Into::into).collect()
    };
    /// `span.kind` values that make a span eligible for stats, replacing the agent's
    /// `span_kinds_stats_computed` and the default client/server/producer/consumer (an empty
    /// list: kinds never make a span eligible).
    stats_span_kinds(kinds: impl IntoIterator<Item = impl Into<String>>) => |c| {
        c.stats.span_kinds = Some(kinds.into_iter().map(Into::into).collect())
    };
    /// Distinct stats keys per bucket before spans are counted under `tracer_blocked_value`
    /// (default 7000).
    stats_max_keys_per_bucket(max: usize) => |c| c.stats.max_keys_per_bucket = max;
    /// True when the tracer marked top-level spans itself (`_dd.top_level` / `_top_level`), so the
    /// exporter trusts the marks instead of computing them per chunk (default false).
    stats_client_computed_top_level(enabled: bool) => |c| c.stats.client_computed_top_level = enabled;
    /// Normalize spans as the agent does (service, name, resource, type, ids, times, status
    /// codes, truncation); chunks the agent would reject are dropped and counted
    /// ([`Exporter::normalize_counts`]). Default: off towards a Datadog agent (it normalizes
    /// itself); see [`super::pipeline`] for the defaults per destination.
    normalize(enabled: bool) => |c| c.processing.normalize = Some(enabled);
    /// Obfuscate spans as the agent does (SQL, Redis/Valkey, Memcached, HTTP URLs, JSON bodies,
    /// credit cards, tag replacement rules) with the `obfuscation_*` settings. Default: off
    /// towards a Datadog agent (it obfuscates with its own settings).
    obfuscate(enabled: bool) => |c| c.processing.obfuscate = Some(enabled);
    /// SQL obfuscation mode: "" (the agent's default, legacy), `obfuscate_only`,
    /// `normalize_only` or `obfuscate_and_normalize` (checked by `build`).
    obfuscation_sql_mode(mode: impl Into<String>) => |c| c.processing.obfuscation.sql.obfuscation_mode = mode.into();
    /// Default database system for SQL spans without `db.type` (`postgresql`, `mysql`, `mssql`,
    /// `oracle`, `snowflake`, ...); "" = none.
    obfuscation_sql_dbms(dbms: impl Into<String>) => |c| c.processing.obfuscation.sql.dbms = dbms.into();
    /// Replace digits in table names and identifiers with `?` (the agent's `replace_sql_digits`
    /// / `quantize_sql_tables` feature). Default off.
    obfuscation_sql_replace_digits(enabled: bool) => |c| c.processing.obfuscation.sql.replace_digits = enabled;
    /// Keep `AS alias` in SQL (the agent's `keep_sql_alias` feature). Default off.
    obfuscation_sql_keep_alias(enabled: bool) => |c| c.processing.obfuscation.sql.keep_sql_alias = enabled;
    /// Obfuscate the body of `$func$...$func$` strings as SQL (the agent's `dollar_quoted_func`
    /// feature). Default off.
    obfuscation_sql_dollar_quoted_func(enabled: bool) => |c| c.processing.obfuscation.sql.dollar_quoted_func = enabled;
    /// Add the `sql.tables` tag with the tables a query reads or writes (the agent's
    /// `table_names` feature). Default off.
    obfuscation_sql_table_names(enabled: bool) => |c| c.processing.obfuscation.sql.table_names = enabled;
    /// Keep SQL obfuscation results by query text (bounded at 4 MB, then emptied), as the
    /// agent's obfuscation cache: tracers send the same queries over and over. Results are
    /// identical either way. Default on.
    obfuscation_sql_cache(enabled: bool) => |c| c.processing.obfuscation.sql_cache = enabled;
    /// Obfuscate `redis.raw_command` (the resource of Redis spans is quantized anyway). Default on.
    obfuscation_redis(enabled: bool) => |c| c.processing.obfuscation.redis.enabled = enabled;
    /// Replace every Redis argument with `?`, not only the sensitive ones. Default off.
    obfuscation_redis_remove_all_args(enabled: bool) => |c| c.processing.obfuscation.redis.remove_all_args = enabled;
    /// Obfuscate `valkey.raw_command`. Default on.
    obfuscation_valkey(enabled: bool) => |c| c.processing.obfuscation.valkey.enabled = enabled;
    /// Replace every Valkey argument with `?`. Default off.
    obfuscation_valkey_remove_all_args(enabled: bool) => |c| c.processing.obfuscation.valkey.remove_all_args = enabled;
    /// Obfuscate `memcached.command`. Default on.
    obfuscation_memcached(enabled: bool) => |c| c.processing.obfuscation.memcached.enabled = enabled;
    /// Keep the Memcached command without its value (otherwise the tag becomes ""). Default off.
    obfuscation_memcached_keep_command(enabled: bool) => |c| c.processing.obfuscation.memcached.keep_command = enabled;
    /// Remove the query string of `http.url` (it becomes `?`). Default off.
    obfuscation_http_remove_query_string(enabled: bool) => |c| c.processing.obfuscation.http.remove_query_string = enabled;
    /// Replace URL path segments that contain digits with `?`. Default off.
    obfuscation_http_remove_paths_with_digits(enabled: bool) => |c| c.processing.obfuscation.http.remove_paths_with_digits = enabled;
    /// Credit card numbers in tags: off, on (the agent's default) or with the Luhn check.
    obfuscation_credit_cards(mode: CreditCardMode) => |c| c.processing.set_credit_cards(mode);
    /// Tag keys whose values are never checked for card numbers (comma- or space-separated, as
    /// `DD_APM_OBFUSCATION_CREDIT_CARDS_KEEP_VALUES`), on top of the agent's allow-list.
    obfuscation_credit_cards_keep_values(keys: &str) => |c| c.processing.obfuscation.credit_cards.keep_values = split_list(keys);
    /// Obfuscate `elasticsearch.body`. Default on.
    obfuscation_elasticsearch(enabled: bool) => |c| c.processing.obfuscation.elasticsearch.enabled = enabled;
    /// Keys whose values stay in `elasticsearch.body` (comma- or space-separated).
    obfuscation_elasticsearch_keep_values(keys: &str) => |c| c.processing.obfuscation.elasticsearch.keep_values = split_list(keys);
    /// Keys whose values in `elasticsearch.body` are obfuscated as SQL (comma- or space-separated).
    obfuscation_elasticsearch_obfuscate_sql_values(keys: &str) => |c| c.processing.obfuscation.elasticsearch.obfuscate_sql_values = split_list(keys);
    /// Obfuscate `opensearch.body`. Default on.
    obfuscation_opensearch(enabled: bool) => |c| c.processing.obfuscation.opensearch.enabled = enabled;
    /// Keys whose values stay in `opensearch.body` (comma- or space-separated).
    obfuscation_opensearch_keep_values(keys: &str) => |c| c.processing.obfuscation.opensearch.keep_values = split_list(keys);
    /// Keys whose values in `opensearch.body` are obfuscated as SQL (comma- or space-separated).
    obfuscation_opensearch_obfuscate_sql_values(keys: &str) => |c| c.processing.obfuscation.opensearch.obfuscate_sql_values = split_list(keys);
    /// Obfuscate `mongodb.query`. Default on.
    obfuscation_mongodb(enabled: bool) => |c| c.processing.obfuscation.mongodb.enabled = enabled;
    /// Keys whose values stay in `mongodb.query` (comma- or space-separated).
    obfuscation_mongodb_keep_values(keys: &str) => |c| c.processing.obfuscation.mongodb.keep_values = split_list(keys);
    /// Keys whose values in `mongodb.query` are obfuscated as SQL (comma- or space-separated).
    obfuscation_mongodb_obfuscate_sql_values(keys: &str) => |c| c.processing.obfuscation.mongodb.obfuscate_sql_values = split_list(keys);
    /// Tag replacement rules in the agent's JSON form (`DD_APM_REPLACE_TAGS`):
    /// `[{"name": "http.url", "pattern": "token=[^&]+", "repl": "token=?"}]` (`name` is a tag,
    /// `resource.name`, or `*`). Applied with obfuscation, after it. Checked by `build`; "" = none.
    replace_tags(rules_json: impl Into<String>) => |c| c.processing.replace_tags = rules_json.into();
    /// The agent's `component2name` feature for normalization: a non-empty `component` tag
    /// becomes the span name. Default off.
    normalization_component_to_name(enabled: bool) => |c| c.processing.component_to_name = enabled;
    /// Background: a batch goes out once this many bytes of payload are queued (default 1 MiB;
    /// must be > 0). One payload larger than this goes out alone.
    batch_max_bytes(bytes: usize) => |c| c.batch_max_bytes = bytes;
    /// Background: the longest a payload waits in the queue for a batch to fill while the worker
    /// is idle (default 1 s; 0 sends as soon as the worker is free).
    batch_max_delay(delay: std::time::Duration) => |c| c.batch_max_delay = delay;
    /// Background: the memory bound of the queue, in bytes (payloads, plus 64 bytes each, plus
    /// the batch being sent; default 32 MiB; must be > 0). Beyond it, new payloads are dropped and
    /// counted.
    queue_max_bytes(bytes: usize) => |c| c.queue_max_bytes = bytes;
    /// Background: where to send health metrics as DogStatsD (`udp://host:port` or
    /// `unix:///path`), every 10 s and at shutdown; empty (the default) for none.
    statsd_url(url: impl Into<String>) => |c| c.statsd_url = url.into();
}

impl ExporterBuilder {
    /// A builder with every option at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The agent address `build` would use (resolving the environment if asked to).
    pub fn resolve_url(&self) -> Result<AgentUrl> {
        match &self.config.url {
            UrlSource::Default => Ok(AgentUrl::default()),
            UrlSource::Explicit(url) => AgentUrl::parse(url),
            UrlSource::Env => AgentUrl::from_env(),
        }
    }

    /// Validates the options and creates the exporter (with its own runtime and connection pool).
    /// Errors are `InvalidArgument` (bad URL, zero timeout, a header value that is not visible
    /// ASCII) or `Unsupported`.
    pub fn build(&self) -> Result<Exporter> {
        let c = &self.config;
        for (name, d) in [
            ("connect_timeout", c.connect_timeout),
            ("request_timeout", c.request_timeout),
            ("send_timeout", c.send_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::invalid_argument(format!("{name} must be > 0")));
            }
        }
        c.stats.validate()?;
        for (name, n) in [
            ("batch_max_bytes", c.batch_max_bytes),
            ("queue_max_bytes", c.queue_max_bytes),
        ] {
            if n == 0 {
                return Err(Error::invalid_argument(format!("{name} must be > 0")));
            }
        }
        if !c.statsd_url.is_empty() {
            StatsdAddr::parse(&c.statsd_url)?;
        }
        let url = self.resolve_url()?;
        Exporter::new(url, c.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_matches_setters() {
        // Each name in OPTIONS comes from the same macro arm as its setter; check the list is
        // complete and duplicate-free, and exercise every setter once.
        let mut b = ExporterBuilder::new();
        b.url("http://127.0.0.1:1")
            .url_from_env(false)
            .language("rust")
            .language_version("1.95")
            .language_interpreter("rustc")
            .tracer_version("0.1.0")
            .service("web")
            .env("prod")
            .app_version("1.2.3")
            .hostname("host")
            .container_id("abc")
            .input_format(Format::V04)
            .output_format(Format::V05)
            .connect_timeout(Duration::from_millis(100))
            .request_timeout(Duration::from_millis(200))
            .send_timeout(Duration::from_millis(300))
            .max_retries(1)
            .test_session_token("tok")
            .runtime_id("rid")
            .stats(crate::stats::StatsMode::On)
            .stats_bucket_size(Duration::from_secs(2))
            .stats_peer_tags(["db.name"])
            .stats_span_kinds(vec!["server".to_string()])
            .stats_max_keys_per_bucket(10)
            .stats_client_computed_top_level(true)
            .normalize(true)
            .obfuscate(true)
            .obfuscation_sql_mode("obfuscate_only")
            .obfuscation_sql_dbms("postgresql")
            .obfuscation_sql_replace_digits(true)
            .obfuscation_sql_keep_alias(true)
            .obfuscation_sql_dollar_quoted_func(true)
            .obfuscation_sql_table_names(true)
            .obfuscation_redis(false)
            .obfuscation_redis_remove_all_args(true)
            .obfuscation_valkey(false)
            .obfuscation_valkey_remove_all_args(true)
            .obfuscation_memcached(false)
            .obfuscation_memcached_keep_command(true)
            .obfuscation_http_remove_query_string(true)
            .obfuscation_http_remove_paths_with_digits(true)
            .obfuscation_credit_cards(CreditCardMode::Luhn)
            .obfuscation_credit_cards_keep_values("a, b")
            .obfuscation_elasticsearch(false)
            .obfuscation_elasticsearch_keep_values("k1")
            .obfuscation_elasticsearch_obfuscate_sql_values("q1")
            .obfuscation_opensearch(false)
            .obfuscation_opensearch_keep_values("k2")
            .obfuscation_opensearch_obfuscate_sql_values("q2")
            .obfuscation_mongodb(false)
            .obfuscation_mongodb_keep_values("k3")
            .obfuscation_mongodb_obfuscate_sql_values("q3")
            .replace_tags("[]")
            .normalization_component_to_name(true)
            .batch_max_bytes(1000)
            .batch_max_delay(Duration::from_millis(10))
            .queue_max_bytes(5000)
            .statsd_url("udp://127.0.0.1:8125");
        let expected = [
            "url",
            "url_from_env",
            "language",
            "language_version",
            "language_interpreter",
            "tracer_version",
            "service",
            "env",
            "app_version",
            "hostname",
            "container_id",
            "input_format",
            "output_format",
            "connect_timeout",
            "request_timeout",
            "send_timeout",
            "max_retries",
            "test_session_token",
            "runtime_id",
            "stats",
            "stats_bucket_size",
            "stats_peer_tags",
            "stats_span_kinds",
            "stats_max_keys_per_bucket",
            "stats_client_computed_top_level",
            "normalize",
            "obfuscate",
            "obfuscation_sql_mode",
            "obfuscation_sql_dbms",
            "obfuscation_sql_replace_digits",
            "obfuscation_sql_keep_alias",
            "obfuscation_sql_dollar_quoted_func",
            "obfuscation_sql_table_names",
            "obfuscation_sql_cache",
            "obfuscation_redis",
            "obfuscation_redis_remove_all_args",
            "obfuscation_valkey",
            "obfuscation_valkey_remove_all_args",
            "obfuscation_memcached",
            "obfuscation_memcached_keep_command",
            "obfuscation_http_remove_query_string",
            "obfuscation_http_remove_paths_with_digits",
            "obfuscation_credit_cards",
            "obfuscation_credit_cards_keep_values",
            "obfuscation_elasticsearch",
            "obfuscation_elasticsearch_keep_values",
            "obfuscation_elasticsearch_obfuscate_sql_values",
            "obfuscation_opensearch",
            "obfuscation_opensearch_keep_values",
            "obfuscation_opensearch_obfuscate_sql_values",
            "obfuscation_mongodb",
            "obfuscation_mongodb_keep_values",
            "obfuscation_mongodb_obfuscate_sql_values",
            "replace_tags",
            "normalization_component_to_name",
            "batch_max_bytes",
            "batch_max_delay",
            "queue_max_bytes",
            "statsd_url",
        ];
        assert_eq!(ExporterBuilder::OPTIONS, expected);
        let c = &b.config;
        assert_eq!(c.url, UrlSource::Explicit("http://127.0.0.1:1".into()));
        assert_eq!(c.metadata.container_id, "abc");
        assert_eq!(c.output_format, Format::V05);
        assert_eq!(c.send_timeout, Duration::from_millis(300));
        assert_eq!(c.test_session_token, "tok");
        assert_eq!(c.metadata.runtime_id, "rid");
        assert_eq!(c.stats.mode, crate::stats::StatsMode::On);
        assert_eq!(c.stats.peer_tags_extra, ["db.name"]);
        assert_eq!(
            c.stats.span_kinds.as_deref(),
            Some(&["server".to_string()][..])
        );
        assert_eq!(c.stats.max_keys_per_bucket, 10);
        assert!(c.stats.client_computed_top_level);
        let p = &c.processing;
        let o = &p.obfuscation;
        assert_eq!((p.normalize, p.obfuscate), (Some(true), Some(true)));
        assert_eq!(o.sql.obfuscation_mode, "obfuscate_only");
        assert_eq!(o.sql.dbms, "postgresql");
        assert!(o.sql.replace_digits && o.sql.keep_sql_alias && o.sql.dollar_quoted_func);
        assert!(o.sql.table_names);
        assert!(!o.redis.enabled && o.redis.remove_all_args);
        assert!(!o.valkey.enabled && o.valkey.remove_all_args);
        assert!(!o.memcached.enabled && o.memcached.keep_command);
        assert!(o.http.remove_query_string && o.http.remove_paths_with_digits);
        assert!(o.credit_cards.enabled && o.credit_cards.luhn);
        assert_eq!(o.credit_cards.keep_values, ["a", "b"]);
        assert!(!o.elasticsearch.enabled && !o.opensearch.enabled && !o.mongodb.enabled);
        assert_eq!(o.elasticsearch.keep_values, ["k1"]);
        assert_eq!(o.opensearch.obfuscate_sql_values, ["q2"]);
        assert_eq!(o.mongodb.keep_values, ["k3"]);
        assert_eq!(p.replace_tags, "[]");
        assert!(p.component_to_name);
        assert!(b.build().is_ok());
        assert_eq!(c.batch_max_bytes, 1000);
        assert_eq!(c.batch_max_delay, Duration::from_millis(10));
        assert_eq!(c.queue_max_bytes, 5000);
        assert_eq!(c.statsd_url, "udp://127.0.0.1:8125");
    }

    #[test]
    fn url_source_last_setter_wins() {
        let mut b = ExporterBuilder::new();
        assert_eq!(b.resolve_url().unwrap(), AgentUrl::default());
        b.url_from_env(true);
        assert_eq!(b.config.url, UrlSource::Env);
        b.url("unix:///tmp/x.sock");
        assert!(b.resolve_url().unwrap().is_unix());
        b.url_from_env(false);
        assert!(
            b.resolve_url().unwrap().is_unix(),
            "false does not undo an explicit url"
        );
        b.url_from_env(true).url_from_env(false);
        assert_eq!(b.resolve_url().unwrap(), AgentUrl::default());
    }

    #[test]
    fn build_validates() {
        let err = ExporterBuilder::new().url("nope").build().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        let err = ExporterBuilder::new()
            .request_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.message().contains("request_timeout"), "{err}");
        let err = ExporterBuilder::new()
            .language("bad\nvalue")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        let err = ExporterBuilder::new()
            .stats_max_keys_per_bucket(0)
            .build()
            .unwrap_err();
        assert!(err.message().contains("stats_max_keys_per_bucket"), "{err}");
        assert!(ExporterBuilder::new().build().is_ok());
        let err = ExporterBuilder::new()
            .obfuscate(true)
            .obfuscation_sql_mode("fast")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        let err = ExporterBuilder::new()
            .replace_tags(r#"[{"name": "a"}]"#)
            .build()
            .unwrap_err();
        assert!(err.message().contains("replace_tags"), "{err}");
        for bad in [
            ExporterBuilder::new().batch_max_bytes(0).build(),
            ExporterBuilder::new().queue_max_bytes(0).build(),
            ExporterBuilder::new().statsd_url("tcp://x:1").build(),
        ] {
            assert_eq!(bad.unwrap_err().kind(), crate::ErrorKind::InvalidArgument);
        }
        assert!(ExporterBuilder::new()
            .batch_max_delay(Duration::ZERO)
            .statsd_url("unix:///tmp/dsd.sock")
            .build()
            .is_ok());
    }
}

//! Obfuscation: the Datadog agent's per-span-type rules, with the agent's exact results.
//!
//! The agent obfuscates what it receives (`pkg/trace/agent/obfuscate.go`, `pkg/obfuscate`), but
//! spans that do not go through an agent (agentless, OTLP, stats keys computed in the client)
//! must be obfuscated the same way beforehand. [`Obfuscator::obfuscate_span`] applies the agent's
//! rules for one span:
//!
//! | span type | what is obfuscated |
//! |---|---|
//! | any | with credit cards on: card-number-looking values of every meta tag and span event attribute except the agent's allow-list, `_*` keys and `keep_values` |
//! | `sql`, `cassandra` | the resource, and the `sql.query`, `db.statement`, `db.query.text` tags (SQL obfuscation; `sql.tables` added when known) |
//! | `redis`, `valkey` | the resource is quantized (always); `redis.raw_command` / `valkey.raw_command` obfuscated when enabled (or all arguments removed) |
//! | `memcached` | `memcached.command`: the stored value dropped (or the whole command without `keep_command`) |
//! | `web`, `http` | `http.url`: user info removed; query string / digit path segments optionally |
//! | `mongodb` | `mongodb.query` (JSON) |
//! | `elasticsearch`, `opensearch` | `elasticsearch.body`, `opensearch.body` (JSON) |
//!
//! [`Obfuscator::obfuscate_chunk`] runs, per span, obfuscation then the agent's truncation, then
//! the tag replacement rules over the chunk: the agent's order (see [`crate::normalize`]).
//!
//! SQL obfuscation lives in its own module; this module reaches it only through
//! [`obfuscate_sql_query`] (or a [`SqlObfuscator`] given with
//! [`Obfuscator::with_sql_backend`]). A query it cannot obfuscate (any error) becomes
//! `Non-parsable SQL query`: raw SQL never leaves.
//!
//! Everything is allocation-free when nothing changes: values come back `Cow::Borrowed`.

pub mod credit_cards;
pub mod http;
pub mod ip;
pub mod json;
pub mod memcached;
pub mod redis;
pub mod replace;
pub mod sql;

pub use credit_cards::{is_card_number, CreditCardsConfig};
pub use http::{obfuscate_url, HttpConfig};
pub use ip::quantize_peer_ip_addresses;
pub use json::{JsonConfig, JsonObfuscator};
pub use memcached::obfuscate_memcached;
pub use redis::{obfuscate_redis, quantize_redis, remove_all_redis_args};
pub use replace::{replace_tags, rules_from_json, ReplaceRule};

use crate::error::Result;
use crate::normalize::{truncate_span, update_str, MAX_RESOURCE_LEN};
use crate::span::Str;
use crate::span::{AttributeScalar, AttributeValue, Span, Trace};
use std::borrow::Cow;
use std::sync::Arc;

/// Resource and `sql.query` of a SQL span whose query could not be parsed.
pub const TEXT_NON_PARSABLE: &str = "Non-parsable SQL query";

const TAG_REDIS_RAW_COMMAND: &str = "redis.raw_command";
const TAG_VALKEY_RAW_COMMAND: &str = "valkey.raw_command";
const TAG_MEMCACHED_COMMAND: &str = "memcached.command";
const TAG_MONGODB_QUERY: &str = "mongodb.query";
const TAG_ELASTIC_BODY: &str = "elasticsearch.body";
const TAG_OPENSEARCH_BODY: &str = "opensearch.body";
const TAG_SQL_QUERY: &str = "sql.query";
const TAG_DB_STATEMENT: &str = "db.statement";
const TAG_DB_QUERY_TEXT: &str = "db.query.text";
const TAG_HTTP_URL: &str = "http.url";
const TAG_DBMS: &str = "db.type";
const TAG_SQL_TABLES: &str = "sql.tables";

/// Redis (or Valkey) command obfuscation settings.
#[derive(Debug, Clone, Copy)]
pub struct RedisConfig {
    /// Obfuscate `redis.raw_command` (`valkey.raw_command`). The resource is quantized anyway.
    pub enabled: bool,
    /// Replace every argument with `?` instead of only the known sensitive ones.
    pub remove_all_args: bool,
}

/// Memcached command obfuscation settings.
#[derive(Debug, Clone, Copy)]
pub struct MemcachedConfig {
    /// Obfuscate `memcached.command`.
    pub enabled: bool,
    /// Keep the command (without the stored value); otherwise the tag becomes "".
    pub keep_command: bool,
}

/// SQL obfuscation settings (the agent's `SQLConfig`), handed to the SQL obfuscator as they are.
#[derive(Debug, Clone, Default)]
pub struct SqlSettings {
    /// Default database system when a span has no `db.type` (`mysql`, `postgresql`, ...).
    pub dbms: String,
    /// Also extract the table names (`sql.tables`).
    pub table_names: bool,
    /// Replace digits in identifiers.
    pub replace_digits: bool,
    /// Keep `AS` aliases.
    pub keep_sql_alias: bool,
    /// Treat `$func$` dollar-quoted strings as code.
    pub dollar_quoted_func: bool,
    /// `obfuscate_only`, `obfuscate_and_normalize` or "" (the agent's legacy obfuscator).
    pub obfuscation_mode: String,
}

/// What SQL obfuscation of one query yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlObfuscated {
    /// The obfuscated query.
    pub query: String,
    /// Comma-separated table names ("" when not collected).
    pub tables_csv: String,
}

/// A SQL obfuscator (the plug-in point for `obfuscate::sql`).
pub trait SqlObfuscator: Send + Sync {
    /// Obfuscates `query` for the database system `dbms` ("" = configured default).
    fn obfuscate_sql(&self, query: &str, dbms: &str) -> Result<SqlObfuscated>;
}

impl SqlSettings {
    /// The SQL obfuscator's configuration for these settings. Errors: an unknown
    /// `obfuscation_mode` (`InvalidArgument`, the agent's message).
    pub fn to_sql_config(&self) -> Result<sql::SqlConfig> {
        Ok(sql::SqlConfig {
            dbms: self.dbms.clone(),
            table_names: self.table_names,
            replace_digits: self.replace_digits,
            keep_sql_alias: self.keep_sql_alias,
            dollar_quoted_func: self.dollar_quoted_func,
            obfuscation_mode: sql::ObfuscationMode::parse(&self.obfuscation_mode)?,
            ..sql::SqlConfig::default()
        })
    }
}

/// Obfuscates one SQL query with `settings`, `dbms` (when not empty) overriding the configured
/// default database system, starting from the agent's default escape state. An [`Obfuscator`]
/// does the same with one [`sql::SqlObfuscator`] for all its queries, so the agent's adaptive
/// escape state carries from one query to the next as in the agent.
pub fn obfuscate_sql_query(
    settings: &SqlSettings,
    query: &str,
    dbms: &str,
) -> Result<SqlObfuscated> {
    let config = settings.to_sql_config()?;
    let out = sql::SqlObfuscator::new().obfuscate_for_dbms(query, &config, dbms)?;
    Ok(SqlObfuscated {
        query: out.query,
        tables_csv: out.table_names,
    })
}

/// Obfuscation settings. `Default` is a deployed agent's default configuration.
#[derive(Debug, Clone)]
pub struct ObfuscationConfig {
    /// Redis: `redis.raw_command`.
    pub redis: RedisConfig,
    /// Valkey: `valkey.raw_command`.
    pub valkey: RedisConfig,
    /// Memcached: `memcached.command`.
    pub memcached: MemcachedConfig,
    /// HTTP: `http.url`.
    pub http: HttpConfig,
    /// Elasticsearch bodies: `elasticsearch.body`.
    pub elasticsearch: JsonConfig,
    /// OpenSearch bodies: `opensearch.body`.
    pub opensearch: JsonConfig,
    /// MongoDB queries: `mongodb.query`.
    pub mongodb: JsonConfig,
    /// Credit card numbers in all tags.
    pub credit_cards: CreditCardsConfig,
    /// Tag replacement rules (`DD_APM_REPLACE_TAGS`), applied after obfuscation and truncation.
    pub replace_tags: Vec<ReplaceRule>,
    /// SQL settings, for the SQL obfuscator.
    pub sql: SqlSettings,
    /// Apply the agent's truncation rules in [`Obfuscator::obfuscate_chunk`], after obfuscation
    /// (the agent's order). Off by default because [`crate::normalize::NormalizeConfig`]
    /// truncates by default: truncation is not idempotent (a cut dropping a partial character
    /// leaves room for part of the `...` on a second pass), so exactly one of the two must do
    /// it. For the agent's exact results: normalize with `truncate: false`, obfuscate with
    /// `truncate: true`.
    pub truncate: bool,
    /// Maximum resource length for truncation.
    pub max_resource_len: usize,
    /// Keep the built-in SQL engine's results by query (see [`SqlCache`]; the agent's
    /// obfuscation cache). Results are identical with or without it; it trades up to 4 MB of
    /// memory (counted with its table's spare slots and allocation overheads) for not
    /// obfuscating a query text seen before. A workload whose queries are all different (values
    /// written into the query text instead of bound as parameters) gains nothing from it: every
    /// lookup misses, and each miss also pays for an insert and the memory; turn it off there.
    /// Default on.
    pub sql_cache: bool,
}

impl Default for ObfuscationConfig {
    fn default() -> Self {
        let json = JsonConfig {
            enabled: true,
            ..JsonConfig::default()
        };
        ObfuscationConfig {
            redis: RedisConfig {
                enabled: true,
                remove_all_args: false,
            },
            valkey: RedisConfig {
                enabled: true,
                remove_all_args: false,
            },
            memcached: MemcachedConfig {
                enabled: true,
                keep_command: false,
            },
            http: HttpConfig::default(),
            elasticsearch: json.clone(),
            opensearch: json.clone(),
            mongodb: json,
            credit_cards: CreditCardsConfig {
                enabled: true,
                luhn: false,
                keep_values: Vec::new(),
            },
            replace_tags: Vec::new(),
            sql: SqlSettings::default(),
            truncate: false,
            max_resource_len: MAX_RESOURCE_LEN,
            sql_cache: true,
        }
    }
}

impl ObfuscationConfig {
    /// Everything off (the agent's obfuscation with an empty configuration): only Redis/Valkey
    /// resources are quantized, URLs lose their user info and SQL is obfuscated.
    pub fn disabled() -> Self {
        ObfuscationConfig {
            redis: RedisConfig {
                enabled: false,
                remove_all_args: false,
            },
            valkey: RedisConfig {
                enabled: false,
                remove_all_args: false,
            },
            memcached: MemcachedConfig {
                enabled: false,
                keep_command: false,
            },
            http: HttpConfig::default(),
            elasticsearch: JsonConfig::default(),
            opensearch: JsonConfig::default(),
            mongodb: JsonConfig::default(),
            credit_cards: CreditCardsConfig::default(),
            replace_tags: Vec::new(),
            sql: SqlSettings::default(),
            truncate: false,
            max_resource_len: MAX_RESOURCE_LEN,
            sql_cache: true,
        }
    }
}

/// Most bytes [`SqlCache`] uses (its table with spare slots, its strings with their allocation
/// overheads) before it starts over (the agent's obfuscation cache defaults to 5 MB).
const SQL_CACHE_MAX_BYTES: usize = 4 << 20;
/// What one cache entry costs besides its heap strings: its table slot and control byte, 16/7
/// times over (a hashbrown table fills at most 7/8 of its slots and doubles them when it grows,
/// so just after a growth it is 7/16 full: 16/7 slots per entry).
const SQL_CACHE_SLOT_COST: usize = ((std::mem::size_of::<SqlCacheEntry>() + 1) * 16).div_ceil(7);

/// What a heap string of `len` bytes costs: nothing when empty (no allocation), else glibc
/// malloc's chunk (an 8-byte header, rounded up to 16 bytes, 32 at least).
fn sql_cache_heap_cost(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len + 8).max(32).next_multiple_of(16)
    }
}

/// The built-in SQL engine's results by (database system, query), as the agent's obfuscation
/// cache (`ObfuscateSQLStringWithOptions`): tracers send the same query text over and over.
/// Exact: for a given configuration, the engine's result depends on the query, the database
/// system and its adaptive escape state, and that state only matters for backslashes (it
/// decides whether a backslash in a string escapes; it only changes after a failure on a query
/// that had one), so only queries without a backslash are cached. Bounded: past
/// [`SQL_CACHE_MAX_BYTES`] the cache is emptied and fills again. Shared by an obfuscator's clones
/// (a lock around lookups and inserts only, never around obfuscation: a read lock for lookups,
/// so threads looking up do not wait for one another).
///
/// Never waits: a lookup that finds the lock taken for writing is a miss and an insert that
/// finds it taken at all is skipped (`try_read` / `try_write`), so the cache only costs the
/// obfuscation it would have saved. In a child forked while another thread held the lock, that
/// lock stays taken forever: the child runs without the cache instead of hanging.
#[derive(Default)]
struct SqlCache {
    hasher: foldhash::fast::RandomState,
    inner: std::sync::RwLock<SqlCacheInner>,
}

#[derive(Default)]
struct SqlCacheInner {
    table: hashbrown::HashTable<SqlCacheEntry>,
    bytes: usize,
}

struct SqlCacheEntry {
    hash: u64,
    dbms: Box<str>,
    query: Box<str>,
    result: Result<SqlObfuscated>,
}

impl SqlCache {
    /// The key hash of (`query`, `dbms`): computed once per query by the caller, for both
    /// [`SqlCache::get`] and [`SqlCache::put`].
    fn hash(&self, query: &str, dbms: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one((dbms, query))
    }

    /// The cached result of (`query`, `dbms`) whose [`SqlCache::hash`] is `hash`; `None` on a
    /// miss, and when the lock is taken for writing (see the type's docs).
    fn get(&self, hash: u64, query: &str, dbms: &str) -> Option<Result<SqlObfuscated>> {
        use std::sync::TryLockError;
        let inner = match self.inner.try_read() {
            Ok(g) => g,
            // Entries are complete when inserted: a panic elsewhere cannot leave one half-written.
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        inner
            .table
            .find(hash, |e| {
                e.hash == hash && *e.query == *query && *e.dbms == *dbms
            })
            .map(|e| e.result.clone())
    }

    /// Remembers `result` for (`query`, `dbms`) whose [`SqlCache::hash`] is `hash`; skipped when
    /// the lock is taken (see the type's docs).
    fn put(&self, hash: u64, query: &str, dbms: &str, result: &Result<SqlObfuscated>) {
        use std::sync::TryLockError;
        // Counted honestly (slots, spare slots, allocation headers) so that the bound holds
        // for the memory really used.
        let size = SQL_CACHE_SLOT_COST
            + sql_cache_heap_cost(query.len())
            + sql_cache_heap_cost(dbms.len())
            + match result {
                Ok(o) => {
                    sql_cache_heap_cost(o.query.len()) + sql_cache_heap_cost(o.tables_csv.len())
                }
                Err(e) => sql_cache_heap_cost(e.message().len()),
            };
        if size > SQL_CACHE_MAX_BYTES / 16 {
            return;
        }
        let mut inner = match self.inner.try_write() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        if inner.bytes + size > SQL_CACHE_MAX_BYTES {
            inner.table = hashbrown::HashTable::new();
            inner.bytes = 0;
        }
        let found = inner
            .table
            .find(hash, |e| {
                e.hash == hash && *e.query == *query && *e.dbms == *dbms
            })
            .is_some();
        if found {
            // Another thread obfuscated the same query meanwhile.
            return;
        }
        inner.bytes += size;
        inner.table.insert_unique(
            hash,
            SqlCacheEntry {
                hash,
                dbms: dbms.into(),
                query: query.into(),
                result: result.clone(),
            },
            |e| e.hash,
        );
    }
}

/// Applies the agent's obfuscation rules. Build once; `&self` methods are thread-safe.
#[derive(Clone)]
pub struct Obfuscator {
    cfg: ObfuscationConfig,
    es: Option<JsonObfuscator>,
    opensearch: Option<JsonObfuscator>,
    mongo: Option<JsonObfuscator>,
    sql: Option<Arc<dyn SqlObfuscator>>,
    /// The built-in SQL engine, shared by clones (its escape state is the agent's, per obfuscator).
    sql_engine: Arc<sql::SqlObfuscator>,
    /// The built-in engine's results by query, shared by clones (see [`SqlCache`]).
    sql_cache: Arc<SqlCache>,
    /// `cfg.sql` as the SQL engine's configuration (validated once).
    sql_config: sql::SqlConfig,
}

impl std::fmt::Debug for Obfuscator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Obfuscator")
            .field("cfg", &self.cfg)
            .field("sql_backend", &self.sql.is_some())
            .finish()
    }
}

impl Obfuscator {
    /// An obfuscator for `cfg`. Errors: an unknown SQL `obfuscation_mode` (`InvalidArgument`).
    pub fn new(cfg: ObfuscationConfig) -> Result<Self> {
        let build = |c: &JsonConfig| c.enabled.then(|| JsonObfuscator::new(c));
        Ok(Obfuscator {
            es: build(&cfg.elasticsearch),
            opensearch: build(&cfg.opensearch),
            mongo: build(&cfg.mongodb),
            sql_engine: Arc::new(sql::SqlObfuscator::new()),
            sql_cache: Arc::default(),
            sql_config: cfg.sql.to_sql_config()?,
            cfg,
            sql: None,
        })
    }

    /// Uses `backend` for SQL instead of [`obfuscate_sql_query`].
    pub fn with_sql_backend(mut self, backend: Arc<dyn SqlObfuscator>) -> Self {
        self.sql = Some(backend);
        self
    }

    /// The settings.
    pub fn config(&self) -> &ObfuscationConfig {
        &self.cfg
    }

    /// Obfuscates one SQL query (through the backend, or the built-in engine with this
    /// obfuscator's SQL settings); `dbms` (when not empty) overrides the configured database
    /// system, as the agent's `ObfuscateSQLStringForDBMS`.
    pub fn obfuscate_sql(&self, query: &str, dbms: &str) -> Result<SqlObfuscated> {
        match &self.sql {
            Some(b) => b.obfuscate_sql(query, dbms),
            None => {
                // Only queries without a backslash are cached: the engine's adaptive escape
                // state changes how a backslash reads, and nothing else (see `SqlCache`).
                let cacheable =
                    self.cfg.sql_cache && memchr::memchr(b'\\', query.as_bytes()).is_none();
                // The key is hashed once, for the lookup and the insert.
                let hash = cacheable.then(|| self.sql_cache.hash(query, dbms));
                if let Some(hash) = hash {
                    if let Some(hit) = self.sql_cache.get(hash, query, dbms) {
                        return hit;
                    }
                }
                let out = self
                    .sql_engine
                    .obfuscate_for_dbms(query, &self.sql_config, dbms)
                    .map(|out| SqlObfuscated {
                        query: out.query,
                        tables_csv: out.table_names,
                    });
                if let Some(hash) = hash {
                    self.sql_cache.put(hash, query, dbms, &out);
                }
                out
            }
        }
    }

    /// The SQL transformer for JSON `obfuscate_sql_values`.
    fn sql_transformer(&self) -> Option<impl Fn(&str) -> String + '_> {
        Some(move |v: &str| match self.obfuscate_sql(v, "") {
            Ok(o) => o.query,
            Err(_) => json::SQL_FAILURE_TEXT.to_owned(),
        })
    }

    /// Obfuscates an Elasticsearch body with this obfuscator's settings (unchanged when off).
    pub fn obfuscate_elasticsearch<'a>(&self, body: &'a str) -> Cow<'a, str> {
        self.json_with(self.es.as_ref(), body)
    }

    /// Obfuscates an OpenSearch body with this obfuscator's settings (unchanged when off).
    pub fn obfuscate_opensearch<'a>(&self, body: &'a str) -> Cow<'a, str> {
        self.json_with(self.opensearch.as_ref(), body)
    }

    /// Obfuscates a MongoDB query with this obfuscator's settings (unchanged when off).
    pub fn obfuscate_mongodb<'a>(&self, query: &'a str) -> Cow<'a, str> {
        self.json_with(self.mongo.as_ref(), query)
    }

    fn json_with<'a>(&self, o: Option<&JsonObfuscator>, s: &'a str) -> Cow<'a, str> {
        let Some(o) = o else {
            return Cow::Borrowed(s);
        };
        if s.is_empty() {
            return Cow::Borrowed(s);
        }
        if o.has_transform_keys() {
            if let Some(t) = self.sql_transformer() {
                return o.obfuscate(s, Some(&t)).0;
            }
        }
        o.obfuscate(s, None).0
    }

    /// Obfuscates a resource the way the agent obfuscates stats groups (`obfuscateStatsGroup`):
    /// SQL for `sql`/`cassandra` (`Non-parsable SQL query` on failure), quantization for
    /// `redis`/`valkey`, unchanged otherwise. For client-side stats keys.
    pub fn obfuscate_resource<'a>(
        &self,
        span_type: &str,
        resource: &'a str,
        dbms: &str,
    ) -> Cow<'a, str> {
        match span_type {
            "sql" | "cassandra" => match self.obfuscate_sql(resource, dbms) {
                Ok(o) => Cow::Owned(o.query),
                Err(_) => Cow::Borrowed(TEXT_NON_PARSABLE),
            },
            "redis" | "valkey" => quantize_redis(resource),
            _ => Cow::Borrowed(resource),
        }
    }

    /// Applies the agent's obfuscation rules to one span, in place (see the module docs).
    pub fn obfuscate_span(&self, span: &mut Span<'_>) {
        let cc = &self.cfg.credit_cards;
        if cc.enabled {
            for ev in span.span_events.iter_mut() {
                for (k, v) in ev.attributes.iter_mut() {
                    if credit_cards::should_check_key(k, &cc.keep_values) {
                        cc_attribute(v, cc.luhn);
                    }
                }
            }
            // The value test first: it rejects almost every value on its length or first byte
            // (inline, see `is_card_number`), while the key test compares against the agent's
            // allow-list (both are pure, so the order does not change the result; profiled: the
            // key test was ~9% of a span's obfuscation).
            for (k, v) in span.meta.entries_mut().iter_mut() {
                if is_card_number(v, cc.luhn) && credit_cards::should_check_key(k, &cc.keep_values)
                {
                    *v = Str::borrowed("?");
                }
            }
        }
        match span.r#type.as_ref() {
            "sql" | "cassandra" => self.obfuscate_sql_span(span),
            "redis" | "valkey" => {
                update_str(&mut span.resource, quantize_redis);
                let (tag, c) = if span.r#type == "redis" {
                    (TAG_REDIS_RAW_COMMAND, self.cfg.redis)
                } else {
                    (TAG_VALKEY_RAW_COMMAND, self.cfg.valkey)
                };
                if c.enabled {
                    if let Some(v) = span.meta.get_mut(tag) {
                        if !v.is_empty() {
                            if c.remove_all_args {
                                update_str(v, remove_all_redis_args);
                            } else {
                                update_str(v, obfuscate_redis);
                            }
                        }
                    }
                }
            }
            "memcached" => {
                let c = self.cfg.memcached;
                if c.enabled {
                    if let Some(v) = span.meta.get_mut(TAG_MEMCACHED_COMMAND) {
                        if !v.is_empty() {
                            update_str(v, |s| obfuscate_memcached(s, c.keep_command));
                        }
                    }
                }
            }
            "web" | "http" => {
                if let Some(v) = span.meta.get_mut(TAG_HTTP_URL) {
                    if !v.is_empty() {
                        update_str(v, |s| obfuscate_url(s, &self.cfg.http));
                    }
                }
            }
            "mongodb" => {
                if let (Some(o), Some(v)) = (&self.mongo, span.meta.get_mut(TAG_MONGODB_QUERY)) {
                    if !v.is_empty() {
                        update_str(v, |s| self.json_with(Some(o), s));
                    }
                }
            }
            "elasticsearch" | "opensearch" => {
                if let (Some(o), Some(v)) = (&self.es, span.meta.get_mut(TAG_ELASTIC_BODY)) {
                    if !v.is_empty() {
                        update_str(v, |s| self.json_with(Some(o), s));
                    }
                }
                if let (Some(o), Some(v)) =
                    (&self.opensearch, span.meta.get_mut(TAG_OPENSEARCH_BODY))
                {
                    if !v.is_empty() {
                        update_str(v, |s| self.json_with(Some(o), s));
                    }
                }
            }
            _ => {}
        }
    }

    fn obfuscate_sql_span(&self, span: &mut Span<'_>) {
        // The resource and `db.type` are taken or cloned as they are (borrowed from the payload:
        // no copy), not copied into new strings.
        let dbms = span.meta.get(TAG_DBMS).cloned().unwrap_or_default();
        if span.resource.is_empty() {
            self.obfuscate_sql_attributes(span, &dbms, "", "");
            return;
        }
        let raw = std::mem::take(&mut span.resource);
        match self.obfuscate_sql(&raw, &dbms) {
            Err(e) => {
                log::debug!("error parsing SQL query: {e}");
                span.resource = Str::borrowed(TEXT_NON_PARSABLE);
                self.obfuscate_sql_attributes(span, &dbms, &raw, TEXT_NON_PARSABLE);
            }
            Ok(o) => {
                self.obfuscate_sql_attributes(span, &dbms, &raw, &o.query);
                span.resource = Str::owned(o.query);
                if !o.tables_csv.is_empty() {
                    span.meta.insert(TAG_SQL_TABLES, Str::owned(o.tables_csv));
                }
            }
        }
    }

    /// The query tags of a SQL span: each one (its last occurrence, what a lookup sees) is
    /// obfuscated in the order `sql.query`, `db.statement`, `db.query.text` (the order matters:
    /// the SQL engine's escape state carries from query to query), reusing the resource's result
    /// when it holds the same query; an empty `sql.query` is dropped. One pass over meta finds
    /// the three instead of a lookup and a replace per tag.
    fn obfuscate_sql_attributes(
        &self,
        span: &mut Span<'_>,
        dbms: &str,
        raw: &str,
        obfuscated: &str,
    ) {
        const KEYS: [&str; 3] = [TAG_SQL_QUERY, TAG_DB_STATEMENT, TAG_DB_QUERY_TEXT];
        let mut at = [None::<usize>; 3];
        for (i, (k, _)) in span.meta.as_slice().iter().enumerate() {
            if let Some(j) = KEYS.iter().position(|key| *key == k.as_ref()) {
                at[j] = Some(i);
            }
        }
        let mut drop_sql_query = false;
        let entries = span.meta.entries_mut();
        for (slot, key) in at.into_iter().zip(KEYS) {
            let Some(i) = slot else {
                continue;
            };
            let v = &entries[i].1;
            if v.is_empty() {
                // An empty sql.query carries no query: dropped, as the agent does.
                drop_sql_query |= key == TAG_SQL_QUERY;
                continue;
            }
            let new = if v.as_ref() == raw {
                obfuscated.to_owned()
            } else {
                match self.obfuscate_sql(v, dbms) {
                    Ok(o) => o.query,
                    Err(_) => TEXT_NON_PARSABLE.to_owned(),
                }
            };
            entries[i].1 = Str::owned(new);
        }
        if drop_sql_query {
            span.meta.remove(TAG_SQL_QUERY);
        }
    }

    /// Obfuscates every span of a chunk, then (if configured) applies the agent's truncation to
    /// each, then the tag replacement rules: the agent's order.
    pub fn obfuscate_chunk(&self, chunk: &mut Trace<'_>) {
        for span in chunk.iter_mut() {
            self.obfuscate_span(span);
            if self.cfg.truncate {
                truncate_span(span, self.cfg.max_resource_len);
            }
        }
        if !self.cfg.replace_tags.is_empty() {
            replace_tags(chunk, &self.cfg.replace_tags);
        }
    }
}

/// Credit-card check of one span event attribute (strings, ints and doubles as the agent
/// formats them; booleans are skipped). A match becomes the string `?`.
fn cc_attribute(v: &mut AttributeValue<'_>, luhn: bool) {
    match v {
        AttributeValue::Scalar(s) => {
            if cc_scalar_matches(s, luhn) {
                *s = AttributeScalar::String(Str::borrowed("?"));
            }
        }
        AttributeValue::Array(a) => {
            for s in a.iter_mut() {
                if cc_scalar_matches(s, luhn) {
                    *s = AttributeScalar::String(Str::borrowed("?"));
                }
            }
        }
    }
}

fn cc_scalar_matches(s: &AttributeScalar<'_>, luhn: bool) -> bool {
    match s {
        AttributeScalar::String(v) => is_card_number(v, luhn),
        AttributeScalar::Int(i) => is_card_number(&i.to_string(), luhn),
        AttributeScalar::Double(d) => is_card_number(&replace::go_format_float(*d), luhn),
        AttributeScalar::Bool(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl SqlCache {
        /// The cache's contents, for assertions.
        fn lock(&self) -> std::sync::RwLockReadGuard<'_, SqlCacheInner> {
            self.inner.read().unwrap()
        }
    }

    /// With the cache, every result is the one an engine without a cache gives for the same
    /// sequence of queries (the escape state included: a query that fails with backslashes read
    /// as escapes flips it), repeats and database systems included.
    #[test]
    fn cached_sql_results_are_the_engines() {
        let queries = [
            ("SELECT * FROM users WHERE id = 42", ""),
            ("SELECT * FROM users WHERE id = 42", "mysql"),
            ("SELECT * FROM users WHERE id = 42", ""),
            ("UPDATE t SET a = 'x' WHERE b = 1", "postgresql"),
            ("SELECT 'a\\'b' FROM t", ""),
            ("SELECT * FROM t WHERE a = 'C:\\' AND b = 'x'", ""),
            ("SELECT 'a\\'b' FROM t", ""),
            ("SELECT * FROM users WHERE id = 42", ""),
            ("SELECT * FROM t WHERE a = 'C:\\' AND b = 'x'", ""),
            ("SELECT \"unterminated FROM t", ""),
            ("SELECT \"unterminated FROM t", ""),
            ("SELECT [x] FROM [t] WHERE y = 2", "mssql"),
            ("SELECT [x] FROM [t] WHERE y = 2", ""),
        ];
        for table_names in [false, true] {
            let mut cfg = ObfuscationConfig::default();
            cfg.sql.table_names = table_names;
            let cached = Obfuscator::new(cfg.clone()).unwrap();
            let engine = sql::SqlObfuscator::new();
            let sql_cfg = cfg.sql.to_sql_config().unwrap();
            let mut flips = 0;
            for round in 0..3 {
                for (q, dbms) in queries {
                    let got = cached.obfuscate_sql(q, dbms);
                    let want = engine
                        .obfuscate_for_dbms(q, &sql_cfg, dbms)
                        .map(|o| (o.query, o.table_names));
                    match (got, want) {
                        (Ok(g), Ok(w)) => assert_eq!((g.query, g.tables_csv), w, "{q} {round}"),
                        (Err(g), Err(w)) => assert_eq!(g.to_string(), w.to_string()),
                        (g, w) => panic!("{q} {dbms} {round}: {g:?} vs {w:?}"),
                    }
                    let before = engine.literal_escapes();
                    assert_eq!(cached.sql_engine.literal_escapes(), before, "{q}");
                    flips += usize::from(before != sql::SqlObfuscator::new().literal_escapes());
                }
            }
            assert!(flips > 0, "the sequence changes the escape state");
        }
    }

    #[test]
    fn sql_cache_is_bounded_and_skips_backslashes() {
        let o = Obfuscator::new(ObfuscationConfig::default()).unwrap();
        o.obfuscate_sql("SELECT 'a\\'b' FROM t", "").unwrap();
        assert_eq!(o.sql_cache.lock().table.len(), 0);
        let filler = "x".repeat(2000);
        for i in 0..3000 {
            let q = format!("SELECT {filler} FROM t{i} WHERE a = {i}");
            o.obfuscate_sql(&q, "").unwrap();
            let inner = o.sql_cache.lock();
            assert!(inner.bytes <= SQL_CACHE_MAX_BYTES);
            assert!(!inner.table.is_empty());
        }
        // A clone shares the cache.
        let c = o.clone();
        assert!(Arc::ptr_eq(&c.sql_cache, &o.sql_cache));
    }

    /// A cache whose lock is taken (by another thread, or forever in a child forked while a
    /// thread held it) neither blocks nor changes a result: a held write lock makes every lookup
    /// a miss and skips the insert, a held read lock still serves hits but skips the insert.
    #[test]
    fn sql_cache_never_waits_for_its_lock() {
        let o = Obfuscator::new(ObfuscationConfig::default()).unwrap();
        let q = "SELECT * FROM users WHERE id = 42";
        let want = "SELECT * FROM users WHERE id = ?";
        {
            let _held = o.sql_cache.inner.write().unwrap();
            for _ in 0..2 {
                assert_eq!(o.obfuscate_sql(q, "").unwrap().query, want);
            }
        }
        assert_eq!(
            o.sql_cache.lock().table.len(),
            0,
            "insert skipped while busy"
        );
        assert_eq!(o.obfuscate_sql(q, "").unwrap().query, want);
        assert_eq!(o.sql_cache.lock().table.len(), 1);
        {
            let _held = o.sql_cache.inner.read().unwrap();
            assert_eq!(o.obfuscate_sql(q, "").unwrap().query, want);
            let other = "UPDATE t SET a = 1";
            assert_eq!(
                o.obfuscate_sql(other, "").unwrap().query,
                "UPDATE t SET a = ?"
            );
        }
        assert_eq!(
            o.sql_cache.lock().table.len(),
            1,
            "insert skipped under a read lock"
        );
    }

    /// The bytes counted cover what the cache really holds: its table's allocation (spare slots
    /// included) and its strings' allocations, each at least its length plus a header.
    #[test]
    fn sql_cache_counts_its_real_memory() {
        let o = Obfuscator::new(ObfuscationConfig::default()).unwrap();
        let mut strings = 0;
        for i in 0..3000 {
            let q = format!("SELECT a FROM t WHERE b = {i}");
            let out = o.obfuscate_sql(&q, "mysql").unwrap();
            strings += q.len() + 8 + "mysql".len() + 8 + out.query.len() + 8;
            let inner = o.sql_cache.lock();
            assert_eq!(inner.table.len(), i + 1);
            if i >= 64 {
                let real = inner.table.allocation_size() + strings;
                assert!(inner.bytes >= real, "{i}: counted {} < {real}", inner.bytes);
            }
        }
    }

    #[test]
    fn sql_cache_can_be_turned_off() {
        let o = Obfuscator::new(ObfuscationConfig {
            sql_cache: false,
            ..ObfuscationConfig::default()
        })
        .unwrap();
        let q = "SELECT * FROM users WHERE id = 42";
        let first = o.obfuscate_sql(q, "").unwrap();
        assert_eq!(o.obfuscate_sql(q, "").unwrap(), first);
        assert_eq!(first.query, "SELECT * FROM users WHERE id = ?");
        assert_eq!(o.sql_cache.lock().table.len(), 0);
    }
}

//! Deterministic payload generator: realistic traces written as v0.4 and v0.5 msgpack.
//!
//! Every shape is generated from a fixed seed, so the parent process and every child process of a
//! run (and every run) see byte-identical payloads. Spans are built as plain owned values
//! ([`GenSpan`]) and then written with `rmp` at the lowest level, so the generator depends on
//! neither side's span model.

use std::collections::HashMap;
use std::fmt::Write as _;

/// Seed of every generated payload.
pub const SEED: u64 = 0x5eed_da7a_0bad_cafe;

/// A payload shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// 1,000 traces x 10 spans: HTTP server/client, SQL, Redis and internal spans.
    Realistic,
    /// One trace of 10,000 spans.
    Huge,
    /// 10,000 traces of one span each.
    Tiny,
    /// 1,000 traces x 10 spans where most spans carry span links, span events and meta_struct.
    Links,
}

impl Shape {
    /// Short name used in case names and the report.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Realistic => "realistic",
            Shape::Huge => "huge",
            Shape::Tiny => "tiny",
            Shape::Links => "links",
        }
    }

    /// One-line description for the README and the report.
    pub fn describe(self) -> &'static str {
        match self {
            Shape::Realistic => "1,000 traces x 10 spans (web/http-client/sql/redis/internal)",
            Shape::Huge => "1 trace x 10,000 spans",
            Shape::Tiny => "10,000 traces x 1 span",
            Shape::Links => "1,000 traces x 10 spans with span links, span events, meta_struct",
        }
    }
}

/// Wire format of a generated payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// v0.4: array of traces of span maps.
    V04,
    /// v0.5: `[string table, traces]`, spans as 12-element arrays.
    V05,
}

impl Wire {
    /// "v04" / "v05".
    pub fn name(self) -> &'static str {
        match self {
            Wire::V04 => "v04",
            Wire::V05 => "v05",
        }
    }
}

/// A generated span link.
#[derive(Debug, Clone)]
pub struct GenLink {
    pub trace_id: u64,
    pub trace_id_high: u64,
    pub span_id: u64,
    pub attributes: Vec<(String, String)>,
    pub tracestate: String,
    pub flags: u32,
}

/// A scalar value of a span event attribute.
#[derive(Debug, Clone)]
pub enum GenScalar {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
}

/// A span event attribute value.
#[derive(Debug, Clone)]
pub enum GenAttr {
    Scalar(GenScalar),
    Array(Vec<GenScalar>),
}

/// A generated span event.
#[derive(Debug, Clone)]
pub struct GenEvent {
    pub time_unix_nano: u64,
    pub name: String,
    pub attributes: Vec<(String, GenAttr)>,
}

/// A generated span, independent of both sides' span models.
#[derive(Debug, Clone, Default)]
pub struct GenSpan {
    pub service: String,
    pub name: String,
    pub resource: String,
    pub r#type: String,
    pub trace_id: u64,
    pub span_id: u64,
    pub parent_id: u64,
    pub start: i64,
    pub duration: i64,
    pub error: i32,
    pub meta: Vec<(String, String)>,
    pub metrics: Vec<(String, f64)>,
    pub meta_struct: Vec<(String, Vec<u8>)>,
    pub span_links: Vec<GenLink>,
    pub span_events: Vec<GenEvent>,
}

/// A generated payload in both encodings, with its counts.
pub struct Payload {
    pub traces: usize,
    pub spans: usize,
    pub v04: Vec<u8>,
    /// `None` for shapes v0.5 cannot carry (links, events, meta_struct).
    pub v05: Option<Vec<u8>>,
}

/// Generates `shape` (deterministic) and encodes it.
pub fn generate(shape: Shape) -> Payload {
    let traces = generate_traces(shape);
    let spans = traces.iter().map(Vec::len).sum();
    let v04 = encode_v04(&traces);
    let v05 = match shape {
        Shape::Links => None,
        _ => Some(encode_v05(&traces)),
    };
    Payload {
        traces: traces.len(),
        spans,
        v04,
        v05,
    }
}

/// Generates the traces of `shape` (deterministic).
pub fn generate_traces(shape: Shape) -> Vec<Vec<GenSpan>> {
    let mut g = Gen::new(SEED ^ shape as u64);
    match shape {
        Shape::Realistic => (0..1_000).map(|_| g.trace(10, false)).collect(),
        Shape::Links => (0..1_000).map(|_| g.trace(10, true)).collect(),
        Shape::Huge => vec![g.trace(10_000, false)],
        Shape::Tiny => (0..10_000).map(|_| g.trace(1, false)).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Random source: splitmix64 (tiny, deterministic, good enough for test data).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn nonzero(&mut self) -> u64 {
        self.next().max(1)
    }
    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits);
        while s.len() < digits {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(digits);
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Span generator.

const SERVICES: &[&str] = &[
    "web-store",
    "checkout-api",
    "user-service",
    "catalog",
    "auth-gw",
];
const ENVS: &[&str] = &["prod", "staging"];
const VERSIONS: &[&str] = &["1.42.0", "1.42.1", "2.0.0-rc.3"];
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/users/{user_id}"),
    ("GET", "/api/v1/products"),
    ("POST", "/api/v1/cart/{cart_id}/items"),
    ("GET", "/api/v2/orders/{order_id}/status"),
    ("PUT", "/api/v1/users/{user_id}/preferences"),
    ("DELETE", "/api/v1/sessions/{session_id}"),
    ("GET", "/healthz"),
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
    "curl/8.5.0",
];
const TABLES: &[&str] = &[
    "users",
    "orders",
    "order_items",
    "products",
    "sessions",
    "carts",
];
const REDIS_CMDS: &[&str] = &["GET", "SET", "HGETALL", "EXPIRE", "INCRBY", "MGET", "ZADD"];
const DOWNSTREAMS: &[&str] = &[
    "payments.internal.example.com",
    "inventory.internal.example.com",
    "api.stripe.com",
    "geo.internal.example.com",
];
const INTERNAL_OPS: &[&str] = &[
    "template.render",
    "serializer.dump",
    "cache.lookup",
    "auth.verify_token",
    "flask.process_response",
];

struct Gen {
    rng: Rng,
    /// Start of the next trace, ns since the epoch (2024-05-01T12:00:00Z, moving forward).
    clock: i64,
    runtime_id: String,
}

impl Gen {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let runtime_id = format!(
            "{}-{}-{}-{}-{}",
            rng.hex(8),
            rng.hex(4),
            rng.hex(4),
            rng.hex(4),
            rng.hex(12)
        );
        Gen {
            rng,
            clock: 1_714_564_800_000_000_000,
            runtime_id,
        }
    }

    /// One trace of `n` spans: a web root, then children of the root or of earlier children.
    fn trace(&mut self, n: usize, rich: bool) -> Vec<GenSpan> {
        self.clock += self.rng.range(50_000, 5_000_000) as i64;
        let start = self.clock;
        let trace_id = self.rng.nonzero();
        // 128-bit ids as tracers make them: the high half starts with the unix seconds.
        let tid_high = (((start / 1_000_000_000) as u64) << 32) | (self.rng.next() & 0xffff);
        let service = self.rng.pick(SERVICES).to_owned();
        let env = self.rng.pick(ENVS);
        let version = self.rng.pick(VERSIONS);
        let root_duration = self.rng.range(2_000_000, 400_000_000) as i64;

        let mut spans = Vec::with_capacity(n);
        let mut root = self.web_span(&service, env, version, trace_id, start, root_duration);
        root.meta
            .push(("_dd.p.tid".into(), format!("{tid_high:016x}")));
        root.meta.push(("_dd.p.dm".into(), "-0".into()));
        let priority = match self.rng.below(20) {
            0 => -1.0,
            1..=3 => 0.0,
            4 => 2.0,
            _ => 1.0,
        };
        root.metrics
            .push(("_sampling_priority_v1".into(), priority));
        root.metrics.push(("_dd.agent_psr".into(), 1.0));
        root.metrics.push(("_dd.top_level".into(), 1.0));
        spans.push(root);

        for i in 1..n {
            let parent = if i < 3 || self.rng.chance(60) {
                spans[0].span_id
            } else {
                spans[self.rng.below(i as u64) as usize].span_id
            };
            let offset = self.rng.below(root_duration as u64 / 2) as i64;
            let duration =
                self.rng
                    .range(20_000, (root_duration / 3).max(30_000) as u64) as i64;
            let s_start = start + offset;
            let mut span = match self.rng.below(10) {
                0..=3 => self.sql_span(&service, env, version, trace_id, s_start, duration),
                4..=5 => self.redis_span(&service, env, version, trace_id, s_start, duration),
                6..=7 => self.http_client_span(&service, env, version, trace_id, s_start, duration),
                _ => self.internal_span(&service, env, version, trace_id, s_start, duration),
            };
            span.parent_id = parent;
            spans.push(span);
        }
        if rich {
            for span in &mut spans {
                self.enrich(span, tid_high);
            }
        }
        spans
    }

    fn base(
        &mut self,
        service: &str,
        env: &str,
        version: &str,
        trace_id: u64,
        start: i64,
        duration: i64,
    ) -> GenSpan {
        let mut s = GenSpan {
            service: service.to_owned(),
            trace_id,
            span_id: self.rng.nonzero(),
            start,
            duration,
            ..GenSpan::default()
        };
        s.meta.push(("env".into(), env.into()));
        s.meta.push(("version".into(), version.into()));
        s.meta.push(("language".into(), "python".into()));
        s.meta.push(("runtime-id".into(), self.runtime_id.clone()));
        s.metrics.push(("process_id".into(), 4711.0));
        s
    }

    fn maybe_error(&mut self, s: &mut GenSpan, kind: &str, msg: &str) {
        if self.rng.chance(5) {
            s.error = 1;
            s.meta.push(("error.type".into(), kind.into()));
            s.meta.push(("error.message".into(), msg.into()));
            let mut stack = String::from("Traceback (most recent call last):\n");
            for depth in 0..self.rng.range(6, 14) {
                let _ = writeln!(
                    stack,
                    "  File \"/app/.venv/lib/python3.12/site-packages/app/module_{depth}.py\", line {}, in handler_{depth}\n    result = self.next_layer(request, context=ctx)",
                    self.rng.range(10, 900)
                );
            }
            let _ = write!(stack, "{kind}: {msg}");
            s.meta.push(("error.stack".into(), stack));
        }
    }

    fn web_span(
        &mut self,
        service: &str,
        env: &str,
        version: &str,
        trace_id: u64,
        start: i64,
        duration: i64,
    ) -> GenSpan {
        let mut s = self.base(service, env, version, trace_id, start, duration);
        let (method, route) = ROUTES[self.rng.below(ROUTES.len() as u64) as usize];
        let path = route
            .replace("{user_id}", &self.rng.range(1, 999_999).to_string())
            .replace("{cart_id}", &self.rng.hex(12))
            .replace(
                "{order_id}",
                &self.rng.range(10_000, 99_999_999).to_string(),
            )
            .replace("{session_id}", &self.rng.hex(32));
        s.name = "flask.request".into();
        s.resource = format!("{method} {route}");
        s.r#type = "web".into();
        let status = *[200, 200, 200, 200, 201, 204, 304, 400, 404, 500]
            .get(self.rng.below(10) as usize)
            .unwrap_or(&200);
        s.meta.push(("component".into(), "flask".into()));
        s.meta.push(("span.kind".into(), "server".into()));
        s.meta.push(("http.method".into(), method.into()));
        s.meta.push(("http.route".into(), route.into()));
        s.meta.push((
            "http.url".into(),
            format!(
                "https://shop.example.com{path}?page={}&lang=en",
                self.rng.range(1, 40)
            ),
        ));
        s.meta.push(("http.status_code".into(), status.to_string()));
        s.meta
            .push(("http.useragent".into(), self.rng.pick(USER_AGENTS).into()));
        s.meta.push((
            "http.client_ip".into(),
            format!(
                "10.{}.{}.{}",
                self.rng.below(256),
                self.rng.below(256),
                self.rng.below(256)
            ),
        ));
        s.meta.push(("http.host".into(), "shop.example.com".into()));
        s.meta
            .push(("network.client.ip".into(), "127.0.0.1".into()));
        s.meta.push((
            "flask.endpoint".into(),
            route.trim_start_matches('/').replace('/', "_"),
        ));
        s.meta.push(("flask.version".into(), "3.0.3".into()));
        s.meta.push(("_dd.base_service".into(), service.into()));
        s.metrics.push(("_dd.measured".into(), 1.0));
        s.metrics.push(("_dd.rule_psr".into(), 1.0));
        s.metrics.push(("_dd.limit_psr".into(), 1.0));
        if status >= 500 {
            s.error = 1;
            s.meta.push((
                "error.type".into(),
                "werkzeug.exceptions.InternalServerError".into(),
            ));
            s.meta
                .push(("error.message".into(), "500 Internal Server Error".into()));
        }
        s
    }

    fn sql_span(
        &mut self,
        service: &str,
        env: &str,
        version: &str,
        trace_id: u64,
        start: i64,
        duration: i64,
    ) -> GenSpan {
        let mut s = self.base(service, env, version, trace_id, start, duration);
        let table = self.rng.pick(TABLES);
        let id = self.rng.range(1, 9_999_999);
        let query = match self.rng.below(6) {
            0 => format!(
                "SELECT id, email, created_at, status FROM {table} WHERE id = {id} AND deleted_at IS NULL LIMIT 1"
            ),
            1 => format!(
                "SELECT o.id, o.total_cents, i.sku, i.qty FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.user_id = {id} AND o.status IN ('open', 'paid', 'shipped') ORDER BY o.created_at DESC LIMIT 50"
            ),
            2 => format!(
                "UPDATE {table} SET updated_at = '2024-05-01 12:{:02}:{:02}', version = version + 1 WHERE id = {id}",
                self.rng.below(60),
                self.rng.below(60)
            ),
            3 => format!(
                "INSERT INTO {table} (user_id, sku, qty, price_cents, note) VALUES ({id}, 'SKU-{}', {}, {}, 'gift wrap: \"yes\"')",
                self.rng.hex(6),
                self.rng.range(1, 9),
                self.rng.range(199, 99_999)
            ),
            4 => format!(
                "SELECT count(*) FROM {table} WHERE created_at > now() - interval '7 days' AND email LIKE '%@example.com' /* controller='{table}', action='index' */"
            ),
            _ => format!("DELETE FROM sessions WHERE expires_at < {} AND user_id = {id}", 1_714_564_800 + id),
        };
        s.name = "postgres.query".into();
        s.service = format!("{service}-postgres");
        s.resource = query.clone();
        s.r#type = "sql".into();
        s.meta.push(("component".into(), "psycopg".into()));
        s.meta.push(("span.kind".into(), "client".into()));
        s.meta.push(("db.system".into(), "postgresql".into()));
        s.meta.push(("db.name".into(), "shop".into()));
        s.meta.push(("db.user".into(), "shop_rw".into()));
        s.meta.push(("db.statement".into(), query));
        s.meta
            .push(("out.host".into(), "pg-primary.db.internal".into()));
        s.meta
            .push(("server.address".into(), "pg-primary.db.internal".into()));
        s.meta.push(("peer.service".into(), "shop-postgres".into()));
        s.meta
            .push(("_dd.peer.service.source".into(), "db.name".into()));
        s.meta.push(("_dd.base_service".into(), service.into()));
        s.metrics.push(("network.destination.port".into(), 5432.0));
        s.metrics
            .push(("db.row_count".into(), self.rng.below(200) as f64));
        s.metrics.push(("_dd.measured".into(), 1.0));
        self.maybe_error(
            &mut s,
            "psycopg.errors.SerializationFailure",
            "could not serialize access due to concurrent update",
        );
        s
    }

    fn redis_span(
        &mut self,
        service: &str,
        env: &str,
        version: &str,
        trace_id: u64,
        start: i64,
        duration: i64,
    ) -> GenSpan {
        let mut s = self.base(service, env, version, trace_id, start, duration);
        let cmd = self.rng.pick(REDIS_CMDS);
        let key = format!("user:{}:session", self.rng.range(1, 999_999));
        let raw = match cmd {
            "SET" => format!(
                "SET {key} {{\"cart\":[{}],\"ts\":{}}} EX 3600",
                self.rng.below(99),
                self.clock
            ),
            "MGET" => format!(
                "MGET {key} user:{}:prefs user:{}:flags",
                self.rng.below(9999),
                self.rng.below(9999)
            ),
            "ZADD" => format!("ZADD leaderboard {} {key}", self.rng.below(100_000)),
            "EXPIRE" => format!("EXPIRE {key} 1800"),
            "INCRBY" => format!("INCRBY counter:{key} {}", self.rng.range(1, 10)),
            other => format!("{other} {key}"),
        };
        s.name = "redis.command".into();
        s.service = format!("{service}-redis");
        s.resource = cmd.into();
        s.r#type = "redis".into();
        s.meta.push(("component".into(), "redis".into()));
        s.meta.push(("span.kind".into(), "client".into()));
        s.meta.push(("db.system".into(), "redis".into()));
        s.meta.push(("redis.raw_command".into(), raw));
        s.meta
            .push(("out.host".into(), "redis-cache.internal".into()));
        s.meta
            .push(("server.address".into(), "redis-cache.internal".into()));
        s.meta.push(("_dd.base_service".into(), service.into()));
        s.metrics.push(("network.destination.port".into(), 6379.0));
        s.metrics.push(("db.redis.database_index".into(), 0.0));
        s.metrics
            .push(("redis.args_length".into(), self.rng.range(1, 4) as f64));
        s.metrics.push(("_dd.measured".into(), 1.0));
        self.maybe_error(
            &mut s,
            "redis.exceptions.TimeoutError",
            "Timeout reading from socket",
        );
        s
    }

    fn http_client_span(
        &mut self,
        service: &str,
        env: &str,
        version: &str,
        trace_id: u64,
        start: i64,
        duration: i64,
    ) -> GenSpan {
        let mut s = self.base(service, env, version, trace_id, start, duration);
        let host = self.rng.pick(DOWNSTREAMS);
        let method = self.rng.pick(&["GET", "POST", "GET", "PUT"]);
        let path = format!("/v1/items/{}/availability", self.rng.range(1, 99_999));
        s.name = "requests.request".into();
        s.resource = format!("{method} {path}");
        s.r#type = "http".into();
        s.meta.push(("component".into(), "requests".into()));
        s.meta.push(("span.kind".into(), "client".into()));
        s.meta.push(("http.method".into(), method.into()));
        s.meta.push((
            "http.url".into(),
            format!(
                "https://{host}{path}?region=eu-west-1&token={}",
                self.rng.hex(24)
            ),
        ));
        s.meta.push((
            "http.status_code".into(),
            self.rng
                .pick(&["200", "200", "200", "202", "404", "503"])
                .into(),
        ));
        s.meta.push(("out.host".into(), host.into()));
        s.meta.push(("peer.hostname".into(), host.into()));
        s.meta
            .push(("http.useragent".into(), "python-requests/2.31.0".into()));
        s.meta.push(("_dd.base_service".into(), service.into()));
        s.metrics.push(("network.destination.port".into(), 443.0));
        s.metrics.push(("_dd.measured".into(), 1.0));
        self.maybe_error(
            &mut s,
            "requests.exceptions.ConnectionError",
            "HTTPSConnectionPool: Max retries exceeded with url",
        );
        s
    }

    fn internal_span(
        &mut self,
        service: &str,
        env: &str,
        version: &str,
        trace_id: u64,
        start: i64,
        duration: i64,
    ) -> GenSpan {
        let mut s = self.base(service, env, version, trace_id, start, duration);
        let op = self.rng.pick(INTERNAL_OPS);
        s.name = op.into();
        s.resource = format!("app.views.{}", op.replace('.', "_"));
        s.r#type = if op == "template.render" {
            "template".into()
        } else {
            String::new()
        };
        s.meta.push(("component".into(), "app".into()));
        s.meta.push(("span.kind".into(), "internal".into()));
        s.meta.push(("code.function".into(), op.replace('.', "_")));
        s.meta.push(("code.namespace".into(), "app.views".into()));
        s.meta.push((
            "thread.name".into(),
            format!("ThreadPoolExecutor-0_{}", self.rng.below(8)),
        ));
        s.meta.push(("_dd.base_service".into(), service.into()));
        s.meta.push((
            "feature_flags".into(),
            "new_checkout,dark_mode,fast_search".into(),
        ));
        s.meta.push((
            "user.tier".into(),
            self.rng.pick(&["free", "pro", "enterprise"]).into(),
        ));
        s.meta.push(("request.id".into(), self.rng.hex(32)));
        s.meta
            .push(("tenant".into(), format!("tenant-{}", self.rng.below(500))));
        s.metrics.push((
            "thread.id".into(),
            self.rng.range(139_000_000_000_000, 140_000_000_000_000) as f64,
        ));
        s.metrics
            .push(("items.count".into(), self.rng.below(50) as f64));
        s.metrics.push((
            "cache.hit_ratio".into(),
            self.rng.below(1000) as f64 / 1000.0,
        ));
        s
    }

    /// Adds span links, span events and meta_struct (the `links` shape).
    fn enrich(&mut self, s: &mut GenSpan, tid_high: u64) {
        for _ in 0..self.rng.range(0, 2) {
            let mut attributes = vec![("link.kind".to_owned(), "follows_from".to_owned())];
            if self.rng.chance(50) {
                attributes.push(("messaging.message.id".into(), self.rng.hex(16)));
            }
            s.span_links.push(GenLink {
                trace_id: self.rng.nonzero(),
                trace_id_high: if self.rng.chance(70) { tid_high } else { 0 },
                span_id: self.rng.nonzero(),
                attributes,
                tracestate: if self.rng.chance(50) {
                    format!("dd=s:1;o:rum;t.dm:-0,vendor={}", self.rng.hex(8))
                } else {
                    String::new()
                },
                flags: if self.rng.chance(50) { 0x8000_0001 } else { 0 },
            });
        }
        for i in 0..self.rng.range(0, 3) {
            let time_unix_nano = (s.start + i as i64 * 1000) as u64;
            let event = if i == 0 && s.error == 1 {
                GenEvent {
                    time_unix_nano,
                    name: "exception".into(),
                    attributes: vec![
                        (
                            "exception.message".into(),
                            GenAttr::Scalar(GenScalar::Str("division by zero".into())),
                        ),
                        (
                            "exception.escaped".into(),
                            GenAttr::Scalar(GenScalar::Bool(false)),
                        ),
                        ("exception.count".into(), GenAttr::Scalar(GenScalar::Int(1))),
                        (
                            "exception.stacktrace".into(),
                            GenAttr::Array(vec![
                                GenScalar::Str("  File \"app.py\", line 12, in handler".into()),
                                GenScalar::Str("  File \"calc.py\", line 3, in divide".into()),
                            ]),
                        ),
                    ],
                }
            } else {
                GenEvent {
                    time_unix_nano,
                    name: self.rng.pick(&["cache.miss", "retry", "checkpoint"]).into(),
                    attributes: vec![
                        (
                            "attempt".into(),
                            GenAttr::Scalar(GenScalar::Int(self.rng.range(1, 5) as i64)),
                        ),
                        (
                            "latency_ms".into(),
                            GenAttr::Scalar(GenScalar::Double(
                                self.rng.below(10_000) as f64 / 10.0,
                            )),
                        ),
                        (
                            "tags".into(),
                            GenAttr::Array(vec![
                                GenScalar::Str("a".into()),
                                GenScalar::Str("b".into()),
                            ]),
                        ),
                    ],
                }
            };
            s.span_events.push(event);
        }
        if self.rng.chance(30) {
            // An AppSec-style structured tag: a small msgpack document.
            let mut doc = Vec::new();
            let w = &mut doc;
            let _ = rmp::encode::write_map_len(w, 2);
            let _ = rmp::encode::write_str(w, "triggers");
            let _ = rmp::encode::write_array_len(w, 1);
            let _ = rmp::encode::write_map_len(w, 2);
            let _ = rmp::encode::write_str(w, "rule_id");
            let _ = rmp::encode::write_str(w, &format!("crs-942-{}", self.rng.range(100, 999)));
            let _ = rmp::encode::write_str(w, "value");
            let _ = rmp::encode::write_str(w, "' OR 1=1 --");
            let _ = rmp::encode::write_str(w, "version");
            let _ = rmp::encode::write_uint(w, 2);
            s.meta_struct.push(("appsec".into(), doc));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoders (rmp low level). Writes into a Vec cannot fail, so results are discarded.

fn str_(w: &mut Vec<u8>, s: &str) {
    let _ = rmp::encode::write_str(w, s);
}
fn uint(w: &mut Vec<u8>, v: u64) {
    let _ = rmp::encode::write_uint(w, v);
}
fn sint(w: &mut Vec<u8>, v: i64) {
    let _ = rmp::encode::write_sint(w, v);
}
fn f64_(w: &mut Vec<u8>, v: f64) {
    let _ = rmp::encode::write_f64(w, v);
}
fn map_len(w: &mut Vec<u8>, n: usize) {
    let _ = rmp::encode::write_map_len(w, n as u32);
}
fn array_len(w: &mut Vec<u8>, n: usize) {
    let _ = rmp::encode::write_array_len(w, n as u32);
}

/// Encodes traces as a v0.4 payload (fields a tracer would omit are omitted).
pub fn encode_v04(traces: &[Vec<GenSpan>]) -> Vec<u8> {
    let mut w = Vec::with_capacity(traces.iter().map(Vec::len).sum::<usize>() * 1200);
    array_len(&mut w, traces.len());
    for trace in traces {
        array_len(&mut w, trace.len());
        for s in trace {
            encode_span_v04(&mut w, s);
        }
    }
    w
}

fn encode_span_v04(w: &mut Vec<u8>, s: &GenSpan) {
    let n = 12
        + usize::from(!s.meta_struct.is_empty())
        + usize::from(!s.span_links.is_empty())
        + usize::from(!s.span_events.is_empty());
    map_len(w, n);
    str_(w, "service");
    str_(w, &s.service);
    str_(w, "name");
    str_(w, &s.name);
    str_(w, "resource");
    str_(w, &s.resource);
    str_(w, "type");
    str_(w, &s.r#type);
    str_(w, "trace_id");
    uint(w, s.trace_id);
    str_(w, "span_id");
    uint(w, s.span_id);
    str_(w, "parent_id");
    uint(w, s.parent_id);
    str_(w, "start");
    sint(w, s.start);
    str_(w, "duration");
    sint(w, s.duration);
    str_(w, "error");
    sint(w, i64::from(s.error));
    str_(w, "meta");
    map_len(w, s.meta.len());
    for (k, v) in &s.meta {
        str_(w, k);
        str_(w, v);
    }
    str_(w, "metrics");
    map_len(w, s.metrics.len());
    for (k, v) in &s.metrics {
        str_(w, k);
        f64_(w, *v);
    }
    if !s.meta_struct.is_empty() {
        str_(w, "meta_struct");
        map_len(w, s.meta_struct.len());
        for (k, v) in &s.meta_struct {
            str_(w, k);
            let _ = rmp::encode::write_bin(w, v);
        }
    }
    if !s.span_links.is_empty() {
        str_(w, "span_links");
        array_len(w, s.span_links.len());
        for l in &s.span_links {
            let n = 2
                + usize::from(l.trace_id_high != 0)
                + usize::from(!l.attributes.is_empty())
                + usize::from(!l.tracestate.is_empty())
                + usize::from(l.flags != 0);
            map_len(w, n);
            str_(w, "trace_id");
            uint(w, l.trace_id);
            if l.trace_id_high != 0 {
                str_(w, "trace_id_high");
                uint(w, l.trace_id_high);
            }
            str_(w, "span_id");
            uint(w, l.span_id);
            if !l.attributes.is_empty() {
                str_(w, "attributes");
                map_len(w, l.attributes.len());
                for (k, v) in &l.attributes {
                    str_(w, k);
                    str_(w, v);
                }
            }
            if !l.tracestate.is_empty() {
                str_(w, "tracestate");
                str_(w, &l.tracestate);
            }
            if l.flags != 0 {
                str_(w, "flags");
                uint(w, u64::from(l.flags));
            }
        }
    }
    if !s.span_events.is_empty() {
        str_(w, "span_events");
        array_len(w, s.span_events.len());
        for e in &s.span_events {
            map_len(w, 3);
            str_(w, "time_unix_nano");
            uint(w, e.time_unix_nano);
            str_(w, "name");
            str_(w, &e.name);
            str_(w, "attributes");
            map_len(w, e.attributes.len());
            for (k, v) in &e.attributes {
                str_(w, k);
                match v {
                    GenAttr::Scalar(s) => encode_scalar(w, s),
                    GenAttr::Array(items) => {
                        map_len(w, 2);
                        str_(w, "type");
                        uint(w, 4);
                        str_(w, "array_value");
                        map_len(w, 1);
                        str_(w, "values");
                        array_len(w, items.len());
                        for s in items {
                            encode_scalar(w, s);
                        }
                    }
                }
            }
        }
    }
}

fn encode_scalar(w: &mut Vec<u8>, s: &GenScalar) {
    map_len(w, 2);
    str_(w, "type");
    match s {
        GenScalar::Str(v) => {
            uint(w, 0);
            str_(w, "string_value");
            str_(w, v);
        }
        GenScalar::Bool(v) => {
            uint(w, 1);
            str_(w, "bool_value");
            let _ = rmp::encode::write_bool(w, *v);
        }
        GenScalar::Int(v) => {
            uint(w, 2);
            str_(w, "int_value");
            sint(w, *v);
        }
        GenScalar::Double(v) => {
            uint(w, 3);
            str_(w, "double_value");
            f64_(w, *v);
        }
    }
}

/// Encodes traces as a v0.5 payload (links, events and meta_struct are not representable and
/// are left out; the generator never asks for them in v0.5).
pub fn encode_v05(traces: &[Vec<GenSpan>]) -> Vec<u8> {
    let mut t = Interner::default();
    t.intern("");
    let mut body = Vec::with_capacity(traces.iter().map(Vec::len).sum::<usize>() * 300);
    array_len(&mut body, traces.len());
    for trace in traces {
        array_len(&mut body, trace.len());
        for s in trace {
            array_len(&mut body, 12);
            uint(&mut body, t.intern(&s.service));
            uint(&mut body, t.intern(&s.name));
            uint(&mut body, t.intern(&s.resource));
            uint(&mut body, s.trace_id);
            uint(&mut body, s.span_id);
            uint(&mut body, s.parent_id);
            sint(&mut body, s.start);
            sint(&mut body, s.duration);
            sint(&mut body, i64::from(s.error));
            map_len(&mut body, s.meta.len());
            for (k, v) in &s.meta {
                uint(&mut body, t.intern(k));
                uint(&mut body, t.intern(v));
            }
            map_len(&mut body, s.metrics.len());
            for (k, v) in &s.metrics {
                uint(&mut body, t.intern(k));
                f64_(&mut body, *v);
            }
            uint(&mut body, t.intern(&s.r#type));
        }
    }
    let table_bytes: usize = t.table.iter().map(|s| s.len() + 5).sum();
    let mut w = Vec::with_capacity(body.len() + table_bytes + 10);
    array_len(&mut w, 2);
    array_len(&mut w, t.table.len());
    for s in &t.table {
        str_(&mut w, s);
    }
    w.extend_from_slice(&body);
    w
}

/// The v0.5 string table under construction (first-use order; "" is index 0).
#[derive(Default)]
struct Interner<'a> {
    table: Vec<&'a str>,
    index: HashMap<&'a str, u64>,
}

impl<'a> Interner<'a> {
    fn intern(&mut self, s: &'a str) -> u64 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.table.len() as u64;
        self.table.push(s);
        self.index.insert(s, i);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let a = generate(Shape::Realistic);
        let b = generate(Shape::Realistic);
        assert_eq!(a.v04, b.v04);
        assert_eq!(a.v05, b.v05);
        assert_eq!(a.traces, 1_000);
        assert_eq!(a.spans, 10_000);
        let traces = generate_traces(Shape::Realistic);
        for s in traces.iter().flatten() {
            let tags = s.meta.len() + s.metrics.len();
            assert!((15..=30).contains(&tags), "{} has {tags} tags", s.name);
        }
    }
}

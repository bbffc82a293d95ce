//! The agent's obfuscation test tables (ported as data, `tests/data/obfuscate/`), run through the
//! conformance driver's handlers. Prints pass counts per file; every case passes except the
//! listed known failures, and the list is exact.

mod common;

/// Cases that cannot pass yet, with the reason (none). The test fails when one of them starts
/// passing, so the list stays exact.
///
/// The tables are the current agent's (pkg/trace and pkg/obfuscate v0.85.2). Two earlier
/// entries were stale rows, not bugs: `TestObfuscateSpanParameterized/{cassandra_select,
/// sql_select}` expected `sql.query` to be added to a SQL span without one (the agent stopped
/// doing that: it now rewrites `sql.query`, `db.statement`, `db.query.text` only when present
/// and drops an empty `sql.query`; its table changed with it), and
/// `TestObfuscateJSON/18/normalize.sql.plan.mysql` expected identifier quotes kept inside the
/// plan's SQL (the agent's table expects the plain legacy SQL obfuscation of the value).
const KNOWN_FAILURES: &[(&str, &str, &str)] = &[];

#[test]
fn obfuscation_tables() {
    common::run_tables(
        &[
            "obfuscate/redis.json",
            "obfuscate/memcached.json",
            "obfuscate/http.json",
            "obfuscate/json.json",
            "obfuscate/credit_cards.json",
            "obfuscate/ip.json",
            "obfuscate/span.json",
            "obfuscate/replace.json",
        ],
        KNOWN_FAILURES,
    );
}

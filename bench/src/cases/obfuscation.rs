//! Obfuscation cases (both sides in this file): the SQL, Redis and HTTP values of a payload,
//! obfuscated with each side's public API, and the whole exporter with normalization and
//! obfuscation on against libdatadog's plain send.
//!
//! The values are extracted from the payload once, outside the timed region, with the same code
//! for both sides; one iteration obfuscates every value of its kind in the payload (the counts
//! reported are the payload's, the work is all of its values). Settings: the agent's defaults
//! (legacy SQL obfuscator, generic DBMS; HTTP with both removals on so there is work to do).
//! `out_bytes` is the total length of the results: equal on both sides when they agree (the test
//! below checks the values one by one).

use super::{Done, Group, Input, Iter, SideFn};
use crate::payloads::{Shape, Wire};
use data_pipeline::decode::{self, Format};

/// The values of one payload, by kind.
#[derive(Default)]
pub(crate) struct Values<'a> {
    pub sql: Vec<&'a str>,
    pub redis_resources: Vec<&'a str>,
    pub redis_commands: Vec<&'a str>,
    pub urls: Vec<&'a str>,
}

/// Extracts the values (SQL resources and `sql.query`/`db.statement` tags of `sql` spans, Redis
/// resources and raw commands, `http.url` of `web`/`http` spans).
pub(crate) fn values<'a>(data: &'a [u8]) -> Result<Values<'a>, String> {
    let traces = decode::decode(Format::V04, data).map_err(|e| e.to_string())?;
    let mut v = Values::default();
    // Spans borrow `data`; keep the borrowed strings only.
    let keep = |s: &data_pipeline::span::Str<'a>| s.as_borrowed();
    for span in traces.iter().flatten() {
        match span.r#type.as_ref() {
            "sql" => {
                v.sql.extend(keep(&span.resource).filter(|s| !s.is_empty()));
                for k in ["sql.query", "db.statement"] {
                    if let Some(q) = span.meta.get(k) {
                        v.sql.extend(keep(q).filter(|s| !s.is_empty()));
                    }
                }
            }
            "redis" => {
                v.redis_resources.extend(keep(&span.resource));
                if let Some(c) = span.meta.get("redis.raw_command") {
                    v.redis_commands.extend(keep(c));
                }
            }
            "web" | "http" => {
                if let Some(u) = span.meta.get("http.url") {
                    v.urls.extend(keep(u));
                }
            }
            _ => {}
        }
    }
    Ok(v)
}

fn done(input: &Input<'_>, out_bytes: usize) -> Done {
    Done {
        traces: input.traces,
        spans: input.spans,
        out_bytes,
    }
}

/// One iteration of a value case: `work` over the payload's values (extracted once, untimed),
/// `out_bytes` = the total length of the results it returns.
fn iterate<'a>(
    input: &Input<'a>,
    work: impl Fn(&Values<'a>) -> usize + 'a,
) -> Result<Iter<'a>, String> {
    let v = values(input.data)?;
    let d = done(input, 0);
    Ok(Box::new(move || {
        Ok(Done {
            out_bytes: work(&v),
            ..d
        })
    }))
}

// ---- ours ----------------------------------------------------------------------------------------

mod ours {
    use super::*;
    use data_pipeline::obfuscate::sql::{SqlConfig, SqlObfuscator};
    use data_pipeline::obfuscate::{obfuscate_redis, obfuscate_url, quantize_redis, HttpConfig};

    pub fn sql<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
        let (obf, cfg) = (SqlObfuscator::new(), SqlConfig::default());
        iterate(input, move |v| {
            v.sql
                .iter()
                .map(|q| match obf.obfuscate(q, &cfg) {
                    Ok(o) => o.query.len(),
                    Err(_) => "Non-parsable SQL query".len(),
                })
                .sum()
        })
    }

    pub fn redis<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
        iterate(input, |v| {
            v.redis_resources
                .iter()
                .map(|r| quantize_redis(r).len())
                .chain(v.redis_commands.iter().map(|c| obfuscate_redis(c).len()))
                .sum()
        })
    }

    pub fn http<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
        let cfg = HttpConfig {
            remove_query_string: true,
            remove_paths_with_digits: true,
        };
        iterate(input, move |v| {
            v.urls.iter().map(|u| obfuscate_url(u, &cfg).len()).sum()
        })
    }

    /// `Exporter::send` v0.4 -> v0.4 with normalization and obfuscation on (agent defaults), the
    /// SQL result cache off: the harness sends the same payload again and again, so with the
    /// cache every query after the first send would be a hit, which real traffic does not give.
    pub fn send_processed<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
        let url = input.sink_url.ok_or("send cases need a sink")?;
        let ex = crate::ours::exporter_builder(url, Format::V04)
            .normalize(true)
            .obfuscate(true)
            .obfuscation_sql_cache(false)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(crate::ours::sends(ex, input))
    }
}

// ---- theirs --------------------------------------------------------------------------------------

mod theirs {
    use super::*;
    use libdd_trace_obfuscation::http::obfuscate_url;
    use libdd_trace_obfuscation::obfuscation_config::{DbmsKind, SqlConfig};
    use libdd_trace_obfuscation::redis::{obfuscate_redis_string, quantize_redis_string};
    use libdd_trace_obfuscation::sql::obfuscate_sql_resource;

    pub fn sql<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
        let cfg = SqlConfig::default();
        iterate(input, move |v| {
            v.sql
                .iter()
                .map(|q| obfuscate_sql_resource(q, &cfg, DbmsKind::Generic).len())
                .sum()
        })
    }

    pub fn redis<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
        iterate(input, |v| {
            v.redis_resources
                .iter()
                .map(|r| quantize_redis_string(r).len())
                .chain(
                    v.redis_commands
                        .iter()
                        .map(|c| obfuscate_redis_string(c).len()),
                )
                .sum()
        })
    }

    pub fn http<'a>(input: &Input<'a>) -> Result<Iter<'a>, String> {
        iterate(input, |v| {
            v.urls
                .iter()
                // `None` = unchanged, as our `Cow::Borrowed`.
                .map(|u| obfuscate_url(u, true, true).map_or(u.len(), |s| s.len()))
                .sum()
        })
    }
}

const OURS_SQL: Option<SideFn> = Some(ours::sql);
const OURS_REDIS: Option<SideFn> = Some(ours::redis);
const OURS_HTTP: Option<SideFn> = Some(ours::http);
const OURS_SEND_PROCESSED: Option<SideFn> = Some(ours::send_processed);

/// The obfuscation groups.
pub const GROUPS: &[Group] = &[
    Group {
        name: "obfuscate_sql",
        what: "obfuscate the payload's SQL (sql span resources and query tags; legacy obfuscator, agent defaults)",
        shapes: &[Shape::Realistic],
        wire: Wire::V04,
        needs_sink: false,
        ours: OURS_SQL,
        theirs: theirs::sql,
        target: Some(2.0),
    },
    Group {
        name: "obfuscate_redis",
        what: "quantize the payload's Redis resources and obfuscate its raw commands",
        shapes: &[Shape::Realistic],
        wire: Wire::V04,
        needs_sink: false,
        ours: OURS_REDIS,
        theirs: theirs::redis,
        target: Some(2.0),
    },
    Group {
        name: "obfuscate_http",
        what: "obfuscate the payload's http.url values (query string and digit paths removed)",
        shapes: &[Shape::Realistic],
        wire: Wire::V04,
        needs_sink: false,
        ours: OURS_HTTP,
        theirs: theirs::http,
        target: Some(2.0),
    },
    Group {
        name: "send_processed_v04",
        what: "ours: send v0.4 with normalization + obfuscation on; theirs: plain TraceExporter::send v0.4",
        shapes: &[Shape::Realistic, Shape::Tiny],
        wire: Wire::V04,
        needs_sink: true,
        ours: OURS_SEND_PROCESSED,
        theirs: crate::theirs::send_v04_v04,
        target: Some(1.5),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payloads::generate;

    #[test]
    fn both_sides_give_the_same_values() {
        use data_pipeline::obfuscate as o;
        let p = generate(Shape::Realistic);
        let v = values(&p.v04).unwrap();
        assert!(v.sql.len() > 100 && v.redis_commands.len() > 100 && v.urls.len() > 100);
        let cfg = o::sql::SqlConfig::default();
        let tcfg = libdd_trace_obfuscation::obfuscation_config::SqlConfig::default();
        let mut differ = 0;
        for q in &v.sql {
            let ours = o::sql::obfuscate_sql(q, &cfg)
                .map(|r| r.query)
                .unwrap_or_else(|_| "Non-parsable SQL query".into());
            let theirs = libdd_trace_obfuscation::sql::obfuscate_sql_resource(
                q,
                &tcfg,
                libdd_trace_obfuscation::obfuscation_config::DbmsKind::Generic,
            );
            if ours != theirs {
                differ += 1;
                eprintln!("SQL differs:\n  in     {q}\n  ours   {ours}\n  theirs {theirs}");
            }
        }
        for c in &v.redis_commands {
            assert_eq!(
                o::obfuscate_redis(c),
                libdd_trace_obfuscation::redis::obfuscate_redis_string(c)
            );
        }
        let h = o::HttpConfig {
            remove_query_string: true,
            remove_paths_with_digits: true,
        };
        for u in &v.urls {
            let theirs = libdd_trace_obfuscation::http::obfuscate_url(u, true, true)
                .unwrap_or_else(|| u.to_string());
            assert_eq!(o::obfuscate_url(u, &h), theirs, "{u}");
        }
        assert_eq!(differ, 0);
    }
}

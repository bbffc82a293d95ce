//! Sends one trace payload file to an agent and prints the agent's JSON answer.
//!
//! ```text
//! cargo run --release -p data-pipeline --example send -- \
//!     [--url URL] [--input v0.4|v0.5] [--output v0.4|v0.5] [--token T] \
//!     [--lang L] [--tracer-version V] [--timeout-ms N] [--stats [auto|on]] \
//!     [--background [--count N]] FILE
//! ```
//! `--stats` computes client-side stats for the spans of FILE (default `auto`: only when the
//! agent's `/info` allows it; P0 chunks are then dropped; `on`: always), sends them to
//! `/v0.6/stats` before exiting and reports the stats state on stderr.
//! Without `--url`, the agent address comes from `DD_TRACE_AGENT_URL`, else `DD_AGENT_HOST` +
//! `DD_TRACE_AGENT_PORT` (localhost:8126). Exit status: 0 delivered, 1 failed, 2 bad usage.
//!
//! With `--background`, the payload is enqueued (`--count` times, default 1) for the background
//! worker, then the exporter shuts down within `--timeout-ms` (default 5000) and the health
//! counters are printed as JSON. Exit status 0 when everything was delivered.

use data_pipeline::exporter::{ExporterBuilder, Format};
use data_pipeline::stats::StatsMode;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: send [--url URL] [--input v0.4|v0.5] [--output v0.4|v0.5] [--token T] \
[--lang L] [--tracer-version V] [--timeout-ms N] [--stats [auto|on]] [--background [--count N]] FILE";

struct Args {
    url: Option<String>,
    input: Format,
    output: Format,
    token: Option<String>,
    lang: String,
    tracer_version: String,
    timeout: Option<Duration>,
    stats: StatsMode,
    background: bool,
    count: u64,
    file: std::path::PathBuf,
}

fn format_arg(v: &str) -> Result<Format, String> {
    v.parse::<Format>().map_err(|e| e.to_string())
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let mut url = None;
    let mut input = Format::V04;
    let mut output = None;
    let mut token = None;
    let mut lang = "rust".to_string();
    let mut tracer_version = env!("CARGO_PKG_VERSION").to_string();
    let mut timeout = None;
    let mut stats = StatsMode::Off;
    let mut background = false;
    let mut count = 1u64;
    let mut file = None;
    let text = |v: std::ffi::OsString| {
        v.into_string()
            .map_err(|_| "arguments must be UTF-8".to_string())
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("url") => url = Some(text(p.value().map_err(|e| e.to_string())?)?),
            Long("input") => input = format_arg(&text(p.value().map_err(|e| e.to_string())?)?)?,
            Long("output") => {
                output = Some(format_arg(&text(p.value().map_err(|e| e.to_string())?)?)?)
            }
            Long("token") => token = Some(text(p.value().map_err(|e| e.to_string())?)?),
            Long("lang") => lang = text(p.value().map_err(|e| e.to_string())?)?,
            Long("tracer-version") => tracer_version = text(p.value().map_err(|e| e.to_string())?)?,
            Long("timeout-ms") => {
                let ms: u64 = text(p.value().map_err(|e| e.to_string())?)?
                    .parse()
                    .map_err(|_| "--timeout-ms needs a number".to_string())?;
                timeout = Some(Duration::from_millis(ms));
            }
            Long("stats") => {
                stats = match p.optional_value() {
                    Some(v) => match text(v)?.as_str() {
                        "on" => StatsMode::On,
                        "auto" => StatsMode::Auto,
                        other => return Err(format!("--stats {other:?}: expected auto or on")),
                    },
                    None => StatsMode::Auto,
                }
            }
            Long("background") => background = true,
            Long("count") => {
                count = text(p.value().map_err(|e| e.to_string())?)?
                    .parse()
                    .map_err(|_| "--count needs a number".to_string())?;
            }
            Short('h') | Long("help") => return Err(String::new()),
            Value(v) if file.is_none() => file = Some(std::path::PathBuf::from(v)),
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(Args {
        url,
        input,
        // The output format defaults to the input format (passthrough).
        output: output.unwrap_or(input),
        token,
        lang,
        tracer_version,
        timeout,
        stats,
        background,
        count,
        file: file.ok_or("missing FILE")?,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("send: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let payload = match std::fs::read(&args.file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("send: cannot read {}: {e}", args.file.display());
            return ExitCode::from(1);
        }
    };
    let mut b = ExporterBuilder::new();
    match &args.url {
        Some(u) => b.url(u.as_str()),
        None => b.url_from_env(true),
    };
    b.input_format(args.input)
        .output_format(args.output)
        .language(args.lang.as_str())
        .tracer_version(args.tracer_version.as_str());
    if let Some(t) = &args.token {
        b.test_session_token(t.as_str());
    }
    if let Some(t) = args.timeout {
        b.send_timeout(t);
    }
    b.stats(args.stats);
    if args.background {
        return background(&b, &payload, args.count, args.timeout);
    }
    let result = b.build().and_then(|ex| {
        let resp = ex.send(&payload)?;
        if args.stats != StatsMode::Off {
            // Every bucket, complete or not, goes out before the process exits.
            ex.shutdown(args.timeout.unwrap_or(Duration::from_secs(5)))?;
            let dropped = ex.stats().map(|s| s.dropped_total()).unwrap_or_default();
            eprintln!(
                "send: client-side stats {:?}; P0 dropped: {} trace(s), {} span(s)",
                ex.stats_state(),
                dropped.traces,
                dropped.spans
            );
        }
        Ok(resp)
    });
    match result {
        Ok(resp) => {
            println!("{}", String::from_utf8_lossy(&resp.body));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("send: {:?} error: {e}", e.kind());
            ExitCode::from(1)
        }
    }
}

/// `--background`: enqueue `count` times, shut down within the timeout, print the health counters.
fn background(
    b: &ExporterBuilder,
    payload: &[u8],
    count: u64,
    timeout: Option<Duration>,
) -> ExitCode {
    let ex = match b.build() {
        Ok(ex) => ex,
        Err(e) => {
            eprintln!("send: {:?} error: {e}", e.kind());
            return ExitCode::from(1);
        }
    };
    for _ in 0..count {
        if let Err(e) = ex.enqueue(payload) {
            eprintln!("send: enqueue: {:?} error: {e}", e.kind());
            if e.kind() == data_pipeline::ErrorKind::Decode {
                return ExitCode::from(1);
            }
        }
    }
    let shutdown = ex.shutdown(timeout.unwrap_or(Duration::from_secs(5)));
    let health = ex.health();
    println!("{}", health.to_json());
    match shutdown {
        Err(e) => {
            eprintln!("send: shutdown: {:?} error: {e}", e.kind());
            ExitCode::from(1)
        }
        Ok(()) if health.traces_dropped() > 0 => ExitCode::from(1),
        Ok(()) => ExitCode::SUCCESS,
    }
}

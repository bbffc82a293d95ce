//! Side-by-side benchmark: data-pipeline ("ours") vs libdatadog ("theirs") on the same payloads.
//!
//! ```text
//! cargo run --release --manifest-path bench/Cargo.toml -- [--only NAME[,NAME..]] [--quick] [--list]
//! ```
//!
//! The parent generates the payloads once (deterministic seed) into a temporary directory, starts
//! the loopback sink, then runs every (case, side) in a child process of this same binary
//! (`bench --side ours|theirs --case NAME ...`), alternating sides round after round (ABBA), so
//! that each side's peak RSS is its own (the child's VmHWM; `wait4`'s maxrss would include the
//! parent's RSS at fork time) and noise hits both sides alike. The report takes the median
//! iteration time over all rounds, and the median process CPU time as a cross-check that is less
//! sensitive to other load on the machine.

mod cases;
mod ours;
mod payloads;
mod sink;
mod theirs;

use cases::{Case, Done, Input, Side};
use payloads::{Shape, Wire};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RESULT_TAG: &str = "BENCH_RESULT ";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = if args.iter().any(|a| a == "--side") {
        child_main(&args)
    } else if let Some(secs) = arg(&args, "--serve-sink") {
        serve_sink(secs)
    } else {
        parent_main(&args)
    };
    std::process::exit(code);
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn flag(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}

/// `--serve-sink SECONDS`: runs the sink alone for that long and prints its URL (to profile a send
/// case's child under callgrind, which needs a sink: see README "Where the time goes").
fn serve_sink(secs: &str) -> i32 {
    let secs: u64 = secs.parse().unwrap_or(600);
    match sink::Sink::start() {
        Ok(s) => {
            println!("{}", s.url());
            std::thread::sleep(Duration::from_secs(secs));
            0
        }
        Err(e) => {
            eprintln!("sink: {e}");
            1
        }
    }
}

// =============================================================================================
// Child: one side of one case, measured in its own process.

fn child_main(args: &[String]) -> i32 {
    match child_run(args) {
        Ok(v) => {
            println!("{RESULT_TAG}{v}");
            0
        }
        Err(e) => {
            eprintln!("bench child error: {e}");
            1
        }
    }
}

fn child_run(args: &[String]) -> Result<Value, String> {
    let side = arg(args, "--side")
        .and_then(Side::parse)
        .ok_or("--side ours|theirs")?;
    let name = arg(args, "--case").ok_or("--case NAME")?;
    let dir = PathBuf::from(arg(args, "--dir").ok_or("--dir DIR")?);
    let budget = Duration::from_millis(parse_num(arg(args, "--budget-ms"), 1000));
    let warmup = Duration::from_millis(parse_num(arg(args, "--warmup-ms"), 200));
    let sink_url = arg(args, "--sink");
    if !flag(args, "--malloc-default") {
        steady_malloc();
    }

    let all = cases::all();
    let case = all
        .iter()
        .find(|c| c.name == name)
        .ok_or(format!("no case {name}"))?;
    let setup = case
        .side(side)
        .ok_or(format!("{name}: no {} side", side.name()))?;
    let (data, traces, spans) = load_payload(&dir, case.shape, case.wire)?;

    // Baseline: payload loaded, nothing of either side yet. Reset the peak so VmHWM below is
    // the peak during this side's setup and run.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let base_kb = proc_status_kb("VmRSS").unwrap_or(0);

    let input = Input {
        data: &data,
        traces,
        spans,
        sink_url,
    };
    let mut iter = setup(&input)?;
    let expect = |d: &Done| -> Result<(), String> {
        if d.traces != traces || d.spans != spans {
            return Err(format!(
                "{name} ({}): iteration did {} traces / {} spans, payload has {traces} / {spans}",
                side.name(),
                d.traces,
                d.spans
            ));
        }
        Ok(())
    };

    let mut calls = 0u64;
    let mut out_bytes;
    let t0 = Instant::now();
    loop {
        let d = iter()?;
        expect(&d)?;
        out_bytes = d.out_bytes;
        calls += 1;
        if t0.elapsed() >= warmup {
            break;
        }
    }
    let mut times_ns: Vec<u64> = Vec::new();
    let mut cpu_ns: Vec<u64> = Vec::new();
    let faults0 = minor_faults();
    let t0 = Instant::now();
    while times_ns.len() < 3 || (t0.elapsed() < budget && times_ns.len() < 1_000_000) {
        let c = process_cpu_ns();
        let t = Instant::now();
        let d = iter()?;
        let dt = t.elapsed();
        let dc = process_cpu_ns().saturating_sub(c);
        expect(&d)?;
        out_bytes = d.out_bytes;
        calls += 1;
        times_ns.push(dt.as_nanos() as u64);
        cpu_ns.push(dc);
    }
    let faults = minor_faults().saturating_sub(faults0);
    drop(iter);
    let peak_kb = proc_status_kb("VmHWM").unwrap_or(0);
    Ok(json!({
        "side": side.name(),
        "case": name,
        "calls": calls,
        "times_ns": times_ns,
        "cpu_ns": cpu_ns,
        "minor_faults": faults,
        "out_bytes": out_bytes,
        "base_rss_kb": base_kb,
        "hwm_kb": peak_kb,
    }))
}

/// Makes glibc malloc keep freed memory instead of trimming the heap / unmapping big blocks after
/// every iteration (same settings for both sides). With the defaults, whether a side re-faults
/// ~10 MB of fresh pages per iteration depends on glibc's dynamic thresholds (raised only once a
/// large mmapped block has been freed), i.e. on incidental allocation history rather than on the
/// code under test; a long-running tracer process is in the raised state. `--malloc-default`
/// measures with glibc's defaults instead.
fn steady_malloc() {
    // SAFETY: mallopt only changes allocator tunables; called before any measured allocation.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20); // glibc's maximum on 64-bit
    }
}

/// Minor page faults of the process so far.
fn minor_faults() -> u64 {
    // SAFETY: getrusage writes into a zeroed local struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_minflt.max(0) as u64
}

/// CPU time of the whole process (all its threads), in ns.
fn process_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn parse_num(s: Option<&str>, default: u64) -> u64 {
    s.and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn proc_status_kb(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn payload_path(dir: &Path, shape: Shape, wire: Wire) -> PathBuf {
    dir.join(format!("{}.{}", shape.name(), wire.name()))
}

fn load_payload(dir: &Path, shape: Shape, wire: Wire) -> Result<(Vec<u8>, usize, usize), String> {
    let data = std::fs::read(payload_path(dir, shape, wire)).map_err(|e| e.to_string())?;
    let meta = std::fs::read_to_string(dir.join(format!("{}.meta", shape.name())))
        .map_err(|e| e.to_string())?;
    let mut it = meta
        .split_whitespace()
        .map(|v| v.parse::<usize>().unwrap_or(0));
    let traces = it.next().unwrap_or(0);
    let spans = it.next().unwrap_or(0);
    Ok((data, traces, spans))
}

// =============================================================================================
// Parent: payloads, sink, children, report.

struct Config {
    quick: bool,
    malloc_default: bool,
    rounds: usize,
    budget_ms: u64,
    warmup_ms: u64,
}

/// One child run's result.
struct Run {
    minor_faults: u64,
    times_ns: Vec<u64>,
    cpu_ns: Vec<u64>,
    calls: u64,
    out_bytes: usize,
    base_rss_kb: u64,
    hwm_kb: u64,
    sink: Option<SinkCheck>,
}

/// What the sink saw during one child run.
#[derive(Clone, Debug, Default)]
struct SinkCheck {
    requests: u64,
    body_bytes: u64,
    header_traces: u64,
    body_traces: u64,
    last_body_spans: Option<usize>,
    problems: Vec<String>,
}

/// All runs of one side of one case.
#[derive(Default)]
struct SideResult {
    minor_faults: u64,
    times_ns: Vec<u64>,
    cpu_ns: Vec<u64>,
    base_rss_kb: u64,
    hwm_kb: u64,
    out_bytes: usize,
    calls: u64,
    sink: Option<SinkCheck>,
    error: Option<String>,
}

impl SideResult {
    fn median_ns(&self) -> Option<f64> {
        percentile(&self.times_ns, 0.5)
    }
}

fn percentile(v: &[u64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let i = ((s.len() - 1) as f64 * p).round() as usize;
    Some(s[i] as f64)
}

fn parent_main(args: &[String]) -> i32 {
    let quick = flag(args, "--quick");
    let cfg = Config {
        quick,
        malloc_default: flag(args, "--malloc-default"),
        rounds: parse_num(arg(args, "--rounds"), if quick { 2 } else { 4 }) as usize,
        budget_ms: parse_num(arg(args, "--budget-ms"), if quick { 500 } else { 3000 }),
        warmup_ms: parse_num(arg(args, "--warmup-ms"), if quick { 50 } else { 200 }),
    };
    let all = cases::all();
    if flag(args, "--list") || flag(args, "--help") || flag(args, "-h") {
        println!("usage: bench [--only NAME[,NAME..]] [--quick] [--rounds N] [--budget-ms MS] [--warmup-ms MS] [--malloc-default] [--out FILE] [--write-payloads DIR] | --serve-sink SECONDS");
        println!("NAME matches a case name or any part of it. Cases:");
        for c in &all {
            println!(
                "  {:32} {}{}",
                c.name,
                cases::describe_group(c.group),
                if c.ours.is_none() {
                    "  [ours: not yet]"
                } else {
                    ""
                }
            );
        }
        return 0;
    }
    let only: Vec<&str> = arg(args, "--only")
        .map(|s| s.split(',').collect())
        .unwrap_or_default();
    let selected: Vec<&Case> = all
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| c.name.contains(o)))
        .collect();
    if selected.is_empty() {
        eprintln!("no case matches --only {only:?} (see --list)");
        return 2;
    }

    if let Some(dir) = arg(args, "--write-payloads") {
        // For profiling one side by hand: `bench --write-payloads D`, then
        // `valgrind --tool=callgrind bench --side ours --case NAME --dir D --budget-ms 1 --warmup-ms 0`.
        let dir = PathBuf::from(dir);
        let shapes = [Shape::Realistic, Shape::Huge, Shape::Tiny, Shape::Links];
        return match shapes
            .iter()
            .try_for_each(|&s| write_payload(&dir, s).map(|_| ()))
        {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("bench: {e}");
                1
            }
        };
    }
    let out_path = arg(args, "--out")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("results/latest.json"));

    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("dp-bench-{}", std::process::id()));
    let result = run_all(&cfg, &selected, &dir, &out_path);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(failed) => {
            eprintln!("total time {:.1} s", started.elapsed().as_secs_f64());
            if failed {
                1
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("bench: {e}");
            1
        }
    }
}

fn run_all(cfg: &Config, selected: &[&Case], dir: &Path, out_path: &Path) -> Result<bool, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;

    // Payloads, once.
    let mut sizes: HashMap<(&'static str, &'static str), usize> = HashMap::new();
    let mut counts: HashMap<&'static str, (usize, usize)> = HashMap::new();
    // (traces, spans) left once P0 chunks are dropped, for the cases that drop them.
    let mut kept: HashMap<&'static str, (usize, usize)> = HashMap::new();
    for c in selected {
        if counts.contains_key(c.shape.name()) {
            continue;
        }
        let t = Instant::now();
        let p = payloads::generate(c.shape);
        std::fs::write(payload_path(dir, c.shape, Wire::V04), &p.v04).map_err(|e| e.to_string())?;
        sizes.insert((c.shape.name(), "v04"), p.v04.len());
        if let Some(v05) = &p.v05 {
            std::fs::write(payload_path(dir, c.shape, Wire::V05), v05)
                .map_err(|e| e.to_string())?;
            sizes.insert((c.shape.name(), "v05"), v05.len());
        }
        std::fs::write(
            dir.join(format!("{}.meta", c.shape.name())),
            format!("{} {}", p.traces, p.spans),
        )
        .map_err(|e| e.to_string())?;
        counts.insert(c.shape.name(), (p.traces, p.spans));
        if selected
            .iter()
            .any(|s| s.shape == c.shape && cases::drops_p0(s.group))
        {
            kept.insert(c.shape.name(), kept_after_p0_dropping(&p.v04)?);
        }
        eprintln!(
            "payload {:9} {:>6} traces {:>6} spans  v0.4 {:>9} B  v0.5 {:>9}  ({:.0} ms)",
            c.shape.name(),
            p.traces,
            p.spans,
            p.v04.len(),
            p.v05
                .as_ref()
                .map(|v| format!("{} B", v.len()))
                .unwrap_or_else(|| "-".into()),
            t.elapsed().as_secs_f64() * 1e3
        );
    }

    let sink = if selected.iter().any(|c| c.needs_sink) {
        let s = sink::Sink::start().map_err(|e| format!("sink: {e}"))?;
        s.set_capture(true);
        Some(s)
    } else {
        None
    };

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut any_failed = false;
    for c in selected {
        let (traces, spans) = counts[c.shape.name()];
        let expect = Expect {
            traces,
            spans,
            // Only the groups that drop P0 chunks: other groups of the same run send everything.
            kept: cases::drops_p0(c.group)
                .then(|| kept.get(c.shape.name()).copied())
                .flatten(),
        };
        let bytes = sizes[&(c.shape.name(), c.wire.name())];
        let sides: Vec<Side> = [Side::Ours, Side::Theirs]
            .into_iter()
            .filter(|s| c.side(*s).is_some())
            .collect();
        let mut res: HashMap<&str, SideResult> = HashMap::new();
        let per_round = Duration::from_millis((cfg.budget_ms / cfg.rounds.max(1) as u64).max(50));
        for round in 0..cfg.rounds.max(1) {
            let mut order = sides.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for side in order {
                let r = res.entry(side.name()).or_default();
                if r.error.is_some() {
                    continue;
                }
                let case_sink = if c.needs_sink { sink.as_ref() } else { None };
                let before = case_sink.map(|s| s.counts());
                match run_child(cfg, &exe, c, side, dir, per_round, case_sink) {
                    Ok(mut run) => {
                        if let (Some(s), Some(before)) = (case_sink, before) {
                            run.sink = Some(check_sink(s, &before, &run, c, &expect));
                        }
                        r.times_ns.extend_from_slice(&run.times_ns);
                        r.cpu_ns.extend_from_slice(&run.cpu_ns);
                        r.minor_faults += run.minor_faults;
                        r.hwm_kb = r.hwm_kb.max(run.hwm_kb);
                        r.base_rss_kb = run.base_rss_kb;
                        r.out_bytes = run.out_bytes;
                        r.calls += run.calls;
                        if let Some(chk) = run.sink {
                            let agg = r.sink.get_or_insert_with(SinkCheck::default);
                            agg.requests += chk.requests;
                            agg.body_bytes += chk.body_bytes;
                            agg.header_traces += chk.header_traces;
                            agg.body_traces += chk.body_traces;
                            agg.last_body_spans = chk.last_body_spans;
                            agg.problems.extend(chk.problems);
                        }
                    }
                    Err(e) => r.error = Some(e),
                }
            }
        }
        let row = make_row(c, bytes, traces, spans, &res);
        if row["failed"].as_bool() == Some(true) {
            any_failed = true;
        }
        print_row_progress(&row);
        rows.push(row);
    }

    print_table(&rows);
    let report = json!({
        "generated_unix": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "mode": if cfg.quick { "quick" } else { "full" },
        "rounds": cfg.rounds,
        "budget_ms_per_side": cfg.budget_ms,
        "warmup_ms_per_run": cfg.warmup_ms,
        "malloc": if cfg.malloc_default { "glibc defaults" } else { "steady: M_TRIM_THRESHOLD 1 GiB, M_MMAP_THRESHOLD 32 MiB" },
        "git_commit": git_commit(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "libdatadog": {"libdd-data-pipeline": "14.0.0", "libdd-trace-utils": "16.0.0"},
        "units": {"throughput": "input spans (or 1e6 bytes of input payload) / median wall time of one iteration", "cpu": "process CPU time (all threads) per iteration, median", "rss": "KiB, VmHWM of the side's child process (payload loaded, then the side set up and run)"},
        "cases": rows,
    });
    if let Some(parent) = out_path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(out_path, text + "\n").map_err(|e| format!("{}: {e}", out_path.display()))?;
    eprintln!("wrote {}", out_path.display());
    Ok(any_failed)
}

/// Generates `shape` and writes `<shape>.v04`, `<shape>.v05` and `<shape>.meta` into `dir`.
fn write_payload(dir: &Path, shape: Shape) -> Result<payloads::Payload, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let p = payloads::generate(shape);
    std::fs::write(payload_path(dir, shape, Wire::V04), &p.v04).map_err(|e| e.to_string())?;
    if let Some(v05) = &p.v05 {
        std::fs::write(payload_path(dir, shape, Wire::V05), v05).map_err(|e| e.to_string())?;
    }
    let meta = format!("{} {}", p.traces, p.spans);
    std::fs::write(dir.join(format!("{}.meta", shape.name())), meta).map_err(|e| e.to_string())?;
    Ok(p)
}

fn run_child(
    cfg: &Config,
    exe: &Path,
    c: &Case,
    side: Side,
    dir: &Path,
    budget: Duration,
    sink: Option<&sink::Sink>,
) -> Result<Run, String> {
    let warmup_ms = cfg.warmup_ms;
    let mut cmd = Command::new(exe);
    if cfg.malloc_default {
        cmd.arg("--malloc-default");
    }
    cmd.arg("--side")
        .arg(side.name())
        .arg("--case")
        .arg(&c.name)
        .arg("--dir")
        .arg(dir)
        .arg("--budget-ms")
        .arg(budget.as_millis().to_string())
        .arg("--warmup-ms")
        .arg(warmup_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let (true, Some(s)) = (c.needs_sink, sink) {
        cmd.arg("--sink").arg(s.url());
    }
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        let _ = so.read_to_string(&mut out);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let status = status.code().unwrap_or(128);
    if status != 0 {
        return Err(format!(
            "{} {} child exited with status {status}",
            c.name,
            side.name()
        ));
    }
    let line = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(RESULT_TAG))
        .ok_or_else(|| format!("{} {}: no result line", c.name, side.name()))?;
    let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let times_ns = v["times_ns"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let cpu_ns = v["cpu_ns"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    Ok(Run {
        minor_faults: v["minor_faults"].as_u64().unwrap_or(0),
        times_ns,
        cpu_ns,
        calls: v["calls"].as_u64().unwrap_or(0),
        out_bytes: v["out_bytes"].as_u64().unwrap_or(0) as usize,
        base_rss_kb: v["base_rss_kb"].as_u64().unwrap_or(0),
        hwm_kb: v["hwm_kb"].as_u64().unwrap_or(0),
        sink: None,
    })
}

/// What a send case must deliver per call.
struct Expect {
    /// Traces in the payload.
    traces: usize,
    /// Spans in the payload.
    spans: usize,
    /// (traces, spans) left after P0 dropping, for the cases that drop P0 chunks.
    kept: Option<(usize, usize)>,
}

/// (traces, spans) of a v0.4 payload once P0 chunks are dropped, by the rule both libraries
/// follow (`data_pipeline::sample::keep_chunk`; the generated payloads have no single-span-sampled
/// or App Analytics spans, on which the two differ).
fn kept_after_p0_dropping(v04: &[u8]) -> Result<(usize, usize), String> {
    let traces = data_pipeline::decode::decode(data_pipeline::format::Format::V04, v04)
        .map_err(|e| e.to_string())?;
    let kept: Vec<_> = traces
        .iter()
        .filter(|t| data_pipeline::sample::keep_chunk(t))
        .collect();
    Ok((kept.len(), kept.iter().map(|t| t.len()).sum()))
}

/// Checks what the sink received during one child run against what the child says it sent.
fn check_sink(
    s: &sink::Sink,
    before: &sink::Counts,
    run: &Run,
    c: &Case,
    expect: &Expect,
) -> SinkCheck {
    let (traces, spans) = expect.kept.unwrap_or((expect.traces, expect.spans));
    // The child has exited: every request it made has been answered, so the counts are final.
    let d = s.counts().since(before);
    let mut chk = SinkCheck {
        requests: d.trace_requests,
        body_bytes: d.body_bytes,
        header_traces: d.header_traces,
        body_traces: d.body_traces,
        ..Default::default()
    };
    let want_traces = run.calls * traces as u64;
    // Batching exporters put several iterations' traces in a request, or one iteration's in
    // several: what must match is the traces delivered.
    let batched = cases::batched(c.group);
    if batched && (d.trace_requests == 0 || d.trace_requests > want_traces) {
        chk.problems.push(format!(
            "{want_traces} traces in {} trace requests",
            d.trace_requests
        ));
    }
    if !batched && d.trace_requests != run.calls {
        chk.problems.push(format!(
            "{} sends but {} trace requests",
            run.calls, d.trace_requests
        ));
    }
    if d.body_traces != want_traces {
        chk.problems.push(format!(
            "sent {want_traces} traces, sink decoded {}",
            d.body_traces
        ));
    }
    if d.header_traces != want_traces {
        chk.problems.push(format!(
            "sent {want_traces} traces, headers said {}",
            d.header_traces
        ));
    }
    if d.bad_bodies != 0 {
        chk.problems
            .push(format!("{} unreadable bodies", d.bad_bodies));
    }
    if expect.kept.is_some() {
        // Stats computed on every request, and the P0 headers count what was dropped.
        if d.computed_stats_requests != d.trace_requests {
            chk.problems.push(format!(
                "{} of {} trace requests say client-computed stats",
                d.computed_stats_requests, d.trace_requests
            ));
        }
        let want = (
            run.calls * (expect.traces - traces) as u64,
            run.calls * (expect.spans - spans) as u64,
        );
        if (d.dropped_p0_traces, d.dropped_p0_spans) != want {
            chk.problems.push(format!(
                "dropped P0 headers say {:?} (traces, spans), want {want:?}",
                (d.dropped_p0_traces, d.dropped_p0_spans)
            ));
        }
    }
    match s.take_last() {
        Some((path, body)) => {
            let v05 = path.starts_with("/v0.5");
            let want_v05 = c.group.ends_with("_v05");
            if v05 != want_v05 {
                chk.problems.push(format!("sent to {path}"));
            }
            match theirs::count_spans(v05, &body) {
                Ok(n) => {
                    chk.last_body_spans = Some(n);
                    if batched && n == 0 {
                        chk.problems.push("last body has no spans".into());
                    }
                    if !batched && n != spans {
                        chk.problems
                            .push(format!("last body has {n} spans, payload {spans}"));
                    }
                }
                Err(e) => chk.problems.push(format!("last body does not decode: {e}")),
            }
        }
        None => chk.problems.push("no body captured".into()),
    }
    chk
}

fn make_row(
    c: &Case,
    bytes: usize,
    traces: usize,
    spans: usize,
    res: &HashMap<&str, SideResult>,
) -> Value {
    let side = |name: &str| -> Value {
        let Some(r) = res.get(name) else {
            return Value::Null;
        };
        if let Some(e) = &r.error {
            return json!({"error": e});
        }
        let Some(med) = r.median_ns() else {
            return Value::Null;
        };
        let cpu = percentile(&r.cpu_ns, 0.5).unwrap_or(med);
        let best = percentile(&r.times_ns, 0.0).unwrap_or(med);
        let p25 = percentile(&r.times_ns, 0.25).unwrap_or(med);
        let p75 = percentile(&r.times_ns, 0.75).unwrap_or(med);
        let mut v = json!({
            "iterations": r.times_ns.len(),
            "median_ns": med,
            "best_ns": best,
            "p25_ns": p25,
            "p75_ns": p75,
            "cpu_median_ns": cpu,
            "minor_faults_per_iteration": r.minor_faults as f64 / r.times_ns.len().max(1) as f64,
            "spans_per_s": spans as f64 / (med / 1e9),
            "mb_per_s": bytes as f64 / 1e6 / (med / 1e9),
            "spans_per_cpu_s": spans as f64 / (cpu / 1e9),
            "peak_rss_kb": r.hwm_kb,
            "baseline_rss_kb": r.base_rss_kb,
            "rss_growth_kb": r.hwm_kb.saturating_sub(r.base_rss_kb),
            "out_bytes": r.out_bytes,
        });
        if let Some(s) = &r.sink {
            v["sink"] = json!({
                "requests": s.requests,
                "bytes_per_request": s.body_bytes.checked_div(s.requests).unwrap_or(0),
                "traces_per_request": s.body_traces.checked_div(s.requests).unwrap_or(0),
                "header_traces": s.header_traces,
                "body_traces": s.body_traces,
                "last_body_spans": s.last_body_spans,
                "problems": s.problems,
            });
        }
        v
    };
    let ours = side("ours");
    let theirs = side("theirs");
    let ratio = match (ours["spans_per_s"].as_f64(), theirs["spans_per_s"].as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let cpu_ratio = match (
        ours["spans_per_cpu_s"].as_f64(),
        theirs["spans_per_cpu_s"].as_f64(),
    ) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let rss_ratio = match (ours["peak_rss_kb"].as_f64(), theirs["peak_rss_kb"].as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let mut problems: Vec<String> = Vec::new();
    for (n, v) in [("ours", &ours), ("theirs", &theirs)] {
        if let Some(e) = v["error"].as_str() {
            problems.push(format!("{n}: {e}"));
        }
        if let Some(p) = v["sink"]["problems"].as_array() {
            problems.extend(
                p.iter()
                    .filter_map(Value::as_str)
                    .map(|p| format!("{n}: {p}")),
            );
        }
    }
    // Both sides must deliver the same traces per request to the sink (batching exporters:
    // the same traces in total, checked per side in `check_sink`).
    if let (false, Some(a), Some(b)) = (
        cases::batched(c.group),
        ours["sink"]["traces_per_request"].as_u64(),
        theirs["sink"]["traces_per_request"].as_u64(),
    ) {
        if a != b {
            problems.push(format!("traces per request differ: ours {a}, theirs {b}"));
        }
    }
    json!({
        "case": c.name,
        "group": c.group,
        "what": cases::describe_group(c.group),
        "shape": c.shape.name(),
        "shape_desc": c.shape.describe(),
        "input": c.wire.name(),
        "input_bytes": bytes,
        "traces": traces,
        "spans": spans,
        "ours": ours,
        "theirs": theirs,
        "ratio": ratio,
        "target": c.target,
        "meets_target": match (ratio, c.target) { (Some(r), Some(t)) => Some(r >= t), _ => None },
        "cpu_ratio": cpu_ratio,
        "rss_ratio": rss_ratio,
        "problems": problems,
        "failed": !problems.is_empty(),
    })
}

fn human(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 1e6 => format!("{:.2}M", v / 1e6),
        Some(v) if v >= 1e3 => format!("{:.1}k", v / 1e3),
        Some(v) => format!("{v:.0}"),
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

fn print_row_progress(row: &Value) {
    eprintln!(
        "{:32} ours {:>8} spans/s  theirs {:>8} spans/s  ratio {:>5}{}",
        row["case"].as_str().unwrap_or(""),
        human(row["ours"]["spans_per_s"].as_f64()),
        human(row["theirs"]["spans_per_s"].as_f64()),
        opt(row["ratio"].as_f64(), 2),
        if row["failed"].as_bool() == Some(true) {
            format!("  FAILED: {}", row["problems"])
        } else {
            String::new()
        }
    );
}

fn print_table(rows: &[Value]) {
    println!();
    println!(
        "| {:32} | {:>9} | {:>9} | {:>9} | {:>9} | {:>6} | {:>6} | {:>6} | {:>8} | {:>8} |",
        "case",
        "ours sp/s",
        "thrs sp/s",
        "ours MB/s",
        "thrs MB/s",
        "ratio",
        "cpu r.",
        "target",
        "RSS ours",
        "RSS thrs"
    );
    println!(
        "|{:-<34}|{:->11}|{:->11}|{:->11}|{:->11}|{:->8}|{:->8}|{:->8}|{:->10}|{:->10}|",
        "", "", "", "", "", "", "", "", "", ""
    );
    for r in rows {
        let mb = |side: &str| {
            r[side]["mb_per_s"]
                .as_f64()
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into())
        };
        let rss = |side: &str| {
            r[side]["peak_rss_kb"]
                .as_f64()
                .map(|v| format!("{:.1}M", v / 1024.0))
                .unwrap_or_else(|| "-".into())
        };
        let mark = match r["meets_target"].as_bool() {
            Some(true) => " ok",
            Some(false) => " MISS",
            None => "",
        };
        println!(
            "| {:32} | {:>9} | {:>9} | {:>9} | {:>9} | {:>6} | {:>6} | {:>6} | {:>8} | {:>8} |{}{}",
            r["case"].as_str().unwrap_or(""),
            human(r["ours"]["spans_per_s"].as_f64()),
            human(r["theirs"]["spans_per_s"].as_f64()),
            mb("ours"),
            mb("theirs"),
            opt(r["ratio"].as_f64(), 2),
            opt(r["cpu_ratio"].as_f64(), 2),
            r["target"]
                .as_f64()
                .map(|t| format!("{t:.1}x"))
                .unwrap_or_else(|| "-".into()),
            rss("ours"),
            rss("theirs"),
            mark,
            if r["failed"].as_bool() == Some(true) {
                " FAILED"
            } else {
                ""
            }
        );
    }
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

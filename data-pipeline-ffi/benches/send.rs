//! `dp_exporter_send` (the C ABI, called exactly as a C caller calls it) against `Exporter::send`
//! (the Rust API) on the same payload, through the same exporter, to a loopback HTTP sink that
//! answers 200 at once. The difference is the cost of the C boundary (argument checks,
//! `catch_unwind`, boxing the response).
//!
//! `cargo bench -p data-pipeline-ffi --bench send`
//!
//! The same measure from a real C program: `tests-c/bench_send.c` (see its header).

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use data_pipeline::error::dp_error_free;
use data_pipeline::exporter::dp_exporter_send;
use data_pipeline::exporter_builder::{
    dp_exporter_builder_build, dp_exporter_builder_new, dp_exporter_builder_set_url,
};
use data_pipeline::response::{dp_response_free, dp_response_status};
use data_pipeline::slice::{dp_bytes, dp_str};

const BODY: &str = r#"{"rate_by_service":{"service:,env:":1.0}}"#;

/// Serves one keep-alive connection: reads each request (headers + Content-Length body), answers 200.
fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    stream.set_nodelay(true)?;
    let mut writer = stream;
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        let mut length = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        // One write per answer (several small writes + Nagle + delayed ACK cost 40 ms each).
        writer.write_all(answer.as_bytes())?;
    }
}

/// A sink on 127.0.0.1 (free port); one thread per connection. Lives until the process exits.
fn sink() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    let addr = listener.local_addr().expect("sink address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    format!("http://{addr}")
}

/// A v0.4 payload of `traces` traces of `spans` spans (what a tracer with its own encoder sends).
fn payload(traces: usize, spans: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let w = &mut out;
    let s = |w: &mut Vec<u8>, v: &str| rmp::encode::write_str(w, v).expect("write");
    rmp::encode::write_array_len(w, traces as u32).expect("write");
    for t in 0..traces {
        rmp::encode::write_array_len(w, spans as u32).expect("write");
        for i in 0..spans {
            rmp::encode::write_map_len(w, 12).expect("write");
            s(w, "service");
            s(w, "bench-service");
            s(w, "name");
            s(w, "http.request");
            s(w, "resource");
            s(w, "GET /users/{id}");
            s(w, "type");
            s(w, "web");
            s(w, "trace_id");
            rmp::encode::write_uint(w, t as u64 + 1).expect("write");
            s(w, "span_id");
            rmp::encode::write_uint(w, i as u64 + 1).expect("write");
            s(w, "parent_id");
            rmp::encode::write_uint(w, i as u64).expect("write");
            s(w, "start");
            rmp::encode::write_sint(w, 1_700_000_000_000_000_000 + i as i64).expect("write");
            s(w, "duration");
            rmp::encode::write_sint(w, 12_345).expect("write");
            s(w, "error");
            rmp::encode::write_sint(w, 0).expect("write");
            s(w, "meta");
            rmp::encode::write_map_len(w, 2).expect("write");
            s(w, "env");
            s(w, "prod");
            s(w, "http.method");
            s(w, "GET");
            s(w, "metrics");
            rmp::encode::write_map_len(w, 1).expect("write");
            s(w, "_sampling_priority_v1");
            rmp::encode::write_f64(w, 1.0).expect("write");
        }
    }
    out
}

/// Runs `a` then `b` `iters` times (alternating which goes first); returns the time spent in each.
fn paired(iters: u64, a: &dyn Fn(), b: &dyn Fn()) -> (Duration, Duration) {
    let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
    for i in 0..iters {
        let time = |f: &dyn Fn()| {
            let t = Instant::now();
            f();
            t.elapsed()
        };
        if i % 2 == 0 {
            ta += time(a);
            tb += time(b);
        } else {
            tb += time(b);
            ta += time(a);
        }
    }
    (ta, tb)
}

/// Prints the median (and p10/p90) of 600 paired calls of each side. On this shared machine the
/// means criterion reports are pulled by outliers; the medians are the figure to compare.
fn paired_medians(label: &str, rust_api: &dyn Fn(), c_abi: &dyn Fn()) {
    let (mut r, mut c) = (Vec::with_capacity(600), Vec::with_capacity(600));
    for _ in 0..300 {
        let (a, b) = paired(2, rust_api, c_abi);
        r.push(a / 2);
        c.push(b / 2);
    }
    r.sort();
    c.sort();
    let pct = |v: &[Duration], p: usize| v[v.len() * p / 100];
    let (rm, cm) = (pct(&r, 50), pct(&c, 50));
    eprintln!(
        "send/{label} paired medians: rust_api {rm:?} (p10 {:?}, p90 {:?}), c_abi {cm:?} (p10 {:?}, p90 {:?}), c_abi/rust_api = {:.3}",
        pct(&r, 10),
        pct(&r, 90),
        pct(&c, 10),
        pct(&c, 90),
        cm.as_secs_f64() / rm.as_secs_f64()
    );
}

fn send(c: &mut Criterion) {
    let url = sink();
    let exporter = unsafe {
        let b = dp_exporter_builder_new();
        let err = dp_exporter_builder_set_url(b, dp_str::of(&url));
        assert!(err.is_null());
        let mut ex = std::ptr::null_mut();
        let err = dp_exporter_builder_build(b, &mut ex);
        assert!(err.is_null());
        ex
    };
    let mut g = c.benchmark_group("send");
    for (traces, spans) in [(1000usize, 10usize), (1, 10)] {
        let payload = payload(traces, spans);
        g.throughput(Throughput::Elements((traces * spans) as u64));
        let ex = unsafe { &*exporter }.as_exporter();
        let rust_api = || {
            let resp = ex.send(black_box(&payload)).expect("send");
            assert_eq!(resp.status, 200);
        };
        let c_abi = || unsafe {
            let mut resp = std::ptr::null_mut();
            let err = dp_exporter_send(
                exporter,
                black_box(dp_bytes::from_slice(&payload)),
                &mut resp,
            );
            if !err.is_null() {
                dp_error_free(err);
                panic!("send failed");
            }
            assert_eq!(dp_response_status(resp), 200);
            dp_response_free(resp);
        };
        paired_medians(&format!("{traces}x{spans}"), &rust_api, &c_abi);
        // Paired: every iteration runs both calls back to back and each benchmark keeps the time of
        // its own call, so drift on this shared machine (other processes, the sink thread's
        // scheduling) hits both sides alike.
        g.bench_function(format!("rust_api_{traces}x{spans}"), |b| {
            b.iter_custom(|iters| paired(iters, &rust_api, &c_abi).0)
        });
        g.bench_function(format!("c_abi_{traces}x{spans}"), |b| {
            b.iter_custom(|iters| paired(iters, &rust_api, &c_abi).1)
        });
    }
    g.finish();
    unsafe { data_pipeline::exporter::dp_exporter_free(exporter) };
}

criterion_group!(benches, send);
criterion_main!(benches);

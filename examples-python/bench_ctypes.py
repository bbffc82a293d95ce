#!/usr/bin/env python3
"""Benchmark (not a test): what a call through the Python binding costs.

    python examples-python/bench_ctypes.py [--quick]

Reports, per call, the best of several timed runs (min: the least disturbed by other processes):
- raw ctypes calls (declared argtypes, prebuilt arguments): the floor any ctypes binding pays;
- the same through the binding (str -> UTF-8 dp_str, per-handle lock, error check);
- building a 20-tag span through the API (and, for scale, packing the same span with `msgpack`);
- one send of a 1-trace (10-span) payload to a loopback HTTP sink that answers 200 at once, through
  the binding and through raw ctypes. The sink is a separate Python process (not the benchmark's GIL);
  its own per-request cost is part of every send figure, so compare send figures with each other.

The library is found as usual ($DATA_PIPELINE_LIB, the source tree's target/release, ...): benchmark
a release build.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import time
from typing import Callable, List, Tuple

import data_pipeline as dp
from data_pipeline import _ffi

try:
    import msgpack  # type: ignore[import-not-found]
except ImportError:  # the comparison row is skipped
    msgpack = None

SINK = r"""
import socket, sys, threading
BODY = b'{"rate_by_service":{"service:,env:":1.0}}'
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            chunk = c.recv(65536)
            if not chunk:
                return
            buf += chunk
            end = buf.find(b"\r\n\r\n")
        head, buf = buf[:end], buf[end + 4:]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(buf) < length:
            chunk = c.recv(65536)
            if not chunk:
                return
            buf += chunk
        buf = buf[length:]
        c.sendall(ANSWER)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def best_per_call(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Best mean time of one call, in nanoseconds, over `repeat` runs of `number` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / number)
    return best


def payload_1x10() -> bytes:
    """A v0.4 payload of 1 trace of 10 spans, 12 fields each (the shape of the Rust/C send benches)."""
    spans = []
    for i in range(10):
        spans.append(
            {
                "service": "bench-service", "name": "http.request", "resource": "GET /users/{id}",
                "type": "web", "trace_id": 1, "span_id": i + 1, "parent_id": i,
                "start": 1_700_000_000_000_000_000 + i, "duration": 12_345, "error": 0,
                "meta": {"env": "prod", "http.method": "GET"},
                "metrics": {"_sampling_priority_v1": 1.0},
            }
        )
    if msgpack is not None:
        return msgpack.packb([spans])
    raise SystemExit("the send rows need the `msgpack` package")


TAGS = {f"tag.{i:02d}": f"value-{i:02d}" for i in range(20)}


def span_20_tags() -> dp.Span:
    return dp.Span(
        service="bench-service", name="http.request", resource="GET /users/{id}", type="web",
        trace_id=(1 << 64) | 7, span_id=2, parent_id=1, start=1_700_000_000_000_000_000,
        duration=12_345, meta=TAGS,
    )


def main() -> None:
    quick = "--quick" in sys.argv
    n_fast, n_span, n_send, repeat = (20_000, 2_000, 200, 3) if quick else (200_000, 20_000, 2_000, 5)
    lib = _ffi.lib
    rows: List[Tuple[str, float]] = []

    def row(name: str, fn: Callable[[], object], number: int) -> None:
        ns = best_per_call(fn, number, repeat)
        rows.append((name, ns))
        print(f"{name:<58} {ns / 1000:9.2f} us", flush=True)

    print(f"data_pipeline {dp.version()} from {dp.library_path()}")
    print(f"Python {sys.version.split()[0]}; best of {repeat} runs\n")

    # -- per-call floor of ctypes --
    row("raw ctypes: dp_version()", lib.dp_version, n_fast)
    trace = dp.Trace([dp.Span()])
    tptr = trace._ptr
    row("raw ctypes: dp_trace_len(trace)", lambda: lib.dp_trace_len(tptr), n_fast)
    span = dp.Span()
    sptr = span._ptr
    k, v = _ffi.dp_str(b"http.method", 11), _ffi.dp_str(b"GET", 3)
    row("raw ctypes: dp_span_set_meta(span, k, v), prebuilt views", lambda: lib.dp_span_set_meta(sptr, k, v), n_fast)
    row(
        "raw ctypes: dp_span_set_meta, views built per call",
        lambda: lib.dp_span_set_meta(sptr, _ffi.dp_str(b"http.method", 11), _ffi.dp_str(b"GET", 3)),
        n_fast,
    )
    row("binding: Span.set_meta('http.method', 'GET')", lambda: span.set_meta("http.method", "GET"), n_fast)
    row("binding: Span.set_metric('rows', 3.0)", lambda: span.set_metric("rows", 3.0), n_fast)
    row("binding: Span.set_span_id(7)", lambda: span.set_span_id(7), n_fast)
    row("binding: len(trace)", lambda: len(trace), n_fast)

    # -- spans --
    def build_and_free() -> None:
        span_20_tags().close()

    row("binding: Span(20 tags + 9 fields), then close()", build_and_free, n_span)

    def build_into_trace() -> None:
        with dp.Trace() as t:
            t.push(span_20_tags())

    row("binding: Span(20 tags + 9 fields) pushed into a Trace", build_into_trace, n_span)
    if msgpack is not None:
        as_dict = {
            "service": "bench-service", "name": "http.request", "resource": "GET /users/{id}",
            "type": "web", "trace_id": 7, "span_id": 2, "parent_id": 1,
            "start": 1_700_000_000_000_000_000, "duration": 12_345, "error": 0,
            "meta": dict(TAGS, **{"_dd.p.tid": "0000000000000001"}),
        }
        row("for scale: msgpack.packb(the same span as a dict)", lambda: msgpack.packb(as_dict), n_span)

    # -- sends --
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        payload = payload_1x10()
        with dp.Exporter.build(url=url, tracer_version="bench") as exporter:
            exporter.send(payload).close()  # connect, warm up
            row("binding: Exporter.send(1x10 payload) + Response.close()",
                lambda: exporter.send(payload).close(), n_send)

            eptr = exporter._ptr
            view, keep = _ffi.to_bytes(payload, "payload")
            out = _ffi.out_ptr(_ffi.dp_response)
            ref = ctypes.byref(out)

            def raw_send() -> None:
                err = lib.dp_exporter_send(eptr, view, ref)
                if err:
                    _ffi._check(err)
                lib.dp_response_free(out)

            row("raw ctypes: dp_exporter_send(1x10) + dp_response_free", raw_send, n_send)

            with dp.Trace(
                [dp.Span(service="bench-service", name="http.request", resource="GET /users/{id}",
                         type="web", trace_id=1, span_id=i + 1, parent_id=i, duration=12_345,
                         meta={"env": "prod", "http.method": "GET"},
                         metrics={"_sampling_priority_v1": 1.0}) for i in range(10)]
            ) as t10:
                row("binding: Exporter.send_traces(Trace of 10 spans)",
                    lambda: exporter.send_traces(t10).close(), n_send)
            del keep
    finally:
        sink.kill()
        sink.wait()
    trace.close()
    span.close()


if __name__ == "__main__":
    main()

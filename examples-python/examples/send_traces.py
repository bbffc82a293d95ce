#!/usr/bin/env python3
"""Builds a small trace through the span API, plus one msgpack payload "encoded by the tracer", sends
both to the agent given as argument and prints what the agent answered.

    python examples/send_traces.py http://127.0.0.1:8126

Uses only the standard library and `data_pipeline` (pip install ./examples-python). The library is
found as the package's README explains ($DATA_PIPELINE_LIB, beside the module, the source tree's
target/, or installed). $DP_TEST_SESSION_TOKEN, when set, tags the requests for the Datadog test agent.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time

import data_pipeline as dp


def build_trace(service: str) -> dp.Trace:
    now = time.time_ns()
    trace_id = random.getrandbits(128)  # 128-bit: the high half travels in meta _dd.p.tid
    root_id, child_id = random.getrandbits(63) or 1, random.getrandbits(63) or 2
    root = dp.Span(
        service=service,
        name="http.request",
        resource="GET /users/:id",
        type="web",
        trace_id=trace_id,
        span_id=root_id,
        start=now,
        duration=3_000_000,
        meta={"env": "demo", "http.method": "GET", "http.status_code": "200"},
        metrics={"_sampling_priority_v1": 1},
    )
    root.add_event(dp.SpanEvent(now + 1_000_000, "cache.miss", {"key": "user:42", "attempt": 1}))
    child = dp.Span(
        service=service,
        name="db.query",
        resource="SELECT * FROM users WHERE id = ?",
        type="sql",
        trace_id=trace_id,
        span_id=child_id,
        parent_id=root_id,
        start=now + 500_000,
        duration=1_200_000,
        meta={"db.system": "postgresql"},
    )
    child.add_link(dp.SpanLink(random.getrandbits(128), 7, tracestate="dd=s:1", flags=1))
    return dp.Trace([root, child])


def encoded_by_tracer(service: str) -> bytes:
    """A v0.4 payload of one span, msgpack-encoded by hand (what a tracer with its own encoder sends)."""

    def s(text: str) -> bytes:
        data = text.encode()
        assert len(data) < 32
        return bytes([0xA0 | len(data)]) + data

    def u64(n: int) -> bytes:
        return b"\xcf" + n.to_bytes(8, "big")

    fields = [
        (s("service"), s(service)),
        (s("name"), s("encoded.by.tracer")),
        (s("resource"), s("batch")),
        (s("trace_id"), u64(random.getrandbits(63) or 1)),
        (s("span_id"), u64(random.getrandbits(63) or 1)),
        (s("start"), u64(time.time_ns())),
        (s("duration"), u64(1000)),
    ]
    span = bytes([0x80 | len(fields)]) + b"".join(k + v for k, v in fields)
    return b"\x91\x91" + span  # [[span]]


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} AGENT_URL   (e.g. http://127.0.0.1:8126)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    dp.set_log_callback(level=logging.WARNING)  # library warnings go to `logging`
    print(f"data_pipeline {dp.version()} from {dp.library_path()}")

    service = "python-example"
    options = dict(url=sys.argv[1], service=service, env="demo", tracer_version=dp.__version__)
    token = os.environ.get("DP_TEST_SESSION_TOKEN")
    if token:
        options["test_session_token"] = token
    try:
        with dp.Exporter.build(**options) as exporter:
            with build_trace(service) as trace:
                response = exporter.send_traces(trace)
                print(f"spans through the API: HTTP {response.status} {response.body.decode()}")
            response = exporter.send(encoded_by_tracer(service))
            print(f"msgpack payload:       HTTP {response.status} {response.body.decode()}")
            try:
                rate = response.sampling_rate(service, "demo")
                print(f"sampling rate for service:{service},env:demo = {rate}")
            except dp.NotFoundError:
                print("the agent sent no sampling rate for this service (and no default)")
    except dp.DataPipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Data streams checkpoint cost from Python: our ctypes binding (data_pipeline) or ddtrace's own
pure-Python processor, on the same sequence. Run once per implementation, each in its own venv:

    python bench/dsm/python_checkpoint.py ours     [BATCH BATCHES]   # needs data_pipeline importable
    python bench/dsm/python_checkpoint.py ddtrace  [BATCH BATCHES]   # needs ddtrace (.cache/venv-ddtrace)

Cases (service "billing", env "prod"; no I/O on either side):
  checkpoint   one consume checkpoint following a context (4 edge tags): ours
               ``ds.checkpoint(tags, parent, 120)``; ddtrace ``ctx.set_checkpoint(tags, payload_size=120)``
               (repeated on one context: loop protection makes every call the same consume of the
               same parent, so both sides do the same work in steady state)
  hop          what a Kafka service does per message: decode the incoming base64 header, consume
               checkpoint, produce checkpoint to the next topic, encode the outgoing header

Prints one JSON line per case: median/p10/p90 ns per operation over batches (wall clock), the median
of the thread's CPU time, and the pathway hashes computed (both sides must agree).
ddtrace's processor starts a flush thread in its constructor: it is pointed at a closed loopback port
with a one-hour interval and stopped before measuring.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

IN_TAGS = ["direction:in", "group:billing", "topic:orders", "type:kafka"]
OUT_TAGS = ["direction:out", "topic:invoices", "type:kafka"]
PARENT_HASH = 12637414960767859789  # the spec's vector: svc-a/prod produce to orders


def measure(fn, batch: int, batches: int):
    for _ in range(batch * 5):  # warm up
        fn()
    wall, cpu = [], []
    for _ in range(batches):
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        for _ in range(batch):
            fn()
        c1, w1 = time.thread_time_ns(), time.perf_counter_ns()
        wall.append((w1 - w0) / batch)
        cpu.append((c1 - c0) / batch)
    wall.sort()
    cpu.sort()
    n = len(wall)
    return {"median_ns": round(wall[n // 2], 1), "p10_ns": round(wall[n // 10], 1),
            "p90_ns": round(wall[n * 9 // 10], 1), "cpu_median_ns": round(cpu[n // 2], 1)}


def closed_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def ours(batch: int, batches: int):
    import data_pipeline as dp

    ds = dp.DataStreams(url=closed_url(), service="billing", env="prod", flush_interval=0)
    now = time.time_ns()
    parent = dp.PathwayContext.new(PARENT_HASH, now, now)
    header = parent.encode_base64()

    def checkpoint():
        ds.checkpoint(IN_TAGS, parent, 120)

    def hop():
        ctx = dp.PathwayContext.decode_base64(header)
        consumed = ds.checkpoint(IN_TAGS, ctx, 120)
        produced = ds.checkpoint(OUT_TAGS, consumed, 300)
        return produced.encode_base64()

    consumed = ds.checkpoint(IN_TAGS, parent, 120)
    hashes = [consumed.hash, ds.checkpoint(OUT_TAGS, consumed, 300).hash]
    yield "checkpoint", measure(checkpoint, batch, batches), hashes
    yield "hop", measure(hop, batch, batches), hashes
    ds.close()  # never waits; nothing is sent


def ddtrace(batch: int, batches: int):
    os.environ.setdefault("DD_SERVICE", "billing")
    os.environ.setdefault("DD_ENV", "prod")
    os.environ.setdefault("DD_TRACE_ENABLED", "false")
    # ddtrace 4.x hashes process tags by default; ours (and shared/vectors/dsm.json) by default not:
    # turn them off so both sides hash the same bytes and compute the same pathway.
    os.environ.setdefault("DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED", "false")
    import logging

    logging.getLogger("ddtrace").setLevel(logging.ERROR)
    from ddtrace.internal.datastreams.processor import DataStreamsCtx, DataStreamsProcessor

    processor = DataStreamsProcessor(agent_url=closed_url(), interval=3600.0)
    processor.stop()  # no flush thread during the measurement
    processor.join()
    now = time.time()
    parent = DataStreamsCtx(processor, PARENT_HASH, now, now)
    header = parent.encode_b64()
    steady = DataStreamsCtx(processor, PARENT_HASH, now, now)

    def checkpoint():
        steady.set_checkpoint(IN_TAGS, payload_size=120)

    def hop():
        ctx = processor.decode_pathway_b64(header)
        ctx.set_checkpoint(IN_TAGS, payload_size=120)
        ctx.set_checkpoint(OUT_TAGS, payload_size=300)
        return ctx.encode_b64()

    probe = DataStreamsCtx(processor, PARENT_HASH, now, now)
    probe.set_checkpoint(IN_TAGS, payload_size=120)
    first = probe.hash
    probe.set_checkpoint(OUT_TAGS, payload_size=300)
    hashes = [first, probe.hash]
    yield "checkpoint", measure(checkpoint, batch, batches), hashes
    yield "hop", measure(hop, batch, batches), hashes
    processor._buckets.clear()  # nothing for its exit hook to send


def main(argv):
    if len(argv) < 2 or argv[1] not in ("ours", "ddtrace"):
        print(f"usage: {argv[0]} ours|ddtrace [BATCH BATCHES]", file=sys.stderr)
        return 2
    batch = int(argv[2]) if len(argv) > 2 else 200
    batches = int(argv[3]) if len(argv) > 3 else 100
    impl = ours if argv[1] == "ours" else ddtrace
    for case, result, hashes in impl(batch, batches):
        print(json.dumps({"impl": argv[1], "case": case, **result, "hashes": hashes,
                          "python": sys.version.split()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

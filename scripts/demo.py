#!/usr/bin/env python3
"""The demo's second half (scripts/demo.sh builds and installs first): starts the real Datadog test
agent, sends traces through the C ABI from a C program and from Python, sends data-streams stats from
Python, then prints what the agent received."""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import msgpack

import data_pipeline as dp
from data_pipeline.testing import TestAgent

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "demo"
SERVICE_PY = "demo-python"


def send_python_traces(url: str) -> None:
    """A web request with a SQL query and a Redis call, 5 times, built through the span API."""
    exporter = dp.Exporter.build(
        url=url,
        service=SERVICE_PY,
        env="demo",
        tracer_version="0.1.0-demo",
        output_format="v0.5",
        test_session_token=TOKEN,
    )
    with exporter:
        traces = []
        for i in range(5):
            now = time.time_ns()
            trace_id = (0x1234 << 64) | (1000 + i)  # 128-bit: the high half travels in _dd.p.tid
            root = dp.Span(
                service=SERVICE_PY, name="http.request", resource="GET /orders/:id", type="web",
                trace_id=trace_id, span_id=10 + i, start=now, duration=4_000_000,
                meta={"env": "demo", "http.method": "GET", "http.status_code": "200"},
                metrics={"_sampling_priority_v1": 1},
            )
            sql = dp.Span(
                service=SERVICE_PY, name="postgres.query", type="sql",
                resource="SELECT * FROM orders WHERE id = ?",
                trace_id=trace_id, span_id=100 + i, parent_id=10 + i,
                start=now + 500_000, duration=1_500_000,
            )
            redis = dp.Span(
                service=SERVICE_PY, name="redis.command", resource="GET", type="redis",
                trace_id=trace_id, span_id=200 + i, parent_id=10 + i,
                start=now + 2_100_000, duration=300_000,
            )
            traces.append(dp.Trace([root, sql, redis]))
        response = exporter.send_traces(traces)
        print(f"python: sent {len(traces)} traces (v0.5), agent answered HTTP {response.status}, "
              f"sampling rate for {SERVICE_PY}/demo = {response.sampling_rate(SERVICE_PY, 'demo')}")


def send_c_traces(binary: str, url: str) -> None:
    out = subprocess.run(
        [binary, url], env=dict(os.environ, DP_TEST_SESSION_TOKEN=TOKEN),
        capture_output=True, text=True, timeout=60,
    )
    for line in out.stdout.strip().splitlines():
        print(f"c: {line}")
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"the C example failed with exit code {out.returncode}")


def send_data_streams(url: str) -> None:
    """Three services pass messages through two queues; every hop is a checkpoint."""
    from data_pipeline.datastreams import DataStreams  # noqa: PLC0415

    def processor(service: str) -> "DataStreams":
        return DataStreams(url=url, service=service, env="demo", test_session_token=TOKEN)

    with processor("orders-api") as a, processor("billing") as b, processor("mailer") as c:
        for n in range(20):
            headers: list = []
            a.produce("orders", headers, payload_size=120)                  # orders-api -> orders
            time.sleep(0.002)                                                 # time in the queue
            ctx = b.consume("orders", "billing", headers, payload_size=120)  # orders -> billing
            out: list = []
            b.produce("invoices", out, payload_size=300, parent=ctx)        # billing -> invoices
            c.consume("invoices", "mailer", out, payload_size=300)          # invoices -> mailer
            a.track_kafka_produce_offset("orders", 0, n)
            b.track_kafka_commit_offset("billing", "orders", 0, n + 1)
        for p in (a, b, c):
            p.flush()
    print("data streams: 20 messages through orders-api -> orders -> billing -> invoices -> mailer")


def report(agent: TestAgent) -> None:
    traces = agent.traces(TOKEN)
    spans = [s for t in traces for s in t]
    services = collections.Counter(s["service"] for s in spans)
    print("\n=== what the test agent received ===")
    print(f"traces: {len(traces)}   spans: {len(spans)}")
    for service, n in sorted(services.items()):
        names = sorted({s["name"] for s in spans if s["service"] == service})
        print(f"  service {service:<14} {n:>3} spans   operations: {', '.join(names)}")
    failures = agent.check_failures(TOKEN)
    print(f"trace checks (count header, tracer version, content length): "
          f"{'all passed' if not failures else failures}")

    points = []
    for req in agent.requests(TOKEN):
        if "/v0.1/pipeline_stats" not in req["url"]:
            continue
        payload = msgpack.unpackb(base64.b64decode(req["body"]), raw=False)
        for bucket in payload.get("Stats", []):
            for point in bucket.get("Stats", []):
                points.append((payload["Service"], point))
            for backlog in bucket.get("Backlogs", []):
                print(f"  backlog {','.join(backlog['Tags'])} = {backlog['Value']}")
    print(f"data-streams stats points: {len(points)}")
    for service, point in sorted(points, key=lambda p: p[0]):
        print(f"  {service:<11} hash {point['Hash']:>20} parent {point['ParentHash']:>20}  "
              f"{' '.join(sorted(point['EdgeTags']))}")
    if not spans or not points or failures:
        raise SystemExit("the demo did not deliver everything it sent")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--c-example", required=True, help="path of the built examples-c/send_traces")
    ap.add_argument("--log-dir", default=str(ROOT / "build" / "demo"))
    args = ap.parse_args()
    binary = os.environ.get("DP_TEST_AGENT") or str(ROOT / ".cache/venv/bin/ddapm-test-agent")
    extra = {"DD_AGENT_EXTRA_INFO": json.dumps({"endpoints": [
        "/v0.4/traces", "/v0.5/traces", "/v0.6/stats", "/v0.1/pipeline_stats", "/info"]})}
    agent = TestAgent(binary, Path(args.log_dir) / "agent.log", extra_env=extra)
    agent.start()
    try:
        print(f"test agent at {agent.url} (library {os.environ.get('DATA_PIPELINE_LIB')})")
        agent.start_session(TOKEN, rates={"service:demo-python,env:demo": 0.5})
        send_c_traces(args.c_example, agent.url)
        send_python_traces(agent.url)
        send_data_streams(agent.url)
        time.sleep(0.5)
        report(agent)
    finally:
        agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

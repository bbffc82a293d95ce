"""The C data streams examples (examples-c/dsm_http.c, dsm_kafka.c), built against the installed
library, run against the real test agent (and a real Kafka broker); what the agent received is decoded
and checked here like for the Python examples.

Runs when $DP_DSM_C_EXAMPLES names the directory of the built examples (scripts/test-dsm.sh builds
them and sets it); dsm_kafka is there only when librdkafka was installed.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from dsm_support import kafka, node_hash, pathway_hash, pipeline_payloads  # noqa: F401 (fixture)

EXAMPLES = os.environ.get("DP_DSM_C_EXAMPLES")
pytestmark = pytest.mark.skipif(not EXAMPLES, reason="DP_DSM_C_EXAMPLES not set (scripts/test-dsm.sh sets it)")


def binary(name: str) -> Path:
    path = Path(EXAMPLES or "") / name
    if name == "dsm_kafka" and not path.exists():
        pytest.skip("dsm_kafka was not built (librdkafka-dev missing)")
    assert path.exists(), f"{path} missing"
    return path


def run(name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary(name)), *args], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=180)


def test_c_http_example(test_agent, session_token):
    r = run("dsm_http", test_agent.url, "3", DP_TEST_SESSION_TOKEN=session_token)
    assert r.returncode == 0, r.stdout + r.stderr
    h_client = pathway_hash(node_hash("dsm-http-client-c", "demo", ["direction:out", "type:http"]), 0)
    h_server = pathway_hash(node_hash("dsm-http-server-c", "demo", ["direction:in", "type:http"]), h_client)
    lines = [l for l in r.stdout.splitlines() if l.startswith("request ")]
    assert lines == [f"request {i}: client hash={h_client} server received={h_client} server hash={h_server}"
                     for i in range(3)]
    payloads = pipeline_payloads(test_agent.requests(session_token))
    assert payloads.point("dsm-http-client-c", h_client).parent == 0
    server = payloads.point("dsm-http-server-c", h_server)
    assert server.parent == h_client and server.edge.count == 3
    for _h, p in payloads.raw:
        assert p["Lang"] == "c" and p["TracerVersion"] == "example"


def test_c_http_example_errors(closed_url):
    r = run("dsm_http", closed_url, "1")
    assert r.returncode == 1 and "DP_STATUS_NETWORK" in r.stderr
    assert run("dsm_http").returncode == 2


def test_c_kafka_example(kafka, test_agent, session_token):
    run_id = uuid.uuid4().hex[:6]
    topic, group = f"c-orders-{run_id}", f"c-billing-{run_id}"
    r = run("dsm_kafka", test_agent.url, kafka, "4", DP_TEST_SESSION_TOKEN=session_token, DSM_TOPIC=topic,
            DSM_GROUP=group)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("consumed order-") == 4
    h_p = pathway_hash(node_hash("dsm-kafka-producer-c", "demo", ["direction:out", f"topic:{topic}", "type:kafka"]), 0)
    h_c = pathway_hash(node_hash("dsm-kafka-consumer-c", "demo",
                                 ["direction:in", f"group:{group}", f"topic:{topic}", "type:kafka"]), h_p)
    payloads = pipeline_payloads(test_agent.requests(session_token))
    produced = payloads.point("dsm-kafka-producer-c", h_p)
    consumed = payloads.point("dsm-kafka-consumer-c", h_c)
    assert produced.parent == 0 and consumed.parent == h_p
    assert produced.size.count == consumed.size.count == 4
    offsets = {}
    for line in r.stdout.splitlines():
        if line.startswith("produced "):
            partition, offset = int(line.split("partition ")[1].split()[0]), int(line.rsplit(" ", 1)[1])
            offsets[partition] = max(offsets.get(partition, -1), offset)
    for partition, offset in offsets.items():
        assert payloads.backlog("dsm-kafka-producer-c", "type:kafka_produce", f"topic:{topic}",
                                f"partition:{partition}") == offset
        assert payloads.backlog("dsm-kafka-consumer-c", "type:kafka_commit", f"consumer_group:{group}",
                                f"topic:{topic}", f"partition:{partition}") == offset + 1

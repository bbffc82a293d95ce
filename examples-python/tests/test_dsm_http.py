"""Data Streams Monitoring over HTTP against the real Datadog test agent: the client/server example
(examples/dsm_http.py, http.server + urllib on 127.0.0.1), and an in-process pair whose latencies are
checked against the wall clock and the sketches the agent received."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import data_pipeline as dp
from dsm_support import node_hash, pathway_hash, pipeline_payloads

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dsm_http.py"
MS = 1_000_000


def run_example(*args, **env):
    pkg_parent = str(Path(dp.__file__).resolve().parents[1])
    full_env = dict(os.environ, **env)
    full_env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True,
                          env=full_env, cwd="/", timeout=120)


def test_the_http_example_links_client_and_server(test_agent, session_token):
    t0 = time.time_ns()
    r = run_example(test_agent.url, "4", DP_TEST_SESSION_TOKEN=session_token)
    wall = (time.time_ns() - t0) / 1e9
    assert r.returncode == 0, r.stdout + r.stderr
    h_client = pathway_hash(node_hash("dsm-http-client", "demo", ["direction:out", "type:http"]), 0)
    h_server = pathway_hash(node_hash("dsm-http-server", "demo", ["direction:in", "type:http"]), h_client)
    lines = [l for l in r.stdout.splitlines() if l.startswith("request ")]
    assert len(lines) == 4
    for line in lines:
        assert f"client hash={h_client} server received={h_client} server hash={h_server}" in line, line
    assert "sent: client 1 payload(s), server 1 payload(s)" in r.stdout

    payloads = pipeline_payloads(test_agent.requests(session_token))
    client = payloads.point("dsm-http-client", h_client)
    server = payloads.point("dsm-http-server", h_server)
    assert (client.parent, server.parent) == (0, h_client)
    assert client.tags == ["direction:out", "type:http"] and server.tags == ["direction:in", "type:http"]
    assert client.size.count == server.size.count == 4
    # The server's edge latency (client checkpoint -> server checkpoint): >= 0, within the run.
    assert server.edge.negative == 0
    assert server.edge.max_range()[0] <= wall
    for _headers, p in payloads.raw:
        assert p["Env"] == "demo" and p["Lang"] == "python"


def test_the_http_example_reports_errors(closed_url):
    r = run_example(closed_url)
    assert r.returncode == 1 and "error: DP_STATUS_NETWORK" in r.stderr
    r = run_example()
    assert r.returncode == 2 and "usage" in r.stderr


def test_in_process_pair_latencies_match_the_wall_clock(test_agent, session_token):
    def ds(service):
        return dp.DataStreams(url=test_agent.url, service=service, env="http-e2e",
                              test_session_token=session_token, flush_interval=0)

    server_dsm, client_dsm = ds("py-http-server"), ds("py-http-client")
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            t0 = time.time_ns()
            ctx = server_dsm.http_in(self.headers)
            seen.append((PathwayContextFields.of(dp.PathwayContext.extract_http(self.headers)), ctx, t0, time.time_ns()))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sent = []
    try:
        for i in range(5):
            headers = {}
            t0 = time.time_ns()
            ctx = client_dsm.http_out(headers, payload_size=10 * i)
            t1 = time.time_ns()
            time.sleep(0.02 * i)  # time between the client's checkpoint and the request
            with urllib.request.urlopen(urllib.request.Request(
                    "http://127.0.0.1:%d/x" % server.server_address[1], headers=headers), timeout=10) as resp:
                assert resp.status == 204
            sent.append((ctx, t0, t1))
    finally:
        server.shutdown()
        server.server_close()

    edges = []
    for (ctx, c0, c1), (received, sctx, s0, s1) in zip(sent, seen):
        assert received.hash == ctx.hash and received.edge_start_ns == ctx.edge_start_ns // MS * MS
        assert sctx.pathway_start_ns == received.pathway_start_ns
        edge = sctx.edge_start_ns - received.edge_start_ns
        assert s0 - c1 - MS <= edge <= s1 - c0 + MS
        edges.append(edge)
    for d in (server_dsm, client_dsm):
        d.flush()
    payloads = pipeline_payloads(test_agent.requests(session_token))
    h_server = pathway_hash(node_hash("py-http-server", "http-e2e", ["direction:in", "type:http"]),
                            sent[0][0].hash)
    point = payloads.point("py-http-server", h_server)
    assert point.edge.count == 5
    lo, hi = point.edge.max_range()
    assert lo / point.edge.gamma <= max(edges) / 1e9 <= hi * point.edge.gamma
    lo, hi = point.edge.min_range()
    assert lo / point.edge.gamma <= min(edges) / 1e9 <= hi * point.edge.gamma
    client_point = payloads.point("py-http-client", sent[0][0].hash)
    assert client_point.size.zero == 1 and client_point.size.count == 5
    for d in (server_dsm, client_dsm):
        d.close()


class PathwayContextFields:
    """A plain copy of a context's fields (the handle may be freed meanwhile)."""

    def __init__(self, hash, pathway_start_ns, edge_start_ns):
        self.hash, self.pathway_start_ns, self.edge_start_ns = hash, pathway_start_ns, edge_start_ns

    @classmethod
    def of(cls, ctx):
        return cls(ctx.hash, ctx.pathway_start_ns, ctx.edge_start_ns)

#!/usr/bin/env python3
"""Data Streams Monitoring over HTTP: a client service calls a server service; the client checkpoints
each request (``direction:out, type:http``) and injects the pathway context into a header, the server
extracts it and checkpoints (``direction:in, type:http``), so the agent sees the edge client -> server.

    python examples/dsm_http.py AGENT_URL [REQUESTS]

The server is ``http.server`` on 127.0.0.1 (a free port), the client ``urllib``; each service has its
own ``DataStreams`` and sends its stats to the agent when the example ends. Prints one line per
request: the client's context hash, the parent hash the server extracted (equal to it) and the
server's hash. $DP_TEST_SESSION_TOKEN, when set, tags the payloads for the Datadog test agent.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import data_pipeline as dp

ENV = "demo"


def data_streams(agent_url: str, service: str) -> dp.DataStreams:
    token = os.environ.get("DP_TEST_SESSION_TOKEN", "")
    return dp.DataStreams(url=agent_url, service=service, env=ENV, test_session_token=token,
                          tracer_version="example")


class Handler(BaseHTTPRequestHandler):
    dsm: dp.DataStreams  # set by serve()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        received = dp.PathwayContext.extract_http(self.headers)  # only to show it in the answer
        ctx = self.dsm.http_in(self.headers, payload_size=length)  # extract + checkpoint
        answer = json.dumps({
            "order": json.loads(body or b"{}").get("order"),
            "received_hash": received.hash if received else None,
            "server_hash": ctx.hash,
            "pathway_start_ns": ctx.pathway_start_ns,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:  # quiet
        pass


def main(argv: list) -> int:
    if len(argv) not in (2, 3):
        print(f"usage: {argv[0]} AGENT_URL [REQUESTS]   (e.g. http://127.0.0.1:8126 3)", file=sys.stderr)
        return 2
    agent_url, requests = argv[1], int(argv[2]) if len(argv) == 3 else 3
    try:
        with data_streams(agent_url, "dsm-http-server") as server_dsm, \
                data_streams(agent_url, "dsm-http-client") as client_dsm:
            Handler.dsm = server_dsm
            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            url = "http://127.0.0.1:%d/orders" % server.server_address[1]
            try:
                for i in range(requests):
                    body = json.dumps({"order": i}).encode()
                    headers = {"Content-Type": "application/json"}
                    ctx = client_dsm.http_out(headers, payload_size=len(body))  # checkpoint + inject
                    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        answer = json.load(resp)
                    print(f"request {i}: client hash={ctx.hash} server received={answer['received_hash']} "
                          f"server hash={answer['server_hash']}")
            finally:
                server.shutdown()
                server.server_close()
            server_dsm.flush()
            client_dsm.flush()
            print(f"sent: client {client_dsm.stats['payloads_sent']} payload(s), "
                  f"server {server_dsm.stats['payloads_sent']} payload(s)")
    except dp.DataPipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

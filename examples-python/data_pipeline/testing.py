"""Helpers for testing code that uses data-pipeline against the real Datadog test agent.

``TestAgent`` starts ``ddapm-test-agent`` (PyPI) on 127.0.0.1 and free ports and wraps its
``/test/session/*`` API. The project's own tests, its demo and tracer authors' tests use it:

    agent = TestAgent("/path/to/ddapm-test-agent", Path("agent.log"))
    agent.start()
    agent.start_session("my-token")
    ... send with test_session_token="my-token" to agent.url ...
    print(agent.traces("my-token"))
    agent.stop()
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

#: The trace checks the test agent runs on every request (off by default in the agent).
ENABLED_CHECKS = "trace_count_header,meta_tracer_version_header,trace_content_length"


def free_ports(n: int) -> List[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def closed_port() -> int:
    """A loopback port with nothing listening."""
    return free_ports(1)[0]


class TestAgent:
    """A running ``ddapm-test-agent`` and helpers for its ``/test/session/*`` API."""

    __test__ = False  # not a test class

    def __init__(
        self, binary: str, log_path: Path, extra_env: Optional[Dict[str, str]] = None
    ) -> None:
        self.binary = binary
        self.log_path = log_path
        self.extra_env = dict(extra_env or {})
        self.proc: Optional[subprocess.Popen] = None
        self.port = self.otlp_http_port = self.otlp_grpc_port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, attempts: int = 3, timeout: float = 30.0) -> None:
        last = ""
        for _ in range(attempts):
            self.port, self.otlp_http_port, self.otlp_grpc_port = free_ports(3)
            env = dict(os.environ, ENABLED_CHECKS=ENABLED_CHECKS, **self.extra_env)
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [
                        self.binary,
                        "--host", "127.0.0.1",
                        "--port", str(self.port),
                        "--otlp-http-port", str(self.otlp_http_port),
                        "--otlp-grpc-port", str(self.otlp_grpc_port),
                        "--log-level", "WARNING",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    self.info()
                    return
                except OSError:
                    time.sleep(0.1)
            last = f"exit code {self.proc.poll()}"
            self.stop()  # a port was taken meanwhile, or it is too slow: try other ports
        log = self.log_path.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"the test agent did not start ({last}); its log:\n{log}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    # -- HTTP helpers --

    def get(self, path: str, **params: Any) -> bytes:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=10) as r:
            return r.read()

    def get_json(self, path: str, **params: Any) -> Any:
        return json.loads(self.get(path, **params))

    def info(self) -> Dict[str, Any]:
        return self.get_json("/info")

    def start_session(self, token: str, rates: Optional[Dict[str, float]] = None) -> None:
        """``/test/session/start``; ``rates`` become the session's ``rate_by_service`` answer."""
        params: Dict[str, Any] = {"test_session_token": token}
        if rates is not None:
            params["agent_sample_rate_by_service"] = json.dumps(rates)
        self.get("/test/session/start", **params)

    def traces(self, token: str) -> List[List[Dict[str, Any]]]:
        """The traces the agent decoded for the session (spans grouped by trace id)."""
        return self.get_json("/test/session/traces", test_session_token=token)

    def spans(self, token: str) -> List[Dict[str, Any]]:
        return [span for trace in self.traces(token) for span in trace]

    def requests(self, token: str) -> List[Dict[str, Any]]:
        """The raw trace requests of the session: ``url``, ``headers``, base64 ``body``."""
        return self.get_json("/test/session/requests", test_session_token=token)

    def check_failures(self, token: str) -> str:
        """The agent's trace-check failures for the session ("" when none)."""
        try:
            self.get("/test/trace_check/failures", test_session_token=token)
            return ""
        except urllib.error.HTTPError as e:
            return e.read().decode(errors="replace")

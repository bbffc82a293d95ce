"""Shared fixtures: the real Datadog test agent, per-test sessions, an exporter bound to them.

The agent is started once per pytest session (``test_agent``), from ``$DP_TEST_AGENT`` (default
``<repo>/.cache/venv/bin/ddapm-test-agent``, made by ``scripts/setup-test-env.sh``), on 127.0.0.1 and
on free ports picked at run time, with the trace checks of ``ENABLED_CHECKS`` below; it is killed at
the end. Later test files (data streams, background exporter, ...) reuse it:

    def test_something(test_agent, session_token):
        ...send with test_session_token=session_token to test_agent.url...
        assert test_agent.traces(session_token) == [...]
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_AGENT = REPO / ".cache" / "venv" / "bin" / "ddapm-test-agent"
ENABLED_CHECKS = "trace_count_header,meta_tracer_version_header,trace_content_length"
#: The tracer version every test exporter sends (the agent's meta_tracer_version_header check needs one).
TRACER_VERSION = "0.1.0-pytest"


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

    def __init__(self, binary: str, log_path: Path) -> None:
        self.binary = binary
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None
        self.port = self.otlp_http_port = self.otlp_grpc_port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, attempts: int = 3, timeout: float = 30.0) -> None:
        last = ""
        for _ in range(attempts):
            self.port, self.otlp_http_port, self.otlp_grpc_port = free_ports(3)
            env = dict(os.environ, ENABLED_CHECKS=ENABLED_CHECKS)
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


@pytest.fixture(scope="session")
def test_agent(tmp_path_factory: pytest.TempPathFactory):
    """The real Datadog test agent, started once for the whole run and killed at the end."""
    binary = os.environ.get("DP_TEST_AGENT") or str(DEFAULT_AGENT)
    if not os.access(binary, os.X_OK):
        pytest.fail(
            f"test agent not found at {binary}: run scripts/setup-test-env.sh or set DP_TEST_AGENT",
            pytrace=False,
        )
    agent = TestAgent(binary, tmp_path_factory.mktemp("agent") / "agent.log")
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture
def session_token(request: pytest.FixtureRequest, test_agent: TestAgent) -> str:
    """A fresh test-agent session for this test; its token names the test."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:60]
    token = f"py-{name}-{uuid.uuid4().hex[:8]}"
    test_agent.start_session(token)
    return token


@pytest.fixture
def exporter_options(test_agent: TestAgent, session_token: str) -> Dict[str, Any]:
    """Options of an exporter that sends to the test agent within this test's session."""
    return dict(
        url=test_agent.url,
        service="py-tests",
        env="test",
        tracer_version=TRACER_VERSION,
        test_session_token=session_token,
        max_retries=0,
        send_timeout=10.0,
    )


@pytest.fixture
def exporter(exporter_options: Dict[str, Any]):
    """An exporter for this test's session, closed afterwards."""
    import data_pipeline as dp

    with dp.Exporter.build(**exporter_options) as exp:
        yield exp


@pytest.fixture
def closed_url() -> str:
    """``http://127.0.0.1:<port>`` with nothing listening on the port."""
    return f"http://127.0.0.1:{closed_port()}"


@pytest.fixture
def log_callback_cleanup():
    """Uninstalls any log callback a test installed."""
    import data_pipeline as dp

    yield
    dp.set_log_callback(None)


def pytest_report_header(config: pytest.Config) -> List[str]:
    try:
        import data_pipeline as dp

        return [
            f"data_pipeline: package {Path(dp.__file__).parent}",
            f"data_pipeline: library {dp.library_path()} (version {dp.version()})",
        ]
    except ImportError as e:  # reported again, as a failure, by the first test that imports it
        return [f"data_pipeline: cannot import: {e}".splitlines()[0]]


"""Shared fixtures: the real Datadog test agent, per-test sessions, an exporter bound to them.

The agent is started once per pytest session (``test_agent``), from ``$DP_TEST_AGENT`` (default
``<repo>/.cache/venv/bin/ddapm-test-agent``, made by ``scripts/setup-test-env.sh``), on 127.0.0.1 and
on free ports picked at run time, with the trace checks of ``data_pipeline.testing.ENABLED_CHECKS``; it is killed at
the end. Later test files (data streams, background exporter, ...) reuse it:

    def test_something(test_agent, session_token):
        ...send with test_session_token=session_token to test_agent.url...
        assert test_agent.traces(session_token) == [...]
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest

from data_pipeline.testing import TestAgent, closed_port

REPO = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_AGENT = REPO / ".cache" / "venv" / "bin" / "ddapm-test-agent"
#: The tracer version every test exporter sends (the agent's meta_tracer_version_header check needs one).
TRACER_VERSION = "0.1.0-pytest"


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


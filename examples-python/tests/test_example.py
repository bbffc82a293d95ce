"""examples/send_traces.py runs against the real agent and the agent receives its spans."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import data_pipeline as dp

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "send_traces.py"


def run_example(*args, **env):
    pkg_parent = str(Path(dp.__file__).resolve().parents[1])
    full_env = dict(os.environ, **env)
    full_env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True,
                          env=full_env, cwd="/", timeout=120)


def test_example_sends_to_the_agent(test_agent, session_token):
    test_agent.start_session(session_token, {"service:python-example,env:demo": 0.5})
    r = run_example(test_agent.url, DP_TEST_SESSION_TOKEN=session_token)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "spans through the API: HTTP 200" in r.stdout
    assert "msgpack payload:       HTTP 200" in r.stdout
    assert "sampling rate for service:python-example,env:demo = 0.5" in r.stdout
    names = sorted(s["name"] for s in test_agent.spans(session_token))
    assert names == ["db.query", "encoded.by.tracer", "http.request"]
    assert test_agent.check_failures(session_token) == ""


def test_example_reports_errors(closed_url):
    r = run_example(closed_url)
    assert r.returncode == 1
    assert "error: DP_STATUS_NETWORK" in r.stderr
    r = run_example()
    assert r.returncode == 2 and "usage" in r.stderr

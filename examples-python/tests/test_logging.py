"""The log callback: records reach a Python function and the `logging` module, from the threads
that log; the level filters; removing the callback releases it; a raising callback is contained."""

from __future__ import annotations

import gc
import logging
import threading

import pytest

import data_pipeline as dp
from data_pipeline import logs

pytestmark = pytest.mark.usefixtures("log_callback_cleanup")


def test_callback_receives_records(closed_url):
    records = []
    lock = threading.Lock()

    def record(level, target, message):
        with lock:
            records.append((level, target, message, threading.get_ident()))

    dp.set_log_callback(record, "debug")
    assert records[0][:3] == (logging.INFO, "data_pipeline_ffi", "log callback installed at level DEBUG")

    # Sends from several Python threads log (a refused connection): each record arrives on the
    # thread that logged.
    def worker():
        # One retry: the exporter logs the failed attempt it retries.
        with dp.Exporter.build(url=closed_url, max_retries=1, tracer_version="1") as exp:
            with pytest.raises(dp.NetworkError):
                exp.send(b"\x90")
        return threading.get_ident()

    threads = []
    idents = []
    for _ in range(3):
        th = threading.Thread(target=lambda: idents.append(worker()))
        th.start()
        threads.append(th)
    for th in threads:
        th.join()
    from_workers = [r for r in records if r[3] in idents]
    assert {r[3] for r in from_workers} == set(idents)
    port = closed_url.rsplit(":", 1)[1]
    assert any("cannot connect" in r[2] and port in r[2] for r in from_workers), from_workers
    assert all(r[0] >= logging.DEBUG for r in records)
    assert all(isinstance(r[1], str) and r[1] for r in records)


def test_level_filters(closed_url):
    records = []
    dp.set_log_callback(lambda *r: records.append(r), dp.LogLevel.ERROR)
    with dp.Exporter.build(url=closed_url, max_retries=0, tracer_version="1") as exp:
        with pytest.raises(dp.NetworkError):
            exp.send(b"\x90")
    assert all(level >= logging.ERROR for level, _, _ in records)
    assert not any("log callback installed" in m for _, _, m in records)


def test_bridge_to_logging(caplog, closed_url):
    caplog.set_level(logs.TRACE, logger="data_pipeline")
    dp.set_log_callback(level=logging.DEBUG)
    # One retry: the exporter logs (at DEBUG) the failed attempt it retries.
    with dp.Exporter.build(url=closed_url, max_retries=1, tracer_version="1") as exp:
        with pytest.raises(dp.NetworkError):
            exp.send(b"\x90")
    names = {r.name for r in caplog.records}
    assert "data_pipeline.data_pipeline_ffi" in names
    installed = [r for r in caplog.records if r.name == "data_pipeline.data_pipeline_ffi"]
    assert installed[0].levelno == logging.INFO
    assert installed[0].getMessage().startswith("log callback installed")
    assert installed[0].dp_target == "data_pipeline_ffi"
    assert installed[0].pathname == "data_pipeline_ffi"  # the Rust module stands for the file
    assert any(r.name.startswith("data_pipeline.exporter") for r in caplog.records), names
    assert all(r.name.startswith("data_pipeline.") for r in caplog.records)


def test_removing_the_callback_releases_it():
    calls = []
    dp.set_log_callback(lambda *r: calls.append(r), "info")
    assert len(logs._alive) == 1
    dp.set_log_callback(lambda *r: calls.append(("second",) + r), "info")
    assert len(logs._alive) == 1  # the first one was released by the library (user_data_free)
    dp.set_log_callback(None)
    assert logs._alive == {}
    count = len(calls)
    gc.collect()
    assert len(calls) == count == 2
    assert calls[1][0] == "second"


def test_a_raising_callback_is_contained(closed_url, monkeypatch):
    seen = []
    monkeypatch.setattr("sys.unraisablehook", lambda u: seen.append(u.exc_value))

    def bad(level, target, message):
        raise RuntimeError("callback bug")

    dp.set_log_callback(bad, "info")
    assert any(isinstance(e, RuntimeError) for e in seen)
    # The library keeps working.
    assert len(dp.Trace([dp.Span()])) == 1


def test_level_names():
    assert logs._library_level("warning") == dp.LogLevel.WARN
    assert logs._library_level("off") == dp.LogLevel.OFF
    assert logs._library_level(logging.CRITICAL) == dp.LogLevel.ERROR
    assert logs._library_level(logging.DEBUG) == dp.LogLevel.DEBUG
    assert logs._library_level(logs.TRACE) == dp.LogLevel.TRACE
    assert logs._library_level(dp.LogLevel.TRACE) == 5
    with pytest.raises(ValueError):
        logs._library_level("loud")
    with pytest.raises(TypeError):
        dp.set_log_callback("not callable")


def test_a_callback_may_uninstall_itself():
    seen = []

    def once(level, target, message):
        seen.append(message)
        dp.set_log_callback(None)  # re-entrant: from inside dp_set_log_callback's own record

    dp.set_log_callback(once, "info")
    assert seen and seen[0].startswith("log callback installed")
    assert logs._alive == {}  # released by the library once the call returned

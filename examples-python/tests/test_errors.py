"""Every typed exception: the mapping from each dp_status, and each one the binding can provoke for
real (bad URL, malformed msgpack, closed port, silent server, agent 400, bad UTF-8, panic, NULL, ...);
handle life cycle (close twice, use after close, consumed handles)."""

from __future__ import annotations

import socket
import threading
import time

import msgpack
import pytest

import data_pipeline as dp
from data_pipeline import _ffi
from data_pipeline.errors import error_class

EXPECTED_CLASSES = {
    dp.Status.INVALID_ARGUMENT: dp.InvalidArgumentError,
    dp.Status.DECODE: dp.DecodeError,
    dp.Status.ENCODE: dp.EncodeError,
    dp.Status.NETWORK: dp.NetworkError,
    dp.Status.TIMEOUT: dp.DataPipelineTimeoutError,
    dp.Status.HTTP: dp.HttpError,
    dp.Status.UNSUPPORTED: dp.UnsupportedError,
    dp.Status.SHUTDOWN: dp.ShutdownError,
    dp.Status.OVERFLOW: dp.DataPipelineOverflowError,
    dp.Status.INTERNAL: dp.InternalError,
    dp.Status.NULL_ARGUMENT: dp.NullArgumentError,
    dp.Status.INVALID_UTF8: dp.InvalidUtf8Error,
    dp.Status.PANIC: dp.PanicError,
    dp.Status.NOT_FOUND: dp.NotFoundError,
}


@pytest.mark.parametrize("status", [s for s in dp.Status if s != dp.Status.OK], ids=lambda s: s.name)
def test_every_status_has_its_class(status):
    cls = error_class(status)
    assert cls is EXPECTED_CLASSES[status]
    assert issubclass(cls, dp.DataPipelineError)
    # The library agrees on the C name of the code.
    assert _ffi.status_name(status) == status.c_name == f"DP_STATUS_{status.name}"
    err = cls("text", code=int(status), status_name=status.c_name)
    assert (err.code, err.status_name, err.message, err.http_status) == (status, status.c_name, "text", 0)
    assert str(err) == f"{status.c_name}: text"


def test_python_friendly_bases():
    assert issubclass(dp.InvalidArgumentError, ValueError)
    assert issubclass(dp.InvalidUtf8Error, ValueError)
    assert issubclass(dp.NetworkError, ConnectionError)
    assert issubclass(dp.DataPipelineTimeoutError, TimeoutError)
    assert issubclass(dp.NotFoundError, LookupError)


def test_unknown_status_is_internal_but_keeps_its_code():
    assert error_class(999) is dp.InternalError
    assert _ffi.status_name(999) == "DP_STATUS_UNKNOWN"
    err = dp.InternalError("newer library", code=999, status_name=_ffi.status_name(999))
    assert err.code == 999 and err.status_name == "DP_STATUS_UNKNOWN"


def test_check_frees_and_raises_for_a_real_error_object():
    err = _ffi.lib.dp_debug_panic(_ffi.to_str("\xff".encode("latin-1"), "m"))
    assert err  # a live dp_error *
    assert _ffi.lib.dp_error_code(err) == dp.Status.INVALID_UTF8
    with pytest.raises(dp.InvalidUtf8Error, match="argument `message` is not valid UTF-8"):
        _ffi._check(err)
    _ffi._check(None)  # NULL is success


# ---- errors the library returns -------------------------------------------------------------------


def test_invalid_url():
    with pytest.raises(dp.InvalidArgumentError) as info:
        dp.Exporter.build(url="not a url")
    assert info.value.code == dp.Status.INVALID_ARGUMENT
    assert info.value.status_name == "DP_STATUS_INVALID_ARGUMENT"
    assert "not a url" in info.value.message
    assert isinstance(info.value, ValueError)


def test_invalid_option_values():
    with pytest.raises(dp.InvalidArgumentError, match="timeout"):
        dp.Exporter.build(send_timeout=0)
    with pytest.raises(dp.InvalidArgumentError, match="DP_FORMAT_V04"):
        dp.ExporterBuilder(output_format=3)
    with pytest.raises(ValueError, match="v0.4"):
        dp.ExporterBuilder(input_format="v0.6")
    with pytest.raises(TypeError, match="unknown exporter option"):
        dp.ExporterBuilder(no_such_option=1)
    with pytest.raises(TypeError):
        dp.ExporterBuilder(url_from_env="yes")
    with pytest.raises(ValueError):
        dp.ExporterBuilder(send_timeout=-1)
    with pytest.raises(OverflowError):
        dp.ExporterBuilder(max_retries=2**32)


def test_malformed_msgpack_is_a_decode_error(exporter, test_agent, session_token):
    with pytest.raises(dp.DecodeError) as info:
        exporter.send(b"\xc1\x00")
    assert info.value.code == dp.Status.DECODE
    assert "0xc1" in info.value.message
    # Valid msgpack of the wrong shape, and a truncated payload.
    with pytest.raises(dp.DecodeError, match=r"\S"):
        exporter.send(msgpack.packb({"not": "an array of traces"}))
    # Refused before anything was sent.
    assert test_agent.requests(session_token) == []


def test_truncated_payload_is_a_decode_error_when_converted(exporter_options, test_agent, session_token):
    # v0.4 -> v0.5 decodes the whole payload. (v0.4 -> v0.4 is a pass-through that only reads the
    # array header: a truncated payload then reaches the agent, which answers 400.)
    truncated = msgpack.packb([[{"service": "x", "name": "y", "resource": "z"}]])[:-3]
    with dp.Exporter.build(**exporter_options, output_format="v0.5") as exp:
        with pytest.raises(dp.DecodeError) as info:
            exp.send(truncated)
    assert info.value.message
    assert test_agent.requests(session_token) == []


def test_network_error_to_a_closed_port(closed_url):
    with dp.Exporter.build(url=closed_url, max_retries=0, tracer_version="1") as exp:
        with pytest.raises(dp.NetworkError) as info:
            exp.send(b"\x90")
    assert isinstance(info.value, ConnectionError)
    assert info.value.code == dp.Status.NETWORK
    assert "refused" in info.value.message.lower()


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never answers (the real agent
    cannot be made to hang)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns = []

    def accept():
        while True:
            try:
                conns.append(srv.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    srv.close()
    for c in conns:
        c.close()


def test_timeout(silent_server):
    with dp.Exporter.build(url=silent_server, send_timeout=0.3, max_retries=0, tracer_version="1") as exp:
        began = time.monotonic()
        with pytest.raises(dp.DataPipelineTimeoutError) as info:
            exp.send(b"\x90")
        elapsed = time.monotonic() - began
    assert isinstance(info.value, TimeoutError)
    assert info.value.code == dp.Status.TIMEOUT
    # The send is bounded by send_timeout (generous slack for a loaded machine).
    assert elapsed < 5.0


def test_http_error_from_the_agent(test_agent, session_token):
    # The agent's meta_tracer_version_header check refuses a payload without a tracer version.
    with dp.Exporter.build(url=test_agent.url, test_session_token=session_token, max_retries=0) as exp:
        with pytest.raises(dp.HttpError) as info:
            exp.send(msgpack.packb([[{"service": "s", "name": "n", "trace_id": 1, "span_id": 1}]]))
    assert info.value.http_status == 400
    assert info.value.code == dp.Status.HTTP
    assert "HTTP 400" in str(info.value) and "400 Bad Request" in info.value.message


@pytest.mark.parametrize(
    "make",
    [
        lambda: dp.Span(service="\ud800"),
        lambda: dp.Span().set_meta("key\udfff", "v"),
        lambda: dp.Span().set_meta("k", "a\ud83d"),
        lambda: dp.ExporterBuilder(url="http://\udc80"),
        lambda: dp.SpanEvent(1, name="\ud800"),
        lambda: dp.SpanLink(1, 2, tracestate="\ud800"),
        lambda: dp.Span().set_meta(b"\xff\xfe", "raw bytes are passed as they are"),
    ],
    ids=["service", "meta-key", "meta-value", "url", "event-name", "tracestate", "raw-bytes"],
)
def test_invalid_utf8_is_a_clear_error(make):
    with pytest.raises(dp.InvalidUtf8Error) as info:
        make()
    assert info.value.code == dp.Status.INVALID_UTF8
    assert "not valid UTF-8" in info.value.message and "`" in info.value.message


def test_panic_is_an_exception_and_the_process_lives_on():
    with pytest.raises(dp.PanicError, match="on purpose") as info:
        _ffi._check(_ffi.lib.dp_debug_panic(_ffi.to_str("on purpose", "message")))
    assert info.value.code == dp.Status.PANIC
    # The library still works.
    assert dp.version() and len(dp.Trace([dp.Span()])) == 1


def test_null_argument_through_the_raw_layer():
    with pytest.raises(dp.NullArgumentError, match="span"):
        _ffi._check(_ffi.lib.dp_span_set_service(None, _ffi.to_str("x", "service")))
    # A dp_str with a NULL pointer and a length.
    with pytest.raises(dp.NullArgumentError):
        span = _ffi.lib.dp_span_new()
        try:
            _ffi._check(_ffi.lib.dp_span_set_name(span, _ffi.dp_str(None, 3)))
        finally:
            _ffi.lib.dp_span_free(span)
    # Every _free accepts NULL.
    for name in _ffi.DECLARATIONS:
        if name.endswith("_free"):
            getattr(_ffi.lib, name)(None)


def test_invalid_log_level_through_the_raw_layer():
    with pytest.raises(dp.InvalidArgumentError, match="level"):
        _ffi._check(
            _ffi.lib.dp_set_log_callback(
                _ffi.dp_log_callback(lambda *a: None), None, _ffi.dp_user_data_free(), 9
            )
        )


def test_python_side_range_and_type_checks():
    with pytest.raises(OverflowError):
        dp.Span(trace_id=2**128)
    with pytest.raises(OverflowError):
        dp.Span(span_id=-1)
    with pytest.raises(OverflowError):
        dp.SpanLink(1, 2, flags=256)
    with pytest.raises(OverflowError):
        dp.SpanEvent(1, attributes={"big": 2**63})
    with pytest.raises(TypeError):
        dp.Span(span_id=1.5)
    with pytest.raises(TypeError):
        dp.Span(service=42)
    with pytest.raises(TypeError):
        dp.Span().set_metric("m", "1")
    with pytest.raises(TypeError):
        dp.SpanEvent(1, attributes={"mixed": [1, "a"]})
    with pytest.raises(TypeError):
        dp.Trace([dp.SpanLink(1, 2)])


# ---- handle life cycle ----------------------------------------------------------------------------


def all_handles(closed_url):
    return [
        dp.Span(),
        dp.SpanLink(1, 2),
        dp.SpanEvent(1),
        dp.Trace(),
        dp.ExporterBuilder(),
        dp.Exporter.build(url=closed_url),
    ]


def test_close_twice_and_context_manager(closed_url):
    for handle in all_handles(closed_url):
        assert not handle.closed
        handle.close()
        handle.close()
        assert handle.closed
        assert "closed" in repr(handle)
    with dp.Span() as span:
        span.set_name("x")
    assert span.closed


def test_use_after_close_raises(closed_url):
    span, link, event, trace, builder, exporter = all_handles(closed_url)
    for h in (span, link, event, trace, builder, exporter):
        h.close()
    calls = [
        lambda: span.set_name("x"),
        lambda: span.set_trace_id(1),
        lambda: link.set_tracestate("x"),
        lambda: event.set_attribute("k", 1),
        lambda: trace.push(dp.Span()),
        lambda: len(trace),
        lambda: builder.set_url("http://127.0.0.1:1"),
        lambda: builder.build(),
        lambda: exporter.send(b"\x90"),
        lambda: exporter.send_traces([]),
        lambda: dp.Exporter.build(url=closed_url).send_traces([trace]),
        lambda: dp.Span().add_link(link),
        lambda: dp.Span().add_event(event),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(dp.ShutdownError, match="closed") as info:
            call()
        assert info.value.code == dp.Status.SHUTDOWN, i


def test_consumed_handles(closed_url):
    span, link, event = dp.Span(), dp.SpanLink(1, 2), dp.SpanEvent(3)
    span.add_link(link).add_event(event)
    trace = dp.Trace([span])
    uses = [
        (link, lambda: link.set_flags(1), "span link is moved into a span"),
        (event, lambda: event.set_name("x"), "span event is moved into a span"),
        (span, lambda: span.set_name("x"), "span is moved into a trace"),
    ]
    for handle, use, message in uses:
        assert handle.closed
        handle.close()  # a no-op: the pointer belongs to its new owner
        with pytest.raises(dp.ShutdownError, match=message):
            use()
    assert len(trace) == 1
    builder = dp.ExporterBuilder(url=closed_url)
    builder.build().close()
    with pytest.raises(dp.ShutdownError, match="consumed by build"):
        builder.set_service("x")
    # A failed build consumes the builder too.
    builder = dp.ExporterBuilder(url="not a url")
    with pytest.raises(dp.InvalidArgumentError):
        builder.build()
    assert builder.closed
    trace.close()


def test_response_life_cycle(exporter):
    response = exporter.send(b"\x90")
    assert response.status == 200
    body = response.body
    response.close()
    response.close()
    with pytest.raises(dp.ShutdownError):
        response.status
    with pytest.raises(dp.ShutdownError):
        response.sampling_rate("a", "b")
    assert body == b'{"rate_by_service": {}}'
    # The body read before close() was copied out.
    assert "closed" in repr(response)


def test_garbage_collection_frees_handles():
    import gc
    import weakref

    refs = [weakref.ref(h) for h in (dp.Span(), dp.Trace([dp.Span()]), dp.SpanEvent(1), dp.ExporterBuilder())]
    gc.collect()
    assert all(r() is None for r in refs)

"""data_pipeline: Python binding (ctypes, standard library only) of the data-pipeline C ABI.

Send msgpack payloads or spans built through the API to a Datadog agent::

    import data_pipeline as dp

    with dp.Exporter.build(url="http://127.0.0.1:8126", service="web") as exporter:
        trace = dp.Trace([dp.Span(service="web", name="http.request", resource="GET /",
                                  trace_id=1, span_id=1, start=time.time_ns(), duration=1000)])
        response = exporter.send_traces(trace)
        print(response.status, response.sampling_rate("web", "prod"))

Errors are exceptions, one class per ``dp_status`` (:mod:`data_pipeline.errors`). The raw C ABI is in
:mod:`data_pipeline._ffi`.
"""

from . import _ffi
from ._ffi import LIBRARY_SOURCE
from . import errors as _errors
from .errors import (
    DataPipelineError,
    DataPipelineOverflowError,
    DataPipelineTimeoutError,
    DecodeError,
    EncodeError,
    HttpError,
    InternalError,
    InvalidArgumentError,
    InvalidUtf8Error,
    NetworkError,
    NotFoundError,
    NullArgumentError,
    PanicError,
    ShutdownError,
    Status,
    UnsupportedError,
)
from .exporter import OPTIONS, Exporter, ExporterBuilder, Format, Health, Response, StatsMode, StatsState
from .datastreams import DataStreams, PathwayContext
from .logs import TRACE, LogLevel, log_to_logging, set_log_callback
from .span import Span, SpanEvent, SpanLink, Trace

__version__ = "0.1.0"


def version() -> str:
    """The native library's version (``dp_version()``), e.g. ``"0.1.0"``."""
    return _ffi.LIBRARY_VERSION


def library_path() -> str:
    """The file of the native library in use (as the dynamic loader mapped it, when known)."""
    from ._library import loaded_path

    return loaded_path() or LIBRARY_SOURCE


__all__ = [
    "version",
    "library_path",
    "Exporter",
    "ExporterBuilder",
    "Response",
    "Health",
    "Format",
    "OPTIONS",
    "StatsMode",
    "StatsState",
    "Span",
    "SpanLink",
    "SpanEvent",
    "Trace",
    "DataStreams",
    "PathwayContext",
    "set_log_callback",
    "log_to_logging",
    "LogLevel",
    "TRACE",
] + [name for name in _errors.__all__ if name != "error_class"]

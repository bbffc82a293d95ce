"""Exceptions: one class per ``dp_status`` code of the C ABI.

Every fallible C function returns a ``dp_error *``; the binding turns a non-NULL one into an instance
of the class registered for its code (see :func:`error_class`). All of them derive from
:class:`DataPipelineError`, which carries the code, the C name of the status, the library's message
and, for :class:`HttpError`, the agent's HTTP status. A few also derive from the built-in exception a
Python programmer would expect (``ValueError`` for bad arguments, ``TimeoutError``,
``ConnectionError`` for network failures, ``LookupError`` for a missing item).

:class:`Status` mirrors the header's ``enum dp_status``; a test checks the two agree, so a code added to
the header without a class here fails the build. A code this module does not know (a newer library)
becomes an :class:`InternalError` that still reports the real ``code``, as the header asks.
"""

from __future__ import annotations

import builtins
import enum
from typing import Dict, Optional, Type

__all__ = [
    "Status",
    "DataPipelineError",
    "InvalidArgumentError",
    "DecodeError",
    "EncodeError",
    "NetworkError",
    "DataPipelineTimeoutError",
    "HttpError",
    "UnsupportedError",
    "ShutdownError",
    "DataPipelineOverflowError",
    "InternalError",
    "NullArgumentError",
    "InvalidUtf8Error",
    "PanicError",
    "NotFoundError",
    "error_class",
]


class Status(enum.IntEnum):
    """The ``dp_status`` codes of ``include/data-pipeline.h`` (append-only, never renumbered)."""

    OK = 0
    INVALID_ARGUMENT = 1
    DECODE = 2
    ENCODE = 3
    NETWORK = 4
    TIMEOUT = 5
    HTTP = 6
    UNSUPPORTED = 7
    SHUTDOWN = 8
    OVERFLOW = 9
    INTERNAL = 10
    NULL_ARGUMENT = 11
    INVALID_UTF8 = 12
    PANIC = 13
    NOT_FOUND = 14

    @property
    def c_name(self) -> str:
        """The C enumerator, e.g. ``"DP_STATUS_PANIC"``."""
        return "DP_STATUS_" + self.name


class DataPipelineError(Exception):
    """Base of every error the library reports.

    Attributes:
        code: the numeric ``dp_status`` (an ``int``; a :class:`Status` when this module knows it).
        status_name: the C name of the code (``"DP_STATUS_DECODE"``), ``"DP_STATUS_UNKNOWN"`` for a
            code this binding does not know.
        message: the library's UTF-8 message (or the binding's, for errors raised in Python).
        http_status: for :class:`HttpError`, the HTTP status the agent answered; else 0.
    """

    status: Optional[Status] = None

    def __init__(
        self,
        message: str,
        *,
        code: Optional[int] = None,
        status_name: Optional[str] = None,
        http_status: int = 0,
    ) -> None:
        super().__init__(message)
        if code is None:
            code = int(self.status) if self.status is not None else int(Status.INTERNAL)
        try:
            code = Status(code)
        except ValueError:
            pass
        self.code: int = code
        if status_name is None:
            status_name = code.c_name if isinstance(code, Status) else "DP_STATUS_UNKNOWN"
        self.status_name: str = status_name
        self.message: str = message
        self.http_status: int = http_status

    def __str__(self) -> str:
        if self.http_status:
            return f"{self.status_name} (HTTP {self.http_status}): {self.message}"
        return f"{self.status_name}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={int(self.code)})"


class InvalidArgumentError(DataPipelineError, ValueError):
    """A caller passed an invalid value (bad URL, unknown option value, out-of-range number, ...)."""

    status = Status.INVALID_ARGUMENT


class DecodeError(DataPipelineError):
    """Input bytes could not be decoded (malformed msgpack, wrong shape)."""

    status = Status.DECODE


class EncodeError(DataPipelineError):
    """Data could not be encoded in the requested format."""

    status = Status.ENCODE


class NetworkError(DataPipelineError, builtins.ConnectionError):
    """A network or socket error (connection refused, reset, ...)."""

    status = Status.NETWORK


class DataPipelineTimeoutError(DataPipelineError, builtins.TimeoutError):
    """The operation did not finish within its time bound (``DP_STATUS_TIMEOUT``).

    Also a built-in ``TimeoutError``, so ``except TimeoutError`` catches it.
    """

    status = Status.TIMEOUT


class HttpError(DataPipelineError):
    """The agent answered with an HTTP error status: see :attr:`http_status`."""

    status = Status.HTTP


class UnsupportedError(DataPipelineError):
    """The agent or the configuration does not support what was asked."""

    status = Status.UNSUPPORTED


class ShutdownError(DataPipelineError):
    """The object was shut down or is otherwise unusable.

    The binding raises it too for any use of a handle after ``close()`` (or after the handle was
    consumed, e.g. a span pushed into a trace).
    """

    status = Status.SHUTDOWN


class DataPipelineOverflowError(DataPipelineError):
    """Work was dropped because a bound (queue bytes, cardinality) was reached (``DP_STATUS_OVERFLOW``)."""

    status = Status.OVERFLOW


class InternalError(DataPipelineError):
    """A bug in the library (an invariant was broken), or a status code this binding does not know."""

    status = Status.INTERNAL


class NullArgumentError(DataPipelineError, ValueError):
    """A required pointer argument was NULL (only reachable through the raw ``_ffi`` layer)."""

    status = Status.NULL_ARGUMENT


class InvalidUtf8Error(DataPipelineError, ValueError):
    """A string argument was not valid UTF-8 (e.g. a ``str`` holding a lone surrogate)."""

    status = Status.INVALID_UTF8


class PanicError(DataPipelineError):
    """The library panicked (a bug); the message is the panic's text. The process is unaffected."""

    status = Status.PANIC


class NotFoundError(DataPipelineError, LookupError):
    """The requested item does not exist (e.g. no sampling rate for a service and no default)."""

    status = Status.NOT_FOUND


_BY_STATUS: Dict[int, Type[DataPipelineError]] = {
    int(cls.status): cls
    for cls in DataPipelineError.__subclasses__()
    if cls.status is not None
}


def error_class(code: int) -> Type[DataPipelineError]:
    """The exception class for a ``dp_status`` code; :class:`InternalError` for an unknown one."""
    return _BY_STATUS.get(int(code), InternalError)

"""The library's log records, delivered to Python: :func:`set_log_callback`.

The library is silent until a callback is installed. By default records go to the standard
``logging`` module, to the logger ``data_pipeline.<target>`` (the Rust module path, ``::`` replaced by
``.``), with the Rust levels mapped to Python's: ERROR 40, WARN 30, INFO 20, DEBUG 10, TRACE 5
(registered as level name ``TRACE``).

The callback runs on whichever thread logs, including the library's own threads (ctypes takes the
GIL for it), and calls may overlap. The binding keeps the C function pointer alive until the library
says it no longer uses it (``user_data_free``), and uninstalls it at interpreter exit.
"""

from __future__ import annotations

import atexit
import ctypes
import enum
import itertools
import logging
import threading
from typing import Any, Callable, Dict, Optional, Union

from . import _ffi
from ._ffi import _check, lib

__all__ = ["LogLevel", "TRACE", "set_log_callback", "log_to_logging"]

#: The Python logging level used for the library's TRACE records.
TRACE = 5


class LogLevel(enum.IntEnum):
    """The library's levels (``DP_LOG_LEVEL_*``); larger is more verbose."""

    OFF = _ffi.DP_LOG_LEVEL_OFF
    ERROR = _ffi.DP_LOG_LEVEL_ERROR
    WARN = _ffi.DP_LOG_LEVEL_WARN
    INFO = _ffi.DP_LOG_LEVEL_INFO
    DEBUG = _ffi.DP_LOG_LEVEL_DEBUG
    TRACE = _ffi.DP_LOG_LEVEL_TRACE


_TO_PYTHON = {
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARN: logging.WARNING,
    LogLevel.INFO: logging.INFO,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.TRACE: TRACE,
}

LevelLike = Union[LogLevel, int, str]


def _library_level(level: LevelLike) -> int:
    """A :class:`LogLevel`, a name (``"info"``, ``"warning"``, ``"off"``...) or a Python logging
    level (``logging.INFO``; below DEBUG means TRACE) to the library's level."""
    if isinstance(level, LogLevel):
        return int(level)
    if isinstance(level, str):
        name = level.strip().upper()
        name = {"WARNING": "WARN", "CRITICAL": "ERROR", "FATAL": "ERROR", "NOTSET": "TRACE"}.get(name, name)
        try:
            return int(LogLevel[name])
        except KeyError:
            raise ValueError(f"unknown log level {level!r}") from None
    if isinstance(level, int) and not isinstance(level, bool):
        if level >= logging.ERROR:
            return int(LogLevel.ERROR)
        if level >= logging.WARNING:
            return int(LogLevel.WARN)
        if level >= logging.INFO:
            return int(LogLevel.INFO)
        if level >= logging.DEBUG:
            return int(LogLevel.DEBUG)
        return int(LogLevel.TRACE)
    raise TypeError(f"level must be a LogLevel, a name or a logging level, not {type(level).__name__}")


_loggers: Dict[str, logging.Logger] = {}


def _logger_for(target: str) -> logging.Logger:
    logger = _loggers.get(target)
    if logger is None:
        name = target.replace("::", ".")
        if name != "data_pipeline" and not name.startswith("data_pipeline."):
            name = "data_pipeline." + name
        logger = _loggers.setdefault(target, logging.getLogger(name))
    return logger


def log_to_logging(level: int, target: str, message: str) -> None:
    """The default callback: forwards one record to ``logging`` (see the module's docs)."""
    logger = _logger_for(target)
    if logger.isEnabledFor(level):
        # The Rust module path stands for the source file; the record has no Python caller.
        record = logger.makeRecord(
            logger.name, level, target, 0, message, None, None, extra={"dp_target": target}
        )
        logger.handle(record)


def _text(view: _ffi.dp_str) -> str:
    # The view's pointer as an address (the c_char_p field would stop at a NUL; `len` is exact).
    address = ctypes.c_void_p.from_buffer(view).value
    if not address or not view.len:
        return ""
    return ctypes.string_at(address, view.len).decode("utf-8", "replace")


# Installed callbacks by user_data token; an entry lives until the library calls _free_user_data.
_alive: Dict[int, Any] = {}
_tokens = itertools.count(1)
_install_lock = threading.RLock()  # a callback may itself (re)install one


@_ffi.dp_user_data_free
def _free_user_data(user_data: Optional[int]) -> None:
    _alive.pop(user_data or 0, None)


def set_log_callback(
    fn: Optional[Callable[[int, str, str], None]] = log_to_logging,
    level: LevelLike = logging.INFO,
) -> None:
    """Sends the library's log records at ``level`` and more severe to ``fn(level, target,
    message)`` (``level`` as a Python logging level); replaces any previous callback.

    ``fn`` defaults to :func:`log_to_logging`; ``None`` stops logging. ``level`` is a Python logging
    level, a :class:`LogLevel`, or a name (``"debug"``, ``"trace"``, ``"off"``). Exceptions raised by
    ``fn`` are reported through ``sys.unraisablehook`` and do not reach the library.
    """
    with _install_lock:
        if fn is None:
            _check(lib.dp_set_log_callback(_ffi.dp_log_callback(), None, _ffi.dp_user_data_free(), 0))
            return
        if not callable(fn):
            raise TypeError(f"fn must be callable or None, not {type(fn).__name__}")
        c_level = _library_level(level)
        logging.addLevelName(TRACE, "TRACE")

        def bridge(_user_data: Any, lvl: int, target: _ffi.dp_str, message: _ffi.dp_str) -> None:
            fn(_TO_PYTHON.get(lvl, logging.DEBUG), _text(target), _text(message))

        c_fn = _ffi.dp_log_callback(bridge)
        token = next(_tokens)
        _alive[token] = c_fn
        try:
            _check(lib.dp_set_log_callback(c_fn, token, _free_user_data, c_level))
        except BaseException:
            # On error the library did not keep the callback.
            _alive.pop(token, None)
            raise


@atexit.register
def _uninstall_at_exit() -> None:
    # The library's threads must not call into an interpreter that is finalizing.
    if _alive:
        try:
            set_log_callback(None)
        except Exception:
            pass

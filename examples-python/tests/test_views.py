"""Python values to dp_str / dp_bytes views: no copy for bytes and writable buffers, UTF-8 for str
(lone surrogates passed as the invalid UTF-8 they are), the bounded cache of names."""

from __future__ import annotations

import ctypes
import platform
import sys

import pytest

from data_pipeline import _ffi


def address(view) -> int:
    return ctypes.cast(view.ptr, ctypes.c_void_p).value or 0


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="bytes layout of CPython")
def test_bytes_are_not_copied():
    data = b"payload" * 100
    view, keep = _ffi.to_bytes(data, "payload")
    assert view.len == len(data)
    # CPython keeps a bytes object's data inline, at a fixed offset from the object.
    assert address(view) == id(data) + sys.getsizeof(b"") - 1
    assert ctypes.string_at(view.ptr, view.len) == data


def test_writable_buffers_are_not_copied():
    data = bytearray(b"abcdef")
    view, keep = _ffi.to_bytes(data, "payload")
    data[0] = ord("X")  # visible through the view: same memory
    assert ctypes.string_at(view.ptr, view.len) == b"Xbcdef"
    with pytest.raises(BufferError):
        data.append(1)  # cannot move while viewed
    del view, keep
    data.append(1)


def test_other_buffers_and_empty():
    view, keep = _ffi.to_bytes(memoryview(b"0123456789")[2:5], "payload")
    assert ctypes.string_at(view.ptr, view.len) == b"234"
    view, keep = _ffi.to_bytes(bytearray(), "payload")
    assert view.len == 0 and address(view) == 0
    view, keep = _ffi.to_bytes(b"", "payload")
    assert view.len == 0
    with pytest.raises(TypeError, match="payload must be bytes-like"):
        _ffi.to_bytes("text", "payload")


def test_str_views():
    s = _ffi.to_str("héllo", "x")
    assert s.len == 6 and ctypes.string_at(ctypes.cast(s.ptr, ctypes.c_void_p).value, s.len) == "héllo".encode()
    assert _ffi.to_str(b"raw\x00nul", "x").len == 7  # the length, not a NUL, ends the view
    assert _ffi.to_str("", "x").len == 0
    bad = _ffi.to_str("a\ud800", "x")
    assert ctypes.string_at(ctypes.cast(bad.ptr, ctypes.c_void_p).value, bad.len) == b"a\xed\xa0\x80"
    with pytest.raises(TypeError, match="x must be str or bytes"):
        _ffi.to_str(1, "x")


def test_name_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(_ffi, "_NAMES_MAX", 8)
    _ffi._NAMES.clear()
    first = _ffi.to_name("service", "s")
    assert _ffi.to_name("service", "s") is first
    for i in range(20):
        _ffi.to_name(f"key{i}", "k")
    assert len(_ffi._NAMES) <= 8
    assert _ffi.to_name(bytearray(b"x"), "k").len == 1  # unhashable: not cached, still works

"""Finding the native library: the lookup order, a clear ImportError, the version check, and (when
scripts/test-python.sh asks) that the package and the library in use are the expected copies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import data_pipeline as dp
from data_pipeline import _library


def run_python(code: str, **env_changes):
    env = dict(os.environ)
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    # Run from a neutral directory so the package imported is the same one the tests use.
    pkg_parent = str(Path(dp.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=60)


def test_version():
    assert dp.version() == dp._ffi.lib.dp_version().decode()
    assert dp.version().count(".") == 2


def test_library_path_is_a_real_file():
    path = Path(dp.library_path().split(" (")[0])
    assert path.is_file(), dp.library_path()


def test_env_var_pointing_nowhere_is_a_clear_import_error(tmp_path):
    missing = tmp_path / "nope" / "libdata_pipeline.so"
    r = run_python("import data_pipeline", DATA_PIPELINE_LIB=str(missing))
    assert r.returncode != 0
    assert "ImportError" in r.stderr and str(missing) in r.stderr and "$DATA_PIPELINE_LIB" in r.stderr


def test_not_a_library_is_a_clear_import_error(tmp_path):
    fake = tmp_path / "libdata_pipeline.so"
    fake.write_bytes(b"not an ELF file")
    r = run_python("import data_pipeline", DATA_PIPELINE_LIB=str(fake))
    assert r.returncode != 0 and "cannot load" in r.stderr


def test_env_var_is_used_first():
    lib = Path(dp.library_path().split(" (")[0]).resolve()
    r = run_python("import data_pipeline as dp; print(dp._ffi.LIBRARY_SOURCE)", DATA_PIPELINE_LIB=str(lib))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{lib} ($DATA_PIPELINE_LIB)"


def test_not_found_message_lists_every_place_tried(monkeypatch):
    monkeypatch.delenv(_library.ENV_VAR, raising=False)
    monkeypatch.setattr(_library, "candidates", lambda: iter(()))
    with pytest.raises(ImportError) as info:
        _library.load()
    text = str(info.value)
    assert "$DATA_PIPELINE_LIB (not set)" in text
    assert str(Path(_library.__file__).resolve().parent / _library.FILE_NAME) in text
    assert 'find_library("data_pipeline")' in text
    assert "cargo build --release -p data-pipeline-ffi" in text


def test_expected_copies():
    """scripts/test-python.sh sets these to check it tests what it means to."""
    pkg_dir = os.environ.get("DP_EXPECT_PACKAGE_DIR")
    lib_dir = os.environ.get("DP_EXPECT_LIB_DIR")
    if not pkg_dir and not lib_dir:
        pytest.skip("DP_EXPECT_PACKAGE_DIR / DP_EXPECT_LIB_DIR not set")
    if pkg_dir:
        assert Path(dp.__file__).resolve().parent.is_relative_to(Path(pkg_dir).resolve()), dp.__file__
    if lib_dir:
        loaded = Path(dp.library_path().split(" (")[0]).resolve()
        assert loaded.is_relative_to(Path(lib_dir).resolve()), dp.library_path()

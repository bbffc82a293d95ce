"""Finds and loads the shared library ``libdata_pipeline``.

Lookup order (the first that exists wins; a failure to *load* an explicit choice is an error, not a
reason to try the next one):

1. ``$DATA_PIPELINE_LIB``: the full path of the library.
2. The library beside this module (``data_pipeline/libdata_pipeline.so``): what a wheel carries.
3. When the package runs from the source tree (``<repo>/examples-python/data_pipeline``):
   ``<repo>/target/release`` then ``<repo>/target/debug``.
4. ``ctypes.util.find_library("data_pipeline")``: an installed copy (system paths, ``LD_LIBRARY_PATH``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

ENV_VAR = "DATA_PIPELINE_LIB"

if sys.platform == "darwin":
    FILE_NAME = "libdata_pipeline.dylib"
elif sys.platform == "win32":
    FILE_NAME = "data_pipeline.dll"
else:
    FILE_NAME = "libdata_pipeline.so"

_HERE = Path(__file__).resolve().parent


def _repo_root() -> Optional[Path]:
    """The repository root when this module is the source tree's copy, else None."""
    project = _HERE.parent
    if project.name == "examples-python" and (project.parent / "Cargo.toml").is_file():
        return project.parent
    return None


def candidates() -> Iterator[Tuple[str, str, bool]]:
    """Yields ``(how, path_or_name, explicit)`` in lookup order (only the ones that exist)."""
    env = os.environ.get(ENV_VAR)
    if env:
        yield f"${ENV_VAR}", env, True
        return
    beside = _HERE / FILE_NAME
    if beside.is_file():
        yield "beside the module", str(beside), True
    root = _repo_root()
    if root is not None:
        for profile in ("release", "debug"):
            built = root / "target" / profile / FILE_NAME
            if built.is_file():
                yield f"the source tree's target/{profile}", str(built), False
    found = ctypes.util.find_library("data_pipeline")
    if found:
        yield 'ctypes.util.find_library("data_pipeline")', found, False


def _tried() -> List[str]:
    env = os.environ.get(ENV_VAR)
    tried = [f"${ENV_VAR} ({env!r})" if env else f"${ENV_VAR} (not set)"]
    if env:
        return tried
    tried.append(str(_HERE / FILE_NAME))
    root = _repo_root()
    if root is not None:
        tried += [str(root / "target" / p / FILE_NAME) for p in ("release", "debug")]
    else:
        tried.append("<repo>/target/{release,debug} (not running from the source tree)")
    tried.append('ctypes.util.find_library("data_pipeline") (system library paths, LD_LIBRARY_PATH)')
    return tried


def load() -> Tuple[ctypes.CDLL, str]:
    """Loads the library; returns it and a description of where it came from.

    Raises ImportError naming every place that was tried.
    """
    errors = []
    for how, path, explicit in candidates():
        try:
            return ctypes.CDLL(path), f"{path} ({how})"
        except OSError as e:
            if explicit:
                raise ImportError(f"data_pipeline: cannot load {path} ({how}): {e}") from e
            errors.append(f"{path}: {e}")
    lines = "\n  ".join(_tried())
    detail = ("\nload errors:\n  " + "\n  ".join(errors)) if errors else ""
    raise ImportError(
        "data_pipeline: the native library "
        f"{FILE_NAME} was not found. Tried, in order:\n  {lines}{detail}\n"
        "Build it with `cargo build --release -p data-pipeline-ffi`, or set "
        f"{ENV_VAR} to its full path."
    )


def loaded_path(name_hint: str = "libdata_pipeline") -> Optional[str]:
    """The file the dynamic loader actually mapped (Linux: from /proc/self/maps), or None."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6 and name_hint in os.path.basename(parts[5].strip()):
                    return parts[5].strip()
    except OSError:
        pass
    return None

"""Where forkpoint keeps what it builds once: converted models, the libcuda stub, server logs."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    """`$FORKPOINT_CACHE`, else ~/.cache/forkpoint."""
    return Path(os.environ.get("FORKPOINT_CACHE") or Path.home() / ".cache" / "forkpoint")


def models_dir() -> Path:
    return cache_dir() / "models"


def logs_dir() -> Path:
    return cache_dir() / "logs"


def build_model_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Return `target`, a model folder; if it has no config.json yet, `build(out)` writes one into
    a scratch folder beside it, which is then renamed into place: a half-built folder is never
    mistaken for a good one, and two processes building at once both end with a good folder."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
        out = Path(scratch) / "model"
        build(out)
        if (target / "config.json").is_file():  # another process finished first
            return target
        shutil.rmtree(target, ignore_errors=True)
        out.rename(target)
    return target

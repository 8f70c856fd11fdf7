"""Where forkpoint keeps what it builds once: converted models, the libcuda stub, server logs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$FORKPOINT_CACHE`, else ~/.cache/forkpoint."""
    return Path(os.environ.get("FORKPOINT_CACHE") or Path.home() / ".cache" / "forkpoint")


def models_dir() -> Path:
    return cache_dir() / "models"


def logs_dir() -> Path:
    return cache_dir() / "logs"

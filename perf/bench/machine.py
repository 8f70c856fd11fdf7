"""What a benchmark ran on (machine, CPU/GPU, date, commit), and the heading every results
table starts with. Shared by the perf scripts; where results go is results.py."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path


def describe() -> dict[str, str | bool]:
    return {
        "machine": _machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD") or "unknown",
        "dirty": bool(_git("status", "--porcelain")),
    }


def heading(title: str, report: dict, details: str) -> list[str]:
    """The first lines every results table starts with: what, when, which commit, where."""
    return [
        f"# {title} — {report['date']} — commit {report['commit'][:7]}",
        "",
        f"Machine: {report['machine']}. {details} MEASURED.",
        "",
    ]


def _machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpu = "no GPU"
    if shutil.which("nvidia-smi"):
        gpu = _run("nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader") or gpu
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {gpu}"


def _git(*args: str) -> str:
    return _run("git", "-C", str(Path(__file__).parent), *args)


def _run(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""

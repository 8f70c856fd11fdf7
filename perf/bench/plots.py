"""Pictures of a saved bench report, for people who would rather look than read.

    ./dev python perf/bench/plots.py perf/results/bench-2026-11-25-abc1234-64docs.json

Writes two PNGs beside the report (bench.py draws them after every run):
  <stem>-throughput.png   read and write tokens/s of every run (baseline, ablations, peer)
  <stem>-timeline.png     cumulative output and prompt tokens over time, one line per run
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def measured_runs(report: dict) -> dict[str, dict]:
    return {name: run for name, run in report["runs"].items() if "skipped" not in run}


def draw(report_path: Path) -> list[Path]:
    report = json.loads(report_path.read_text())
    runs = measured_runs(report)
    title = (
        f"{report['profile']} · {report['corpus']['documents']} documents · "
        f"{report['machine']} · {report['date'][:10]} · {report['commit'][:7]}"
    )
    stem = report_path.with_suffix("")
    return [
        _throughput(runs, title, Path(f"{stem}-throughput.png")),
        _timeline(runs, title, Path(f"{stem}-timeline.png")),
    ]


def _throughput(runs: dict[str, dict], title: str, out: Path) -> Path:
    names = list(runs)
    fig, (read, write) = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = (
        (read, "read_tokens_per_second", "read (prompt) tok/s"),
        (write, "write_tokens_per_second", "write (output) tok/s"),
    )
    for axis, key, label in panels:
        values = [runs[n][key] for n in names]
        bars = axis.barh(
            names, values, color=["#2b6cb0" if n == "baseline" else "#a0aec0" for n in names]
        )
        axis.bar_label(bars, fmt="%.1f", padding=3, fontsize=8)
        axis.set_xlabel(label)
        axis.invert_yaxis()
        axis.margins(x=0.2)
    return _save(fig, f"Throughput per run (measured) — {title}", out)


def _timeline(runs: dict[str, dict], title: str, out: Path) -> Path:
    fig, (written, read) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, run in runs.items():
        points = run.get("timeline") or []
        if not points:
            continue
        seconds = [0.0] + [p[0] for p in points]
        written.step(seconds, [0] + [p[2] for p in points], where="post", label=name)
        read.step(seconds, [0] + [p[1] for p in points], where="post", label=name)
    written.set_ylabel("output tokens written (cumulative)")
    read.set_ylabel("prompt tokens read (cumulative)")
    for axis in (written, read):
        axis.set_xlabel("seconds since the run started")
        axis.grid(alpha=0.3)
    if written.lines:
        written.legend(fontsize=8)
    return _save(fig, f"Tokens over time, as documents finished (measured) — {title}", out)


def _save(fig: Figure, title: str, out: Path) -> Path:
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


if __name__ == "__main__":
    from forkpoint.perf.bench.results import default_dir

    for path in sys.argv[1:] or sorted(default_dir().glob("bench-*.json"))[-1:]:
        for picture in draw(Path(path)):
            print(f"saved {picture}")

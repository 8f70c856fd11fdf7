"""A saved bench report is drawn as two pictures: throughput per run, and tokens over time."""

import json
import shutil
from pathlib import Path

import matplotlib.image

from forkpoint.perf.bench.plots import draw

RESULTS = Path(__file__).resolve().parents[2] / "perf" / "results"


def newest_report_with_timelines() -> Path:
    for path in sorted(RESULTS.glob("bench-*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        runs = json.loads(path.read_text())["runs"].values()
        if any(run.get("timeline") for run in runs):
            return path
    raise AssertionError("no saved bench report with timelines in perf/results")


def test_a_measured_report_becomes_a_throughput_and_a_timeline_png(tmp_path):
    report = Path(shutil.copy(newest_report_with_timelines(), tmp_path))
    pictures = draw(report)
    assert [p.name for p in pictures] == [
        f"{report.stem}-throughput.png",
        f"{report.stem}-timeline.png",
    ]
    for picture in pictures:
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = matplotlib.image.imread(picture).shape
        assert (width, height) == (1320, 504)  # 11 x 4.2 inches at 120 dpi


def test_a_report_from_before_timelines_still_draws_its_throughput(tmp_path):
    old = RESULTS / "bench-2026-11-25-6490d74.json"  # saved before runs kept a timeline
    pictures = draw(Path(shutil.copy(old, tmp_path)))
    assert all(p.is_file() for p in pictures)

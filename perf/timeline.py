"""When each document of a benchmark run finished: the run's progress bar and its tokens-over-time.

A run calls the timeline with every result as it completes; the timeline advances a rich progress
bar and keeps (seconds since start, cumulative prompt tokens, cumulative output tokens), which the
report saves and perf/plots.py draws.
"""

from __future__ import annotations

import threading
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Timeline:
    def __init__(self, name: str, total: int, *, show: bool = True):
        self.points: list[tuple[float, int, int]] = []
        self._lock = threading.Lock()
        self._prompt = self._output = 0
        self._progress = Progress(
            TextColumn(f"{name:>16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[rate]}"), disable=not show, transient=False,
        )  # fmt: skip
        self._task = self._progress.add_task(name, total=total, rate="")
        self.started = time.perf_counter()

    def __enter__(self) -> Timeline:
        self._progress.start()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def restart(self) -> None:
        """Measure from now (after a warm-up the run does not count)."""
        self.started = time.perf_counter()

    def __call__(self, prompt_tokens: int, output_tokens: int) -> None:
        """One document finished with these token counts."""
        with self._lock:
            elapsed = time.perf_counter() - self.started
            self._prompt += prompt_tokens
            self._output += output_tokens
            self.points.append((round(elapsed, 3), self._prompt, self._output))
            rate = f"write {self._output / elapsed:.1f} tok/s" if elapsed else ""
        self._progress.update(self._task, advance=1, rate=rate)

"""When each document of a benchmark run finished: the run's progress bar and its tokens-over-time.

A run calls the timeline with every result as it completes; the timeline advances a rich progress
bar and keeps (seconds since start, cumulative prompt tokens, cumulative output tokens), which the
report saves and perf/bench/plots.py draws, and the CPU time the benchmarking process itself used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Timeline:
    """A run's clock: every point and the run's wall time are read from `elapsed()`, rounded the
    same way, so no point can lie after the wall time the report states."""

    def __init__(self, name: str, total: int, clock: Callable[[], float] = time.perf_counter):
        self._clock = clock
        self.points: list[tuple[float, int, int]] = []
        self._lock = threading.Lock()
        self._prompt = self._output = 0
        self._progress = Progress(
            TextColumn(f"{name:>16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[rate]}"),
            transient=False,
        )
        self._task = self._progress.add_task(name, total=total, rate="")
        # without a terminal (a log file, CI) the bar only draws at the end: print lines instead
        self._every = 0 if self._progress.console.is_terminal else max(total // 20, 1)
        self._name, self._total = name, total
        self.started = clock()
        self.cpu_seconds = 0.0

    def __enter__(self) -> Timeline:
        self._progress.start()
        self.started = self._clock()
        self._cpu_started = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        # CPU this process (the client, and the gateway when it runs in-process) spent on the
        # run: on a small machine it is taken from the runtime's cores
        self.cpu_seconds = round(time.process_time() - self._cpu_started, 2)
        self._progress.stop()

    def elapsed(self) -> float:
        """Seconds since the run started, to the millisecond: the wall time a run reports."""
        return round(self._clock() - self.started, 3)

    def __call__(self, prompt_tokens: int, output_tokens: int) -> None:
        """One document finished with these token counts."""
        with self._lock:
            elapsed = self.elapsed()
            self._prompt += prompt_tokens
            self._output += output_tokens
            self.points.append((elapsed, self._prompt, self._output))
            rate = f"write {self._output / elapsed:.1f} tok/s" if elapsed else ""
            done = len(self.points)
        self._progress.update(self._task, advance=1, rate=rate)
        if self._every and (done % self._every == 0 or done == self._total):
            print(
                f"{self._name}: {done}/{self._total} documents, {elapsed:.0f} s, "
                f"read {self._prompt / elapsed:.1f} tok/s, {rate}",
                flush=True,
            )

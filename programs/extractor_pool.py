"""Warmed extractors, one per task, on one runtime: what a server that runs many tasks keeps.

An entry is built (connected, its chat format checked) once and its prefix warmed once: callers
of the same task wait for that one build or warm-up, callers of other tasks go on meanwhile.
At most `max_warm_tasks` entries are kept, the least recently used dropped first (an inline
schema per job would otherwise grow the pool forever). A failed build or warm-up is forgotten,
so the next caller tries again. `bounded` is the synchronous way in: the same entry seen with
bounded timeouts, never waiting for a warm-up.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

from forkpoint.programs.extractor import Extractor
from forkpoint.programs.target import CHECK_SECONDS, Target
from forkpoint.programs.tasks.task import ExtractionTask


class _Entry:
    """One task's extractor: built (`built`), then warmed (`warmed`, once someone needs it)."""

    def __init__(self) -> None:
        self.built: Future[Extractor] = Future()
        self.warmed: Future[Extractor] | None = None


class ExtractorPool:
    """Extractors by task (`task.key`, its content) on the target `target(check_seconds)`
    resolves (a LazyTarget's `get`, or a fixed Target)."""

    def __init__(
        self,
        target: Target | Callable[[float], Target],
        *,
        max_warm_tasks: int = 32,
        deadline_seconds: float | None = None,  # of one document's extraction; None: none
    ) -> None:
        self._target = target
        self.max_warm_tasks, self.deadline_seconds = max_warm_tasks, deadline_seconds
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, task: ExtractionTask) -> Extractor:
        """`task`'s extractor, its prefix warmed (once per entry)."""
        entry, build = self._entry(task)
        extractor = self._build(task, entry, None) if build else entry.built.result()
        with self._lock:
            warming = entry.warmed is None
            if entry.warmed is None:
                entry.warmed = Future()
            warmed = entry.warmed
        if not warming:
            return warmed.result()
        try:
            extractor.warm()
        except BaseException as exc:
            self._forget(task.key, entry)
            warmed.set_exception(exc)
            raise
        warmed.set_result(extractor)
        return extractor

    def bounded(self, task: ExtractionTask, seconds: float) -> Extractor:
        """`task`'s extractor with no runtime call waiting longer than `seconds`, nor one
        document's extraction (Extractor.bounded). Not warmed here: a first document computes
        the prefix, and the runtime's cache keeps it for the next."""
        entry, build = self._entry(task)
        if build:
            return self._build(task, entry, seconds).bounded(seconds)
        return entry.built.result(timeout=seconds).bounded(seconds)

    def drop(self, task: ExtractionTask) -> None:
        """Forget `task`'s extractor: the next caller builds and warms it again."""
        with self._lock:
            self._entries.pop(task.key, None)

    def clear(self) -> None:
        """Forget every extractor (a restarted runtime has an empty cache: warm again)."""
        with self._lock:
            self._entries.clear()

    def _entry(self, task: ExtractionTask) -> tuple[_Entry, bool]:
        """(the task's entry, True if this caller is to build it)."""
        with self._lock:
            entry = self._entries.get(task.key)
            if entry is not None:
                self._entries.move_to_end(task.key)
                return entry, False
            entry = self._entries[task.key] = _Entry()
            while len(self._entries) > self.max_warm_tasks:
                self._entries.popitem(last=False)
            return entry, True

    def _build(self, task: ExtractionTask, entry: _Entry, seconds: float | None) -> Extractor:
        """Build the entry's extractor, every runtime call within `seconds` if given; what is
        kept has the target's own timeouts."""
        try:
            target = self._resolve(
                CHECK_SECONDS if seconds is None else min(seconds, CHECK_SECONDS)
            )
            built = Extractor(
                target if seconds is None else target.bounded(seconds),
                task,
                deadline_seconds=self.deadline_seconds,
            )
            extractor = built if seconds is None else built.retimed(target, self.deadline_seconds)
        except BaseException as exc:
            self._forget(task.key, entry)
            entry.built.set_exception(exc)
            raise
        entry.built.set_result(extractor)
        return extractor

    def _resolve(self, check_seconds: float) -> Target:
        target = self._target
        return target if isinstance(target, Target) else target(check_seconds)

    def _forget(self, key: str, entry: _Entry) -> None:
        with self._lock:  # only this entry: a newer one may have taken its place
            if self._entries.get(key) is entry:
                del self._entries[key]

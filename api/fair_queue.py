"""The job runner's queue: documents taken in turns between owners (API keys), and between each
owner's jobs, so that one key's twenty jobs get no more of the workers than another key's one.

`FairQueue` is the order alone (not thread-safe); `WorkQueue` is the same behind a condition,
for the runner's workers: `take` blocks until there is work or the queue is stopped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar


class Item(Protocol):
    @property
    def job_id(self) -> str: ...


T = TypeVar("T", bound=Item)


class FairQueue(Generic[T]):
    """Round-robin over owners with queued work, then over that owner's jobs, then each job's
    documents in order."""

    def __init__(self) -> None:
        self._items: dict[str, deque[T]] = {}  # job -> its queued documents, in order
        self._owner: dict[str, str | None] = {}  # job -> the owner it belongs to
        self._jobs: dict[str | None, deque[str]] = {}  # owner -> its jobs with work, in turn
        self._owners: deque[str | None] = deque()  # owners with work, in turn

    def add(self, job_id: str, owner: str | None, items: Iterable[T]) -> None:
        """Queue a job's documents; the job takes its turn after the jobs already waiting."""
        self._items[job_id] = deque(items)
        self._owner[job_id] = owner
        if self._items[job_id]:
            self._turn(job_id, first=False)

    def take(self) -> T | None:
        """The next document by turns; None if nothing is queued."""
        if not self._owners:
            return None
        owner = self._owners.popleft()
        jobs = self._jobs[owner]
        job_id = jobs.popleft()
        items = self._items[job_id]
        item = items.popleft()
        if items:
            jobs.append(job_id)
        else:
            self.drop(job_id)
        if jobs:
            self._owners.append(owner)
        else:
            del self._jobs[owner]
        return item

    def put_back(self, item: T) -> None:
        """Return a taken document to the front: its job and owner go first."""
        job_id = item.job_id
        self._items.setdefault(job_id, deque()).appendleft(item)
        self._owner.setdefault(job_id, None)
        self._turn(job_id, first=True)

    def drop(self, job_id: str) -> None:
        """Forget a job's queued documents (done, or cancelled)."""
        self._items.pop(job_id, None)
        owner = self._owner.pop(job_id, None)
        jobs = self._jobs.get(owner)
        if jobs is not None and job_id in jobs:
            jobs.remove(job_id)
            if not jobs:
                del self._jobs[owner]
                self._owners.remove(owner)

    def __bool__(self) -> bool:
        return bool(self._owners)

    def _turn(self, job_id: str, *, first: bool) -> None:
        owner = self._owner[job_id]
        jobs = self._jobs.get(owner)
        if jobs is None:
            jobs = self._jobs[owner] = deque()
            (self._owners.appendleft if first else self._owners.append)(owner)
        elif first and self._owners[0] != owner:
            self._owners.remove(owner)
            self._owners.appendleft(owner)
        if job_id not in jobs:
            (jobs.appendleft if first else jobs.append)(job_id)
        elif first:
            jobs.remove(job_id)
            jobs.appendleft(job_id)


class WorkQueue(Generic[T]):
    """A FairQueue shared by worker threads."""

    def __init__(self) -> None:
        self._queue: FairQueue[T] = FairQueue()
        self._work = threading.Condition()
        self._stopping = False

    def add(
        self,
        job_id: str,
        owner: str | None,
        items: Iterable[T],
        *,
        unless: Callable[[], bool] = lambda: False,
    ) -> None:
        """Queue a job's documents, unless `unless()` says otherwise, asked under the queue's
        lock (a cancel, which drops the job under it, cannot slip between the two)."""
        with self._work:
            if unless():
                return
            self._queue.add(job_id, owner, items)
            self._work.notify_all()

    def take(self) -> T | None:
        """The next document by turns, waiting for one; None once the queue is stopped."""
        with self._work:
            while not self._stopping and not self._queue:
                self._work.wait()
            return None if self._stopping else self._queue.take()

    def put_back(self, item: T) -> None:
        with self._work:
            self._queue.put_back(item)
            self._work.notify()

    def drop(self, job_id: str) -> None:
        with self._work:
            self._queue.drop(job_id)

    def stop(self) -> None:
        """Every waiting and later `take` returns None."""
        with self._work:
            self._stopping = True
            self._work.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stopping

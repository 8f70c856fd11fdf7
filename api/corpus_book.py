"""Which jobs have an NGRAM draft corpus on the runtime, and keeping that true.

A job's pending texts go in as its documents start, beside the first of them (POST
/add_external_corpus, runtime/corpora.py), and come out when it is done or cancelled; a
restarted runtime has none, so the unfinished jobs' corpora are loaded again. A cancel while a
load is in flight leaves the removal to the loader, which drops the corpus as soon as its load
ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Literal

from forkpoint.api.store import FINAL_STATES, JobStore
from forkpoint.runtime.corpora import JobCorpora


class CorpusBook:
    def __init__(self, corpora: JobCorpora, store: JobStore) -> None:
        self.corpora, self.store = corpora, store
        self._lock = threading.Lock()
        self._jobs: dict[str, Literal["loading", "loaded"]] = {}

    @property
    def enabled(self) -> bool:
        return self.corpora.enabled

    def sweep(self, keep: Iterable[str]) -> None:
        """Remove the corpora a crash left behind, but those of the jobs in `keep`."""
        self.corpora.sweep(set(keep))

    def load(self, job_id: str) -> None:
        """Load the job's pending texts (blocking: the runtime tokenizes them)."""
        with self._lock:
            self._jobs[job_id] = "loading"
        stats = self.corpora.register(job_id, [doc.text for doc in self.store.pending(job_id)])
        if stats is not None:
            self.store.set_corpus(job_id, stats)
        with self._lock:
            self._jobs[job_id] = "loaded"
        if self.store.get(job_id).state in FINAL_STATES:  # cancelled while it loaded
            self.drop(job_id)

    def drop(self, job_id: str) -> None:
        """The job is done or cancelled: remove its corpus, now or when its load ends."""
        with self._lock:
            if self._jobs.get(job_id) != "loaded":
                return  # none, or still loading: load() drops it when the load ends
            del self._jobs[job_id]
        self.corpora.remove(job_id)

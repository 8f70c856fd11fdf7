"""The job runner: accepted documents → the runtime, fairly across keys and jobs, each result
stored once.

A fixed pool of `concurrency` workers keeps the runtime full. Its parts, each in its own module:
- the queue (api/fair_queue.py): documents taken in turns between owners, then their jobs, so a
  small job submitted behind a large one is not starved; it holds where a document is, not its
  text (a worker reads the text from the store when it takes the document);
- the extractors (programs/extractor_pool.py): each task's prefix warmed once per runtime;
- the outage policy (api/outage_policy.py) over a runtime watch (runtime/watch.py): a document
  that meets an outage is sent again, retried later or failed with the reason;
- the corpus book (api/corpus_book.py): each running job's NGRAM draft corpus on the runtime.
On start-up, unfinished jobs resume from the store: every document without a result is queued
again, and a result can be stored only once. Finished jobs are deleted after `retention_days`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forkpoint.api.corpus_book import CorpusBook
from forkpoint.api.fair_queue import WorkQueue
from forkpoint.api.job_task import JobTask
from forkpoint.api.metrics import Metrics
from forkpoint.api.outage_policy import OutagePolicy
from forkpoint.api.settings import Settings
from forkpoint.api.store import FINAL_STATES, JobRecord, JobStore
from forkpoint.errors import ForkpointError, RuntimeUnavailable
from forkpoint.programs.documents.document import Document, content_hash
from forkpoint.programs.extractor import Extractor
from forkpoint.programs.extractor_pool import ExtractorPool
from forkpoint.programs.results.record import DocumentResult
from forkpoint.programs.target import LazyTarget
from forkpoint.programs.tasks.spec import TaskSpec
from forkpoint.programs.tasks.task import ExtractionTask
from forkpoint.runtime.corpora import JobCorpora
from forkpoint.runtime.watch import RemoteRuntime, RuntimeWatch

if TYPE_CHECKING:
    from forkpoint.runtime.supervisor import RuntimeSupervisor

log = logging.getLogger("forkpoint.jobs")
# Within systemd's TimeoutStopSec=30 for the gateway, after uvicorn's 10 s of graceful shutdown.
STOP_GRACE_SECONDS = 5.0
PURGE_EVERY_SECONDS = 3600.0  # how often finished jobs past the retention period are deleted


@dataclass(frozen=True)
class WorkItem:
    """A queued document: where it is, not its text (read from the store when a worker takes
    it, so a queue of 20,000 documents holds no texts)."""

    job_id: str
    index: int
    name: str
    sha256: str | None = None
    part: int | None = None  # its group's task, in a grouped job (an OpenAI batch)

    def failed(self, reason: str) -> DocumentResult:
        """This document's error result (its name and hash are all that needs)."""
        return DocumentResult(self.index, self.name, "error", error=reason, sha256=self.sha256)


def request_fingerprint(
    task: JobTask, documents: list[Document], labels: dict | None = None
) -> str:
    """What makes two job submissions the same request (for idempotency keys): the task as the
    job records it, the labels, each document's name and content."""
    parts = [task.to_json()]
    parts.append(json.dumps(labels, sort_keys=True) if labels else "")
    parts += [
        f"{doc.name}\0{doc.sha256 or content_hash(doc.text or doc.error or '')}"
        for doc in documents
    ]
    return content_hash("\n".join(parts))


class JobRunner:
    """Runs stored jobs against one runtime URL (an SGLang server or an sglang-router)."""

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        metrics: Metrics,
        supervisor: RuntimeSupervisor | None = None,
        corpora: JobCorpora | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        # The runtime this gateway started and restarts (forkpoint serve without --sglang-url);
        # None when it uses a runtime someone else runs.
        self.supervisor = supervisor
        if supervisor is not None:
            supervisor.on_restart = self._runtime_restarted
        self.url = settings.runtime_url
        self.corpora = CorpusBook(
            corpora or JobCorpora(self.url, settings.launch_profile.speculation), store
        )
        # A runtime this gateway launched serves the profile's model, in the profile's format;
        # someone else's (--sglang-url) is asked which model it serves, once, on first use.
        self.target = LazyTarget(
            self.url,
            launched=None if settings.sglang_url else settings.launch_profile,
            chat_format=settings.chat_format,
        )
        # warmed (or being warmed) extractors by task, for the workers and /v1/extract alike
        self.extractors = ExtractorPool(
            self.target.get,
            max_warm_tasks=settings.max_warm_tasks,
            deadline_seconds=settings.document_timeout_seconds,
        )
        self.concurrency = settings.concurrency or settings.launch_profile.client_concurrency
        self.queue: WorkQueue[WorkItem] = WorkQueue()  # turns by owner, then by job
        watch: RuntimeWatch = supervisor or RemoteRuntime(
            self.url, stopping=lambda: self.queue.stopping
        )
        self.outages = OutagePolicy(
            watch,
            attempts=settings.runtime_attempts,
            down_wait_seconds=settings.runtime_down_wait_seconds,
        )
        # by (job id, group): built once, not per document
        self._tasks: dict[tuple[str, int | None], ExtractionTask] = {}
        self._holding: Counter[str] = Counter()  # documents workers hold, by job
        self._holding_lock = threading.Lock()
        self._noted: set[tuple[str, int]] = set()  # groups whose prefix tokens are recorded
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()  # ends the retention loop
        # what else is deleted at the retention cutoff (a time.time()), e.g. the OpenAI files
        self.purgers: list[Callable[[float], object]] = []
        self._served_model: str | None = None

    def start(self) -> None:
        """Remove corpora a crash left behind, resume unfinished jobs, start the workers.

        Someone else's runtime is checked first: a chat format that does not fit its model
        stops the gateway here, not one document at a time (a runtime that does not answer yet
        is checked when the first extractor is built)."""
        if self.supervisor is None:
            try:
                self.target.get(check_seconds=5)
            except RuntimeUnavailable:
                pass
        self.purge_expired()
        threading.Thread(target=self._purge_loop, name="fp-retention", daemon=True).start()
        unfinished = self.store.unfinished()
        self.corpora.sweep({job.id for job in unfinished})
        for job in unfinished:
            self._enqueue(job)
        for n in range(self.concurrency):
            thread = threading.Thread(target=self._worker, name=f"fp-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def served_model(self) -> str:
        """The served model's name (the last part of its path), asked of the runtime once;
        RuntimeUnavailable while it does not answer."""
        if self._served_model is None:
            info = self.target.get().client().model_info()
            self._served_model = str(info.get("model_path", "")).rstrip("/").rsplit("/", 1)[-1]
        return self._served_model

    def purge_expired(self, now: float | None = None) -> int:
        """Delete the jobs that finished more than `retention_days` before `now` (default: the
        clock), their documents and results with them, and what `purgers` keep for as long
        (the OpenAI files); how many jobs were deleted."""
        now = time.time() if now is None else now
        cutoff = now - self.settings.retention_days * 86400.0
        for purge in self.purgers:
            purge(cutoff)
        purged = self.store.purge(cutoff)
        if purged:
            log.info(
                "deleted %d jobs finished over %g days ago", purged, self.settings.retention_days
            )
        return purged

    def _purge_loop(self) -> None:
        while not self._stopped.wait(PURGE_EVERY_SECONDS):
            try:
                self.purge_expired()
            except Exception:  # a locked or full disk: try again next time, keep serving
                log.exception("deleting expired jobs failed")

    def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Stop taking documents; wait at most `grace_seconds` in all for workers to finish the
        ones they hold. Workers still waiting on the runtime are left (daemon threads): their
        documents have no result and run again on the next start."""
        self._stopped.set()
        self.queue.stop()
        deadline = time.monotonic() + grace_seconds
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def submit(
        self,
        task: JobTask,
        documents: list[Document],
        *,
        labels: dict[str, dict] | None = None,
        idempotency_key: str | None = None,
        owner: str | None = None,
        groups: list[str] | None = None,
        parts: list[int | None] | None = None,
        batch: dict | None = None,
    ) -> tuple[JobRecord, bool]:
        """Store a job durably, owned by `owner`, and queue it: (job, created). Raises QueueFull
        past the queue limit. An idempotency key the owner used within the idempotency TTL
        returns the job it created (created False), whatever the queue holds. A grouped job
        gives its groups' tasks and each document's part (JobStore.create_job)."""
        unreadable = {
            index: DocumentResult.failed(index, doc, doc.error, seconds=0.0)
            for index, doc in enumerate(documents)
            if doc.error is not None  # recorded with the job, never sent
        }
        fingerprint = request_fingerprint(task, documents, labels)
        job, created = self.store.create_job(
            task,
            [(doc.name, doc.text or "", doc.sha256) for doc in documents],
            labels=labels,
            idempotency=None if idempotency_key is None else (idempotency_key, fingerprint),
            owner=owner,
            idempotency_ttl=self.settings.idempotency_ttl_seconds,
            max_waiting=self.settings.max_queued_documents,
            max_waiting_per_owner=self.settings.max_queued_documents_per_key,
            failed={index: result.to_json() for index, result in unreadable.items()},
            groups=groups,
            parts=parts,
            batch=batch,
        )
        if not created:
            return job, False
        for result in unreadable.values():
            self.metrics.observe(result)
        self.metrics.jobs.labels("submitted").inc()
        self._enqueue(job)
        return job, True

    def cancel(self, job_id: str) -> None:
        self.store.set_state(job_id, "cancelled")
        self.queue.drop(job_id)
        self.metrics.jobs.labels("cancelled").inc()
        self._forget_tasks(job_id)
        self.corpora.drop(job_id)

    def holding(self, job_id: str) -> int:
        """How many of the job's documents workers hold right now (a cancelled job's that may
        still be recorded)."""
        with self._holding_lock:
            return self._holding[job_id]

    def _forget_tasks(self, job_id: str) -> None:
        for key in [key for key in list(self._tasks) if key[0] == job_id]:
            self._tasks.pop(key, None)
        self._noted = {key for key in self._noted if key[0] != job_id}

    def extractor(self, task: ExtractionTask) -> Extractor:
        """The task's warmed extractor (schema and instructions): the prefix is computed once
        per runtime; the gateway's own workers schedule the documents."""
        return self.extractors.get(task)

    def _enqueue(self, job: JobRecord) -> None:
        items = deque(
            WorkItem(job.id, ref.index, ref.name, ref.sha256, ref.part)
            for ref in self.store.pending_refs(job.id)
        )
        if not items:
            self.store.set_state(job.id, "done")
            return
        if self.corpora.enabled:
            # The corpus loads beside the first documents, not before them: the runtime
            # tokenizes it (seconds for a large job) and SGLang builds its index in a thread
            # of its own, while the first wave's prefill keeps the GPU busy; a document decoded
            # before the corpus lands drafts from its own tokens only. (Waiting for the load
            # held every job's start back by it: 5% of the job at 10x the projected rate,
            # perf/results/host-side-*.) Not on the submitting request's thread.
            threading.Thread(
                target=self.corpora.load, args=(job.id,), name=f"fp-corpus-{job.id[:8]}"
            ).start()
        self._queue(job.id, items)

    def _queue(self, job_id: str, items: deque[WorkItem]) -> None:
        self.store.set_state(job_id, "running")
        owner = self.store.get(job_id).owner
        self.queue.add(
            job_id, owner, items, unless=lambda: self.store.get(job_id).state == "cancelled"
        )

    def _worker(self) -> None:
        """Take documents until the runner stops. Nothing a document meets ends the thread:
        an unexpected exception (a runtime answering garbage, a read or SQLite error, a bug)
        becomes that document's error, so its job still reaches `done` and the pool its size."""
        while (item := self.queue.take()) is not None:
            with self._holding_lock:
                self._holding[item.job_id] += 1
            try:
                self._run(item)
            except Exception as exc:
                log.exception("document %d of job %s failed unexpectedly", item.index, item.job_id)
                self.metrics.worker_errors.inc()
                reason = f"the gateway failed on this document: {type(exc).__name__}: {exc}"
                failed = item.failed(reason[:500])
                try:
                    self._store(item.job_id, failed)
                except Exception:  # e.g. the disk is full: the document stays pending
                    log.exception("could not record the failure of document %d", item.index)
            finally:
                with self._holding_lock:
                    self._holding[item.job_id] -= 1
                    if not self._holding[item.job_id]:
                        del self._holding[item.job_id]

    def _run(self, item: WorkItem) -> None:
        job = self.store.job(item.job_id)
        if job is None or job.state == "cancelled":
            return
        try:
            task = self._task(job, item.part)
            text = self.store.text(item.job_id, item.index)
            if text is None:
                return  # the job was deleted meanwhile
            document = Document(item.name, text, sha256=item.sha256)
            suspect = self.outages.suspect((item.job_id, item.index))
            with self.outages.one_suspect if suspect else nullcontext():
                extractor = self.extractor(task)
                if item.part is not None and extractor.prefix_tokens is not None:
                    self._note_prefix(job.id, item.part, extractor.prefix_tokens)
                result = extractor.extract(item.index, document)
        except RuntimeUnavailable as exc:
            self._outage(item, exc)
            return
        except ForkpointError as exc:  # e.g. the job's task is no longer registered
            result = item.failed(str(exc))
        self._store(item.job_id, result)

    def _task(self, job: JobRecord, part: int | None) -> ExtractionTask:
        """The task of a job's document: the job's, or (a grouped job) its group's."""
        task = self._tasks.get((job.id, part))
        if task is None:
            if part is None:
                task = job.task.to_task()
            else:
                spec = self.store.group(job.id, part)
                if spec is None:
                    raise ForkpointError(f"job {job.id} has no group {part}")
                task = TaskSpec.model_validate_json(spec).to_task()
            self._tasks[(job.id, part)] = task
        return task

    def _note_prefix(self, job_id: str, part: int, tokens: int) -> None:
        """Record a group's prefix tokens once (the batch shows them)."""
        key = (job_id, part)
        if key not in self._noted:
            self._noted.add(key)
            self.store.set_prefix_tokens(job_id, part, tokens)

    def _runtime_restarted(self) -> None:
        self.metrics.runtime_restarts.inc()
        self.extractors.clear()  # the new server's cache is empty: warm the prefixes again
        if self.corpora.enabled:  # and it has no corpora: load them again
            for job in self.store.unfinished():
                self.corpora.load(job.id)

    def _outage(self, item: WorkItem, exc: RuntimeUnavailable) -> None:
        """A document met a runtime outage: re-sent, retried later or failed, as the outage
        policy says (api/outage_policy.py)."""
        self.metrics.runtime_outages.inc()
        self.extractors.clear()  # a restarted runtime has an empty cache: warm again
        verdict = self.outages.met((item.job_id, item.index), exc)
        if verdict.failure is not None:
            log.warning("document %d of job %s failed: %s", item.index, item.job_id, exc.message)
            self._store(item.job_id, item.failed(verdict.failure))
            return
        time.sleep(verdict.delay)
        self.queue.put_back(item)

    def _store(self, job_id: str, result: DocumentResult) -> None:
        if self.store.record(job_id, result.index, result.to_json()):
            self.metrics.observe(result)
            if self.store.get(job_id).state in FINAL_STATES:  # the job's last document
                self._forget_tasks(job_id)
                self.corpora.drop(job_id)
        self.outages.forget((job_id, result.index))

"""The batch: one task over many documents, the server kept full, results in input order.

Warm the prefix once (the fork point), then keep `concurrency` documents in flight — a fixed pool
of workers, not a thread per document — and hand results back in input order as soon as the
next one is ready. Each document goes through the Extractor (extractor.py); every document ends
as a result, and one bad document never sinks the batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from forkpoint.programs.documents.document import Document
from forkpoint.programs.extractor import Extractor
from forkpoint.programs.results.record import BatchSummary, DocumentResult
from forkpoint.programs.target import Target
from forkpoint.programs.tasks.task import ExtractionTask


@dataclass(frozen=True)
class BatchOptions:
    concurrency: int = 32
    temperature: float | None = None  # None: the task's own sampling (greedy by default)
    max_output_tokens: int | None = None  # None: the task's own limit
    warm_prefix: bool = True  # False only to measure what the fork-point warm-up buys

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")


class BatchDriver:
    """Schedules one task's documents over an Extractor, `concurrency` at a time."""

    def __init__(
        self, target: Target, task: ExtractionTask, options: BatchOptions | None = None
    ) -> None:
        self.options = options or BatchOptions()
        self.extractor = Extractor(
            target,
            task,
            temperature=self.options.temperature,
            max_output_tokens=self.options.max_output_tokens,
        )

    @property
    def prefix_tokens(self) -> int | None:
        return self.extractor.prefix_tokens

    def warm(self) -> int:
        """Compute the prefix once on the server; returns its token count."""
        return self.extractor.warm()

    def run(
        self,
        documents: Iterable[Document],
        on_result: Callable[[DocumentResult], None] | None = None,
    ) -> Iterator[DocumentResult]:
        """Extract every document; yields results in input order. Warms the prefix first."""
        if self.prefix_tokens is None and self.options.warm_prefix:
            self.warm()
        window = self.options.concurrency * 2  # bounded read-ahead of documents
        pending: dict[int, Future[DocumentResult]] = {}
        done: dict[int, DocumentResult] = {}
        next_out = 0
        source = enumerate(documents)
        exhausted = False
        with ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="fp-doc") as pool:
            while not exhausted or pending:
                while not exhausted and len(pending) < window:
                    item = next(source, None)
                    if item is None:
                        exhausted = True
                        break
                    index, doc = item
                    pending[index] = pool.submit(self.extractor.extract, index, doc)
                if not pending:
                    break
                finished, _ = wait(pending.values(), return_when=FIRST_COMPLETED)
                for index in [i for i, f in pending.items() if f in finished]:
                    result = pending.pop(index).result()
                    done[index] = result
                    if on_result:
                        on_result(result)
                while next_out in done:
                    yield done.pop(next_out)
                    next_out += 1

    def summarized(
        self,
        documents: Iterable[Document],
        on_result: Callable[[DocumentResult], None] | None = None,
    ) -> tuple[list[DocumentResult], BatchSummary]:
        """Every result, in input order, and the run's totals (prefix, tokens, wall time)."""
        summary = BatchSummary(prefix_tokens=self.warm() if self.options.warm_prefix else 0)
        started = time.perf_counter()
        results = []
        for result in self.run(documents, on_result):
            summary.add(result)
            results.append(result)
        summary.wall_seconds = time.perf_counter() - started
        return results, summary

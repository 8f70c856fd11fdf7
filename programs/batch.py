"""The batch driver: one task over many documents, the server kept full, results in input order.

Warm the prefix once (the fork point), then keep `concurrency` documents in flight — a fixed pool
of workers, not a thread per document — and hand results back in input order as soon as the
next one is ready. Every document ends as a result: a validated object, or an error that names
what went wrong. One bad document never sinks the batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from forkpoint.programs import program
from forkpoint.programs.documents import Document
from forkpoint.programs.errors import ForkpointError, OutputError, RuntimeUnavailable
from forkpoint.programs.grounding import ground, ungrounded_required
from forkpoint.programs.prompt import TaskPrompt
from forkpoint.programs.results import DocumentResult, Usage

RETRY_DELAYS = (1.0, 4.0)  # seconds before the 2nd and 3rd try of a document


@dataclass(frozen=True)
class BatchOptions:
    concurrency: int = 32
    temperature: float = 0.0
    max_output_tokens: int | None = None  # None: the task's own limit
    warm_prefix: bool = True  # False only to measure what the fork-point warm-up buys

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")


class BatchDriver:
    """Runs one task prompt against one SGLang server."""

    def __init__(self, url: str, prompt: TaskPrompt, options: BatchOptions | None = None) -> None:
        self.prompt = prompt
        self.options = options or BatchOptions()
        try:
            self.endpoint = program.connect(url)
        except OSError as exc:
            raise RuntimeUnavailable(
                f"no SGLang server answers at {url}: {exc}",
                hint="start one with `forkpoint runtime up`, or omit --server-url",
            ) from exc
        self.prefix_tokens: int | None = None

    def warm(self) -> int:
        """Compute the prefix once on the server; returns its token count."""
        meta = self._with_retries(lambda: program.run_warm(self.endpoint, self.prompt.prefix))
        self.prefix_tokens = int(meta["prompt_tokens"])
        return self.prefix_tokens

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
                    pending[index] = pool.submit(self.extract_one, index, doc)
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

    def extract_one(self, index: int, doc: Document) -> DocumentResult:
        """Extract one document (blocking, thread-safe). Never raises for a document's fault;
        raises RuntimeUnavailable only when the server stays unreachable through the retries.

        An answer that fails validation (the output model's own validators, which no grammar
        can express) is re-asked up to the task's `max_reasks` times, each time with the
        earlier answers and their errors after the fork point; the prefix stays shared."""
        started = time.perf_counter()
        if doc.error is not None:
            return DocumentResult.failed(index, doc, doc.error, seconds=0.0)
        task = self.prompt.task
        max_tokens = self.options.max_output_tokens or task.max_output_tokens
        usage = Usage()
        attempts: list[tuple[str, str]] = []  # (answer, validation error) so far
        while True:
            try:
                text, meta = self._with_retries(
                    lambda: program.run_extract(
                        self.endpoint,
                        prefix=self.prompt.prefix,
                        turn=self.prompt.reask(doc.text or "", attempts),
                        json_schema=task.constraint.schema_json,
                        max_tokens=max_tokens,
                        temperature=self.options.temperature,
                    )
                )
            except RuntimeUnavailable:
                raise  # not this document's fault: the caller decides (abort, or retry later)
            except ForkpointError as exc:
                return DocumentResult.failed(index, doc, str(exc), time.perf_counter() - started)
            except RuntimeError as exc:  # the frontend's error for a non-200 answer (too long)
                reason = f"the runtime rejected the document: {exc}"
                return DocumentResult.failed(index, doc, reason, time.perf_counter() - started)
            usage = usage + Usage.from_meta(meta)
            seconds = time.perf_counter() - started
            tried = len(attempts) + 1
            finish = meta.get("finish_reason") or {}
            if finish.get("type") == "length":
                reason = (
                    f"output stopped at the {max_tokens}-token limit before the JSON was complete "
                    "(finish_reason=length); bound the task's lists and strings, or raise its limit"
                )
                return DocumentResult.truncated(index, doc, reason, usage, seconds, text)
            try:
                data = task.constraint.validate(text)
            except OutputError as exc:
                if len(attempts) < task.max_reasks:
                    attempts.append((text, exc.message))
                    continue
                reason = f"{exc.message} (after {tried} attempt{'s' * (tried > 1)})"
                return DocumentResult(index, doc.name, "invalid", error=reason, usage=usage,
                                      seconds=seconds, raw=text, sha256=doc.sha256,
                                      attempts=tried)  # fmt: skip
            found = ground(_plain(data), doc.text or "")
            review = ungrounded_required(found, task.grounded_fields)
            return DocumentResult.succeeded(index, doc, data, usage, seconds,
                                            grounding=tuple(found), review=tuple(review),
                                            attempts=tried)  # fmt: skip

    def _with_retries(self, call):
        for delay in (*RETRY_DELAYS, None):
            try:
                return call()
            except OSError as exc:  # refused/reset connection or a 5xx: the server's trouble
                if delay is None:
                    raise RuntimeUnavailable(f"the SGLang server stopped answering: {exc}") from exc
                time.sleep(delay)
        raise AssertionError("unreachable")


def _plain(data):
    return data.model_dump(mode="json") if hasattr(data, "model_dump") else data

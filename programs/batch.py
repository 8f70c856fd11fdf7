"""The batch driver: one task over many documents, the server kept full, results in input order.

Warm the prefix once (the fork point), then keep `concurrency` documents in flight — a fixed pool
of workers, not a thread per document — and hand results back in input order as soon as the
next one is ready. Every document ends as a result: a validated object, or an error that names
what went wrong. One bad document never sinks the batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import httpx

from forkpoint.programs import long_documents, program
from forkpoint.programs.documents import Document
from forkpoint.programs.errors import (
    DocumentError,
    ForkpointError,
    OutputError,
    RuntimeUnavailable,
)
from forkpoint.programs.grounding import ground, ungrounded_required
from forkpoint.programs.prompt import TaskPrompt
from forkpoint.programs.results import DocumentResult, Usage
from forkpoint.runtime.served_model import ServedModel, check_served_format

RETRY_DELAYS = (1.0, 4.0)  # seconds before the 2nd and 3rd try of a document
_UNKNOWN = object()


@dataclass(frozen=True)
class _Answer:
    """One text's way through the program: ok (with data), invalid, truncated or failed."""

    status: str
    usage: Usage
    attempts: int
    data: Any = None
    error: str | None = None
    raw: str = ""


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
                hint="start one with `forkpoint runtime up`, or omit --sglang-url",
            ) from exc
        # The endpoint asked the server for its model info when it connected: check the
        # prompt's format against the served model from that answer, no request of its own.
        check_served_format(ServedModel.from_info(url, self.endpoint.model_info),
                            prompt.chat_format.name)  # fmt: skip
        self.prefix_tokens: int | None = None
        self.counter = long_documents.TokenCounter(url)
        self._context: int | None | object = _UNKNOWN

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

    @property
    def context_length(self) -> int | None:
        """The runtime's context length (asked once); None if the runtime cannot say."""
        if self._context is _UNKNOWN:
            self._context = self.counter.context_length()
        return self._context

    def extract_one(self, index: int, doc: Document) -> DocumentResult:
        """Extract one document (blocking, thread-safe). Never raises for a document's fault;
        raises RuntimeUnavailable only when the server stays unreachable through the retries.

        A document longer than the runtime's context is an error or, with the task's
        `long_documents="chunk"`, extracted in chunks whose answers are merged."""
        started = time.perf_counter()
        if doc.error is not None:
            return DocumentResult.failed(index, doc, doc.error, seconds=0.0)
        task = self.prompt.task
        max_tokens = self.options.max_output_tokens or task.max_output_tokens
        texts = [doc.text or ""]
        if self.context_length is not None:
            try:
                texts = long_documents.fit(
                    doc.name, doc.text or "", prompt=self.prompt, counter=self.counter,
                    context=self.context_length, output_tokens=max_tokens,
                    policy=task.long_documents, overlap_tokens=task.chunk_overlap_tokens,
                )  # fmt: skip
            except DocumentError as exc:
                return DocumentResult.failed(index, doc, str(exc), time.perf_counter() - started)
            except httpx.HTTPError as exc:
                raise RuntimeUnavailable(f"could not count the document's tokens: {exc}") from exc
        answers = [self._answer(text, max_tokens) for text in texts]
        usage = sum((a.usage for a in answers), Usage())
        seconds = time.perf_counter() - started
        attempts = max(a.attempts for a in answers)
        for i, answer in enumerate(answers):
            where = f"chunk {i + 1} of {len(answers)}: " if len(answers) > 1 else ""
            error = where + (answer.error or "")
            if answer.status == "failed":
                return DocumentResult.failed(index, doc, error, seconds, usage=usage,
                                             chunks=len(answers))  # fmt: skip
            if answer.status in ("truncated", "invalid"):
                return DocumentResult(index, doc.name, answer.status, error=error, usage=usage,
                                      seconds=seconds, raw=answer.raw, sha256=doc.sha256,
                                      attempts=attempts, chunks=len(answers))  # fmt: skip
        data, notes = answers[0].data, []
        if len(answers) > 1:
            merged, notes = long_documents.merge([_plain(a.data) for a in answers],
                                                 task.constraint.schema)  # fmt: skip
            try:
                data = task.constraint.validate(json.dumps(merged))
            except OutputError as exc:
                reason = f"the {len(answers)} chunks' merged answer: {exc.message}"
                return DocumentResult(index, doc.name, "invalid", error=reason, usage=usage,
                                      seconds=seconds, raw=json.dumps(merged), sha256=doc.sha256,
                                      attempts=attempts, chunks=len(answers))  # fmt: skip
        found = ground(_plain(data), doc.text or "")
        review = notes + ungrounded_required(found, task.grounded_fields)
        return DocumentResult.succeeded(index, doc, data, usage, seconds,
                                        grounding=tuple(found), review=tuple(review),
                                        attempts=attempts, chunks=len(answers))  # fmt: skip

    def _answer(self, text: str, max_tokens: int) -> _Answer:
        """One text through the program, re-asked on validation failures (the output model's
        own validators, which no grammar expresses) up to the task's `max_reasks`, each time
        with the earlier answers and their errors after the fork point."""
        task = self.prompt.task
        usage = Usage()
        attempts: list[tuple[str, str]] = []  # (answer, validation error) so far
        while True:
            try:
                raw, meta = self._with_retries(
                    lambda: program.run_extract(
                        self.endpoint,
                        prefix=self.prompt.prefix,
                        turn=self.prompt.reask(text, attempts),
                        json_schema=task.constraint.schema_json,
                        max_tokens=max_tokens,
                        temperature=self.options.temperature,
                    )
                )
            except RuntimeUnavailable:
                raise  # not this document's fault: the caller decides (abort, or retry later)
            except ForkpointError as exc:
                return _Answer("failed", usage, len(attempts) + 1, error=str(exc))
            except RuntimeError as exc:  # the frontend's error for a non-200 answer
                reason = f"the runtime rejected the document: {exc}"
                return _Answer("failed", usage, len(attempts) + 1, error=reason)
            usage = usage + Usage.from_meta(meta)
            tried = len(attempts) + 1
            if (meta.get("finish_reason") or {}).get("type") == "length":
                reason = (
                    f"output stopped at the {max_tokens}-token limit before the JSON was complete "
                    "(finish_reason=length); bound the task's lists and strings, or raise its limit"
                )
                return _Answer("truncated", usage, tried, error=reason, raw=raw)
            try:
                return _Answer("ok", usage, tried, data=task.constraint.validate(raw))
            except OutputError as exc:
                if len(attempts) < task.max_reasks:
                    attempts.append((raw, exc.message))
                    continue
                reason = f"{exc.message} (after {tried} attempt{'s' * (tried > 1)})"
                return _Answer("invalid", usage, tried, error=reason, raw=raw)

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

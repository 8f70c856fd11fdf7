"""The extractor: one document through the task's program, no scheduling.

fit (chunk a long document) → the text's copy-field grammar, if the task has copy fields →
ask after the fork point → validate, re-ask with the errors → each value's confidence from the
answer's token log-probabilities (confidence.py) → merge chunks → ground string values → one
DocumentResult. Thread-safe: a scheduler (batch.py) or the gateway's workers call
`extract` from many threads against one warmed prefix. Never raises for a document's fault;
raises RuntimeUnavailable only when the runtime stays unreachable.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, TypeVar

from forkpoint.errors import (
    DocumentError,
    ForkpointError,
    OutputError,
    RuntimeUnavailable,
)
from forkpoint.programs import confidence as confidences
from forkpoint.programs import program
from forkpoint.programs.copy_grammar import DocumentGrammars
from forkpoint.programs.documents import long_documents
from forkpoint.programs.documents.document import Document
from forkpoint.programs.grammar_workers import WORKERS
from forkpoint.programs.grounding import ground, ungrounded_required
from forkpoint.programs.results.record import DocumentResult, Usage
from forkpoint.programs.target import NOT_ANSWERING, Target
from forkpoint.programs.tasks.task import ExtractionTask
from forkpoint.runtime.served_model import ServedModel, check_served_format

RETRY_DELAYS = (1.0, 4.0)  # seconds before the 2nd and 3rd try of a document
# Chunks one document may become (a caller sets max_chunk_tokens: 64 tokens of a 200k-character
# document would be ~800 chunks, each asked up to 1 + max_reasks times). Past it: an error.
MAX_CHUNKS_PER_DOCUMENT = 64
# Copy-field grammars of recent documents, shared by every extractor of the process (the
# gateway keeps one per task): keyed by task grammar and document hash.
GRAMMARS = DocumentGrammars()
T = TypeVar("T")


@dataclass(frozen=True)
class _Answer:
    """One text's way through the program: ok (with data), invalid, truncated or failed."""

    status: Literal["ok", "invalid", "truncated", "failed"]
    usage: Usage
    attempts: int
    data: Any = None
    error: str | None = None
    raw: str = ""
    confidence: dict[str, float] | None = None  # per value path, from the answer's logprobs


class Extractor:
    """One task against one SGLang server (a Target), one document at a time."""

    def __init__(
        self,
        target: Target,
        task: ExtractionTask,
        *,
        temperature: float | None = None,  # None: the task's sampling's
        max_output_tokens: int | None = None,  # None: the task's own limit
        deadline_seconds: float | None = None,  # one document's whole extraction; None: none
        max_chunks: int = MAX_CHUNKS_PER_DOCUMENT,
        confidence: bool = True,  # False: no logprobs asked, no confidence (measures their cost)
    ) -> None:
        self.target, self.prompt = target, target.prompt(task)
        self.confidence = confidence
        self.deadline_seconds, self.max_chunks = deadline_seconds, max_chunks
        self.max_output_tokens = max_output_tokens
        self.sampling = (
            task.sampling
            if temperature is None
            else task.sampling.model_copy(update={"temperature": temperature})
        )
        client = target.client()
        try:
            self.endpoint = program.connect(client)
        except RuntimeUnavailable as exc:
            raise RuntimeUnavailable(exc.message, hint=NOT_ANSWERING) from exc
        # The endpoint asked the server for its model info when it connected: check the
        # prompt's format against the served model from that answer, no request of its own.
        check_served_format(
            ServedModel.from_info(target.url, self.endpoint.model_info), target.chat_format
        )
        self.prefix_tokens: int | None = None
        self.counter = long_documents.TokenCounter(client)

    def retimed(self, target: Target, deadline_seconds: float | None) -> Extractor:
        """This extractor with `target`'s timeouts and another deadline: the same prompt,
        model, connections and warmed prefix; no runtime call to make it."""
        view = copy.copy(self)
        client = self.endpoint.client.retimed(target.timeouts)
        view.target, view.deadline_seconds = target, deadline_seconds
        view.endpoint, view.counter = (
            self.endpoint.with_client(client),
            long_documents.TokenCounter(client),
        )
        return view

    def bounded(self, seconds: float) -> Extractor:
        """This extractor with no runtime call waiting longer than `seconds` and one document's
        whole extraction bounded by them too (a thread abandoned at that deadline ends on its
        own, within the three tries)."""
        return self.retimed(self.target.bounded(seconds), deadline_seconds=seconds)

    def warm(self) -> int:
        """Compute the prefix once on the server; returns its token count."""
        task = self.prompt.task
        task.compile(copy_grammar=True)  # the schema side once, up front
        if task.copy_grammar is not None:
            WORKERS.start()  # and the processes that build the document side
        meta = self._with_retries(lambda: program.run_warm(self.endpoint, self.prompt.prefix))
        self.prefix_tokens = int(meta["prompt_tokens"])
        return self.prefix_tokens

    @cached_property
    def context_length(self) -> int | None:
        """The runtime's context length (asked once); None if the runtime cannot say."""
        return self.counter.context_length()

    def extract(self, index: int, doc: Document) -> DocumentResult:
        """Extract one document (blocking, thread-safe). Never raises for a document's fault;
        raises RuntimeUnavailable only when the server stays unreachable through the retries.

        A document longer than the runtime's context is an error or, with the task's
        `long_documents="chunk"`, extracted in chunks whose answers are merged (at most
        `max_chunks`). With `deadline_seconds`, one deadline covers every chunk and re-ask: the
        first ask always runs, no later one starts past the deadline (the document is then an
        error), so one extraction takes at most the deadline plus one runtime call."""
        started = time.perf_counter()
        ends = None if self.deadline_seconds is None else time.monotonic() + self.deadline_seconds
        if doc.error is not None:
            return DocumentResult.failed(index, doc, doc.error, seconds=0.0)
        task = self.prompt.task
        max_tokens = self.max_output_tokens or task.max_output_tokens
        texts = [doc.text or ""]
        if self.context_length is not None:
            try:
                texts = long_documents.fit(
                    doc.name,
                    doc.text or "",
                    prompt=self.prompt,
                    counter=self.counter,
                    context=self.context_length,
                    output_tokens=max_tokens,
                    policy=task.long_documents,
                    overlap_tokens=task.chunk_overlap_tokens,
                    max_chunk_tokens=task.max_chunk_tokens,
                )
            except DocumentError as exc:
                return DocumentResult.failed(index, doc, str(exc), time.perf_counter() - started)
        if len(texts) > self.max_chunks:
            reason = (
                f"{doc.name} would be {len(texts)} chunks; the limit is {self.max_chunks} "
                "(raise the task's max_chunk_tokens, or split the document)"
            )
            return DocumentResult.failed(index, doc, reason, time.perf_counter() - started)
        answers: list[_Answer] = []
        for text in texts:  # up to the first chunk that is not ok: the result is that one's
            answers.append(self._answer(text, max_tokens, ends, first=not answers))
            if answers[-1].status != "ok":
                break
        usage = sum((a.usage for a in answers), Usage())
        seconds = time.perf_counter() - started
        attempts = max(a.attempts for a in answers)
        for i, answer in enumerate(answers):
            where = f"chunk {i + 1} of {len(answers)}: " if len(answers) > 1 else ""
            error = where + (answer.error or "")
            if answer.status == "failed":
                return DocumentResult.failed(
                    index, doc, error, seconds, usage=usage, chunks=len(texts)
                )
            if answer.status == "truncated" or answer.status == "invalid":
                return DocumentResult(
                    index,
                    doc.name,
                    answer.status,
                    error=error,
                    usage=usage,
                    seconds=seconds,
                    raw=answer.raw,
                    sha256=doc.sha256,
                    attempts=attempts,
                    chunks=len(texts),
                )
        data, confidence = answers[0].data, answers[0].confidence
        notes: list[str] = []
        if len(answers) > 1:
            merged, notes = long_documents.merge(
                [_plain(a.data) for a in answers], task.constraint.schema
            )
            try:
                data = task.constraint.validate(json.dumps(merged))
            except OutputError as exc:
                reason = f"the {len(answers)} chunks' merged answer: {exc.message}"
                return DocumentResult(
                    index,
                    doc.name,
                    "invalid",
                    error=reason,
                    usage=usage,
                    seconds=seconds,
                    raw=json.dumps(merged),
                    sha256=doc.sha256,
                    attempts=attempts,
                    chunks=len(answers),
                )
            confidence = confidences.merge_chunks(
                merged, [(_plain(a.data), a.confidence) for a in answers]
            )
        found = ground(_plain(data), doc.text or "")
        review = notes + ungrounded_required(found, task.grounded_fields)
        review += confidences.unsure(_plain(data), confidence, task.review_below)
        return DocumentResult.succeeded(
            index,
            doc,
            data,
            usage,
            seconds,
            grounding=tuple(found),
            review=tuple(review),
            attempts=attempts,
            chunks=len(answers),
            confidence=confidence,
        )

    def _answer(self, text: str, max_tokens: int, ends: float | None, first: bool) -> _Answer:
        """One text through the program, re-asked on validation failures (the output model's
        own validators, which no grammar expresses) up to the task's `max_reasks`, each time
        with the earlier answers and their errors after the fork point. A task with copy
        fields decodes with `text`'s own grammar (each chunk its own), re-asks too; a text over
        MAX_COPY_TEXT_CHARS with the plain schema."""
        task = self.prompt.task
        usage, ebnf = Usage(), None
        if task.copy_grammar is not None:
            try:
                ebnf, seconds = GRAMMARS.get(task.copy_grammar, text)
            except ForkpointError as exc:  # an empty text: nothing to copy from
                return _Answer("failed", usage, 1, error=str(exc))
            usage = Usage(grammar_seconds=seconds)
        attempts: list[tuple[str, str]] = []  # (answer, validation error) so far
        while True:
            if ends is not None and time.monotonic() > ends and not (first and not attempts):
                late = f"the extraction passed its {self.deadline_seconds:g}-second deadline"
                if not attempts:  # a later chunk, never asked
                    return _Answer("failed", usage, 1, error=f"{late} before this chunk")
                raw, error = attempts[-1]  # the last answer stands, invalid, with its reason
                tried = len(attempts)
                reason = f"{error} (after {tried} attempt{'s' * (tried > 1)}; {late})"
                return _Answer("invalid", usage, tried, error=reason, raw=raw)
            try:
                raw, meta = self._with_retries(
                    lambda: program.run_extract(
                        self.endpoint,
                        prefix=self.prompt.prefix,
                        turn=self.prompt.reask(text, attempts),
                        json_schema=task.constraint.schema_json,
                        max_tokens=max_tokens,
                        sampling=self.sampling,
                        ebnf=ebnf,
                        logprobs=self.confidence,
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
                data = task.constraint.validate(raw)
            except OutputError as exc:
                if len(attempts) < task.max_reasks:
                    attempts.append((raw, exc.message))
                    continue
                reason = f"{exc.message} (after {tried} attempt{'s' * (tried > 1)})"
                return _Answer("invalid", usage, tried, error=reason, raw=raw)
            sure = confidences.confidences(raw, meta.get("output_token_logprobs"))
            return _Answer("ok", usage, tried, data=data, confidence=sure)

    def _with_retries(self, call: Callable[[], T]) -> T:
        for delay in (*RETRY_DELAYS, None):
            try:
                return call()
            except OSError as exc:  # refused/reset connection or a 5xx: the server's trouble
                if delay is None:
                    raise RuntimeUnavailable(f"the SGLang server stopped answering: {exc}") from exc
                time.sleep(delay)
        raise AssertionError("unreachable")


def _plain(data: Any) -> Any:  # a task's model instance, or JSON already
    return data.model_dump(mode="json") if hasattr(data, "model_dump") else data

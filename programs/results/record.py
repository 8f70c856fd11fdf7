"""What a batch produces: one result per document, and the totals a run reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from forkpoint.programs.documents.document import Document
from forkpoint.programs.grounding import Grounding

# ok: validated data. needs_review: validated data, but a field that must occur in the document
# does not. invalid: still failing the model's validators after the re-asks. truncated: stopped
# at the output token limit. error: anything else (unreadable document, runtime refusal...).
Status = Literal["ok", "needs_review", "invalid", "error", "truncated"]
WITH_DATA = ("ok", "needs_review")


@dataclass(frozen=True)
class Usage:
    """Token counts for one document, from SGLang's meta_info."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    spec_verify_ct: int = 0  # speculative verify steps (0: speculation off)
    grammar_seconds: float = 0.0  # building the documents' copy-field grammars (none: 0)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Usage:
        return cls(
            prompt_tokens=int(meta.get("prompt_tokens") or 0),
            cached_tokens=int(meta.get("cached_tokens") or 0),
            completion_tokens=int(meta.get("completion_tokens") or 0),
            spec_verify_ct=int(meta.get("spec_verify_ct") or 0),
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.cached_tokens + other.cached_tokens,
            self.completion_tokens + other.completion_tokens,
            self.spec_verify_ct + other.spec_verify_ct,
            self.grammar_seconds + other.grammar_seconds,
        )

    @property
    def accept_length(self) -> float | None:
        """SGLang's speculative accept length: output tokens per verify step."""
        return (
            round(self.completion_tokens / self.spec_verify_ct, 3) if self.spec_verify_ct else None
        )


@dataclass(frozen=True)
class DocumentResult:
    """One document's outcome. `data` is set when the status is ok or needs_review."""

    index: int
    name: str
    status: Status
    data: Any = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    raw: str | None = None  # the model's text when it did not validate, for inspection
    sha256: str | None = None  # of the document's content: names exactly what was extracted
    grounding: tuple[Grounding, ...] | None = None  # every string value: found where, or not
    review: tuple[str, ...] = ()  # why a needs_review result needs one
    attempts: int = 1  # 1 + re-asks after validation failures (the most any chunk needed)
    chunks: int = 1  # > 1: a long document extracted in chunks, answers merged
    # Per value path ("line_items[2].amount"): the probability the model gave the tokens that
    # wrote it (confidence.py), in [0, 1]; None when the runtime gave no logprobs.
    confidence: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def has_data(self) -> bool:
        return self.status in WITH_DATA

    @classmethod
    def succeeded(
        cls, index: int, doc: Document, data: Any, usage: Usage, seconds: float, **extra: Any
    ) -> DocumentResult:
        status: Status = "needs_review" if extra.get("review") else "ok"
        return cls(
            index,
            doc.name,
            status,
            data=data,
            usage=usage,
            seconds=seconds,
            sha256=doc.sha256,
            **extra,
        )

    @classmethod
    def failed(
        cls, index: int, doc: Document, error: str, seconds: float, **extra: Any
    ) -> DocumentResult:
        return cls(
            index, doc.name, "error", error=error, seconds=seconds, sha256=doc.sha256, **extra
        )

    @classmethod
    def truncated(
        cls, index: int, doc: Document, error: str, usage: Usage, seconds: float, raw: str
    ) -> DocumentResult:
        return cls(
            index,
            doc.name,
            "truncated",
            error=error,
            usage=usage,
            seconds=seconds,
            raw=raw,
            sha256=doc.sha256,
        )

    def json_data(self) -> Any:
        return self.data.model_dump(mode="json") if isinstance(self.data, BaseModel) else self.data

    def to_record(self) -> ResultRecord:
        usage = self.usage
        return ResultRecord(
            file=self.name,
            ok=self.ok,
            status=self.status,
            sha256=self.sha256,
            data=self.json_data() if self.has_data else None,
            error=self.error,
            review=list(self.review) or None,
            grounding=None if self.grounding is None else [g.to_json() for g in self.grounding],
            confidence=self.confidence,
            usage=RecordUsage(
                prompt_tokens=usage.prompt_tokens,
                cached_tokens=usage.cached_tokens,
                completion_tokens=usage.completion_tokens,
                spec_verify_ct=usage.spec_verify_ct or None,
                attempts=self.attempts,
                chunks=self.chunks if self.chunks > 1 else None,
                seconds=round(self.seconds, 3),
                grammar_seconds=round(usage.grammar_seconds, 4) if usage.grammar_seconds else None,
            ),
            raw=self.raw,
        )

    def to_json(self) -> dict[str, Any]:
        return self.to_record().to_json()

    @classmethod
    def from_json(cls, record: dict[str, Any], index: int = 0) -> DocumentResult:
        """A record read back (results file, gateway, store): `data` stays JSON."""
        return ResultRecord.model_validate(record).to_result(index)


class RecordUsage(BaseModel):
    """What one document cost: SGLang's token counts, re-asks, chunks and seconds."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    spec_verify_ct: int | None = None  # speculative verify steps; absent when speculation is off
    attempts: int = 1
    chunks: int | None = None  # absent for a document extracted in one piece
    seconds: float = 0.0
    # Building the document's copy-field grammar here (absent for a task without copy fields);
    # SGLang then compiles it on its side, in its grammar queue, within `seconds`.
    grammar_seconds: float | None = None


class ResultRecord(BaseModel):
    """One document's outcome as it is written and read everywhere: a line of the results file,
    a row of the gateway's store, a /v1 response, what the LAN client, eval and bench read.

    `ok` is `status == "ok"`; `data` is present exactly when the status is ok or needs_review.
    Keys whose value is None are left out of the JSON (inside `data` nothing is left out)."""

    file: str
    ok: bool
    status: Status
    sha256: str | None = None
    data: Any = None
    error: str | None = None
    review: list[str] | None = None
    grounding: list[dict[str, Any]] | None = None
    # value path → probability in [0, 1], 4 places (see forkpoint.programs.confidence)
    confidence: dict[str, float] | None = None
    usage: RecordUsage = RecordUsage()
    raw: str | None = None  # the model's text when it did not validate

    def to_json(self) -> dict[str, Any]:
        keep_data = self.status in WITH_DATA  # null data is still the answer
        fields = self.model_dump(mode="json").items()
        record = {k: v for k, v in fields if v is not None or (k == "data" and keep_data)}
        record["usage"] = self.usage.model_dump(exclude_none=True)
        return record

    def to_result(self, index: int = 0) -> DocumentResult:
        usage = self.usage
        return DocumentResult(
            index=index,
            name=self.file,
            status=self.status,
            data=self.data,
            error=self.error,
            usage=Usage(
                usage.prompt_tokens,
                usage.cached_tokens,
                usage.completion_tokens,
                usage.spec_verify_ct or 0,
                usage.grammar_seconds or 0.0,
            ),
            seconds=usage.seconds,
            raw=self.raw,
            sha256=self.sha256,
            grounding=None
            if self.grounding is None
            else tuple(Grounding.from_json(item) for item in self.grounding),
            review=tuple(self.review or ()),
            attempts=usage.attempts,
            chunks=usage.chunks or 1,
            confidence=self.confidence,
        )


@dataclass
class BatchSummary:
    """Running totals over a batch; read and write rates over the wall time."""

    total: int = 0
    ok: int = 0
    needs_review: int = 0
    failed: int = 0  # documents without data: error, invalid or truncated
    truncated: int = 0
    usage: Usage = field(default_factory=Usage)
    wall_seconds: float = 0.0
    prefix_tokens: int = 0
    skipped: int = 0  # already done in an earlier run (--resume)

    def add(self, result: DocumentResult) -> None:
        self.total += 1
        self.ok += result.ok
        self.needs_review += result.status == "needs_review"
        self.truncated += result.status == "truncated"
        self.failed += not result.has_data
        self.usage = self.usage + result.usage

    @property
    def read_tokens_per_second(self) -> float:
        return self.usage.prompt_tokens / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def write_tokens_per_second(self) -> float:
        return self.usage.completion_tokens / self.wall_seconds if self.wall_seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "documents": self.total,
            **({"already_done": self.skipped} if self.skipped else {}),
            "ok": self.ok,
            "needs_review": self.needs_review,
            "failed": self.failed,
            "truncated": self.truncated,
            "prefix_tokens": self.prefix_tokens,
            "prompt_tokens": self.usage.prompt_tokens,
            "cached_tokens": self.usage.cached_tokens,
            "output_tokens": self.usage.completion_tokens,
            **(
                {
                    "spec_verify_steps": self.usage.spec_verify_ct,
                    "accept_length": self.usage.accept_length,
                }
                if self.usage.spec_verify_ct
                else {}
            ),
            **(
                {"grammar_seconds": round(self.usage.grammar_seconds, 3)}
                if self.usage.grammar_seconds
                else {}
            ),
            "wall_seconds": round(self.wall_seconds, 3),
            "read_tokens_per_second": round(self.read_tokens_per_second, 1),
            "write_tokens_per_second": round(self.write_tokens_per_second, 1),
        }

"""What a batch produces: one result per document, and the totals a run reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from forkpoint.programs.documents import Document
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

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def has_data(self) -> bool:
        return self.status in WITH_DATA

    @classmethod
    def succeeded(
        cls, index: int, doc: Document, data: Any, usage: Usage, seconds: float, **extra: Any
    ):
        status = "needs_review" if extra.get("review") else "ok"
        return cls(index, doc.name, status, data=data, usage=usage, seconds=seconds,
                   sha256=doc.sha256, **extra)  # fmt: skip

    @classmethod
    def failed(cls, index: int, doc: Document, error: str, seconds: float, **extra: Any):
        return cls(index, doc.name, "error", error=error, seconds=seconds, sha256=doc.sha256,
                   **extra)  # fmt: skip

    @classmethod
    def truncated(cls, index, doc, error: str, usage: Usage, seconds: float, raw: str):
        return cls(index, doc.name, "truncated", error=error, usage=usage, seconds=seconds, raw=raw,
                   sha256=doc.sha256)  # fmt: skip

    def json_data(self) -> Any:
        return self.data.model_dump(mode="json") if isinstance(self.data, BaseModel) else self.data

    def to_json(self) -> dict[str, Any]:
        """The JSONL record: file, ok, status, sha256, data and/or error, review, grounding,
        usage."""
        record: dict[str, Any] = {"file": self.name, "ok": self.ok, "status": self.status}
        if self.sha256 is not None:
            record["sha256"] = self.sha256
        if self.has_data:
            record["data"] = self.json_data()
        if self.error is not None:
            record["error"] = self.error
        if self.review:
            record["review"] = list(self.review)
        if self.grounding is not None:
            record["grounding"] = [item.to_json() for item in self.grounding]
        record["usage"] = {
            "prompt_tokens": self.usage.prompt_tokens,
            "cached_tokens": self.usage.cached_tokens,
            "completion_tokens": self.usage.completion_tokens,
            **({"spec_verify_ct": self.usage.spec_verify_ct} if self.usage.spec_verify_ct else {}),
            "attempts": self.attempts,
            **({"chunks": self.chunks} if self.chunks > 1 else {}),
            "seconds": round(self.seconds, 3),
        }
        if self.raw is not None:
            record["raw"] = self.raw
        return record


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
            "wall_seconds": round(self.wall_seconds, 3),
            "read_tokens_per_second": round(self.read_tokens_per_second, 1),
            "write_tokens_per_second": round(self.write_tokens_per_second, 1),
        }

"""Evaluate a task on labelled documents: run the batch, score every field, compare variants."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from forkpoint.errors import DocumentError
from forkpoint.programs.confidence import field_confidence
from forkpoint.programs.documents.document import Document, read_text
from forkpoint.programs.evaluation.scoring import FieldScore, score_fields
from forkpoint.programs.grounding import field_pattern
from forkpoint.programs.results.record import BatchSummary, DocumentResult
from forkpoint.programs.tasks.task import ExtractionTask

if TYPE_CHECKING:
    from forkpoint.programs.batch import BatchDriver


@dataclass(frozen=True)
class Label:
    """The expected object for one document of the folder."""

    document: str
    expected: dict[str, Any]


def load_labels(path: Path, folder: Path, task: ExtractionTask) -> list[Label]:
    """Read labels.jsonl; every problem (bad line, missing file, bad object) is reported at once."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DocumentError(f"cannot read labels {path}: {exc.strerror or exc}") from exc
    records: list[Any] = []
    for line in lines:
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                records.append(None)
    names = {p.name for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()
    return check_labels(records, names, task, where=f"labels {path} do not match {folder}")


def check_labels(
    records: list[Any], documents: set[str], task: ExtractionTask, *, where: str
) -> list[Label]:
    """Validate label records against the documents there are and the task's model."""
    if task.output_model is None:
        raise DocumentError("evaluation needs a task with an output model, not an inline schema")
    problems: list[str] = []
    labels: list[Label] = []
    seen: set[str] = set()
    for number, record in enumerate(records, start=1):
        try:
            name, expected = record["document"], record["expected"]
        except (KeyError, TypeError):
            problems.append(f"line {number}: not a {{'document', 'expected'}} JSON object")
            continue
        if name in seen:
            problems.append(f"line {number}: {name} is labelled twice")
        seen.add(name)
        if name not in documents:
            problems.append(f"line {number}: {name} is not one of the documents")
        try:
            model: BaseModel = task.output_model.model_validate(expected)
        except ValidationError as exc:
            first = exc.errors()[0]
            field_path = ".".join(str(p) for p in first["loc"])
            problems.append(f"line {number}: {name}: {field_path}: {first['msg']}")
            continue
        labels.append(Label(name, model.model_dump(mode="json")))
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  (+{len(problems) - 20} more)" if len(problems) > 20 else ""
        raise DocumentError(f"{where} and {task.name}:\n  {shown}{more}")
    if not labels:
        raise DocumentError(f"{where}: no labels")
    return labels


@dataclass
class Evaluation:
    """One task variant's run over the labelled documents, scored."""

    task: ExtractionTask
    labels: list[Label]
    results: list[DocumentResult]
    summary: BatchSummary
    scores: dict[str, FieldScore] = field(init=False)

    def __post_init__(self) -> None:
        outcomes = zip(self.labels, self.results, strict=True)
        pairs = [(label.expected, _data(result)) for label, result in outcomes]
        self.scores = score_fields(self.task.field_names, pairs)

    @property
    def valid_rate(self) -> float:
        valid = self.summary.ok + self.summary.needs_review
        return valid / self.summary.total if self.summary.total else 0.0

    @property
    def grounded_rate(self) -> float | None:
        """Share of extracted string values found in their document (None: nothing to ground)."""
        found = [g for r in self.results if r.grounding for g in r.grounding]
        return sum(g.grounded for g in found) / len(found) if found else None

    def strings_in_document(self) -> dict[str, tuple[int, int]]:
        """Per string field (its path with "[]" for list items): how many values were extracted
        and how many of them occur verbatim in their document. A copy field's must all."""
        counts: dict[str, list[int]] = {}
        for result in self.results:
            for item in result.grounding or ():
                count = counts.setdefault(field_pattern(item.path), [0, 0])
                count[0] += 1
                count[1] += item.match == "exact"
        return {path: (values, verbatim) for path, (values, verbatim) in counts.items()}

    def confidence_points(self) -> list[tuple[float, bool]]:
        """(confidence, right) per (document, field) of the documents with data and confidences:
        the field's joint confidence (`field_confidence`) and its normalized match."""
        points = []
        for position, result in enumerate(self.results):
            if not result.has_data or not result.confidence:
                continue
            for name, score in self.scores.items():
                sure = field_confidence(result.confidence, name)
                if sure is not None:
                    points.append((sure, score.outcomes[position]))
        return points

    @property
    def truncated_rate(self) -> float:
        return self.summary.truncated / self.summary.total if self.summary.total else 0.0

    def diffs(self) -> list[dict[str, Any]]:
        """Per-document expected vs got, for the fields that differ (normalized rule)."""
        rows = []
        for label, result in zip(self.labels, self.results, strict=True):
            got = _data(result)
            wrong = {
                name: {
                    "expected": label.expected.get(name),
                    "got": None if got is None else got.get(name),
                }
                for name, score in self.scores.items()
                if not score.outcomes[result.index]
            }
            rows.append(
                {
                    "task": self.task.name,
                    "document": label.document,
                    "status": result.status,
                    "error": result.error,
                    "wrong": wrong,
                }
            )
        return rows


def run_evaluation(
    driver: BatchDriver, task: ExtractionTask, folder: Path, labels: list[Label]
) -> Evaluation:
    """Run `driver` (a warmed or cold BatchDriver for `task`) over the labelled documents."""
    documents: list[Document] = [read_text(folder / label.document) for label in labels]
    results, summary = driver.summarized(documents)
    return Evaluation(task, labels, results, summary)


def _data(result: DocumentResult) -> dict[str, Any] | None:
    return result.json_data() if result.has_data else None

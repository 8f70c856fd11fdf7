"""The answers the emulated runtime gives: one per document, found by the document's first line.

Two sources, and a report says which it used:
- `ground_truth`: the generated invoice corpus (perf/bench/corpus.py) states every field on
  fixed lines, so each document's correct answer is read back from its text (vendor and number
  from the first line, date and currency from the second, the `- ...: amount` lines, the total).
  These answers are valid and grounded by construction; they are shorter than a model's (no
  hallucinated due dates, no repeated items), so the emulated runtime times each answer at the
  recorded run's mean output length, not at its own (service.py).
- `from_results`: a results file of a real run (`forkpoint extract ... -o out.jsonl`, or a
  job's results), each record's `data` keyed by the document it came from.

A request is matched to its document by the first non-blank line of the document appearing as
a line of the prompt (the generated invoices each open with a distinct `Invoice X-00042-...`
line; a folder's documents need distinct first lines too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HEAD = re.compile(r"^Invoice (?P<number>\S+) from (?P<vendor>.+)$")
_ISSUED = re.compile(r"^Issued (?P<date>\d{4}-\d{2}-\d{2}); currency (?P<currency>[A-Z]{3})\.$")
_ITEM = re.compile(r"^- (?P<description>.+): (?P<amount>-?\d+\.\d{2})$")
_TOTAL = re.compile(r"^Total due: (?P<total>-?\d+\.\d{2}) (?P<currency>[A-Z]{3})$")


def first_line(text: str) -> str:
    """The key a document is found by: its first non-blank line, stripped."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def invoice_answer(text: str) -> dict[str, Any] | None:
    """The invoices task's correct answer for one generated invoice; None if `text` is not one."""
    lines = text.splitlines()
    head = _HEAD.match(lines[0]) if lines else None
    issued = _ISSUED.match(lines[1]) if len(lines) > 1 else None
    if head is None or issued is None:
        return None
    items, total = [], None
    for line in lines[2:]:
        if (item := _ITEM.match(line)) is not None:
            items.append({"description": item["description"], "amount": float(item["amount"])})
        elif (due := _TOTAL.match(line)) is not None:
            total = float(due["total"])
    if total is None:
        return None
    return {
        "vendor": head["vendor"],
        "invoice_number": head["number"],
        "issue_date": issued["date"],
        "due_date": None,
        "currency": issued["currency"],
        "total": total,
        "line_items": items[:6],  # the task's bound
    }


@dataclass(frozen=True)
class Recording:
    """Answer texts by document key, and where they came from."""

    answers: dict[str, str]
    source: str

    @classmethod
    def ground_truth(cls, documents: Iterable[tuple[str, str]]) -> Recording:
        """The generated corpus's own answers (raises ValueError for a document that is not a
        generated invoice)."""
        answers = {}
        for name, text in documents:
            answer = invoice_answer(text)
            if answer is None:
                raise ValueError(f"{name} is not a generated invoice: no ground truth to answer")
            answers[first_line(text)] = compact(answer)
        return cls(answers, "ground truth of the generated invoice corpus")

    @classmethod
    def from_results(cls, path: Path, documents: Iterable[tuple[str, str]]) -> Recording:
        """The answers of a real run's results file, for the `documents` it ran on (by name)."""
        texts = dict(documents)
        answers = {}
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("file") in texts and record.get("data") is not None:
                answers[first_line(texts[record["file"]])] = compact(record["data"])
        return cls(answers, f"recorded answers of {path.name}")

    def find(self, prompt: str) -> str | None:
        """The answer for the document in `prompt` (the last one whose key is a line of it)."""
        for line in reversed(prompt.splitlines()):
            answer = self.answers.get(line.strip())
            if answer is not None:
                return answer
        return None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"source": self.source, "answers": self.answers}) + "\n")

    @classmethod
    def load(cls, path: Path) -> Recording:
        body = json.loads(path.read_text())
        return cls(dict(body["answers"]), str(body["source"]))


def compact(answer: Any) -> str:
    """An answer as the tuned profile decodes it: JSON without whitespace, in schema order."""
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":"))

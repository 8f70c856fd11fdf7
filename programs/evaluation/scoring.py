"""How right an extraction is: per-field exact and normalized matches, list precision/recall/F1.

Pure functions over JSON data (the `model_dump(mode="json")` of expected and extracted objects),
so the arithmetic is testable on hand-made cases and the same for every task.

- exact: the JSON values are equal (1 and 1.0 are equal numbers).
- normalized: strings compared case- and whitespace-insensitively; numbers by value (also when one
  side is a numeric string like "1,234.00"); dates by the day they name.
- list fields: items matched one-to-one under the normalized rule; true positives, false
  positives and false negatives summed over documents give precision, recall and F1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+$")


def normalize_text(value: str) -> str:
    return _SPACE.sub(" ", value).strip().casefold()


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value.strip().replace(",", ""))
    return None


def _as_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    for parse in (date.fromisoformat, lambda t: datetime.fromisoformat(t).date()):
        try:
            return parse(text)
        except ValueError:
            continue
    for pattern in ("%d %b %Y", "%d %B %Y", "%B %d, %Y", "%b %d, %Y", "%d/%m/%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


class _Failed:
    def __repr__(self) -> str:
        return "FAILED"


FAILED = _Failed()  # the "value" of every field of a document whose extraction failed


def exact_match(expected: Any, got: Any) -> bool:
    return expected == got


def normalized_match(expected: Any, got: Any) -> bool:
    """Equal up to case/whitespace, numeric formatting and date formatting (recursively)."""
    if expected is None or got is None:
        return expected is None and got is None
    if isinstance(expected, dict) and isinstance(got, dict):
        keys = expected.keys() | got.keys()
        return all(normalized_match(expected.get(k), got.get(k)) for k in keys)
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(map(normalized_match, expected, got))
    a, b = _as_number(expected), _as_number(got)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    d1, d2 = _as_date(expected), _as_date(got)
    if d1 is not None and d2 is not None:
        return d1 == d2
    if isinstance(expected, str) and isinstance(got, str):
        return normalize_text(expected) == normalize_text(got)
    return expected == got


def match_items(expected: list, got: list) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives), one-to-one under normalized_match."""
    unmatched = list(got)
    hits = 0
    for item in expected:
        for i, candidate in enumerate(unmatched):
            if normalized_match(item, candidate):
                hits += 1
                del unmatched[i]
                break
    return hits, len(unmatched), len(expected) - hits


@dataclass
class FieldScore:
    """Counts for one field over many documents."""

    documents: int = 0
    exact: int = 0
    normalized: int = 0
    is_list: bool = False
    tp: int = 0
    fp: int = 0
    fn: int = 0
    outcomes: list[bool] = field(default_factory=list)  # normalized hit per document, in order

    def add(self, expected: Any, got: Any) -> None:
        self.documents += 1
        self.exact += exact_match(expected, got)
        hit = normalized_match(expected, got)
        self.normalized += hit
        self.outcomes.append(hit)
        if isinstance(expected, list):
            self.is_list = True
            tp, fp, fn = match_items(expected, got if isinstance(got, list) else [])
            self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn

    @property
    def exact_accuracy(self) -> float:
        return self.exact / self.documents if self.documents else 0.0

    @property
    def normalized_accuracy(self) -> float:
        return self.normalized / self.documents if self.documents else 0.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score_fields(
    fields: Iterable[str], pairs: Iterable[tuple[dict[str, Any], dict[str, Any] | None]]
) -> dict[str, FieldScore]:
    """Score (expected, extracted-or-None) pairs; a failed document misses every field."""
    scores = {name: FieldScore() for name in fields}
    for expected, got in pairs:
        for name, score in scores.items():
            want = expected.get(name)
            # A failed document has no value at all, which never matches, not even a null.
            score.add(want, FAILED if got is None else got.get(name))
    return scores


def paired_difference(a: list[bool], b: list[bool]) -> tuple[int, int, float]:
    """Exact McNemar test on paired per-document outcomes: (a-only hits, b-only hits, p-value)."""
    if len(a) != len(b):
        raise ValueError("paired outcomes must cover the same documents")
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    n = only_a + only_b
    if n == 0:
        return 0, 0, 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2**n
    return only_a, only_b, min(1.0, 2 * tail)

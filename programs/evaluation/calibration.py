"""Does confidence mean anything: accuracy by confidence bin, and the AUROC of confidence for
right vs wrong values.

Field-level: one point per (document, top-level field) of a document with data and confidences,
its confidence the joint probability of the field's values (`confidence.field_confidence`) and
its outcome the normalized match `scoring.py` gives that field. Pure functions, so the
arithmetic is tested on hand-made cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BINS = (0.0, 0.5, 0.8, 0.95, 1.0)  # [0, .5), [.5, .8), [.8, .95), [.95, 1]


def auroc(points: Sequence[tuple[float, bool]]) -> float | None:
    """The area under the ROC curve of confidence for right (True) vs wrong values: the chance
    that a right value has a higher confidence than a wrong one, ties counting half (the
    Mann-Whitney U over the product of the class sizes). None without both classes."""
    right = sum(1 for _, ok in points if ok)
    wrong = len(points) - right
    if not right or not wrong:
        return None
    ordered = sorted(points, key=lambda point: point[0])
    rank_sum, i = 0.0, 0
    while i < len(ordered):  # average ranks over ties (ranks from 1)
        j = i
        while j < len(ordered) and ordered[j][0] == ordered[i][0]:
            j += 1
        average = (i + 1 + j) / 2
        rank_sum += average * sum(1 for _, ok in ordered[i:j] if ok)
        i = j
    u = rank_sum - right * (right + 1) / 2
    return u / (right * wrong)


@dataclass(frozen=True)
class Bin:
    low: float
    high: float  # exclusive, but the last bin holds 1.0
    values: int
    right: int

    @property
    def accuracy(self) -> float | None:
        return self.right / self.values if self.values else None

    def to_json(self) -> dict[str, Any]:
        accuracy = self.accuracy
        return {
            "bin": f"[{self.low:g}, {self.high:g}{']' if self.high == BINS[-1] else ')'}",
            "values": self.values,
            "right": self.right,
            "accuracy": None if accuracy is None else round(accuracy, 4),
        }


def bins(points: Sequence[tuple[float, bool]], edges: Sequence[float] = BINS) -> list[Bin]:
    """Values and right values per confidence bin, [edge, next edge), the last one closed."""
    out = []
    for k, (low, high) in enumerate(zip(edges, edges[1:], strict=False)):
        last = k == len(edges) - 2
        inside = [ok for p, ok in points if low <= p < high or (last and p == high)]
        out.append(Bin(low, high, len(inside), sum(inside)))
    return out


def calibration(points: Sequence[tuple[float, bool]]) -> dict[str, Any]:
    """The report's confidence section: values, right, AUROC and the bins."""
    area = auroc(points)
    return {
        "values": len(points),
        "right": sum(ok for _, ok in points),
        "auroc": None if area is None else round(area, 4),
        "bins": [b.to_json() for b in bins(points)],
    }

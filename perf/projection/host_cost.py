"""The scheduler's host time per decode step, as measured by perf/studies/host_cost.py on the
real SGLang scheduler (CPU, cpu-small, a grammar on every request): thread-CPU milliseconds of
the phases a GPU waits for (NGRAM drafting and tree links, the xgrammar masks, batch
preparation, scheduling, result processing), fitted per draft count as fixed + per-request ×
batch, and the median per prefill batch. Other draft counts are interpolated linearly in the
draft count (beyond the largest measured, extrapolated from the last two)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from forkpoint.perf import RECORDS

KIND = "host-cost"


@dataclass(frozen=True)
class HostCurve:
    source: str  # the results file
    machine: str
    fits: dict[int, tuple[float, float]]  # drafts → (fixed ms, ms per request), grammar on
    plain_fits: dict[int, tuple[float, float]]  # the same without the grammar phase
    prefill_ms: float  # per prefill batch

    def ms(self, batch: float, drafts: int, grammar: bool = True) -> float:
        """Host milliseconds of one decode step at `batch` requests verifying `drafts` tokens."""
        fits = self.fits if grammar else self.plain_fits
        counts = sorted(fits)
        if drafts in fits:
            return _line(fits[drafts], batch)
        low = max([c for c in counts if c < drafts] or counts[:1])
        high = min([c for c in counts if c > drafts] or counts[-1:])
        if low == high:  # outside the measured counts: the nearest two
            low, high = (counts[-2], counts[-1]) if drafts > counts[-1] else (counts[0], counts[1])
        a, b = _line(fits[low], batch), _line(fits[high], batch)
        return max(0.0, a + (b - a) * (drafts - low) / (high - low))


def _line(fit: tuple[float, float], batch: float) -> float:
    return max(0.0, fit[0] + fit[1] * batch)


def newest(records: Path = RECORDS) -> Path:
    found = sorted(records.glob(f"{KIND}-*.json"))
    if not found:
        raise SystemExit(
            f"no {KIND}-*.json in {records}: run perf/studies/host_cost.py (the projection's "
            "host time per step is measured, not assumed)"
        )
    return found[-1]


def load(path: Path | None = None) -> HostCurve:
    path = path or newest()
    data = json.loads(path.read_text())
    settings = data["settings"]

    def fits(key: str) -> dict[int, tuple[float, float]]:
        return {int(d): (s[key]["fixed_ms"], s[key]["per_request_ms"]) for d, s in settings.items()}

    prefill = [s["prefill_host_ms"] for s in settings.values() if s.get("prefill_host_ms")]
    return HostCurve(
        source=path.name,
        machine=data.get("machine", ""),
        fits=fits("fit_cpu"),
        plain_fits=fits("fit_cpu_no_grammar"),
        prefill_ms=sorted(prefill)[len(prefill) // 2] if prefill else 0.0,
    )

"""The job in Mixtral's tokens, as perf/studies/mixtral_tokens.py counted it (Mixtral's own
v1 tokenizer from mistral_common, offline): the committed count for a report's corpus, and the
report's job rescaled to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forkpoint.perf import RECORDS

KIND = "mixtral-tokens"


def newest(spec: dict[str, Any], records: Path = RECORDS) -> dict[str, Any] | None:
    """The newest committed count for this corpus spec, if any."""
    for path in sorted(records.glob(f"{KIND}-*.json"), reverse=True):
        data = json.loads(path.read_text())
        if data.get("counts", {}).get("corpus") == spec:
            return data["counts"] | {"file": path.name}
    return None


def as_mixtral(job: Any, counts: dict[str, Any]) -> Any:
    """`job` (gpu_projection.Job) in Mixtral's tokens: prompts and prefix as counted, the
    tokens computed after prefix reuse as the prompts less what the run served from the cache
    (its prefix share, scaled), the answers by the reference answers' ratio."""
    from dataclasses import replace

    cached = job.prompt_tokens - job.computed_prefill_tokens
    reused = cached / job.prefix_tokens if job.prefix_tokens else 0.0  # prefixes served
    ratio = counts["answer_tokens"] / counts["smollm2_answer_tokens"]
    return replace(
        job,
        prompt_tokens=counts["prompt_tokens"],
        prefix_tokens=counts["prefix_tokens"],
        computed_prefill_tokens=round(counts["prompt_tokens"] - reused * counts["prefix_tokens"]),
        output_tokens=round(job.output_tokens * ratio),
        tokenizer=f"mixtral ({counts['file']})",
    )

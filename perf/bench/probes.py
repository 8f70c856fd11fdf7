"""Two measurements of a running SGLang server that the GPU projection models
(perf/projection/project.py): prefill throughput with the server full, and the time of one
decode step at the running batch. Both go straight to `/generate` (through the runtime client,
no extractor), so they time the server, not forkpoint.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from forkpoint.perf.bench.direct import empty_cache, generate
from forkpoint.programs.prompt import TaskPrompt
from forkpoint.runtime.client import RuntimeClient


def _all_at_once(
    client: RuntimeClient, texts: list[str], sampling: dict[str, Any]
) -> tuple[float, list]:
    """Every text sent at once; (seconds until the last answer, their meta_info). Each request
    is bounded by the client's `generate` timeout (a full batch on a slow machine, not a hang)."""
    with ThreadPoolExecutor(len(texts)) as pool:
        started = time.perf_counter()
        answers = list(pool.map(lambda t: generate(client, t, sampling), texts))
        return time.perf_counter() - started, [a["meta_info"] for a in answers]


def prefill_rate(
    client: RuntimeClient, prompt: TaskPrompt, documents: list[str]
) -> dict[str, float]:
    """Prompt tokens computed per second with every document in at once and one token out each:
    the prefix is warmed first, so what is computed is what a job computes."""
    empty_cache(client)
    _all_at_once(client, [prompt.prefix], {"max_new_tokens": 0})
    seconds, metas = _all_at_once(
        client, [prompt.full(d) for d in documents], {"max_new_tokens": 1, "temperature": 0}
    )
    computed = sum(m["prompt_tokens"] - (m.get("cached_tokens") or 0) for m in metas)
    return {
        "prefill_tokens_per_second": round(computed / seconds, 1),
        "prefill_computed_tokens": computed,
        "prefill_requests": len(documents),
        "prefill_seconds": round(seconds, 3),
    }


def decode_step(client: RuntimeClient, batch: int, steps: int) -> dict[str, float | int | None]:
    """Seconds per decode step with `batch` sequences running: `batch` short distinct prompts
    asked for 1 token, then for 1 + `steps` tokens (EOS ignored); the difference is `steps`
    decode steps (fewer verify steps when the server speculates: counted from spec_verify_ct).
    """
    texts = [f"Request {i}: count upwards from {i * 7} in words." for i in range(batch)]
    empty_cache(client)
    sampling = {"temperature": 0, "ignore_eos": True}
    one, first = _all_at_once(client, texts, {**sampling, "max_new_tokens": 1})
    empty_cache(client)
    many, metas = _all_at_once(client, texts, {**sampling, "max_new_tokens": 1 + steps})
    verify = [
        (m.get("spec_verify_ct") or 0) - (f.get("spec_verify_ct") or 0)
        for m, f in zip(metas, first, strict=True)
    ]
    outputs = [
        m["completion_tokens"] - f["completion_tokens"] for m, f in zip(metas, first, strict=True)
    ]
    taken = statistics.mean(verify) if all(verify) else steps
    return {
        "decode_step_seconds": round(max(many - one, 0.0) / max(taken, 1), 5),
        "decode_batch": batch,
        "decode_steps": round(taken, 2),
        "accept_length": round(sum(outputs) / sum(verify), 3) if all(verify) else None,
    }

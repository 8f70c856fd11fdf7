"""One job projected onto one server setup: the running batch, prefill and decode seconds, and
how they move with each assumption and each setting. Built on the step model (gpu_step)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

from forkpoint.perf.projection.gpu_assumptions import RANGES, SCENARIOS, Assumptions
from forkpoint.perf.projection.gpu_model import SGLANG_GRAPH_MAX_BS
from forkpoint.perf.projection.gpu_step import (
    Setup,
    decode_step,
    pool_tokens,
    prefill_seconds_per_token,
    tokens_per_step,
)
from forkpoint.perf.projection.prefill_chunk import steady_chunk

# Accept lengths are quoted at 8 draft tokens: the bench report's (cpu-small profile) and the
# mixtral-awq-2x4090 profile both set num_draft_tokens=8 (runtime/profiles.py).
REFERENCE_DRAFTS = 8
# assumption: probes.decode_step's prompts are ~15 tokens and it times 32 steps, so its
# sequences hold ~32 tokens on average while it measures.
PROBE_CONTEXT = 32


@dataclass(frozen=True)
class Job:
    """What a measured run says about the job, independent of the hardware."""

    docs: int
    prompt_tokens: int
    computed_prefill_tokens: int  # prompt tokens minus those served from the prefix cache
    output_tokens: int
    prefix_tokens: int  # the task prefix every document shares, stored once in the radix cache
    accept_length: float  # at REFERENCE_DRAFTS draft tokens
    tokenizer: str = "as measured"  # whose tokens the counts are

    @property
    def doc_tokens(self) -> float:
        return self.prompt_tokens / self.docs - self.prefix_tokens

    @property
    def output_per_doc(self) -> float:
        return self.output_tokens / self.docs

    @property
    def sequence_tokens(self) -> float:
        """KV tokens a running sequence holds on its own when it finishes."""
        return self.doc_tokens + self.output_per_doc

    @property
    def context(self) -> float:
        """Mean tokens a decoding sequence attends to, the shared prefix included."""
        return self.prefix_tokens + self.doc_tokens + self.output_per_doc / 2

    @property
    def tokens(self) -> int:
        """Read and written."""
        return self.prompt_tokens + self.output_tokens


@dataclass(frozen=True)
class Anchor:
    """Components `forkpoint calibrate` measured on the real server."""

    profile: str
    prefill_tokens_per_second: float
    decode_step_seconds: float
    decode_batch: int
    draft_tokens: int | None
    accept_length: float | None


@dataclass(frozen=True)
class Outcome:
    batch: float
    pool_tokens: int
    tokens_per_step: float  # written per sequence per verify step, capped by the draft tree
    prefill_chunk: float  # tokens per prefill batch in steady state
    prefill_tokens_per_s: float
    step_ms: float
    write_tokens_per_s: float
    prefill_s: float
    decode_s: float
    total_s: float
    minutes_per_1m: float


def accept_at(drafts: int, accept_length: float) -> float:
    """Tokens written per step with `drafts` verified tokens, given the accept length at
    REFERENCE_DRAFTS. assumption: each next draft token is accepted with one probability p,
    so a(d) = (1 - p^d) / (1 - p); p is solved from the reference."""
    if drafts <= 1 or accept_length <= 1:
        return 1.0
    if accept_length >= REFERENCE_DRAFTS:
        return float(drafts)
    low, high = 0.0, 1.0
    for _ in range(60):
        p = (low + high) / 2
        if _chain(p, REFERENCE_DRAFTS) < accept_length:
            low = p
        else:
            high = p
    return _chain(p, drafts)


def accept_needed(drafts: int, tokens_per_step: float) -> float:
    """The accept length at REFERENCE_DRAFTS that writes `tokens_per_step` with `drafts`
    (the inverse of accept_at); infinite when `drafts` cannot write that many."""
    if tokens_per_step >= drafts:
        return float("inf")
    low, high = 1.0, float(REFERENCE_DRAFTS)
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if accept_at(drafts, mid) < tokens_per_step else (low, mid)
    return high


def written_per_step(setup: Setup, accept_length: float) -> float:
    """Tokens a sequence writes per step on `setup`: the accept length at REFERENCE_DRAFTS
    converted to its draft count, then capped by what its draft tree can accept."""
    return tokens_per_step(setup, accept_at(setup.draft_tokens, accept_length))


def _chain(p: float, drafts: int) -> float:
    return sum(p**i for i in range(drafts))


def step_seconds(
    setup: Setup, a: Assumptions, anchor: Anchor | None
) -> Callable[[float, float], float]:
    """Seconds per decode step as a function of (batch, context); with an anchor, the fixed cost
    is fitted so the model gives the measured step at the measured batch (the probe runs
    without a grammar; if the model's variable part alone is slower, it is scaled down)."""
    if anchor is None:
        return lambda batch, context: decode_step(setup, a, batch, context).total
    probe = replace(Setup(), draft_tokens=anchor.draft_tokens or 1, grammar=False)
    parts = decode_step(probe, a, anchor.decode_batch, PROBE_CONTEXT)
    variable = parts.gpu + parts.comm + parts.launch
    scale = min(1.0, anchor.decode_step_seconds / variable)
    fixed = max(0.0, anchor.decode_step_seconds - variable)

    def step(batch: float, context: float) -> float:
        p = decode_step(setup, a, batch, context)
        grammar = p.host - decode_step(replace(setup, grammar=False), a, batch, context).host
        return (p.gpu + p.comm + p.launch) * scale + fixed + grammar

    return step


def project(job: Job, setup: Setup, a: Assumptions, anchor: Anchor | None = None) -> Outcome:
    """The job on `setup` with assumptions `a` (and measured components, if anchored)."""
    pool = pool_tokens(setup, a)
    cap = min(setup.max_running, (pool - job.prefix_tokens) / job.sequence_tokens, job.docs)
    context = job.prefix_tokens + job.doc_tokens / 2
    prefill_per_doc = job.computed_prefill_tokens / job.docs
    step, written = step_seconds(setup, a, anchor), written_per_step(setup, job.accept_length)
    # assumption: a closed loop of `concurrency` clients; each request spends its decode life in
    # the batch and its turnaround (client gap, own prefill, one step to join) outside it. Above
    # max_running the queue covers the turnaround and the batch stays at the cap.
    batch = float(min(setup.concurrency, cap))
    for _ in range(20):
        chunk = steady_chunk(batch, written, job.output_per_doc, prefill_per_doc)
        if anchor is not None:
            per_token = 1 / anchor.prefill_tokens_per_second
        else:
            per_token = prefill_seconds_per_token(setup, a, context, chunk)
        step_s = step(batch, job.context)
        life = job.output_per_doc / written * step_s
        turnaround = a.client_gap_ms / 1e3 + job.doc_tokens * per_token + step_s
        batch = max(1.0, min(cap, setup.concurrency * life / (life + turnaround)))
    chunk = steady_chunk(batch, written, job.output_per_doc, prefill_per_doc)
    if anchor is None:
        per_token = prefill_seconds_per_token(setup, a, context, chunk)
    step_s = step(batch, job.context)
    write_rate = batch * written / step_s
    prefill_s = job.computed_prefill_tokens * per_token
    decode_s = job.output_tokens / write_rate
    # prefill and decode batches take turns: mixed chunks are off by default
    # (arg_groups/fields/schedule.py:208) and NGRAM forces them off (speculative_hook.py:1307)
    total = prefill_s + decode_s
    return Outcome(
        batch=batch,
        pool_tokens=pool,
        tokens_per_step=written,
        prefill_chunk=chunk,
        prefill_tokens_per_s=1 / per_token,
        step_ms=step_s * 1e3,
        write_tokens_per_s=write_rate,
        prefill_s=prefill_s,
        decode_s=decode_s,
        total_s=total,
        minutes_per_1m=total / 60 / (job.tokens / 1e6),
    )


def project_range(job: Job, setup: Setup, anchor: Anchor | None = None) -> dict[str, Outcome]:
    return {where: project(job, setup, Assumptions.at(where), anchor) for where in SCENARIOS}


def sensitivity(job: Job, setup: Setup, anchor: Anchor | None = None) -> list[dict]:
    """Each assumption alone from its fast to its slow end, the rest at mid; biggest first."""
    mid, rows = Assumptions.at("mid"), []
    for f in fields(Assumptions):
        r = RANGES[f.name]
        fast = project(job, setup, replace(mid, **{f.name: r.fast}), anchor).total_s
        slow = project(job, setup, replace(mid, **{f.name: r.slow}), anchor).total_s
        rows.append(
            {"assumption": f.name, "fast": r.fast, "slow": r.slow, "unit": r.unit}
            | {"total_s_fast": fast, "total_s_slow": slow, "effect_s": slow - fast}
        )
    return sorted(rows, key=lambda row: -abs(row["effect_s"]))


def configurations(
    job: Job,
    setup: Setup,
    accepts: list[float],
    replayed: Callable[[Setup], float | None] = lambda setup: None,
) -> list[tuple[str, Setup, Job]]:
    """The settings side by side: each changes one thing from `setup` at the first accept,
    then the three that need no accept length together. `replayed` gives the tokens per step
    replayed at a setup's draft tree, where there is one: a changed tree uses it."""
    first = replace(job, accept_length=accepts[0])

    def at_tree(config: Setup) -> Job:
        tokens = replayed(config)
        if tokens is None:
            return first
        return replace(job, accept_length=accept_needed(config.draft_tokens, tokens))

    rows = [
        ("as set above", setup, first),
        ("speculation off", replace(setup, draft_tokens=1), job),
    ]
    for drafts in (4, 8):
        for accept in accepts:
            config = replace(setup, draft_tokens=drafts)
            written = written_per_step(config, accept)
            name = f"NGRAM {drafts} drafts, accept {accept:g} ({written:.2f} per step)"
            rows.append((name, config, replace(job, accept_length=accept)))
    if setup.sam_budget and setup.draft_tokens > 1:
        trie = replace(setup, sam_budget=0)
        rows.append(
            (f"{setup.draft_tokens} drafts, no job corpus (trie only)", trie, at_tree(trie))
        )
        more = replace(setup, corpora=setup.corpora + 1)
        rows.append((f"{more.corpora} jobs' corpora loaded at once", more, at_tree(more)))
    # each setting side by side with its other value: the profile's own is in "as set above"
    fp8 = replace(setup, kv_dtype_bytes=3 - setup.kv_dtype_bytes)
    graphs = replace(
        setup,
        graph_max_bs=SGLANG_GRAPH_MAX_BS
        if setup.graph_max_bs >= setup.max_running
        else setup.max_running,
    )
    queued = setup.concurrency > setup.max_running
    queue = replace(
        setup, concurrency=setup.max_running if queued else int(setup.max_running * 1.5)
    )
    tuned = replace(
        setup,
        kv_dtype_bytes=1,
        graph_max_bs=setup.max_running,
        concurrency=max(setup.concurrency, int(setup.max_running * 1.5)),
    )
    return rows + [
        (f"KV cache {'fp16' if setup.kv_dtype_bytes == 1 else 'fp8_e5m2'}", fp8, first),
        (f"decode CUDA graphs to {graphs.graph_max_bs}", graphs, first),
        (
            f"client concurrency {queue.concurrency} "
            f"{'= max_running' if queued else '> max_running'}",
            queue,
            first,
        ),
        ("fp8 KV + all graphs + a queue, together", tuned, first),
        ("PCIe 4.0 x8 slots", replace(setup, pcie_lanes=8), first),
    ]


def as_dict(outcome: Outcome) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(outcome).items()}

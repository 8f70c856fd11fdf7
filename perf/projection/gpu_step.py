"""The step model: seconds per prefill token and per decode step of Mixtral AWQ on 2x RTX 4090,
from the model's shape (gpu_model) and the ranges it cannot know (gpu_assumptions).

Decode step at batch B verifying d tokens per sequence (n = B·d tokens), per card:
  experts    max(expert bytes touched / bandwidth, expert FLOPs / sustained TFLOPS)
  dense      max(attention + lm_head bytes / bandwidth, their FLOPs / TFLOPS)
  attention  max(KV of every sequence incl. the shared prefix / bandwidth, score FLOPs / TFLOPS)
  comm       64 all-reduces over PCIe: latency + n × 8 KiB / PCIe bandwidth each
  launch     32 × eager launch cost when B exceeds the decode CUDA-graph batch
  fixed      device work outside the model (verify/sampling kernels, graph replay)
  host       the scheduler's CPU time per step, measured (host_cost.py): NGRAM drafting, one
             xgrammar mask per verified token, batch preparation; NGRAM with a grammar runs
             synchronously, so the GPU waits for it
Prefill runs in the chunk the scheduler forms in steady state (prefill_chunk.py), at Marlin's
efficiency for that many tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

from forkpoint.perf.projection import host_cost
from forkpoint.perf.projection.draft_tree import DraftTree
from forkpoint.perf.projection.gpu_assumptions import Assumptions
from forkpoint.perf.projection.gpu_model import (
    SGLANG_GRAPH_MAX_BS,
    SGLANG_PREFILL_CHUNK,
    Card,
    Mixtral,
)
from forkpoint.perf.projection.prefill_chunk import marlin_share

MIXTRAL, RTX_4090 = Mixtral(), Card()


@dataclass(frozen=True)
class Setup:
    """How the server runs: SGLang tp=2 by default, or AutoAWQ's layer split."""

    cards: int = 2
    layer_split: bool = False  # accelerate's split: cards take turns, no all-reduce
    hf_generate: bool = False  # HF generate: eager launches, logits for every prompt token
    kv_dtype_bytes: int = 2  # 2: fp16, 1: fp8_e5m2
    mem_fraction_static: float = 0.88  # the mixtral-awq-2x4090 profile
    max_running: int = 128  # the profile
    concurrency: int = 128  # the profile's client_concurrency
    graph_max_bs: int = SGLANG_GRAPH_MAX_BS
    draft_tokens: int = 8  # tokens verified per sequence per step; 1 = no speculation
    sam_budget: int = 0  # of the draft_tokens - 1 drafts, slots for the job corpora
    corpora: int = 1  # job corpora loaded at once (one per running job)
    grammar: bool = True  # every request carries a JSON schema
    pcie_lanes: int = 16

    @property
    def parallel(self) -> int:
        """Cards working on a token at the same time."""
        return 1 if self.layer_split else self.cards

    def pcie_gbs(self, a: Assumptions) -> float:
        return a.pcie_gbs * self.pcie_lanes / 16

    @property
    def tree(self) -> DraftTree:
        return DraftTree(self.draft_tokens, self.sam_budget, self.corpora)


AUTOAWQ = Setup(
    layer_split=True,
    hf_generate=True,
    max_running=1,
    concurrency=1,
    draft_tokens=1,
    grammar=False,
)


@dataclass(frozen=True)
class StepParts:
    gpu: float
    comm: float
    launch: float
    fixed: float
    host: float

    @property
    def total(self) -> float:
        return self.gpu + self.comm + self.launch + self.fixed + self.host


@cache
def host_curve() -> host_cost.HostCurve:
    """The measured host-time curve (the newest committed perf/results/host-cost-*.json)."""
    return host_cost.load()


def pool_tokens(setup: Setup, a: Assumptions) -> int:
    """KV tokens one card's pool holds (each card holds its share of every token)."""
    card = RTX_4090.memory_mib * 2**20 * setup.mem_fraction_static
    free = card - MIXTRAL.weight_bytes / setup.cards - a.runtime_reserve_gib * 2**30
    # tp splits the KV heads over the cards, a layer split the layers: a half each either way
    return max(0, int(free / MIXTRAL.kv_bytes_per_token(setup.kv_dtype_bytes, setup.cards)))


def prefill_seconds_per_token(
    setup: Setup, a: Assumptions, context: float, chunk: float = SGLANG_PREFILL_CHUNK
) -> float:
    """One prompt token computed in a `chunk`-token prefill batch, `context` tokens before it."""
    flops = MIXTRAL.matmul_flops(lm_head=setup.hf_generate) + MIXTRAL.attention_flops(context)
    rate = a.marlin_tflops * 1e12 * marlin_share(chunk, a.chunk_efficiency_end)
    compute = flops / setup.parallel / rate
    if setup.layer_split or setup.cards == 1:
        return compute
    comm = MIXTRAL.allreduce_bytes_per_token / (setup.pcie_gbs(a) * 1e9)
    host = host_curve().prefill_ms * a.host_speed
    per_chunk = 2 * MIXTRAL.layers * a.allreduce_latency_us * 1e-6 + (a.device_step_ms + host) / 1e3
    return compute + comm + per_chunk / chunk


def decode_step(setup: Setup, a: Assumptions, batch: float, context: float) -> StepParts:
    """One decode (or verify) step with `batch` sequences of mean `context` tokens each."""
    n = batch * setup.draft_tokens
    bandwidth = RTX_4090.bandwidth_gbs * 1e9 * a.bandwidth_fraction * setup.parallel
    flops_rate = a.marlin_tflops * 1e12 * setup.parallel
    experts = max(
        MIXTRAL.expert_bytes * MIXTRAL.experts_touched(n) / bandwidth,
        2 * MIXTRAL.active_expert_params * n / flops_rate,
    )
    dense = max(MIXTRAL.dense_bytes / bandwidth, 2 * MIXTRAL.dense_matmul_params * n / flops_rate)
    kv = batch * context * MIXTRAL.kv_bytes_per_token(setup.kv_dtype_bytes)
    attention = max(kv / bandwidth, MIXTRAL.attention_flops(context) * n / flops_rate)
    hop = n * MIXTRAL.hidden * 2 / (setup.pcie_gbs(a) * 1e9) + a.allreduce_latency_us * 1e-6
    hops = 1 if setup.layer_split else 2 * MIXTRAL.layers  # one hand-over vs all-reduces
    eager = setup.hf_generate or batch > setup.graph_max_bs
    if setup.hf_generate:
        fixed, host = a.step_fixed_ms / 1e3, 0.0
    else:
        fixed = a.device_step_ms / 1e3
        host = host_curve().ms(batch, setup.draft_tokens, setup.grammar) * a.host_speed / 1e3
    return StepParts(
        gpu=experts + dense + attention,
        comm=hops * hop if setup.cards > 1 else 0.0,
        launch=MIXTRAL.layers * a.eager_us_per_layer * 1e-6 if eager else 0.0,
        fixed=fixed,
        host=host,
    )


def tokens_per_step(setup: Setup, accept_length: float) -> float:
    """Tokens one sequence writes per step: the accept length, at most what the draft tree
    can accept (draft_tree.py)."""
    return min(max(accept_length, 1.0), setup.tree.max_tokens_per_step)


def break_even_accept(setup: Setup, a: Assumptions, batch: float, context: float) -> float:
    """The accept length at which speculating writes as fast as not speculating, same batch."""
    plain = decode_step(replace(setup, draft_tokens=1), a, batch, context).total
    return decode_step(setup, a, batch, context).total / plain


def autoawq_check(a: Assumptions, prompt: int = 1024) -> dict[str, float]:
    """Batch-1 figures of AutoAWQ's published setup (layer split, HF generate), to set beside
    its table: prefill of a `prompt`-token prompt, then `prompt` tokens decoded after it."""
    prefill = 1 / prefill_seconds_per_token(AUTOAWQ, a, prompt / 2, chunk=prompt)
    decode = 1 / decode_step(AUTOAWQ, a, 1, prompt * 1.5).total
    return {"prefill_tokens_per_s": prefill, "decode_tokens_per_s": decode}

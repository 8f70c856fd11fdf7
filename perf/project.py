"""Project a measured extraction job onto one 2×RTX 4090 server running Mixtral-8x7B AWQ (tp=2).

A roofline model, not a measurement: every number below is an assumption with its source, and
the output says "projected". It takes what the CPU run measured that does not depend on the
hardware — how many prompt tokens had to be computed (prefix reuse already subtracted), how many
tokens were written, how many documents, the speculative accept length — and predicts the time
of the same job on the GPU server.

    ./dev python perf/project.py --computed-prefill 120000 --output 100000 --docs 1000
    ./dev python perf/project.py --from perf/results/bench-....json --accept-length 2.0

Model of one decode step with B sequences in flight, per card (tp=2 splits weights and KV):
  bytes   = weights read (all experts once B ≳ 16) + KV of every sequence's context
  flops   = 2 × active params × B × (tokens verified per sequence)
  time    = max(bytes / bandwidth, flops / peak) / efficiency + fixed per-step overhead
Prefill is compute-bound: 2 × active params per token at a prefill efficiency.
The efficiencies are calibrated on published single-stream figures (see SANITY below), so the
projection can be checked against them with --sanity.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Hardware:
    cards: int = 2
    bandwidth_gbs: float = 1008.0  # RTX 4090 GDDR6X, NVIDIA spec sheet
    fp16_tflops: float = 165.2  # 4090 dense FP16 tensor, FP32 accumulate (Ada whitepaper)
    memory_gb: float = 24.0
    reserved_gb: float = 2.5  # CUDA context, activations, NCCL buffers, CUDA graphs (assumed)


@dataclass(frozen=True)
class Model:
    name: str = "Mixtral-8x7B-Instruct-v0.1 AWQ (4-bit, group 128)"
    total_params: float = 46.7e9  # Mistral AI release notes
    active_params: float = 12.9e9  # 2 of 8 experts per token (Mistral AI release notes)
    weight_bytes: float = 24.7e9  # size of the public AWQ checkpoint (safetensors shards)
    layers: int = 32
    kv_heads: int = 8
    head_dim: int = 128
    kv_dtype_bytes: int = 2  # fp16 KV cache

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.kv_dtype_bytes


@dataclass(frozen=True)
class Efficiency:
    # Calibrated so batch-1 figures land inside the published AutoAWQ 2×4090 ranges (SANITY).
    decode: float = 0.45  # PCIe tp=2 all-reduce without P2P, Marlin MoE kernels below peak
    prefill: float = 0.19
    step_overhead_ms: float = 4.0  # scheduler, sampling, grammar mask per step (assumed)
    grammar_overhead: float = 0.05  # xgrammar mask fill overlaps the GPU step; 5% assumed


SANITY = {  # published single-stream figures, AutoAWQ Mixtral-8x7B on 2×RTX 4090
    "prefill_tokens_per_s": (2000.0, 2600.0),
    "decode_tokens_per_s": (80.0, 90.0),
}


@dataclass(frozen=True)
class Job:
    docs: int
    computed_prefill_tokens: int  # prompt tokens minus cached tokens
    output_tokens: int
    mean_context_tokens: float  # prompt + half the output, per document
    accept_length: float = 1.0  # mean tokens per verify step (1.0 = no speculation)
    draft_tokens: int = 1  # tokens verified per sequence per step
    max_running: int = 128


def kv_capacity_tokens(hw: Hardware, model: Model) -> int:
    free = hw.cards * (hw.memory_gb - hw.reserved_gb) * 1e9 - model.weight_bytes
    return max(0, int(free / model.kv_bytes_per_token))


def decode_step_seconds(hw: Hardware, model: Model, eff: Efficiency, batch: int, job: Job):
    weight_bytes = (
        model.weight_bytes if batch >= 16 else _expert_fraction(batch) * model.weight_bytes
    )
    kv_bytes = batch * job.mean_context_tokens * model.kv_bytes_per_token
    memory_s = (weight_bytes + kv_bytes) / hw.cards / (hw.bandwidth_gbs * 1e9)
    flops = 2 * model.active_params * batch * job.draft_tokens
    compute_s = flops / hw.cards / (hw.fp16_tflops * 1e12)
    step = max(memory_s, compute_s) / eff.decode * (1 + eff.grammar_overhead)
    return step + eff.step_overhead_ms / 1000


DENSE_SHARE = 0.04  # attention, norms, embeddings: ~4% of Mixtral's weights, read every step


def _expert_fraction(batch: int) -> float:
    # Share of expert weights one step touches: each token picks 2 of 8 experts per layer.
    experts_touched = 1 - (6 / 8) ** batch
    return DENSE_SHARE + (1 - DENSE_SHARE) * experts_touched


def project(
    job: Job, hw: Hardware = Hardware(), model: Model = Model(), eff: Efficiency = Efficiency()
):
    capacity = kv_capacity_tokens(hw, model)
    batch = max(1, min(job.max_running, job.docs, int(capacity / max(job.mean_context_tokens, 1))))
    prefill_rate = hw.cards * hw.fp16_tflops * 1e12 * eff.prefill / (2 * model.active_params)
    prefill_s = job.computed_prefill_tokens / prefill_rate
    step_s = decode_step_seconds(hw, model, eff, batch, job)
    write_rate = batch * job.accept_length / step_s
    decode_s = job.output_tokens / write_rate
    total_s = prefill_s + decode_s  # SGLang interleaves them; the sum is the conservative bound
    return {
        "batch": batch,
        "kv_capacity_tokens": capacity,
        "prefill_tokens_per_s": round(prefill_rate),
        "decode_step_ms": round(step_s * 1000, 2),
        "write_tokens_per_s": round(write_rate),
        "prefill_seconds": round(prefill_s, 1),
        "decode_seconds": round(decode_s, 1),
        "total_seconds": round(total_s, 1),
    }


def sanity(hw: Hardware = Hardware(), model: Model = Model(), eff: Efficiency = Efficiency()):
    """Batch-1 figures of the same model, to set beside the published ones."""
    one = Job(docs=1, computed_prefill_tokens=1, output_tokens=1, mean_context_tokens=1000)
    prefill = hw.cards * hw.fp16_tflops * 1e12 * eff.prefill / (2 * model.active_params)
    decode = 1 / decode_step_seconds(hw, model, eff, 1, one)
    return {"prefill_tokens_per_s": round(prefill), "decode_tokens_per_s": round(decode, 1)}


def measured_job(report: dict, run: str, settings: Job) -> Job:
    """The token counts one run of a perf/bench.py report measured; speculation and batch
    settings stay the projection's own (a CPU run's accept length is a small model's)."""
    figures = report.get("runs", {}).get(run)
    if not figures or "prompt_tokens" not in figures:
        known = ", ".join(
            name for name, f in report.get("runs", {}).items() if "prompt_tokens" in f
        )
        raise SystemExit(f"the report has no measured run {run!r} (measured: {known or 'none'})")
    docs = figures["documents"]
    return replace(
        settings,
        docs=docs,
        computed_prefill_tokens=figures["computed_prefill_tokens"],
        output_tokens=figures["output_tokens"],
        mean_context_tokens=(figures["prompt_tokens"] + figures["output_tokens"] / 2)
        / max(docs, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="a perf/bench.py result JSON")
    parser.add_argument("--run", default="baseline", help="which of its runs (default: baseline)")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--computed-prefill", type=int, default=150_000)
    parser.add_argument("--output", type=int, default=100_000)
    parser.add_argument("--mean-context", type=float, default=950.0)
    parser.add_argument("--accept-length", type=float, default=1.0)
    parser.add_argument("--draft-tokens", type=int, default=1)
    parser.add_argument("--max-running", type=int, default=128)
    args = parser.parse_args()
    job = Job(
        args.docs,
        args.computed_prefill,
        args.output,
        args.mean_context,
        args.accept_length,
        args.draft_tokens,
        args.max_running,
    )
    if args.source:
        job = measured_job(json.loads(args.source.read_text()), args.run, job)
    result = project(job)
    print(
        json.dumps(
            {
                "projected": True,
                "job": asdict(job),
                "result": result,
                "batch1_sanity": sanity(),
                "published": SANITY,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""What the GPU projection cannot compute: each figure a range, its fast end and its slow end,
with where it comes from. `at("low")` puts every one at its fast end (the lowest total time),
`at("high")` at its slow end, `at("mid")` halfway. The scheduler's host time per step is not
here: it is measured (host_cost.py), only its transfer to the server's CPU is a range."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Range:
    fast: float
    slow: float
    unit: str
    source: str

    @property
    def mid(self) -> float:
        return (self.fast + self.slow) / 2


RANGES: dict[str, Range] = {
    "marlin_tflops": Range(
        90.0,
        50.0,
        "TFLOPS",
        "sustained fused_marlin_moe on Mixtral expert shapes (E8 H4096 I14336 top2, >=4096 "
        "tokens): 78-81 TFLOPS on an H20 = 53-55% of its 148 peak, ~296 on an H100 = 30% of 989 "
        "(vLLM baseline columns, flagos-ai/FlagGems PR #4350); the 4090's 165.2 at 55% and 30%",
    ),
    "bandwidth_fraction": Range(
        0.80,
        0.55,
        "of 1008 GB/s",
        "assumption: streaming 4-bit weights and KV; vLLM's Marlin MoE reads the Mixtral "
        "experts at ~55% of an H100's HBM at 64 tokens (0.38 ms, FlagGems PR #4350)",
    ),
    "pcie_gbs": Range(
        25.0,
        12.0,
        "GB/s",
        "assumption: PCIe 4.0 x16 is 31.5 GB/s raw, ~25 effective for pinned copies; with "
        "NCCL_P2P_DISABLE=1 every byte goes through host memory (two copies), so as low as half",
    ),
    "allreduce_latency_us": Range(
        15.0,
        40.0,
        "us",
        "assumption: 8-64 B alltoall on 2x4090 with P2P off takes 11.3-11.9 us "
        "(tinygrad/open-gpu-kernel-modules#17); an all-reduce has two phases",
    ),
    "eager_us_per_layer": Range(
        30.0,
        100.0,
        "us",
        "assumption: ~15-20 kernels per Mixtral layer launched from Python when the decode "
        "batch has no CUDA graph; SGLang's own note (memory_hook.py:104-106) is that eager "
        "decode 'collapsed high-concurrency throughput'",
    ),
    "step_fixed_ms": Range(
        1.0,
        3.0,
        "ms",
        "assumption: HF generate's per-step Python, sampling and copies (the AutoAWQ check only; "
        "an SGLang step uses device_step_ms and the measured host curve)",
    ),
    "device_step_ms": Range(
        0.3,
        1.0,
        "ms",
        "assumption: an SGLang step's device work outside the model: verify/sampling kernels, "
        "CUDA-graph replay, the accepted tokens copied back",
    ),
    "host_speed": Range(
        0.5,
        1.0,
        "x measured",
        "the scheduler's host ms per step as measured on this CPU (perf/results/host-cost-*, "
        "perf/projection/host_cost.py), scaled: assumption that the server's host core is 1-2x "
        "as fast as this shared 2-core EPYC's",
    ),
    "chunk_efficiency_end": Range(
        0.0,
        1.0,
        "H100..H20",
        "Marlin MoE's share of its >=4096-token throughput at the steady prefill chunk: 0 the "
        "higher of the two GPUs' vLLM timings in flagos-ai/FlagGems PR #4350, 1 the lower "
        "(perf/projection/prefill_chunk.py)",
    ),
    "runtime_reserve_gib": Range(
        0.5,
        1.5,
        "GiB",
        "assumption: CUDA context, NCCL buffers, allocator slack inside mem_fraction_static",
    ),
    "client_gap_ms": Range(
        20.0,
        100.0,
        "ms",
        "assumption: a finished request's slot until the client's next one arrives (HTTP, "
        "validation, next document)",
    ),
}


@dataclass(frozen=True)
class Assumptions:
    marlin_tflops: float
    bandwidth_fraction: float
    pcie_gbs: float
    allreduce_latency_us: float
    eager_us_per_layer: float
    step_fixed_ms: float
    device_step_ms: float
    host_speed: float
    chunk_efficiency_end: float
    runtime_reserve_gib: float
    client_gap_ms: float

    @classmethod
    def at(cls, where: str) -> Assumptions:
        """Every assumption at "low" (its fast end), "mid" or "high" (its slow end)."""
        pick = {"low": lambda r: r.fast, "mid": lambda r: r.mid, "high": lambda r: r.slow}[where]
        return cls(**{f.name: pick(RANGES[f.name]) for f in fields(cls)})


SCENARIOS = ("low", "mid", "high")

"""The prefill batch the scheduler forms in steady state, and Marlin MoE's efficiency at it.

With the batch full, a step finishes batch × tokens-per-step / answer-tokens documents on
average; SGLang's next loop iteration prefills the requests waiting for those slots (prefill and
decode batches alternate: NGRAM turns mixed chunks off, speculative_hook.py:1294-1307), so a
prefill batch holds about that many documents, at least one, at most the 4,096-token chunk
(gpu_model.SGLANG_PREFILL_CHUNK). perf/studies/host_cost.py checks the count against SGLang's
own "Prefill batch" log lines on the CPU (perf/results/host-cost-*.md).

Marlin MoE's throughput at M tokens, relative to M = 4096, from vLLM's fused_marlin_moe timings
on Mixtral's expert shape (E8 H4096 I14336 top2), the baseline column of flagos-ai/FlagGems
PR #4350, on two GPUs (their FLOPs: 2 × 2 experts × 3 × 4096 × 14336 per token):
    M      H20 ms   share of 4096's    H100 ms   share of 4096's
    128    1.705    0.67               0.4935    0.63
    256    3.362    0.68               0.9215    0.67
    512    5.039    0.91               1.4593    0.85
    1024   10.31    0.89               2.7203    0.91
    4096   36.74    1.00 (78.6 TF)     9.910     1.00 (291 TF)
The fast end takes the higher share at each M, the slow end the lower; between rows the share is
interpolated in log M. The 4090 at tp=2 runs half of each expert's intermediate (I/2 = 7168) per
card: a smaller matmul than the table's, so its shares could be lower (assumption).
"""

from __future__ import annotations

import math

from forkpoint.perf.projection.gpu_model import SGLANG_PREFILL_CHUNK

# tokens → (fast share, slow share) of the M=4096 throughput
MARLIN_SHARE = {
    128: (0.67, 0.63),
    256: (0.68, 0.67),
    512: (0.91, 0.85),
    1024: (0.91, 0.89),
    4096: (1.0, 1.0),
}


def marlin_share(tokens: float, end: float) -> float:
    """Share of Marlin's ≥4096-token throughput at a `tokens`-token batch; end 0 is the fast
    table, 1 the slow one."""
    rows = sorted(MARLIN_SHARE.items())
    if tokens >= rows[-1][0]:
        return 1.0
    if tokens <= rows[0][0]:
        fast, slow = rows[0][1]
        return fast + end * (slow - fast)
    for (m0, s0), (m1, s1) in zip(rows, rows[1:], strict=False):
        if m0 <= tokens <= m1:
            t = (math.log(tokens) - math.log(m0)) / (math.log(m1) - math.log(m0))
            fast = s0[0] + t * (s1[0] - s0[0])
            slow = s0[1] + t * (s1[1] - s0[1])
            return fast + end * (slow - fast)
    raise AssertionError("unreachable")


def steady_chunk(
    batch: float, tokens_per_step: float, answer_tokens: float, prefill_per_doc: float
) -> float:
    """Tokens in one prefill batch when finished requests are replaced as they finish."""
    docs = max(1.0, batch * tokens_per_step / answer_tokens)
    return min(float(SGLANG_PREFILL_CHUNK), docs * prefill_per_doc)

"""What the GPU projection computes from: Mixtral-8x7B's shape, the AWQ checkpoint's bytes, one
RTX 4090, and the SGLang 0.5.23 defaults that apply to it. Facts with sources, no assumptions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mixtral:
    """Mixtral-8x7B-Instruct-v0.1, as its config.json states it (the AWQ repack keeps it)."""

    hidden: int = 4096
    layers: int = 32
    q_heads: int = 32
    kv_heads: int = 8
    head_dim: int = 128
    intermediate: int = 14336
    experts: int = 8
    top_k: int = 2
    vocab: int = 32000
    # AutoAWQ GEMM format, 4-bit, group 128: per 128 weights one fp16 scale and one 4-bit zero
    # (TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ quant_config.json). Experts and attention are
    # quantized; embeddings, lm_head and the router stay fp16.
    quantized_bits: float = 4 + (16 + 4) / 128

    @property
    def expert_params(self) -> int:
        """One expert: w1 and w3 (hidden → intermediate), w2 back."""
        return 3 * self.hidden * self.intermediate

    @property
    def attention_params(self) -> int:
        """One layer's q, k, v, o projections."""
        return self.hidden * self.head_dim * (2 * self.q_heads + 2 * self.kv_heads)

    @property
    def embedding_params(self) -> int:
        """The input embedding; lm_head is a separate matrix of the same size (untied)."""
        return self.vocab * self.hidden

    @property
    def active_expert_params(self) -> int:
        return self.layers * self.top_k * self.expert_params

    @property
    def dense_matmul_params(self) -> int:
        """Every token multiplies these: attention projections, the router, lm_head."""
        return self.layers * (self.attention_params + self.hidden * self.experts) + (
            self.embedding_params
        )

    @property
    def active_params(self) -> int:
        """Parameters one token uses, the input embedding row included (Mistral: 12.9B)."""
        return self.active_expert_params + self.dense_matmul_params + self.embedding_params

    def matmul_flops(self, lm_head: bool = True) -> int:
        """FLOPs of one token through every matmul (2 per multiply-add)."""
        lm = 0 if lm_head else self.embedding_params
        return 2 * (self.active_expert_params + self.dense_matmul_params - lm)

    def attention_flops(self, context: float) -> float:
        """QK^T and PV of one token over `context` earlier tokens, all layers."""
        return 4 * self.q_heads * self.head_dim * context * self.layers

    @property
    def expert_bytes(self) -> float:
        """All experts of all layers, 4-bit."""
        return self.layers * self.experts * self.expert_params * self.quantized_bits / 8

    @property
    def dense_bytes(self) -> float:
        """What every decode step reads besides experts: 4-bit attention, fp16 router, lm_head."""
        attention = self.layers * self.attention_params * self.quantized_bits / 8
        return attention + 2 * (self.layers * self.hidden * self.experts + self.embedding_params)

    @property
    def weight_bytes(self) -> float:
        """The checkpoint: 24.65 GB (its three shards: 9.97 + 9.98 + 4.70 GB on the Hub)."""
        return self.expert_bytes + self.dense_bytes + 2 * self.embedding_params

    def kv_bytes_per_token(self, dtype_bytes: int, shards: int = 1) -> int:
        """K and V of one token, all layers, on one of `shards` tensor-parallel cards."""
        return 2 * self.layers * (self.kv_heads // shards) * self.head_dim * dtype_bytes

    @property
    def allreduce_bytes_per_token(self) -> int:
        """tp all-reduces after attention and after the experts, every layer, fp16 hidden."""
        return 2 * self.layers * self.hidden * 2

    def experts_touched(self, tokens: float) -> float:
        """Share of experts one step reads when `tokens` tokens each pick top_k of them
        (routing taken as uniform and independent: a given expert is missed with (E-k)/E)."""
        return 1 - (1 - self.top_k / self.experts) ** tokens


@dataclass(frozen=True)
class Card:
    """One GeForce RTX 4090."""

    memory_mib: int = 24564  # nvidia-smi's total (e.g. tinygrad/open-gpu-kernel-modules PR #22)
    bandwidth_gbs: float = 1008.0  # 21 Gbps GDDR6X × 384 bit (NVIDIA spec sheet)
    # Dense fp16 tensor peak with fp32 accumulate (Ada whitepaper, appendix table); 330.3 with
    # fp16 accumulate, which Marlin does not use (its mma accumulates in fp32).
    fp16_tflops: float = 165.2
    # PCIe 4.0 x16: 16 GT/s × 16 lanes × 128/130 encoding / 8 = 31.5 GB/s each way (PCI-SIG)
    pcie_x16_gbs: float = 31.5


# SGLang 0.5.23, sglang/srt/arg_groups/memory_hook.py:101-117: on a card under 35 GiB with
# tp < 4 and no --cuda-graph-max-bs-decode, decode CUDA graphs are captured up to batch 48 and
# chunked prefill is 4096 tokens; a larger decode batch runs eager.
SGLANG_GRAPH_MAX_BS = 48
SGLANG_PREFILL_CHUNK = 4096
# speculative_hook.py:1294-1307 (_handle_ngram): NGRAM sets enable_mixed_chunk=False, so prefill
# and decode batches alternate and their times add up.
# spec_utils.py:584-692 (traverse_tree): with a grammar, every draft token of every request gets
# its own vocabulary mask, one request after another on the CPU.

# AutoAWQ README, "Multi-GPU" table (casper-hansen/AutoAWQ 88e4c76, README.md:240-253):
# Mixtral AWQ GEMM on 2x RTX 4090 (accelerate layer split), batch 1: prefill 2,083-2,633 tok/s
# for prompts of 128-2048 tokens, decode 77-93 tok/s; the 1024-token row: 2,599 and 84.7.
AUTOAWQ_PUBLISHED = {"prefill_tokens_per_s": (2000.0, 2600.0), "decode_tokens_per_s": (80.0, 90.0)}
AUTOAWQ_PROMPT = 1024  # the row the check sets beside the model: 2,599 and 84.7 tok/s

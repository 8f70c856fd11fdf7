"""The torch_native attention backend with a target-verify path, for NGRAM on the CPU.

SGLang's TorchNativeAttnBackend handles prefill (extend) and decode, but not TARGET_VERIFY:
the step where a speculative worker scores a tree of draft tokens in one forward. In that step
each request brings `draft_token_num` new tokens (already placed in the KV cache at
`out_cache_loc`, right after its `seq_len` verified tokens); every draft token attends to the
whole verified prefix and, among the drafts, to its ancestors in the tree and itself. On the CPU
NGRAM hands the drafts-only part of that mask as `spec_info.custom_mask`
(bool, `bs * n * n`, row i = draft i's allowed drafts), so the full mask is
[ones(n, seq_len) | tree_mask[b]].

This subclass adds that path and leaves the others to SGLang. It is registered under SGLang's own
backend name, through SGLang's backend registry, so `--attention-backend torch_native` picks it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from sglang.srt.layers.attention.attention_registry import register_attention_backend
from sglang.srt.layers.attention.torch_native_backend import TorchNativeAttnBackend
from sglang.srt.mem_cache.memory_pool import KVWriteLoc
from torch.nn.functional import scaled_dot_product_attention

if TYPE_CHECKING:
    from sglang.srt.layers.radix_attention import RadixAttention
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class TorchNativeVerifyAttnBackend(TorchNativeAttnBackend):
    """TorchNativeAttnBackend plus attention for speculative target verification."""

    def forward_extend(
        self,
        q: torch.Tensor,
        k: torch.Tensor | None,
        v: torch.Tensor | None,
        layer: RadixAttention,
        forward_batch: ForwardBatch,
        save_kv_cache: bool = True,
        **kwargs: object,
    ) -> torch.Tensor:
        if not forward_batch.forward_mode.is_target_verify():
            return super().forward_extend(q, k, v, layer, forward_batch, save_kv_cache)
        if save_kv_cache and k is not None and v is not None:
            self.token_to_kv_pool.set_kv_buffer(
                layer, KVWriteLoc(forward_batch.out_cache_loc, self.swa_out_cache_loc), k, v
            )
        out = q.new_empty((q.shape[0], layer.tp_q_head_num * layer.v_head_dim))
        self._verify(
            q.view(-1, layer.tp_q_head_num, layer.qk_head_dim),
            out.view(-1, layer.tp_q_head_num, layer.v_head_dim),
            layer,
            forward_batch,
        )
        return out

    def _verify(
        self,
        query: torch.Tensor,
        output: torch.Tensor,
        layer: RadixAttention,
        forward_batch: ForwardBatch,
    ) -> None:
        spec = forward_batch.spec_info
        n = spec.draft_token_num
        batch = forward_batch.batch_size
        tree = spec.custom_mask.view(-1)[: batch * n * n].view(batch, n, n).bool()
        k_cache = self.token_to_kv_pool.get_key_buffer(layer.layer_id)
        v_cache = self.token_to_kv_pool.get_value_buffer(layer.layer_id)
        req_to_token = self.req_to_token_pool.req_to_token
        seq_lens = forward_batch.seq_lens.tolist()
        rows = forward_batch.req_pool_indices.tolist()
        for b, (row, verified) in enumerate(zip(rows, seq_lens, strict=True)):
            slots = req_to_token[row, : verified + n]
            mask = torch.cat((tree.new_ones(n, verified), tree[b]), dim=1)
            keys, values = k_cache[slots], v_cache[slots]  # [kv, heads, dim]
            q_b = query[b * n : (b + 1) * n]  # [n, heads, dim]
            if keys.dtype != q_b.dtype:
                keys, values = keys.to(q_b.dtype), values.to(q_b.dtype)
            out_b = scaled_dot_product_attention(
                q_b.movedim(0, 1).unsqueeze(0),
                keys.movedim(0, 1).unsqueeze(0),
                values.movedim(0, 1).unsqueeze(0),
                attn_mask=mask,
                scale=layer.scaling,
                enable_gqa=layer.tp_q_head_num != layer.tp_k_head_num,
            )
            output[b * n : (b + 1) * n] = out_b.squeeze(0).movedim(0, 1)


def register() -> None:
    """Make `--attention-backend torch_native` build this backend (SGLang's registry)."""
    register_attention_backend("torch_native")(TorchNativeVerifyAttnBackend)

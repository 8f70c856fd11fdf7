"""SGLang's CPU-only speculative sgl_kernel ops, in plain torch.

SGLang 0.5.23 calls these through `sgl_kernel`'s Python wrappers (`torch.ops.sgl_kernel.*_cpu`)
when it runs on the CPU engine, but the wheel's sgl_kernel is the CUDA build, which has no CPU
kernels: the NGRAM worker stops on the first one. Each function here is the contract of the GPU
kernel it stands for (the Triton source named in its docstring, in `sglang/kernels/ops/` and
`sglang/srt/mem_cache/allocation.py`), written for clarity over speed: the tensors are a batch
of at most `max_running_requests` rows of `num_draft_tokens`.

`register()` defines each op under the `sgl_kernel` namespace with `torch.library`, unless a
real CPU build of sgl_kernel already did.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import torch

NAMESPACE = "sgl_kernel"


def copy_all_layer_kv_cache_cpu(
    data_ptrs: torch.Tensor, strides: torch.Tensor, tgt_loc: torch.Tensor, src_loc: torch.Tensor
) -> None:
    """For every KV buffer (one raw pointer and one row size in bytes each), copy rows `src_loc`
    to rows `tgt_loc`. All rows are read before any is written, so overlapping moves are safe
    (`copy_all_layer_kv_cache_tiled` in kernels/ops/kvcache/cache_move.py)."""
    if tgt_loc.numel() == 0:
        return
    rows = int(torch.maximum(tgt_loc.max(), src_loc.max())) + 1
    for pointer, stride in zip(data_ptrs.tolist(), strides.tolist(), strict=True):
        raw = (ctypes.c_uint8 * (rows * stride)).from_address(pointer)
        buffer = torch.frombuffer(raw, dtype=torch.uint8).view(rows, stride)
        buffer[tgt_loc] = buffer[src_loc]


def _request_slices(
    req_pool_indices: torch.Tensor, start_offset: torch.Tensor, end_offset: torch.Tensor
) -> list[tuple[int, slice, slice]]:
    """Per request: its token-pool row, its [start, end) in that row, and its slice of the
    packed `out_cache_loc` (requests laid end to end, in batch order)."""
    slices, packed = [], 0
    rows, starts, ends = req_pool_indices.tolist(), start_offset.tolist(), end_offset.tolist()
    for row, start, end in zip(rows, starts, ends, strict=True):
        slices.append((row, slice(start, end), slice(packed, packed + end - start)))
        packed += end - start
    return slices


def assign_req_to_token_pool_cpu(
    req_pool_indices: torch.Tensor,
    req_to_token: torch.Tensor,
    start_offset: torch.Tensor,
    end_offset: torch.Tensor,
    out_cache_loc: torch.Tensor,
    pool_len: int,
) -> None:
    """Write each request's packed slice of `out_cache_loc` into its row of the token pool at
    [start, end) (`assign_req_to_token_pool` in srt/mem_cache/allocation.py)."""
    for row, span, packed in _request_slices(req_pool_indices, start_offset, end_offset):
        req_to_token[row, span] = out_cache_loc[packed]


def assign_extend_cache_locs_cpu(
    req_pool_indices: torch.Tensor,
    req_to_token: torch.Tensor,
    start_offset: torch.Tensor,
    end_offset: torch.Tensor,
    out_cache_loc: torch.Tensor,
    pool_len: int,
) -> None:
    """The reverse: read each request's [start, end) of its token-pool row into its packed
    slice of `out_cache_loc` (`assign_extend_cache_locs` in kernels/ops/speculative/
    cache_locs.py)."""
    for row, span, packed in _request_slices(req_pool_indices, start_offset, end_offset):
        out_cache_loc[packed] = req_to_token[row, span]


def fill_accept_out_cache_loc_cpu(
    accept_index: torch.Tensor, out_cache_loc: torch.Tensor, accept_out_cache_loc: torch.Tensor
) -> None:
    """Pack `out_cache_loc[i]` for every accepted index i (skipping -1) to the front of
    `accept_out_cache_loc`, in order (`fill_accept_out_cache_loc` in kernels/ops/speculative/
    eagle.py)."""
    flat = accept_index.reshape(-1)
    accepted = flat[flat != -1]
    accept_out_cache_loc[: accepted.numel()] = out_cache_loc[accepted]


def fill_bonus_tokens_cpu(
    accept_tokens: torch.Tensor,
    accept_lens: torch.Tensor,
    bonus_tokens: torch.Tensor,
    accept_stride: int,
) -> None:
    """Each request's last accepted token (the bonus token): row i of `accept_tokens`, seen
    with width `accept_stride`, at `accept_lens[i] - 1` (`fill_bonus_tokens` in eagle.py)."""
    rows = torch.arange(accept_lens.numel())
    flat = accept_tokens.reshape(-1)
    bonus_tokens.copy_(flat[rows * accept_stride + accept_lens.long() - 1])


def reconstruct_indices_from_tree_mask_cpu(
    tree_mask: torch.Tensor,
    verified_seq_len: torch.Tensor,
    positions: torch.Tensor,
    retrive_index: torch.Tensor,
    retrive_next_token: torch.Tensor,
    retrive_next_sibling: torch.Tensor,
    batch_size: int,
    draft_token_num: int,
) -> None:
    """Positions and tree links of NGRAM's draft tree from its ancestor mask (semantics in
    kernels/ops/speculative/reconstruct_tree.py): `tree_mask[b, i, j]` marks node j an ancestor
    of node i (j < i). A node's position is the verified length plus its number of ancestors;
    its parent is its nearest ancestor; next_token is its first child; next_sibling the next
    node with the same parent (-1 for the root and where there is none)."""
    n = draft_token_num
    order = torch.arange(n)
    ancestors = tree_mask.reshape(batch_size, n, n).bool() & (order[None, :] < order[:, None])
    depth = ancestors.sum(-1)
    positions.view(batch_size, n).copy_(depth + verified_seq_len.view(-1, 1).to(depth.dtype))
    retrive_index.view(batch_size, n).copy_(order + n * torch.arange(batch_size).view(-1, 1))
    parents = torch.where(ancestors.any(-1), (ancestors * order).argmax(-1), -1).tolist()
    next_token = [[-1] * n for _ in range(batch_size)]
    next_sibling = [[-1] * n for _ in range(batch_size)]
    for b, parent_of in enumerate(parents):
        for node in range(n):
            parent = parent_of[node]
            if parent < 0:
                continue
            if next_token[b][parent] == -1:
                next_token[b][parent] = node  # nodes ascend, so the first seen is the first child
            later = [k for k in range(node + 1, n) if parent_of[k] == parent]
            next_sibling[b][node] = later[0] if later else -1
    retrive_next_token.view(batch_size, n).copy_(torch.tensor(next_token))
    retrive_next_sibling.view(batch_size, n).copy_(torch.tensor(next_sibling))


def verify_tree_greedy_cpu(
    predicts: torch.Tensor,
    accept_index: torch.Tensor,
    accept_token_num: torch.Tensor,
    candidates: torch.Tensor,
    retrive_index: torch.Tensor,
    retrive_next_token: torch.Tensor,
    retrive_next_sibling: torch.Tensor,
    target_predict: torch.Tensor,
) -> None:
    """Greedy tree verification (`verify_tree_greedy_kernel_triton` in
    kernels/ops/speculative/spec_tree.py): from the root, at each level take the first child
    (then its siblings) whose draft token equals the target model's argmax after the last
    accepted node; stop at the first level with no match. Writes the accepted draft indices
    (root first) to `accept_index`, their count (root excluded) to `accept_token_num`, and the
    target tokens at the accepted nodes, including the bonus token after the last, to `predicts`."""
    batch, num_draft = candidates.shape
    num_speculative = accept_index.shape[1]
    cand, index = candidates.tolist(), retrive_index.tolist()
    first_child, sibling = retrive_next_token.tolist(), retrive_next_sibling.tolist()
    target = target_predict.reshape(-1).tolist()
    flat_predicts = predicts.view(-1)
    for b in range(batch):
        last = index[b][0]
        accept_index[b, 0] = last
        accepted, node = 0, 0
        for _ in range(1, num_speculative):
            node = first_child[b][node]
            while node != -1 and cand[b][node] != target[last]:
                node = sibling[b][node]
            if node == -1:
                break
            flat_predicts[last] = target[last]
            accepted += 1
            accept_index[b, accepted] = index[b][node]
            last = index[b][node]
        accept_token_num[b] = accepted
        flat_predicts[last] = target[last]


# name -> (implementation, the arguments it writes)
OPS: dict[str, tuple[Callable[..., None], tuple[str, ...]]] = {
    "copy_all_layer_kv_cache_cpu": (copy_all_layer_kv_cache_cpu, ()),  # writes through pointers
    "assign_req_to_token_pool_cpu": (assign_req_to_token_pool_cpu, ("req_to_token",)),
    "assign_extend_cache_locs_cpu": (assign_extend_cache_locs_cpu, ("out_cache_loc",)),
    "fill_accept_out_cache_loc_cpu": (fill_accept_out_cache_loc_cpu, ("accept_out_cache_loc",)),
    "fill_bonus_tokens_cpu": (fill_bonus_tokens_cpu, ("bonus_tokens",)),
    "reconstruct_indices_from_tree_mask_cpu": (
        reconstruct_indices_from_tree_mask_cpu,
        ("positions", "retrive_index", "retrive_next_token", "retrive_next_sibling"),
    ),
    "verify_tree_greedy_cpu": (
        verify_tree_greedy_cpu,
        ("predicts", "accept_index", "accept_token_num"),
    ),
}


def registered(name: str) -> bool:
    """Whether `torch.ops.sgl_kernel.<name>` exists (from a CPU build of sgl_kernel, or us)."""
    try:
        getattr(getattr(torch.ops, NAMESPACE), name)
    except (AttributeError, RuntimeError):
        return False
    return True


def register() -> list[str]:
    """Define every op that is missing; return the names defined."""
    defined = []
    for name, (function, mutates) in OPS.items():
        if registered(name):
            continue
        torch.library.custom_op(f"{NAMESPACE}::{name}", mutates_args=mutates, device_types="cpu")(
            function
        )
        defined.append(name)
    return defined

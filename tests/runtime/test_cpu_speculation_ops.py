"""The CPU speculative ops, each against the contract of the SGLang kernel it stands for.

Called through `torch.ops.sgl_kernel.*` as SGLang calls them (sgl_kernel's Python wrappers are
thin shims over exactly these calls; this process cannot import the CUDA sgl_kernel itself).
The served end-to-end check is tests/runtime/test_ngram_served.py.
"""

import random

import pytest
import torch

from forkpoint.perf.studies import ngram_replay
from forkpoint.runtime.cpu_speculation import ops

ops.register()
sgl = torch.ops.sgl_kernel


def test_every_op_sglang_calls_on_the_cpu_is_registered_under_sgl_kernel():
    assert set(ops.OPS) == {
        "copy_all_layer_kv_cache_cpu",
        "assign_req_to_token_pool_cpu",
        "assign_extend_cache_locs_cpu",
        "fill_accept_out_cache_loc_cpu",
        "fill_bonus_tokens_cpu",
        "reconstruct_indices_from_tree_mask_cpu",
        "verify_tree_greedy_cpu",
    }
    assert all(ops.registered(name) for name in ops.OPS)
    assert ops.register() == []  # idempotent: nothing defined twice


def test_kv_rows_are_copied_in_every_layer_buffer_through_raw_pointers():
    k = torch.arange(10 * 6, dtype=torch.bfloat16).view(10, 2, 3)
    v = -torch.arange(10 * 6, dtype=torch.bfloat16).view(10, 2, 3)
    expected_k, expected_v = k.clone(), v.clone()
    src, tgt = torch.tensor([7, 8, 2]), torch.tensor([2, 3, 7])  # 2 and 7 swap: overlapping
    expected_k[tgt], expected_v[tgt] = k[src].clone(), v[src].clone()
    pointers = torch.tensor([k.data_ptr(), v.data_ptr()], dtype=torch.uint64)
    strides = torch.tensor([k[0].nbytes, v[0].nbytes], dtype=torch.int64)
    sgl.copy_all_layer_kv_cache_cpu(pointers, strides, tgt, src)
    assert torch.equal(k, expected_k) and torch.equal(v, expected_v)


def test_token_pool_rows_take_each_requests_packed_slots_and_give_them_back():
    req_to_token = torch.zeros(4, 16, dtype=torch.int32)
    rows, start, end = torch.tensor([2, 0]), torch.tensor([3, 5]), torch.tensor([6, 7])
    packed = torch.tensor([101, 102, 103, 201, 202], dtype=torch.int32)
    sgl.assign_req_to_token_pool_cpu(rows, req_to_token, start, end, packed, 16)
    assert req_to_token[2, 3:6].tolist() == [101, 102, 103]
    assert req_to_token[0, 5:7].tolist() == [201, 202]
    assert int(req_to_token.count_nonzero()) == 5  # nothing outside [start, end)
    out = torch.empty(5, dtype=torch.int64)
    sgl.assign_extend_cache_locs_cpu(rows, req_to_token, start, end, out, 16)
    assert out.tolist() == packed.tolist()


def test_accepted_cache_slots_are_packed_in_order_skipping_rejected():
    accept_index = torch.tensor([[0, 2, -1], [4, -1, -1]], dtype=torch.int32)
    out_cache_loc = torch.tensor([50, 51, 52, 53, 54, 55])
    packed = torch.full((6,), -7)
    sgl.fill_accept_out_cache_loc_cpu(accept_index, out_cache_loc, packed)
    assert packed.tolist() == [50, 52, 54, -7, -7, -7]


def test_the_bonus_token_is_each_requests_last_accepted_token():
    accept_tokens = torch.tensor([5, 6, 7, 8, 9, 10], dtype=torch.int32)
    bonus = torch.empty(2, dtype=torch.int32)
    sgl.fill_bonus_tokens_cpu(accept_tokens, torch.tensor([2, 1], dtype=torch.int32), bonus, 3)
    assert bonus.tolist() == [6, 8]


def _tree(parents: list[int]) -> torch.Tensor:
    """The ancestor mask (each node marks its ancestors and itself) of a tree given by parents."""
    n = len(parents)
    mask = torch.zeros(n, n, dtype=torch.bool)
    for node in range(n):
        walk = node
        while walk >= 0:
            mask[node, walk] = True
            walk = parents[walk]
    return mask


def test_tree_positions_and_links_follow_from_the_ancestor_mask():
    #        0
    #      /   \
    #     1     2        positions: verified length + depth
    #    / \     \
    #   3   4     5
    parents = [-1, 0, 0, 1, 1, 2]
    n, bs = 6, 2
    mask = torch.stack([_tree(parents), _tree([-1, 0, 1, 2, 3, 4])]).flatten()
    positions = torch.empty(bs * n, dtype=torch.int64)
    index, next_token, next_sibling = (torch.empty(bs, n, dtype=torch.int64) for _ in range(3))
    sgl.reconstruct_indices_from_tree_mask_cpu(
        mask, torch.tensor([10, 20]), positions, index, next_token, next_sibling, bs, n
    )
    assert positions.tolist() == [10, 11, 11, 12, 12, 12] + [20, 21, 22, 23, 24, 25]
    assert index.tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    assert next_token.tolist() == [[1, 3, 5, -1, -1, -1], [1, 2, 3, 4, 5, -1]]
    assert next_sibling.tolist() == [[-1, 2, -1, 4, -1, -1], [-1] * 6]


def _verify(drafts: list[int], mask: torch.Tensor, target: list[int], n: int):
    """Run reconstruct + verify_tree_greedy for one request, as the NGRAM worker does."""
    positions = torch.empty(n, dtype=torch.int64)
    index, next_token, next_sibling = (torch.empty(1, n, dtype=torch.int64) for _ in range(3))
    sgl.reconstruct_indices_from_tree_mask_cpu(
        mask.flatten(), torch.tensor([0]), positions, index, next_token, next_sibling, 1, n
    )
    predicts = torch.full((n,), -1, dtype=torch.int32)
    accept_index = torch.full((1, n), -1, dtype=torch.int32)
    accept_num = torch.zeros(1, dtype=torch.int32)
    sgl.verify_tree_greedy_cpu(
        predicts,
        accept_index,
        accept_num,
        torch.tensor([drafts]),
        index,
        next_token,
        next_sibling,
        torch.tensor([target], dtype=torch.int32),
    )
    return predicts.tolist(), accept_index[0].tolist(), int(accept_num[0])


def test_greedy_verification_accepts_the_branch_the_target_model_predicts():
    # root 0 drafts "A"; children 1 ("B") and 2 ("C"); 1 has child 3 ("D"), 2 has child 4 ("E")
    drafts = [100, 11, 12, 13, 14]
    mask = _tree([-1, 0, 0, 1, 2])
    # target argmax after each node: after root "C" (node 2), after node 2 "E" (node 4), then 99
    target = [12, 0, 14, 0, 99]
    predicts, accept_index, accepted = _verify(drafts, mask, target, 5)
    assert accepted == 2
    assert accept_index[:3] == [0, 2, 4] and accept_index[3:] == [-1, -1]
    assert predicts[0] == 12 and predicts[2] == 14 and predicts[4] == 99  # 99: the bonus token
    # nothing matches: the root alone, its prediction is the bonus token
    predicts, accept_index, accepted = _verify(drafts, mask, [42, 0, 0, 0, 0], 5)
    assert (accepted, accept_index[0], predicts[0]) == (0, 0, 42)


@pytest.mark.parametrize("seed", range(5))
def test_greedy_verification_accepts_what_the_replay_says_on_real_ngram_trees(seed):
    """The served verifier and ngram_replay.py's independent path search agree, on draft
    trees from SGLang's NgramCorpus: the basis of the served = replayed check."""
    from sglang.srt.speculative.cpp_ngram.ngram_corpus import NgramCorpus

    rng, n = random.Random(seed), 8
    corpus = NgramCorpus(max_trie_depth=18, draft_token_num=n, max_bfs_breadth=4)
    text = [rng.randrange(6) for _ in range(400)]  # a small alphabet: branchy, repetitive tries
    corpus.batch_put([text[i : i + 18] for i in range(0, 380, 3)])
    corpus.synchronize()
    longest = 0
    for trial in range(40):
        context = text[trial * 7 : trial * 7 + 12]
        drafts, mask = corpus.batch_get([f"r{trial}"], [context], [len(context)])
        drafts, mask = [int(t) for t in drafts], torch.tensor(list(mask)).view(n, n).bool()
        # half the time the truth follows the text (so drafts match), else it is random
        follow = text[trial * 7 + 12 : trial * 7 + 12 + n]
        truth = follow if trial % 2 else [rng.randrange(6) for _ in range(n)]
        # the target model "predicts" the truth: after the node at depth d comes truth[d]
        depth = mask.sum(-1) - 1
        target = [truth[d] for d in depth.tolist()]
        _, _, accepted = _verify(drafts, mask, target, n)
        assert accepted == ngram_replay._accepted(drafts, mask.flatten().int().tolist(), n, truth)
        longest = max(longest, accepted)
    assert longest >= 2  # the trees were deep enough to test more than the first level

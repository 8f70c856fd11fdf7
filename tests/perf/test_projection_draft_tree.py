"""The draft tree's ceiling on tokens per verify step, as SGLang 0.5.23 splits the drafts."""

import json
from pathlib import Path

import pytest

from forkpoint.perf.projection.draft_tree import DraftTree
from forkpoint.perf.projection.gpu_projection import written_per_step
from forkpoint.perf.projection.gpu_step import Setup

RESULTS = Path(__file__).resolve().parents[2] / "perf" / "results"


def test_the_tuned_profiles_tree_accepts_at_most_three_tokens_per_step():
    tree = DraftTree(draft_tokens=4, sam_budget=2)
    assert (tree.trie, tree.per_corpus) == (1, 2)
    assert tree.max_tokens_per_step == 3


@pytest.mark.parametrize(
    ("drafts", "budget", "corpora", "most"),
    [
        (4, 0, 1, 4),  # no corpus slots: the trie drafts all three
        (4, 2, 2, 2),  # two jobs' corpora: one slot each, one for the trie
        (4, 2, 3, 4),  # a slot share of 0: SGLang drafts from the trie alone (ngram.cpp:186)
        (8, 4, 1, 5),  # the old profile: trie 3, corpus 4
        (8, 0, 1, 8),  # cpu-small
        (1, 0, 1, 1),  # speculation off
    ],
)
def test_the_deepest_source_sets_the_ceiling(drafts, budget, corpora, most):
    assert DraftTree(drafts, budget, corpora).max_tokens_per_step == most


def test_replayed_steps_never_exceed_the_ceiling():
    """perf/results: SGLang's own NgramCorpus, replayed step by step (SmolLM2's served answers
    on 2026-11-24, corpus slots = drafts // 2; the job in Mixtral's tokens on 2026-12-06)."""
    old = json.loads((RESULTS / "ngram-replay-2026-11-24-3be17a9.json").read_text())["replays"]
    new = json.loads((RESULTS / "accept-replay-2026-12-06-45e335b.json").read_text())["replays"]
    trees = [
        (DraftTree(r["draft_tokens"], r["draft_tokens"] // 2 if r["job_corpus"] else 0), r)
        for r in old
    ] + [(DraftTree(r["draft_tokens"], r["sam_budget"]), r) for r in new]
    for tree, r in trees:
        longest = max(int(k) for k in r["distribution"])
        assert longest <= tree.max_tokens_per_step
        if tree.draft_tokens <= 8:  # reached: the ceiling is the tree's, not a guess
            assert longest == tree.max_tokens_per_step


def test_the_projection_writes_no_more_per_step_than_the_tree_accepts():
    tuned = Setup(draft_tokens=4, sam_budget=2)
    assert written_per_step(tuned, 7.9) == 3.0
    assert written_per_step(Setup(draft_tokens=4), 7.9) == pytest.approx(4.0, abs=0.05)
    assert written_per_step(tuned, 1.0) == 1.0

"""The most tokens one NGRAM verify step can write, read from SGLang 0.5.23's drafting code.

`--speculative-num-draft-tokens D` verifies a tree of D tokens: the last verified token as its
root and D-1 drafts (kernels/jit/csrc/ngram_corpus/param.h:15-25, get_draft_token_num returns
draft_token_num - 1; ngram.cpp:171). With job corpora loaded (forkpoint's gateway registers one
per running job, runtime/corpora.py), the drafts are split (ngram.cpp:172-175):
    per corpus  = min(sam_budget, D-1) // corpora
    trie        = D-1 - per corpus · corpora
and each source builds its own tree from that many nodes (trie.cpp:232-239 and
suffix_automaton.cpp:186-194: `cursor <= draft_token_num`, so at most `budget` nodes, at most
`budget` deep); the trees are merged path by path from the same root (result.cpp:113-126), so
shared prefixes merge but no path grows: the merged tree is as deep as the deepest source.
With no corpus loaded, or a budget that leaves a corpus 0 slots, the trie gets all D-1
(ngram.cpp:186). At temperature 0 a step accepts one root-to-leaf path and adds one bonus token
(ngram_worker.py:508: accept_lens include it), so

    tokens per step <= max(trie, per corpus) + 1.

The tuned profile (4 drafts, sam budget 2, one job at a time): trie 1, corpus 2 → at most 3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from forkpoint.perf import RECORDS

SOURCE = "sglang 0.5.23 kernels/jit/csrc/ngram_corpus/ngram.cpp:171-205, result.cpp:113-126"


@dataclass(frozen=True)
class DraftTree:
    """The draft tree of one verify step."""

    draft_tokens: int  # --speculative-num-draft-tokens: the root and its drafts
    sam_budget: int = 0  # --speculative-ngram-external-sam-budget
    corpora: int = 1  # job corpora loaded at once (one per running job)

    @property
    def per_corpus(self) -> int:
        if self.sam_budget <= 0 or self.corpora <= 0:
            return 0
        return min(self.sam_budget, self.draft_tokens - 1) // self.corpora

    @property
    def trie(self) -> int:
        return self.draft_tokens - 1 - self.per_corpus * self.corpora

    @property
    def depth(self) -> int:
        """The deepest path below the root: the most drafts one step can accept."""
        return max(self.trie, self.per_corpus)

    @property
    def max_tokens_per_step(self) -> int:
        """Accepted drafts plus the bonus token; 1 without speculation."""
        return 1 if self.draft_tokens <= 1 else self.depth + 1


def replayed(tree: DraftTree, bfs: int, records: Path = RECORDS) -> tuple[float, str] | None:
    """Tokens per step replayed at this tree (perf/studies/accept_replay.py: SGLang's own
    NgramCorpus over the job in Mixtral's tokens, one corpus loaded), and the file; None if
    not replayed."""
    if tree.sam_budget and tree.corpora != 1:
        return None
    for path in sorted(records.glob("accept-replay-*.json"), reverse=True):
        for r in json.loads(path.read_text()).get("replays", []):
            key = (r["draft_tokens"], r["bfs_breadth"], r["sam_budget"])
            if key == (tree.draft_tokens, bfs, tree.sam_budget):
                return float(r["mean_accept_length"]), path.name
    return None

"""The NGRAM replay: SGLang's own NgramCorpus, fed as the NGRAM worker feeds it, on known tokens."""

from forkpoint.perf.studies import ngram_replay


def test_the_accepted_path_is_the_longest_tree_path_matching_the_greedy_continuation():
    from sglang.srt.speculative.cpp_ngram.ngram_corpus import NgramCorpus

    corpus = NgramCorpus(max_trie_depth=18, draft_token_num=8, max_bfs_breadth=4)
    corpus.batch_put([[1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 9, 9, 9]])
    corpus.synchronize()
    drafts, mask = corpus.batch_get(["r"], [[5, 1, 2, 3]], [4])
    drafts, mask = list(drafts), list(mask)
    assert drafts[0] == 3  # the root: the last token seen
    assert ngram_replay._accepted(drafts, mask, 8, [4, 5, 6, 7, 0]) == 4
    assert ngram_replay._accepted(drafts, mask, 8, [9, 9, 1]) == 2
    assert ngram_replay._accepted(drafts, mask, 8, [8]) == 0


def test_copying_from_the_document_is_drafted_only_with_the_job_corpus():
    document = list(range(1000, 1060))
    copied = document[5:35]  # 30 tokens of the document, far from the prompt's last 18
    runs = [
        {
            "prompt": [1, 2, 3] + document + [4, 5],
            "document": document,
            "output": [7] + copied + [8],
        }
    ]
    plain = ngram_replay.replay(runs, draft=8, bfs=4, depth=18, sam_budget=0)
    with_corpus = ngram_replay.replay(runs, draft=8, bfs=4, depth=18, sam_budget=4)
    assert plain["decoded_tokens"] == with_corpus["decoded_tokens"] == 31
    assert plain["mean_accept_length"] == 1.0  # nothing seen before: one token per step
    assert with_corpus["mean_accept_length"] > 3.0
    assert sum(k * v for k, v in with_corpus["distribution"].items()) == 31

"""Replay SGLang's NGRAM drafting over plain greedy outputs: the accept length it would get.

    ./dev python perf/studies/ngram_replay.py --docs 24        # embedded runtime, invoices task
    ./dev python perf/studies/ngram_replay.py --sglang-url URL --task contacts --docs 100

At temperature 0 the verifier accepts exactly the longest path of the draft tree that matches
the greedy continuation, plus one bonus token. So SGLang's own NgramCorpus (the C++ trie the
NGRAM worker uses, on the CPU), fed what `ngram_worker.py` feeds it — at every decode step the
last `max_trie_depth` tokens of prompt + output so far, looked up before the verify and inserted
right after it — and replayed over the outputs of a normal (non-speculative) run, gives the
accept length a speculative server would see, without one (perf/studies/speculation.py checks it
against a served run: equal step for step). Documents are replayed one after another (a served
batch interleaves them, so the shared trie holds slightly different neighbours).

Settings replayed on the same outputs: NGRAM as the profile sets it, NGRAM with the job's
documents loaded as an external corpus (what the gateway does per job), and a small grid of
draft-token counts and BFS breadths. Reports the mean accept length (tokens per verify step), its
distribution, and decode steps saved. Saves perf/results/ngram-replay-<date>-<commit>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from forkpoint.perf.bench import direct
from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument
from forkpoint.perf.bench.results import save as save_results
from forkpoint.programs.prompt import task_prompt
from forkpoint.programs.tasks.registry import get_task, load_task
from forkpoint.runtime.client import RuntimeClient
from forkpoint.runtime.launcher import RuntimeServer
from forkpoint.runtime.profiles import get_profile

SEPARATOR_TOKEN = -(2**31)  # sglang.srt.speculative.cpp_ngram.external_corpus
SERVER_TRIE_CAPACITY = 10_000_000  # --speculative-ngram-capacity's default


def greedy_runs(
    url: str, task_name: str, chat_format: str, docs: list[tuple[str, str]], concurrency: int
) -> list[dict]:
    """Prompt ids, document ids and greedy output ids of every document (one normal run)."""
    task = load_task(task_name) if ":" in task_name else get_task(task_name)
    prompt = task_prompt(task, chat_format)
    client = RuntimeClient(url)

    def one(doc: tuple[str, str]) -> dict:
        text = prompt.full(doc[1])
        sampling = {
            "temperature": 0,
            "max_new_tokens": task.max_output_tokens,
            "json_schema": task.constraint.schema_json,
        }
        answer = direct.generate(client, text, sampling)
        [prompt_ids] = client.json("POST", "/tokenize", json={"prompt": [text]})["tokens"]
        [doc_ids] = client.json(
            "POST", "/tokenize", json={"prompt": [doc[1]], "add_special_tokens": False}
        )["tokens"]
        spec = {k: v for k, v in answer["meta_info"].items() if k.startswith("spec_")}
        return {
            "name": doc[0],
            "prompt": prompt_ids,
            "document": doc_ids,
            "output": answer["output_ids"],
            "spec": spec,
        }

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, docs))


def replay(
    runs: list[dict],
    *,
    draft: int,
    bfs: int,
    depth: int,
    sam_budget: int = 0,
    capacity: int = SERVER_TRIE_CAPACITY,
) -> dict:
    """Accept lengths of every verify step, as SGLang's NGRAM worker would draft them;
    `sam_budget` > 0: with the documents loaded as a job corpus, that many draft slots for it."""
    from sglang.srt.speculative.cpp_ngram.ngram_corpus import NgramCorpus

    corpus = NgramCorpus(
        max_trie_depth=depth,
        min_bfs_breadth=1,
        max_bfs_breadth=bfs,
        draft_token_num=draft,
        capacity=capacity,
        external_sam_budget=sam_budget,
    )
    if sam_budget:
        chunks = [([SEPARATOR_TOKEN] if i else []) + run["document"] for i, run in enumerate(runs)]
        loaded = corpus.load_external_corpus_named("job", chunks)
        corpus.commit_external_corpus_load("job", loaded)
    steps: list[int] = []
    per_document = []
    for n, run in enumerate(runs):
        prompt, output = run["prompt"], run["output"]
        first = len(steps)
        k = 1  # the first output token comes from the prefill, not from a verify step
        while k < len(output):
            seen = prompt + output[:k]
            corpus.synchronize()
            drafts, mask = corpus.batch_get([f"r{n}"], [seen[-depth:]], [len(seen)])
            accepted = _accepted(list(drafts), list(mask), draft, output[k:])
            steps.append(accepted + 1)  # + the bonus token the verify step always yields
            k += accepted + 1
            # The worker inserts right after the verify, before the scheduler appends the
            # tokens just accepted to the request: the trie learns them one step late.
            corpus.batch_put([seen[-depth:]])
        corpus.erase_match_state([f"r{n}"])
        per_document.append(steps[first:])
    tokens = sum(len(run["output"]) - 1 for run in runs)
    return {
        "draft_tokens": draft,
        "bfs_breadth": bfs,
        "trie_depth": depth,
        "job_corpus": sam_budget > 0,
        "sam_budget": sam_budget,
        "verify_steps": len(steps),
        "decoded_tokens": tokens,
        "mean_accept_length": round(tokens / len(steps), 3) if steps else 0.0,
        "distribution": dict(sorted(Counter(steps).items())),
        "per_document": per_document,
    }


def _accepted(drafts: list[int], mask: list[int], n: int, truth: list[int]) -> int:
    """Longest draft-tree path (below the root, drafts[0]) equal to the start of `truth`."""
    parent = [-1] * n
    for i in range(1, n):  # row i of the tree mask: i's ancestors (and itself) are 1
        ancestors = [j for j in range(i) if mask[i * n + j]]
        parent[i] = max(ancestors) if ancestors else 0
    best, frontier = 0, {0: 0}  # node → depth, starting at the root
    while frontier:
        nxt = {}
        for node, depth in frontier.items():
            for child in range(1, n):
                if parent[child] == node and depth < len(truth) and drafts[child] == truth[depth]:
                    nxt[child] = depth + 1
                    best = max(best, depth + 1)
        frontier = nxt
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="invoices")
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=600, help="document length, tokens")
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--sglang-url")
    parser.add_argument("--chat-format", default="chatml")
    add_out_argument(parser)
    args = parser.parse_args()
    docs = generate(CorpusSpec(documents=args.docs, min_tokens=200, max_tokens=args.max_tokens))
    with contextlib.ExitStack() as stack:
        url = args.sglang_url
        if url is None:
            profile = get_profile("cpu-small").model_copy(update={"port": 0})
            url = stack.enter_context(RuntimeServer(profile)).url
        runs = greedy_runs(url, args.task, args.chat_format, docs, args.concurrency)
    settings = [
        (8, 4, 18, False),
        (8, 4, 18, True),
        (4, 2, 18, False),
        (4, 2, 18, True),
        (16, 8, 18, False),
        (16, 8, 18, True),
    ]
    results = [
        replay(runs, draft=d, bfs=b, depth=t, sam_budget=d // 2 if c else 0)
        for d, b, t, c in settings
    ]
    for result in results:
        del result["per_document"]
    report = {
        **describe(),
        "task": args.task,
        "documents": args.docs,
        "runtime": args.sglang_url or "cpu-small (embedded)",
        "replays": results,
    }
    lines = heading(
        "NGRAM replay",
        report,
        f"Task {args.task}, {args.docs} documents, "
        f"runtime {report['runtime']}; replayed, not served.",
    ) + [
        "| draft tokens | BFS breadth | job corpus | verify steps | mean accept length "
        "| distribution (accepted: steps) |",
        "|---:|---:|---|---:|---:|---|",
    ]
    for r in results:
        dist = ", ".join(f"{k}: {v}" for k, v in r["distribution"].items())
        lines.append(
            f"| {r['draft_tokens']} | {r['bfs_breadth']} | {r['job_corpus']} | "
            f"{r['verify_steps']} | {r['mean_accept_length']} | {dist} |"
        )
    save_results("ngram-replay", report, lines, args.out)


if __name__ == "__main__":
    main()

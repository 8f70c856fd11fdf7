"""Accept length at the tuned profile's draft tree, replayed in Mixtral's tokens.

SGLang's own NgramCorpus (the C++ trie and suffix automaton the NGRAM worker drafts from) is
replayed over prompt + answer token ids as perf/studies/ngram_replay.py does (at temperature 0 a
verify step accepts the longest draft path equal to the model's own continuation, plus one).
The answers here are the reference answers (perf/studies/mixtral_tokens.py: each invoice's own
fields as compact JSON) in Mixtral's tokenizer: what a Mixtral that answers correctly writes,
token for token, where the SmolLM2 run's answers were SmolLM2's. Settings: the profile's tree
(4 drafts, 2 slots for the job corpus, BFS breadth 4), the same without a corpus, and cpu-small's
8 drafts without a corpus (the bench's setting, whose accept length the projection starts from).

    ./dev python perf/studies/accept_replay.py --docs 100
Saves perf/results/accept-replay-<date>-<commit>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.projection.draft_tree import DraftTree
from forkpoint.perf.studies.mixtral_tokens import reference_answer

SETTINGS = ((4, 4, 2), (4, 4, 0), (8, 4, 0))  # drafts, max BFS breadth, corpus slots


def mixtral_ids() -> object:
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    sp = MistralTokenizer.v1().instruct_tokenizer.tokenizer

    def ids(text: str) -> list[int]:
        out: list[int] = []
        for i, part in enumerate(text.split("</s>")):
            if i:
                out.append(sp.eos_id)
            if part:
                out += sp.encode(part, bos=False, eos=False)
        return out

    return ids


def main() -> None:
    from forkpoint.perf.bench.machine import describe, heading
    from forkpoint.perf.bench.results import add_out_argument
    from forkpoint.perf.bench.results import save as save_results
    from forkpoint.perf.projection.project import FULL_SIZE
    from forkpoint.perf.studies.ngram_replay import replay
    from forkpoint.programs.prompt import task_prompt
    from forkpoint.programs.tasks.registry import get_task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100)
    add_out_argument(parser)
    args = parser.parse_args()
    spec = CorpusSpec(**json.loads(Path(FULL_SIZE).read_text())["corpus"])
    docs = generate(spec)[: args.docs]
    prompt = task_prompt(get_task("invoices"), "mixtral-v1")
    ids = mixtral_ids()
    runs = [
        {
            "name": name,
            "prompt": [1] + ids(prompt.full(text)),  # type: ignore[operator]
            "document": ids(text),  # type: ignore[operator]
            "output": ids(reference_answer(text)) + [2],  # type: ignore[operator]
        }
        for name, text in docs
    ]
    results = []
    for drafts, bfs, slots in SETTINGS:
        r = replay(runs, draft=drafts, bfs=bfs, depth=18, sam_budget=slots)
        del r["per_document"]
        r["max_tokens_per_step"] = DraftTree(drafts, slots).max_tokens_per_step
        results.append(r)
        print(drafts, bfs, slots, r["mean_accept_length"], r["distribution"], flush=True)
    report = {**describe(), "corpus": spec.__dict__, "documents": args.docs, "replays": results}
    lines = heading(
        "NGRAM accept length at the profile's draft tree, Mixtral's tokens",
        report,
        f"First {args.docs} documents of the full-size job; answers: the reference answers in "
        "Mixtral's tokenizer; replayed with SGLang's NgramCorpus, not served.",
    ) + [
        "| draft tokens | BFS breadth | corpus slots | tree's most per step | verify steps "
        "| mean accept length | distribution (tokens: steps) |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        dist = ", ".join(f"{k}: {v}" for k, v in r["distribution"].items())
        lines.append(
            f"| {r['draft_tokens']} | {r['bfs_breadth']} | {r['sam_budget']} | "
            f"{r['max_tokens_per_step']} | {r['verify_steps']} | {r['mean_accept_length']} "
            f"| {dist} |"
        )
    save_results("accept-replay", report, lines, args.out)


if __name__ == "__main__":
    main()

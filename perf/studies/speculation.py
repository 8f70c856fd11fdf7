"""NGRAM speculation served on the CPU, beside its replay: off, NGRAM, NGRAM + job corpus.

    ./dev python perf/studies/speculation.py --docs 12 --dtype float32 --concurrency 1   # exactness
    ./dev python perf/studies/speculation.py --docs 64 --concurrency 32        # speed
    ./dev python perf/studies/speculation.py --task perf/studies/verbatim_task.py:TASK  # copied

The same documents go through three CPU servers of the embedded profile, one after another:
speculation off, NGRAM as the profile sets it without a corpus, and NGRAM with the documents
loaded as the job corpus (as the gateway does per job). Each setting starts on a flushed cache.
Reported per setting: whether every temperature-0 output equals the output with speculation off,
the accept length SGLang itself reports (completion tokens after the first per verify step,
and the per-step distribution from `meta_info`), the accept length perf/studies/ngram_replay.py
computes from the speculation-off outputs, how many documents agree step for step, wall time
and output tokens/s.

Exactness needs `--dtype float32`: in bfloat16 a batch of draft tokens and a single decode
token round differently, which flips near-tied greedy choices (plain greedy does it too, between
a cold and a cached prefill). Step-for-step agreement with the replay needs `--concurrency 1`:
the NGRAM trie is shared, so concurrent requests draft from each other in an order the replay
does not reproduce. Saves perf/results/speculation-<date>-<commit>.{json,md}.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.bench.direct import empty_cache
from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument
from forkpoint.perf.bench.results import save as save_results
from forkpoint.perf.studies.ngram_replay import greedy_runs, replay
from forkpoint.runtime.client import RuntimeClient
from forkpoint.runtime.corpora import JobCorpora
from forkpoint.runtime.launcher import RuntimeServer
from forkpoint.runtime.profiles import LaunchProfile, Speculation, get_profile

GRID = [(4, 2), (8, 1), (8, 4), (16, 4), (16, 8)]  # (draft tokens, BFS breadth) replayed


def settings(profile: LaunchProfile, sam_budget: int) -> dict[str, Speculation]:
    ngram = profile.speculation.model_copy(update={"algorithm": "NGRAM", "external_sam_budget": 0})
    return {
        "off": Speculation(),
        "NGRAM": ngram,
        "NGRAM + job corpus": ngram.model_copy(update={"external_sam_budget": sam_budget}),
    }


def serve(
    profile: LaunchProfile,
    speculation: Speculation,
    args: argparse.Namespace,
    docs: list[tuple[str, str]],
) -> dict:
    """Every document through one server with these speculation settings."""
    profile = profile.model_copy(
        update={"port": 0, "dtype": args.dtype, "speculation": speculation}
    )
    with RuntimeServer(profile) as server:
        empty_cache(RuntimeClient(server.url))
        corpus = None
        if speculation.external_sam_budget:
            corpus = JobCorpora(server.url, speculation).register("perf", [d[1] for d in docs])
        start = time.perf_counter()
        runs = greedy_runs(server.url, args.task, args.chat_format, docs, args.concurrency)
        wall = time.perf_counter() - start
    return {"runs": runs, "wall_s": round(wall, 2), "corpus": corpus}


def served_steps(run: dict) -> Counter:
    """Verify steps by tokens gained (accepted drafts + 1), as SGLang reports them."""
    histogram = run["spec"].get("spec_correct_drafts_histogram") or []
    return Counter({k + 1: n for k, n in enumerate(histogram) if n})


def compare(name: str, speculation: Speculation, served: dict, baseline: list[dict]) -> dict:
    runs = served["runs"]
    tokens = sum(len(r["output"]) - 1 for r in runs)  # the first token comes from the prefill
    same = [r["output"] == b["output"] for r, b in zip(runs, baseline, strict=True)]
    row = {
        "setting": name,
        "identical_outputs": sum(same),
        "documents": len(runs),
        "output_tokens": sum(len(r["output"]) for r in runs),
        "wall_s": served["wall_s"],
        "corpus": served["corpus"],
    }
    row["output_tok_s"] = round(row["output_tokens"] / served["wall_s"], 1)
    if speculation.algorithm is None:
        return {**row, "served_accept_length": 1.0, "replayed_accept_length": 1.0}
    steps = sum(r["spec"].get("spec_verify_ct", 0) for r in runs)
    replayed = replay(
        baseline,
        draft=speculation.num_draft_tokens,
        bfs=speculation.max_bfs_breadth,
        depth=speculation.max_trie_depth,
        sam_budget=speculation.external_sam_budget,
        capacity=speculation.capacity,
    )
    agree = sum(
        served_steps(r) == Counter(steps_of_doc)
        for r, steps_of_doc in zip(runs, replayed.pop("per_document"), strict=True)
    )
    served_distribution = sum((served_steps(r) for r in runs), Counter())
    return {
        **row,
        "served_accept_length": round(tokens / steps, 3) if steps else 0.0,
        "served_verify_steps": steps,
        "served_distribution": dict(sorted(served_distribution.items())),
        "replayed_accept_length": replayed["mean_accept_length"],
        "replayed_verify_steps": replayed["verify_steps"],
        "replayed_distribution": replayed["distribution"],
        "documents_agreeing_step_for_step": agree,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="invoices", help="a built-in task or FILE.py:NAME")
    parser.add_argument("--docs", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=600, help="document length, tokens")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--dtype", default="float32", help="float32 for exactness, bfloat16")
    parser.add_argument("--sam-budget", type=int, default=4, help="draft slots for the corpus")
    parser.add_argument("--chat-format", default="chatml")
    add_out_argument(parser)
    args = parser.parse_args()
    docs = generate(CorpusSpec(documents=args.docs, min_tokens=200, max_tokens=args.max_tokens))
    profile = get_profile("cpu-small")
    served = {
        name: (spec, serve(profile, spec, args, docs))
        for name, spec in settings(profile, args.sam_budget).items()
    }
    baseline = served["off"][1]["runs"]
    rows = [compare(name, spec, result, baseline) for name, (spec, result) in served.items()]
    report = {
        **describe(),
        "task": args.task,
        "documents": args.docs,
        "dtype": args.dtype,
        "concurrency": args.concurrency,
        "profile": "cpu-small",
        "speculation": {k: s.model_dump() for k, (s, _) in served.items()},
        "settings": rows,
    }
    off_wall = rows[0]["wall_s"]
    lines = heading(
        "NGRAM speculation, served and replayed",
        report,
        f"Task {args.task}, {args.docs} documents, cpu-small ({args.dtype}), "
        f"{args.concurrency} request(s) at a time, temperature 0. Served by SGLang on the CPU; "
        "replayed = perf/studies/ngram_replay.py over the speculation-off outputs.",
    ) + [
        "| setting | outputs identical to off | accept length served | accept length replayed "
        "| documents agreeing step for step | wall s | output tok/s | speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        agree = r.get("documents_agreeing_step_for_step", "–")
        lines.append(
            f"| {r['setting']} | {r['identical_outputs']}/{r['documents']} | "
            f"{r['served_accept_length']} | {r['replayed_accept_length']} | {agree} | "
            f"{r['wall_s']} | {r['output_tok_s']} | {off_wall / r['wall_s']:.2f}x |"
        )
    for r in rows[1:]:
        lines.append(
            f"\n{r['setting']}: served steps (tokens gained: count) "
            f"{r['served_distribution']}; replayed {r['replayed_distribution']}."
        )
    grid = [
        replay(baseline, draft=d, bfs=b, depth=18, sam_budget=d // 2 if corpus else 0)
        for d, b in GRID
        for corpus in (False, True)
    ]
    report["replayed_grid"] = [{k: v for k, v in g.items() if k != "per_document"} for g in grid]
    lines += [
        "",
        "Replayed only, on the speculation-off outputs (job corpus: half the slots):",
        "",
        "| draft tokens | BFS breadth | job corpus | verify steps | mean accept length |",
        "|---:|---:|---|---:|---:|",
    ]
    lines += [
        f"| {g['draft_tokens']} | {g['bfs_breadth']} | {g['job_corpus']} | "
        f"{g['verify_steps']} | {g['mean_accept_length']} |"
        for g in grid
    ]
    save_results("speculation", report, lines, args.out)


if __name__ == "__main__":
    main()

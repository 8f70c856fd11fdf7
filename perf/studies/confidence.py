"""Confidence per field (#28) measured: what returning logprobs costs, and whether confidence
separates right from wrong values, on the built-in tasks' labelled samples.

Per task, two runs over the same 20 documents on one server, each from an empty cache (SGLang's
/flush_cache drops the prefix cache and NGRAM's trie): without logprobs and with them (the
order alternates between tasks, so neither variant always runs on a warmer machine). Greedy
decoding writes the same tokens either way, so write tokens/s compares the two directly. The
run with logprobs is scored as `forkpoint eval` scores it: per field, accuracy by confidence bin
and the AUROC of confidence for right vs wrong values.

    ./dev python perf/studies/confidence.py                       # starts the embedded default
    ./dev python perf/studies/confidence.py --sglang-url http://127.0.0.1:30000

Saves perf/results/confidence-<date>-<commit>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Any

from forkpoint.perf.bench.direct import empty_cache
from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument
from forkpoint.perf.bench.results import save as save_results
from forkpoint.programs.batch import BatchDriver, BatchOptions
from forkpoint.programs.evaluation.calibration import calibration
from forkpoint.programs.evaluation.evaluate import Evaluation, load_labels, run_evaluation
from forkpoint.programs.evaluation.report import confidence_table
from forkpoint.programs.extractor import Extractor
from forkpoint.programs.target import Target, resolve_target
from forkpoint.programs.tasks.registry import get_task
from forkpoint.runtime.launcher import RuntimeServer
from forkpoint.runtime.profiles import get_profile

SAMPLES = Path(__file__).resolve().parents[2] / "samples"  # perf/studies/ → the checkout
TASKS = ("contacts", "support_tickets", "invoices")  # shortest answers first


def evaluate(
    target: Target, name: str, concurrency: int, logprobs: bool, documents: int
) -> Evaluation:
    """The task's first `documents` labelled samples from an empty cache, with or without
    logprobs."""
    empty_cache(target.client())
    task = get_task(name)
    folder = SAMPLES / name
    labels = load_labels(SAMPLES / "labels" / f"{name}.jsonl", folder, task)[:documents]
    driver = BatchDriver(target, task, BatchOptions(concurrency=concurrency))
    driver.extractor = Extractor(target, task, confidence=logprobs)  # the one difference
    return run_evaluation(driver, task, folder, labels)


def run_figures(evaluation: Evaluation) -> dict[str, Any]:
    summary = evaluation.summary.to_json()
    keys = ("documents", "ok", "needs_review", "failed", "output_tokens", "wall_seconds")
    return {
        **{key: summary[key] for key in keys},
        "write_tokens_per_second": summary["write_tokens_per_second"],
        "accept_length": summary.get("accept_length"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sglang-url", help="a running server (default: start cpu-small)")
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--documents", type=int, default=20, help="per task (the first N)")
    add_out_argument(parser)
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        url = args.sglang_url
        if url is None:
            profile = get_profile("cpu-small").model_copy(update={"port": 0})
            url = stack.enter_context(RuntimeServer(profile)).url
        target = resolve_target(url)
        tasks = []
        for k, name in enumerate(args.tasks):
            order = (False, True) if k % 2 == 0 else (True, False)
            runs = {
                flag: evaluate(target, name, args.concurrency, flag, args.documents)
                for flag in order
            }
            same = [
                a.data == b.data
                for a, b in zip(runs[False].results, runs[True].results, strict=True)
            ]
            tasks.append(
                {
                    "task": name,
                    "first": "with logprobs" if order[0] else "without logprobs",
                    "without": run_figures(runs[False]),
                    "with": run_figures(runs[True]),
                    "same_answers": sum(same),
                    "confidence": calibration(runs[True].confidence_points()),
                    "fields": _per_field(runs[True]),
                }
            )
            print(tasks[-1]["task"], tasks[-1]["without"], tasks[-1]["with"], flush=True)
            report = {  # saved after every task: a slow machine still leaves a record
                **describe(),
                "runtime": args.sglang_url or "cpu-small (embedded, SmolLM2-135M, NGRAM)",
                "concurrency": args.concurrency,
                "documents_per_task": args.documents,
                "load": f"1-minute load average {load_at_start:.2f} at the start, "
                f"{os.getloadavg()[0]:.2f} after the last task, on {os.cpu_count()} cores",
                "tasks": tasks,
                "all": calibration([p for t in tasks for p in _points(t)]),
            }
            save(report, args.out)


def _per_field(evaluation: Evaluation) -> dict[str, Any]:
    """Per field: values, right, AUROC (field-level points of that field only)."""
    from forkpoint.programs.confidence import field_confidence

    out = {}
    for name, score in evaluation.scores.items():
        points = [
            (sure, score.outcomes[i])
            for i, result in enumerate(evaluation.results)
            if result.has_data
            and result.confidence
            and (sure := field_confidence(result.confidence, name)) is not None
        ]
        section = calibration(points)
        out[name] = {k: section[k] for k in ("values", "right", "auroc")} | {"points": points}
    return out


def _points(task: dict[str, Any]) -> list[tuple[float, bool]]:
    return [(p[0], p[1]) for field in task["fields"].values() for p in field["points"]]


def save(report: dict, out: Path) -> None:
    lines = heading(
        "Confidence per field: logprob cost, and accuracy by confidence",
        report,
        f"Runtime: {report['runtime']}; labelled samples ({report['documents_per_task']} per "
        f"task, the first in name order), concurrency "
        f"{report['concurrency']}, temperature 0; each run from an empty cache, the order "
        f"alternating between tasks. Load: {report.get('load', 'not recorded')}.",
    )
    lines += [
        "## What logprobs cost",
        "",
        "| task | ran first | output tok without / with | wall s without | wall s with "
        "| write tok/s without "
        "| write tok/s with | change | same answers |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    total = {"without": [0, 0.0], "with": [0, 0.0]}
    for task in report["tasks"]:
        a, b = task["without"], task["with"]
        for key, run in (("without", a), ("with", b)):
            total[key][0] += run["output_tokens"]
            total[key][1] += run["wall_seconds"]
        before, after = (run["output_tokens"] / run["wall_seconds"] for run in (a, b))
        lines.append(
            f"| {task['task']} | {task['first']} | {a['output_tokens']:,} / {b['output_tokens']:,} "
            f"| {a['wall_seconds']} | {b['wall_seconds']} | {before:.2f} | {after:.2f} "
            f"| {after / before - 1:+.1%} | {task['same_answers']}/{b['documents']} |"
        )
    rate = {key: tokens / seconds for key, (tokens, seconds) in total.items()}
    report["write_tokens_per_second"] = {k: round(v, 3) for k, v in rate.items()}
    lines += [
        f"| all | | {total['without'][0]:,} / {total['with'][0]:,} | {total['without'][1]:.1f} "
        f"| {total['with'][1]:.1f} | {rate['without']:.2f} | {rate['with']:.2f} "
        f"| {rate['with'] / rate['without'] - 1:+.1%} | |",
        "",
        "Logprobs cannot change a token: the sampler picks it before it takes the log-softmax "
        "(sglang/srt/layers/sampler.py:216 then :221; NGRAM's verify before "
        "compute_spec_logprobs, ngram_worker.py:479 then :517). Answers that differ between the "
        "two runs are greedy near-ties decided differently by another batch and other NGRAM "
        "drafts (floating-point sums change with the batch's shape).",
        "",
        "## Does confidence separate right from wrong values",
        "",
        "Field-level: one value per (document, field) of the documents with data; its confidence "
        "the joint probability of the field's values, right when the field matches its label "
        "(normalized, as `forkpoint eval` scores it).",
        "",
    ]
    for task in report["tasks"]:
        lines += [f"### {task['task']}", "", *confidence_table(task["confidence"]), ""]
        lines += ["| field | values | right | AUROC |", "|---|---:|---:|---:|"]
        for name, row in task["fields"].items():
            auroc = "n/a" if row["auroc"] is None else f"{row['auroc']:.2f}"
            lines.append(f"| {name} | {row['values']} | {row['right']} | {auroc} |")
        lines.append("")
    lines += ["### all three tasks", "", *confidence_table(report["all"]), ""]
    save_results("confidence", report, lines, out)


if __name__ == "__main__":
    main()

"""Copy fields (#20) measured: each built-in task on its labelled samples, without and with copy
fields, on one server, each variant from an empty prefix cache and an empty NGRAM trie.

Per variant: per-field accuracy (exact and normalized, as `forkpoint eval` scores it), the share
of each string field's values found verbatim in their document, the valid rate, output tokens,
wall time, write tokens/s and the seconds spent building the documents' grammars; per field, the
paired difference (McNemar) between the two. The built-in tasks have copy fields (the fields whose
labelled values are printed in the document); the other variant is the same task with none
(`no_copy`): same prompt, examples and limits, so the same fork-point prefix, and the plain JSON
schema as the constraint.

    ./dev python perf/studies/copy_fields.py                       # starts the embedded default
    ./dev python perf/studies/copy_fields.py --sglang-url http://127.0.0.1:30000

Saves perf/results/copy-fields-<date>-<commit>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from pathlib import Path

from forkpoint.perf.bench.direct import empty_cache
from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument
from forkpoint.perf.bench.results import save as save_results
from forkpoint.programs.batch import BatchDriver, BatchOptions
from forkpoint.programs.evaluation.evaluate import Evaluation, load_labels, run_evaluation
from forkpoint.programs.evaluation.report import report as eval_report
from forkpoint.programs.target import Target, resolve_target
from forkpoint.programs.tasks.registry import get_task
from forkpoint.programs.tasks.task import ExtractionTask
from forkpoint.runtime.launcher import RuntimeServer
from forkpoint.runtime.profiles import get_profile

SAMPLES = Path(__file__).resolve().parents[2] / "samples"  # perf/studies/ → the checkout

TASKS = ("invoices", "contacts", "support_tickets")


def no_copy(task: ExtractionTask) -> ExtractionTask:
    """`task` without copy fields: same prompt, same examples, the plain schema's constraint."""
    return dataclasses.replace(task, name=f"{task.name}-no-copy", copy_fields=())


def evaluate(target: Target, task: ExtractionTask, concurrency: int) -> Evaluation:
    """One variant from an empty cache: SGLang's /flush_cache drops the prefix cache and NGRAM's
    trie, which would otherwise draft this variant's answers from the other's."""
    empty_cache(target.client())
    folder = SAMPLES / task.name.removesuffix("-no-copy")
    labels = load_labels(SAMPLES / "labels" / f"{folder.name}.jsonl", folder, task)
    options = BatchOptions(concurrency=concurrency)
    driver = BatchDriver(target, task, options)
    return run_evaluation(driver, task, folder, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sglang-url", help="a running server (default: start cpu-small)")
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--copy-first", action="store_true", help="run the copy variant first (order check)"
    )
    add_out_argument(parser)
    args = parser.parse_args()
    profile = get_profile("cpu-small")
    with contextlib.ExitStack() as stack:
        url = args.sglang_url
        if url is None:
            url = stack.enter_context(RuntimeServer(profile.model_copy(update={"port": 0}))).url
        target = resolve_target(url)  # the served model's format, as before
        tasks = []
        for name in args.tasks:
            copied = get_task(name)
            plain = no_copy(copied)
            # each from an empty cache (evaluate flushes); the order is the only difference
            order = (copied, plain) if args.copy_first else (plain, copied)
            runs = {t.name: evaluate(target, t, args.concurrency) for t in order}
            tasks.append({"task": name, **eval_report(runs[plain.name], runs[copied.name])})
    report = {
        **describe(),
        "runtime": args.sglang_url or "cpu-small (embedded, SmolLM2-135M, NGRAM)",
        "chat_format": target.chat_format,
        "concurrency": args.concurrency,
        "ran_first": "with copy fields" if args.copy_first else "without copy fields",
        "tasks": tasks,
    }
    save(report, args.out)


def save(report: dict, out: Path) -> None:
    lines = heading(
        "Copy fields: the built-in tasks without and with them",
        report,
        f"Runtime: {report['runtime']}; labelled samples (20 per task), concurrency "
        f"{report['concurrency']}, temperature 0; per task the variant {report['ran_first']} "
        "ran first.",
    )
    lines += [
        "| task | variant | valid | copy-field values in document | other strings in document "
        "| output tok | wall s | write tok/s | grammar s/doc |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task in report["tasks"]:
        copied = set(task["variants"][1]["copy_fields"])
        for variant in task["variants"]:
            run = variant["run"]
            inside, outside = _in_document(variant["strings"], copied)
            per_doc = run.get("grammar_seconds", 0) / max(variant["documents"], 1)
            lines.append(
                f"| {task['task']} | {variant['task']} | {variant['valid_rate']:.0%} | {inside} "
                f"| {outside} | {run['output_tokens']:,} | {run['wall_seconds']} "
                f"| {run['write_tokens_per_second']} | {per_doc:.3f} |"
            )
    lines += ["", "Per field, normalized accuracy (exact in brackets):", ""]
    for task in report["tasks"]:
        plain, copy = task["variants"]
        lines += [
            f"### {task['task']}",
            "",
            "| field | without | with copy fields | Δ | note |",
            "|---|---:|---:|---:|---|",
        ]
        for name, row in plain["fields"].items():
            other = copy["fields"][name]
            note = task["comparison"]["fields"][name]["note"]
            mark = " (copy)" if name in copy["copy_fields"] else ""
            lines.append(
                f"| {name}{mark} | {row['normalized']:.2f} ({row['exact']:.2f}) | "
                f"{other['normalized']:.2f} ({other['exact']:.2f}) | "
                f"{other['normalized'] - row['normalized']:+.2f} | {note} |"
            )
        lines.append("")
    save_results("copy-fields", report, lines, out)


def _in_document(strings: dict, copied: set[str]) -> tuple[str, str]:
    """'found/values' for the copy fields' paths and for every other string path."""
    totals = {True: [0, 0], False: [0, 0]}
    for path, row in strings.items():
        total = totals[path in copied]
        total[0] += round(row["in_document"] * row["values"])
        total[1] += row["values"]
    inside, outside = (f"{found}/{values}" if values else "–" for found, values in totals.values())
    return inside, outside


if __name__ == "__main__":
    main()

"""Confidence per field (#28), calibration only: the built-in tasks' labelled samples with
logprobs, all tasks at once on one server (its batches shared, so a loaded machine still gets
through them), scored as `forkpoint eval` scores them: accuracy by confidence bin and the AUROC
of confidence for right vs wrong field values. The cost of logprobs is confidence.py's.

    ./dev python perf/studies/confidence_calibration.py --sglang-url http://127.0.0.1:30000

Saves perf/results/confidence-calibration-<date>-<commit>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from forkpoint.perf.bench.direct import empty_cache
from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument
from forkpoint.perf.bench.results import save as save_results
from forkpoint.perf.studies.confidence import TASKS, _per_field, _points
from forkpoint.programs.batch import BatchDriver, BatchOptions
from forkpoint.programs.evaluation.calibration import calibration
from forkpoint.programs.evaluation.evaluate import Evaluation, load_labels, run_evaluation
from forkpoint.programs.evaluation.report import confidence_table
from forkpoint.programs.target import Target, resolve_target
from forkpoint.programs.tasks.registry import get_task
from forkpoint.runtime.launcher import RuntimeServer
from forkpoint.runtime.profiles import get_profile

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def evaluate(target: Target, name: str, skip: int, documents: int, concurrency: int) -> Evaluation:
    task = get_task(name)
    folder = SAMPLES / name
    labels = load_labels(SAMPLES / "labels" / f"{name}.jsonl", folder, task)
    driver = BatchDriver(target, task, BatchOptions(concurrency=concurrency))
    return run_evaluation(driver, task, folder, labels[skip : skip + documents])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sglang-url", help="a running server (default: start cpu-small)")
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--skip", type=int, default=0, help="labelled documents to leave out")
    parser.add_argument("--documents", type=int, default=20, help="per task, after --skip")
    parser.add_argument("--concurrency", type=int, default=10, help="per task")
    add_out_argument(parser)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.sglang_url
        if url is None:
            profile = get_profile("cpu-small").model_copy(update={"port": 0})
            url = stack.enter_context(RuntimeServer(profile)).url
        target = resolve_target(url)
        empty_cache(target.client())
        with ThreadPoolExecutor(len(args.tasks)) as pool:
            runs = list(
                pool.map(
                    lambda name: evaluate(
                        target, name, args.skip, args.documents, args.concurrency
                    ),
                    args.tasks,
                )
            )
    tasks = [
        {
            "task": name,
            "documents": run.summary.total,
            "valid": run.summary.ok + run.summary.needs_review,
            "confidence": calibration(run.confidence_points()),
            "fields": _per_field(run),
        }
        for name, run in zip(args.tasks, runs, strict=True)
    ]
    overall = calibration([p for t in tasks for p in _points(t)])
    report = {
        **describe(),
        "runtime": args.sglang_url or "cpu-small (embedded, SmolLM2-135M, NGRAM)",
        "documents": f"labelled samples {args.skip + 1}-{args.skip + args.documents} per task",
        "tasks": tasks,
        "all": overall,
    }
    lines = heading(
        "Confidence per field: accuracy by confidence, the built-in tasks",
        report,
        f"Runtime: {report['runtime']}; {report['documents']} (name order), the tasks run at "
        "once, temperature 0; field-level values: a field's confidence is the joint "
        "probability of its values, right when it matches its label (normalized).",
    )
    for task in tasks:
        lines += [f"## {task['task']} ({task['valid']}/{task['documents']} valid)", ""]
        lines += [*confidence_table(task["confidence"]), ""]
        lines += ["| field | values | right | AUROC |", "|---|---:|---:|---:|"]
        for name, row in task["fields"].items():
            auroc = "n/a" if row["auroc"] is None else f"{row['auroc']:.2f}"
            lines.append(f"| {name} | {row['values']} | {row['right']} | {auroc} |")
        lines.append("")
    lines += ["## the tasks together", "", *confidence_table(overall), ""]
    save_results("confidence-calibration", report, lines, args.out)


if __name__ == "__main__":
    main()

"""`forkpoint eval`: a task's accuracy on labelled documents, optionally against a variant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from forkpoint.cli.errors import reported
from forkpoint.cli.options import (
    ChatFormatOption,
    ConcurrencyOption,
    ProfileOption,
    SglangUrlOption,
    TaskModuleOption,
    TaskOption,
    choose_task,
    runtime_target,
)

if TYPE_CHECKING:
    from forkpoint.programs.evaluation.evaluate import Evaluation, Label
    from forkpoint.programs.target import Target
    from forkpoint.programs.tasks.task import ExtractionTask


def eval_(
    folder: Annotated[Path, typer.Argument(help="Folder of the labelled documents.")],
    labels: Annotated[Path, typer.Option(help="JSONL: {document, expected} per line.")],
    task: TaskOption = "invoices",
    task_module: TaskModuleOption = None,
    compare: Annotated[
        str | None, typer.Option(help="Another variant (task name or MODULE:NAME) to compare.")
    ] = None,
    out_dir: Annotated[Path, typer.Option(help="Where report.json/.md and diffs.jsonl go.")] = Path(
        "eval-report"
    ),
    profile: ProfileOption = "cpu-small",
    sglang_url: SglangUrlOption = None,
    chat_format: ChatFormatOption = None,
    concurrency: ConcurrencyOption = None,
) -> None:
    """Run TASK over FOLDER and score every field against LABELS."""
    with reported():
        from forkpoint.programs.evaluation.evaluate import load_labels
        from forkpoint.runtime.profiles import get_profile

        variants = [choose_task(task, task_module)]
        if compare:
            variants.append(choose_task(compare, compare if ":" in compare else None))
        checked = [load_labels(labels, folder, variant) for variant in variants]  # before running
        launch = get_profile(profile)
        with runtime_target(launch, sglang_url, chat_format) as target:
            evaluations = [
                _evaluate(
                    target,
                    variant,
                    folder,
                    variant_labels,
                    concurrency or launch.client_concurrency,
                )
                for variant, variant_labels in zip(variants, checked, strict=True)
            ]
    from forkpoint.programs.evaluation.report import markdown, report

    data = report(*evaluations)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown(data))
    with (out_dir / "diffs.jsonl").open("w") as sink:
        for evaluation in evaluations:
            for row in evaluation.diffs():
                sink.write(json.dumps(row, ensure_ascii=False) + "\n")
    _print(data)
    Console().print(f"reports: {out_dir}/report.json, report.md, diffs.jsonl")


def _evaluate(
    target: Target, task: ExtractionTask, folder: Path, labels: list[Label], concurrency: int
) -> Evaluation:
    from forkpoint.programs.batch import BatchDriver, BatchOptions
    from forkpoint.programs.evaluation.evaluate import run_evaluation

    driver = BatchDriver(target, task, BatchOptions(concurrency=concurrency))
    return run_evaluation(driver, task, folder, labels)


def _confidence(section: dict) -> Table | str:
    if not section["values"]:
        return "confidence: none (the runtime returned no logprobs)"
    auroc = "n/a" if section["auroc"] is None else f"{section['auroc']:.2f}"
    table = Table(
        "confidence",
        "values",
        "right",
        "accuracy",
        title=f"confidence of {section['values']} field values: AUROC right vs wrong {auroc}",
    )
    for row in section["bins"]:
        accuracy = "" if row["accuracy"] is None else f"{row['accuracy']:.0%}"
        table.add_row(row["bin"], str(row["values"]), str(row["right"]), accuracy)
    return table


def _print(data: dict) -> None:
    console = Console()
    for variant in data["variants"]:
        table = Table(
            "field",
            "exact",
            "normalized",
            "P",
            "R",
            "F1",
            title=f"{variant['task']}: valid {variant['valid_rate']:.0%}, "
            f"truncated {variant['truncated_rate']:.0%}, grounded "
            + ("n/a" if variant["grounded_rate"] is None else f"{variant['grounded_rate']:.0%}"),
        )
        for name, row in variant["fields"].items():
            prf = (
                [f"{row[k]:.2f}" for k in ("precision", "recall", "f1")]
                if "f1" in row
                else [""] * 3
            )
            table.add_row(name, f"{row['exact']:.2f}", f"{row['normalized']:.2f}", *prf)
        console.print(table)
        console.print(_confidence(variant["confidence"]))
    if "comparison" in data:
        comparison = data["comparison"]
        table = Table(
            "field", "Δ normalized", "note", title=f"{comparison['b']} vs {comparison['a']}"
        )
        for name, row in comparison["fields"].items():
            table.add_row(name, f"{row['delta_normalized']:+.2f}", row["note"])
        console.print(table)

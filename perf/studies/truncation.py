"""Runaway outputs, measured: the same list-field task with and without bounds, same documents.

    ./dev python perf/studies/truncation.py              # 24 changelogs on the embedded runtime
    ./dev python perf/studies/truncation.py --docs 100 --sglang-url http://127.0.0.1:30000

A small model asked for a list keeps adding items (or one string keeps growing) until the output
token limit, leaving truncated JSON; the grammar keeps it schema-valid but cannot make it stop.
`maxItems`/`maxLength` (Pydantic `max_length` on the list and on its strings) let the grammar
close the JSON. Reports per variant: ok / truncated / invalid / error, the truncated rate, output
tokens, wall time and write tokens/s. Saves perf/results/truncation-<date>-<commit>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import random
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument
from forkpoint.perf.bench.results import save as save_results
from forkpoint.programs.batch import BatchDriver, BatchOptions
from forkpoint.programs.documents.document import from_text
from forkpoint.programs.target import Target
from forkpoint.programs.tasks.task import ExtractionTask
from forkpoint.runtime.launcher import RuntimeServer
from forkpoint.runtime.profiles import get_profile

INSTRUCTIONS = "Extract the release's version and its list of changes, one item per change."
AREAS = "parser cache scheduler exporter login search billing sync upload dashboard".split()
VERBS = "Fix Add Improve Remove Speed up Document Refactor Harden".split()


class Unbounded(BaseModel):
    version: str = Field(description="The release version, e.g. 2.4.1.")
    changes: list[str] = Field(description="Each change, as written.")


class Bounded(BaseModel):
    version: str = Field(max_length=20, description="The release version, e.g. 2.4.1.")
    changes: list[Annotated[str, Field(max_length=80)]] = Field(
        max_length=8, description="Each change, as written (at most 8)."
    )


def changelogs(count: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    docs = []
    for i in range(count):
        version = f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{i}"
        lines = [f"Release {version} ({rng.choice(['stable', 'beta'])})", ""]
        for _ in range(rng.randint(3, 12)):
            what = f"{rng.choice(VERBS)} {rng.choice(AREAS)} {rng.choice(AREAS)} handling"
            lines.append(f"* {what} (#{rng.randint(100, 9999)})")
        docs.append((f"changelog-{i:03d}.md", "\n".join(lines) + "\n"))
    return docs


def run(
    url: str,
    model: type[BaseModel],
    docs: list[tuple[str, str]],
    max_tokens: int,
    concurrency: int,
) -> dict:
    task = ExtractionTask(
        name=model.__name__.lower(),
        instructions=INSTRUCTIONS,
        output_model=model,
        max_output_tokens=max_tokens,
    )
    target = Target(url, "chatml")  # the embedded model's format (the extractor checks it)
    driver = BatchDriver(target, task, BatchOptions(concurrency=concurrency))
    results, summary = driver.summarized([from_text(name, text) for name, text in docs])
    statuses: dict[str, int] = {}
    for result in results:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    figures = summary.to_json()
    return {
        "variant": model.__name__.lower(),
        "schema_bounds": "maxItems 8, maxLength 80/20" if model is Bounded else "none",
        "statuses": statuses,
        "truncated_rate": round(statuses.get("truncated", 0) / len(docs), 3),
        "valid_rate": round(
            (statuses.get("ok", 0) + statuses.get("needs_review", 0)) / len(docs), 3
        ),
        **{k: figures[k] for k in ("output_tokens", "wall_seconds", "write_tokens_per_second")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--max-output-tokens", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--sglang-url")
    add_out_argument(parser)
    args = parser.parse_args()
    docs = changelogs(args.docs)
    with contextlib.ExitStack() as stack:
        url = args.sglang_url
        if url is None:
            profile = get_profile("cpu-small").model_copy(update={"port": 0})
            url = stack.enter_context(RuntimeServer(profile)).url
        runs = [
            run(url, model, docs, args.max_output_tokens, args.concurrency)
            for model in (Unbounded, Bounded)
        ]
    report = {
        **describe(),
        "runtime": args.sglang_url or "cpu-small (embedded)",
        "documents": args.docs,
        "max_output_tokens": args.max_output_tokens,
        "concurrency": args.concurrency,
        "runs": runs,
    }
    save(report, args.out)


def save(report: dict, out: Path) -> None:
    lines = heading(
        "Runaway outputs",
        report,
        f"Runtime: {report['runtime']}. {report['documents']} changelogs (3–12 changes each), "
        f"max {report['max_output_tokens']} output tokens.",
    ) + [
        "| variant | bounds | ok | truncated | invalid | truncated rate | valid rate | output tok "
        "| wall s | write tok/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        s = r["statuses"]
        lines.append(
            f"| {r['variant']} | {r['schema_bounds']} | {s.get('ok', 0)} | "
            f"{s.get('truncated', 0)} | {s.get('invalid', 0)} | {r['truncated_rate']} | "
            f"{r['valid_rate']} | {r['output_tokens']:,} | {r['wall_seconds']} | "
            f"{r['write_tokens_per_second']} |"
        )
    save_results("truncation", report, lines, out)


if __name__ == "__main__":
    main()

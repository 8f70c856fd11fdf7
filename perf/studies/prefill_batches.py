"""The prefill batches SGLang's scheduler formed, read from its own log (#29 item 3).

    ./dev python perf/studies/prefill_batches.py LOG --since "2026-12-06 18:28:30" \\
        --until "2026-12-06 18:50:50" --concurrency 32 --accept 3.998 --answer-tokens 231

Reads the server log's "Prefill batch" lines (#new-seq, #new-token, #cached-token,
#running-req) within the window and splits them: steady state (at least half of `concurrency`
already running, so a batch refills the slots that finished) and the rest (the first wave, the
tail). Prints and saves the documents and new tokens per batch beside what
perf/projection/prefill_chunk.steady_chunk predicts for the run (`concurrency` running ×
`accept` tokens per step / `answer-tokens`, at least one document). Saves
prefill-batches-<date>-<commit>.json and .md (perf/bench/results.py).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path
from typing import Any

from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument, save
from forkpoint.perf.projection.prefill_chunk import steady_chunk

LINE = re.compile(
    r"^\[(?P<at>[\d-]+ [\d:]+)\] Prefill batch.*?#new-seq: (?P<seqs>\d+), "
    r"#new-token: (?P<new>\d+), #cached-token: (?P<cached>\d+).*?#running-req: (?P<running>\d+)"
)


def batches(text: str, since: str = "", until: str = "~") -> list[dict[str, Any]]:
    """The log's prefill batches with a timestamp in [since, until] (SGLang's
    "YYYY-MM-DD HH:MM:SS", compared as text)."""
    found = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match and since <= match["at"] <= until:
            found.append(
                {
                    "at": match["at"],
                    "documents": int(match["seqs"]),
                    "new_tokens": int(match["new"]),
                    "cached_tokens": int(match["cached"]),
                    "running": int(match["running"]),
                }
            )
    return found


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"batches": 0}
    documents = [r["documents"] for r in rows]
    return {
        "batches": len(rows),
        "documents_per_batch": round(sum(documents) / len(rows), 2),
        "new_tokens_per_batch": round(sum(r["new_tokens"] for r in rows) / len(rows), 1),
        "new_tokens_per_document": round(
            sum(r["new_tokens"] for r in rows) / max(1, sum(documents)), 1
        ),
        "by_documents": dict(sorted(Counter(documents).items())),
    }


def study(
    rows: list[dict[str, Any]], concurrency: int, accept: float, answer_tokens: float
) -> dict[str, Any]:
    steady = [r for r in rows if r["running"] >= concurrency / 2]
    rest = [r for r in rows if r["running"] < concurrency / 2]
    measured = summary(steady)
    per_document = measured.get("new_tokens_per_document", 0.0)
    predicted_documents = max(1.0, concurrency * accept / answer_tokens)
    return {
        "steady": measured,
        "rest": summary(rest),
        "model": {
            "documents_per_batch": round(predicted_documents, 2),
            "new_tokens_per_batch": round(
                steady_chunk(concurrency, accept, answer_tokens, per_document), 1
            ),
            "inputs": {
                "concurrency": concurrency,
                "accept": accept,
                "answer_tokens": answer_tokens,
                "new_tokens_per_document": per_document,
            },
        },
    }


def markdown(report: dict[str, Any]) -> list[str]:
    flags = report["flags"]
    details = (
        f"Log: {flags['log']}, {flags['since'] or 'start'} to {flags['until']}; "
        f"{flags['concurrency']} requests in flight; the run: {flags['what']}. From SGLang's "
        "own log lines."
    )
    lines = heading("Prefill batches SGLang formed", report, details)
    lines += [
        "| batches | count | documents per batch | new tokens per batch | by documents |",
        "|---|---:|---:|---:|---|",
    ]
    for name in ("steady", "rest"):
        row = report[name]
        if row["batches"]:
            lines.append(
                f"| {name} | {row['batches']} | {row['documents_per_batch']} | "
                f"{row['new_tokens_per_batch']} | {row['by_documents']} |"
            )
    model = report["model"]
    inputs = model["inputs"]
    lines += [
        "",
        f"Model (perf/projection/prefill_chunk.steady_chunk): {inputs['concurrency']} running × "
        f"{inputs['accept']} tokens per step / {inputs['answer_tokens']}-token answers → "
        f"{model['documents_per_batch']} documents ({model['new_tokens_per_batch']} new tokens) "
        "per prefill batch in steady state. steady: batches with at least half of the requests "
        "already running; rest: the first wave and the tail.",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--since", default="")
    parser.add_argument("--until", default="~")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--accept", type=float, required=True, help="tokens per verify step")
    parser.add_argument("--answer-tokens", type=float, required=True)
    parser.add_argument("--what", default="", help="which run wrote the log, for the report")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    rows = batches(args.log.read_text(errors="replace"), args.since, args.until)
    report = {
        **describe(),
        "flags": {k: str(v) for k, v in vars(args).items()},
        **study(rows, args.concurrency, args.accept, args.answer_tokens),
    }
    save("prefill-batches", report, markdown(report), args.out)


if __name__ == "__main__":
    main()

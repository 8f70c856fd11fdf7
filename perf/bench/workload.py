"""What a benchmark runs: one task over a list of documents, from the generated corpus or from
the user's own folder (the number HK3 cares about is the one for its own documents).

Shared by `forkpoint bench` and `forkpoint calibrate`, so both take the same arguments.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forkpoint.errors import DocumentError
from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.programs.documents.document import read_folder
from forkpoint.programs.tasks.registry import get_task, load_task
from forkpoint.programs.tasks.task import ExtractionTask


@dataclass(frozen=True)
class Workload:
    task: ExtractionTask
    documents: list[tuple[str, str]]  # (name, text), in the order they are sent
    source: dict[str, Any]  # what the report says the documents were

    def within_tokens(self, prefix_chars: int, target_tokens: int | None) -> Workload:
        """The leading documents whose estimated prompt tokens (4 characters a token) reach the
        target; at least one. None keeps them all."""
        if not target_tokens:
            return self
        total = 0
        kept: list[tuple[str, str]] = []
        for document in self.documents:
            if kept and total >= target_tokens:
                break
            kept.append(document)
            total += (prefix_chars + len(document[1])) // 4
        return Workload(self.task, kept, {**self.source, "documents": len(kept)})


def load_workload(
    folder: Path | None = None,
    *,
    task: str = "invoices",
    task_module: str | None = None,
    docs: int = 1000,
    min_tokens: int = 300,
    max_tokens: int = 1500,
    seed: int = 1,
    json_field: str | None = None,
) -> Workload:
    """The task (built-in or MODULE:NAME) and up to `docs` documents: the folder's readable ones
    in name order, or the generated invoice corpus when no folder is given."""
    chosen = load_task(task_module) if task_module else get_task(task)
    if folder is None:
        spec = CorpusSpec(docs, min_tokens, max_tokens, seed)
        return Workload(chosen, generate(spec), {"kind": "generated", **vars(spec)})
    documents: list[tuple[str, str]] = []
    unreadable: list[str] = []
    for document in read_folder(folder, json_field=json_field):
        if len(documents) == docs:
            break
        if document.text is None:
            unreadable.append(document.name)
        else:
            documents.append((document.name, document.text))
    if not documents:
        raise DocumentError(
            f"{folder} has no readable document to benchmark",
            hint=f"unreadable: {', '.join(unreadable[:5])}" if unreadable else None,
        )
    source = {
        "kind": "folder",
        "folder": str(folder),
        "documents": len(documents),
        "unreadable": unreadable,
    }
    return Workload(chosen, documents, source)


def describe(source: dict[str, Any]) -> str:
    """One line for a report: what the documents were."""
    if source.get("kind") == "folder":
        unreadable = len(source.get("unreadable", ()))
        skipped = f" ({unreadable} unreadable left out)" if unreadable else ""
        return f"{source['documents']} documents from {source['folder']}{skipped}"
    return (
        f"{source['documents']} generated invoices, {source['min_tokens']}–"
        f"{source['max_tokens']} tokens, seed {source['seed']}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The workload's arguments, for a perf script's argparse."""
    parser.add_argument(
        "folder",
        nargs="?",
        type=Path,
        help="your own documents (default: the generated invoice corpus)",
    )
    parser.add_argument("--task", default="invoices", help="a built-in task")
    parser.add_argument("--task-module", help="your own task: MODULE:NAME or path/file.py:NAME")
    parser.add_argument("--json-field", help="for .json/.jsonl files: the field with the text")
    parser.add_argument("--docs", type=int, default=1000, help="at most this many documents")
    parser.add_argument("--min-tokens", type=int, default=300, help="generated corpus only")
    parser.add_argument("--max-tokens", type=int, default=1500, help="generated corpus only")
    parser.add_argument("--seed", type=int, default=1, help="generated corpus only")
    parser.add_argument(
        "--target-tokens",
        type=int,
        help="stop adding documents once the prompts (prefix + document, at 4 characters a "
        "token) reach this many tokens; --docs is the cap",
    )


def from_arguments(args: argparse.Namespace) -> Workload:
    return load_workload(
        args.folder,
        task=args.task,
        task_module=args.task_module,
        docs=args.docs,
        min_tokens=args.min_tokens,
        max_tokens=args.max_tokens,
        seed=args.seed,
        json_field=args.json_field,
    )

"""A JSONL results file that a re-run can resume: documents already done are not sent again.

A document is done when the file's last record for it has status `ok` or `needs_review` and
the same content hash — an edited file (new hash) or a failed one is extracted again. Resuming
rewrites the file with the done records first (nothing accepted is lost), appends the new ones,
and finally compacts it to one record per document (the newest, in the place of the first).
A run cut short before compacting leaves a valid file: the last record per document wins.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from forkpoint.programs.documents.document import Document

DONE_STATUSES = ("ok", "needs_review")


class ResultsFile:
    def __init__(self, path: Path, *, resume: bool) -> None:
        self.path = path
        latest = _records(path) if resume and path.is_file() else {}
        self.done = {
            name: record
            for name, record in latest.items()
            if record.get("status") in DONE_STATUSES and record.get("sha256")
        }

    def is_done(self, doc: Document) -> bool:
        record = self.done.get(doc.name)
        return record is not None and doc.sha256 is not None and record["sha256"] == doc.sha256

    def compact(self) -> None:
        """One record per document: the newest, where the document first appeared."""
        _write(self.path, list(_records(self.path).values()))

    def open(self) -> TextIO:
        """The file to append new records to, holding the done records first."""
        _write(self.path, list(self.done.values()))
        return self.path.open("a", encoding="utf-8")


def _records(path: Path) -> dict[str, dict[str, Any]]:
    """The last record per document name, in the order names first appear."""
    records: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash: that document runs again
        if isinstance(record, dict) and isinstance(record.get("file"), str):
            records[record["file"]] = record
    return records


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as sink:
        for record in records:
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(partial, path)  # atomic: the old file stays whole until this point

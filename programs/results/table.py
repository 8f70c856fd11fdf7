"""Results as a table: one row per document, for spreadsheets, pandas and Parquet readers.

Columns: `file`, `status`, `sha256`, `error`, `review`, `confidence` (each value's confidence
as one JSON object, `{"vendor": 0.98, "line_items[0].amount": 0.71}`: one column whatever the
lists' lengths, read back with `json.loads`), then one column per answer field —
nested objects flattened with dots (`customer.name`), lists written as JSON text
(`line_items`: `[{"description": ...}]`) — then the usage figures (`usage.prompt_tokens`, ...).
Missing values are empty. `unflatten(row)` turns a row back into the answer's JSON shape, which
the task's model validates again (CSV holds text; the model gives numbers and dates back their
types). Parquet goes through pyarrow (`pip install 'forkpoint[tables]'`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FORMATS = ("csv", "parquet")
RECORD_COLUMNS = ("file", "status", "sha256", "error", "review", "confidence")
USAGE = "usage."


def rows(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows of result records (as in the results file): every row has every column."""
    flat = [_row(record) for record in records]
    columns = _columns(flat)
    return [{column: row.get(column) for column in columns} for row in flat]


def _row(record: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {key: record.get(key) for key in RECORD_COLUMNS}
    if row["review"] is not None:
        row["review"] = "; ".join(row["review"])
    if row["confidence"] is not None:
        row["confidence"] = json.dumps(row["confidence"], ensure_ascii=False)
    data = record.get("data")
    if isinstance(data, dict):
        _flatten(data, "", row)
    for key, value in (record.get("usage") or {}).items():
        row[USAGE + key] = value
    return row


def _flatten(data: dict[str, Any], prefix: str, row: dict[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            _flatten(value, f"{prefix}{key}.", row)
        elif isinstance(value, list):
            row[prefix + key] = json.dumps(value, ensure_ascii=False)
        else:
            row[prefix + key] = value


def _columns(flat: list[dict[str, Any]]) -> list[str]:
    """Record columns first, answer fields in first-seen order, usage last."""
    seen: dict[str, None] = dict.fromkeys(RECORD_COLUMNS)
    for row in flat:
        seen.update(dict.fromkeys(k for k in row if not k.startswith(USAGE)))
    for row in flat:
        seen.update(dict.fromkeys(k for k in row if k.startswith(USAGE)))
    return list(seen)


def unflatten(row: dict[str, Any]) -> dict[str, Any]:
    """A row's answer fields in the answer's JSON shape (lists decoded; empty cells are null)."""
    data: dict[str, Any] = {}
    for column, value in row.items():
        if column in RECORD_COLUMNS or column.startswith(USAGE):
            continue
        *parents, leaf = column.split(".")
        node = data
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = _cell(value)
    return data


def _cell(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value[:1] == "[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def write(records: Iterable[dict[str, Any]], path: Path, fmt: str) -> int:
    """Write `records` as a CSV or Parquet table at `path`; returns the number of rows."""
    check_format(fmt)
    table = rows(records)
    if fmt == "parquet":
        pyarrow, parquet = _pyarrow()
        parquet.write_table(pyarrow.Table.from_pylist(table), path)
        return len(table)
    columns = list(table[0]) if table else list(RECORD_COLUMNS)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)
    return len(table)


def read(path: Path) -> list[dict[str, Any]]:
    """The rows of a table `write` wrote (CSV cells are text; empty cells None)."""
    if path.suffix == ".parquet":
        _, parquet = _pyarrow()
        return parquet.read_table(path).to_pylist()
    with path.open(newline="", encoding="utf-8") as table:
        rows = csv.DictReader(table)
        return [{k: v if v != "" else None for k, v in row.items()} for row in rows]


def dataframe(records: Iterable[dict[str, Any]]) -> Any:
    """The rows as a pandas DataFrame (pandas from `pip install 'forkpoint[tables]'`)."""
    from forkpoint.errors import RequestError

    try:
        import pandas
    except ImportError as exc:
        raise RequestError(
            "a DataFrame needs pandas, which is not installed",
            hint="pip install 'forkpoint[tables]'",
        ) from exc
    return pandas.DataFrame(rows(records))


def check_format(fmt: str) -> None:
    """Refuse an unknown format, or Parquet without pyarrow, before any work is done."""
    from forkpoint.errors import RequestError

    if fmt not in FORMATS:
        raise RequestError(f"unknown table format {fmt!r}", hint=f"one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        _pyarrow()


def _pyarrow() -> tuple[Any, Any]:
    from forkpoint.errors import RequestError

    try:
        import pyarrow
        import pyarrow.parquet as parquet
    except ImportError as exc:
        raise RequestError(
            "Parquet output needs pyarrow, which is not installed",
            hint="pip install 'forkpoint[tables]' (or choose --format csv)",
        ) from exc
    return pyarrow, parquet

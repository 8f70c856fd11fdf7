"""Results as tables: one row per document, flattened, and back into the task's model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from forkpoint.errors import RequestError
from forkpoint.programs.results import table
from forkpoint.programs.tasks.registry import get_task

LABELS = Path(__file__).resolve().parents[2] / "samples" / "labels"


def records(task: str) -> list[dict]:
    """The labelled answers of a built-in task as result records, plus one failed document."""
    labels = [json.loads(line) for line in (LABELS / f"{task}.jsonl").read_text().splitlines()]
    done = [
        {
            "file": label["document"],
            "ok": True,
            "status": "ok",
            "sha256": f"{i:064x}",
            "data": label["expected"],
            "usage": {"prompt_tokens": 900 + i, "cached_tokens": 800, "completion_tokens": 60},
        }
        for i, label in enumerate(labels)
    ]
    failed = {"file": "broken.pdf", "ok": False, "status": "error", "error": "not a PDF"}
    return [*done, {**failed, "usage": {"prompt_tokens": 0}}]


@pytest.mark.parametrize("fmt", table.FORMATS)
@pytest.mark.parametrize("task", ["invoices", "contacts", "support_tickets"])
def test_a_table_round_trips_into_the_tasks_model(task, fmt, tmp_path):
    given = records(task)
    path = tmp_path / f"results.{fmt}"
    assert table.write(given, path, fmt) == len(given)
    rows = table.read(path)
    assert [row["file"] for row in rows] == [record["file"] for record in given]
    assert [row["status"] for row in rows] == [record["status"] for record in given]
    model = get_task(task).output_model
    for row, record in zip(rows[:-1], given[:-1], strict=True):
        assert model.model_validate(table.unflatten(row)) == model.model_validate(record["data"])
    assert rows[-1]["error"] == "not a PDF"


def test_nested_objects_become_dotted_columns_lists_json_and_usage_comes_last():
    record = {
        "file": "a.txt",
        "status": "ok",
        "data": {"customer": {"name": "Ann", "city": None}, "items": [{"sku": "X"}], "n": 2},
        "usage": {"prompt_tokens": 10},
    }
    [row] = table.rows([record])
    assert list(row) == [
        *table.RECORD_COLUMNS,
        "customer.name",
        "customer.city",
        "items",
        "n",
        "usage.prompt_tokens",
    ]
    assert row["items"] == '[{"sku": "X"}]'
    assert table.unflatten(row) == record["data"]


@pytest.mark.parametrize("fmt", table.FORMATS)
def test_confidence_is_one_json_column_that_reads_back_and_is_no_answer_field(fmt, tmp_path):
    confidence = {"vendor": 0.98, "line_items[0].amount": 0.7143}
    given = [{**records("invoices")[0], "confidence": confidence}, records("invoices")[-1]]
    path = tmp_path / f"results.{fmt}"
    table.write(given, path, fmt)
    rows = table.read(path)
    assert json.loads(rows[0]["confidence"]) == confidence
    assert rows[1]["confidence"] is None  # a failed document has none
    assert "confidence" not in table.unflatten(rows[0])
    assert get_task("invoices").output_model.model_validate(table.unflatten(rows[0]))


def test_pandas_gets_the_same_rows():
    given = records("invoices")
    frame = table.dataframe(given)
    assert list(frame.columns) == list(table.rows(given)[0])
    assert frame["file"].tolist() == [record["file"] for record in given]


def test_an_unknown_format_is_refused():
    with pytest.raises(RequestError, match="unknown table format 'xlsx'"):
        table.check_format("xlsx")


def test_parquet_without_pyarrow_names_the_extra_to_install():
    # A child interpreter in which `import pyarrow` fails, as on a base install.
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from forkpoint.programs.results.table import check_format\n"
        "try:\n    check_format('parquet')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc.hint)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == (
        "RequestError pip install 'forkpoint[tables]' (or choose --format csv)"
    ), done.stderr

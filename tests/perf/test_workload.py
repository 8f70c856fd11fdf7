"""A benchmark's workload: the generated corpus, or the user's own folder and task."""

from pathlib import Path

import pytest

from forkpoint.errors import DocumentError, TaskError
from forkpoint.perf.bench.workload import describe, load_workload

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_folder_the_generated_invoice_corpus_is_used():
    job = load_workload(docs=5, min_tokens=100, max_tokens=200, seed=2)
    assert job.task.name == "invoices" and len(job.documents) == 5
    assert job.source == {
        "kind": "generated",
        "documents": 5,
        "min_tokens": 100,
        "max_tokens": 200,
        "seed": 2,
    }
    assert describe(job.source) == "5 generated invoices, 100–200 tokens, seed 2"


def test_a_folder_and_a_task_module_give_the_users_own_documents_and_task(tmp_path):
    for name in ("b.txt", "a.txt", "c.txt"):
        (tmp_path / name).write_text(f"Contact {name}: ana@example.com")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    job = load_workload(
        tmp_path, task_module=f"{ROOT / 'tests/cli/contacts_variant.py'}:TASK", docs=2
    )
    assert job.task.name == "contacts-zero-shot"
    assert [name for name, _ in job.documents] == ["a.txt", "b.txt"]  # name order, capped
    assert job.documents[0][1] == "Contact a.txt: ana@example.com"
    assert job.source["kind"] == "folder" and job.source["documents"] == 2


def test_unreadable_files_are_left_out_and_named_in_the_report(tmp_path):
    (tmp_path / "a.txt").write_text("Invoice 7 from Alder Ltd")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    job = load_workload(tmp_path)
    assert job.documents == [("a.txt", "Invoice 7 from Alder Ltd")]
    assert job.source["unreadable"] == ["logo.png"]
    assert "1 unreadable left out" in describe(job.source)


def test_a_folder_with_nothing_readable_is_a_clear_error(tmp_path):
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    with pytest.raises(DocumentError, match="no readable document"):
        load_workload(tmp_path)


def test_an_unknown_task_is_a_clear_error():
    with pytest.raises(TaskError, match="no built-in task named 'receipts'"):
        load_workload(task="receipts")

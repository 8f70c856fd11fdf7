"""Labels are checked against the folder and the task before anything runs."""

import json

import pytest

from forkpoint.programs.errors import DocumentError
from forkpoint.programs.evaluation.evaluate import load_labels
from forkpoint.programs.tasks.registry import get_task


def _write(path, rows):
    path.write_text("".join(json.dumps(r) if isinstance(r, dict) else r + "\n" for r in rows))


def test_good_labels_load_as_json_data_of_the_model(tmp_path):
    (tmp_path / "a.txt").write_text("Ann, ann@x.org")
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_text(json.dumps({"document": "a.txt", "expected": {"name": "Ann"}}) + "\n")
    (label,) = load_labels(labels_file, tmp_path, get_task("contacts"))
    assert label.document == "a.txt"
    assert label.expected == {
        "name": "Ann",
        "title": None,
        "organization": None,
        "email": None,
        "phone": None,
        "city": None,
    }


def test_every_mismatch_between_labels_folder_and_model_is_reported_at_once(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_text(
        "\n".join(
            [
                json.dumps({"document": "a.txt", "expected": {"name": "Ann"}}),
                json.dumps({"document": "missing.txt", "expected": {"name": "Bob"}}),
                json.dumps({"document": "a.txt", "expected": {"title": "CEO"}}),
                "not json",
            ]
        )
    )
    with pytest.raises(DocumentError) as failure:
        load_labels(labels_file, tmp_path, get_task("contacts"))
    message = str(failure.value)
    assert "line 2: missing.txt is not one of the documents" in message
    assert "line 3: a.txt is labelled twice" in message
    assert "line 3: a.txt: name: Field required" in message
    assert "line 4: not a {'document', 'expected'} JSON object" in message

"""Labels are checked against the folder and the task before anything runs."""

import dataclasses
import json

import pytest

from forkpoint.errors import DocumentError
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


def test_the_report_gives_each_string_fields_share_of_values_verbatim_in_the_document():
    from forkpoint.programs.evaluation.evaluate import Evaluation, Label
    from forkpoint.programs.evaluation.report import markdown, report
    from forkpoint.programs.grounding import ground
    from forkpoint.programs.results.record import BatchSummary, DocumentResult, Usage

    task = dataclasses.replace(get_task("contacts"), copy_fields=("email",))
    texts = ["Ann Lee, ann@x.org", "BOB RAY <bob@y.org>"]
    answers = [
        {"name": "Ann Lee", "email": "ann@x.org", "title": "CEO"},  # no CEO in the text
        {"name": "Bob Ray", "email": "bob@y.org"},  # only case-insensitively there
    ]
    results, summary = [], BatchSummary(wall_seconds=2.0)
    for index, (text, answer) in enumerate(zip(texts, answers, strict=True)):
        data = task.output_model.model_validate(answer)
        found = tuple(ground(data.model_dump(mode="json"), text))
        usage = Usage(prompt_tokens=10, completion_tokens=5, grammar_seconds=0.25)
        results.append(
            DocumentResult(index, f"{index}.txt", "ok", data, usage=usage, grounding=found)
        )
        summary.add(results[-1])
    labels = [
        Label(f"{i}.txt", task.output_model.model_validate(a).model_dump())
        for i, a in enumerate(answers)
    ]
    data = report(Evaluation(task, labels, results, summary))
    (variant,) = data["variants"]
    assert variant["copy_fields"] == ["email"]
    assert variant["strings"] == {
        "name": {"values": 2, "in_document": 0.5},
        "email": {"values": 2, "in_document": 1.0},
        "title": {"values": 1, "in_document": 0.0},
    }
    assert variant["run"]["grammar_seconds"] == 0.5
    text = markdown(data)
    assert "| email (copy) | 2 | 100% |" in text and "| title | 1 | 0% |" in text
    assert "copy grammars 0.5 s" in text


def test_the_report_gives_accuracy_by_confidence_bin_and_the_auroc_over_field_values():
    from forkpoint.programs.evaluation.evaluate import Evaluation, Label
    from forkpoint.programs.evaluation.report import markdown, report
    from forkpoint.programs.results.record import BatchSummary, DocumentResult

    task = get_task("contacts")
    fields = task.field_names
    expected = {"name": "Ann Lee", "email": "ann@x.org"}
    got = [expected, {"name": "Bob", "email": "ann@x.org"}]  # the second's name is wrong
    sure = [
        {"name": 0.97, "email": 0.9},
        {"name": 0.3, "email": 0.99},
    ]
    results, summary = [], BatchSummary(wall_seconds=1.0)
    for index, (answer, confidence) in enumerate(zip(got, sure, strict=True)):
        data = task.output_model.model_validate(answer)
        results.append(DocumentResult(index, f"{index}.txt", "ok", data, confidence=confidence))
        summary.add(results[-1])
    results.append(DocumentResult(2, "2.txt", "error", error="unreadable"))  # no values
    summary.add(results[-1])
    label = task.output_model.model_validate(expected).model_dump(mode="json")
    labels = [Label(f"{i}.txt", label) for i in range(3)]
    section = report(Evaluation(task, labels, results, summary))["variants"][0]["confidence"]
    # fields with a confidence: name and email of the two answered documents; 3 right, 1 wrong
    assert {"name", "email"} <= set(fields)
    assert section["values"] == 4 and section["right"] == 3
    assert section["auroc"] == 1.0  # the wrong name (0.3) is the least sure value
    assert [row["values"] for row in section["bins"]] == [1, 0, 1, 2]
    text = markdown(report(Evaluation(task, labels, results, summary)))
    assert "AUROC right vs wrong 1.0" in text and "| [0.95, 1] | 2 | 2 | 100% |" in text

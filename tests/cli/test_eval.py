"""`forkpoint eval` end to end on labelled sample documents, comparing two task variants."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forkpoint.cli.main import app

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
VARIANT = Path(__file__).with_name("contacts_variant.py")


@pytest.mark.slow
def test_eval_scores_fields_compares_variants_and_writes_reports(sglang_server, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    labels = [json.loads(line) for line in (SAMPLES / "labels" / "contacts.jsonl").open()][:4]
    for label in labels:
        shutil.copy(SAMPLES / "contacts" / label["document"], folder)
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_text("".join(json.dumps(label) + "\n" for label in labels))
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(folder),
            "--task",
            "contacts",
            "--labels",
            str(labels_file),
            "--compare",
            f"{VARIANT}:TASK",
            "--out-dir",
            str(out),
            "--sglang-url",
            sglang_server.url,
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    names = [variant["task"] for variant in report["variants"]]
    assert names == ["contacts", "contacts-zero-shot"]
    for variant in report["variants"]:
        assert variant["documents"] == 4
        assert set(variant["fields"]) == {"name", "title", "organization", "email", "phone", "city"}
        for row in variant["fields"].values():
            assert 0 <= row["exact"] <= row["normalized"] <= 1
        confidence = variant["confidence"]  # from the runtime's logprobs, scored per field value
        assert confidence["values"] > 0
        assert sum(row["values"] for row in confidence["bins"]) == confidence["values"]
    assert set(report["comparison"]["fields"]) == set(report["variants"][0]["fields"])
    assert "| field | exact | normalized |" in (out / "report.md").read_text()
    assert "AUROC right vs wrong" in (out / "report.md").read_text()
    diffs = [json.loads(line) for line in (out / "diffs.jsonl").open()]
    assert len(diffs) == 8 and {d["task"] for d in diffs} == set(names)


def test_eval_reports_label_problems_before_starting_anything(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_text(json.dumps({"document": "gone.txt", "expected": {"name": "A"}}) + "\n")
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(tmp_path),
            "--task",
            "contacts",
            "--labels",
            str(labels_file),
            "--sglang-url",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 2
    assert "gone.txt is not one of the documents" in result.output

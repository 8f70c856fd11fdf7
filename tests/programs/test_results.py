"""One result record: what a document's outcome looks like in the results file, the gateway's
store and responses, the LAN client, eval and bench — one encoder, one decoder."""

import json
from dataclasses import replace

from pydantic import BaseModel

from forkpoint.programs.grounding import Grounding
from forkpoint.programs.results.record import BatchSummary, DocumentResult, ResultRecord, Usage


class Invoice(BaseModel):
    number: str
    due: str | None


REVIEWED = DocumentResult(
    4,
    "inv-4.txt",
    "needs_review",
    data=Invoice(number="A-7", due=None),
    usage=Usage(prompt_tokens=900, cached_tokens=700, completion_tokens=40, spec_verify_ct=16),
    seconds=1.25,
    sha256="ab" * 32,
    grounding=(
        Grounding("number", "A-7", None, None),
        Grounding("vendor", "Alder", "exact", (3, 8)),
    ),
    review=("number 'A-7' does not occur in the document",),
    attempts=2,
    chunks=3,
    confidence={"number": 0.4213, "due": 0.9902},
)


def test_a_record_read_back_is_the_result_that_was_written():
    line = json.dumps(REVIEWED.to_json())
    back = DocumentResult.from_json(json.loads(line), index=4)
    assert back == replace(REVIEWED, data={"number": "A-7", "due": None})  # data stays JSON


def test_the_record_keeps_its_layout_and_leaves_out_only_empty_top_level_keys():
    record = REVIEWED.to_json()
    assert list(record) == [
        "file",
        "ok",
        "status",
        "sha256",
        "data",
        "review",
        "grounding",
        "confidence",
        "usage",
    ]
    assert record["confidence"] == {"number": 0.4213, "due": 0.9902}
    assert record["data"] == {"number": "A-7", "due": None}  # nulls inside the answer stay
    assert record["usage"] == {
        "prompt_tokens": 900,
        "cached_tokens": 700,
        "completion_tokens": 40,
        "spec_verify_ct": 16,
        "attempts": 2,
        "chunks": 3,
        "seconds": 1.25,
    }
    failed = DocumentResult(0, "x.pdf", "error", error="unreadable PDF").to_json()
    assert failed == {
        "file": "x.pdf",
        "ok": False,
        "status": "error",
        "error": "unreadable PDF",
        "usage": {
            **dict.fromkeys(["prompt_tokens", "cached_tokens", "completion_tokens"], 0),
            "attempts": 1,
            "seconds": 0.0,
        },
    }


def test_ok_means_status_ok_and_data_comes_with_ok_and_needs_review_only():
    assert ResultRecord.model_validate(REVIEWED.to_json()).ok is False
    assert REVIEWED.has_data and not REVIEWED.ok
    ok = DocumentResult(0, "a", "ok", data={"n": 1})
    assert ok.to_json()["ok"] is True and ok.to_json()["data"] == {"n": 1}
    invalid = DocumentResult(0, "a", "invalid", data={"n": 1}, error="n: too small", raw='{"n":1}')
    assert "data" not in invalid.to_json() and invalid.to_json()["raw"] == '{"n":1}'


def test_totals_read_from_records_are_the_totals_of_the_results():
    results = [REVIEWED, DocumentResult(1, "b", "ok", data={}, usage=Usage(100, 0, 10, 0))]
    direct, read_back = BatchSummary(), BatchSummary()
    for result in results:
        direct.add(result)
        read_back.add(DocumentResult.from_json(json.loads(json.dumps(result.to_json()))))
    assert read_back.to_json() == direct.to_json()
    assert direct.to_json()["needs_review"] == 1 and direct.to_json()["prompt_tokens"] == 1000

"""Reviews of a job's answers (#28): a correction is checked against the task and stored beside
the model's answer, never over it; reviewed documents export as the labels `forkpoint eval`
reads; another key sees none of it. The documents' listing, one document, tokens over time,
the review page's files and the offline report. No runtime: results are recorded directly."""

import json
import re

import pytest
from typer.testing import CliRunner

from forkpoint.api.corrections import MAX_CORRECTION_BYTES, MAX_CORRECTION_DEPTH
from forkpoint.api.job_task import JobTask
from forkpoint.api.store import JobStore
from forkpoint.cli.main import app as cli
from forkpoint.programs.evaluation.evaluate import check_labels
from forkpoint.programs.tasks.registry import get_task
from forkpoint.programs.tasks.spec import TaskSpec

DOCS = [
    {"name": "a.txt", "text": "Ann Lee, ann@x.org"},
    {"name": "b.txt", "text": "Bo Chan, Lumen"},
    {"name": "c.txt", "text": "nothing here"},
    {"name": "d.txt", "text": "Di Roy"},
]
EMPTY = {"title": None, "organization": None, "email": None, "phone": None, "city": None}


def answer(name: str, **fields: object) -> dict:
    return {**EMPTY, "name": name, **fields}


RECORDS = [
    {
        "file": "a.txt",
        "ok": True,
        "status": "ok",
        "data": answer("Ann Lee", email="ann@x.org"),
        "grounding": [
            {"path": "name", "value": "Ann Lee", "match": "exact", "span": [0, 7]},
            {"path": "email", "value": "ann@x.org", "match": "exact", "span": [9, 18]},
        ],
        "confidence": {"name": 0.93, "email": 0.71},
        "usage": {"prompt_tokens": 100, "completion_tokens": 20},
    },
    {
        "file": "b.txt",
        "ok": False,
        "status": "needs_review",
        "data": answer("Bo Chen", organization="Lumen"),
        "review": ["name = 'Bo Chen' does not occur in the document"],
        "grounding": [{"path": "name", "value": "Bo Chen", "match": None, "span": None}],
        "confidence": {"name": 0.31, "organization": 0.88},
        "usage": {"prompt_tokens": 90, "completion_tokens": 18},
    },
    {
        "file": "c.txt",
        "ok": False,
        "status": "invalid",
        "error": "output does not validate: name: Field required",
        "raw": '{"title": "x"}',
        "usage": {"prompt_tokens": 80, "completion_tokens": 30},
    },
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def job(make_client):
    """A contacts job of four documents owned by k1, three of them recorded; (client, id)."""
    client = make_client(api_keys=["k1", "k2"])
    client.headers.update(bearer("k1"))
    job_id = client.post("/v1/jobs", json={"task": "contacts", "documents": DOCS}).json()["id"]
    for index, record in enumerate(RECORDS):
        client.app.state.store.record(job_id, index, record)
    return client, job_id


def review(client, job_id: str, index: int, body: object):
    return client.put(f"/v1/jobs/{job_id}/documents/{index}/review", json=body)


def labels(client, job_id: str) -> list[dict]:
    answer = client.get(f"/v1/jobs/{job_id}/labels")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in answer.text.splitlines()]


def test_a_correction_that_does_not_fit_the_task_is_422_with_the_reason(job):
    client, job_id = job
    wrong_type = review(client, job_id, 1, {"action": "correct", "data": answer(5)})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["error"] == (
        "the correction does not fit the task 'contacts': it does not validate: "
        "name: Input should be a valid string"
    )
    missing = review(client, job_id, 1, {"action": "correct", "data": {"email": "x@y.z"}})
    assert missing.status_code == 422 and "name: Field required" in missing.json()["error"]
    assert review(client, job_id, 1, {"action": "correct"}).status_code == 422  # no data
    assert client.get(f"/v1/jobs/{job_id}/documents/1").json()["review"] is None


def test_an_inline_schema_job_checks_corrections_against_its_schema(make_client):
    client = make_client()
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^B-[0-9]{4}$"}},
        "required": ["code"],
    }
    job_id = client.post("/v1/jobs", json={"schema": schema, "documents": DOCS[:1]}).json()["id"]
    client.app.state.store.record(
        job_id, 0, {"file": "a.txt", "ok": True, "status": "ok", "data": {"code": "B-0001"}}
    )
    bad = review(client, job_id, 0, {"action": "correct", "data": {"code": "B-12"}})
    assert bad.status_code == 422
    assert "does not match the schema at /code" in bad.json()["error"]
    good = review(client, job_id, 0, {"action": "correct", "data": {"code": "B-1234"}})
    assert good.status_code == 200 and good.json()["data"] == {"code": "B-1234"}


def test_a_correction_is_stored_beside_the_answer_never_over_it(job):
    client, job_id = job
    fixed = answer("Bo Chan", organization="Lumen")
    saved = review(client, job_id, 1, {"action": "correct", "data": fixed})
    assert saved.status_code == 200, saved.text
    assert saved.json()["action"] == "corrected" and saved.json()["data"] == fixed
    document = client.get(f"/v1/jobs/{job_id}/documents/1").json()
    assert document["result"] == RECORDS[1]  # the model's answer, as it was recorded
    assert document["review"]["data"] == fixed and document["text"] == "Bo Chan, Lumen"
    streamed = client.get(f"/v1/jobs/{job_id}/results", params={"wait": "false"}).text
    assert json.loads(streamed.splitlines()[1])["data"]["name"] == "Bo Chen"
    assert JobStore.result(client.app.state.store, job_id, 1) == RECORDS[1]
    # a second review replaces the first review, still not the answer
    assert review(client, job_id, 1, {"action": "accept"}).json()["action"] == "accepted"
    document = client.get(f"/v1/jobs/{job_id}/documents/1").json()
    assert document["review"]["action"] == "accepted" and document["result"] == RECORDS[1]
    assert client.delete(f"/v1/jobs/{job_id}/documents/1/review").status_code == 204
    assert client.get(f"/v1/jobs/{job_id}/documents/1").json()["review"] is None
    assert client.delete(f"/v1/jobs/{job_id}/documents/1/review").status_code == 404


def test_labels_export_accepted_and_corrected_documents_as_eval_reads_them(job):
    client, job_id = job
    assert labels(client, job_id) == []
    fixed = answer("Bo Chan", organization="Lumen")
    assert review(client, job_id, 0, {"action": "accept"}).status_code == 200
    assert review(client, job_id, 1, {"action": "correct", "data": fixed}).status_code == 200
    typed = answer("Cy Doe")  # an invalid answer has nothing to accept, but can be corrected
    assert review(client, job_id, 2, {"action": "correct", "data": typed}).status_code == 200
    exported = labels(client, job_id)
    assert exported == [
        {"document": "a.txt", "expected": RECORDS[0]["data"]},
        {"document": "b.txt", "expected": fixed},
        {"document": "c.txt", "expected": typed},
    ]
    checked = check_labels(exported, {d["name"] for d in DOCS}, get_task("contacts"), where="t")
    assert [label.expected["name"] for label in checked] == ["Ann Lee", "Bo Chan", "Cy Doe"]
    disposition = client.get(f"/v1/jobs/{job_id}/labels").headers["content-disposition"]
    assert disposition == f'attachment; filename="labels-{job_id}.jsonl"'


def test_what_cannot_be_reviewed_is_refused_clearly(job):
    client, job_id = job
    invalid = review(client, job_id, 2, {"action": "accept"})
    assert invalid.status_code == 409 and "no answer to accept" in invalid.json()["error"]
    pending = review(client, job_id, 3, {"action": "accept"})
    assert pending.status_code == 409 and pending.json()["error"] == "document 3 has no result yet"
    assert review(client, job_id, 4, {"action": "accept"}).status_code == 404
    assert review(client, job_id, 0, {"action": "approve"}).status_code == 422
    assert review(client, job_id, 0, {"action": "accept", "by": "me"}).status_code == 422
    assert review(client, job_id, 0, [1]).status_code == 422
    deep: object = "x"
    for _ in range(MAX_CORRECTION_DEPTH + 1):
        deep = {"a": deep}
    too_deep = review(client, job_id, 0, {"action": "correct", "data": deep})
    assert too_deep.status_code == 422 and "nested deeper" in too_deep.json()["error"]
    big = answer("x" * MAX_CORRECTION_BYTES)
    assert review(client, job_id, 0, {"action": "correct", "data": big}).status_code == 413
    text = client.put(
        f"/v1/jobs/{job_id}/documents/0/review",
        content=b'{"action": "accept"}',
        headers={"Content-Type": "text/plain"},
    )
    assert text.status_code == 415
    assert client.get(f"/v1/jobs/{job_id}/documents/-1").status_code == 422
    assert client.get(f"/v1/jobs/{job_id}/documents?status=great").status_code == 422
    assert client.get(f"/v1/jobs/{job_id}/documents?limit=100000").status_code == 422
    assert client.get(f"/v1/jobs/{job_id}/documents/0").json()["review"] is None


def test_another_key_gets_404_for_the_documents_reviews_labels_and_timeline(job):
    client, job_id = job
    base = f"/v1/jobs/{job_id}"
    other = bearer("k2")
    for path in ("/documents", "/documents/0", "/labels", "/timeline"):
        answer = client.get(base + path, headers=other)
        assert answer.status_code == 404 and answer.json()["error"] == f"no job {job_id}", path
    put = client.put(base + "/documents/0/review", json={"action": "accept"}, headers=other)
    assert put.status_code == 404
    assert client.delete(base + "/documents/0/review", headers=other).status_code == 404
    assert client.get(base + "/documents/0", headers={"Authorization": ""}).status_code == 401
    assert client.get(base + "/documents/0").json()["review"] is None  # k2 changed nothing


def test_documents_filter_by_status_and_sort_by_lowest_confidence(job):
    client, job_id = job
    listed = client.get(f"/v1/jobs/{job_id}/documents").json()
    assert listed["counts"] == {"ok": 1, "needs_review": 1, "invalid": 1}
    assert [d["index"] for d in listed["documents"]] == [0, 1, 2]  # recorded ones only
    first = listed["documents"][1]
    assert first["confidence"] == 0.31 and first["unsure"] == ["name"]
    by_confidence = client.get(f"/v1/jobs/{job_id}/documents?order=confidence").json()
    assert [d["index"] for d in by_confidence["documents"]] == [1, 0, 2]  # none last
    assert by_confidence["documents"][2]["confidence"] is None
    review(client, job_id, 0, {"action": "accept"})
    flagged = client.get(f"/v1/jobs/{job_id}/documents?status=needs_review").json()
    assert flagged["total"] == 1 and flagged["documents"][0]["name"] == "b.txt"
    accepted = client.get(f"/v1/jobs/{job_id}/documents?status=ok").json()["documents"]
    assert accepted[0]["review"] == "accepted"
    paged = client.get(f"/v1/jobs/{job_id}/documents?start=1&limit=1").json()
    assert paged["total"] == 3 and [d["index"] for d in paged["documents"]] == [1]


def test_the_timeline_adds_up_the_tokens_in_the_order_results_were_recorded(job):
    client, job_id = job
    timeline = client.get(f"/v1/jobs/{job_id}/timeline").json()
    assert timeline["total"] == 4
    assert [point[1:] for point in timeline["points"]] == [
        [0, 0, 0],
        [1, 100, 20],
        [2, 190, 38],
        [3, 270, 68],
    ]
    seconds = [point[0] for point in timeline["points"]]
    assert seconds == sorted(seconds) and seconds[0] == 0


def test_purging_a_job_deletes_its_reviews(job):
    client, job_id = job
    review(client, job_id, 0, {"action": "accept"})
    store = client.app.state.store
    client.delete(f"/v1/jobs/{job_id}")  # cancelled: finished, so purgeable
    assert store.purge(finished_before=float("inf")) == 1
    assert store.reviews(job_id) == {}


def test_the_review_page_is_served_from_the_package_and_fetches_nothing_elsewhere(make_client):
    client = make_client(api_keys=["k1"])
    page = client.get("/ui/")  # no key: the page holds no data; it asks for the key
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
    for name in ("app.js", "document.js", "style.css"):
        asset = client.get(f"/ui/{name}")
        assert asset.status_code == 200 and len(asset.text) > 500, name
        assert not re.search(r"(src|href)=\"(https?:)?//", asset.text), name
        assert "document.cookie" not in asset.text and "localStorage" not in asset.text, name
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    assert client.get("/ui/report.html").status_code == 404  # a template, not a page
    assert client.get("/ui/..%2Fstore.py").status_code == 404
    assert client.get("/v1/jobs").status_code == 401  # the data behind it still needs the key


def test_forkpoint_review_writes_one_self_contained_html_file(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    hostile = "Ann Lee </script><script>alert(1)</script> ann@x.org"
    (folder / "a.txt").write_text(hostile)
    (folder / "b.txt").write_text("Bo Chan, Lumen")
    results = tmp_path / "results.jsonl"
    records = [{**RECORDS[0], "sha256": None}, RECORDS[1], {**RECORDS[2], "file": "gone.txt"}]
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "report.html"
    run = CliRunner().invoke(cli, ["review", str(results), str(folder), "--html", str(out)])
    assert run.exit_code == 0, run.output
    assert "gone.txt is not in" in run.output and "3 documents" in run.output
    page = out.read_text()
    assert page.count("</script>") == 3  # the data, document.js and report.js: none inserted
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    embedded = re.search(r'<script type="application/json" id="fp-data">(.*?)</script>', page, re.S)
    data = json.loads(embedded.group(1))
    assert [d["name"] for d in data["documents"]] == ["a.txt", "b.txt", "gone.txt"]
    assert data["documents"][0]["text"] == hostile
    assert data["documents"][1]["result"] == RECORDS[1]
    assert "function renderDocument" in page and "mark.span" in page


def test_a_grouped_job_checks_a_correction_against_its_documents_group(make_client):
    client = make_client()
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    group = TaskSpec.model_validate({"name": "g", "instructions": "x", "schema": schema})
    job, _ = client.app.state.store.create_job(
        JobTask(grouped="batch"),
        [("a.txt", "seven")],
        groups=[group.model_dump_json(by_alias=True)],
        parts=[0],
    )
    client.app.state.store.record(
        job.id, 0, {"file": "a.txt", "ok": True, "status": "ok", "data": {"n": 8}}
    )
    bad = review(client, job.id, 0, {"action": "correct", "data": {"n": "7"}})
    assert bad.status_code == 422 and "task 'g'" in bad.json()["error"]
    assert review(client, job.id, 0, {"action": "correct", "data": {"n": 7}}).status_code == 200
    assert labels(client, job.id) == [{"document": "a.txt", "expected": {"n": 7}}]

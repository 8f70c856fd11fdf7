"""The gateway's door: keys, limits, schema checks and error codes (no runtime needed)."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from forkpoint.api.settings import Settings

DOCS = [{"name": "a.txt", "text": "Ann Lee, ann@x.org"}]


def test_binding_beyond_loopback_without_keys_refuses_to_start(tmp_path):
    with pytest.raises(ValidationError, match="configure API keys"):
        Settings(host="0.0.0.0", db_path=tmp_path / "x.db")
    Settings(host="0.0.0.0", api_keys=["k"], db_path=tmp_path / "x.db")


def test_with_keys_configured_requests_need_a_bearer_key(make_client):
    client = make_client(api_keys=["s3cret"])
    assert client.get("/healthz").status_code == 200
    missing = client.get("/v1/tasks")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/v1/tasks", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/tasks", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_keys_in_a_file_rotate_without_a_restart(make_client, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("old-key\n")
    client = make_client(api_keys_file=keys)
    assert client.get("/v1/jobs", headers={"Authorization": "Bearer old-key"}).status_code == 200
    keys.write_text("# rotated\nnew-key\n")
    assert client.get("/v1/jobs", headers={"Authorization": "Bearer old-key"}).status_code == 401
    assert client.get("/v1/jobs", headers={"Authorization": "Bearer new-key"}).status_code == 200


def test_with_strict_a_schema_xgrammar_cannot_enforce_is_422_with_the_reason(make_client):
    client = make_client()
    schema = {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 5}}}
    checked = client.post("/v1/schemas/check", json={"schema": schema, "strict": True})
    assert checked.status_code == 422
    assert "multipleOf is not enforced" in checked.json()["error"]
    job = client.post("/v1/jobs", json={"schema": schema, "documents": DOCS, "strict": True})
    assert job.status_code == 422
    files = [("files", ("a.txt", b"Ann Lee", "text/plain"))]
    form = {"schema": json.dumps(schema), "strict": "true"}
    assert client.post("/v1/jobs", data=form, files=files).status_code == 422  # multipart too
    assert client.get("/v1/jobs").json() == []  # nothing was accepted


def test_a_good_schema_checks_with_its_warnings(make_client):
    client = make_client()
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"enum": ["a"]}}}}
    checked = client.post("/v1/schemas/check", json={"schema": schema})
    assert checked.status_code == 200
    assert checked.json()["warnings"] == [
        "$.tags: array without maxItems (a model can run on until max tokens)"
    ]


def test_limits_on_documents_characters_and_body_size(make_client):
    client = make_client(max_documents_per_job=2, max_document_chars=50, max_body_bytes=2048)
    three = [{"name": f"{i}.txt", "text": "x"} for i in range(3)]
    assert client.post("/v1/jobs", json={"task": "contacts", "documents": three}).status_code == 413
    long_doc = [{"name": "long.txt", "text": "y" * 51}]
    too_long = client.post("/v1/jobs", json={"task": "contacts", "documents": long_doc})
    assert too_long.status_code == 422
    assert "long.txt has 51 characters; the limit is 50" in too_long.json()["error"]
    huge = client.post(
        "/v1/jobs", content=b"{" + b" " * 4096 + b"}", headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413


def test_a_full_queue_answers_429_with_retry_after_and_keeps_what_it_accepted(make_client):
    client = make_client(max_queued_documents=3)
    docs = [{"name": f"{i}.txt", "text": "Ann"} for i in range(2)]
    first = client.post("/v1/jobs", json={"task": "contacts", "documents": docs})
    assert first.status_code == 202
    refused = client.post("/v1/jobs", json={"task": "contacts", "documents": docs})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "30"
    assert refused.json()["retryable"] is True
    (job,) = client.get("/v1/jobs").json()
    assert job["id"] == first.json()["id"] and job["total"] == 2


def test_unknown_tasks_and_jobs_are_clear_errors(make_client):
    client = make_client()
    unknown = client.post("/v1/jobs", json={"task": "nope", "documents": DOCS})
    assert unknown.status_code == 422
    assert "no built-in task named 'nope'" in unknown.json()["error"]
    both = client.post("/v1/jobs", json={"task": "contacts", "schema": {}, "documents": DOCS})
    assert both.status_code == 422
    assert client.get("/v1/jobs/does-not-exist").status_code == 404


def test_uploaded_files_that_are_not_text_fail_alone_at_submission(make_client):
    client = make_client()
    files = [
        ("files", ("good.txt", b"Ann Lee", "text/plain")),
        ("files", ("bad.bin", b"\x00\x01", "application/octet-stream")),
    ]
    job = client.post("/v1/jobs", data={"task": "contacts"}, files=files).json()
    assert job["total"] == 2 and job["failed"] == 1
    lines = client.get(f"/v1/jobs/{job['id']}/results", params={"wait": "false"}).text
    assert lines == ""  # document 0 is still queued: results stream in document order
    status = client.get(f"/v1/jobs/{job['id']}").json()
    assert status["state"] == "running"


def test_uploads_are_read_by_format_and_jsonl_lines_become_documents(make_client):
    client = make_client()
    files = [
        (
            "files",
            (
                "page.html",
                b"<html><body><p>Ann Lee</p><script>x()</script></body></html>",
                "text/html",
            ),
        ),
        (
            "files",
            (
                "mails.jsonl",
                b'{"body": "Omar Haddad"}\n{"body": "Jana Novak"}\n',
                "application/jsonl",
            ),
        ),
        ("files", ("logo.png", b"\x89PNG\r\n\x1a\n", "image/png")),
    ]
    job = client.post("/v1/jobs", data={"task": "contacts", "json_field": "body"}, files=files)
    assert job.status_code == 202
    assert job.json()["total"] == 4 and job.json()["failed"] == 1
    store = client.app.state.runner.store
    pending = store.pending(job.json()["id"])
    assert [(doc.name, doc.text) for doc in pending] == [
        ("page.html", "Ann Lee"),
        ("mails.jsonl:1", "Omar Haddad"),
        ("mails.jsonl:2", "Jana Novak"),
    ]
    assert all(len(doc.sha256) == 64 for doc in pending)


def test_an_idempotency_key_makes_a_retried_submission_return_the_same_job(make_client):
    client = make_client()
    body = {"task": "contacts", "documents": DOCS}
    first = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "batch-7"})
    retry = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "batch-7"})
    assert (first.status_code, retry.status_code) == (202, 200)
    assert retry.json()["id"] == first.json()["id"]
    assert len(client.get("/v1/jobs").json()) == 1
    other = {"task": "contacts", "documents": [{"name": "a.txt", "text": "someone else"}]}
    conflict = client.post("/v1/jobs", json=other, headers={"Idempotency-Key": "batch-7"})
    assert conflict.status_code == 409 and "batch-7" in conflict.json()["error"]


def test_a_retried_submission_is_answered_before_the_queue_limit_so_it_never_gets_429(
    make_client,
):
    client = make_client(max_queued_documents=2)
    body = {"task": "contacts", "documents": [{"name": f"{i}.txt", "text": "Ann"} for i in (1, 2)]}
    first = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k"})
    retry = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k"})  # queue full
    assert (first.status_code, retry.status_code) == (202, 200)
    assert retry.json()["id"] == first.json()["id"]
    assert client.post("/v1/jobs", json=body).status_code == 429  # a new job still waits


def test_labels_are_part_of_the_request_an_idempotency_key_names(make_client):
    client = make_client()
    labels = [{"document": DOCS[0]["name"], "expected": {"name": "Ann Lee"}}]
    body = {"task": "contacts", "documents": DOCS, "labels": labels}
    first = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "eval-1"})
    assert first.status_code == 202, first.text
    body["labels"][0]["expected"] = {"name": "Someone Else"}
    changed = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "eval-1"})
    assert changed.status_code == 409


def test_the_queue_limit_holds_under_concurrent_submissions(make_client):
    client = make_client(max_queued_documents=10)
    body = {
        "task": "contacts",
        "documents": [{"name": f"{i}.txt", "text": "Ann"} for i in range(4)],
    }
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: client.post("/v1/jobs", json=body).status_code, range(8)))
    assert sorted(codes) == [202, 202] + [429] * 6  # 2 × 4 fit in 10; a third would not
    assert sum(job["total"] for job in client.get("/v1/jobs").json()) == 8


def test_an_unreadable_upload_is_recorded_in_the_same_transaction_as_its_job(make_client):
    client = make_client()
    files = [("files", ("bad.bin", b"\x00\x01", "application/octet-stream"))]
    job = client.post("/v1/jobs", data={"task": "contacts"}, files=files).json()
    # the job's only document failed at submission: stored with the job, so the job is done
    status = client.get(f"/v1/jobs/{job['id']}").json()
    assert (status["state"], status["failed"], status["done"]) == ("done", 1, 1)
    (line,) = client.get(f"/v1/jobs/{job['id']}/results").text.splitlines()
    assert json.loads(line)["status"] == "error"


def test_cancel_marks_the_job_and_the_listing_shows_it(make_client):
    client = make_client()
    job = client.post("/v1/jobs", json={"task": "contacts", "documents": DOCS}).json()
    cancelled = client.delete(f"/v1/jobs/{job['id']}").json()
    assert cancelled["state"] == "cancelled"
    listed = {j["id"]: j["state"] for j in client.get("/v1/jobs").json()}
    assert listed == {job["id"]: "cancelled"}


def test_every_route_is_in_the_openapi_document(make_client):
    paths = make_client().get("/openapi.json").json()["paths"]
    for path in (
        "/v1/extract",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/results",
        "/v1/tasks",
        "/v1/programs",
        "/v1/programs/{name}/runs",
        "/v1/schemas/check",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    assert "multipart/form-data" in json.dumps(paths["/v1/jobs"]["post"]["requestBody"])

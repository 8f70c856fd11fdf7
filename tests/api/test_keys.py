"""Who may use the gateway, and whose jobs are whose (issue #18 item 1). No runtime needed.

- Open (no key) only when asked for (FORKPOINT_OPEN=1), on a loopback bind, with no key source
  configured at all; a loopback bind with neither keys nor FORKPOINT_OPEN refuses with 401.
- A configured key source that is empty refuses every request (401); a key file that cannot be
  read refuses every request (503). Both are logged, at most once a minute while they last.
- A job belongs to the key that created it (stored as a hash, never the key): another key gets
  the same 404 as for a job that does not exist. Admin keys see and cancel every job.
- Idempotency keys are scoped per API key and expire.
"""

import hashlib
import logging
import sqlite3
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from forkpoint.api import store as store_module
from forkpoint.api.app import create_app
from forkpoint.api.settings import Settings
from forkpoint.api.store import JobStore

DOCS = [{"name": "a.txt", "text": "Ann Lee, ann@x.org"}]
JOB = {"task": "contacts", "documents": DOCS}
LABELLED = {**JOB, "labels": [{"document": "a.txt", "expected": {"name": "Ann Lee"}}]}
SHAPE = {"error", "hint", "retryable", "kind"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def owner_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def no_such_job(job_id: str) -> dict:
    return {"error": f"no job {job_id}", "hint": None, "retryable": False, "kind": "NotFound"}


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "keys"
    path.write_text("# team keys\nalice-key\n")
    return path


# --- when the gateway is open ----------------------------------------------------------------


def test_a_loopback_gateway_with_no_key_source_is_open_when_asked_to_be(make_client):
    client = make_client(open=True)
    assert client.get("/v1/jobs").status_code == 200
    assert client.post("/v1/jobs", json=JOB).status_code == 202


def test_an_explicitly_empty_key_list_is_a_key_source_and_so_not_open(make_client):
    client = make_client(api_keys=[])  # FORKPOINT_API_KEYS='[]'
    refused = client.get("/v1/jobs")
    assert refused.status_code == 401
    assert "no API key is configured" in refused.json()["error"]


def test_beyond_loopback_the_gateway_needs_a_key_and_a_readable_key_file_to_start(tmp_path):
    with pytest.raises(ValidationError, match="configure API keys"):
        Settings(host="0.0.0.0", db_path=tmp_path / "x.db")
    with pytest.raises(ValidationError, match="cannot read the API key file"):
        Settings(host="0.0.0.0", api_keys_file=tmp_path / "missing", db_path=tmp_path / "x.db")
    Settings(host="0.0.0.0", admin_keys=["root-key"], db_path=tmp_path / "x.db")


# --- fail closed: a key source that becomes empty or unreadable --------------------------------


def test_a_key_file_truncated_during_rotation_refuses_every_request(make_client, key_file, caplog):
    client = make_client(host="0.0.0.0", api_keys_file=key_file)
    assert client.get("/v1/jobs", headers=bearer("alice-key")).status_code == 200
    key_file.write_text("")
    with caplog.at_level(logging.WARNING, logger="forkpoint.api"):
        anonymous = client.get("/v1/jobs")
        with_old_key = client.get("/v1/jobs", headers=bearer("alice-key"))
    for refused in (anonymous, with_old_key):
        assert refused.status_code == 401
        assert set(refused.json()) == SHAPE and refused.json()["kind"] == "Unauthorized"
        assert "no API key is configured" in refused.json()["error"]
    assert "no API key is configured" in caplog.text and str(key_file) in caplog.text


def test_a_deleted_key_file_is_503_with_a_clear_error_not_a_crash(make_client, key_file, caplog):
    client = make_client(host="0.0.0.0", api_keys_file=key_file)
    key_file.unlink()
    with caplog.at_level(logging.WARNING, logger="forkpoint.api"):
        refused = client.get("/v1/jobs", headers=bearer("alice-key"))
    assert refused.status_code == 503
    body = refused.json()
    assert set(body) == SHAPE and body["kind"] == "KeysUnavailable"
    assert "cannot read its API key file" in body["error"]
    assert str(key_file) not in refused.text  # the path is for the operator's log, not clients
    assert refused.headers["Retry-After"] == "30"
    assert str(key_file) in caplog.text


def test_a_key_file_that_cannot_be_read_is_503(make_client, key_file):
    client = make_client(host="0.0.0.0", api_keys_file=key_file)
    key_file.unlink()
    key_file.mkdir()  # unreadable as a file even for root (chmod 000 is not)
    assert client.get("/v1/jobs", headers=bearer("alice-key")).status_code == 503
    key_file.rmdir()
    key_file.write_text("alice-key\n")
    assert client.get("/v1/jobs", headers=bearer("alice-key")).status_code == 200


def test_a_refusal_is_logged_once_a_minute_while_it_lasts_and_again_when_it_recurs(
    make_client, key_file, caplog
):
    client = make_client(host="0.0.0.0", api_keys_file=key_file)

    def warnings() -> int:
        return len([r for r in caplog.records if r.name == "forkpoint.api"])

    with caplog.at_level(logging.WARNING, logger="forkpoint.api"):
        key_file.unlink()
        for _ in range(5):
            assert client.get("/v1/jobs", headers=bearer("alice-key")).status_code == 503
        assert warnings() == 1
        key_file.write_text("alice-key\n")
        assert client.get("/v1/jobs", headers=bearer("alice-key")).status_code == 200
        key_file.write_text("")
        for _ in range(3):
            assert client.get("/v1/jobs", headers=bearer("alice-key")).status_code == 401
        assert warnings() == 2


# --- a job belongs to its key -----------------------------------------------------------------


def test_another_key_cannot_tell_a_job_exists(make_client):
    client = make_client(api_keys=["alice-key", "bob-key"])
    job = client.post("/v1/jobs", json=LABELLED, headers=bearer("alice-key")).json()
    bob = bearer("bob-key")
    for method, path in [
        ("GET", f"/v1/jobs/{job['id']}"),
        ("GET", f"/v1/jobs/{job['id']}/results"),
        ("GET", f"/v1/jobs/{job['id']}/eval"),
        ("DELETE", f"/v1/jobs/{job['id']}"),
    ]:
        answer = client.request(method, path, headers=bob)
        assert (answer.status_code, answer.json()) == (404, no_such_job(job["id"])), path
        missing = client.request(method, path.replace(job["id"], "f" * 32), headers=bob)
        assert (missing.status_code, missing.json()) == (404, no_such_job("f" * 32)), path
    assert client.get("/v1/jobs", headers=bob).json() == []
    mine = client.get(f"/v1/jobs/{job['id']}", headers=bearer("alice-key")).json()
    assert mine["state"] != "cancelled"  # bob's DELETE did nothing
    assert [j["id"] for j in client.get("/v1/jobs", headers=bearer("alice-key")).json()] == [
        job["id"]
    ]


def test_the_owner_is_stored_as_a_hash_of_the_key_never_the_key(make_client):
    client = make_client(api_keys=["alice-key"])
    job = client.post("/v1/jobs", json=JOB, headers=bearer("alice-key")).json()
    store = client.app.state.runner.store
    assert store.job(job["id"]).owner == owner_of("alice-key")
    database = client.app.state.settings.db_path
    files = list(database.parent.glob(f"{database.name}*"))  # the database and its WAL
    assert database in files
    for path in files:
        assert b"alice-key" not in path.read_bytes()


def test_an_admin_key_sees_and_cancels_every_job(make_client):
    client = make_client(api_keys=["alice-key", "bob-key"], admin_keys=["root-key"])
    alice = client.post("/v1/jobs", json=JOB, headers=bearer("alice-key")).json()
    bob = client.post("/v1/jobs", json=JOB, headers=bearer("bob-key")).json()
    root = bearer("root-key")
    listed = {j["id"] for j in client.get("/v1/jobs", headers=root).json()}
    assert listed == {alice["id"], bob["id"]}
    assert client.get(f"/v1/jobs/{alice['id']}", headers=root).status_code == 200
    cancelled = client.delete(f"/v1/jobs/{bob['id']}", headers=root)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    mine = client.post("/v1/jobs", json=JOB, headers=root).json()  # an admin key is a key too
    assert client.get(f"/v1/jobs/{mine['id']}", headers=bearer("alice-key")).status_code == 404


def test_on_an_open_gateway_jobs_have_no_owner_and_everyone_sees_them(make_client):
    client = make_client(open=True)
    job = client.post("/v1/jobs", json=JOB).json()
    assert client.app.state.runner.store.job(job["id"]).owner is None
    assert [j["id"] for j in client.get("/v1/jobs").json()] == [job["id"]]


def test_jobs_from_an_older_store_have_no_owner_and_only_admin_keys_see_them(tmp_path):
    db = tmp_path / "old.sqlite3"
    old = sqlite3.connect(db)  # the store as a gateway before job owners wrote it
    old.executescript(store_module.SCHEMA)
    old.execute(
        "INSERT INTO jobs VALUES ('old-job', 'contacts', NULL, NULL, 'queued', 1, ?, NULL)",
        (time.time(),),
    )
    old.execute("INSERT INTO documents (job_id, idx, name, text) VALUES ('old-job', 0, 'a', 'x')")
    old.execute("INSERT INTO idempotency VALUES ('batch-1', 'old-job', 'fp')")
    old.commit()
    old.close()
    keys = {"api_keys": ["alice-key"], "admin_keys": ["root-key"]}
    settings = Settings(db_path=db, sglang_url="http://127.0.0.1:9", **keys)
    app = create_app(settings, start_workers=False)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:  # a local caller's Host
        assert client.get("/v1/jobs/old-job", headers=bearer("alice-key")).status_code == 404
        assert client.get("/v1/jobs", headers=bearer("alice-key")).json() == []
        assert client.get("/v1/jobs/old-job", headers=bearer("root-key")).status_code == 200
        # an old idempotency record has no time: expired, so the key makes a new job
        headers = {**bearer("alice-key"), "Idempotency-Key": "batch-1"}
        again = client.post("/v1/jobs", json=JOB, headers=headers)
        assert again.status_code == 202 and again.json()["id"] != "old-job"
    assert JobStore(db).job("old-job").owner is None


# --- idempotency keys are per API key, and expire ----------------------------------------------


def test_the_same_idempotency_key_from_two_api_keys_makes_two_jobs(make_client):
    client = make_client(api_keys=["alice-key", "bob-key"])
    as_alice = {**bearer("alice-key"), "Idempotency-Key": "k"}
    as_bob = {**bearer("bob-key"), "Idempotency-Key": "k"}
    alice = client.post("/v1/jobs", json=JOB, headers=as_alice)
    bob = client.post("/v1/jobs", json=JOB, headers=as_bob)
    assert (alice.status_code, bob.status_code) == (202, 202)
    assert alice.json()["id"] != bob.json()["id"]
    different = {"task": "contacts", "documents": [{"name": "b.txt", "text": "Omar"}]}
    conflict = client.post("/v1/jobs", json=different, headers=as_bob)
    assert conflict.status_code == 409  # within one API key the conflict rule holds


def test_within_one_api_key_a_retry_returns_the_same_job(make_client):
    client = make_client(api_keys=["alice-key"])
    headers = {**bearer("alice-key"), "Idempotency-Key": "batch-7"}
    first = client.post("/v1/jobs", json=JOB, headers=headers)
    retry = client.post("/v1/jobs", json=JOB, headers=headers)
    assert (first.status_code, retry.status_code) == (202, 200)
    assert retry.json()["id"] == first.json()["id"]


class StoreClock:
    """The store's `time` module, with a clock the test moves (no sleeping past a TTL)."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


def test_an_expired_idempotency_key_creates_a_new_job(make_client, monkeypatch):
    clock = StoreClock()
    monkeypatch.setattr(store_module, "time", clock)
    client = make_client(idempotency_ttl_seconds=60)
    headers = {"Idempotency-Key": "batch-7"}
    first = client.post("/v1/jobs", json=JOB, headers=headers).json()
    clock.now += 59
    assert client.post("/v1/jobs", json=JOB, headers=headers).json()["id"] == first["id"]
    clock.now += 2  # 61 s after the first use
    other = {"task": "contacts", "documents": [{"name": "b.txt", "text": "Omar"}]}
    later = client.post("/v1/jobs", json=other, headers=headers)  # no 409: the key expired
    assert later.status_code == 202 and later.json()["id"] != first["id"]
    again = client.post("/v1/jobs", json=other, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == later.json()["id"]


def test_idempotency_keys_last_a_day_by_default(tmp_path):
    assert Settings(db_path=tmp_path / "x.db").idempotency_ttl_seconds == 24 * 3600

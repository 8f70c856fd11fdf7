"""What the gateway's door refuses before a route runs (issue 25, findings 8, 9 and 11).

- Keyless is a choice: a loopback gateway with no key source is open only with FORKPOINT_OPEN=1
  (`forkpoint serve --open`); without it every request is 401 with a hint saying so, and open
  beyond loopback does not start.
- DNS rebinding: a loopback gateway (open or keyed) answers only requests naming a loopback host
  or a FORKPOINT_ALLOWED_HOSTS name; beyond loopback, only once names are listed.
- A /v1 body must be JSON (or multipart for POST /v1/jobs): a web page's text/plain or form
  POST is 415 before the body is read.
- The results stream: `start` is bounded (422, not a 500), streams are capped (429 with
  Retry-After) and a slot is given back when a stream ends, results come in pages.
- Blank keys are no keys; key-file comments may be indented; /readyz names no URL and asks the
  runtime at most once per window.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from forkpoint.api import app as app_module
from forkpoint.api import door
from forkpoint.api.app import create_app
from forkpoint.api.settings import Settings
from forkpoint.cli.main import app as cli_app
from forkpoint.runtime.launcher import free_port

LOCAL = "http://127.0.0.1:8000"
SHAPE = {"error", "hint", "retryable", "kind"}
JOB = {"task": "contacts", "documents": [{"name": "a.txt", "text": "Ann Lee, ann@x.org"}]}
JOB_BYTES = json.dumps(JOB).encode()
AS_JSON = {"content-type": "application/json"}
KEY = {"Authorization": "Bearer k"}


def gateway(tmp_path, **settings) -> TestClient:
    """A gateway built from `settings` alone (no test defaults), called as from this machine."""
    values = {"db_path": tmp_path / "gateway.db", "sglang_url": "http://127.0.0.1:9", **settings}
    client = TestClient(create_app(Settings(**values), start_workers=False), base_url=LOCAL)
    return client


@pytest.fixture
def body_reads(monkeypatch) -> list[int]:
    """The size of every body chunk the gateway takes in, whichever request sent it."""
    read: list[int] = []
    counted = door.Door._counted

    def spy(self, receive):
        inner = counted(self, receive)

        async def spying():
            message = await inner()
            read.append(len(message.get("body", b"")))
            return message

        return spying

    monkeypatch.setattr(door.Door, "_counted", spy)
    return read


# --- keyless is an explicit choice --------------------------------------------------------------


def test_a_loopback_gateway_with_no_keys_and_not_open_refuses_with_a_hint_to_do_either(tmp_path):
    with gateway(tmp_path) as client:
        refused = client.get("/v1/jobs")
        job = client.post("/v1/jobs", json=JOB)
    assert refused.status_code == 401 and job.status_code == 401
    body = refused.json()
    assert set(body) == SHAPE and body["kind"] == "Unauthorized"
    assert "FORKPOINT_OPEN=1" in body["hint"] and "FORKPOINT_API_KEYS" in body["hint"]


def test_forkpoint_open_1_in_the_environment_opens_a_loopback_gateway(tmp_path, monkeypatch):
    monkeypatch.setenv("FORKPOINT_OPEN", "1")
    with gateway(tmp_path) as client:
        assert client.post("/v1/jobs", json=JOB).status_code == 202
        assert client.get("/metrics").status_code == 200


def test_open_with_a_key_configured_still_needs_the_key(tmp_path):
    with gateway(tmp_path, open=True, api_keys=["k"]) as client:
        assert client.get("/v1/jobs").status_code == 401
        assert client.get("/v1/jobs", headers=KEY).status_code == 200


def test_open_beyond_loopback_does_not_start(tmp_path):
    with pytest.raises(ValidationError, match="only on a loopback bind"):
        Settings(host="0.0.0.0", open=True, api_keys=["k"], db_path=tmp_path / "x.db")


def test_forkpoint_serve_open_beyond_loopback_exits_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("FORKPOINT_DB_PATH", str(tmp_path / "x.db"))
    result = CliRunner().invoke(
        cli_app, ["serve", "--open", "--host", "0.0.0.0", "--sglang-url", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 2, result.output
    assert "only on a loopback bind" in result.output


# --- Host: DNS rebinding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:8000", "127.0.0.1.nip.io", "localhost.evil.io"]
)
def test_an_open_gateway_refuses_a_request_naming_another_host_with_400(tmp_path, host):
    with gateway(tmp_path, open=True) as client:
        answers = [
            client.post("/v1/jobs", json=JOB, headers={"Host": host}),
            client.get("/v1/jobs", headers={"Host": host}),
            client.get("/readyz", headers={"Host": host}),
            client.get("/openapi.json", headers={"Host": host}),
        ]
        jobs = client.get("/v1/jobs").json()
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert set(answer.json()) == SHAPE and answer.json()["kind"] == "RequestError"
        assert f"the host {host!r}" in answer.json()["error"]
        assert "FORKPOINT_ALLOWED_HOSTS" in answer.json()["hint"]
    assert jobs == []  # the rebinding page's job was never created


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:8000", "localhost", "LocalHost:1234", "[::1]", "[::1]:8000"],
)
def test_loopback_host_names_with_any_port_are_answered(tmp_path, host):
    with gateway(tmp_path, open=True) as client:
        assert client.get("/v1/jobs", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["", "::1", "127.0.0.1:80:80", "127.0.0.1:http", "[::1]x"])
def test_a_malformed_host_header_is_400(tmp_path, host):
    with gateway(tmp_path, open=True) as client:
        assert client.get("/v1/jobs", headers={"Host": host}).status_code == 400


def test_a_keyed_loopback_gateway_checks_the_host_even_for_a_valid_key(tmp_path):
    with gateway(tmp_path, api_keys=["k"]) as client:
        refused = client.get("/v1/jobs", headers={**KEY, "Host": "attacker.example"})
        assert refused.status_code == 400
        assert client.get("/v1/jobs", headers=KEY).status_code == 200


def test_names_in_allowed_hosts_are_answered_on_loopback_and_others_are_not(tmp_path):
    with gateway(tmp_path, open=True, allowed_hosts=["Gateway.LAN"]) as client:
        assert client.get("/v1/jobs", headers={"Host": "gateway.lan:8000"}).status_code == 200
        assert client.get("/v1/jobs", headers={"Host": "other.lan"}).status_code == 400


def test_beyond_loopback_with_keys_any_host_is_answered_unless_names_are_listed(tmp_path):
    with gateway(tmp_path, host="0.0.0.0", api_keys=["k"]) as client:
        anyhost = client.get("/v1/jobs", headers={**KEY, "Host": "gw.example.com"})
        assert anyhost.status_code == 200
    with gateway(tmp_path, host="0.0.0.0", api_keys=["k"], allowed_hosts=["gw.lan"]) as client:
        assert client.get("/v1/jobs", headers={**KEY, "Host": "gw.lan"}).status_code == 200
        assert client.get("/v1/jobs", headers={**KEY, "Host": "gw.example"}).status_code == 400


def test_a_wrong_host_is_refused_before_the_body_is_read(tmp_path, body_reads):
    with gateway(tmp_path, open=True) as client:
        headers = {**AS_JSON, "Host": "attacker.example"}
        assert client.post("/v1/jobs", content=JOB_BYTES, headers=headers).status_code == 400
    assert body_reads == []


# --- a /v1 body must be JSON -------------------------------------------------------------------

JSON_ROUTES = ["/v1/jobs", "/v1/extract", "/v1/schemas/check", "/v1/programs/any/runs"]
NOT_JSON = ["text/plain", "application/x-www-form-urlencoded", "text/plain;charset=utf-8"]


@pytest.mark.parametrize("content_type", NOT_JSON)
@pytest.mark.parametrize("path", JSON_ROUTES)
def test_a_web_page_post_that_is_not_json_is_415(tmp_path, path, content_type):
    with gateway(tmp_path, open=True) as client:
        answer = client.post(path, content=JOB_BYTES, headers={"content-type": content_type})
        jobs = client.get("/v1/jobs").json()
    assert answer.status_code == 415, answer.text
    assert set(answer.json()) == SHAPE and answer.json()["kind"] == "RequestError"
    assert "application/json" in answer.json()["error"]
    assert jobs == []


def test_a_body_without_a_content_type_is_415(tmp_path):
    with gateway(tmp_path, open=True) as client:
        request = client.build_request("POST", "/v1/jobs", content=JOB_BYTES)
        assert "content-type" not in request.headers  # raw bytes: httpx names no type
        assert client.send(request).status_code == 415


def test_a_not_json_body_is_refused_before_it_is_read(tmp_path, body_reads):
    with gateway(tmp_path, open=True) as client:
        text = {"content-type": "text/plain"}
        assert client.post("/v1/jobs", content=JOB_BYTES, headers=text).status_code == 415
    assert body_reads == []


def test_json_with_a_charset_and_multipart_jobs_are_accepted(tmp_path):
    with gateway(tmp_path, open=True) as client:
        charset = {"content-type": "Application/JSON; charset=utf-8"}
        assert client.post("/v1/jobs", content=JOB_BYTES, headers=charset).status_code == 202
        files = [("files", ("a.txt", b"Ann Lee, ann@x.org", "text/plain"))]
        multipart = client.post("/v1/jobs", data={"task": "contacts"}, files=files)
        assert multipart.status_code == 202, multipart.text


def test_multipart_is_415_on_routes_other_than_job_submission(tmp_path):
    files = [("files", ("a.txt", b"Ann", "text/plain"))]
    with gateway(tmp_path, open=True) as client:
        answer = client.post("/v1/extract", data={"task": "contacts"}, files=files)
    assert answer.status_code == 415


def test_requests_without_a_body_need_no_content_type(tmp_path):
    with gateway(tmp_path, open=True) as client:
        job = client.post("/v1/jobs", json=JOB).json()
        assert client.delete(f"/v1/jobs/{job['id']}").status_code == 200
        assert client.get(f"/v1/jobs/{job['id']}/results?wait=false").status_code == 200


# --- the results stream ----------------------------------------------------------------------


@pytest.mark.parametrize("start", [2**63, 2**64 + 5, 10**9 + 1])
def test_a_results_start_past_the_bound_is_422_not_a_crash(tmp_path, start):
    with gateway(tmp_path, open=True) as client:
        job = client.post("/v1/jobs", json=JOB).json()
        answer = client.get(f"/v1/jobs/{job['id']}/results?wait=false&start={start}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["kind"] == "RequestError" and "start" in answer.json()["error"]


def test_results_are_streamed_in_order_across_many_pages(tmp_path):
    total = 700  # more than two pages of the stream's store reads
    documents = [{"name": f"d{i}.txt", "text": f"doc {i}"} for i in range(total)]
    with gateway(tmp_path, open=True) as client:
        job = client.post("/v1/jobs", json={"task": "contacts", "documents": documents}).json()
        store = client.app.state.store
        for i in range(total):  # as the workers would record them
            store.record(job["id"], i, {"file": f"d{i}.txt", "data": {"i": i}})
        answer = client.get(f"/v1/jobs/{job['id']}/results")
        later = client.get(f"/v1/jobs/{job['id']}/results?start=650")
    assert [json.loads(line)["data"]["i"] for line in answer.text.splitlines()] == list(
        range(total)
    )
    assert [json.loads(line)["data"]["i"] for line in later.text.splitlines()] == list(
        range(650, total)
    )


def test_the_store_reads_results_a_page_at_a_time(tmp_path):
    with gateway(tmp_path, open=True) as client:
        documents = [{"name": f"d{i}", "text": "x"} for i in range(5)]
        job = client.post("/v1/jobs", json={"task": "contacts", "documents": documents}).json()
        store = client.app.state.store
        for i in range(5):
            store.record(job["id"], i, {"file": f"d{i}", "data": {"i": i}})
        page = store.results(job["id"], 1, limit=2)
    assert [r["data"]["i"] for r in page] == [1, 2]


def test_finished_streams_give_their_slot_back(tmp_path):
    with gateway(tmp_path, open=True, max_result_streams=1) as client:
        job = client.post("/v1/jobs", json=JOB).json()
        statuses = [
            client.get(f"/v1/jobs/{job['id']}/results?wait=false").status_code for _ in range(4)
        ]
    assert statuses == [200] * 4


@pytest.fixture
def served(tmp_path) -> Iterator[str]:
    """A real gateway (uvicorn, in a thread) allowing one results stream: its URL."""
    settings = Settings(
        db_path=tmp_path / "served.db",
        sglang_url="http://127.0.0.1:9",
        open=True,
        max_result_streams=1,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, start_workers=False), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the gateway did not start within 60 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_a_results_stream_past_the_cap_is_429_with_retry_after_until_one_closes(served):
    job = httpx.post(f"{served}/v1/jobs", json=JOB, timeout=30).json()
    results = f"{served}/v1/jobs/{job['id']}/results"
    with httpx.stream("GET", results, timeout=30) as held:  # waits: the job never runs here
        assert held.status_code == 200
        refused = httpx.get(results, timeout=30)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "30"
        assert refused.json()["kind"] == "QueueFull" and refused.json()["retryable"] is True
    deadline = time.monotonic() + 20  # the gateway sees the closed connection, then frees it
    status = 429
    while status == 429 and time.monotonic() < deadline:
        status = httpx.get(f"{results}?wait=false", timeout=30).status_code
        time.sleep(0.1)
    assert status == 200


# --- keys: blanks and comments ---------------------------------------------------------------


def test_a_key_list_of_only_a_blank_key_holds_no_key(tmp_path, monkeypatch):
    monkeypatch.setenv("FORKPOINT_API_KEYS", '["", "  "]')
    with gateway(tmp_path) as client:
        empty_token = client.get("/v1/jobs", headers={"Authorization": "Bearer "})
        blank_token = client.get("/v1/jobs", headers={"Authorization": "Bearer   "})
    assert empty_token.status_code == 401 and blank_token.status_code == 401
    assert "no API key is configured" in empty_token.json()["error"]
    with pytest.raises(ValidationError, match="configure API keys"):
        Settings(host="0.0.0.0", db_path=tmp_path / "x.db")


def test_an_empty_bearer_token_never_matches_a_blank_key_or_an_admin_one(tmp_path):
    with gateway(tmp_path, api_keys=["", "k"], admin_keys=[""]) as client:
        assert client.get("/v1/jobs", headers={"Authorization": "Bearer "}).status_code == 401
        job = client.post("/v1/jobs", json=JOB, headers=KEY).json()
        assert client.get("/v1/jobs", headers=KEY).json()[0]["id"] == job["id"]
        other = client.post("/v1/jobs", json=JOB, headers={"Authorization": "Bearer x"})
    assert other.status_code == 401


def test_indented_comment_lines_in_the_key_file_are_not_keys(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("  # old key, revoked\n\t#another\n  alice-key  \n\n   \n")
    with gateway(tmp_path, api_keys_file=keys) as client:
        for comment in ("# old key, revoked", "#another"):
            answer = client.get("/v1/jobs", headers={"Authorization": f"Bearer {comment}"})
            assert answer.status_code == 401, comment
        alice = client.get("/v1/jobs", headers={"Authorization": "Bearer alice-key"})
        assert alice.status_code == 200


def test_a_key_file_of_only_comments_and_blanks_holds_no_key(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("  # nobody yet\n   \n")
    with gateway(tmp_path, api_keys_file=keys) as client:
        refused = client.get("/v1/jobs", headers={"Authorization": "Bearer # nobody yet"})
    assert refused.status_code == 401
    assert "no API key is configured" in refused.json()["error"]


# --- /readyz ---------------------------------------------------------------------------------


class Runtime:
    """A stand-in runtime on 127.0.0.1 that answers /health and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        runtime = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                runtime.calls += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    fake = Runtime()
    yield fake
    fake.close()


def test_readyz_does_not_name_the_runtime_url(tmp_path, runtime):
    with gateway(tmp_path, open=True) as down:
        answer = down.get("/readyz")
    assert (answer.status_code, answer.json()) == (503, {"ready": False})
    assert "127.0.0.1:9" not in answer.text
    with gateway(tmp_path, open=True, sglang_url=runtime.url) as up:
        answer = up.get("/readyz")
    assert (answer.status_code, answer.json()) == (200, {"ready": True})
    assert runtime.url.removeprefix("http://") not in answer.text


def test_readyz_asks_the_runtime_once_per_window_however_often_it_is_called(
    tmp_path, runtime, monkeypatch
):
    monkeypatch.setattr(app_module, "READY_CACHE_SECONDS", 3600.0)
    with gateway(tmp_path, open=True, sglang_url=runtime.url) as client:
        answers = [client.get("/readyz").status_code for _ in range(20)]
    assert answers == [200] * 20 and runtime.calls == 1


def test_readyz_asks_again_once_the_window_has_passed(tmp_path, runtime, monkeypatch):
    monkeypatch.setattr(app_module, "READY_CACHE_SECONDS", 0.0)
    with gateway(tmp_path, open=True, sglang_url=runtime.url) as client:
        for _ in range(3):
            client.get("/readyz")
    assert runtime.calls == 3

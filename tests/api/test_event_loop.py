"""Nothing slow runs on the gateway's event loop: while an upload is being parsed (or a schema
compiled), every other request — the key check, /healthz — is still answered."""

import threading
import time

import httpx
import pytest
import uvicorn

from forkpoint.api import routes_extract, routes_jobs
from forkpoint.api.app import create_app
from forkpoint.api.settings import Settings
from forkpoint.runtime.launcher import free_port

WAIT = 30.0  # seconds any one step may take on a loaded CI machine before the test fails


@pytest.fixture
def gateway_url(tmp_path):
    """A real uvicorn server in this process (so a parser can be slowed down in it)."""
    settings = Settings(db_path=tmp_path / "g.db", sglang_url="http://127.0.0.1:9", open=True)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, start_workers=False), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started:
        assert thread.is_alive(), "the gateway's uvicorn server exited before it started"
        assert time.monotonic() < deadline, f"the gateway did not start within {WAIT:.0f} s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=WAIT)


class Blocked:
    """Wraps a function so that it blocks (a 30 MB PDF being parsed, say) until `release`."""

    def __init__(self, function) -> None:
        self.function = function
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, *args, **kwargs):
        self.entered.set()
        self.release.wait(WAIT)  # blocking work, on whatever thread the gateway runs it
        return self.function(*args, **kwargs)


def healthz_while(url: str, request, blocked: Blocked) -> int:
    """Send `request` in the background and, while it is blocked in `blocked`, ask /healthz;
    then let it go. Returns the background request's status code."""
    answers: list[int] = []
    background = threading.Thread(target=lambda: answers.append(request().status_code))
    background.start()
    try:
        assert blocked.entered.wait(WAIT), "the request never reached the slowed function"
        try:
            health = httpx.get(f"{url}/healthz", timeout=10)
        except httpx.TimeoutException:
            pytest.fail("/healthz waited for the blocked request: it runs on the event loop")
        assert health.status_code == 200  # and the blocked request is still blocked
    finally:
        blocked.release.set()
        background.join(timeout=WAIT)
    assert answers, "the background request did not finish"
    return answers[0]


def test_healthz_answers_while_an_upload_is_being_parsed(gateway_url, monkeypatch):
    parser = Blocked(routes_jobs.iter_bytes)
    monkeypatch.setattr(routes_jobs, "iter_bytes", parser)
    files = {"files": ("a.txt", b"Ann Lee, CTO", "text/plain")}

    def upload():
        return httpx.post(
            f"{gateway_url}/v1/jobs", data={"task": "contacts"}, files=files, timeout=WAIT
        )

    assert healthz_while(gateway_url, upload, parser) == 202  # and the job was accepted after


def test_healthz_answers_while_a_schema_is_being_compiled(gateway_url, monkeypatch):
    compiler = Blocked(routes_extract.choose)
    monkeypatch.setattr(routes_extract, "choose", compiler)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}

    def extract():
        body = {"schema": schema, "document": "x"}
        return httpx.post(f"{gateway_url}/v1/extract", json=body, timeout=WAIT)

    # the runtime is unreachable: the answer, after the compile, is 503
    assert healthz_while(gateway_url, extract, compiler) == 503

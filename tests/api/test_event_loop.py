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
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def slowed(function, finished: threading.Event):
    """`function`, taking a second of blocking work first (a 30 MB PDF, say)."""

    def slow(*args, **kwargs):
        time.sleep(1.0)
        finished.set()
        return function(*args, **kwargs)

    return slow


def answered_while(url: str, request, finished: threading.Event) -> bool:
    """Send `request` in the background; True if /healthz answered before it finished."""
    background = threading.Thread(target=request)
    background.start()
    time.sleep(0.2)  # the slow request is in its parser now
    health = httpx.get(f"{url}/healthz", timeout=30)
    during = not finished.is_set()
    background.join()
    return health.status_code == 200 and during


def test_healthz_answers_while_an_upload_is_being_parsed(gateway_url, monkeypatch):
    finished = threading.Event()
    monkeypatch.setattr(routes_jobs, "iter_bytes", slowed(routes_jobs.iter_bytes, finished))
    files = {"files": ("a.txt", b"Ann Lee, CTO", "text/plain")}

    def upload():
        answer = httpx.post(f"{gateway_url}/v1/jobs", data={"task": "contacts"}, files=files)
        assert answer.status_code == 202

    assert answered_while(gateway_url, upload, finished)


def test_healthz_answers_while_a_schema_is_being_compiled(gateway_url, monkeypatch):
    finished = threading.Event()
    monkeypatch.setattr(routes_extract, "choose", slowed(routes_extract.choose, finished))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}

    def extract():  # the runtime is unreachable: the answer is 503, after the compile
        httpx.post(f"{gateway_url}/v1/extract", json={"schema": schema, "document": "x"})

    assert answered_while(gateway_url, extract, finished)

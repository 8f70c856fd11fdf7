"""/v1/extract answers in bounded time when the runtime hangs, and a hung runtime takes no thread
that anything else needs.

A real SGLang server cannot be made to hang on demand, so the runtime here is a fake (labelled
as one): a small HTTP server that answers /health and the model info at once, 404 to anything
else, and never answers /generate until the test ends. The gateway is a real uvicorn server in
this process.
"""

import http.server
import threading
import time

import httpx
import pytest
import uvicorn
from http_fakes import JsonHandler

from forkpoint.api.app import create_app
from forkpoint.api.deps import EXTRACT_SLOTS
from forkpoint.api.settings import Settings
from forkpoint.runtime.launcher import free_port

SHAPE = {"error", "hint", "retryable", "kind"}
KEY = {"Authorization": "Bearer k"}
MODEL_INFO = b'{"model_path": "mistralai/Mixtral-8x7B-Instruct-v0.1"}'
DOCUMENT = {"task": "contacts", "document": "Ann Lee, CTO of Acme"}


class HungRuntime(http.server.ThreadingHTTPServer):
    """FAKE runtime: healthy, says which model it serves, never answers /generate."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.generating = 0  # /generate requests waiting for an answer
        self.lock = threading.Lock()
        self.released = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Handler(JsonHandler):
    server: HungRuntime

    def do_GET(self):
        if self.path in ("/health", "/model_info", "/get_model_info"):
            self._reply(200, MODEL_INFO)
        else:
            self._reply(404, b"{}")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/generate":
            self._reply(404, b"{}")  # /tokenize: the context length stays unknown
            return
        with self.server.lock:
            self.server.generating += 1
        self.server.released.wait()  # hung; at the end of the test the connection just closes
        with self.server.lock:
            self.server.generating -= 1


@pytest.fixture
def runtime():
    server = HungRuntime()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.released.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway(tmp_path, runtime):
    """A gateway over the hung runtime with a key and a deadline of `seconds`: its URL."""
    servers = []

    def start(seconds: float) -> str:
        settings = Settings(
            db_path=tmp_path / f"g{len(servers)}.db",
            sglang_url=runtime.url,
            api_keys=["k"],
            extract_timeout_seconds=seconds,
        )
        port = free_port()
        config = uvicorn.Config(
            create_app(settings, start_workers=False), port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the gateway's uvicorn server exited before it started"
            assert time.monotonic() < deadline, "the gateway did not start within 30 s"
            time.sleep(0.05)
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.should_exit = True


def extract(url: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    answer = httpx.post(f"{url}/v1/extract", json=DOCUMENT, headers=KEY, timeout=60)
    return answer, time.perf_counter() - started


def extraction_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "fp-extract"}


def test_extract_answers_504_at_its_deadline_when_the_runtime_never_answers(gateway):
    deadline = 1.0
    url = gateway(deadline)
    answer, seconds = extract(url)
    assert answer.status_code == 504
    body = answer.json()
    assert set(body) == SHAPE
    assert body["kind"] == "RuntimeTimeout" and body["retryable"] is True and body["hint"]
    # Not before the deadline, and not when the runtime calls give up (three tries of 1 s,
    # 1 s and 4 s apart: 8 s); the margin between is for a loaded machine.
    assert deadline <= seconds < 6.0


def test_the_abandoned_extraction_thread_ends_on_its_own(gateway):
    seconds = 1.0
    url = gateway(seconds)
    before = extraction_threads()
    assert extract(url)[0].status_code == 504
    (abandoned,) = extraction_threads() - before
    # every runtime call it makes gives up after the deadline: three tries, 1 s and 4 s apart
    abandoned.join(timeout=3 * seconds + 5.0 + 3.0)
    assert not abandoned.is_alive()


def test_a_full_extraction_pool_leaves_health_and_jobs_answering_and_refuses_one_more(
    gateway, runtime
):
    held = 30.0  # how long each slot waits for the runtime: the bound below is far from it
    url = gateway(held)
    hung = [threading.Thread(target=extract, args=(url,)) for _ in range(EXTRACT_SLOTS)]
    for thread in hung:
        thread.start()
    deadline = time.monotonic() + 15
    while runtime.generating < EXTRACT_SLOTS and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.generating == EXTRACT_SLOTS  # every slot waits for the runtime

    # Answered while every slot is held, not when one frees up (at `held` s): 5 s is for a
    # loaded machine.
    for path, headers in (("/healthz", {}), ("/v1/jobs", KEY)):
        started = time.perf_counter()
        answer = httpx.get(f"{url}{path}", headers=headers, timeout=30)
        assert answer.status_code == 200, path
        assert time.perf_counter() - started < 5.0, path
    assert runtime.generating == EXTRACT_SLOTS  # still held: answered by something else

    answer, seconds = extract(url)
    assert answer.status_code == 503 and seconds < 5.0  # refused, not queued for a slot
    assert runtime.generating == EXTRACT_SLOTS
    body = answer.json()
    assert set(body) == SHAPE and body["kind"] == "RuntimeUnavailable" and body["retryable"]
    assert "Retry-After" in answer.headers
    runtime.released.set()  # the hung requests' threads end; their answers are not the point
    for thread in hung:
        thread.join(timeout=30)

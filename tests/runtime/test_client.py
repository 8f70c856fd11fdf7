"""The one runtime client: every call to SGLang has a timeout, and an unreachable or hung
runtime is RuntimeUnavailable, never an httpx traceback or a wait without end."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from forkpoint.errors import RuntimeUnavailable
from forkpoint.runtime.client import RuntimeClient, Timeouts
from forkpoint.runtime.launcher import free_port


@pytest.fixture
def hung_runtime():
    """A port that accepts connections and never answers: a runtime stuck in a long step."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_hung_runtime_ends_the_call_after_its_timeout(hung_runtime):
    client = RuntimeClient(hung_runtime, timeouts=Timeouts(connect=1.0, call=1.0))
    started = time.perf_counter()
    with pytest.raises(RuntimeUnavailable, match="POST /tokenize: timed out"):
        client.tokenize(["x"])
    assert 1.0 <= time.perf_counter() - started < 5.0
    assert client.healthy() is False  # a health probe says so instead of raising


def test_nothing_listening_is_runtime_unavailable_at_once():
    url = f"http://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    with pytest.raises(RuntimeUnavailable, match=f"no SGLang server answers at {url}"):
        RuntimeClient(url).model_info()
    assert time.perf_counter() - started < 1.0


def test_the_client_reads_what_a_real_runtime_serves(sglang_server):
    client = RuntimeClient(sglang_server.url)
    assert client.model_info()["model_path"] == sglang_server.profile.model_path
    counts, context = client.tokenize(["Invoice 7", "Invoice 7 from Alder Ltd"])
    assert counts[0] < counts[1] and context == 8192  # SmolLM2-135M's context
    assert client.healthy("/health") and client.healthy("/health_generate")
    with pytest.raises(RuntimeUnavailable, match="answered /no_such_path with 404"):
        client.json("GET", "/no_such_path")


class _HeldServer(ThreadingHTTPServer):
    """Answers each POST only once `parties` requests are in at the same time (a server whose
    batch fills), and records the client port of every connection it served."""

    daemon_threads = True
    request_queue_size = 512

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=30)
        self.ports: set[int] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as SGLang's uvicorn

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers["Content-Length"]))
                server.ports.add(self.client_address[1])
                try:
                    server.barrier.wait()
                    status, body = 200, b'{"text": "ok"}'
                except threading.BrokenBarrierError:
                    status, body = 503, b'{"error": "fewer requests in flight than sent"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_one_client_keeps_every_callers_request_in_flight_on_connections_it_keeps():
    """The 2x4090 profile keeps 160 documents in flight through one client: all 160 reach the
    server at once (httpx's default pool stopped at 100), and a second wave reuses the first's
    connections instead of reconnecting (its default kept 20 alive)."""
    parties = 160
    server = _HeldServer(parties)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = RuntimeClient(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        with ThreadPoolExecutor(parties) as pool:
            call = lambda _: client.json("POST", "/generate", json={"text": "x"}, timeout=60)  # noqa: E731
            assert list(pool.map(call, range(parties))) == [{"text": "ok"}] * parties
            first = set(server.ports)
            assert list(pool.map(call, range(parties))) == [{"text": "ok"}] * parties
        assert len(first) == parties
        assert server.ports == first  # no new connection in the second wave
    finally:
        server.shutdown()
        server.server_close()

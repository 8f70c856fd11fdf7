"""The one runtime client: every call to SGLang has a timeout, and an unreachable or hung
runtime is RuntimeUnavailable, never an httpx traceback or a wait without end."""

import socket
import time

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

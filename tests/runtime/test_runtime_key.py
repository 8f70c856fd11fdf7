"""The runtime key: a runtime reachable from the network needs one, and forkpoint always sends it.

End to end (real SGLang workers that require the key, behind a real sglang-router, called by a
real gateway) in tests/runtime/test_router.py; here the rules, in-process.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from forkpoint.errors import ProfileError
from forkpoint.runtime.client import RUNTIME_KEY_ENV, RuntimeClient
from forkpoint.runtime.launcher import launch_argv
from forkpoint.runtime.profiles import get_profile

LAN = get_profile("cpu-small").model_copy(update={"host": "0.0.0.0", "model_path": "/m"})
LOCAL = get_profile("cpu-small").model_copy(update={"model_path": "/m"})


def test_a_runtime_on_the_lan_without_a_key_is_refused_before_it_starts(monkeypatch):
    monkeypatch.delenv(RUNTIME_KEY_ENV, raising=False)
    with pytest.raises(ProfileError, match="binds the runtime to 0.0.0.0") as refused:
        launch_argv(LAN)
    assert RUNTIME_KEY_ENV in (refused.value.hint or "")


def test_with_a_key_a_lan_runtime_launches_with_the_profiles_argv_and_no_key_on_it(monkeypatch):
    """The key reaches SGLang through its environment (runtime/server_key.py), never its argv."""
    monkeypatch.setenv(RUNTIME_KEY_ENV, "k-1")
    argv = launch_argv(LAN)
    assert argv == LAN.argv() and "k-1" not in argv and "--api-key" not in argv


def test_a_loopback_runtime_needs_no_key(monkeypatch):
    monkeypatch.delenv(RUNTIME_KEY_ENV, raising=False)
    assert launch_argv(LOCAL) == LOCAL.argv()


class Recorder(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:
        Recorder.seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Recorder.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_every_call_to_a_runtime_carries_the_key_from_the_environment(monkeypatch, recorder):
    monkeypatch.setenv(RUNTIME_KEY_ENV, "k-2")
    assert RuntimeClient(recorder).healthy()
    monkeypatch.delenv(RUNTIME_KEY_ENV)
    assert RuntimeClient(recorder).healthy()
    assert Recorder.seen == ["Bearer k-2", None]

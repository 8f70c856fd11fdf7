"""The launcher starts a real SGLang server, waits for it, and always stops all of it."""

import os
import time

import httpx
import pytest

from forkpoint.errors import RuntimeUnavailable
from forkpoint.runtime.launcher import RuntimeServer
from forkpoint.runtime.profiles import get_profile

pytestmark = pytest.mark.slow


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_the_session_server_generates(sglang_server):
    answer = httpx.post(
        f"{sglang_server.url}/generate",
        json={"text": "Hello", "sampling_params": {"max_new_tokens": 2, "temperature": 0}},
        timeout=60,
    )
    assert answer.status_code == 200
    assert answer.json()["meta_info"]["completion_tokens"] == 2


def test_a_server_that_cannot_start_fails_fast_with_its_log_tail(tmp_path):
    profile = get_profile("cpu-small").model_copy(
        update={"model_path": str(tmp_path / "no-such-model"), "port": 0}
    )
    server = RuntimeServer(profile, log_path=tmp_path / "server.log", startup_timeout=300)
    started = time.monotonic()
    with pytest.raises(RuntimeUnavailable) as failure:
        server.start()
    assert time.monotonic() - started < 120
    message = str(failure.value)
    assert "exited with code" in message
    assert f"last lines of {tmp_path / 'server.log'}" in message
    assert "no-such-model" in message
    assert not server.running


def test_leaving_the_with_block_stops_the_whole_process_group(tmp_path):
    profile = get_profile("cpu-small").model_copy(update={"port": 0, "max_total_tokens": 4096})
    with RuntimeServer(profile, log_path=tmp_path / "server.log") as server:
        pgid = server.process.pid
        assert httpx.get(f"{server.url}/health_generate", timeout=30).status_code == 200
    assert not _group_alive(pgid)
    assert not server.running


def test_two_servers_of_one_profile_in_one_process_log_to_two_files():
    profile = get_profile("cpu-small").model_copy(update={"port": 0})
    first, second = RuntimeServer(profile), RuntimeServer(profile)
    assert first.log_path != second.log_path
    assert first.log_path.parent == second.log_path.parent
    assert first.log_path.name.startswith(f"cpu-small-{os.getpid()}-")

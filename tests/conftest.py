"""Real processes shared by the tests: an SGLang server (cpu-small) and gateway processes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from forkpoint.runtime.launcher import RuntimeServer, free_port
from forkpoint.runtime.profiles import Speculation, get_profile


@pytest.fixture(scope="session")
def sglang_server():
    """A running cpu-small server on a free port; `.url` and `.profile` for the tests."""
    profile = get_profile("cpu-small").model_copy(update={"port": 0})
    with RuntimeServer(profile) as server:
        yield server


# float32: in bfloat16 a verify batch and a decode step round differently, which flips
# near-tied greedy choices; float32 makes "speculation changes nothing" testable exactly.
# Module-scoped and with a small KV pool: a second and third server for the whole session
# pushed the suite's peak RAM into the OOM killer (seen in CI).
SMALL_FLOAT32 = {"port": 0, "dtype": "float32", "max_total_tokens": 8192}


@pytest.fixture(scope="module")
def ngram_server():
    """cpu-small in float32 with NGRAM and 4 draft slots for external (job) corpora."""
    cpu = get_profile("cpu-small")
    speculation = cpu.speculation.model_copy(update={"algorithm": "NGRAM",
                                                     "external_sam_budget": 4})  # fmt: skip
    with RuntimeServer(cpu.model_copy(update={**SMALL_FLOAT32, "speculation": speculation})) as s:
        yield s


@pytest.fixture(scope="module")
def plain_server():
    """cpu-small in float32 with speculation off: the reference for ngram_server."""
    profile = get_profile("cpu-small").model_copy(
        update={**SMALL_FLOAT32, "speculation": Speculation()}
    )
    with RuntimeServer(profile) as server:
        yield server


class Gateway:
    """`forkpoint serve` as a child process; kill() is a SIGKILL.

    `runtime` is a URL (`--sglang-url`: someone else's runtime) or a profile (`--profile`: the
    gateway starts its own runtime and restarts it if it dies)."""

    def __init__(self, runtime: str, db_path: Path, log_path: Path, **env: str) -> None:
        self.runtime, self.db_path, self.log_path = runtime, db_path, log_path
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Gateway":
        env = {**os.environ, "FORKPOINT_DB_PATH": str(self.db_path), "FORKPOINT_CONCURRENCY": "16",
               **self.env}  # fmt: skip
        flag = "--sglang-url" if self.runtime.startswith("http") else "--profile"
        command = [sys.executable, "-m", "forkpoint.cli", "serve", flag, self.runtime,
                   "--port", str(self.port)]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 300  # with its own runtime: model load first
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.5)
        raise AssertionError(f"gateway did not start:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


@pytest.fixture
def start_gateway(tmp_path):
    """start_gateway(url_or_profile, **env) -> a started Gateway process, stopped after it."""
    started = []

    def start(runtime: str, **env: str) -> Gateway:
        n = len(started)
        gateway = Gateway(runtime, tmp_path / f"gateway-{n}.db", tmp_path / f"gateway-{n}.log",
                          **env)  # fmt: skip
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()

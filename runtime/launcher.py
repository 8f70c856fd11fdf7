"""Start an SGLang server as a child process, wait until it can generate, and always stop it.

The child runs in its own process group (SGLang spawns scheduler and detokenizer processes), so
stopping it stops all of them: SIGTERM to the group, SIGKILL after a grace period. Stopping
happens on `stop()`, on leaving the `with` block (also on Ctrl-C and errors) and at interpreter
exit, so a crashed forkpoint never leaves a server holding RAM or a GPU.
"""

from __future__ import annotations

import atexit
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import httpx

from forkpoint.errors import ProfileError, RuntimeUnavailable
from forkpoint.runtime import grammar_cache, server_key
from forkpoint.runtime.client import (
    RUNTIME_KEY_ENV,
    RuntimeClient,
    Timeouts,
    is_loopback,
    runtime_api_key,
)
from forkpoint.runtime.paths import logs_dir
from forkpoint.runtime.profiles import LaunchProfile

STOP_GRACE_SECONDS = 20.0


_LOG_NUMBERS = itertools.count(1)


class ManagedProcess:
    """A server child process in its own group, logged to a file, stopped with all it started."""

    def __init__(self, name: str, log_path: Path | None, startup_timeout: float) -> None:
        # one log per process object: two servers of a profile in one process (a test session,
        # calibrate's variants) used to interleave their lines in one file
        self.log_path = log_path or logs_dir() / f"{name}-{os.getpid()}-{next(_LOG_NUMBERS)}.log"
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError

    def _spawn(self, argv: list[str], env: dict[str, str], health_path: str, what: str) -> None:
        """Start `argv` and block until GET `health_path` answers 200; else stop it and fail."""
        _exit_cleanly_on_sigterm()
        with open_log(self.log_path) as log:  # append: a restart keeps the crash's log
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: stop() reaches every child
            )
        atexit.register(self.stop)
        try:
            wait_until_ready(
                self.url, self.startup_timeout, process=self.process, path=health_path, what=what
            )
        except RuntimeUnavailable as exc:
            self.stop()
            raise RuntimeUnavailable(
                f"{exc.message}\n--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}",
                hint=exc.hint,
            ) from None

    def stop(self) -> None:
        """Stop the server and every process it started. Safe to call twice."""
        process, self.process = self.process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        for sig, wait_s in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait_s)
                _wait_group_gone(process.pid, wait_s)
                break
            except subprocess.TimeoutExpired:
                continue

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class RuntimeServer(ManagedProcess):
    """One SGLang server for a profile. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        profile: LaunchProfile,
        *,
        log_path: Path | None = None,
        startup_timeout: float = 600.0,
    ) -> None:
        super().__init__(profile.name, log_path, startup_timeout)
        self.profile = profile

    @property
    def url(self) -> str:
        return self.profile.url

    def start(self) -> RuntimeServer:
        """Launch the server and block until /health_generate answers."""
        self.profile = resolve(self.profile)
        argv, env = launch_argv(self.profile), server_env(self.profile)
        self._spawn(argv, env, "/health_generate", "the SGLang server")
        if server_key.ENV in env:
            self._refuse_an_open_server()
        return self

    def _refuse_an_open_server(self) -> None:
        """The key reaches SGLang inside the child (runtime/server_key.py), not on its argv:
        make sure it arrived, or a keyed runtime would serve anyone who can reach it."""
        try:
            status = httpx.get(f"{self.url}/model_info", timeout=30.0).status_code
        except httpx.HTTPError as exc:
            status, reason = None, str(exc)
        else:
            reason = f"HTTP {status}"
        if status != 401:
            self.stop()
            raise RuntimeUnavailable(
                f"the SGLang server at {self.url} did not refuse a call without the runtime "
                f"key ({reason}): it was stopped\n--- last lines of {self.log_path} ---\n"
                f"{log_tail(self.log_path)}",
                hint="the key is set by forkpoint's sitecustomize (runtime/server_site): check "
                "that PYTHONPATH and the profile's env leave it first",
            )

    def __enter__(self) -> RuntimeServer:
        return self.start()


def server_env(profile: LaunchProfile, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The SGLang child's environment: `environ` (ours by default), the profile's `env`, and
    `server_site/` first on PYTHONPATH, whose `sitecustomize` every SGLang process runs at
    start-up: the runtime key (in FORKPOINT_SERVER_API_KEY, which it takes out of the
    environment; see runtime/server_key.py), the grammar-cache bound (`grammar_cache_entries`,
    passed in FORKPOINT_GRAMMAR_CACHE_ENTRIES) and, on the CPU, the speculative kernels.

    Without the gateway's client keys (FORKPOINT_API_KEYS, FORKPOINT_ADMIN_KEYS,
    FORKPOINT_API_KEYS_FILE), and with the runtime key under FORKPOINT_SERVER_API_KEY only."""
    base = os.environ if environ is None else environ
    env = server_key.without_gateway_secrets({**base, **profile.env})
    env.pop(RUNTIME_KEY_ENV, None)
    env.pop(server_key.ENV, None)
    key = base.get(RUNTIME_KEY_ENV) or None
    if key:
        env[server_key.ENV] = key
    if profile.device == "cpu":
        env["LD_LIBRARY_PATH"] = _with_libcuda_stub(env.get("LD_LIBRARY_PATH", ""))
    env["PYTHONPATH"] = _with_server_site(env.get("PYTHONPATH", ""))
    env[grammar_cache.ENV] = str(profile.grammar_cache_entries)
    return env


def server_site_dir() -> Path:
    """The folder holding the `sitecustomize.py` every SGLang process we launch loads."""
    return Path(__file__).parent / "server_site"


def launch_argv(profile: LaunchProfile) -> list[str]:
    """The profile's argv, without the runtime key: an argv is world-readable (`ps`), so the key
    goes in the child's environment (`server_env`) and onto SGLang's ServerArgs inside it. A
    runtime bound beyond loopback without a key is refused: anyone on the LAN could use or
    flush it."""
    argv = profile.argv()
    if runtime_api_key():
        return argv
    if not is_loopback(profile.host):
        raise ProfileError(
            f"profile {profile.name!r} binds the runtime to {profile.host}, reachable from the "
            "network, and no runtime key is set",
            hint=f'set {RUNTIME_KEY_ENV} (the gateway sends it too), or bind host = "127.0.0.1"',
        )
    return argv


def resolve(profile: LaunchProfile) -> LaunchProfile:
    """Fill in what a profile leaves to launch time: the embedded model, a free port."""
    update: dict = {}
    if profile.model_path is None:
        from forkpoint.runtime.embedded_model import ensure_smollm2

        update["model_path"] = str(ensure_smollm2())
    if profile.port == 0:
        update["port"] = free_port(profile.host)
    return profile.model_copy(update=update) if update else profile


def wait_until_ready(
    url: str,
    timeout: float,
    process: subprocess.Popen | None = None,
    *,
    path: str = "/health_generate",
    what: str = "the SGLang server",
) -> None:
    """Poll GET `path` until it answers 200; fail early if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeUnavailable(f"{what} exited with code {process.returncode}")
        if is_ready(url, path):
            return
        time.sleep(1.0)
    raise RuntimeUnavailable(
        f"{what} at {url} was not ready after {timeout:.0f} s",
        hint="a large model can take longer: raise the startup timeout",
    )


def is_ready(url: str, path: str = "/health_generate") -> bool:
    return RuntimeClient(url, timeouts=Timeouts(call=30.0)).healthy(path)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def open_log(path: Path) -> BinaryIO:
    """`path` opened for appending, readable by its owner only (0600, also when it was there
    already: a server's log can hold what its requests carried); a folder it creates is 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return os.fdopen(fd, "ab")


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open(errors="replace") as log:
            return "".join(deque(log, maxlen=lines)).rstrip()
    except OSError:
        return "(no log)"


def _exit_cleanly_on_sigterm() -> None:
    """Make SIGTERM (kill, systemd, a CI timeout) unwind like Ctrl-C, so `with` blocks and
    atexit stop our servers; by default Python dies on SIGTERM and leaves them running."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _with_libcuda_stub(ld_library_path: str) -> str:
    from forkpoint.runtime.libcuda import has_real_libcuda, stub_dir

    if has_real_libcuda():
        return ld_library_path
    return os.pathsep.join(p for p in (str(stub_dir()), ld_library_path) if p)


def _with_server_site(pythonpath: str) -> str:
    return os.pathsep.join(p for p in (str(server_site_dir()), pythonpath) if p)


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise subprocess.TimeoutExpired(f"process group {pgid}", timeout)

"""The runtime key stays out of sight: not on SGLang's argv, not in its log, not in the
environment of a process that has no use for it; and a server's log is its owner's only.

The key travels in the child's environment as FORKPOINT_SERVER_API_KEY, and the child's
sitecustomize (runtime/server_key.py) moves it onto SGLang's ServerArgs after parsing.
"""

import json
import logging
import stat
import subprocess
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from forkpoint.cli.main import app
from forkpoint.errors import RuntimeUnavailable
from forkpoint.runtime import server_key
from forkpoint.runtime.client import RUNTIME_KEY_ENV
from forkpoint.runtime.launcher import RuntimeServer, launch_argv, open_log, server_env
from forkpoint.runtime.profiles import get_profile, save_profile

KEY = "rk-4f1c0ffee-hidden"
GATEWAY = {
    "FORKPOINT_API_KEYS": '["client-key-1"]',
    "FORKPOINT_ADMIN_KEYS": '["admin-key-1"]',
    "FORKPOINT_API_KEYS_FILE": "/etc/forkpoint/keys",
}
LAN = get_profile("cpu-small").model_copy(
    update={"host": "0.0.0.0", "model_path": "/m", "port": 30123}
)


# --- the argv ---------------------------------------------------------------------------------


def test_a_keyed_runtime_is_launched_with_the_profiles_argv_and_no_key(monkeypatch):
    monkeypatch.setenv(RUNTIME_KEY_ENV, KEY)
    argv = launch_argv(LAN)
    assert argv == LAN.argv()
    assert "--api-key" not in argv
    assert not any(KEY in arg for arg in argv)


def test_forkpoint_runtime_args_does_not_print_the_key(monkeypatch, tmp_path):
    monkeypatch.setenv(RUNTIME_KEY_ENV, KEY)
    save_profile(LAN, tmp_path / "lan.toml")
    result = CliRunner().invoke(app, ["runtime", "args", "--profile", str(tmp_path / "lan.toml")])
    assert result.exit_code == 0, result.output
    assert "sglang.launch_server" in result.output
    assert KEY not in result.output


# --- the child's environment ------------------------------------------------------------------


def test_the_server_gets_the_runtime_key_under_its_own_variable_only():
    env = server_env(LAN, {**GATEWAY, RUNTIME_KEY_ENV: KEY, "PATH": "/usr/bin"})
    assert env[server_key.ENV] == KEY
    assert RUNTIME_KEY_ENV not in env
    assert [name for name, value in env.items() if KEY in value] == [server_key.ENV]


def test_the_server_gets_none_of_the_gateways_client_keys():
    env = server_env(LAN, {**GATEWAY, RUNTIME_KEY_ENV: KEY, "PATH": "/usr/bin"})
    assert set(GATEWAY) & set(env) == set()
    assert env["PATH"] == "/usr/bin"  # the rest of the environment is passed on


def test_a_profiles_env_cannot_put_the_gateways_keys_back():
    profile = LAN.model_copy(update={"env": {**LAN.env, "FORKPOINT_API_KEYS": '["x"]'}})
    assert "FORKPOINT_API_KEYS" not in server_env(profile, {})


def test_without_a_runtime_key_the_server_gets_no_key_variable():
    local = get_profile("cpu-small").model_copy(update={"model_path": "/m"})
    env = server_env(local, {server_key.ENV: "stale", "PATH": "/usr/bin"})
    assert server_key.ENV not in env


def test_the_router_gets_none_of_the_gateways_client_keys():
    env = server_key.without_gateway_secrets({**GATEWAY, RUNTIME_KEY_ENV: KEY})
    assert env == {RUNTIME_KEY_ENV: KEY}


# --- inside the child: server_key ---------------------------------------------------------------


class ParsedArgs:
    api_key: str | None = None


def test_the_key_is_set_on_server_args_after_parsing(monkeypatch):
    monkeypatch.setattr(server_key, "_key", KEY)
    seen_argv: list[list[str]] = []

    def prepare_server_args(argv: list[str]) -> ParsedArgs:
        seen_argv.append(argv)
        return ParsedArgs()

    fake: Any = types.ModuleType("fake_server_args")
    fake.prepare_server_args = prepare_server_args
    server_key._patch_server_args(fake)
    parsed = fake.prepare_server_args(["--model-path", "/m"])
    assert parsed.api_key == KEY
    assert seen_argv == [["--model-path", "/m"]]  # SGLang parses (and records) no key


def test_the_logged_server_args_hide_both_keys():
    fake: Any = types.ModuleType("fake_engine")
    logged = {"api_key": KEY, "admin_api_key": "admin-1", "model_path": "/m"}
    fake._server_args_for_logging = lambda server_args: logged
    server_key._patch_engine(fake)
    assert fake._server_args_for_logging(object()) == {
        "api_key": "<redacted>",
        "admin_api_key": "<redacted>",
        "model_path": "/m",
    }


def test_an_unset_key_field_is_logged_as_unset():
    assert server_key.redacted({"api_key": None, "port": 1}) == {"api_key": None, "port": 1}


@pytest.fixture
def restored_record_factory():
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)


def test_the_key_is_redacted_in_any_log_message(restored_record_factory, caplog):
    server_key._redact_in_log_records(KEY)
    with caplog.at_level(logging.INFO):
        logging.getLogger("sglang.anything").info("server_args=%s", {"api_key": KEY})
    assert caplog.messages == ["server_args={'api_key': '<redacted>'}"]


def test_install_takes_the_key_out_of_the_environment(monkeypatch, restored_record_factory):
    monkeypatch.setattr(server_key, "_key", None)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # its import hook: this test's
    environ = {server_key.ENV: KEY, "PATH": "/usr/bin"}
    server_key.install(environ)
    assert environ == {"PATH": "/usr/bin"}
    assert server_key._key == KEY


# --- the launcher refuses a keyed server that does not check the key ---------------------------


class OpenServer(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(OpenServer.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_runtime(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), OpenServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = LAN.model_copy(update={"host": "127.0.0.1", "port": server.server_address[1]})
    yield RuntimeServer(profile, log_path=tmp_path / "server.log")
    server.shutdown()
    server.server_close()


def test_a_keyed_server_that_answers_without_the_key_is_refused(fake_runtime, monkeypatch):
    monkeypatch.setattr(OpenServer, "status", 200)
    with pytest.raises(RuntimeUnavailable, match="did not refuse a call without the runtime key"):
        fake_runtime._refuse_an_open_server()


def test_a_keyed_server_that_refuses_a_call_without_the_key_is_kept(fake_runtime, monkeypatch):
    monkeypatch.setattr(OpenServer, "status", 401)
    fake_runtime._refuse_an_open_server()  # no error


# --- the log file -------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_log_and_its_new_folder_are_the_owners_only(tmp_path):
    log_path = tmp_path / "logs" / "server.log"
    with open_log(log_path) as log:
        log.write(b"line\n")
    assert mode(log_path) == 0o600
    assert mode(log_path.parent) == 0o700


def test_an_existing_log_is_appended_to_and_made_the_owners_only(tmp_path):
    log_path = tmp_path / "server.log"
    log_path.write_bytes(b"crash\n")
    log_path.chmod(0o644)
    with open_log(log_path) as log:
        log.write(b"restart\n")
    assert mode(log_path) == 0o600
    assert log_path.read_bytes() == b"crash\nrestart\n"


# --- real processes ---------------------------------------------------------------------------

# What a server process would see: SGLang's own parser on the profile's argv, its logging line.
CHILD = """
import json, logging, os, sys
from sglang.srt.server_args import prepare_server_args
from sglang.srt.entrypoints import engine

server_args = prepare_server_args(sys.argv[1:])
logging.getLogger("sglang.srt.entrypoints.engine").warning(
    "server_args=%s", engine._server_args_for_logging(server_args)
)
logging.getLogger("sglang.srt.anything").warning("raw %r", server_args.api_key)
print(json.dumps({
    "api_key": server_args.api_key,
    "launch_command": server_args.launch_command,
    "key_in_environ": any(server_args.api_key in value for value in os.environ.values()),
}))
"""


@pytest.mark.slow
def test_a_real_server_process_has_the_key_on_its_server_args_and_nowhere_else(
    tmp_path, monkeypatch
):
    for name, value in {**GATEWAY, RUNTIME_KEY_ENV: KEY}.items():
        monkeypatch.setenv(name, value)
    argv = [sys.executable, "-c", CHILD, *launch_argv(LAN)[3:]]  # as RuntimeServer.start
    log_path = tmp_path / "logs" / "server.log"
    with open_log(log_path) as log:
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, env=server_env(LAN))
    cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes()
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0, log_path.read_text()
    seen = json.loads(out.splitlines()[-1])
    assert seen["api_key"] == KEY  # the server checks callers against it
    assert KEY not in seen["launch_command"]
    assert seen["key_in_environ"] is False  # taken out: SGLang's own children do not get it
    assert KEY.encode() not in cmdline
    logged = log_path.read_text()
    assert "'api_key': '<redacted>'" in logged
    assert "raw '<redacted>'" in logged
    assert KEY not in logged
    assert mode(log_path) == 0o600


def proc(pid: int, name: str) -> bytes:
    return Path(f"/proc/{pid}/{name}").read_bytes()


@pytest.mark.slow
def test_the_session_server_runs_with_no_key_on_its_argv_and_an_owner_only_log(sglang_server):
    """The session's server is a loopback one without a runtime key (tests/conftest.py), so
    this checks what holds for every server: the argv carries no key flag, the environment
    none of the gateway's keys, the log is 0600. The key itself: the real process above."""
    pid = sglang_server.process.pid
    argv = proc(pid, "cmdline").split(b"\0")
    environ = dict(
        entry.split(b"=", 1) for entry in proc(pid, "environ").split(b"\0") if b"=" in entry
    )
    assert b"--api-key" not in argv
    assert b"--admin-api-key" not in argv
    assert {name.encode() for name in GATEWAY} & set(environ) == set()
    assert RUNTIME_KEY_ENV.encode() not in environ
    assert mode(sglang_server.log_path) == 0o600

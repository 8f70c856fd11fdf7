"""deploy/: the systemd units pass systemd-analyze, the compose file validates, and the files
use only commands, flags and settings that exist."""

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from forkpoint.api.settings import Settings
from forkpoint.cli.main import app
from forkpoint.runtime.client import RUNTIME_KEY_ENV

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
ROUTER_ONLY = {"FORKPOINT_ROUTER_WORKERS", "FORKPOINT_ROUTER_PORT"}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(DEPLOY / "systemd" / name)
    return parser


def require(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is missing: .ci/run installs it (apt-get install systemd docker-compose)"
    return path


def test_the_units_pass_systemd_analyze_verify_without_a_warning(tmp_path):
    venv_bin = str(Path(sys.executable).parent) + "/"
    for path in UNITS:  # the units name /opt/forkpoint/venv; verify against this environment
        (tmp_path / path.name).write_text(
            path.read_text().replace("/opt/forkpoint/venv/bin/", venv_bin)
        )
    done = subprocess.run(
        [require("systemd-analyze"), "verify", *sorted(tmp_path.iterdir())],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    assert len(UNITS) == 3


def test_the_gateway_wants_the_runtime_but_survives_its_restarts():
    gateway, runtime = unit("forkpoint-gateway.service"), unit("forkpoint-runtime.service")
    assert "forkpoint-runtime.service" in gateway["Unit"]["Wants"]
    assert "forkpoint-runtime.service" in gateway["Unit"]["After"]
    assert "Requires" not in gateway["Unit"] and "BindsTo" not in gateway["Unit"]
    for service in (gateway["Service"], runtime["Service"]):
        assert service["User"] == "forkpoint" and service["Restart"] == "on-failure"
        assert service["StandardOutput"] == "journal"
    assert "PrivateDevices" not in runtime["Service"]  # it would hide /dev/nvidia*
    assert int(runtime["Service"]["TimeoutStartSec"]) >= 600


def test_unit_commands_use_flags_the_cli_and_the_router_accept():
    runner = CliRunner()
    serve_help = runner.invoke(app, ["serve", "--help"], terminal_width=200).output
    for flag in ("--profile", "--sglang-url", "--host", "--port"):
        assert flag in unit("forkpoint-gateway.service")["Service"]["ExecStart"]
        assert flag in serve_help
    assert "runtime up --profile" in unit("forkpoint-runtime.service")["Service"]["ExecStart"]
    router_start = unit("forkpoint-router.service")["Service"]["ExecStart"]
    assert " -m forkpoint.runtime.router_launch " in router_start
    router_help = subprocess.run(
        [sys.executable, "-m", "forkpoint.runtime.router_launch", "--help"],
        capture_output=True,
        text=True,
    ).stdout
    for flag in ("--worker-urls", "--policy", "--prometheus-port", "--host", "--port"):
        assert flag in router_start
        assert flag in router_help  # router_launch parses sglang-router's own flags


def test_the_router_listens_on_loopback_and_calls_the_workers_with_the_runtime_key():
    service = unit("forkpoint-router.service")["Service"]
    start = service["ExecStart"]
    assert "--host 127.0.0.1 " in start and "--prometheus-host 127.0.0.1 " in start
    # The key is not on the command line (`ps` shows it to every user): router_launch reads it
    # from the environment file, which holds the same variable the template documents.
    assert "--api-key" not in start and RUNTIME_KEY_ENV not in start
    assert " -m forkpoint.runtime.router_launch " in start
    assert service["EnvironmentFile"] == "/etc/forkpoint/forkpoint.env"
    assert RUNTIME_KEY_ENV in env_example()


def env_example() -> dict[str, str]:
    lines = (DEPLOY / "forkpoint.env.example").read_text().splitlines()
    pairs = [line.lstrip("#").split("=", 1) for line in lines if "=" in line]
    return {key: value for key, value in pairs if key.startswith("FORKPOINT_")}


def test_every_variable_of_the_env_template_is_a_real_setting():
    settings = {f"FORKPOINT_{name.upper()}" for name in Settings.model_fields}
    unknown = set(env_example()) - settings - ROUTER_ONLY - {RUNTIME_KEY_ENV}
    assert not unknown, f"the env template names settings the gateway does not read: {unknown}"


@pytest.fixture
def compose(tmp_path):
    (tmp_path / "deploy").mkdir()
    shutil.copy(DEPLOY / "compose.yaml", tmp_path / "deploy" / "compose.yaml")
    shutil.copy(DEPLOY / "forkpoint.env.example", tmp_path / "deploy" / "forkpoint.env")
    done = subprocess.run(
        [
            require("docker-compose"),
            "-f",
            str(tmp_path / "deploy" / "compose.yaml"),
            "--profile",
            "router",
            "config",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_the_compose_file_validates_and_reserves_both_gpus_for_the_runtime(compose):
    services = compose["services"]
    assert set(services) == {"runtime", "gateway", "router"}
    [gpus] = services["runtime"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpus["driver"] == "nvidia" and gpus["count"] == 2 and gpus["capabilities"] == ["gpu"]
    assert services["runtime"]["ipc"] == "host"
    assert services["gateway"]["depends_on"]["runtime"]["condition"] == "service_healthy"
    assert "--sglang-url" in services["gateway"]["command"]
    router = services["router"]
    assert router["entrypoint"][:3] == ["python", "-m", "forkpoint.runtime.router_launch"]
    assert "--api-key" not in router["entrypoint"]  # router_launch reads it from forkpoint.env
    assert router["image"] == services["gateway"]["image"]  # the image with forkpoint installed
    assert RUNTIME_KEY_ENV in router["environment"]


def test_from_the_lan_only_the_gateway_is_reachable_in_compose(compose):
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"gateway"}
    assert RUNTIME_KEY_ENV in env_example()  # the runtime listens on the compose network: keyed

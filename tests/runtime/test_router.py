"""Many runtimes behind sglang-router: a gateway job lands where the task's prefix is cached.

Two real CPU SGLang workers, a real sglang-router (`--policy cache_aware`, launched through
forkpoint.runtime.router_launch with the runtime key in its environment), and a real gateway
process pointed at the router exactly as at one runtime.
"""

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from forkpoint.programs.gateway_client import GatewayClient
from forkpoint.programs.tasks.registry import get_task
from forkpoint.runtime.client import RUNTIME_KEY_ENV
from forkpoint.runtime.launcher import RuntimeServer, free_port
from forkpoint.runtime.profiles import get_profile
from forkpoint.runtime.router import RouterProfile, RouterServer
from forkpoint.runtime.router_launch import main, router_args

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "contacts"


def cached_tokens(worker_url: str) -> float:
    """The worker's own count of prompt tokens served from its radix cache (Prometheus)."""
    metrics = httpx.get(f"{worker_url}/metrics", timeout=10).text
    found = re.findall(r"^sglang:cached_tokens_total\{[^}]*\} ([0-9.e+]+)$", metrics, re.M)
    return sum(float(value) for value in found)


@pytest.fixture(scope="module")
def two_workers():
    """Two workers that require the runtime key, as workers on the LAN must; the router and the
    gateway (a child process) find the key in their environment."""
    profile = get_profile("cpu-small").model_copy(
        update={"port": 0, "enable_metrics": True, "max_total_tokens": 16384}
    )
    workers = [RuntimeServer(profile), RuntimeServer(profile)]
    with pytest.MonkeyPatch.context() as env:
        env.setenv(RUNTIME_KEY_ENV, "router-test-runtime-key")
        try:
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda worker: worker.start(), workers))
            yield workers
        finally:
            for worker in workers:
                worker.stop()


def test_router_profile_renders_the_launch_router_argv():
    profile = RouterProfile(worker_urls=("http://a:30000", "http://b:30000"), port=30080)
    argv = profile.argv()
    assert argv[1:3] == ["-m", "forkpoint.runtime.router_launch"]
    assert argv[argv.index("--worker-urls") + 1 : argv.index("--host")] == [
        "http://a:30000",
        "http://b:30000",
    ]
    assert argv[argv.index("--policy") + 1] == "cache_aware"
    assert "--api-key" not in argv


def test_the_router_calls_its_workers_with_the_runtime_key(monkeypatch):
    monkeypatch.setenv(RUNTIME_KEY_ENV, "k-123")
    monkeypatch.setenv("FORKPOINT_API_KEYS", "gateway-client-key")
    launched: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(
        RouterServer, "_spawn", lambda self, argv, env, *_: launched.append((argv, env))
    )
    monkeypatch.setattr(RouterServer, "healthy_workers", lambda self: 1)
    RouterServer(RouterProfile(worker_urls=("http://a:30000",))).start()
    [(argv, env)] = launched
    assert not any("k-123" in part for part in argv)  # an argv is world-readable (`ps`)
    assert env[RUNTIME_KEY_ENV] == "k-123"  # router_launch takes it from here
    assert "FORKPOINT_API_KEYS" not in env


def test_the_router_launcher_sets_the_key_from_the_environment_and_takes_it_out():
    environ = {RUNTIME_KEY_ENV: "k-123", "PATH": "/usr/bin"}
    args = router_args(["--worker-urls", "http://a:30000", "--policy", "cache_aware"], environ)
    assert args.api_key == "k-123"
    assert args.worker_urls == ["http://a:30000"] and args.policy == "cache_aware"
    assert environ == {"PATH": "/usr/bin"}  # nothing the router starts inherits it


def test_the_router_launcher_without_a_key_starts_a_router_without_one():
    assert router_args(["--worker-urls", "http://a:30000"], {}).api_key is None


@pytest.mark.parametrize("flag", [["--api-key", "sekrit-1"], ["--api-key=sekrit-1"]])
def test_the_router_launcher_refuses_a_key_on_its_argv(flag, capsys):
    with pytest.raises(ValueError, match=RUNTIME_KEY_ENV):
        router_args(["--worker-urls", "http://a:30000", *flag], {})
    assert main(["--worker-urls", "http://a:30000", *flag]) == 2
    error = capsys.readouterr().err
    assert "--api-key would put the runtime key on the router's command line" in error
    assert "sekrit-1" not in error


def test_the_router_listens_on_loopback_only():
    with pytest.raises(ValueError, match="does not check who calls it"):
        RouterProfile(worker_urls=("http://a:30000",), host="0.0.0.0")


@pytest.mark.slow
def test_a_job_through_the_router_lands_on_the_worker_holding_the_task_prefix(
    two_workers, start_gateway
):
    router = RouterServer(
        RouterProfile(
            worker_urls=tuple(worker.url for worker in two_workers),
            port=free_port(),
            prometheus_port=free_port(),
        )
    )
    with router:
        assert router.healthy_workers() == 2
        before = [cached_tokens(worker.url) for worker in two_workers]
        gateway = start_gateway(router.url)
        client = GatewayClient(gateway.url)
        texts = [path.read_text() for path in sorted(SAMPLES.glob("*.txt"))[:6]]
        job = client.submit("contacts", [(f"doc-{i}.txt", text) for i, text in enumerate(texts)])
        records = list(client.results(job["id"], silence=600))
    assert [record["status"] for record in records] == ["ok"] * 6
    # The workers refuse a caller without the key: the router and the gateway sent it.
    anonymous = httpx.post(f"{two_workers[0].url}/generate", json={"text": "Hi"}, timeout=30)
    assert anonymous.status_code == 401
    model = get_task("contacts").output_model
    for record in records:
        model.model_validate(record["data"])
    per_document = [record["usage"]["cached_tokens"] for record in records]
    assert min(per_document) > 0  # every document found the task prefix cached
    gained = [cached_tokens(worker.url) - b for worker, b in zip(two_workers, before, strict=True)]
    holder, other = sorted(gained, reverse=True)
    # cache_aware routing: the documents went where the warm-up left the prefix ...
    assert holder >= sum(per_document)
    # ... and the other worker never served (or cached) the task prefix.
    assert other < min(per_document)

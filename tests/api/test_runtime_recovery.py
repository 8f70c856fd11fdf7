"""The runtime dies mid-job (SIGKILL): the gateway restarts it, re-warms, re-sends, and the job
finishes with every document recorded exactly once.

The job is a one-field inline schema (a name, no copy fields) over the contact samples, taken
two at a time: recovery is the subject, so each document costs a few decoded tokens and no
per-document grammar, and the kill lands with most of the job still to do."""

import os
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from forkpoint.api.store import JobStore
from forkpoint.programs.gateway_client import GatewayClient

pytestmark = pytest.mark.slow
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "contacts"
TASK = {
    "schema": {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 40}},
        "required": ["name"],
    },
    "instructions": "Give the name of the person the document is about.",
}
TWO_AT_A_TIME = {"FORKPOINT_CONCURRENCY": "2"}


def sglang_children(gateway_pid: int) -> list[psutil.Process]:
    children = psutil.Process(gateway_pid).children()
    return [p for p in children if "sglang.launch_server" in " ".join(p.cmdline())]


def test_a_sigkilled_runtime_is_restarted_and_the_job_finishes_exactly_once(
    start_gateway, tmp_path
):
    profile = tmp_path / "cpu-own.toml"
    profile.write_text('base = "cpu-small"\nport = 0\nmax_total_tokens = 16384\n')
    gateway = start_gateway(str(profile), **TWO_AT_A_TIME)
    [runtime] = sglang_children(gateway.process.pid)
    client = GatewayClient(gateway.url)
    texts = [p.read_text() for p in sorted(SAMPLES.glob("*.txt"))]
    documents = [(f"doc-{i:02d}.txt", texts[i % len(texts)]) for i in range(12)]
    job = client.submit(TASK, documents)
    deadline = time.monotonic() + 300
    while client.status(job["id"])["done"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    os.killpg(runtime.pid, signal.SIGKILL)  # the runtime and every process it started
    runtime.wait(timeout=30)
    done_at_kill = client.status(job["id"])["done"]
    assert done_at_kill < 12, "the job finished before the kill; the test proves nothing"

    records = list(client.results(job["id"], silence=600))
    assert [r["file"] for r in records] == [name for name, _ in documents]
    assert all("data" in r for r in records), [r.get("error") for r in records]
    store = JobStore(gateway.db_path)
    assert [store.result_count(job["id"], i) for i in range(12)] == [1] * 12
    store.close()
    [restarted] = sglang_children(gateway.process.pid)
    assert restarted.pid != runtime.pid
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert "forkpoint_runtime_restarts_total 1.0" in metrics
    # Documents re-sent after the restart found the task prefix warm on the new server.
    assert records[-1]["usage"]["cached_tokens"] > 0


def test_a_runtime_restarted_by_someone_else_is_waited_for_and_no_document_fails(start_gateway):
    """The systemd deployment: the gateway uses --sglang-url and systemd restarts the runtime."""
    from forkpoint.runtime.launcher import RuntimeServer
    from forkpoint.runtime.profiles import get_profile

    profile = get_profile("cpu-small").model_copy(update={"port": 0, "max_total_tokens": 16384})
    with RuntimeServer(profile) as runtime:
        gateway = start_gateway(runtime.url, FORKPOINT_RUNTIME_ATTEMPTS="1", **TWO_AT_A_TIME)
        client = GatewayClient(gateway.url)
        texts = [p.read_text() for p in sorted(SAMPLES.glob("*.txt"))]
        job = client.submit(TASK, [(f"d{i}.txt", texts[i % len(texts)]) for i in range(8)])
        deadline = time.monotonic() + 300
        while client.status(job["id"])["done"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        runtime.stop()  # down for a while (a unit restart), then back on the same port
        time.sleep(5)
        runtime.start()
        records = list(client.results(job["id"], silence=600))
    assert len(records) == 8
    assert all("data" in r for r in records), [r.get("error") for r in records]

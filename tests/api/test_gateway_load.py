"""Load: 1000 documents as 10 concurrent jobs through a real gateway and runtime, plus a burst
beyond the queue limit — the burst gets 429s, and not one accepted document fails."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from forkpoint.api.store import JobStore
from forkpoint.programs.gateway_client import GatewayClient

pytestmark = pytest.mark.slow
SCHEMA = {
    "type": "object",
    "properties": {"urgent": {"type": "boolean", "description": "Does the note ask for haste?"}},
    "required": ["urgent"],
}


def job_body(job: int) -> dict:
    notes = [f"Note {job}-{i}: {'please hurry' if i % 3 == 0 else 'no rush'}." for i in range(100)]
    return {
        "schema": SCHEMA,
        "instructions": "Classify the note.",
        "documents": [{"name": f"j{job}-{i:03d}.txt", "text": t} for i, t in enumerate(notes)],
    }


def test_ten_concurrent_jobs_of_100_and_a_burst_past_the_queue_limit(sglang_server, start_gateway):
    gateway = start_gateway(
        sglang_server.url, FORKPOINT_MAX_QUEUED_DOCUMENTS="1000", FORKPOINT_CONCURRENCY="32"
    )
    http = httpx.Client(base_url=gateway.url, timeout=120)
    started = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        accepted = list(pool.map(lambda n: http.post("/v1/jobs", json=job_body(n)), range(10)))
    assert [r.status_code for r in accepted] == [202] * 10
    burst = [http.post("/v1/jobs", json=job_body(10 + n)) for n in range(5)]
    refused = [r for r in burst if r.status_code == 429]
    assert refused, [r.status_code for r in burst]  # the queue holds 1000 waiting documents
    assert all(int(r.headers["Retry-After"]) > 0 for r in refused)
    assert all(r.status_code in (202, 429) for r in burst)

    client = GatewayClient(gateway.url)
    jobs = [r.json()["id"] for r in accepted + burst if r.status_code == 202]
    for job_id in jobs:
        records = list(client.results(job_id, silence=600))
        assert len(records) == 100
        assert all(r["status"] == "ok" for r in records), [r for r in records if not r["ok"]][:2]
    seconds = time.monotonic() - started
    store = JobStore(gateway.db_path)
    assert all(store.counts(job_id).failed == 0 for job_id in jobs)
    store.close()
    print(f"{len(jobs) * 100} documents in {seconds:.0f} s; {len(refused)} submissions refused")

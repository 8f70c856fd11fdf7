"""Soak: the gateway under steady load for a bounded time — does its memory stay flat?

    ./dev python perf/studies/soak.py --seconds 300              # embedded runtime, gateway process
    ./dev python perf/studies/soak.py --sglang-url http://127.0.0.1:30000 --seconds 3600

Starts `forkpoint serve` as a separate process (so its memory is its own), submits jobs of small
documents back to back — several at once, streaming their results as a client would — and
samples the gateway's resident memory after every round. Reports documents, failures, documents
per second and the memory at the start (after the first round: imports and caches are warm),
the end and the peak. Saves perf/results/soak-<date>-<commit>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument
from forkpoint.perf.bench.results import save as save_results
from forkpoint.programs.gateway_client import GatewayClient
from forkpoint.runtime.launcher import RuntimeServer, free_port
from forkpoint.runtime.profiles import get_profile

SCHEMA = {"type": "object", "required": ["urgent"], "properties": {"urgent": {"type": "boolean"}}}


def job(round_: int, n: int, docs: int) -> dict:
    texts = [
        f"Round {round_} job {n} note {i}: {'urgent, today' if i % 4 else 'whenever'}."
        for i in range(docs)
    ]
    return {
        "schema": SCHEMA,
        "instructions": "Is the note urgent?",
        "documents": [{"name": f"n{i}.txt", "text": t} for i, t in enumerate(texts)],
    }


@contextlib.contextmanager
def gateway(runtime_url: str, db: Path) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    env = {
        **os.environ,
        "FORKPOINT_DB_PATH": str(db),
        "FORKPOINT_CONCURRENCY": "32",
        "FORKPOINT_OPEN": "1",  # keyless, on loopback
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "forkpoint.cli",
            "serve",
            "--sglang-url",
            runtime_url,
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        yield url, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--jobs-per-round", type=int, default=4)
    parser.add_argument("--docs-per-job", type=int, default=50)
    parser.add_argument("--sglang-url")
    add_out_argument(parser)
    args = parser.parse_args()
    samples, documents, failed = [], 0, 0
    with contextlib.ExitStack() as stack:
        url = args.sglang_url
        if url is None:
            profile = get_profile("cpu-small").model_copy(update={"port": 0})
            url = stack.enter_context(RuntimeServer(profile)).url
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        gateway_url, process = stack.enter_context(gateway(url, scratch / "soak.db"))
        client = GatewayClient(gateway_url, timeout=600)
        started = time.monotonic()
        round_ = 0
        while time.monotonic() - started < args.seconds:
            with ThreadPoolExecutor(args.jobs_per_round) as pool:
                bodies = [job(round_, n, args.docs_per_job) for n in range(args.jobs_per_round)]
                ids = [client._json(client.http.post("/v1/jobs", json=b))["id"] for b in bodies]
                for records in pool.map(lambda i: list(client.results(i)), ids):
                    documents += len(records)
                    failed += sum(1 for r in records if "data" not in r)
            rss = process.memory_info().rss / 2**20
            samples.append(
                {
                    "second": round(time.monotonic() - started, 1),
                    "documents": documents,
                    "rss_mib": round(rss, 1),
                }
            )
            print(f"round {round_}: {documents} documents, gateway RSS {rss:.1f} MiB", flush=True)
            round_ += 1
        wall = time.monotonic() - started
    rss = [s["rss_mib"] for s in samples]
    report = {
        **describe(),
        "runtime": args.sglang_url or "cpu-small (embedded)",
        "seconds": round(wall, 1),
        "rounds": len(samples),
        "documents": documents,
        "failed": failed,
        "documents_per_second": round(documents / wall, 2),
        "rss_start_mib": rss[0],
        "rss_end_mib": rss[-1],
        "rss_peak_mib": max(rss),
        "rss_growth_mib": round(rss[-1] - rss[0], 1),
        "samples": samples,
        "flags": vars(args),
    }
    save(report, args.out)


def save(report: dict, out: Path) -> None:
    lines = heading(
        "Gateway soak", report, f"Runtime: {report['runtime']}. Flags: {report['flags']}."
    ) + [
        "| seconds | rounds | documents | failed | docs/s | RSS start MiB | RSS end MiB "
        "| RSS peak MiB | growth MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {report['seconds']} | {report['rounds']} | {report['documents']} | {report['failed']} "
        f"| {report['documents_per_second']} | {report['rss_start_mib']} | {report['rss_end_mib']}"
        f" | {report['rss_peak_mib']} | {report['rss_growth_mib']} |",
    ]
    save_results("soak", report, lines, out)


if __name__ == "__main__":
    main()

"""The 1M-token benchmark: read and write tokens/s of one extraction task over many documents.

    ./dev python perf/bench/bench.py --docs 64 --max-tokens 600 --runs baseline,llama-server  # CPU
    ./dev python perf/bench/bench.py --runs baseline    # full size: 1000 docs, ~1.75M prompt tokens
                                                        # (~0.9M computed after prefix reuse)
    ./dev python perf/bench/bench.py --sglang-url http://gpu:30000 --profile mixtral-awq-2x4090
    ./dev forkpoint bench MY_FOLDER --task-module my_tasks.py:TASK --runs baseline  # your own

Runs the same documents several ways and reports each, with ratios to the baseline:
  baseline   direct to SGLang, fork-point prefix warmed once, bounded concurrency
  cold       no warm-up: every document fired at once against an empty cache
  no-radix   a second server with --disable-radix-cache (embedded profile only)
  gateway    through the forkpoint gateway (a job over HTTP) instead of direct
  openai-batch  through the gateway as one OpenAI batch file (the `openai` package), the same
             prompts and grammar as messages (perf/bench/openai_batch.py)
  no-copy    the baseline with the task's copy fields dropped (#20): the plain JSON schema, what
             the peers get too
  speculation  a second server with the profile's speculation flipped (NGRAM off if the profile
             has it on), reported as `no-speculation` (or `ngram`)
  llama-server, llama-cpp-python
             the peer: llama.cpp serving the same model's GGUF with the same prompts, schema
             and limits (perf/peers/llamacpp.py; embedded profile only)
Each run reports SGLang's speculative accept length (output tokens per verify step) when on, the
share of extracted string values found verbatim in their document, and the seconds spent
building copy-field grammars.
Saves bench-<date>-<commit>-<N>docs.json and .md (machine, date, commit, profile, flags) and two
PNGs (perf/bench/plots.py: throughput per run, tokens over time) into --out (results.py: a
checkout's perf/results/, else ./perf-results).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forkpoint.perf.bench import workload
from forkpoint.perf.bench.direct import empty_cache, prefix_tokens
from forkpoint.perf.bench.machine import describe
from forkpoint.perf.bench.results import add_out_argument
from forkpoint.perf.bench.results import save as save_results
from forkpoint.perf.bench.timeline import Timeline
from forkpoint.programs.batch import BatchDriver, BatchOptions
from forkpoint.programs.documents.document import Document
from forkpoint.programs.results.record import BatchSummary, DocumentResult
from forkpoint.programs.target import Target, resolve_target
from forkpoint.runtime.launcher import RuntimeServer, free_port
from forkpoint.runtime.profiles import get_profile

if TYPE_CHECKING:
    from forkpoint.programs.tasks.task import ExtractionTask

# Runs on the SGLang server bench starts (or --sglang-url), and on a second one it starts; any
# other run named is a llama.cpp peer (perf/peers/llamacpp.py, loaded only then).
SERVED = ("baseline", "cold", "no-copy", "gateway", "openai-batch")
SECOND_SERVER = ("no-radix", "speculation")


def measure(
    name: str, results: list[DocumentResult], wall: float, prefix: int, timeline: Timeline
) -> dict:
    """One run's figures, all derived from the per-document usage records."""
    summary = BatchSummary(prefix_tokens=prefix)
    for result in results:
        summary.add(result)
    summary.wall_seconds = wall
    usage = summary.usage
    total_rate = (usage.prompt_tokens + usage.completion_tokens) / wall if wall else 0.0
    latencies = sorted(r.seconds for r in results if r.usage.completion_tokens)
    strings = [g for r in results for g in r.grounding or ()]
    reused = sum(min(r.usage.cached_tokens, prefix) for r in results)
    ideal = max(len(results) - 1, 1) * prefix
    return {
        "run": name,
        **summary.to_json(),
        "computed_prefill_tokens": usage.prompt_tokens - usage.cached_tokens,
        "total_tokens_per_second": round(total_rate, 1),
        "seconds_per_1m_tokens": round(1e6 / total_rate, 1) if total_rate else None,
        "p50_latency_seconds": round(statistics.median(latencies), 2) if latencies else None,
        "p95_latency_seconds": round(latencies[math.ceil(0.95 * len(latencies)) - 1], 2)
        if latencies
        else None,
        "cache_hit_rate": round(usage.cached_tokens / usage.prompt_tokens, 4)
        if usage.prompt_tokens
        else 0.0,
        "prefix_reuse_efficiency": round(reused / ideal, 4) if ideal else None,
        # extracted string values found verbatim in their document (None: not grounded)
        "strings_in_document": round(sum(g.match == "exact" for g in strings) / len(strings), 4)
        if strings
        else None,
        # (seconds, cumulative prompt tokens, cumulative output tokens) as documents finished
        "timeline": timeline.points,
        "client_cpu_seconds": timeline.cpu_seconds,
    }


def run_direct(
    target: Target,
    task: ExtractionTask,
    documents: list[tuple[str, str]],
    concurrency: int,
    *,
    warm: bool,
    name: str = "direct",
) -> tuple[list[DocumentResult], float, int, Timeline]:
    client = target.client()
    empty_cache(client)  # every run starts from an empty cache
    driver = BatchDriver(target, task, BatchOptions(concurrency=concurrency, warm_prefix=warm))
    prefix = driver.warm() if warm else prefix_tokens(client, driver.extractor.prompt.prefix)
    if not warm:
        empty_cache(client)
    with Timeline(name, len(documents)) as timeline:
        tick = lambda r: timeline(r.usage.prompt_tokens, r.usage.completion_tokens)  # noqa: E731
        results = list(driver.run((Document(n, text=t) for n, t in documents), on_result=tick))
        wall = timeline.elapsed()
    return results, wall, prefix, timeline


@contextmanager
def serving_gateway(url: str, concurrency: int, documents: int) -> Iterator[str]:
    """A gateway in this process (uvicorn in a thread) over the runtime at `url`, open on
    loopback, sized for `documents`: its URL."""
    import uvicorn

    from forkpoint.api.app import create_app
    from forkpoint.api.settings import Settings

    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        # the results stream must outlast the job (its default gives up after an hour)
        settings = Settings(
            sglang_url=url,
            port=port,
            concurrency=concurrency,
            db_path=Path(scratch) / "bench.db",
            open=True,  # on loopback, for this process alone
            max_queued_documents=documents + 1,
            max_queued_documents_per_key=documents + 1,
            max_documents_per_job=documents,
            results_wait_seconds=7 * 24 * 3600,
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the bench's gateway did not start")
            time.sleep(0.1)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)


def run_gateway(
    target: Target, task_name: str, documents: list[tuple[str, str]], concurrency: int, prefix: int
) -> tuple[list[DocumentResult], float, int, Timeline]:
    from forkpoint.programs.gateway_client import GatewayClient

    empty_cache(target.client())
    with serving_gateway(target.url, concurrency, len(documents)) as url:
        client = GatewayClient(url, timeout=600)
        # the gateway hands results back in document order: its timeline is when each arrived
        with Timeline("gateway", len(documents)) as timeline:
            job = client.submit(task_name, documents)
            records = []
            for record in client.results(job["id"]):
                records.append(record)
                usage = record["usage"]
                timeline(usage["prompt_tokens"], usage["completion_tokens"])
            wall = timeline.elapsed()
    if len(records) != len(documents):  # never a silently smaller run
        raise RuntimeError(f"the gateway streamed {len(records)} of {len(documents)} results")
    results = [DocumentResult.from_json(record, i) for i, record in enumerate(records)]
    return results, wall, prefix, timeline


def run_openai(
    target: Target, task: ExtractionTask, documents: list[tuple[str, str]], concurrency: int
) -> tuple[tuple[list[DocumentResult], float, int, Timeline], dict[str, Any]]:
    """The documents as one OpenAI batch through the gateway (perf/bench/openai_batch.py): the
    outcome, with the prefix the gateway found, and the batch's own figures."""
    from forkpoint.perf.bench.openai_batch import run_openai_batch

    empty_cache(target.client())
    with serving_gateway(target.url, concurrency, len(documents)) as url:
        results, wall, timeline, found = run_openai_batch(url, target.prompt(task), documents)
    prefix = sum(tokens or 0 for tokens in found.get("prefix_tokens") or ())
    return (results, wall, prefix, timeline), found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workload.add_arguments(parser)
    parser.add_argument("--profile", default="cpu-small")
    parser.add_argument("--sglang-url", help="benchmark this running server instead")
    parser.add_argument("--concurrency", type=int)
    parser.add_argument(
        "--peer-slots",
        type=int,
        default=4,
        help="llama-server's parallel slots (4: llama.cpp's own default, and its fastest on this "
        "2-core CPU in perf/peers/slots.py)",
    )
    parser.add_argument(
        "--runs",
        default="baseline,cold,no-copy,no-radix,gateway,speculation,llama-server,llama-cpp-python",
    )
    add_out_argument(parser)
    args = parser.parse_args(argv)

    profile = get_profile(args.profile)
    concurrency = args.concurrency or profile.client_concurrency
    job = workload.from_arguments(args)
    runs = args.runs.split(",")
    peer_runs = [r for r in runs if r not in (*SERVED, *SECOND_SERVER)]
    if peer_runs:  # checked before an hour of baseline, not after it
        from forkpoint.perf.peers.llamacpp import KINDS

        if unknown := [r for r in peer_runs if r not in KINDS]:
            known = ", ".join((*SERVED, *SECOND_SERVER, *KINDS))
            raise SystemExit(f"unknown run(s) {', '.join(unknown)}; known: {known}")
    figures: dict[str, dict] = {}
    ran_on = describe()  # the commit and date the run starts from (a long run may outlive both)

    primary = None if args.sglang_url else RuntimeServer(profile.model_copy(update={"port": 0}))
    url = primary.start().url if primary else args.sglang_url
    try:
        # The profile names the model's format, the server at --sglang-url's too (no
        # --chat-format here): every run, and the peers, read the same prompts.
        target = resolve_target(url, chat_format=profile.chat_format)
        prompt = target.prompt(job.task)
        job = job.within_tokens(len(prompt.prefix), args.target_tokens)
        task, documents = job.task, job.documents
        # Warm-up pass (not measured): loads the grammar compiler and kernels once.
        run_direct(target, task, documents[:2], 2, warm=True, name="warm-up")
        for name in [r for r in runs if r in SERVED]:
            if name == "no-copy" and not task.copy_fields:
                figures[name] = {"run": name, "skipped": "the task has no copy fields"}
                continue
            print(f"running {name} over {len(documents)} documents ...", flush=True)
            if name == "no-copy":
                plain = dataclasses.replace(task, copy_fields=())
                outcome = run_direct(target, plain, documents, concurrency, warm=True, name=name)
            elif name == "openai-batch":
                outcome, found = run_openai(target, task, documents, concurrency)
                figures[name] = {**measure(name, *outcome), "groups": found.get("groups")}
                print(json.dumps(figures[name]), flush=True)
                continue
            elif name == "gateway":
                prefix = figures.get("baseline", {}).get("prefix_tokens") or prefix_tokens(
                    target.client(), prompt.prefix
                )
                outcome = run_gateway(target, task.name, documents, concurrency, prefix)
            else:
                outcome = run_direct(
                    target, task, documents, concurrency, warm=name == "baseline", name=name
                )
            figures[name] = measure(name, *outcome)
            print(json.dumps(figures[name]), flush=True)
    finally:
        if primary:
            primary.stop()
    # Ablations that need a second server, started from the profile with one thing changed.
    flipped = "no-speculation" if profile.speculation.algorithm else "ngram"
    speculation = profile.speculation.model_copy(
        update={"algorithm": None if flipped == "no-speculation" else "NGRAM"}
    )
    variants: dict[str, dict[str, Any]] = {
        "no-radix": {"extra_args": (*profile.extra_args, "--disable-radix-cache")},
        flipped: {"speculation": speculation},
    }
    for name in [r for r in runs if r in SECOND_SERVER]:
        name = flipped if name == "speculation" else name
        if args.sglang_url:
            figures[name] = {"run": name, "skipped": "needs a server it starts itself"}
            continue
        print(f"running {name} (second server) ...", flush=True)
        with RuntimeServer(profile.model_copy(update={"port": 0, **variants[name]})) as server:
            second = resolve_target(server.url, launched=profile)
            figures[name] = measure(
                name,
                *run_direct(second, task, documents, concurrency, warm=True, name=name),
            )
    # The peer: llama.cpp serving the same model (its GGUF) with the same prompts and schema.
    for kind in peer_runs:
        if args.sglang_url or profile.name != "cpu-small":
            figures[kind] = {"run": kind, "skipped": "the peer serves the embedded model only"}
            continue
        # llama-cpp-python serves one at a time; llama-server's slots: see perf/peers/slots.py
        slots = args.peer_slots if kind == "llama-server" else 1
        print(f"running {kind} (llama.cpp peer, {slots} slot(s)) ...", flush=True)
        prefix = figures.get("baseline", {}).get("prefix_tokens", 0)
        from forkpoint.perf.peers.llamacpp import PeerServer, run_peer
        from forkpoint.runtime.embedded_model import ensure_smollm2_gguf

        with PeerServer(kind, slots=slots) as peer:
            run_peer(peer, prompt, task, documents[:2], min(slots, 2), prefix)  # warm-up
            figures[kind] = measure(kind, *run_peer(peer, prompt, task, documents, slots, prefix))
            figures[kind]["peer"] = {"argv": peer.argv(ensure_smollm2_gguf())[1:], "slots": slots}
            if kind == "llama-cpp-python":  # its responses do not say what its cache served
                figures[kind].update(dict.fromkeys(UNREPORTED))
    report = {
        **ran_on,
        "profile": profile.name,
        "task": task.name,
        "flags": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "corpus": job.source,
        "runs": figures,
        "ratios_to_baseline": _ratios(figures),
    }
    _save(report, args.out)


UNREPORTED = (
    "cached_tokens",
    "computed_prefill_tokens",
    "cache_hit_rate",
    "prefix_reuse_efficiency",
)


def _ratios(figures: dict[str, dict]) -> dict[str, dict]:
    base = figures.get("baseline")
    if not base or "skipped" in base:
        return {}
    out = {}
    for name, run in figures.items():
        if name == "baseline" or "skipped" in run:
            continue
        out[name] = {
            key: round(run[key] / base[key], 3) if base[key] and run[key] is not None else None
            for key in (
                "wall_seconds",
                "read_tokens_per_second",
                "write_tokens_per_second",
                "computed_prefill_tokens",
            )
        }
    return out


LEGEND = (
    "valid: answers that validate against the task's model (ok + needs_review; grounding review "
    "is forkpoint's own and not applied to the peer). strings in doc: extracted string values "
    "found verbatim in their document; grammar s: building the copy-field grammars (#20); the "
    "peers and no-copy get the task's plain JSON schema. n/r: not reported by that runtime. client "
    "CPU: what the benchmarking process (client, and the in-process gateway) used, taken from the "
    "runtime's cores on a small machine."
)


def _n(value: object) -> str:
    """A table cell: thousands separated; `n/r` where the runtime does not report it."""
    if value is None:
        return "n/r"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _save(report: dict, out: Path) -> None:
    lines = [
        f"# forkpoint bench — {report['date']} — commit {report['commit'][:7]}",
        "",
        f"Machine: {report['machine']}. Profile: {report['profile']}. "
        f"Task: {report.get('task', 'invoices')}. "
        f"Corpus: {workload.describe(report['corpus'])}. MEASURED.",
        "",
        "| run | valid | prompt tok | cached | computed prefill | output tok | wall s "
        "| read tok/s | write tok/s | s per 1M tok | p50 s | p95 s | prefix reuse | accept len "
        "| strings in doc | grammar s | client CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in report["runs"].values():
        if "skipped" in run:
            lines.append(f"| {run['run']} | skipped: {run['skipped']} |" + " |" * 15)
            continue
        lines.append(
            f"| {run['run']} | {run['ok'] + run['needs_review']}/{run['documents']} | "
            f"{run['prompt_tokens']:,} | "
            f"{_n(run['cached_tokens'])} | {_n(run['computed_prefill_tokens'])} | "
            f"{run['output_tokens']:,} | {run['wall_seconds']} | {run['read_tokens_per_second']} | "
            f"{run['write_tokens_per_second']} | {run['seconds_per_1m_tokens']} | "
            f"{run['p50_latency_seconds']} | {run['p95_latency_seconds']} | "
            f"{_n(run['prefix_reuse_efficiency'])} | {run.get('accept_length', '–')} | "
            f"{_n(run.get('strings_in_document'))} | {run.get('grammar_seconds', '–')} | "
            f"{_n(run.get('client_cpu_seconds'))} |"
        )
    lines += ["", LEGEND, "", "Ratios to baseline (wall, read, write, computed prefill):", ""]
    for name, ratio in report["ratios_to_baseline"].items():
        lines.append(f"- {name}: " + ", ".join(f"{k} ×{v}" for k, v in ratio.items()))
    docs = report["corpus"]["documents"]
    stem = save_results("bench", report, lines, out, suffix=f"-{docs}docs")
    try:
        from forkpoint.perf.bench.plots import draw
    except ImportError as exc:  # matplotlib comes with the dev extra, not with a server install
        print(f"plots skipped ({exc}); pip install matplotlib; perf/bench/plots.py {stem}.json")
        return
    for picture in draw(stem.with_suffix(".json")):
        print(f"saved {picture}")


if __name__ == "__main__":
    main()

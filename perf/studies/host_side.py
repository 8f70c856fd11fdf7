"""The host side at GPU speed (#29): forkpoint's own cost with the runtime at the projected rate.

    ./dev python perf/studies/host_side.py                      # 1000 invoices, 1× and 10×
    ./dev python perf/studies/host_side.py --docs 200 --runs 10:compile,1000:off

Runs the default job (perf/bench workload: the generated invoices, the invoices task with its
copy fields) through the gateway (in this process, as bench.py's `gateway` run) against the
emulated runtime (perf/emulated/server.py, a child process) at multiples of the projected
server's rate. Each run is `MULTIPLIER:GRAMMAR`: GRAMMAR `compile` compiles every request's
grammar with xgrammar as SGLang does (on this machine's cores, beside the gateway), `off`
compiles none (forkpoint's own ceiling, with the runtime taking no CPU for grammars).

Before each gateway run, `bare` sends the same requests (prompts and grammars built beforehand,
untimed) straight to the emulator at the same concurrency: the job's time with forkpoint's
work taken out. What is reported per run:
- wall seconds through the gateway against bare, and documents/s;
- CPU seconds (time.process_time, and time.thread_time inside each stage, so contention from
  the other processes on the machine does not count) of this process (gateway + client) per
  document, by stage: copy-grammar building (DocumentGrammars.get), the /generate call on the
  client side (Endpoint.generate: JSON encoding of the request, which carries the grammar, and
  decoding of the answer), the rest of SGLang's frontend program (run_extract less the call),
  validation (Constraint.validate), grounding (programs.grounding.ground as the extractor calls
  it), store writes (JobStore.record, create_job) and reads (JobStore.text), and the rest
  (HTTP of the job's upload and result stream, the queue, the event loop);
- the emulator's CPU seconds (its process, from /proc), where the grammar compiles go.
Saves host-side-<date>-<commit>-<N>docs.json and .md (perf/bench/results.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from forkpoint.perf.bench import workload
from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument, save
from forkpoint.perf.emulated.recording import Recording
from forkpoint.runtime.client import RuntimeClient, Timeouts
from forkpoint.runtime.launcher import free_port
from forkpoint.runtime.profiles import get_profile

PROFILE = "mixtral-awq-2x4090"  # whose client_concurrency the gateway runs with
STAGES = (
    "copy_grammar",
    "generate_call",
    "frontend_program",
    "validation",
    "grounding",
    "store_writes",
    "store_reads",
)


class StageClock:
    """Thread CPU seconds spent inside wrapped functions, by stage. Thread-safe."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                with self._lock:
                    self.seconds[stage] += spent
                    self.calls[stage] += 1

        return timed

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.calls.clear()


@contextmanager
def instrumented(clock: StageClock) -> Iterator[None]:
    """The stages' functions wrapped with `clock` while inside (restored after)."""
    from forkpoint.api.store import JobStore
    from forkpoint.programs import extractor, program
    from forkpoint.programs.constraints import Constraint
    from forkpoint.programs.copy_grammar import DocumentGrammars

    patches = [
        (DocumentGrammars, "get", "copy_grammar"),
        (program.Endpoint, "generate", "generate_call"),
        (Constraint, "validate", "validation"),
        (extractor, "ground", "grounding"),
        (JobStore, "record", "store_writes"),
        (JobStore, "create_job", "store_writes"),
        (JobStore, "text", "store_reads"),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, stage in patches:
        setattr(owner, name, clock.wrap(stage, getattr(owner, name)))
    # the frontend program: run_extract as a whole; the call inside it is subtracted after
    run_extract = program.run_extract
    program.run_extract = clock.wrap("program_total", run_extract)
    try:
        yield
    finally:
        program.run_extract = run_extract
        for owner, name, original in saved:
            setattr(owner, name, original)


class Emulator:
    """The emulated runtime in a child process."""

    def __init__(self, multiplier: float, grammar: str, recording: Path, threads: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [
            sys.executable,
            "-m",
            "forkpoint.perf.emulated.server",
            f"--port={self.port}",
            f"--multiplier={multiplier}",
            f"--grammar={grammar}",
            f"--recording={recording}",
            f"--compile-threads={threads}",
        ]
        self.process = subprocess.Popen(argv)
        client = RuntimeClient(self.url, timeouts=Timeouts(connect=1.0, call=2.0))
        deadline = time.monotonic() + 180
        while not client.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the emulated runtime did not start")
            time.sleep(0.3)

    def cpu_seconds(self) -> float:
        """User + system CPU of the child so far (/proc/PID/stat, clock ticks)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def bare_run(
    url: str, prefix: dict[str, Any], requests: list[dict[str, Any]], concurrency: int
) -> dict[str, float]:
    """The prepared requests straight to the runtime, `concurrency` at a time, after the prefix
    alone (as the gateway warms it): the job's time without forkpoint's work."""
    client = RuntimeClient(url)
    client.flush_cache()
    client.json("POST", "/generate", json=prefix, timeout=600)
    own = threading.local()  # a client per thread: one pool shared by 160 threads lost sockets

    def send(body: dict[str, Any]) -> Any:
        if not hasattr(own, "client"):
            own.client = RuntimeClient(url)
        return own.client.json("POST", "/generate", json=body, timeout=900)

    cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, requests))
    wall = time.perf_counter() - started
    return {
        "wall_seconds": round(wall, 3),
        "client_cpu_seconds": round(time.process_time() - cpu, 3),
    }


def prepared_requests(
    job: workload.Workload, chat_format: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The prefix's /generate body and those forkpoint sends for the job's documents. The
    grammars are built outside the extractor's cache, so the gateway run builds its own."""
    from forkpoint.programs.prompt import task_prompt

    prompt = task_prompt(job.task, chat_format)
    task = job.task
    task.compile(copy_grammar=True)
    bodies = []
    for _, text in job.documents:
        params: dict[str, Any] = {"max_new_tokens": task.max_output_tokens, "temperature": 0.0}
        if task.copy_grammar is not None:
            params["ebnf"] = task.copy_grammar.for_document(text)
        else:
            params["json_schema"] = task.constraint.schema_json
        bodies.append({"text": prompt.full(text), "sampling_params": params})
    return {"text": prompt.prefix, "sampling_params": {"max_new_tokens": 0}}, bodies


def gateway_run(
    url: str, job: workload.Workload, concurrency: int, clock: StageClock
) -> dict[str, Any]:
    """The job through an in-process gateway (bench.py's), instrumented."""
    from forkpoint.perf.bench.bench import serving_gateway
    from forkpoint.programs.gateway_client import GatewayClient
    from forkpoint.programs.grammar_workers import WORKERS

    RuntimeClient(url).flush_cache()
    os.environ["FORKPOINT_PROFILE"] = PROFILE
    with serving_gateway(url, concurrency, len(job.documents)) as gateway:
        client = GatewayClient(gateway, timeout=600)
        clock.reset()
        with instrumented(clock):
            cpu, main_cpu = time.process_time(), time.thread_time()
            workers_cpu = WORKERS.cpu_seconds
            started = time.perf_counter()
            submitted = client.submit(job.task.name, job.documents)
            records = list(client.results(submitted["id"]))
            wall = time.perf_counter() - started
            cpu, main_cpu = time.process_time() - cpu, time.thread_time() - main_cpu
            workers_cpu = WORKERS.cpu_seconds - workers_cpu
    statuses: dict[str, int] = defaultdict(int)
    for record in records:
        statuses[record["status"]] += 1
    docs = len(records)
    stages = {s: clock.seconds.get(s, 0.0) for s in STAGES}
    stages["frontend_program"] = clock.seconds.get("program_total", 0.0) - stages["generate_call"]
    stages["other_gateway"] = cpu - main_cpu - sum(stages.values())
    stages["client"] = main_cpu
    stages["grammar_workers"] = workers_cpu  # in processes of their own
    cpu += workers_cpu
    return {
        "documents": docs,
        "statuses": dict(statuses),
        "wall_seconds": round(wall, 3),
        "documents_per_second": round(docs / wall, 2),
        "cpu_seconds": round(cpu, 3),
        "cpu_ms_per_document": round(1e3 * cpu / docs, 3),
        "stage_ms_per_document": {k: round(1e3 * v / docs, 3) for k, v in stages.items()},
        "stage_calls": dict(clock.calls),
        "prompt_tokens": sum(r["usage"]["prompt_tokens"] for r in records),
        "cached_tokens": sum(r["usage"]["cached_tokens"] for r in records),
        "output_tokens": sum(r["usage"]["completion_tokens"] for r in records),
    }


def run_one(
    spec: str, job: workload.Workload, recording: Path, concurrency: int, threads: int
) -> dict[str, Any]:
    multiplier_text, _, grammar = spec.partition(":")
    multiplier, grammar = float(multiplier_text), grammar or "compile"
    from forkpoint.perf.emulated.service import projected

    service = projected(multiplier)
    print(f"run {spec}: {len(job.documents)} documents ...", flush=True)
    emulator = Emulator(multiplier, grammar, recording, threads)
    try:
        prefix, bodies = prepared_requests(job, "chatml")
        load = os.getloadavg()
        before = emulator.cpu_seconds()
        bare = bare_run(emulator.url, prefix, bodies, concurrency)
        bare["runtime_cpu_seconds"] = round(emulator.cpu_seconds() - before, 3)
        del bodies
        before = emulator.cpu_seconds()
        clock = StageClock()
        through = gateway_run(emulator.url, job, concurrency, clock)
        through["runtime_cpu_seconds"] = round(emulator.cpu_seconds() - before, 3)
        through["load_average_1m"] = [round(load[0], 2), round(os.getloadavg()[0], 2)]
    finally:
        emulator.stop()
    ideal = len(job.documents) / service.documents_per_second
    return {
        "run": spec,
        "multiplier": multiplier,
        "grammar": grammar,
        "projected_documents_per_second": round(service.documents_per_second, 2),
        "projected_job_seconds": round(ideal, 2),
        "service": service.to_json(),
        "bare": bare,
        "gateway": through,
        # forkpoint's share of the job: its wall time beyond the runtime's alone, and the CPU
        # it used over the job's projected time (the GPU's pace at this multiplier)
        "wall_over_bare": round(through["wall_seconds"] / bare["wall_seconds"] - 1, 4),
        "cpu_share_of_projected_time": round(through["cpu_seconds"] / ideal, 4),
        "cpu_share_of_wall": round(through["cpu_seconds"] / through["wall_seconds"], 4),
    }


def markdown(report: dict[str, Any]) -> list[str]:
    details = (
        f"Corpus: {workload.describe(report['corpus'])}; task {report['task']}; gateway "
        f"concurrency {report['concurrency']} ({PROFILE}'s); runtime: the emulated SGLang "
        f"(perf/emulated/, answers: {report['answers']}). Load: {report['load']}."
    )
    lines = heading("forkpoint's host side against an emulated runtime", report, details)
    lines += [
        "| run | valid | projected docs/s | bare s | gateway s | docs/s | wall over bare "
        "| CPU ms/doc | CPU ÷ projected time | CPU ÷ wall | runtime CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in report["runs"]:
        g = run["gateway"]
        valid = g["statuses"].get("ok", 0) + g["statuses"].get("needs_review", 0)
        lines.append(
            f"| {run['run']} | {valid}/{g['documents']} | {run['projected_documents_per_second']}"
            f" | {run['bare']['wall_seconds']} | {g['wall_seconds']} | "
            f"{g['documents_per_second']} | {run['wall_over_bare']:+.1%} | "
            f"{g['cpu_ms_per_document']} | {run['cpu_share_of_projected_time']:.1%} | "
            f"{run['cpu_share_of_wall']:.1%} | {g['runtime_cpu_seconds']} |"
        )
    stages = list(report["runs"][0]["gateway"]["stage_ms_per_document"])
    lines += ["", "CPU ms per document by stage (thread CPU inside each stage):", ""]
    lines += ["| run | " + " | ".join(stages) + " |", "|---|" + "---:|" * len(stages)]
    for run in report["runs"]:
        per = run["gateway"]["stage_ms_per_document"]
        lines.append(f"| {run['run']} | " + " | ".join(str(per[s]) for s in stages) + " |")
    lines += ["", report["legend"]]
    return lines


LEGEND = (
    "bare: the same /generate requests sent straight to the emulated runtime at the same "
    "concurrency (prompts and grammars built beforehand): the job's time without forkpoint. "
    "wall over bare: how much longer the job took through the gateway. CPU: this process "
    "(gateway and client; time.process_time) and its grammar workers (copy grammars built in "
    "processes of their own, programs/grammar_workers.py) per document; CPU ÷ projected time: "
    "that CPU over the job's time at the projected rate × multiplier (the goal: < 2% at 10×); "
    "runtime CPU: "
    "the emulated runtime's process (tokenizing, the xgrammar compiles, HTTP). "
    "Stages: thread CPU (time.thread_time) inside copy-grammar building (with workers: handing "
    "the document over and taking the EBNF back), the /generate call's "
    "client side, the rest of SGLang's frontend program, validation, grounding, the store's "
    "writes and reads; other_gateway: the rest of the gateway (HTTP, queue, event loop); "
    "client: the submitting and result-reading thread; grammar_workers: the workers' CPU "
    "building grammars. Emulated, on a shared CPU: not a GPU run."
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument(
        "--runs", default="1:compile,10:compile,10:off,1000:off", help="MULTIPLIER:GRAMMAR,..."
    )
    parser.add_argument("--concurrency", type=int, default=get_profile(PROFILE).client_concurrency)
    parser.add_argument("--compile-threads", type=int, default=min(32, (os.cpu_count() or 1) + 4))
    add_out_argument(parser)
    args = parser.parse_args(argv)

    job = workload.load_workload(docs=args.docs)
    ran_on = describe()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        recording = Path(scratch) / "recording.json"
        answers = Recording.ground_truth(job.documents)
        answers.save(recording)
        runs = [
            run_one(spec, job, recording, args.concurrency, args.compile_threads)
            for spec in args.runs.split(",")
        ]
    report = {
        **ran_on,
        "task": job.task.name,
        "corpus": job.source,
        "concurrency": args.concurrency,
        "answers": answers.source,
        "load": f"1-minute load average {load[0]:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end, on {os.cpu_count()} cores",
        "flags": {k: str(v) for k, v in vars(args).items()},
        "legend": LEGEND,
        "runs": runs,
    }
    save("host-side", report, markdown(report), args.out, suffix=f"-{len(job.documents)}docs")


if __name__ == "__main__":
    main()

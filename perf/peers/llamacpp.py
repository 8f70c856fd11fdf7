"""The peer a user would pick on a CPU box: llama.cpp serving the same SmolLM2 GGUF.

Two servers from one llama.cpp source (the tree vendored in llama-cpp-python 0.3.36, compiled here
for this CPU, GGML_NATIVE):
  llama-cpp-python   `python -m llama_cpp.server` (pip install 'llama-cpp-python[server]'): one
                     request at a time (the server holds a lock around its one Llama), prompt cache
                     in RAM (`--cache true`): the longest cached prefix is reused.
  llama-server       llama.cpp's own C++ server: parallel slots with continuous batching, prompt
                     cache per slot (`cache_prompt`; a slot is picked by prompt similarity, so each
                     slot computes the task prefix once) plus its host-memory prompt cache
                     (`--cache-ram`, default 8 GiB), a KV stream of `context_per_slot` per slot.
                     Slots: 4 by default (llama.cpp's own `-np auto`; perf/peers/slots.py measured
                     1-4 alike and 8-32 slower here). `--kv-unified` with 32 slots was measured
                     pathological on this CPU (every sequence attends over the shared pool:
                     ~0.6 tok/s per slot) and is not used.
Both get the same text forkpoint sends (TaskPrompt.full: the same chat template, instructions,
few-shot block and document), the task's JSON schema as a grammar (llama.cpp's own
json_schema -> GBNF converter), greedy decoding and the task's output-token limit. Their answers
are validated against the task's model exactly as forkpoint's are (grounding is not applied to
either side in the comparison: the bench compares `valid` counts).

Built once into $FORKPOINT_CACHE/llamacpp-<version>-noamx/ by `ensure_peer(kind)`, only what that
kind needs (measured on 2 cores: the C++ server ~9 min, pip's build ~5 min more); starting a
PeerServer builds it if missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from forkpoint.programs.results.record import DocumentResult, Usage
from forkpoint.runtime.embedded_model import ensure_smollm2_gguf
from forkpoint.runtime.launcher import ManagedProcess, free_port, log_tail
from forkpoint.runtime.paths import cache_dir, logs_dir

if TYPE_CHECKING:
    from forkpoint.perf.bench.timeline import Timeline
    from forkpoint.programs.prompt import TaskPrompt
    from forkpoint.programs.tasks.task import ExtractionTask

VERSION = "0.3.36"
PACKAGE = f"llama-cpp-python[server]=={VERSION}"
KINDS = ("llama-server", "llama-cpp-python")
# Compiled for this CPU (GGML_NATIVE) but without AMX: on a Sapphire Rapids VM ggml's AMX matmul
# (ggml_backend_amx_mul_mat, picked for Q4_1 weights) segfaulted on the first decode, in both
# servers (seen 2026-11-30, gdb backtrace). GCC lets these explicit flags win over -march=native.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
BUILD = f"{VERSION}-noamx"  # a new name for a changed build: an older build is not reused


def peer_dir() -> Path:
    return cache_dir() / f"llamacpp-{BUILD}"


def _build_env() -> dict[str, str]:
    """CMake takes CFLAGS/CXXFLAGS as its initial compile flags, in pip's build and in ours."""
    return {**os.environ, "CFLAGS": NO_AMX, "CXXFLAGS": NO_AMX}


def ensure_peer(kind: str = "llama-server") -> Path:
    """The peer's folder, with what `kind` needs built once: `bin/llama-server` compiled from the
    vendored llama.cpp source alone (the server target: ~9 min on 2 cores), or a venv with
    llama-cpp-python[server] (pip compiles the same source as a library: ~5 min more). Each part
    is kept once it works, so the suite (llama-server only) never pays for pip's build."""
    if kind not in KINDS:
        raise ValueError(f"unknown llama.cpp peer {kind!r}; known: {', '.join(KINDS)}")
    home = peer_dir()
    home.mkdir(parents=True, exist_ok=True)
    if kind == "llama-server":
        if not (home / "bin" / "llama-server").is_file():
            _build_llama_server(home / "bin" / "llama-server")
        return home
    python = home / "bin" / "python"
    if not _imports_server(python):
        _run(
            [shutil.which("python3") or sys.executable, "-m", "venv", str(home)],
            "create the peer's venv",
        )
        _run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir", PACKAGE],
            f"pip install {PACKAGE}",
        )
    return home


def _imports_server(python: Path) -> bool:
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", "import llama_cpp.server"]).returncode == 0


def _build_llama_server(target: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        source_pkg = f"llama-cpp-python=={VERSION}"
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                source_pkg,
                "-d",
                scratch,
            ],
            "download the llama.cpp source",
        )
        (sdist,) = Path(scratch).glob("llama_cpp_python-*.tar.gz")
        with tarfile.open(sdist) as tar:
            tar.extractall(scratch, filter="data")
        source = next(Path(scratch).glob("llama_cpp_python-*/vendor/llama.cpp"))
        build = Path(scratch) / "build"
        flags = [
            "-DCMAKE_BUILD_TYPE=Release",
            "-DGGML_NATIVE=ON",
            "-DLLAMA_CURL=OFF",
            "-DBUILD_SHARED_LIBS=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
        ]
        _run(["cmake", "-S", str(source), "-B", str(build), *flags], "configure llama.cpp")
        _run(
            [
                "cmake",
                "--build",
                str(build),
                "--target",
                "llama-server",
                "-j",
                str(os.cpu_count() or 2),
            ],
            "build llama-server",
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build / "bin" / "llama-server", target.with_suffix(".part"))
        target.with_suffix(".part").rename(target)


def _run(argv: list[str], what: str) -> None:
    print(f"peer: {what} ...", flush=True)
    done = subprocess.run(argv, capture_output=True, text=True, env=_build_env())
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"could not {what} (exit {done.returncode}):\n{tail}")


class PeerServer(ManagedProcess):
    """One llama.cpp server on a free port, started and stopped like forkpoint's RuntimeServer
    (its own process group, health-waited, stopped on exit)."""

    def __init__(
        self,
        kind: str,
        slots: int = 1,
        context_per_slot: int = 4096,
        threads: int | None = None,
        startup_timeout: float = 300.0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown llama.cpp peer {kind!r}; known: {', '.join(KINDS)}")
        super().__init__(f"peer-{kind}", None, startup_timeout)
        self.kind = kind
        self.slots = slots  # llama-server's parallel slots; llama-cpp-python serves one at a time
        self.context_per_slot = context_per_slot
        self.threads = threads or os.cpu_count() or 2
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self, gguf: Path) -> list[str]:
        home = peer_dir()
        if self.kind == "llama-server":
            return [
                str(home / "bin" / "llama-server"),
                "-m",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "-t",
                str(self.threads),
                "-np",
                str(self.slots),
                "-c",
                str(self.slots * self.context_per_slot),
                "--cont-batching",
                "--no-webui",
            ]
        return [
            str(home / "bin" / "python"),
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.context_per_slot),
            "--n_threads",
            str(self.threads),
            "--n_threads_batch",
            str(self.threads),
            "--cache",
            "true",
            "--cache_type",
            "ram",
            "--interrupt_requests",
            "false",
        ]

    def start(self) -> PeerServer:
        ensure_peer(self.kind)
        gguf = ensure_smollm2_gguf()
        self.port = self.port or free_port()
        self.log_path = logs_dir() / f"peer-{self.kind}-{self.port}.log"
        health = "/health" if self.kind == "llama-server" else "/v1/models"
        self._spawn(self.argv(gguf), dict(os.environ), health, f"llama.cpp's {self.kind}")
        return self

    def __enter__(self) -> PeerServer:
        return self.start()

    def gone(self) -> str | None:
        """Why the server cannot answer any more (it exited), or None while it runs."""
        if self.running:
            return None
        code = self.process.returncode if self.process else "stopped"
        return (
            f"{self.kind} is gone (exit {code}) while serving the bench\n"
            f"--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}"
        )


def extract_one(
    peer: PeerServer,
    http: httpx.Client,
    index: int,
    name: str,
    text: str,
    prompt: TaskPrompt,
    task: ExtractionTask,
) -> DocumentResult:
    """One document through the peer: the same prompt, schema, greedy decoding and limit."""
    started = time.perf_counter()
    full = prompt.full(text)
    limit = task.max_output_tokens
    if peer.kind == "llama-server":
        body = {
            "prompt": full,
            "n_predict": limit,
            "temperature": 0.0,
            "cache_prompt": True,
            "json_schema": task.constraint.schema,
        }
        answer = _post(http, peer.url + "/completion", body)
        output, stop = answer["content"], answer.get("stop_type")
        prompt_tokens, computed = answer["tokens_evaluated"], answer["timings"]["prompt_n"]
        usage = Usage(prompt_tokens, prompt_tokens - computed, answer["tokens_predicted"])
        truncated = stop == "limit"
    else:
        body = {
            "prompt": full,
            "max_tokens": limit,
            "temperature": 0.0,
            "grammar": _gbnf(peer, task.constraint.schema),
        }
        answer = _post(http, peer.url + "/v1/completions", body)
        choice, counts = answer["choices"][0], answer["usage"]
        output, truncated = choice["text"], choice.get("finish_reason") == "length"
        # llama-cpp-python does not say how much of the prompt its cache served
        usage = Usage(counts["prompt_tokens"], 0, counts["completion_tokens"])
    seconds = time.perf_counter() - started
    if truncated:
        return DocumentResult(index, name, "truncated", usage=usage, seconds=seconds, raw=output)
    try:
        data = task.constraint.validate(output)
    except Exception as exc:  # noqa: BLE001 - any validation failure is an invalid answer
        return DocumentResult(
            index, name, "invalid", error=str(exc), usage=usage, seconds=seconds, raw=output
        )
    return DocumentResult(index, name, "ok", data=data, usage=usage, seconds=seconds)


def _post(http: httpx.Client, url: str, body: dict) -> dict:
    response = http.post(url, json=body)
    response.raise_for_status()
    return response.json()


_GRAMMARS: dict[str, str] = {}


def _gbnf(peer: PeerServer, schema: dict) -> str:
    """llama.cpp's own JSON-schema -> GBNF converter (llama_cpp.llama_grammar), run in the peer's
    venv: llama-cpp-python's completion endpoint takes a grammar, not a schema."""
    import json

    key = json.dumps(schema, sort_keys=True)
    if key not in _GRAMMARS:
        code = (
            "import json,sys; from llama_cpp.llama_grammar import json_schema_to_gbnf; "
            "print(json_schema_to_gbnf(sys.stdin.read()))"
        )
        done = subprocess.run(
            [str(peer_dir() / "bin" / "python"), "-c", code],
            input=key,
            capture_output=True,
            text=True,
            check=True,
        )
        _GRAMMARS[key] = done.stdout
    return _GRAMMARS[key]


# One document takes seconds; a request still unanswered after this is stuck, not slow.
REQUEST_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


def run_peer(
    peer: PeerServer,
    prompt: TaskPrompt,
    task: ExtractionTask,
    documents: list[tuple[str, str]],
    concurrency: int,
    prefix: int,
) -> tuple[list[DocumentResult], float, int, Timeline]:
    """Every document through the peer, `concurrency` at a time; (results, wall, prefix,
    timeline) as bench.run_direct returns them. A request that fails or times out is that
    document's error; a peer that exits mid-run stops the run with its log's last lines."""
    from concurrent.futures import ThreadPoolExecutor

    from forkpoint.perf.bench.timeline import Timeline

    with httpx.Client(timeout=REQUEST_TIMEOUT) as http, ThreadPoolExecutor(concurrency) as pool:
        with Timeline(peer.kind, len(documents)) as timeline:

            def one(item: tuple[int, tuple[str, str]]) -> DocumentResult:
                index, (name, text) = item
                started = time.perf_counter()
                try:
                    result = extract_one(peer, http, index, name, text, prompt, task)
                except httpx.HTTPError as exc:
                    if why := peer.gone():
                        raise RuntimeError(why) from None
                    error = f"{peer.kind}: {type(exc).__name__}: {exc}"
                    seconds = time.perf_counter() - started
                    result = DocumentResult(index, name, "error", error=error, seconds=seconds)
                timeline(result.usage.prompt_tokens, result.usage.completion_tokens)
                return result

            results = list(pool.map(one, enumerate(documents)))
            wall = timeline.elapsed()
    return results, wall, prefix, timeline

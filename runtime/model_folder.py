"""Check a model folder before an operator starts a runtime on it: files, quantization, memory.

`forkpoint model prepare --profile mixtral-awq-2x4090 --source DIR_OR_HUB_ID` runs these checks
offline: a local folder, or a hub id already in the local Hugging Face cache. Each failure says
what is missing and how to get it. The memory budget is the one SGLang applies: per card,
`mem_fraction_static` of its memory holds the weights (split by tensor parallelism) and the KV
pool; what remains for the KV pool decides how many requests run at once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from forkpoint.runtime.checklist import Check, failed, passed, warned
from forkpoint.runtime.profiles import BUILTIN_PROFILES, LaunchProfile

GIB = 1024**3
RTX_4090_MEMORY_BYTES = 24564 * 1024**2  # what nvidia-smi reports for a 24 GB 4090
TYPICAL_REQUEST_TOKENS = 3000  # task prefix (~1k) + a ~1.5k-token document + output


@dataclass(frozen=True)
class MemoryBudget:
    """Weights plus KV pool on `gpus` cards, as SGLang sizes it with mem_fraction_static."""

    gpus: int
    gpu_memory_bytes: int
    mem_fraction: float
    weights_bytes: int
    kv_bytes_per_token: int

    @property
    def usable_bytes(self) -> int:
        return int(self.gpus * self.gpu_memory_bytes * self.mem_fraction)

    @property
    def kv_pool_tokens(self) -> int:
        return max(0, self.usable_bytes - self.weights_bytes) // self.kv_bytes_per_token


def resolve_source(source: str) -> Path | None:
    """A local folder, or the snapshot of a hub id in the local Hugging Face cache (no network)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if source.count("/") != 1 or path.exists():
        return None
    hub = Path(
        os.environ.get("HF_HUB_CACHE")
        or Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"
    )
    repo = hub / ("models--" + source.replace("/", "--"))
    ref = repo / "refs" / "main"
    if ref.is_file():
        snapshot = repo / "snapshots" / ref.read_text().strip()
        return snapshot if snapshot.is_dir() else None
    snapshots = sorted((repo / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime)
    return snapshots[-1] if snapshots else None


def check_source(
    source: str,
    profile: LaunchProfile,
    *,
    gpus: int | None = None,
    gpu_memory_bytes: int = RTX_4090_MEMORY_BYTES,
    concurrency: int | None = None,
    request_tokens: int = TYPICAL_REQUEST_TOKENS,
) -> list[Check]:
    """Every check of the model `source` against what `profile` will ask of it."""
    folder = resolve_source(source)
    if folder is None:
        name = source.rstrip("/").split("/")[-1]
        return [
            failed(
                "model folder",
                f"{source} is neither a folder nor a hub id in the local Hugging Face cache",
                f"download it first: huggingface-cli download {source} "
                f"--local-dir /srv/forkpoint/models/{name}",
            )
        ]
    checks = [passed("model folder", str(folder))]
    config = _read_config(folder, checks)
    if config is None:
        return checks
    checks.append(_check_quantization(config, profile))
    checks.append(_check_tokenizer(folder))
    weights = _check_weights(folder, checks)
    if weights:
        budget = MemoryBudget(
            gpus=gpus or profile.tp,
            gpu_memory_bytes=gpu_memory_bytes,
            mem_fraction=profile.mem_fraction_static or 0.88,
            weights_bytes=weights,
            kv_bytes_per_token=kv_bytes_per_token(config, profile),
        )
        checks += _check_budget(budget, profile, concurrency, request_tokens)
    return checks


def kv_bytes_per_token(config: dict, profile: LaunchProfile) -> int:
    """K and V of one token over all layers (fp16/bf16 unless the profile asks for an fp8 KV)."""
    heads = config.get("num_attention_heads") or 1
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or (config.get("hidden_size") or 0) // heads
    dtype_bytes = 1 if profile.kv_cache_dtype.startswith("fp8") else 2
    return 2 * (config.get("num_hidden_layers") or 0) * kv_heads * head_dim * dtype_bytes or 1


def profile_toml(profile: LaunchProfile, folder: Path) -> str:
    """A TOML profile: the built-in `profile` serving the model in `folder`."""
    if profile.name not in BUILTIN_PROFILES:
        raise ValueError(f"{profile.name!r} is not a built-in profile: set model_path in its TOML")
    return f'base = "{profile.name}"\nmodel_path = {json.dumps(str(folder.resolve()))}\n'


def _read_config(folder: Path, checks: list[Check]) -> dict | None:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        checks.append(failed("config", f"no config.json in {folder}", "copy the full model repo"))
        return None
    except (OSError, ValueError) as exc:
        checks.append(failed("config", f"{path} is unreadable: {exc}", "re-download config.json"))
        return None
    arch = ", ".join(config.get("architectures") or [config.get("model_type", "?")])
    checks.append(passed("config", f"{arch}, {config.get('num_hidden_layers', '?')} layers"))
    return config


def _check_quantization(config: dict, profile: LaunchProfile) -> Check:
    quant = config.get("quantization_config") or {}
    method = str(quant.get("quant_method", "")).lower()
    wanted = profile.quantization
    if wanted is None:
        if method:
            return warned(
                "quantization",
                f"the model is {method}-quantized but the profile sets no quantization",
                "let SGLang detect it, or set `quantization` in the profile",
            )
        return passed("quantization", "unquantized, as the profile expects")
    if wanted.startswith("awq"):
        if method != "awq":
            found = method or "none"
            return failed(
                "quantization",
                f"profile {profile.name} needs an AWQ checkpoint; config.json says: {found}",
                "use an AWQ export (e.g. TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ)",
            )
        bits, group = quant.get("bits", quant.get("w_bit")), quant.get("group_size")
        group = group or quant.get("q_group_size")
        version = str(quant.get("version", "gemm")).lower()
        if bits != 4 or (wanted == "awq_marlin" and version != "gemm"):
            return failed(
                "quantization",
                f"AWQ bits={bits} version={version}: awq_marlin needs 4-bit GEMM weights",
                'use a 4-bit GEMM AWQ export, or `quantization = "awq"` (no MoE support)',
            )
        return passed("quantization", f"AWQ {bits}-bit, group {group}, {version}")
    return passed("quantization", f"{method or 'none'} (profile: {wanted})")


def _check_tokenizer(folder: Path) -> Check:
    found = [n for n in ("tokenizer.json", "tokenizer.model") if (folder / n).is_file()]
    if not found:
        return failed(
            "tokenizer",
            "no tokenizer.json or tokenizer.model",
            "copy the tokenizer files of the base model into the folder",
        )
    if not (folder / "tokenizer_config.json").is_file():
        return warned(
            "tokenizer",
            f"{', '.join(found)} but no tokenizer_config.json",
            "copy tokenizer_config.json from the model repo",
        )
    return passed("tokenizer", ", ".join(found) + " + tokenizer_config.json")


def _check_weights(folder: Path, checks: list[Check]) -> int:
    shards = sorted(folder.glob("*.safetensors"))
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            wanted = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError) as exc:
            checks.append(
                failed(
                    "weights", f"{index.name} is unreadable: {exc}", "re-download the index file"
                )
            )
            return 0
        missing = sorted(wanted - {p.name for p in shards})
        if missing:
            checks.append(
                failed(
                    "weights",
                    f"{len(missing)} of {len(wanted)} shards missing: {', '.join(missing[:3])}"
                    + (" ..." if len(missing) > 3 else ""),
                    "finish the download (huggingface-cli download resumes)",
                )
            )
            return 0
    if not shards:
        bins = list(folder.glob("*.bin"))
        fix = "use a safetensors export" if bins else "download the weights"
        checks.append(failed("weights", "no *.safetensors files", fix))
        return 0
    empty = [p.name for p in shards if p.stat().st_size == 0]
    if empty:
        checks.append(failed("weights", f"empty shard(s): {', '.join(empty)}", "re-download them"))
        return 0
    total = sum(p.stat().st_size for p in shards)
    checks.append(passed("weights", f"{len(shards)} safetensors shard(s), {total / GIB:.1f} GiB"))
    return total


def _check_budget(
    budget: MemoryBudget, profile: LaunchProfile, concurrency: int | None, request_tokens: int
) -> list[Check]:
    where = (
        f"{budget.gpus}×{budget.gpu_memory_bytes / GIB:.1f} GiB × {budget.mem_fraction} = "
        f"{budget.usable_bytes / GIB:.1f} GiB"
    )
    if budget.weights_bytes >= budget.usable_bytes:
        return [
            failed(
                "memory",
                f"weights {budget.weights_bytes / GIB:.1f} GiB do not fit in {where}",
                "use more or larger GPUs (tp), a smaller quantization, "
                "or raise mem_fraction_static",
            )
        ]
    pool = budget.kv_pool_tokens
    context = profile.context_length or 0
    detail = (
        f"weights {budget.weights_bytes / GIB:.1f} GiB of {where}; KV pool ≈ {pool:,} tokens "
        f"({budget.kv_bytes_per_token // 1024} KiB/token)"
    )
    if pool < max(context, request_tokens):
        return [
            failed(
                "memory",
                detail + f": less than one {max(context, request_tokens):,}-token request",
                "lower context_length or use more GPU memory",
            )
        ]
    checks = [passed("memory", detail)]
    running = concurrency or profile.max_running_requests or profile.client_concurrency
    fits = pool // request_tokens
    if fits < running:
        checks.append(
            warned(
                "concurrency",
                f"{running} requests of ~{request_tokens:,} tokens need "
                f"{running * request_tokens:,} KV tokens; about {fits} fit at once "
                "(the shared task prefix is stored once, so more do in practice)",
                "SGLang queues the rest; lower max_running_requests or context_length if the queue "
                "grows, or add a server",
            )
        )
    else:
        fit = f"{running} requests of ~{request_tokens:,} tokens fit"
        checks.append(passed("concurrency", fit))
    return checks

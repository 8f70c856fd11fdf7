"""Validate a profile the way SGLang will: its own parser, on the argv we would launch."""

from __future__ import annotations

from typing import Any

from forkpoint.errors import ProfileError
from forkpoint.runtime.profiles import LaunchProfile


def check_profile(profile: LaunchProfile) -> Any:
    """Parse the profile's argv with `prepare_server_args`; returns SGLang's ServerArgs.

    Parsing only: SGLang resolves the rest (GPU memory, the model's config) at launch, so a CUDA
    profile checks on a machine without a GPU.
    """
    from sglang.srt.server_args import prepare_server_args

    # The embedded model is resolved at launch; a placeholder path parses the same way.
    concrete = profile if profile.model_path else profile.model_copy(update={"model_path": "x"})
    argv = concrete.argv()[3:]  # drop `python -m sglang.launch_server`
    try:
        return prepare_server_args(argv)
    except SystemExit as exc:  # argparse reports bad flags by exiting
        raise ProfileError(f"SGLang rejects the argv of {profile.name!r} (see above)") from exc
    except (ValueError, TypeError) as exc:
        raise ProfileError(f"SGLang rejects profile {profile.name!r}: {exc}") from exc


def decode_graph_sizes(parsed: Any) -> list[int] | None:
    """The decode batch sizes SGLang captures CUDA graphs for; None when it picks the largest
    from the GPU's memory at launch, or the profile runs without CUDA graphs."""
    from sglang.srt.arg_groups.cuda_graph_hook import generate_decode_cuda_graph_batch_sizes

    max_bs = parsed.cuda_graph_max_bs_decode
    if parsed.device != "cuda" or parsed.disable_cuda_graph or max_bs is None:
        return None
    return generate_decode_cuda_graph_batch_sizes(parsed, max_bs)


def describe(parsed: Any) -> str:
    """One line of what SGLang will run, as its parser read the argv."""
    sizes = decode_graph_sizes(parsed)
    graphs = f"{len(sizes)} sizes up to {max(sizes)}" if sizes else "SGLang's default"
    if parsed.device != "cuda" or parsed.disable_cuda_graph:
        graphs = "off"
    return (
        f"tp={parsed.tp_size} quantization={parsed.quantization} kv={parsed.kv_cache_dtype} "
        f"speculative={parsed.speculative_algorithm} schedule={parsed.schedule_policy} "
        f"max_running={parsed.max_running_requests} decode graphs: {graphs}"
    )


def uncovered_batches(profile: LaunchProfile) -> str | None:
    """Running batches that would decode without CUDA graphs, said in words; None if none."""
    graphs, running = profile.cuda_graph_max_bs_decode, profile.max_running_requests
    if profile.device != "cuda" or profile.disable_cuda_graph or not (graphs and running):
        return None
    if graphs >= running:
        return None
    return f"batches of {graphs + 1}-{running} requests decode without CUDA graphs"

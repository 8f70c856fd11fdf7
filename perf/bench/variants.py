"""Server variants for `forkpoint calibrate`: a profile with a few fields changed.

An axis is `FIELD=V1,V2,...` over the profile's own fields, dotted for nested ones
(`speculation.num_draft_tokens=4,8`, `speculation.algorithm=none,NGRAM`, `kv_cache_dtype=fp8_e5m2`,
`cuda_graph_max_bs_decode=48,160`, `client_concurrency=128,192`). The grid changes one axis at a
time from the profile as it is (the `base` variant), so each variant's effect is its own and a
grid of k axes with n values costs k·n servers, not n^k.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from forkpoint.errors import ProfileError
from forkpoint.perf.projection.gpu_model import (
    SGLANG_GRAPH_MAX_BS,  # SGLang's own cap on 24 GB cards
)
from forkpoint.runtime.profiles import LaunchProfile, validate_profile


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def apply(self, profile: LaunchProfile) -> LaunchProfile:
        """The profile with this variant's fields set; a bad field or value names itself."""
        values = profile.model_dump()
        for dotted, value in self.overrides.items():
            *parents, leaf = dotted.split(".")
            target = values
            for part in parents:
                if not isinstance(target.get(part), dict):
                    raise ProfileError(f"variant {self.name!r}: {dotted!r} is not a profile field")
                target = target[part]
            if leaf not in target:
                raise ProfileError(f"variant {self.name!r}: {dotted!r} is not a profile field")
            target[leaf] = value
        return validate_profile(values, f"variant {self.name!r}")


def parse_axis(text: str) -> tuple[str, list[Any]]:
    """`FIELD=V1,V2` → (field, values); values read as JSON where they parse (numbers, true,
    false), `none`/`off` as None, anything else as a string."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise ProfileError(f"{text!r} is not FIELD=V1,V2,...", hint="e.g. client_concurrency=64,96")
    return name.strip(), [_value(v.strip()) for v in values.split(",")]


def _value(text: str) -> Any:
    if text.lower() in ("none", "off", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def grid(profile: LaunchProfile, axes: list[str]) -> list[Variant]:
    """`base`, then one variant per value of each axis that differs from the profile's own."""
    variants = [Variant("base")]
    for axis in axes:
        name, values = parse_axis(axis)
        for value in values:
            variant = Variant(f"{name}={_label(value)}", {name: value})
            if variant.apply(profile) != profile:
                variants.append(variant)
    return variants


def _label(value: Any) -> str:
    return "off" if value is None else str(value)


def default_axes(profile: LaunchProfile) -> list[str]:
    """What is worth measuring first on this profile's server."""
    spec = profile.speculation
    drafts = sorted({4, 8} - {spec.num_draft_tokens}) if spec.algorithm else []
    axes = ["speculation.algorithm=none" if spec.algorithm else "speculation.algorithm=NGRAM"]
    if drafts:
        axes.append(f"speculation.num_draft_tokens={','.join(map(str, drafts))}")
    running = profile.max_running_requests or profile.client_concurrency
    concurrency = running if profile.client_concurrency > running else running + running // 2
    axes.append(f"client_concurrency={concurrency}")
    if profile.device == "cuda":
        axes.append("kv_cache_dtype=fp8_e5m2")
        if not profile.disable_cuda_graph:
            axes.append(f"cuda_graph_max_bs_decode={SGLANG_GRAPH_MAX_BS}")
    return axes

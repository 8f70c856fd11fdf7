"""Which model a running SGLang server serves, and whether a chat format fits it.

A runtime someone else started (`--sglang-url`) says nothing about its model in the URL: the
profile's chat format is only a guess. Prompts built in the wrong format still decode, so a
mismatch shows only as worse answers. SGLang's model info names the model (path, served name)
and its HF architectures; that is enough to tell the family and so the format it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forkpoint.errors import ProfileError
from forkpoint.runtime.client import RuntimeClient, Timeouts

# Which model families write their prompts in which format: (family, what its HF architecture
# or model name contains, lower case, a chat format name of programs/templates.py or None). The
# first family whose pattern appears in the served model's architectures, path or name wins.
# Names are needed: SmolLM2 is a LlamaForCausalLM like many models with other templates. Mixtral
# 8x22B (tokenizer v3, control tokens) shares Mixtral v0.1's architecture but not its format, so
# it is listed first, unknown. Kept here, not next to the formats: runtime/ imports no programs/.
MODEL_FAMILIES: tuple[tuple[str, str, str | None], ...] = (
    ("Mixtral 8x22B", "8x22b", None),
    ("Mixtral", "mixtral", "mixtral-v1"),
    ("Mistral 7B v0.1", "mistral-7b-instruct-v0.1", "mixtral-v1"),
    ("Qwen", "qwen", "chatml"),
    ("SmolLM2", "smollm2", "chatml"),
)


@dataclass(frozen=True)
class ServedModel:
    """What identifies the model a runtime serves."""

    url: str
    model_path: str
    served_model_name: str | None = None
    architectures: tuple[str, ...] = ()
    model_type: str | None = None

    @classmethod
    def from_info(cls, url: str, info: dict[str, Any]) -> ServedModel:
        """From SGLang's model info; the architectures from a local model's config.json when
        the server does not report them."""
        path = str(info.get("model_path") or "")
        architectures = info.get("architectures")
        model_type = info.get("model_type")
        if not architectures:
            config = _local_config(path)
            architectures = config.get("architectures")
            model_type = model_type or config.get("model_type")
        return cls(
            url=url,
            model_path=path,
            served_model_name=info.get("served_model_name") or None,
            architectures=tuple(architectures or ()),
            model_type=model_type,
        )

    @property
    def name(self) -> str:
        return self.served_model_name or self.model_path or "an unnamed model"

    @property
    def family(self) -> tuple[str, str | None] | None:
        """(family, chat format or None) from MODEL_FAMILIES; None when no family matches."""
        texts = [*self.architectures, self.model_path, self.served_model_name or ""]
        texts = [text.lower() for text in texts if text]
        for family, pattern, chat_format in MODEL_FAMILIES:
            if any(pattern in text for text in texts):
                return family, chat_format
        return None

    def describe(self) -> str:
        family = self.family
        return f"{self.name} ({family[0]})" if family else self.name


def served_model(url: str, timeout: float = 10.0, api_key: str | None = None) -> ServedModel:
    """Ask the runtime at `url` which model it serves (one request; two on an older server)."""
    client = RuntimeClient(url, api_key=api_key, timeouts=Timeouts(connect=timeout, call=timeout))
    return ServedModel.from_info(client.url, client.model_info())


def chat_format_for(model: ServedModel) -> str | None:
    """The chat format forkpoint knows for the model's family; None when unknown."""
    family = model.family
    return family[1] if family else None


def check_served_format(model: ServedModel, chat_format: str | None) -> str:
    """The chat format to build prompts in for `model`: `chat_format` if it fits (or the
    family is unknown), the family's own if none is given. Raises ProfileError otherwise."""
    known = chat_format_for(model)
    if chat_format is None:
        if known is None:
            raise ProfileError(
                f"the runtime at {model.url} serves {model.describe()}, a model whose chat "
                "format forkpoint does not know",
                hint="pass --chat-format (FORKPOINT_CHAT_FORMAT for the gateway)",
            )
        return known
    if known is not None and known != chat_format:
        raise ProfileError(
            f"the runtime at {model.url} serves {model.describe()}, whose prompts use {known}, "
            f"not {chat_format}",
            hint=f"use --chat-format {known} (FORKPOINT_CHAT_FORMAT for the gateway) or a "
            f"profile with that format, or point at a runtime serving a {chat_format} model",
        )
    return chat_format


def check_chat_format(
    url: str, chat_format: str | None, timeout: float = 10.0, api_key: str | None = None
) -> str:
    """Ask the runtime at `url` which model it serves and check `chat_format` against it."""
    return check_served_format(served_model(url, timeout, api_key), chat_format)


def _local_config(model_path: str) -> dict[str, Any]:
    config = Path(model_path) / "config.json" if model_path else None
    if config is None or not config.is_file():
        return {}
    try:
        return json.loads(config.read_text())
    except (OSError, ValueError):
        return {}

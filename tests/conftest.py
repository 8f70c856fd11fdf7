"""Shared by the tests: real processes (an SGLang server, gateways) and hostile input files."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

import httpx
import pytest

from forkpoint.runtime.launcher import RuntimeServer, free_port
from forkpoint.runtime.paths import build_model_once, models_dir
from forkpoint.runtime.profiles import Speculation, get_profile


@pytest.fixture(scope="session")
def sglang_server():
    """A running cpu-small server on a free port; `.url` and `.profile` for the tests."""
    profile = get_profile("cpu-small").model_copy(update={"port": 0})
    with RuntimeServer(profile) as server:
        yield server


# float32: in bfloat16 a verify batch and a decode step round differently, which flips
# near-tied greedy choices; float32 makes "speculation changes nothing" testable exactly.
# Module-scoped and with a small KV pool: a second and third server for the whole session
# pushed the suite's peak RAM into the OOM killer (seen in CI).
SMALL_FLOAT32 = {"port": 0, "dtype": "float32", "max_total_tokens": 8192}


@pytest.fixture(scope="module")
def ngram_server():
    """cpu-small in float32 with NGRAM and 4 draft slots for external (job) corpora."""
    cpu = get_profile("cpu-small")
    speculation = cpu.speculation.model_copy(
        update={"algorithm": "NGRAM", "external_sam_budget": 4}
    )
    with RuntimeServer(cpu.model_copy(update={**SMALL_FLOAT32, "speculation": speculation})) as s:
        yield s


@pytest.fixture(scope="module")
def plain_server():
    """cpu-small in float32 with speculation off: the reference for ngram_server."""
    profile = get_profile("cpu-small").model_copy(
        update={**SMALL_FLOAT32, "speculation": Speculation()}
    )
    with RuntimeServer(profile) as server:
        yield server


class Gateway:
    """`forkpoint serve` as a child process; kill() is a SIGKILL.

    `runtime` is a URL (`--sglang-url`: someone else's runtime) or a profile (`--profile`: the
    gateway starts its own runtime and restarts it if it dies)."""

    def __init__(self, runtime: str, db_path: Path, log_path: Path, **env: str) -> None:
        self.runtime, self.db_path, self.log_path = runtime, db_path, log_path
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Gateway":
        keyless = not {"FORKPOINT_API_KEYS", "FORKPOINT_API_KEYS_FILE"} & self.env.keys()
        env = {
            **os.environ,
            "FORKPOINT_DB_PATH": str(self.db_path),
            "FORKPOINT_CONCURRENCY": "16",
            **({"FORKPOINT_OPEN": "1"} if keyless else {}),  # keyless is asked for, or 401
            **self.env,
        }
        flag = "--sglang-url" if self.runtime.startswith("http") else "--profile"
        command = [
            sys.executable,
            "-m",
            "forkpoint.cli",
            "serve",
            flag,
            self.runtime,
            "--port",
            str(self.port),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 300  # with its own runtime: model load first
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.5)
        raise AssertionError(f"gateway did not start:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


@pytest.fixture
def start_gateway(tmp_path):
    """start_gateway(url_or_profile, **env) -> a started Gateway process, stopped after it."""
    started = []

    def start(runtime: str, **env: str) -> Gateway:
        n = len(started)
        gateway = Gateway(
            runtime, tmp_path / f"gateway-{n}.db", tmp_path / f"gateway-{n}.log", **env
        )
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()


# Hostile uploads, made in code (no binary files in git): each must become its own document's
# error, never an exception out of forkpoint.programs.documents.document or a 500 from the gateway.
def _zip(members: dict[str, bytes | str]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _docx(document_xml: str | None = None) -> bytes:
    """A real .docx (python-docx), its word/document.xml replaced when given."""
    import io
    import zipfile

    import docx

    buffer = io.BytesIO()
    docx.Document().save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    if document_xml is not None:
        members["word/document.xml"] = document_xml
    return _zip(members)


def _pdf() -> bytes:
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _billion_laughs() -> str:
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    return (
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY lol0 "lol">{entities}]>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )


BAD_FILES = {  # file name → (how to make its bytes, what its error says)
    "bomb.docx": (lambda: _zip({"word/document.xml": b" " * (8 << 20)}), "zip bomb"),
    "only-document-xml.docx": (lambda: _zip({"word/document.xml": "<x/>"}), "Word document"),
    "truncated.docx": (lambda: _docx()[:2000], "damaged or truncated zip"),
    "billion-laughs.docx": (lambda: _docx(_billion_laughs()), "Word document"),
    "truncated.pdf": (lambda: _pdf()[:300], "PDF"),
    "random.pdf": (lambda: b"%PDF-1.7\n" + random.Random(1).randbytes(20_000), "PDF"),
    "random.txt": (lambda: random.Random(2).randbytes(20_000), "is binary"),
    "latin-1.txt": (lambda: "café crème".encode("latin-1"), "is not UTF-8"),
    "deep.json": (lambda: b"[" * 100_000, "nested too deeply"),
    "deep-closed.json": (lambda: b"[" * 5_000 + b"]" * 5_000, "nested too deeply"),
    "deep.jsonl": (lambda: b"[" * 100_000 + b"\n", "nested too deeply"),
}


@pytest.fixture(params=sorted(BAD_FILES))
def bad_file(request) -> tuple[str, bytes, str]:
    """(file name, bytes, part of its error message), one per hostile file."""
    make, reason = BAD_FILES[request.param]
    return request.param, make(), reason


# MixtralForCausalLM with 2 layers, 4 experts (top-2), hidden size 64: about 4.4M parameters,
# random weights with a fixed seed, the real Mixtral v1 tokenizer (mistral_common's
# tokenizer.model.v1, 32,000 tokens). Built once into the model cache.
TINY_MIXTRAL = "tiny-mixtral-v1-random"
TINY_MIXTRAL_SEED = 0


def _build_tiny_mixtral(out: Path) -> None:
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
    torch.manual_seed(TINY_MIXTRAL_SEED)
    # transformers types .to() through functools.wraps, as if the model were its first argument
    model = MixtralForCausalLM(config).to(torch.bfloat16)  # type: ignore[arg-type]
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


@pytest.fixture(scope="session")
def tiny_mixtral_path() -> Path:
    """A tiny random-weight Mixtral: the production model family's code paths on a CPU."""
    return build_model_once(models_dir() / TINY_MIXTRAL, _build_tiny_mixtral)


@pytest.fixture(scope="session")
def tiny_mixtral(tiny_mixtral_path):
    """One SGLang server on the tiny Mixtral with the Mixtral chat template, for the session."""
    profile = get_profile("cpu-small").model_copy(
        update={
            "name": "tiny-mixtral-cpu",
            "model_path": str(tiny_mixtral_path),
            "port": 0,
            "chat_format": get_profile("mixtral-awq-2x4090").chat_format,
            "speculation": Speculation(),
            "max_total_tokens": 8192,
            "context_length": 4096,
        }
    )
    with RuntimeServer(profile) as server:
        yield server

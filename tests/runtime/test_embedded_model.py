"""The embedded model's one-time conversion: two lines on the terminal, the libraries' output in
a log file (a new user's first command used to show transformers' warnings and tqdm bars)."""

import pytest

from forkpoint.runtime.embedded_model import FOLDER, convert, ensure_smollm2_gguf


@pytest.mark.slow
def test_the_conversion_says_two_lines_and_logs_the_libraries_output(tmp_path, capfd):
    gguf = ensure_smollm2_gguf()  # downloaded once into the cache
    out, log = tmp_path / "model", tmp_path / "convert.log"
    convert(gguf, out, log)
    captured = capfd.readouterr()
    assert captured.out == ""
    first, last = captured.err.splitlines()
    assert first == f"forkpoint: converting the embedded model {FOLDER}, once (log: {log})"
    assert last.startswith("forkpoint: embedded model ready in ")
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert "gguf" in log.read_text().lower()  # what transformers said went to the log

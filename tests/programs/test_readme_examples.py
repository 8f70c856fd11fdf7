"""The README's "From Python" example runs as written (on the session's server instead of a
runtime of its own: the only change made to it)."""

import contextlib
import functools
import io
import re
from pathlib import Path

import pytest

import forkpoint.programs as fp
from forkpoint.programs.folder_run import extract

README = Path(__file__).resolve().parents[2] / "README.md"


def from_python_example() -> str:
    section = README.read_text().split("### From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_from_python_example_prints_one_typed_result_per_text(sglang_server, monkeypatch):
    code = from_python_example()
    assert "from forkpoint import ExtractionTask, extract" in code
    session = functools.partial(extract, sglang_url=sglang_server.url)
    # what the example's import finds: `forkpoint` re-exports forkpoint.programs' names
    monkeypatch.setattr(fp, "extract", session)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert len(lines) == 2
    assert all(line.split()[0] in ("ok", "needs_review", "invalid", "truncated") for line in lines)

"""`forkpoint extract` end to end: a folder in, one JSON line per document out."""

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from forkpoint.cli.errors import EXIT_DOCUMENTS_FAILED
from forkpoint.cli.main import app
from forkpoint.programs.results import table
from forkpoint.programs.tasks.registry import get_task
from forkpoint.runtime.launcher import free_port

runner = CliRunner()


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a-signature.txt").write_text(
        "Thanks!\n--\nJana Novak\nProcurement Lead, Brightwater Ltd\njana.novak@brightwater.co.uk\n"
    )
    (folder / "b-empty.txt").write_text("")
    (folder / "c-binary.txt").write_bytes(b"\x7fELF\x02\x01\x00\x00")
    (folder / "d-latin1.txt").write_bytes("Jos\xe9 Garc\xeda, Madrid".encode("latin-1"))
    (folder / "e-note.md").write_text("Met **Omar Haddad** (CFO at Dunes Capital), omar@dunes.ae")
    return folder


@pytest.mark.slow
def test_extract_writes_one_line_per_document_and_bad_files_become_error_lines(
    sglang_server, mixed_folder, tmp_path
):
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app,
        [
            "extract",
            str(mixed_folder),
            "--task",
            "contacts",
            "--out",
            str(out),
            "--sglang-url",
            sglang_server.url,
            "--concurrency",
            "4",
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    rows = table.read(out.with_suffix(".csv"))  # the same results as a table beside OUT
    assert [row["file"] for row in rows] == [line["file"] for line in lines]
    assert [row["error"] for row in rows] == [line.get("error") for line in lines]
    assert [line["file"] for line in lines] == [
        "a-signature.txt",
        "b-empty.txt",
        "c-binary.txt",
        "d-latin1.txt",
        "e-note.md",
    ]
    assert [line["ok"] for line in lines] == [True, False, False, False, True]
    assert "is empty" in lines[1]["error"]
    assert "is an executable, not a document" in lines[2]["error"]
    assert "is not UTF-8" in lines[3]["error"]
    model = get_task("contacts").output_model
    for line, row in zip(lines, rows, strict=True):
        if line["ok"]:
            assert model.model_validate(table.unflatten(row)) == model.model_validate(line["data"])
            assert line["usage"]["cached_tokens"] > 0
    assert "read tokens per second" in result.output


def _extract(folder, out, url, *extra):
    args = ["extract", str(folder), "--task", "contacts", "--out", str(out), "--sglang-url", url]
    result = runner.invoke(app, [*args, "--concurrency", "4", *extra])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()], result.output


ANN = "Ann Lee, CTO at Lumen Labs, ann@lumen.io"


def inbox(tmp_path, **texts):
    """A folder with one NAME.txt per keyword argument."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name, text in texts.items():
        (folder / f"{name}.txt").write_text(text)
    return folder


@pytest.mark.slow
def test_resume_extracts_only_new_changed_or_failed_documents_and_keeps_the_rest(
    sglang_server, tmp_path
):
    folder = inbox(tmp_path, a=ANN, b="Omar Haddad (CFO, Dunes Capital), omar@dunes.ae", c="")
    out = tmp_path / "out.jsonl"
    first, _ = _extract(folder, out, sglang_server.url)
    assert [r["status"] for r in first] == ["ok", "ok", "error"]
    (folder / "b.txt").write_text("Jana Novak, Procurement Lead, jana@brightwater.co.uk")
    (folder / "d.txt").write_text("Li Wei, li.wei@example.cn")
    second, output = _extract(folder, out, sglang_server.url, "--resume")
    assert [r["file"] for r in second] == ["a.txt", "b.txt", "c.txt", "d.txt"]
    assert second[0] == first[0]  # kept as it was: not sent again
    assert second[1]["sha256"] != first[1]["sha256"]  # changed content: extracted again
    assert second[1]["status"] == second[3]["status"] == "ok"  # changed and new: extracted
    assert second[2]["status"] == "error"  # failed: tried again (still empty)
    # The run's own count: b, c and d were tried in it, and only a was already done.
    assert re.search(r"documents\W+3\b", output) and re.search(r"already done\W+1\b", output)


@pytest.mark.slow
def test_fail_on_error_exits_4_when_a_document_failed_and_the_error_line_is_written(
    sglang_server, tmp_path
):
    folder = inbox(tmp_path, a=ANN, b="")  # b is unreadable: empty
    out = tmp_path / "out.jsonl"
    lines, _ = _extract(folder, out, sglang_server.url)  # without the flag: exit 0
    assert [(r["file"], r["status"]) for r in lines] == [("a.txt", "ok"), ("b.txt", "error")]
    assert "is empty" in lines[1]["error"]

    args = ["extract", str(folder), "--task", "contacts", "--out", str(out), "--sglang-url"]
    result = runner.invoke(app, [*args, sglang_server.url, "--fail-on-error"])
    assert result.exit_code == EXIT_DOCUMENTS_FAILED == 4, result.output
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["file"], r["status"]) for r in again] == [("a.txt", "ok"), ("b.txt", "error")]


@pytest.mark.slow
def test_a_runtime_given_by_url_gets_its_served_models_chat_format_not_the_profiles(
    sglang_server, tmp_path
):
    folder = inbox(tmp_path, a=ANN)
    out = tmp_path / "out.jsonl"
    # the Mixtral profile's format is mixtral-v1; the server at the URL serves SmolLM2 (chatml)
    args = ["extract", str(folder), "--task", "contacts", "--out", str(out)]
    given = [*args, "--profile", "mixtral-awq-2x4090", "--sglang-url", sglang_server.url]
    result = runner.invoke(app, given)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["status"] for line in out.read_text().splitlines()] == ["ok"]
    # an explicit format that does not fit the served model is refused, naming both
    refused = runner.invoke(app, [*given, "--chat-format", "mixtral-v1"])
    assert refused.exit_code == 2 and "not mixtral-v1" in refused.output


@pytest.mark.slow  # no server, but importing the SGLang frontend takes a while
def test_an_unreachable_sglang_url_exits_3_with_a_hint_naming_the_real_option(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    nobody = f"http://127.0.0.1:{free_port()}"
    args = ["extract", str(tmp_path), "--sglang-url", nobody, "--out", str(tmp_path / "o.jsonl")]
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    assert "omit --sglang-url" in result.output


def test_an_unknown_task_exits_2_naming_it(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    result = runner.invoke(app, ["extract", str(tmp_path), "--task", "nope"])
    assert result.exit_code == 2
    assert "no built-in task named 'nope'" in result.output


def test_a_folder_without_documents_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["extract", str(tmp_path)])
    assert result.exit_code == 2
    assert "holds no files" in result.output


def test_importing_the_cli_does_not_import_torch_or_sglang():
    code = "import sys, forkpoint.cli.main; print(sorted({'torch', 'sglang'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_unknown_table_format_is_refused_before_any_work(tmp_path):
    (tmp_path / "a.txt").write_text("Ann Lee, ann@lumen.io")
    result = runner.invoke(app, ["extract", str(tmp_path), "--format", "xlsx"])
    assert result.exit_code == 2
    assert "unknown table format 'xlsx'" in result.output and "csv, parquet" in result.output

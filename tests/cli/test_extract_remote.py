"""`forkpoint extract --server URL`: every option is honoured by the gateway or refused."""

import json

import pytest
from typer.testing import CliRunner

from forkpoint.cli.main import app
from forkpoint.runtime.launcher import free_port

runner = CliRunner()


@pytest.fixture
def folder(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.txt").write_text("Ann Lee, CTO at Lumen Labs, ann@lumen.io")
    (inbox / "b.txt").write_text("Omar Haddad (CFO, Dunes Capital), omar@dunes.ae")
    return inbox


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("--profile", "cpu-small", "runs its own runtime"),
        ("--sglang-url", "http://127.0.0.1:30000", "runs its own runtime"),
        ("--chat-format", "chatml", "runs its own runtime"),
        ("--concurrency", "8", "runs its own runtime"),
    ],
)
def test_an_option_the_gateway_decides_is_refused_before_any_connection(
    folder, tmp_path, option, value, reason
):
    out = tmp_path / "out.jsonl"
    out.write_text("kept\n")
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens: a connection would fail
    args = ["extract", str(folder), "--server", nobody, "--out", str(out), option, value]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"{option} " in result.output
    assert reason in result.output
    assert out.read_text() == "kept\n"  # untouched


def test_a_gateway_nobody_answers_is_exit_3_with_a_hint_not_a_traceback(folder, tmp_path):
    out = tmp_path / "out.jsonl"
    nobody = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["extract", str(folder), "--server", nobody, "--out", str(out)])
    assert result.exit_code == 3, result.output
    assert f"cannot reach the gateway at {nobody}" in result.output
    assert "Traceback" not in result.output and not out.exists()


def _extract(folder, out, gateway, *extra):
    args = ["extract", str(folder), "--task", "contacts", "--out", str(out), "--server"]
    result = runner.invoke(app, [*args, gateway.url, *extra])
    assert result.exit_code == 0, result.output
    return out.read_text().splitlines(), result.output


def _figures(output: str) -> dict[str, str]:
    rows = [line.strip("│ ").split("│") for line in output.splitlines() if line.count("│") >= 3]
    return {row[0].strip(): row[1].strip() for row in rows if len(row) >= 2}


@pytest.mark.slow
def test_resume_over_the_gateway_sends_only_new_documents_and_keeps_done_records(
    sglang_server, start_gateway, folder, tmp_path
):
    gateway = start_gateway(sglang_server.url)
    out = tmp_path / "out.jsonl"
    first, output = _extract(folder, out, gateway)
    assert [json.loads(line)["file"] for line in first] == ["a.txt", "b.txt"]
    assert [json.loads(line)["status"] for line in first] == ["ok", "ok"]
    assert _figures(output)["documents"] == "2"

    (folder / "c.txt").write_text("Li Wei, li.wei@example.cn")
    second, output = _extract(folder, out, gateway, "--resume")
    assert second[:2] == first  # the same lines: not sent again, not rewritten
    assert [json.loads(line)["file"] for line in second] == ["a.txt", "b.txt", "c.txt"]
    assert "job " in output
    figures = _figures(output)
    assert figures["documents"] == "1"  # the gateway's job held only the new document
    assert figures["already done"] == "2"

    third, output = _extract(folder, out, gateway, "--resume")
    assert third == second
    assert "job " not in output  # everything done: nothing submitted
    figures = _figures(output)
    assert (figures["documents"], figures["already done"]) == ("0", "3")

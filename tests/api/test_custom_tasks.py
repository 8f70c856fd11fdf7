"""Your own task over the LAN: sent from Python or the CLI to a real gateway in front of a real
SGLang server, it is the same task as run locally — the same prefix (cached tokens equal) and
the same answers — its validators run on the client, and a dropped connection is resumed."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import forkpoint.programs as fp
from forkpoint.cli.main import app
from forkpoint.programs.extractor import Extractor
from forkpoint.programs.target import Target
from forkpoint.programs.tasks.registry import load_task
from forkpoint.runtime.client import RuntimeClient

pytestmark = pytest.mark.slow
MODULE = Path(__file__).with_name("people_task.py")
TASK = load_task(f"{MODULE}:TASK")
NEVER = load_task(f"{MODULE}:NEVER")
DOCS = [
    ("a.txt", "Hi team, the crates ship Friday.\nBest, Omar Haddad <omar@dunes.ae>"),
    ("b.txt", 'Note from Li Wei: "call me" \\ li.wei@example.cn'),
    ("c.txt", "Signed: Zoë Müller, Berlin"),
]


def test_a_custom_task_from_python_and_the_cli_is_the_task_run_locally(
    sglang_server, start_gateway, tmp_path
):
    local = fp.extract(TASK, DOCS, sglang_url=sglang_server.url, concurrency=1)
    assert RuntimeClient(sglang_server.url).flush_cache()  # the gateway computes its own prefix
    gateway = start_gateway(sglang_server.url, FORKPOINT_CONCURRENCY="1")
    remote = list(fp.Gateway(gateway.url).submit(TASK, DOCS).results())

    assert [r.name for r in remote] == [name for name, _ in DOCS]
    assert [r.status for r in remote] == [r.status for r in local]
    assert [r.data for r in remote] == [r.data for r in local]  # Person instances, equal
    assert any(isinstance(r.data, TASK.output_model) for r in remote)
    # the same prefix: every document found exactly the locally computed prefix cached
    assert [r.usage.cached_tokens for r in remote] == [r.usage.cached_tokens for r in local]
    assert min(r.usage.cached_tokens for r in remote) > 0

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, text in DOCS:
        (inbox / name).write_text(text)
    # The cache as the local run met it, the prefix computed and the documents not: with the
    # documents' own prompts cached, a near-tied greedy choice of the 135M model can flip (seen
    # on this machine: one address read "example.com" locally, "example.cn" over the CLI),
    # which would not be the task's doing.
    assert RuntimeClient(sglang_server.url).flush_cache()
    Extractor(Target(sglang_server.url, sglang_server.profile.chat_format), TASK).warm()
    out = tmp_path / "people.jsonl"
    args = ["extract", str(inbox), "--task-module", f"{MODULE}:TASK", "--server", gateway.url]
    done = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert done.exit_code == 0, done.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r.get("data") for r in records] == [
        r.json_data() if r.has_data else None for r in local
    ]


def test_validators_run_on_the_client_and_a_dropped_stream_resumes(sglang_server, start_gateway):
    gateway = start_gateway(sglang_server.url, FORKPOINT_CONCURRENCY="1")
    client = fp.Gateway(gateway.url)
    [refused] = client.extract(NEVER, DOCS[:1])
    assert refused.status == "invalid"
    assert "Refused's validation at name" in refused.error and "no name is valid" in refused.error

    job = client.submit(TASK, DOCS)
    seen = []
    for result in job.results():
        seen.append(result.name)
        if len(seen) == 1:  # the connection drops mid-stream: the gateway is killed
            gateway.kill()
            gateway.start()
    assert seen == [name for name, _ in DOCS]  # every document once, in order
    assert job.reconnects >= 1  # the stream really dropped and was asked again

"""The Python API: `from forkpoint.programs import ...` is a task and the main job in one call."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import forkpoint.programs as fp
from forkpoint.errors import ProfileError

CONTACTS = Path(__file__).parents[2] / "samples" / "contacts"


def test_importing_the_api_does_not_load_sglang_or_torch_until_a_run_needs_them():
    code = (
        "import sys, forkpoint.programs as fp; "
        "assert fp.ExtractionTask and fp.get_task('contacts'); "
        "print('sglang' in sys.modules, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
    assert set(fp.__all__) <= set(dir(fp)) | set(fp._LAZY)


@pytest.mark.slow
def test_extract_folder_writes_the_results_file_and_resumes_it(sglang_server, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("contact-001.txt", "contact-002.txt"):
        shutil.copy(CONTACTS / name, inbox / name)
    out = tmp_path / "contacts.jsonl"
    seen = []
    # no chat format given: the served model's (SmolLM2: chatml) is used
    summary = fp.extract_folder(
        inbox, "contacts", out, sglang_url=sglang_server.url, on_progress=seen.append
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["file"] for r in records] == ["contact-001.txt", "contact-002.txt"]
    assert summary.total == 2 and summary.prefix_tokens > 0 and len(seen) == 2
    assert summary.usage.prompt_tokens == sum(r["usage"]["prompt_tokens"] for r in records)
    done = [r for r in records if r["status"] in ("ok", "needs_review")]
    assert done, "no document is done: a resume would have nothing to skip"
    again = fp.extract_folder(inbox, "contacts", out, sglang_url=sglang_server.url, resume=True)
    assert again.skipped == len(done) and again.total == 2 - len(done)
    resumed = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(resumed) == 2  # one record per document, still
    assert [r for r in resumed if r["file"] in {d["file"] for d in done}] == done  # kept as is


@pytest.mark.slow  # it asks the real server which model it serves
def test_a_chat_format_that_does_not_fit_the_served_model_is_refused(sglang_server, tmp_path):
    with pytest.raises(ProfileError, match="mixtral"):
        fp.extract_folder(
            CONTACTS,
            "contacts",
            tmp_path / "o.jsonl",
            sglang_url=sglang_server.url,
            chat_format="mixtral-v1",
        )
    assert not (tmp_path / "o.jsonl").exists()  # refused before anything was written


@pytest.mark.slow
def test_extract_gives_typed_results_for_texts_in_order(sglang_server):
    texts = [(CONTACTS / name).read_text() for name in ("contact-001.txt", "contact-002.txt")]
    results = fp.extract("contacts", texts, sglang_url=sglang_server.url)
    assert [r.name for r in results] == ["document-0001", "document-0002"]
    model = fp.get_task("contacts").output_model
    assert all(isinstance(r.data, model) for r in results if r.has_data)
    assert any(r.has_data for r in results)

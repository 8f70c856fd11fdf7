"""The batch driver against a real SGLang server: the spine's acceptance, document by document."""

from pathlib import Path

import pytest

from forkpoint.programs.batch import BatchDriver, BatchOptions
from forkpoint.programs.documents.document import Document, read_folder
from forkpoint.programs.target import Target
from forkpoint.programs.tasks.registry import get_task

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def invoices(sglang_server):
    task = get_task("invoices")
    target = Target(sglang_server.url, sglang_server.profile.chat_format)
    driver = BatchDriver(target, task, BatchOptions(concurrency=8))
    documents = list(read_folder(SAMPLES / "invoices"))
    results = list(driver.run(documents))
    return task, driver, documents, results


def test_every_sample_document_yields_a_validated_instance_of_the_task_model(invoices):
    task, _, documents, results = invoices
    assert len(documents) >= 20
    failures = {r.name: r.error for r in results if not r.has_data}
    assert not failures
    assert all(isinstance(r.data, task.output_model) for r in results)


def test_results_come_back_in_input_order(invoices):
    _, _, documents, results = invoices
    assert [r.name for r in results] == [d.name for d in documents]
    assert [r.index for r in results] == list(range(len(documents)))


def test_every_document_reads_the_whole_prefix_from_the_cache(invoices):
    _, driver, _, results = invoices
    assert driver.prefix_tokens > 200  # instructions, field guide and few-shot turns
    for result in results:
        assert result.usage.cached_tokens >= driver.prefix_tokens, result.name
        assert result.usage.prompt_tokens > driver.prefix_tokens
        assert result.usage.completion_tokens > 0


def test_a_bad_document_is_an_error_and_the_rest_still_succeed(sglang_server):
    target = Target(sglang_server.url, sglang_server.profile.chat_format)
    driver = BatchDriver(target, get_task("contacts"), BatchOptions(concurrency=4))
    documents = [
        Document(
            "good-1.txt", text="Best,\nMaria Lopez\nHead of Sales, Norvik AB\nmaria@norvik.se"
        ),
        Document("broken.txt", error="broken.txt is not UTF-8 text (byte 3: 0xe9)"),
        Document("good-2.txt", text="Regards, Tom Hale | CTO | Hale Labs | +1 555 0100"),
    ]
    results = list(driver.run(documents))
    assert [r.status for r in results] == ["ok", "error", "ok"]
    assert results[1].error == "broken.txt is not UTF-8 text (byte 3: 0xe9)"
    assert results[1].usage.prompt_tokens == 0  # never sent to the runtime


def test_an_output_cut_by_the_token_limit_is_reported_as_truncated(sglang_server):
    target = Target(sglang_server.url, sglang_server.profile.chat_format)
    options = BatchOptions(concurrency=2, max_output_tokens=4)
    driver = BatchDriver(target, get_task("invoices"), options)
    text = (SAMPLES / "invoices").glob("*.txt").__next__().read_text()
    (result,) = driver.run([Document("short.txt", text=text)])
    assert result.status == "truncated"
    assert "4-token limit" in result.error and "finish_reason=length" in result.error
    assert result.usage.completion_tokens == 4
    assert result.to_json()["ok"] is False

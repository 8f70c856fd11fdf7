"""The benchmark's figures add up: every total is the sum of the per-document records."""

import pytest

from forkpoint.perf.bench import bench
from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.bench.workload import Workload
from forkpoint.programs.target import Target
from forkpoint.programs.tasks.registry import get_task
from forkpoint.programs.tasks.task import schema_task


def test_the_corpus_is_deterministic_and_documents_differ_from_their_first_line():
    spec = CorpusSpec(documents=50, min_tokens=300, max_tokens=600, seed=3)
    first, again = generate(spec), generate(spec)
    assert first == again
    assert len({text.splitlines()[0] for _, text in first}) == 50
    assert all(1000 <= len(text) <= 2600 for _, text in first)
    assert generate(CorpusSpec(documents=50, seed=4)) != first


# Accounting is the subject, not the invoice task: a one-field schema (no copy fields, so no
# grammar per document) keeps each answer a few tokens long.
TOTAL = schema_task(
    {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]},
    "Give the invoice's total amount.",
)


@pytest.mark.slow
def test_reported_totals_are_sums_of_per_document_usage_on_a_small_run(sglang_server):
    documents = generate(CorpusSpec(documents=3, min_tokens=80, max_tokens=120, seed=5))
    target = Target(sglang_server.url, sglang_server.profile.chat_format)
    outcome = bench.run_direct(target, TOTAL, documents, 3, warm=True)
    results, wall, prefix, _ = outcome
    figures = bench.measure("baseline", *outcome)
    prompt_tokens = sum(r.usage.prompt_tokens for r in results)
    cached = sum(r.usage.cached_tokens for r in results)
    output = sum(r.usage.completion_tokens for r in results)
    assert figures["documents"] == 3 and figures["prefix_tokens"] == prefix > 0
    assert figures["prompt_tokens"] == prompt_tokens
    assert figures["cached_tokens"] == cached
    assert figures["output_tokens"] == output
    assert figures["computed_prefill_tokens"] == prompt_tokens - cached
    assert figures["read_tokens_per_second"] == round(prompt_tokens / wall, 1)
    assert figures["write_tokens_per_second"] == round(output / wall, 1)
    assert figures["prefix_reuse_efficiency"] == round(3 * prefix / (2 * prefix), 4)  # warmed
    # the embedded profile speculates: SGLang's accept length is output tokens per verify step
    steps = sum(r.usage.spec_verify_ct for r in results)
    assert figures["spec_verify_steps"] == steps > 0
    assert figures["accept_length"] == round(output / steps, 3)
    # tokens over time: one point per document as it finished, ending at the totals
    times = [point[0] for point in figures["timeline"]]
    assert len(times) == 3 and times == sorted(times) and times[-1] <= wall
    assert figures["timeline"][-1][1:] == (prompt_tokens, output)


@pytest.mark.slow
def test_the_gateway_run_reports_every_document_it_was_given_in_order(sglang_server):
    documents = generate(CorpusSpec(documents=3, min_tokens=80, max_tokens=120, seed=5))
    target = Target(sglang_server.url, sglang_server.profile.chat_format)
    outcome = bench.run_gateway(target, "invoices", documents, 3, prefix=857)
    results, wall, _, timeline = outcome
    figures = bench.measure("gateway", *outcome)
    assert [r.name for r in results] == [name for name, _ in documents]
    assert figures["documents"] == 3 and not [r for r in results if r.status == "error"]
    assert figures["prompt_tokens"] == sum(r.usage.prompt_tokens for r in results) > 0
    assert figures["output_tokens"] == sum(r.usage.completion_tokens for r in results) > 0
    assert figures["write_tokens_per_second"] == round(figures["output_tokens"] / wall, 1)
    assert timeline.points[-1][1:] == (figures["prompt_tokens"], figures["output_tokens"])


def test_a_token_target_keeps_the_leading_documents_that_reach_it():
    documents = [("a", "x" * 400), ("b", "y" * 800), ("c", "z" * 400)]
    job = Workload(get_task("invoices"), documents, {"kind": "generated", "documents": 3})
    # prefix 400 characters: a = 200 estimated tokens, b = 300, c = 200
    assert job.within_tokens(400, 200).documents == documents[:1]
    assert job.within_tokens(400, 201).documents == documents[:2]
    assert job.within_tokens(400, 10_000).documents == documents
    assert job.within_tokens(400, 1).documents == documents[:1]  # never empty
    assert job.within_tokens(400, 201).source["documents"] == 2

"""The job counted in Mixtral's tokens (mistral_common's v1 tokenizer, offline)."""

import pytest

from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.projection import mixtral_tokens
from forkpoint.perf.projection.gpu_projection import Job
from forkpoint.perf.studies import mixtral_tokens as counting


def test_mixtrals_tokenizer_is_shipped_and_counts_end_of_turn_as_one_token():
    count = counting.mixtral_counter()
    assert count("</s>") == 1
    assert count("[INST] Hi [/INST] Hello</s>") == count("[INST] Hi [/INST] Hello") + 1


def test_a_reference_answer_holds_the_invoices_own_fields():
    [(_, text)] = generate(CorpusSpec(documents=1, min_tokens=100, max_tokens=200, seed=3))
    answer = counting.reference_answer(text)
    assert answer.startswith('{"vendor":') and " " not in answer.split('"line_items"')[0][:12]
    assert text.split(" from ")[1].split("\n")[0] in answer


def test_the_job_is_rescaled_from_the_counts():
    job = Job(1000, 1_451_183, 581_013, 209_335, 857, 5.293)
    counts = {"prompt_tokens": 1_556_000, "prefix_tokens": 891, "file": "f.json"}
    counts |= {"answer_tokens": 110, "smollm2_answer_tokens": 100}
    mixtral = mixtral_tokens.as_mixtral(job, counts)
    assert mixtral.prompt_tokens == 1_556_000 and mixtral.prefix_tokens == 891
    assert mixtral.output_tokens == round(209_335 * 1.1)
    reused = (1_451_183 - 581_013) / 857
    assert mixtral.computed_prefill_tokens == pytest.approx(1_556_000 - reused * 891, abs=1)
    assert mixtral.tokenizer == "mixtral (f.json)"


def test_the_full_size_jobs_count_is_committed():
    counts = mixtral_tokens.newest(
        {"documents": 1000, "min_tokens": 300, "max_tokens": 1500, "seed": 1}
    )
    assert counts is not None
    # re-created with SmolLM2's tokenizer, the prompts match the report within a token a prompt
    assert abs(counts["smollm2_prompt_tokens"] - 1_451_183) <= 1000

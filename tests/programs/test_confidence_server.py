"""Confidence per field on a real SGLang server with NGRAM speculation (the embedded default):
the verify step returns a log-probability for every output token, and each value of the answer
gets its confidence, which a task's `review_below` turns into a review reason."""

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from forkpoint.programs import program
from forkpoint.programs.confidence import leaves
from forkpoint.programs.documents.document import from_text
from forkpoint.programs.extractor import Extractor
from forkpoint.programs.target import Target
from forkpoint.programs.tasks.task import ExtractionTask

pytestmark = pytest.mark.slow
SIGNATURE = "Best regards,\nMaria Lopez\nHead of Sales, Norvik AB\nmaria.lopez@norvik.se"


class Signer(BaseModel):
    name: str = Field(max_length=40, description="The person's full name.")
    country: Literal["Norway", "Sweden"] = Field(description="The country.")
    age: int | None = Field(None, description="Their age, if stated.")


def signer_task(**options) -> ExtractionTask:
    return ExtractionTask(
        name="signer",
        instructions="Extract the person who signs.",
        output_model=Signer,
        max_output_tokens=60,
        **options,
    )


def test_speculative_decoding_returns_a_logprob_for_every_output_token(sglang_server):
    target = Target(sglang_server.url, sglang_server.profile.chat_format)
    task = signer_task()
    prompt = target.prompt(task)
    raw, meta = program.run_extract(
        program.connect(target.client()),
        prefix=prompt.prefix,
        turn=prompt.reask(SIGNATURE, []),
        json_schema=task.constraint.schema_json,
        max_tokens=60,
        logprobs=True,
    )
    tokens = meta["output_token_logprobs"]
    assert meta["spec_verify_ct"] > 0  # NGRAM verified this answer
    assert len(tokens) == meta["completion_tokens"]
    assert "".join(text for _, _, text in tokens).startswith(raw)
    assert all(logprob <= 0 for logprob, _, _ in tokens)


def test_every_value_gets_a_confidence_and_an_unsure_one_makes_the_document_need_review(
    sglang_server,
):
    target = Target(sglang_server.url, sglang_server.profile.chat_format)
    document = from_text("sig.txt", SIGNATURE)
    unsure = Extractor(target, signer_task(review_below={"name": 0.9999}))
    result = unsure.extract(0, document)
    confidence = result.to_json()["confidence"]
    assert set(confidence) == {path for path, _ in leaves(result.json_data())}
    assert all(0 <= p <= 1 and round(p, 4) == p for p in confidence.values())
    assert result.status == "needs_review"
    assert result.review == (
        f"name = {result.json_data()['name']!r} has confidence {confidence['name']:.2f}, "
        "under 0.9999",
    )
    plain = Extractor(target, signer_task(), confidence=False).extract(0, document)
    assert plain.has_data and plain.confidence is None  # logprobs not asked: no confidence
    assert "confidence" not in plain.to_json()

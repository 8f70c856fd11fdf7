"""After decoding, on a real server: validators that no grammar can express are re-asked, and
every extracted string is grounded in the document (or the document needs review)."""

from typing import Literal

import pytest
from pydantic import BaseModel, Field, model_validator

from forkpoint.programs.documents.document import from_text
from forkpoint.programs.extractor import Extractor
from forkpoint.programs.target import Target
from forkpoint.programs.tasks.task import ExtractionTask

pytestmark = pytest.mark.slow
SIGNATURE = "Best regards,\nMaria Lopez\nHead of Sales, Norvik AB\nmaria.lopez@norvik.se"
VERDICTS: list[bool] = []  # what the validator answers next: False fails, True passes


class Person(BaseModel):
    name: str = Field(max_length=40, description="The person's full name.")
    email: str | None = Field(None, max_length=60, description="Their e-mail address.")

    @model_validator(mode="after")
    def _scripted(self):
        if VERDICTS and not VERDICTS.pop(0):
            raise ValueError("the name must include the family name")
        return self


@pytest.fixture(autouse=True)
def no_verdicts_left():
    """A test that stops before its answers used up its VERDICTS leaves none to the next."""
    VERDICTS.clear()
    yield
    VERDICTS.clear()


def person_task(**options) -> ExtractionTask:
    return ExtractionTask(
        name="person",
        instructions="Extract the person who signs.",
        output_model=Person,
        max_output_tokens=80,
        **options,
    )


def extractor_for(server, task) -> Extractor:
    extractor = Extractor(Target(server.url, server.profile.chat_format), task)
    extractor.warm()
    return extractor


def test_a_validator_failure_is_re_asked_with_the_error_and_then_succeeds(sglang_server):
    extractor = extractor_for(sglang_server, person_task(max_reasks=1))
    VERDICTS[:] = [False]  # the first answer fails the model's validator; the second passes
    result = extractor.extract(0, from_text("sig.txt", SIGNATURE))
    assert VERDICTS == []
    assert result.status == "ok" and result.attempts == 2
    assert result.to_json()["usage"]["attempts"] == 2
    # Both attempts read the task prefix from the cache; the re-ask also re-read the document
    # turn and the first answer, which the first attempt had just put in the radix cache.
    assert result.usage.cached_tokens >= 2 * extractor.prefix_tokens


def test_a_result_still_failing_after_the_re_asks_is_recorded_invalid_with_its_attempts(
    sglang_server,
):
    extractor = extractor_for(sglang_server, person_task(max_reasks=2))
    VERDICTS[:] = [False, False, False]
    result = extractor.extract(0, from_text("sig.txt", SIGNATURE))
    assert result.status == "invalid" and result.attempts == 3
    assert result.error.endswith("(after 3 attempts)")
    assert "the name must include the family name" in result.error
    assert result.raw  # the last answer, for inspection
    assert not result.has_data


class Located(BaseModel):
    name: str = Field(max_length=40, description="The person's full name.")
    country: Literal["Norway"] = Field(description="The country.")  # never in the document


def test_a_value_that_is_not_in_the_document_makes_it_need_review_with_spans_for_the_rest(
    sglang_server,
):
    task = ExtractionTask(
        name="located",
        instructions="Extract the person who signs.",
        output_model=Located,
        max_output_tokens=60,
        grounded_fields=("name", "country"),
        copy_fields=("name",),  # so the name is in the document whatever the model picks
    )
    result = extractor_for(sglang_server, task).extract(0, from_text("sig.txt", SIGNATURE))
    assert result.status == "needs_review" and result.has_data
    assert "country = 'Norway' does not occur in the document" in result.review
    record = result.to_json()
    grounding = {g["path"]: g for g in record["grounding"]}
    assert grounding["country"] == {
        "path": "country",
        "value": "Norway",
        "match": None,
        "span": None,
    }
    assert record["data"]["name"].strip(), "an empty name is not looked up: nothing to check"
    name = grounding["name"]  # a span of the document: found there, and the span points at it
    assert name["match"] == "exact"
    start, end = name["span"]
    assert SIGNATURE[start:end] == name["value"] == record["data"]["name"]


def test_no_re_ask_starts_after_the_extraction_deadline(sglang_server):
    """max_reasks=3 and an answer that never validates would ask four times; with a deadline
    already passed after the first ask, the first answer stands, invalid, naming the deadline."""
    task = person_task(max_reasks=3)
    extractor = Extractor(
        Target(sglang_server.url, sglang_server.profile.chat_format),
        task,
        deadline_seconds=1e-6,
    )
    VERDICTS[:] = [False] * 4
    result = extractor.extract(0, from_text("sig.txt", SIGNATURE))
    assert VERDICTS == [False] * 3  # one answer was validated, no re-ask was asked
    assert (result.status, result.attempts) == ("invalid", 1)
    assert "1e-06-second deadline" in result.error
    VERDICTS.clear()


def test_a_document_over_the_chunk_limit_is_an_error_before_any_ask(sglang_server):
    task = person_task(long_documents="chunk", max_chunk_tokens=64, chunk_overlap_tokens=0)
    extractor = Extractor(
        Target(sglang_server.url, sglang_server.profile.chat_format), task, max_chunks=3
    )
    result = extractor.extract(0, from_text("long.txt", (SIGNATURE + "\n\n") * 40))
    assert result.status == "error"
    assert "the limit is 3" in result.error and result.usage.completion_tokens == 0

"""Long documents: counted with the real tokenizer, an error naming the sizes, or chunks merged."""

from functools import partial
from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from forkpoint.programs.documents.document import from_text
from forkpoint.programs.documents.long_documents import chunk, fit, merge
from forkpoint.programs.extractor import Extractor
from forkpoint.programs.prompt import task_prompt
from forkpoint.programs.target import Target
from forkpoint.programs.tasks.task import ExtractionTask


class SmolCounter:
    """The same counting interface as the runtime's /tokenize, on SmolLM2's own tokenizer."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def count(self, texts, *, special=True):
        ids = self.tokenizer(texts, add_special_tokens=special)["input_ids"]
        return [len(i) for i in ids], 8192


def minutes(paragraphs: int) -> str:
    """Meeting minutes: one attendee named per paragraph, filler around them."""
    filler = "The group reviewed the quarterly figures and the open actions in detail. " * 6
    items = (f"Item {i}. {filler}Present: Attendee{i:03d} Novak." for i in range(paragraphs))
    return "\n\n".join(items)


def test_chunks_fit_the_room_keep_paragraphs_whole_and_overlap(smollm2_tokenizer):
    counter = SmolCounter(smollm2_tokenizer)
    text = minutes(30)
    chunks = chunk(text, counter, room=600, overlap_tokens=120)
    assert len(chunks) > 3
    sizes, _ = counter.count(chunks, special=False)
    assert max(sizes) <= 600
    paragraphs = text.split("\n\n")
    for piece in chunks:  # every chunk is whole paragraphs of the document
        assert all(p in paragraphs for p in piece.split("\n\n"))
    for before, after in zip(chunks, chunks[1:], strict=False):  # consecutive chunks overlap
        assert before.split("\n\n")[-1] == after.split("\n\n")[0]
    covered = {p for piece in chunks for p in piece.split("\n\n")}
    assert covered == set(paragraphs)  # nothing dropped


def test_a_giant_paragraph_is_split_too(smollm2_tokenizer):
    counter = SmolCounter(smollm2_tokenizer)
    chunks = chunk("word " * 3000, counter, room=500, overlap_tokens=0)
    sizes, _ = counter.count(chunks, special=False)
    assert len(chunks) >= 6 and max(sizes) <= 500


def test_merge_joins_lists_without_duplicates_and_takes_the_first_scalar_found():
    merged, notes = merge(
        [
            {"title": None, "attendees": ["Ann", "Omar"], "room": ""},
            {"title": "Budget review", "attendees": ["Omar", "Li"], "room": "B2"},
            {"title": "Other", "attendees": [], "room": "C1"},
        ]
    )
    assert merged == {"title": "Budget review", "attendees": ["Ann", "Omar", "Li"], "room": "B2"}
    assert notes == []


def test_merged_lists_keep_the_fields_bound_and_say_what_was_dropped():
    schema = {"properties": {"attendees": {"type": "array", "maxItems": 2}}}
    merged, notes = merge([{"attendees": ["Ann", "Omar"]}, {"attendees": ["Li"]}], schema)
    assert merged == {"attendees": ["Ann", "Omar"]}
    assert notes == [
        "attendees: the chunks found 3 items; the task keeps at most 2, so the last 1 were dropped"
    ]


class Meeting(BaseModel):
    title: str | None = Field(None, max_length=60, description="The meeting's title.")
    attendees: list[Annotated[str, Field(max_length=30)]] = Field(
        max_length=4, description="Names of people present (at most 4)."
    )


def meeting_task(policy: str, max_chunk_tokens: int | None = None) -> ExtractionTask:
    return ExtractionTask(
        name="meeting",
        instructions="Extract the meeting's attendees.",
        output_model=Meeting,
        max_output_tokens=200,
        long_documents=policy,
        max_chunk_tokens=max_chunk_tokens,
    )


@pytest.mark.slow
def test_an_over_long_document_is_an_error_naming_its_size_under_the_default_policy(
    sglang_server,
):
    task = meeting_task("error")
    extractor = Extractor(Target(sglang_server.url, "chatml"), task)
    assert extractor.context_length == 8192
    result = extractor.extract(0, from_text("long.txt", minutes(120)))
    assert result.status == "error"
    assert "more than the runtime's context of 8,192 tokens" in result.error
    assert "long.txt needs" in result.error and result.usage.prompt_tokens == 0  # never sent


def test_a_document_over_max_chunk_tokens_is_chunked_though_it_fits_the_context(
    smollm2_tokenizer,
):
    counter = SmolCounter(smollm2_tokenizer)
    prompt = task_prompt(meeting_task("chunk", max_chunk_tokens=300), "chatml")
    text = minutes(10)  # ~900 tokens: far within 8,192
    fitted = partial(fit, "m.txt", prompt=prompt, counter=counter, context=8192, output_tokens=200)
    chunks = fitted(text, policy="chunk", overlap_tokens=0, max_chunk_tokens=300)
    sizes, _ = counter.count(chunks, special=False)
    assert len(chunks) >= 3 and max(sizes) <= 300
    assert fitted(text, policy="chunk", overlap_tokens=0) == [text]  # no cap: it fits
    assert fitted(text, policy="error", overlap_tokens=0, max_chunk_tokens=300) == [text]


@pytest.mark.slow
def test_a_long_document_is_chunked_extracted_and_merged_under_the_chunk_policy(
    sglang_server, smollm2_tokenizer
):
    # Chunks of at most 700 tokens: the same path as a document over the runtime's context
    # (fit's room is the smaller of the two), without prefilling 8k-token chunks on a CPU.
    task = meeting_task("chunk", max_chunk_tokens=700)
    extractor = Extractor(Target(sglang_server.url, "chatml"), task)
    text = minutes(16)
    result = extractor.extract(0, from_text("long.txt", text))
    assert result.chunks >= 2, result.error
    document_tokens = len(smollm2_tokenizer(text, add_special_tokens=False)["input_ids"])
    assert result.usage.prompt_tokens > document_tokens  # all of it was read, in pieces
    assert result.to_json()["usage"]["chunks"] == result.chunks
    assert result.has_data, result.error  # ok, or needs_review if the chunks found > 4 names
    assert isinstance(result.data, Meeting)
    assert result.status == "ok" or any("the chunks found" in r for r in result.review)

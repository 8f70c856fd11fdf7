"""Copy fields on a task (#20): checked when the task is made, and on a real server every copy
field's value is a span of its own document while the prompt, its prefix and the other
constraints stay as they were."""

import json
from typing import Literal

import pytest
from pydantic import BaseModel, Field, model_validator

from forkpoint.errors import TaskError
from forkpoint.programs import extractor as extractor_module
from forkpoint.programs.copy_grammar import DocumentGrammars
from forkpoint.programs.documents.document import from_text
from forkpoint.programs.extractor import Extractor
from forkpoint.programs.prompt import task_prompt
from forkpoint.programs.target import Target
from forkpoint.programs.tasks.registry import builtin_tasks
from forkpoint.programs.tasks.task import ExtractionTask, schema_task

VERDICTS: list[bool] = []  # what the validator answers next: False fails once, as a check would


class Quote(BaseModel):
    speaker: str = Field(description="Who is quoted, as written.")
    organisation: str = Field(description="The speaker's organisation, as written.")
    said: list[str] = Field(max_length=2, description="Their words, copied exactly (at most 2).")
    tone: Literal["positive", "neutral", "negative"] = Field(description="How the words sound.")
    year: int | None = Field(None, ge=1900, le=2100, description="The year named, if any.")

    @model_validator(mode="after")
    def _scripted(self):
        if VERDICTS and not VERDICTS.pop(0):
            raise ValueError("name the speaker's organisation")
        return self


COPIED = ("speaker", "organisation", "said[]")
# Quotes, backslashes, tabs and newlines, accents, CJK, emoji: all that JSON escapes or passes.
DOCUMENTS = [
    'Dr. Zoë Ångström of Københavns Universitet said "the results are clear" in 2021.',
    'From: José Núñez, ACME "Tools" S.L.\nHe wrote: C:\\Users\\jose\\report.txt is "ready".',
    '李雷 (北京大学) wrote:\n"今天的会议很成功"\n— 2019',
    "Signed: Anne-Marie O'Neil\nO'Neil & Sons\t(est. 1952)\n\"Back\\slash\" is our motto.",
    "Grüße von Jürgen Weiß, Müller GmbH.\nEr sagte: „Das ist gut“ und „weiter so“.",
    'Post by Kim Lee (Seoul Robotics 🤖): "We \\ love \\"escapes\\"" #2024',
]


@pytest.fixture(autouse=True)
def no_verdicts_left():
    """A test that stops before its answers used up its VERDICTS leaves none to the next."""
    VERDICTS.clear()
    yield
    VERDICTS.clear()


def quote_task(**options) -> ExtractionTask:
    return ExtractionTask(
        name="quotes",
        instructions="Extract who is quoted, their organisation and what they said.",
        output_model=Quote,
        max_output_tokens=120,
        max_reasks=1,
        **options,
    )


# ---- in-process: the task's own checks ----


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("year", "'year' is an integer, not a string"),
        ("tone", "'tone' is a string with enum"),
        ("said", "'said' is an array, not a string"),
        ("speaker.name", "'speaker' has no property 'name'"),
        ("quotes[]", "the root has no property 'quotes'"),
    ],
)
def test_a_copy_field_that_is_not_a_plain_string_or_does_not_exist_is_a_task_error(path, says):
    with pytest.raises(TaskError) as raised:
        quote_task(copy_fields=(path,))
    assert raised.value.message.startswith("task 'quotes': copy field")
    assert says in raised.value.message


def test_string_properties_marked_in_an_inline_schema_become_copy_fields():
    schema = Quote.model_json_schema()
    schema["properties"]["speaker"]["x-forkpoint-copy"] = True
    schema["properties"]["said"]["items"]["x-forkpoint-copy"] = True
    task = schema_task(schema, "Extract the quote.", copy_fields=("organisation",))
    assert task.copy_fields == ("organisation", "speaker", "said[]")
    assert task.copy_grammar is not None and task.copy_grammar.copy_fields == task.copy_fields


@pytest.mark.parametrize(
    ("where", "mark", "says"),
    [
        ("year", True, "'year' is an integer, not a string"),
        ("speaker", "yes", "at /properties/speaker must be true"),
        (None, True, "at /additionalProperties marks no field"),
    ],
)
def test_a_mark_on_a_number_not_true_or_on_no_field_is_a_task_error(where, mark, says):
    schema = Quote.model_json_schema()
    if where is None:
        schema["additionalProperties"] = {"type": "string", "x-forkpoint-copy": mark}
    else:
        schema["properties"][where]["x-forkpoint-copy"] = mark
    with pytest.raises(TaskError, match=says):
        schema_task(schema, "Extract the quote.")


def test_copy_fields_leave_the_prompt_as_it_was():
    for chat_format in ("chatml", "mixtral-v1"):
        plain = task_prompt(quote_task(), chat_format)
        copied = task_prompt(quote_task(copy_fields=COPIED), chat_format)
        assert copied.prefix == plain.prefix
        assert copied.document_turn(DOCUMENTS[0]) == plain.document_turn(DOCUMENTS[0])


def test_document_grammars_are_built_once_per_document_and_bounded():
    grammar = quote_task(copy_fields=COPIED).copy_grammar
    assert grammar is not None
    grammars = DocumentGrammars(max_grammars=2)
    first, seconds = grammars.get(grammar, DOCUMENTS[0])
    assert seconds > 0 and grammars.get(grammar, DOCUMENTS[0]) == (first, 0.0)
    for document in DOCUMENTS[1:3]:
        grammars.get(grammar, document)
    assert len(grammars) == 2
    assert grammars.get(grammar, DOCUMENTS[0])[1] > 0  # dropped as least recently used


# ---- against a real SGLang server (cpu-small: SmolLM2-135M with NGRAM) ----


@pytest.fixture(autouse=True)
def own_grammar_cache(monkeypatch):
    """Each test starts with an empty document grammar cache (the process keeps one): whether a
    grammar is built or reused then depends on the test alone, not on what ran before it."""
    monkeypatch.setattr(extractor_module, "GRAMMARS", DocumentGrammars())


@pytest.fixture(scope="module")
def extractors(sglang_server):
    """The same task without and with copy fields, each warmed; every request's body kept."""
    made = {}
    for copy_fields in ((), COPIED):
        target = Target(sglang_server.url, sglang_server.profile.chat_format)
        extractor = Extractor(target, quote_task(copy_fields=copy_fields))
        extractor.warm()
        made[copy_fields] = extractor
    return made[()], made[COPIED]


@pytest.fixture
def sent(extractors):
    """The /generate bodies the copy-field extractor sends."""
    extractor = extractors[1]
    post, bodies = extractor.endpoint.client.http.post, []

    def recording(url, *, json, **options):
        bodies.append(json)
        return post(url, json=json, **options)

    extractor.endpoint.client.http.post = recording
    yield bodies
    extractor.endpoint.client.http.post = post


@pytest.mark.slow
def test_every_copy_field_is_a_span_of_its_document_and_the_answer_fits_the_model(extractors, sent):
    _, copying = extractors
    VERDICTS[:] = [False]  # the first document's first answer fails validation: it is re-asked
    results = [copying.extract(i, from_text(f"{i}.txt", d)) for i, d in enumerate(DOCUMENTS)]
    assert VERDICTS == [] and [r.attempts for r in results] == [2] + [1] * (len(DOCUMENTS) - 1)
    assert [r.status for r in results] == ["ok"] * len(DOCUMENTS), [r.error for r in results]
    for document, result in zip(DOCUMENTS, results, strict=True):
        quote = Quote.model_validate(result.json_data())
        assert quote.speaker in document and quote.speaker
        assert quote.organisation in document and quote.organisation
        assert all(words in document and words for words in quote.said)
        assert result.usage.grammar_seconds > 0
        assert result.usage.cached_tokens >= copying.prefix_tokens
    # Each document went out with its own grammar, the re-ask with its document's, each time
    # as SGLang's one constraint: `ebnf`, no `json_schema` or `regex` beside it.
    constraints = [body["sampling_params"] for body in sent]
    assert [("ebnf" in p, p.get("json_schema"), p.get("regex")) for p in constraints] == [
        (True, None, None)
    ] * (len(DOCUMENTS) + 1)
    assert constraints[0]["ebnf"] == constraints[1]["ebnf"]
    assert len({p["ebnf"] for p in constraints}) == len(DOCUMENTS)


@pytest.mark.slow
def test_copy_fields_read_the_same_cached_tokens_as_the_plain_task(extractors):
    plain, copying = extractors
    document = from_text("again.txt", DOCUMENTS[1])
    copying.extract(0, document)  # warm-up: the document's turn is in the radix cache now
    with_copy, without = copying.extract(0, document), plain.extract(0, document)
    assert with_copy.usage.prompt_tokens == without.usage.prompt_tokens
    assert with_copy.usage.cached_tokens == without.usage.cached_tokens
    assert with_copy.usage.cached_tokens > copying.prefix_tokens
    assert with_copy.usage.grammar_seconds == 0  # the grammar came from the cache


@pytest.mark.parametrize("task", builtin_tasks().values(), ids=builtin_tasks().keys())
def test_built_in_few_shot_answers_copy_their_copy_fields_from_their_documents(task):
    """An example answer that rewrites a copy field would teach what the grammar forbids (the
    grammar writes ", " and ": " between items, as SGLang's compact JSON does)."""
    from xgrammar.testing import _get_matcher_from_grammar

    assert task.copy_fields and task.copy_grammar is not None
    for example in task.examples:
        matcher = _get_matcher_from_grammar(task.copy_grammar.for_document(example.document))
        answer = json.dumps(json.loads(example.answer()), ensure_ascii=False)
        assert matcher.accept_string(answer) and matcher.is_terminated()

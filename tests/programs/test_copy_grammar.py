"""Copy fields (#20): a copy field's value can only be a span of its document, nothing else changes.

Checked in-process with xgrammar's own matcher over the EBNF that SGLang would receive.
"""

import json
import random
import time
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from xgrammar.testing import _get_matcher_from_grammar

from forkpoint.errors import DocumentError, TaskError
from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.programs.copy_grammar import CopyGrammar, copy_grammar, substring_rules


class LineItem(BaseModel):
    description: str
    quantity: int


class Address(BaseModel):
    street: str
    city: str


class Invoice(BaseModel):
    invoice_number: str = Field(max_length=40)
    vendor: str | None
    currency: Literal["EUR", "USD"]
    issue_date: date | None
    total: float
    line_items: list[LineItem]
    billing: Address
    shipping: Address


SCHEMA = Invoice.model_json_schema()
DOCUMENT = 'ACME "Tools" \\ GmbH\nInvoice no.\tINV-2024/007\nCafé crème ×2 — 3,50 €\n'


class Grammar:
    """One compiled grammar, asked about many complete answers."""

    def __init__(self, ebnf: str) -> None:
        self._matcher = _get_matcher_from_grammar(ebnf)

    def accepts(self, answer: str) -> bool:
        self._matcher.reset()
        return self._matcher.accept_string(answer) and self._matcher.is_terminated()


def invoice(**changes: Any) -> str:
    answer: dict[str, Any] = {
        "invoice_number": "INV-2024/007",
        "vendor": "ACME",
        "currency": "EUR",
        "issue_date": None,
        "total": 3.5,
        "line_items": [{"description": "Café crème", "quantity": 2}],
        "billing": {"street": "Tools", "city": "Bonn"},
        "shipping": {"street": "Side St 2", "city": "Köln"},
    }
    answer.update(changes)
    return json.dumps(answer, ensure_ascii=False)


@pytest.fixture(scope="module")
def invoices() -> Grammar:
    fields = ("invoice_number", "vendor", "line_items[].description", "billing.street")
    return Grammar(copy_grammar(SCHEMA, fields, DOCUMENT))


# A document alphabet weighted to what JSON must escape or pass through untouched.
TRICKY = '"\\\n\t\r\x00\x08\x0c\x1f\x7f/é€😀\u2028 aA1'
characters = st.one_of(st.sampled_from(TRICKY), st.characters())
ONE_FIELD = {"type": "object", "properties": {"value": {"type": "string"}}, "required": ["value"]}


def answer(value: str) -> str:
    return json.dumps({"value": value}, ensure_ascii=False)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    document=st.text(characters, min_size=1, max_size=24),
    others=st.lists(st.text(characters, min_size=1, max_size=6), max_size=20),
)
def test_every_substring_and_nothing_else_is_a_copy_value(document: str, others: list[str]):
    grammar = Grammar(copy_grammar(ONE_FIELD, ["value"], document))
    n = len(document)
    for span in {document[i:j] for i in range(n) for j in range(i + 1, n + 1)}:
        assert grammar.accepts(answer(span)), span
    near_misses = [document + document[:1], document[::-1], document[1:] + document[:1], ""]
    for other in others + near_misses:
        if other not in document or other == "":
            assert not grammar.accepts(answer(other)), other


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(document=st.text(characters, min_size=1, max_size=40), bound=st.integers(1, 24))
def test_a_copy_fields_max_length_bounds_its_span_while_decoding(document: str, bound: int):
    schema = {**ONE_FIELD, "properties": {"value": {"type": "string", "maxLength": bound}}}
    grammar = Grammar(copy_grammar(schema, ["value"], document))
    n = len(document)
    for span in {document[i:j] for i in range(n) for j in range(i + 1, n + 1)}:
        if len(span) > bound:
            assert not grammar.accepts(answer(span)), span
        elif len(span) <= bound - bound // 8:  # any span of up to 7/8 of the bound, anywhere
            assert grammar.accepts(answer(span)), span
    for other in [document[::-1], document + document[:1], "\x00" * (bound + 1)]:
        if other not in document:
            assert not grammar.accepts(answer(other)), other


class Contact(BaseModel):
    name: str = Field(max_length=80)
    phone: str | None = Field(None, max_length=20)


def test_a_copied_phone_number_cannot_run_on_past_its_max_length():
    signature = "Lucía Fernández\nAndes Textiles\n+51 1 555 7788 | lucia.fernandez@andes.pe\n"
    grammar = Grammar(copy_grammar(Contact.model_json_schema(), ["name", "phone"], signature))

    def contact(phone: str | None) -> str:
        return json.dumps({"name": "Lucía Fernández", "phone": phone}, ensure_ascii=False)

    assert grammar.accepts(contact("+51 1 555 7788"))
    assert grammar.accepts(contact(None))
    assert not grammar.accepts(contact("+51 1 555 7788 | lucia.f"))  # 23 characters
    assert grammar.accepts(contact("+51 1 555 7788 | l"))  # 18 = 20 - 20 // 8: possible anywhere


def test_the_windows_of_a_bounded_field_are_linear_in_the_document():
    document = "".join(chr(32 + (i * 7919) % 95) for i in range(4000))
    bounded = substring_rules(document, "value", max_length=80).splitlines()
    assert len(bounded) <= 2 * 8 * len(document) + 1  # 8 windows cover each character


def test_copy_fields_take_spans_of_the_document_anywhere_in_the_answer(invoices: Grammar):
    assert invoices.accepts(invoice())
    assert invoices.accepts(invoice(invoice_number="INV-2024/007\nCafé", vendor='"Tools" \\ G'))
    assert invoices.accepts(invoice(billing={"street": "\tINV", "city": "Bonn"}))
    assert not invoices.accepts(invoice(invoice_number="INV-2024/008"))
    assert not invoices.accepts(invoice(vendor="ACME Tools"))
    assert not invoices.accepts(invoice(billing={"street": "Main St 1", "city": "Bonn"}))


def test_every_line_item_description_is_copied(invoices: Grammar):
    two = [{"description": "Café crème", "quantity": 2}, {"description": "3,50 €", "quantity": 1}]
    assert invoices.accepts(invoice(line_items=two))
    assert invoices.accepts(invoice(line_items=[]))
    two[1]["description"] = "Espresso"
    assert not invoices.accepts(invoice(line_items=two))


def test_the_other_fields_keep_their_constraints(invoices: Grammar):
    assert invoices.accepts(invoice(vendor=None))  # str | None stays nullable
    assert invoices.accepts(invoice(issue_date="2024-03-01"))
    assert not invoices.accepts(invoice(issue_date="March 1st"))
    assert not invoices.accepts(invoice(currency="GBP"))
    assert not invoices.accepts(invoice(total="3.50"))
    assert not invoices.accepts(invoice(line_items=[{"description": "Café", "quantity": "2"}]))
    assert not invoices.accepts(invoice(line_items=[{"description": "Café", "quantity": 2.5}]))
    assert not invoices.accepts(invoice(invoice_number=None))
    assert not invoices.accepts(invoice()[:-1])
    assert not invoices.accepts(invoice(extra="ACME"))
    # Shipping refers to the same Address definition as billing, but only billing.street copies.
    assert invoices.accepts(invoice(shipping={"street": "nowhere at all", "city": "x"}))
    # xgrammar's any_whitespace, as SGLang compiles a schema, still holds around copy values.
    assert invoices.accepts(json.dumps(json.loads(invoice()), ensure_ascii=False, indent=2))


def test_values_are_written_as_json_dumps_writes_them():
    grammar = Grammar(copy_grammar(ONE_FIELD, ["value"], "é/\x01"))
    assert grammar.accepts('{"value": "é/\\u0001"}')
    assert not grammar.accepts('{"value": "\\u00e9"}')
    assert not grammar.accepts('{"value": "\\/"}')
    assert not grammar.accepts('{"value": "\x01"}')  # raw control characters are never JSON


def test_a_document_grammar_refuses_another_documents_values():
    copy = CopyGrammar.from_schema(ONE_FIELD, ["value"])
    first, second = Grammar(copy.for_document("alpha")), Grammar(copy.for_document("omega"))
    assert first.accepts(answer("alp")) and not first.accepts(answer("ome"))
    assert second.accepts(answer("ome")) and not second.accepts(answer("alp"))


def test_paths_reach_root_arrays_and_arrays_of_strings():
    rows = {"type": "array", "items": {"$ref": "#/$defs/Row"}}
    rows["$defs"] = {
        "Row": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {}}},
            "required": ["name", "tags"],
        }
    }
    rows["$defs"]["Row"]["properties"]["tags"]["items"] = {"type": "string"}
    grammar = Grammar(copy_grammar(rows, ["[].name", "[].tags[]"], "red fox"))
    assert grammar.accepts('[{"name": "fox", "tags": ["red", "d f"]}]')
    assert not grammar.accepts('[{"name": "cat", "tags": []}]')
    assert not grammar.accepts('[{"name": "fox", "tags": ["blue"]}]')


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("total", "'total' is a number, not a string"),
        ("line_items[].quantity", "'line_items[].quantity' is an integer, not a string"),
        ("issue_date", "is a date with format"),
        ("currency", "with enum"),
        ("billing", "is an object, not a string"),
    ],
)
def test_a_copy_field_that_is_not_a_free_string_is_an_error(path: str, says: str):
    with pytest.raises(TaskError, match="read, not copied") as error:
        CopyGrammar.from_schema(SCHEMA, [path])
    assert says in error.value.message


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("invoice_no", "the root has no property 'invoice_no'"),
        ("line_items[].price", "'line_items[]' has no property 'price'"),
        ("billing.zip", "'billing' has no property 'zip'"),
        ("vendor.name", "'vendor' has no property 'name'"),
        ("invoice_number[]", "'invoice_number' is not an array"),
        ("line_items.description", "'line_items' has no property 'description'"),
    ],
)
def test_a_copy_path_that_does_not_exist_is_an_error(path: str, says: str):
    with pytest.raises(TaskError) as error:
        CopyGrammar.from_schema(SCHEMA, [path])
    assert says in error.value.message


def test_an_unknown_property_error_names_the_ones_there_are():
    with pytest.raises(TaskError) as error:
        CopyGrammar.from_schema(SCHEMA, ["billing.zip"])
    assert error.value.hint == "its properties: street, city"


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a.", "a[", "a[0]", "a[]b", "[]x"])
def test_a_malformed_copy_path_is_an_error(path: str):
    with pytest.raises(TaskError, match="is not a field path"):
        CopyGrammar.from_schema(ONE_FIELD, [path])


def test_an_empty_document_is_an_error():
    with pytest.raises(DocumentError, match="empty"):
        copy_grammar(ONE_FIELD, ["value"], "")


def test_the_substring_grammar_is_linear_in_the_document():
    document = "".join(chr(32 + (i * 7919) % 95) for i in range(4000))
    rules = substring_rules(document, "value").splitlines()
    assert len(rules) <= 2 * len(document) + 1


def test_copy_fields_are_a_list_of_paths_not_one_string():
    with pytest.raises(TaskError, match="list of paths"):
        CopyGrammar.from_schema(ONE_FIELD, "value")  # type: ignore[arg-type]


def test_the_grammar_compiles_against_a_real_vocabulary(smollm2_tokenizer):
    import xgrammar

    info = xgrammar.TokenizerInfo.from_huggingface(smollm2_tokenizer)
    compiled = xgrammar.GrammarCompiler(info, max_threads=1).compile_grammar(
        copy_grammar(SCHEMA, ["invoice_number", "line_items[].description"], DOCUMENT)
    )
    matcher = xgrammar.GrammarMatcher(compiled, terminate_without_stop_token=True)
    assert matcher.accept_string(invoice(vendor=None)) and matcher.is_terminated()
    matcher.reset()  # compiled, the copy rules still hold: a number the document lacks is refused
    assert not matcher.accept_string(invoice(vendor=None, invoice_number="INV-2024/008"))


def test_a_long_document_copies_any_span_and_leaves_max_length_to_validation():
    """Windows cost more than linear compile time, so past WINDOW_BUDGET a bounded field takes
    any span of the document; its maxLength is then checked when the answer is validated."""
    from forkpoint.programs.copy_grammar import WINDOW_BUDGET

    schema = {**ONE_FIELD, "properties": {"value": {"type": "string", "maxLength": 4}}}
    short = "abcdefghij" * 10
    assert not Grammar(copy_grammar(schema, ["value"], short)).accepts(answer(short[:5]))
    long = "".join(chr(65 + (i * 7) % 26) for i in range(WINDOW_BUDGET // 8 + 1))
    grammar = Grammar(copy_grammar(schema, ["value"], long))
    assert grammar.accepts(answer(long[:5])) and grammar.accepts(answer(long[100:160]))
    assert not grammar.accepts(answer("not in it"))


def test_no_copy_grammar_is_built_for_a_text_over_the_copy_limit():
    """A 200k-character document's copy grammar would be ~12 MB of EBNF, built with the GIL held
    and compiled by SGLang per document: past MAX_COPY_TEXT_CHARS the text decodes with the
    plain schema (and its values are grounded after), a text at the limit still gets one."""
    from forkpoint.programs.copy_grammar import MAX_COPY_TEXT_CHARS, DocumentGrammars

    grammar = CopyGrammar.from_schema(ONE_FIELD, ["value"])
    grammars = DocumentGrammars()
    assert grammars.get(grammar, "a" * (MAX_COPY_TEXT_CHARS + 1)) == (None, 0.0)
    at_limit, _ = grammars.get(grammar, "ab" * (MAX_COPY_TEXT_CHARS // 2))
    assert at_limit is not None and "fkcopy0_value" in at_limit
    assert len(grammars) == 1


SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def real_documents() -> list[str]:
    """The labelled samples (mail signatures, tickets, invoices: accents, quotes, tabs, CRLF),
    two of the bench's generated invoices, and documents made of what JSON must escape."""
    documents = [path.read_text() for path in sorted(SAMPLES.glob("*/*.*")) if path.is_file()]
    documents = [text for text in documents if text.strip()]
    documents += [text for _, text in generate(CorpusSpec(2, 300, 600, seed=1))]
    documents += [
        'say "hi" \\ "bye"\r\n\ttab\\n not a newline \\u00e9 é ü 😀 \u2028\x00\x1f\x7f',
        '\\\\"\\"' * 8,
        "aaaaaaaaab" * 12 + "\n\n\n" + "ab" * 30,
    ]
    return documents


def spans_and_others(document: str, rng: random.Random, count: int) -> tuple[set, set]:
    """`count` random spans of `document` (short ones, long ones, lines, the whole), and strings
    close to spans that are not in it: one character changed, dropped or added, two spans
    joined, a span reversed, JSON's other spelling of a character."""
    n = len(document)
    spans = {document, document[:1], document[-1:]}
    spans |= {line for line in document.splitlines() if line}
    for _ in range(count):
        start = rng.randrange(n)
        length = rng.choice([1, 2, 3, rng.randint(1, 12), rng.randint(1, 80), rng.randint(1, n)])
        spans.add(document[start : start + length])
    alphabet = sorted(set(document)) + ['"', "\\", "\n", "x", "é", "\x01", "😀"]
    others: set[str] = set()
    for span in sorted(spans)[: 4 * count]:
        i = rng.randrange(len(span))
        others.add(span[:i] + rng.choice(alphabet) + span[i + 1 :])
        others.add(span[:i] + span[i + 1 :])
        others.add(span[:i] + rng.choice(alphabet) + span[i:])
        others.add(span + rng.choice(sorted(spans)))
        others.add(span[::-1])
    return spans, {other for other in others if other and other not in document}


def test_copy_values_are_exactly_the_spans_of_real_documents():
    """The EBNF emitted for real text (samples, bench invoices) takes every sampled span and
    refuses every near miss, through xgrammar's own matcher, for both an unbounded field and
    one whose maxLength leaves the whole document as one span."""
    rng = random.Random(29)
    for document in real_documents():
        spans, others = spans_and_others(document, rng, count=60)
        assert len(others) > 20
        for schema in (ONE_FIELD, bounded_by(len(document))):
            grammar = Grammar(copy_grammar(schema, ["value"], document))
            refused = [span for span in spans if not grammar.accepts(answer(span))]
            assert not refused, refused[:3]
            taken = [other for other in others if grammar.accepts(answer(other))]
            assert not taken, taken[:3]


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(document=st.text(characters, min_size=1, max_size=300), seed=st.integers(0, 2**16))
def test_copy_values_are_exactly_the_spans_of_random_documents(document: str, seed: int):
    spans, others = spans_and_others(document, random.Random(seed), count=40)
    grammar = Grammar(copy_grammar(ONE_FIELD, ["value"], document))
    for span in spans:
        assert grammar.accepts(answer(span)), span
    for other in others:
        assert not grammar.accepts(answer(other)), other


def bounded_by(bound: int) -> dict[str, Any]:
    return {**ONE_FIELD, "properties": {"value": {"type": "string", "maxLength": bound}}}


def test_a_copy_grammar_is_small_per_document_character():
    """The EBNF crosses the wire with every request and is parsed by SGLang per document: about
    1.6 automaton states per character, at most ~30 bytes each (short rule names, the quote
    and each character's literal written once per state)."""
    for document in real_documents()[-5:-3]:
        ebnf = CopyGrammar.from_schema(ONE_FIELD, ["value"]).for_document(document)
        size = len(ebnf.encode()) - len(CopyGrammar.from_schema(ONE_FIELD, ["value"]).base_ebnf)
        assert size < 55 * len(document)


def test_a_long_documents_grammar_is_built_by_a_worker_process_with_the_same_text():
    """Off the caller's GIL: a document of WORKER_MIN_CHARS or more is built by a worker
    process (its CPU counted), the text the caller would have built; while the worker starts,
    and when it has been killed, the grammar is built in place, so no document goes without
    one; a killed worker is replaced."""
    import psutil

    from forkpoint.programs.copy_grammar import WORKER_MIN_CHARS
    from forkpoint.programs.grammar_workers import GrammarWorkers

    grammar = CopyGrammar.from_schema(ONE_FIELD, ["value"])
    invoices = [text for _, text in generate(CorpusSpec(3, 400, 600, 3))]
    assert all(len(text) >= WORKER_MIN_CHARS for text in invoices)
    others = {p.pid for p in psutil.Process().children()}  # the process's own WORKERS

    def children() -> list[psutil.Process]:
        return [p for p in psutil.Process().children() if p.pid not in others]

    workers = GrammarWorkers(workers=1)
    try:
        assert workers.build(grammar, invoices[0]) == grammar.for_document(invoices[0])
        for _ in range(600):  # the first build starts the worker, in place meanwhile
            if workers.cpu_seconds > 0:
                break
            assert workers.build(grammar, invoices[1]) == grammar.for_document(invoices[1])
            time.sleep(0.05)
        assert workers.cpu_seconds > 0
        [child] = children()
        assert "forkpoint.programs.grammar_workers" in child.cmdline()
        child.kill()
        child.wait(timeout=10)
        assert workers.build(grammar, invoices[2]) == grammar.for_document(invoices[2])
        spent = workers.cpu_seconds
        for _ in range(600):  # a new worker
            if workers.cpu_seconds > spent:
                break
            assert workers.build(grammar, invoices[2]) == grammar.for_document(invoices[2])
            time.sleep(0.05)
        [replaced] = children()
        assert replaced.pid != child.pid
    finally:
        workers.close()

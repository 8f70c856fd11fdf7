"""Confidence per field, the pure parts: values found in the answer's text, tokens aligned to
characters, the joint probability, chunk merging, review thresholds, AUROC and bins."""

import math

import pytest

from forkpoint.errors import TaskError
from forkpoint.programs.confidence import (
    confidences,
    field_confidence,
    merge_chunks,
    threshold,
    token_spans,
    unsure,
    value_spans,
)
from forkpoint.programs.evaluation.calibration import auroc, bins, calibration
from forkpoint.programs.tasks.spec import TaskSpec
from forkpoint.programs.tasks.task import ExtractionTask

RAW = '{"vendor":"Acme","total":12.5,"paid":true,"due":null,"items":[{"d":"x"},{"d":""}]}'


def spans_by_path(raw):
    return {path: raw[start:end] for path, start, end in value_spans(raw)}


def test_value_spans_cover_a_strings_characters_and_closing_quote_and_what_ends_a_number():
    assert spans_by_path(RAW) == {
        "vendor": 'Acme"',
        "total": "12.5,",
        "paid": "true",
        "due": "null",
        "items[0].d": 'x"',
        "items[1].d": '"',
    }


def test_value_spans_read_whitespace_and_escapes():
    raw = '{ "a" : "say \\"hi\\"" ,\n "b" : [ 1 , -2e3 ] }'
    assert spans_by_path(raw) == {"a": 'say \\"hi\\""', "b[0]": "1 ", "b[1]": "-2e3 "}


def test_value_spans_refuse_text_that_is_not_json():
    with pytest.raises(ValueError):
        value_spans('{"a":')


def test_token_spans_follow_clean_tokens_exactly():
    texts = [
        '{"',
        "vendor",
        '":"',
        "Ac",
        "me",
        '","',
        "total",
        '":',
        "12",
        ".",
        "5",
        "}",
        "<|im_end|>",
    ]
    raw = '{"vendor":"Acme","total":12.5}'
    spans = token_spans(raw, texts)
    assert [raw[a:b] for a, b in spans[:-1]] == texts[:-1]
    assert spans[-1] is None  # past the end of the answer


def test_token_spans_give_a_multibyte_characters_pieces_the_characters_they_share():
    raw = '{"a":"é!"}'
    texts = ['{"', "a", '":"', "\ufffd", "\ufffd", '!"', "}"]
    spans = token_spans(raw, texts)
    assert spans[3] == spans[4] == (6, 7)  # both pieces of "é"
    assert raw[slice(*spans[5])] == '!"'


def test_token_spans_give_a_dropped_leading_space_to_the_token_after_it():
    raw = '{"a":"New York"}'
    texts = ['{"', "a", '":"', "New", "York", '"}']  # sentencepiece decodes "▁York" as "York"
    spans = token_spans(raw, texts)
    assert raw[slice(*spans[4])] == " York"


def test_token_spans_are_none_when_the_tokens_do_not_spell_the_text():
    assert token_spans('{"a":"b"}', ['{"', "x", '":"b"}']) is None


def test_token_spans_spell_an_answer_as_smollm2_decodes_it_token_by_token(smollm2_tokenizer):
    raw = '{"vendor":"Café Ünïcode GmbH","total":1234.5,"lines":[{"d":"日本語 ok"}]}'
    ids = smollm2_tokenizer.encode(raw, add_special_tokens=False)
    texts = smollm2_tokenizer.batch_decode([[i] for i in ids])  # as SGLang's tokenizer manager
    spans = token_spans(raw, texts)
    assert spans[0][0] == 0 and spans[-1][1] == len(raw)
    assert all(a <= b for a, b in spans)


def test_a_values_confidence_is_the_joint_probability_of_its_tokens():
    tokens = [
        (0.0, 1, '{"'),
        (0.0, 2, "vendor"),
        (0.0, 3, '":"'),
        (math.log(0.9), 4, "Ac"),
        (math.log(0.5), 5, "me"),
        (math.log(0.8), 6, '","'),  # ends the string: part of the value
        (0.0, 7, "total"),
        (0.0, 8, '":'),
        (math.log(0.6), 9, "12"),
        (math.log(0.7), 10, "}"),  # ends the number
        (math.log(0.1), 11, "<|im_end|>"),
    ]
    found = confidences('{"vendor":"Acme","total":12}', tokens)
    assert found == {"vendor": round(0.9 * 0.5 * 0.8, 4), "total": round(0.6 * 0.7, 4)}


def test_forced_tokens_do_not_lower_a_confidence():
    tokens = [(math.log(0.3), 1, '{"a":'), (0.0, 2, "true"), (0.0, 3, "}")]
    assert confidences('{"a":true}', tokens) == {"a": 1.0}


def test_no_logprobs_or_tokens_that_do_not_align_give_no_confidence():
    assert confidences('{"a":1}', None) is None
    assert confidences('{"a":1}', [(0.0, 1, "nonsense")]) is None


def test_merged_chunks_take_each_value_from_the_first_chunk_that_wrote_it():
    first = ({"vendor": None, "items": [{"d": "a"}]}, {"vendor": 0.99, "items[0].d": 0.5})
    second = ({"vendor": "Acme", "items": [{"d": "b"}]}, {"vendor": 0.7, "items[0].d": 0.6})
    merged = {"vendor": "Acme", "items": [{"d": "a"}, {"d": "b"}]}
    assert merge_chunks(merged, [first, second]) == {
        "vendor": 0.7,
        "items[0].d": 0.5,
        "items[1].d": 0.6,
    }
    assert merge_chunks(merged, [(first[0], None)]) is None


def test_a_threshold_applies_to_every_value_or_to_the_fields_named():
    assert threshold(0.6, "items[3].d") == 0.6
    named = {"total": 0.8, "items": 0.5}
    assert threshold(named, "total") == 0.8
    assert threshold(named, "items[3].d") == 0.5
    assert threshold(named, "vendor") is None
    assert threshold(None, "total") is None


def test_unsure_values_are_named_with_their_confidence():
    data = {"vendor": "Acme", "total": 12.5}
    reasons = unsure(data, {"vendor": 0.99, "total": 0.41}, 0.6)
    assert reasons == ["total = 12.5 has confidence 0.41, under 0.6"]
    assert unsure(data, {"vendor": 0.1}, None) == []


def test_a_fields_confidence_is_the_product_of_its_values():
    confidence = {"items[0].d": 0.5, "items[1].d": 0.4, "item": 0.9, "total": 0.8}
    assert field_confidence(confidence, "items") == pytest.approx(0.2)
    assert field_confidence(confidence, "total") == 0.8
    assert field_confidence(confidence, "vendor") is None


def test_auroc_is_one_when_every_right_value_is_surer_than_every_wrong_one():
    assert auroc([(0.9, True), (0.8, True), (0.2, False), (0.1, False)]) == 1.0
    assert auroc([(0.9, False), (0.1, True)]) == 0.0


def test_auroc_counts_ties_half_and_matches_the_pair_count():
    points = [(0.5, True), (0.5, False), (0.7, True), (0.3, False), (0.6, False)]
    # pairs (right, wrong): 0.5>0.5 tie .5, 0.5>0.3 1, 0.5>0.6 0; 0.7 beats all three: 3
    assert auroc(points) == pytest.approx(4.5 / 6)


def test_auroc_needs_both_right_and_wrong_values():
    assert auroc([(0.5, True)]) is None
    assert auroc([]) is None


def test_bins_count_values_and_put_one_in_the_last_bin():
    points = [(0.1, False), (0.5, True), (0.79, False), (0.9, True), (1.0, True), (0.95, False)]
    assert [(b.values, b.right) for b in bins(points)] == [(1, 0), (2, 1), (1, 1), (2, 1)]
    section = calibration(points)
    assert section["bins"][-1] == {"bin": "[0.95, 1]", "values": 2, "right": 1, "accuracy": 0.5}
    assert section["values"] == 6 and section["right"] == 3


def test_review_below_must_be_a_probability():
    with pytest.raises(TaskError, match="review_below"):
        ExtractionTask(name="t", instructions="x", json_schema={"type": "object"}, review_below=1.5)
    with pytest.raises(TaskError, match="'total'"):
        ExtractionTask(
            name="t", instructions="x", json_schema={"type": "object"}, review_below={"total": -1}
        )


def test_review_below_travels_in_a_task_spec_and_off_leaves_the_key_unchanged():
    task = ExtractionTask(
        name="t", instructions="x", json_schema={"type": "object"}, review_below={"a": 0.5}
    )
    spec = TaskSpec.from_task(task)
    assert spec.to_task().review_below == {"a": 0.5}
    off = TaskSpec.from_task(
        ExtractionTask(name="t", instructions="x", json_schema={"type": "object"})
    )
    assert "review_below" not in off.model_dump_json(by_alias=True, exclude={"review_below"})
    assert off.key != spec.key
    assert (
        off.key
        == TaskSpec.model_validate(
            {k: v for k, v in off.model_dump(by_alias=True).items() if k != "review_below"}
        ).key
    )

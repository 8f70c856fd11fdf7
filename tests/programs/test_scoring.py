"""The metric arithmetic of `forkpoint eval`, on hand-made cases."""

import pytest

from forkpoint.programs.evaluation.scoring import (
    FieldScore,
    match_items,
    normalized_match,
    paired_difference,
    score_fields,
)


@pytest.mark.parametrize(
    ("expected", "got"),
    [
        ("ACME  Ltd", "acme ltd"),
        (" Café Lumière", "café lumière "),
        (1234.0, "1,234.00"),
        (12, 12.0),
        ("2026-03-02", "2 Mar 2026"),
        ("2026-03-02", "March 2, 2026"),
        (None, None),
        ({"description": "Tea ", "amount": 2}, {"description": "tea", "amount": 2.0}),
    ],
)
def test_normalized_matches_forgive_case_spacing_number_and_date_formats(expected, got):
    assert normalized_match(expected, got)


@pytest.mark.parametrize(
    ("expected", "got"),
    [("ACME Ltd", "ACME Inc"), (12.5, 12.0), ("2026-03-02", "2026-02-03"), (None, ""), ("x", None)],
)
def test_normalized_matches_still_catch_wrong_values(expected, got):
    assert not normalized_match(expected, got)


def test_exact_and_normalized_accuracy_are_counted_separately():
    score = FieldScore()
    score.add("ACME Ltd", "ACME Ltd")  # exact and normalized
    score.add("ACME Ltd", "acme ltd")  # normalized only
    score.add("ACME Ltd", "Umbrella")  # neither
    score.add("ACME Ltd", "ACME Ltd")
    assert score.exact_accuracy == 0.5
    assert score.normalized_accuracy == 0.75


def test_list_items_are_matched_one_to_one_for_precision_recall_and_f1():
    assert match_items(["a", "b", "c"], ["B", "a", "d", "a"]) == (2, 2, 1)
    score = FieldScore()
    score.add(["a", "b", "c"], ["B", "a", "d", "a"])  # tp 2, fp 2, fn 1
    score.add(["x"], [])  # fn 1
    assert (score.tp, score.fp, score.fn) == (2, 2, 2)
    assert score.precision == 0.5
    assert score.recall == 0.5
    assert score.f1 == 0.5
    assert score.is_list


def test_a_failed_document_misses_every_field_even_expected_nulls():
    scores = score_fields(
        ["name", "email", "tags"],
        [
            (
                {"name": "Ann", "email": None, "tags": ["x"]},
                {"name": "Ann", "email": None, "tags": ["x"]},
            ),
            ({"name": "Bob", "email": None, "tags": ["y"]}, None),
        ],
    )
    assert scores["name"].normalized_accuracy == 0.5
    assert scores["email"].normalized_accuracy == 0.5
    assert (scores["tags"].tp, scores["tags"].fn) == (1, 1)


def test_a_field_missing_from_the_output_counts_as_null():
    scores = score_fields(["city"], [({"city": None}, {}), ({"city": "Oslo"}, {})])
    assert scores["city"].outcomes == [True, False]


def test_paired_comparison_uses_only_documents_where_the_variants_disagree():
    a = [True, True, False, True, False, True, True, True]
    b = [True, True, True, True, True, True, True, True]
    only_a, only_b, p = paired_difference(a, b)
    assert (only_a, only_b) == (0, 2)
    assert p == pytest.approx(0.5)  # 2 discordant pairs: far from significant
    assert paired_difference([True] * 5, [True] * 5) == (0, 0, 1.0)


def test_a_consistent_improvement_on_many_documents_is_significant():
    a = [False] * 12 + [True] * 8
    b = [True] * 20
    _, _, p = paired_difference(a, b)
    assert p < 0.001  # 12 of 12 discordant pairs favour b: 2 × 0.5^12

"""Grounding: every extracted string is found in the document (exactly or normalized) or flagged."""

from forkpoint.programs.grounding import ground, ungrounded_required

DOCUMENT = "INVOICE  INV-2041\nSeller: Brightwater   Ltd\nPumps, stainless\t 2 x 500.00\n"


def by_path(found):
    return {item.path: item for item in found}


def test_an_exact_value_is_found_with_its_span():
    [item] = ground({"invoice_number": "INV-2041"}, DOCUMENT)
    assert (item.match, item.span) == ("exact", (9, 17))
    assert DOCUMENT[9:17] == "INV-2041"


def test_case_and_whitespace_differences_still_ground_and_the_span_covers_the_original():
    [item] = ground({"vendor": "brightwater ltd"}, DOCUMENT)
    assert item.match == "normalized"
    start, end = item.span
    assert DOCUMENT[start:end] == "Brightwater   Ltd"


def test_nested_lists_get_paths_and_a_hallucinated_value_is_not_grounded():
    data = {
        "vendor": "Brightwater Ltd",
        "line_items": [{"description": "Pumps, stainless"}, {"description": "Valves, brass"}],
        "total": 1000.0,  # numbers are not looked up: only strings
    }
    found = by_path(ground(data, DOCUMENT))
    assert set(found) == {"vendor", "line_items[0].description", "line_items[1].description"}
    assert found["line_items[0].description"].grounded
    assert not found["line_items[1].description"].grounded
    assert found["line_items[1].description"].span is None


def test_required_grounded_fields_name_what_is_missing():
    data = {"vendor": "Acme Corp", "line_items": [{"description": "Valves, brass"}]}
    reasons = ungrounded_required(ground(data, DOCUMENT), ("vendor", "line_items[].description"))
    assert reasons == [
        "vendor = 'Acme Corp' does not occur in the document",
        "line_items[0].description = 'Valves, brass' does not occur in the document",
    ]
    assert ungrounded_required(ground(data, DOCUMENT), ()) == []


def test_empty_strings_are_not_reported():
    assert ground({"note": "  "}, DOCUMENT) == []

"""Real-world schemas at the gateway (#18 item 13): keywords xgrammar ignores while decoding are
accepted with a warning and checked after; `"strict": true` refuses them; what xgrammar cannot
compile stays a 422. No runtime needed: jobs stay queued (start_workers=False)."""

import pytest

# Two schemas from JSONSchemaBench (guidance-ai/jsonschemabench@ba103c7, data/<name>.json), as
# published, that the gateway refused before: a pattern with a length bound, and a price in cents.
KEY = {  # Github_trivial/o10018
    "additionalProperties": False,
    "properties": {"key": {"maxLength": 12, "pattern": "^[a-zA-Z0-9_\\.]+$", "type": "string"}},
    "required": ["key"],
    "title": "ExtractRequest",
    "type": "object",
}
PRODUCT = {  # Snowplow/sp_50_Normalized, shortened to three of its eleven properties
    "additionalProperties": False,
    "description": "Schema for a Google Analytics enhanced e-commerce product entity",
    "properties": {
        "name": {"maxLength": 500, "type": ["string", "null"]},
        "index": {"maximum": 200, "minimum": 1, "type": "integer"},
        "price": {"multipleOf": 0.01, "type": ["number", "null"]},
    },
    "type": "object",
}
DOCS = [{"name": "a.txt", "text": "Blue mug, 12.50 EUR"}]


@pytest.mark.parametrize(
    ("schema", "warning"),
    [
        (
            KEY,
            "/properties/key: maxLength is not enforced while decoding (xgrammar enforces only "
            "the pattern of this string); checked after",
        ),
        (PRODUCT, "/properties/price: multipleOf is not enforced while decoding; checked after"),
    ],
    ids=["pattern+maxLength", "multipleOf"],
)
def test_a_schema_with_keywords_decoding_ignores_is_accepted_with_a_warning(
    make_client, schema, warning
):
    client = make_client()
    checked = client.post("/v1/schemas/check", json={"schema": schema})
    assert checked.status_code == 200
    assert warning in checked.json()["warnings"]
    job = client.post("/v1/jobs", json={"schema": schema, "documents": DOCS})
    assert job.status_code == 202
    assert [j["id"] for j in client.get("/v1/jobs").json()] == [job.json()["id"]]


def test_strict_refuses_them_with_the_keyword_and_where_and_accepts_nothing(make_client):
    client = make_client()
    strict = {"schema": PRODUCT, "strict": True}
    checked = client.post("/v1/schemas/check", json=strict)
    assert checked.status_code == 422
    assert checked.json()["kind"] == "SchemaError"
    assert checked.json()["error"] == (
        "xgrammar cannot enforce this schema: /properties/price: multipleOf is not enforced "
        "while decoding"
    )
    assert "leave out strict" in checked.json()["hint"]
    job = client.post("/v1/jobs", json={**strict, "documents": DOCS})
    assert (job.status_code, job.json()["kind"]) == (422, "SchemaError")
    extract = client.post("/v1/extract", json={**strict, "document": "Blue mug, 12.50 EUR"})
    assert (extract.status_code, extract.json()["kind"]) == (422, "SchemaError")
    assert client.get("/v1/jobs").json() == []
    bounded = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 9}}}
    assert client.post("/v1/schemas/check", json={"schema": bounded, "strict": True}).is_success


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ({"type": "array", "items": {"type": "integer"}, "minItems": 5, "maxItems": 2}, "5 > 2"),
        ({"type": "string", "pattern": "a\u0000b"}, "must not contain null characters"),
    ],
    ids=["minItems>maxItems", "nul-in-pattern"],
)
def test_a_schema_xgrammar_cannot_compile_is_still_422(make_client, schema, reason):
    client = make_client()
    checked = client.post("/v1/schemas/check", json={"schema": schema})
    assert checked.status_code == 422
    assert reason in checked.json()["error"]
    job = client.post("/v1/jobs", json={"schema": schema, "documents": DOCS})
    assert job.status_code == 422
    assert client.get("/v1/jobs").json() == []

"""Hostile input answers 4xx or becomes a document's error, never 500: deeply nested JSON in
every body and field that takes JSON, and the bad files of tests/conftest.py uploaded as jobs."""

import pytest

JSON = {"content-type": "application/json"}
DEEP = "[" * 100_000
GOOD = ("files", ("good.txt", b"Ann Lee", "text/plain"))


def nested_schema(levels: int) -> str:
    """An object schema `levels` objects deep: valid, but deeper than its checks can recurse."""
    inner = '{"type": "string"}'
    for _ in range(levels):
        inner = f'{{"type": "object", "properties": {{"a": {inner}}}}}'
    return inner


def assert_refused(response, *words: str) -> None:
    """422 saying the JSON is too deep: in forkpoint's words, or in pydantic's (a job's JSON body
    is parsed by pydantic, which stops at 200 levels)."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["kind"] in ("RequestError", "SchemaError")
    assert all(word in body["error"] for word in words), body["error"]
    assert any(why in body["error"] for why in ("nested too deeply", "recursion limit exceeded"))


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/extract", "/v1/schemas/check"])
def test_a_deeply_nested_json_body_is_422(make_client, path):
    assert_refused(make_client().post(path, content=DEEP, headers=JSON))


def test_a_deeply_nested_schema_field_of_a_multipart_job_is_422(make_client):
    response = make_client().post("/v1/jobs", data={"schema": DEEP}, files=[GOOD])
    assert_refused(response, "schema")


@pytest.mark.parametrize("levels", [40, 150, 1000])
def test_an_inline_schema_nested_too_deeply_is_422_everywhere(make_client, levels):
    client, schema = make_client(), nested_schema(levels)
    documents = '[{"name": "a.txt", "text": "Ann"}]'
    bodies = {
        "/v1/jobs": f'{{"schema": {schema}, "documents": {documents}}}',
        "/v1/extract": f'{{"schema": {schema}, "document": "Ann"}}',
        "/v1/schemas/check": f'{{"schema": {schema}}}',
    }
    for path, body in bodies.items():
        assert_refused(client.post(path, content=body, headers=JSON))
    multipart = client.post("/v1/jobs", data={"schema": schema}, files=[GOOD])
    assert_refused(multipart)


def test_a_hostile_upload_is_its_own_error_document(make_client, bad_file):
    name, raw, reason = bad_file
    client = make_client()
    response = client.post(
        "/v1/jobs", data={"task": "contacts"}, files=[("files", (name, raw, "x/y")), GOOD]
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["total"] == 2 and job["failed"] == 1
    results = client.get(f"/v1/jobs/{job['id']}/results", params={"wait": "false"}).text
    assert name in results and reason in results  # the bad file is document 0: already final


def test_one_ten_megabyte_line_is_over_the_character_limit_and_refused_cleanly(make_client):
    client = make_client()
    line = ("files", ("line.txt", b"x" * 10_000_000, "text/plain"))
    response = client.post("/v1/jobs", data={"task": "contacts"}, files=[line])
    assert response.status_code == 422
    assert "line.txt has 10000000 characters; the limit is 200000" in response.json()["error"]

"""OpenAI batches on the gateway, without a runtime (the workers do not start): a file that
cannot be read as requests fails validation with each line's fault, what forkpoint cannot honour
is that line's error, cancel keeps what is finished, and another key sees nothing. Driven by the
real `openai` package over the in-process app."""

import json

import openai
import pytest
from openai_client import openai_client

ENDPOINT = "/v1/chat/completions"
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def body(document: str = "Ann lives in Oslo.", **changes) -> dict:
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Extract the name."},
            {"role": "user", "content": document},
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMA}},
        **changes,
    }


def line(custom_id: str, request: dict | None = None, **fields) -> str:
    return json.dumps(
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": ENDPOINT,
            "body": request or body(),
            **fields,
        }
    )


@pytest.fixture
def gateway(make_client):
    return make_client(api_keys=["team-a", "team-b"])


def client(gateway, key: str = "team-a") -> openai.OpenAI:
    return openai_client(gateway, key)


def create(gateway, lines: list[str], key: str = "team-a", **options):
    api = client(gateway, key)
    uploaded = api.files.create(file=("in.jsonl", "\n".join(lines).encode()), purpose="batch")
    return api.batches.create(
        input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h", **options
    )


def test_a_file_that_is_not_requests_fails_validation_with_every_fault_and_its_line(gateway):
    bad_schema = body(
        response_format={
            "type": "json_schema",
            "json_schema": {
                "schema": {"type": "object", "properties": {"a": {"$ref": "#/$defs/none"}}}
            },
        }
    )
    batch = create(
        gateway,
        [
            line("a"),
            "{not json",
            line("a"),  # a custom_id used twice
            line("c", url="/v1/embeddings"),
            json.dumps({"custom_id": "d", "method": "POST", "url": ENDPOINT}),
            line("e", bad_schema),
        ],
    )
    assert batch.status == "failed"
    faults = [(e.line, e.code) for e in batch.errors.data]
    assert faults == [
        (2, "invalid_json_line"),
        (3, "duplicate_custom_id"),
        (4, "mismatched_endpoint"),
        (5, "missing_body"),
        (6, "invalid_schema"),
    ]
    assert "none" in batch.errors.data[-1].message
    assert client(gateway).batches.retrieve(batch.id).status == "failed"  # stored as it was


def test_what_forkpoint_cannot_honour_is_that_lines_error_and_cancel_keeps_it(gateway):
    tools = body(tools=[{"type": "function", "function": {"name": "f"}}])
    batch = create(gateway, [line("ok-1"), line("tools", tools), line("ok-2", body("Bo."))])
    assert batch.status == "in_progress"
    assert batch.request_counts.total == 3 and batch.request_counts.failed == 1
    assert batch.model_extra["forkpoint"]["groups"] == 1

    api = client(gateway)
    cancelled = api.batches.cancel(batch.id)
    assert cancelled.status == "cancelled"  # no worker holds a line: settled at once
    assert cancelled.output_file_id is None  # no line was answered
    [error] = [json.loads(x) for x in api.files.content(cancelled.error_file_id).text.splitlines()]
    assert error["custom_id"] == "tools" and error["response"]["status_code"] == 400
    assert "tools" in error["response"]["body"]["error"]["message"]
    with pytest.raises(openai.ConflictError):
        api.batches.cancel(batch.id)


def test_another_key_sees_no_batch_and_cannot_cancel_one(gateway):
    batch = create(gateway, [line("a")])
    other = client(gateway, "team-b")
    with pytest.raises(openai.NotFoundError):
        other.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        other.batches.cancel(batch.id)
    assert list(other.batches.list()) == []
    assert client(gateway).batches.retrieve(batch.id).status == "in_progress"


def test_batches_list_newest_first_in_pages(gateway):
    made = [create(gateway, [line("a")]).id for _ in range(3)]
    api = client(gateway)
    first = api.batches.list(limit=2)
    assert [b.id for b in first.data] == made[::-1][:2] and first.has_more
    assert [b.id for b in api.batches.list(limit=2, after=first.data[-1].id).data] == made[:1]
    assert [b.id for b in api.batches.list()] == made[::-1]  # the page iterator follows `after`


def test_a_model_the_gateway_does_not_list_is_that_lines_error(make_client):
    gateway = make_client(models=["smollm2"])
    batch = create(gateway, [line("a", body(model="smollm2")), line("b")])
    assert batch.status == "in_progress" and batch.request_counts.failed == 1
    assert [m.id for m in client(gateway).models.list()] == ["smollm2"]


@pytest.mark.parametrize(
    ("options", "status"),
    [
        ({"endpoint": "/v1/embeddings"}, 422),
        ({"completion_window": "1h"}, 422),
        ({"input_file_id": "file-nope"}, 404),
        ({"metadata": {"k": "v" * 513}}, 422),
    ],
)
def test_a_batch_request_that_cannot_be_run_is_refused(gateway, options, status):
    api = client(gateway)
    uploaded = api.files.create(file=("in.jsonl", line("a").encode()), purpose="batch")
    request = {"input_file_id": uploaded.id, "endpoint": ENDPOINT, "completion_window": "24h"}
    with pytest.raises(openai.APIStatusError) as refused:
        api.batches.create(**{**request, **options})
    assert refused.value.status_code == status


def test_a_synchronous_completion_refuses_what_it_cannot_honour_before_any_runtime_call(gateway):
    api = client(gateway)
    with pytest.raises(openai.UnprocessableEntityError, match="stream"):
        api.chat.completions.create(**body(), stream=True)
    with pytest.raises(openai.UnprocessableEntityError, match="tools"):
        api.chat.completions.create(**body(tools=[{"type": "function", "function": {"name": "f"}}]))

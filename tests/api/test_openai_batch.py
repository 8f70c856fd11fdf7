"""An OpenAI batch script, unchanged but for `base_url` and `api_key`, against a real gateway in
front of a real SGLang server, through the real `openai` package: upload, create, poll, download.

The batch is what extraction scripts send: one system prompt, two few-shot turns and a
json_schema response format on every line, the last user message the document. forkpoint finds
that shared prefix itself (one group), warms it once, and every line reads it from the cache.
"""

import json
import time

import jsonschema
import openai
import pytest

from forkpoint.api.store import JobStore

pytestmark = pytest.mark.slow
KEYS = '["team-a", "team-b"]'
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "city": {"type": "string", "maxLength": 40},
    },
    "required": ["name", "city"],
    "additionalProperties": False,
}
SYSTEM = "Extract the person's name and the city they live in, as JSON."
SHOTS = [
    {"role": "user", "content": "Ann Berg lives in Oslo and works as a nurse."},
    {"role": "assistant", "content": '{"name":"Ann Berg","city":"Oslo"}'},
    {"role": "user", "content": "Our new hire, Bo Lind, moved to Lima last spring."},
    {"role": "assistant", "content": '{"name":"Bo Lind","city":"Lima"}'},
]
PEOPLE = ["Cy Moss", "Di Park", "Ed Ruiz", "Flo Nair", "Gus Holm", "Hal Ito", "Ida Kern"]
CITIES = ["Rome", "Kyiv", "Quito", "Porto", "Hanoi", "Tunis", "Bergen"]


def batch_file(count: int) -> bytes:
    lines = []
    for i in range(count):
        person, city = PEOPLE[i % len(PEOPLE)], CITIES[(i * 3) % len(CITIES)]
        body = {
            "model": "gpt-4o-mini",  # the script's own model name: any name maps to the runtime
            "messages": [
                {"role": "system", "content": SYSTEM},
                *SHOTS,
                {"role": "user", "content": f"Note {i}: {person} now lives in {city}."},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": SCHEMA, "strict": True},
            },
            "max_tokens": 40,
            "temperature": 0,
        }
        line = {"custom_id": f"req-{i:02d}", "method": "POST", "url": "/v1/chat/completions"}
        lines.append(json.dumps({**line, "body": body}))
    return ("\n".join(lines) + "\n").encode()


def client_for(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=60)


def wait_for(client: openai.OpenAI, batch_id: str, until, seconds: float = 600):
    deadline = time.monotonic() + seconds
    while True:
        batch = client.batches.retrieve(batch_id)
        if until(batch):
            return batch
        assert time.monotonic() < deadline, batch
        time.sleep(0.5)


def check_output(client: openai.OpenAI, batch, count: int) -> list[dict]:
    assert batch.status == "completed", batch
    assert batch.request_counts.total == count and batch.request_counts.completed == count
    assert batch.error_file_id is None
    lines = [
        json.loads(line)
        for line in client.files.content(batch.output_file_id).text.split("\n")
        if line
    ]
    assert [line["custom_id"] for line in lines] == [f"req-{i:02d}" for i in range(count)]
    for line in lines:
        assert line["error"] is None and line["response"]["status_code"] == 200
        body = line["response"]["body"]
        assert body["object"] == "chat.completion"
        jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), SCHEMA)
    return lines


def test_an_openai_batch_script_runs_unchanged_and_every_line_reads_the_shared_prefix(
    sglang_server, start_gateway
):
    gateway = start_gateway(sglang_server.url, FORKPOINT_API_KEYS=KEYS, FORKPOINT_CONCURRENCY="8")
    client = client_for(gateway, "team-a")
    uploaded = client.files.create(file=("people.jsonl", batch_file(24)), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes > 0
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": "people"},
    )
    assert batch.status == "in_progress" and batch.metadata == {"run": "people"}
    other = client_for(gateway, "team-b")
    with pytest.raises(openai.NotFoundError):
        other.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        other.files.content(uploaded.id)
    assert [b.id for b in other.batches.list()] == []

    batch = wait_for(client, batch.id, lambda b: b.status == "completed")
    lines = check_output(client, batch, 24)
    found = batch.model_extra["forkpoint"]
    assert found["groups"] == 1  # one system prompt, one pair of shots, one schema
    [prefix_tokens] = found["prefix_tokens"]
    assert prefix_tokens > 50  # the system prompt and both shots
    for line in lines[1:]:
        cached = line["response"]["body"]["usage"]["prompt_tokens_details"]["cached_tokens"]
        assert cached >= prefix_tokens, line
    assert [b.id for b in client.batches.list()] == [batch.id]

    # A script that does not batch: one request, synchronously, through the same prefix.
    request = json.loads(batch_file(25).decode().splitlines()[24])["body"]
    answer = client.chat.completions.create(**request)
    jsonschema.validate(json.loads(answer.choices[0].message.content), SCHEMA)
    assert answer.usage.prompt_tokens_details.cached_tokens >= prefix_tokens
    assert answer.model_extra["forkpoint"]["status"] in ("ok", "needs_review")


def test_a_batch_survives_a_gateway_killed_mid_batch_with_every_line_answered_once(
    sglang_server, start_gateway, tmp_path
):
    gateway = start_gateway(sglang_server.url, FORKPOINT_API_KEYS=KEYS, FORKPOINT_CONCURRENCY="2")
    client = client_for(gateway, "team-a")
    uploaded = client.files.create(file=("people.jsonl", batch_file(20)), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    wait_for(client, batch.id, lambda b: b.request_counts.completed >= 2)
    gateway.kill()  # SIGKILL: lines in flight are lost mid-request
    done_at_kill = JobStore(gateway.db_path).counts(batch.model_extra["forkpoint"]["job_id"]).done
    assert done_at_kill < 20, "the batch finished before the kill; the test proves nothing"

    gateway.start()  # the same database: the batch resumes
    batch = wait_for(client, batch.id, lambda b: b.status == "completed")
    check_output(client, batch, 20)
    store = JobStore(gateway.db_path)
    job_id = batch.model_extra["forkpoint"]["job_id"]
    assert [store.result_count(job_id, i) for i in range(20)] == [1] * 20

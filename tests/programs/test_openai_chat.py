"""An OpenAI chat-completion request splits at its fork point: the messages before the last user
turn, the schema and the sampling are a task; the last user message is the document. What
forkpoint cannot honour is refused with the field at fault, never ignored."""

import pytest

from forkpoint.programs.openai_chat import (
    DEFAULT_MAX_TOKENS,
    LineError,
    completion,
    parse_request,
)
from forkpoint.programs.prompt import task_prompt

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "city": {"type": "string"}},
    "required": ["name", "city"],
    "additionalProperties": False,
}
SYSTEM = "Extract the person and their city."
SHOTS = [
    {"role": "user", "content": "Ann lives in Oslo."},
    {"role": "assistant", "content": '{"name":"Ann","city":"Oslo"}'},
    {"role": "user", "content": "Bo moved to Lima."},
    {"role": "assistant", "content": '{"name":"Bo","city":"Lima"}'},
]


def request(document: str = "Cy is from Rome.", **changes) -> dict:
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": SYSTEM},
            *SHOTS,
            {"role": "user", "content": document},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": SCHEMA, "strict": True},
        },
        "temperature": 0,
        "max_tokens": 64,
    }
    body.update(changes)
    return body


def test_requests_that_differ_only_in_the_last_user_message_share_one_task():
    first, second = parse_request(request("Cy is from Rome.")), parse_request(request("Di: Kyiv."))
    assert first.group == second.group
    assert (first.document, second.document) == ("Cy is from Rome.", "Di: Kyiv.")
    assert first.task.conversation.system == SYSTEM
    assert first.task.conversation.shots == (
        ("Ann lives in Oslo.", '{"name":"Ann","city":"Oslo"}'),
        ("Bo moved to Lima.", '{"name":"Bo","city":"Lima"}'),
    )
    assert first.task.max_output_tokens == 64 and first.task.max_reasks == 0
    assert first.strict


@pytest.mark.parametrize(
    "changes",
    [
        {"temperature": 0.5},
        {"max_tokens": 65},
        {"seed": 7},
        {"stop": ["\n\n"]},
        {"response_format": {"type": "json_object"}},
    ],
)
def test_anything_else_that_differs_makes_another_group(changes):
    assert parse_request(request(**changes)).group != parse_request(request()).group


def test_the_prompt_is_the_requests_own_messages_in_the_chat_format_with_nothing_added():
    line = parse_request(request())
    prompt = task_prompt(line.task.to_task(), "chatml")
    assert prompt.prefix == (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
        "<|im_start|>user\nAnn lives in Oslo.<|im_end|>\n"
        '<|im_start|>assistant\n{"name":"Ann","city":"Oslo"}<|im_end|>\n'
        "<|im_start|>user\nBo moved to Lima.<|im_end|>\n"
        '<|im_start|>assistant\n{"name":"Bo","city":"Lima"}<|im_end|>\n'
    )
    assert prompt.document_turn(line.document) == (
        "<|im_start|>user\nCy is from Rome.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_content_parts_of_text_are_joined_and_a_request_without_a_system_message_has_none():
    body = request()
    body["messages"] = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Eve,"}, {"type": "text", "text": "Bonn"}],
        }
    ]
    line = parse_request(body)
    assert line.document == "Eve,\nBonn"
    assert line.task.conversation.system is None and line.task.conversation.shots == ()
    assert task_prompt(line.task.to_task(), "chatml").prefix == ""


def test_defaults_greedy_and_a_bounded_output():
    body = request()
    del body["temperature"], body["max_tokens"]
    task = parse_request(body).task
    assert task.sampling.temperature == 0.0 and task.max_output_tokens == DEFAULT_MAX_TOKENS
    assert parse_request({**body, "max_completion_tokens": 9}).task.max_output_tokens == 9


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"stream": True}, "stream"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"response_format": None}, "response_format"),
        ({"response_format": {"type": "text"}}, "response_format.type"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content",
        ),
        ({"messages": [{"role": "user", "content": "a"}, *SHOTS[1:2]]}, "messages"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
            "messages[1].role",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "a", "name": "me"}]}, "messages[0].name"),
        ({"temperature": 9}, "temperature"),
    ],
)
def test_what_forkpoint_cannot_honour_is_refused_naming_the_field(changes, param):
    with pytest.raises(LineError) as refused:
        parse_request(request(**changes))
    assert refused.value.param == param
    error = refused.value.to_openai()
    assert error["type"] == "invalid_request_error" and error["message"]


def test_bookkeeping_fields_change_nothing():
    assert (
        parse_request(request(user="u-1", metadata={"a": "b"})).group
        == parse_request(request()).group
    )


def test_a_result_becomes_a_chat_completion_with_cached_tokens_and_forkpoint_beside_it():
    record = {
        "file": "r-1",
        "ok": True,
        "status": "ok",
        "data": {"name": "Cy", "city": "Rome"},
        "grounding": [{"path": "name", "found": True, "start": 0, "end": 2}],
        "usage": {"prompt_tokens": 90, "cached_tokens": 80, "completion_tokens": 12, "attempts": 1},
    }
    body = completion(record, model="m", completion_id="chatcmpl-1", created=5)
    assert body["choices"][0]["message"]["content"] == '{"name":"Cy","city":"Rome"}'
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 80
    assert body["usage"]["total_tokens"] == 102
    assert body["forkpoint"]["status"] == "ok" and body["forkpoint"]["grounding"]


def test_a_truncated_answer_finishes_with_length_and_keeps_the_models_text():
    record = {"file": "r", "ok": False, "status": "truncated", "raw": '{"name":"C', "usage": {}}
    body = completion(record, model="m", completion_id="c", created=0)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"] == '{"name":"C'
    assert body["forkpoint"]["status"] == "truncated"

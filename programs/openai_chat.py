"""An OpenAI chat-completion request as a forkpoint task and document, and a result back as a
`chat.completion`: what the gateway's OpenAI surface (batches and /v1/chat/completions) runs.

A request is split at its fork point. The messages before the last user turn, with the response
format's schema and the sampling, are a task (`TaskSpec` with a verbatim `Conversation`): every
request of a batch that shares them shares that task, so its prefix is warmed once and
RadixAttention serves it to each. The last user message is the document: it is what differs,
what NGRAM drafts from and what string values are grounded in.

Only what forkpoint honours is accepted; anything else (tools, images, n > 1, logprobs,
penalties, streaming in a batch) is refused with OpenAI's error fields (`code`, `param`), never
ignored. The prompt is the request's own messages rendered in the served model's chat format:
no forkpoint instructions or field guide are added (a script's prompt means what it meant).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from forkpoint.errors import ForkpointError, RequestError
from forkpoint.programs.constraints import check_bounds, refuse_unenforced
from forkpoint.programs.tasks.spec import TaskSpec
from forkpoint.programs.tasks.task import Conversation, Sampling

TASK_NAME = "openai-chat"
DEFAULT_MAX_TOKENS = 1024  # a request that sets no max_tokens / max_completion_tokens
MAX_TOKENS = 16_384  # what a task may decode (TaskSpec's bound)
JSON_OBJECT = {"type": "object"}  # response_format json_object: any JSON object
SYSTEM_ROLES = ("system", "developer")
# Fields a request may carry that change nothing forkpoint does (OpenAI's own bookkeeping).
BOOKKEEPING = {"user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key"}
HANDLED = {
    "model",
    "messages",
    "response_format",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "seed",
    "stop",
    "n",
    "stream",
    "logprobs",
    "frequency_penalty",
    "presence_penalty",
}


class LineError(RequestError):
    """A request forkpoint refuses, with OpenAI's error `code` and the `param` at fault."""

    def __init__(self, message: str, *, code: str = "invalid_request", param: str | None = None):
        super().__init__(message)
        self.code, self.param = code, param

    def to_openai(self) -> dict[str, Any]:
        """OpenAI's error object."""
        return {
            "message": self.message,
            "type": "invalid_request_error",
            "param": self.param,
            "code": self.code,
        }


@dataclass(frozen=True)
class ChatLine:
    """One request, split at its fork point: the model it names, its task and its document."""

    model: str
    task: TaskSpec
    document: str
    strict: bool = False  # response_format json_schema with strict: true

    @property
    def group(self) -> tuple[str, str]:
        """What requests share a task by: the model and the task's content."""
        return self.model, self.task.key

    def check_schema(self) -> None:
        """The schema refused as it would be at compile time, strict refusing what decoding
        cannot enforce (SchemaError); compiling is the caller's, once per group."""
        (refuse_unenforced if self.strict else check_bounds)(self.task.json_schema)


def parse_request(body: Any, *, stream_allowed: bool = False) -> ChatLine:
    """The request body of a /v1/chat/completions call (or a batch line's `body`), checked:
    LineError naming the field it cannot honour."""
    if not isinstance(body, dict):
        raise LineError("the request body must be a JSON object", param="body")
    unknown = sorted(set(body) - HANDLED - BOOKKEEPING)
    if unknown:
        what = ", ".join(unknown)
        raise LineError(
            f"forkpoint does not serve {what} (it runs structured extraction: messages, "
            "response_format, max_tokens, temperature, top_p, seed, stop, n=1)",
            code="unsupported_parameter",
            param=unknown[0],
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise LineError("'model' is required: a model name (GET /v1/models)", param="model")
    if body.get("n") not in (None, 1):
        raise LineError("forkpoint answers n=1 only", code="unsupported_value", param="n")
    if body.get("stream") and not stream_allowed:
        raise LineError("a batch request cannot stream", code="unsupported_value", param="stream")
    if body.get("logprobs"):
        raise LineError(
            "forkpoint does not return logprobs", code="unsupported_value", param="logprobs"
        )
    for penalty in ("frequency_penalty", "presence_penalty"):
        if body.get(penalty) not in (None, 0, 0.0):
            raise LineError(
                f"forkpoint decodes without {penalty}", code="unsupported_value", param=penalty
            )
    schema, strict, name = _response_format(body.get("response_format"))
    conversation, document = _messages(body.get("messages"))
    max_tokens = _max_tokens(body)
    try:
        sampling = Sampling(
            temperature=_number(body, "temperature", 0.0),
            top_p=_number(body, "top_p", 1.0),
            seed=body.get("seed"),
            stop=_stop(body.get("stop")),
        )
        task = TaskSpec(
            name=TASK_NAME,
            description=name,
            json_schema=schema,
            conversation=conversation,
            sampling=sampling,
            max_output_tokens=max_tokens,
            max_reasks=0,  # one answer per request, as OpenAI gives: validated, never re-asked
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise LineError(f"{where}: {first['msg']}", param=where) from None
    return ChatLine(model, task, document, strict)


def _response_format(given: Any) -> tuple[dict[str, Any], bool, str]:
    """(schema, strict, its name) of a response_format."""
    if not isinstance(given, dict):
        raise LineError(
            "forkpoint extracts structured data: give response_format "
            '{"type": "json_schema", "json_schema": {...}} or {"type": "json_object"}',
            code="unsupported_value" if given is not None else "missing_required_parameter",
            param="response_format",
        )
    kind = given.get("type")
    if kind == "json_object":
        return dict(JSON_OBJECT), False, "json_object"
    if kind != "json_schema":
        raise LineError(
            f"response_format type {kind!r} is not served: json_schema or json_object",
            code="unsupported_value",
            param="response_format.type",
        )
    spec = given.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        raise LineError(
            "response_format.json_schema needs a 'schema' object",
            param="response_format.json_schema.schema",
        )
    name = spec.get("name")
    return spec["schema"], spec.get("strict") is True, name[:2_000] if isinstance(name, str) else ""


def _text(content: Any, where: str) -> str:
    """A message's text: a string, or an array of text parts (joined as OpenAI joins them)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise LineError(
                    f"{where}.content[{i}] is {kind!r}: forkpoint reads text parts only",
                    code="unsupported_value",
                    param=f"{where}.content",
                )
            if not isinstance(part.get("text"), str):
                raise LineError(f"{where}.content[{i}] has no text", param=f"{where}.content")
            texts.append(part["text"])
        return "\n".join(texts)
    raise LineError(f"{where} has no text content", param=f"{where}.content")


def _messages(messages: Any) -> tuple[Conversation, str]:
    """(the conversation before the last user turn, the last user turn's text). The messages
    must read [system or developer], then user/assistant turns in turn, ending with a user."""
    if not isinstance(messages, list) or not messages:
        raise LineError("'messages' must be a non-empty array", param="messages")
    turns: list[tuple[str, str]] = []
    system = None
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise LineError(f"{where} must be an object", param=where)
        extra = sorted(set(message) - {"role", "content"})
        if extra:
            raise LineError(
                f"{where} has {', '.join(extra)}: forkpoint reads role and content only",
                code="unsupported_parameter",
                param=f"{where}.{extra[0]}",
            )
        role = message.get("role")
        text = _text(message.get("content"), where)
        if role in SYSTEM_ROLES:
            if i != 0:
                raise LineError(
                    f"{where}: a {role} message is served only as the first message",
                    code="unsupported_value",
                    param=f"{where}.role",
                )
            system = text
            continue
        expected = "user" if len(turns) % 2 == 0 else "assistant"
        if role != expected:
            raise LineError(
                f"{where} is {role!r} where forkpoint reads {expected!r}: messages must be "
                "[system], then user and assistant in turn, ending with user",
                code="unsupported_value",
                param=f"{where}.role",
            )
        turns.append((role, text))
    if len(turns) % 2 == 0:
        raise LineError("the last message must be the user's", param="messages")
    shots = tuple((turns[j][1], turns[j + 1][1]) for j in range(0, len(turns) - 1, 2))
    try:
        conversation = Conversation(system=system, shots=shots)
    except ValidationError as exc:
        raise LineError(f"messages: {exc.errors()[0]['msg']}", param="messages") from None
    return conversation, turns[-1][1]


def _max_tokens(body: dict[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        given = body.get(name)
        if given is None:
            continue
        if not isinstance(given, int) or isinstance(given, bool) or not 1 <= given <= MAX_TOKENS:
            raise LineError(f"{name} must be a whole number from 1 to {MAX_TOKENS}", param=name)
        return given
    return DEFAULT_MAX_TOKENS


def _number(body: dict[str, Any], name: str, default: float) -> float:
    given = body.get(name)
    if given is None:
        return default
    if isinstance(given, bool) or not isinstance(given, int | float):
        raise LineError(f"{name} must be a number", param=name)
    return float(given)


def _stop(given: Any) -> tuple[str, ...]:
    if given is None:
        return ()
    stops = [given] if isinstance(given, str) else given
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise LineError("stop must be a string or an array of strings", param="stop")
    return tuple(stops)


def completion(
    record: dict[str, Any], *, model: str, completion_id: str, created: int
) -> dict[str, Any]:
    """A result record with an answer (every status but `error`) as OpenAI's chat.completion:
    the JSON text as the message content (the validated object when it validated, the model's
    text when it did not), finish_reason `length` when truncated, usage with cached tokens, and
    forkpoint's own view in the `forkpoint` field (OpenAI clients ignore it)."""
    status = record["status"]
    if "data" in record:
        content = json.dumps(record["data"], ensure_ascii=False, separators=(",", ":"))
    else:
        content = record.get("raw") or ""
    usage = record.get("usage", {})
    prompt, completion_tokens = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    own: dict[str, Any] = {
        key: record[key] for key in ("status", "error", "review", "grounding") if key in record
    }
    own.update(
        {key: usage[key] for key in ("attempts", "seconds", "spec_verify_ct") if key in usage}
    )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "length" if status == "truncated" else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.get("cached_tokens", 0)},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "system_fingerprint": None,
        "forkpoint": own,
    }


def refusal(error: ForkpointError | str) -> dict[str, Any]:
    """OpenAI's error object for a request that got no answer (the runtime refused it, or it
    failed forkpoint's checks)."""
    if isinstance(error, LineError):
        return error.to_openai()
    message = error if isinstance(error, str) else error.message
    return {"message": message, "type": "server_error", "param": None, "code": "extraction_failed"}

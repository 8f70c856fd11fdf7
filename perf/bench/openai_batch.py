"""The bench's `openai-batch` run: the job's documents as an OpenAI batch file, through the
gateway, with the real `openai` package — beside `gateway` (the same documents as a forkpoint
job), to show what the OpenAI surface costs.

Every line carries the task's own prompt as messages (the system text, the few-shot turns, the
document's turn) and its schema as a json_schema response format, with the copy fields marked
`x-forkpoint-copy`, so the gateway runs the same prompt tokens and the same grammar as the job;
what differs is only the way in: one upload and one batch, grouping found by the gateway.
"""

from __future__ import annotations

import copy
import json
import time
from typing import TYPE_CHECKING, Any, Literal

from forkpoint.perf.bench.timeline import Timeline
from forkpoint.programs.copy_grammar import COPY_KEYWORD
from forkpoint.programs.prompt import user_turn
from forkpoint.programs.results.record import DocumentResult

if TYPE_CHECKING:
    from forkpoint.programs.prompt import TaskPrompt

ENDPOINT: Literal["/v1/chat/completions"] = "/v1/chat/completions"


def batch_lines(prompt: TaskPrompt, documents: list[tuple[str, str]]) -> bytes:
    """The documents as a batch input file: one request per document, the task's prompt as its
    messages (token for token what the job sends)."""
    task = prompt.task
    shots: list[dict[str, str]] = []
    for user, assistant in prompt.shots:
        shots += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    schema = copy_marked(task.constraint.schema, task.copy_fields)
    lines = []
    for name, text in documents:
        body = {
            "model": "forkpoint-bench",
            "messages": [{"role": "system", "content": prompt.system}, *shots]
            + [{"role": "user", "content": user_turn(text)}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": task.name, "schema": schema},
            },
            "max_tokens": task.max_output_tokens,
            "temperature": 0,
        }
        line = {"custom_id": name, "method": "POST", "url": ENDPOINT, "body": body}
        lines.append(json.dumps(line, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


def copy_marked(schema: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """`schema` with its local $refs inlined and each copy path's property marked with the copy
    keyword (how a schema, not a task, says which strings are copied)."""
    root = copy.deepcopy(schema)
    defs = root.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/$defs/"):
                target = defs[node["$ref"].rsplit("/", 1)[-1]]
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return inline({**copy.deepcopy(target), **rest})
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    root = inline(root)
    for path in paths:
        node = root
        for part in path.split("."):
            name = part.replace("[]", "")
            node = _object(node)["properties"][name]
            for _ in range(part.count("[]")):
                node = _object(node)["items"]
        node[COPY_KEYWORD] = True
    return root


def _object(node: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of a nullable node, or the node."""
    for branch in node.get("anyOf", ()):
        if branch.get("type") != "null":
            return branch
    return node


def run_openai_batch(
    gateway_url: str, prompt: TaskPrompt, documents: list[tuple[str, str]]
) -> tuple[list[DocumentResult], float, Timeline, dict[str, Any]]:
    """Upload, create, poll every half second, download: (each line's result, wall seconds
    from upload to downloaded output, the timeline, the batch's forkpoint figures). A batch's
    lines arrive together, in its output file: its timeline is one step at the end."""
    import openai

    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="bench", timeout=600)
    data = batch_lines(prompt, documents)
    with Timeline("openai-batch", len(documents)) as timeline:
        uploaded = client.files.create(file=("bench.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h"
        )
        while batch.status not in ("completed", "failed", "cancelled", "expired"):
            time.sleep(0.5)
            batch = client.batches.retrieve(batch.id)
        if batch.status != "completed":
            raise RuntimeError(f"the batch ended {batch.status}: {batch.errors}")
        files = [f for f in (batch.output_file_id, batch.error_file_id) if f is not None]
        lines = [
            json.loads(text)
            for file_id in files
            for text in client.files.content(file_id).text.split("\n")
            if text
        ]
        wall = timeline.elapsed()
        for line in lines:
            usage = line["response"]["body"].get("usage", {})
            timeline(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
    by_name = {line["custom_id"]: line for line in lines}
    results = []
    for index, (name, _) in enumerate(documents):
        line = by_name.get(name)
        if line is None:
            break
        body = line["response"]["body"]
        if "error" in body:  # a line of the error file
            error = body["error"]["message"]
            results.append(DocumentResult(index, name, "error", error=error))
            continue
        own, usage = body["forkpoint"], body["usage"]
        record = {
            "file": line["custom_id"],
            "ok": own["status"] == "ok",
            "status": own["status"],
            "grounding": own.get("grounding"),
            "usage": {
                "prompt_tokens": usage["prompt_tokens"],
                "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
                "completion_tokens": usage["completion_tokens"],
                "seconds": own.get("seconds", 0.0),
                "spec_verify_ct": own.get("spec_verify_ct"),
            },
        }
        if record["ok"] or own["status"] == "needs_review":
            record["data"] = json.loads(body["choices"][0]["message"]["content"])
        results.append(DocumentResult.from_json(record, index))
    if len(results) != len(documents):  # never a silently smaller run
        raise RuntimeError(f"the batch answered {len(results)} of {len(documents)} lines")
    return results, wall, timeline, (batch.model_extra or {}).get("forkpoint") or {}

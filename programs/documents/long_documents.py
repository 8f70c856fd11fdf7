"""Documents longer than the runtime's context: counted with its own tokenizer, never cut silently.

The budget of one request is the runtime's context length: the task prefix, the document's turn
and the output limit must fit. A document that does not fit is, by the task's `long_documents`
policy, either an error naming the sizes (`error`, the default) or split into chunks
(`chunk`): on paragraph boundaries (then lines, then characters for a giant paragraph), each
chunk as large as fits, consecutive chunks overlapping by about `chunk_overlap_tokens` of
trailing paragraphs. Each chunk is extracted like a document; the answers are merged:

- a list field: the items of every chunk, in order, duplicates (equal JSON) dropped; beyond the
  field's `maxItems`, the first ones are kept and the document is marked needs_review, saying so;
- any other field: the value of the first chunk that has one (not null, not empty).

Counting uses SGLang's /tokenize, and only for documents whose UTF-8 size could exceed the
budget (a token is never shorter than one byte), so ordinary documents cost no extra request.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from forkpoint.errors import DocumentError, RuntimeUnavailable
from forkpoint.runtime.client import RuntimeClient

if TYPE_CHECKING:
    from forkpoint.programs.prompt import TaskPrompt

SAFETY_TOKENS = 16  # the seam between prefix and turn may tokenize a few tokens differently
PARAGRAPH = re.compile(r"\n\s*\n")


class TokenCounter:
    """The runtime's tokenizer, over HTTP (`POST /tokenize`)."""

    def __init__(self, client: RuntimeClient) -> None:
        self.client = client

    def count(self, texts: list[str], *, special: bool = True) -> tuple[list[int], int]:
        """Token counts of `texts` (with BOS etc. when `special`) and the model's context."""
        return self.client.tokenize(texts, special=special)

    def context_length(self) -> int | None:
        """The runtime's context length; None if it cannot say (e.g. behind a router)."""
        try:
            return self.count(["x"])[1]
        except (RuntimeUnavailable, KeyError, ValueError):
            return None


def fit(
    name: str,
    text: str,
    *,
    prompt: TaskPrompt,
    counter: TokenCounter,
    context: int,
    output_tokens: int,
    policy: str,
    overlap_tokens: int,
    max_chunk_tokens: int | None = None,
) -> list[str]:
    """The document as one text, or its chunks; raises DocumentError under the `error` policy.
    Under the chunk policy a document is chunked when it does not fit the context, or when it
    has more than `max_chunk_tokens` tokens (each chunk then has at most that many)."""
    budget = context - output_tokens - SAFETY_TOKENS
    cap = max_chunk_tokens if policy == "chunk" else None
    if len(prompt.full(text).encode()) <= budget and (cap is None or len(text.encode()) <= cap):
        return [text]  # bytes bound tokens from above: no need to count
    [total], _ = counter.count([prompt.full(text)])
    if total <= budget and cap is None:
        return [text]
    [frame], _ = counter.count([prompt.full("")])
    if total <= budget and total - frame <= (cap or total):
        return [text]
    if policy != "chunk":
        raise DocumentError(
            f"{name} needs {total:,} prompt tokens ({frame:,} of task prompt, "
            f"{total - frame:,} of document) + {output_tokens:,} output tokens: more than the "
            f"runtime's context of {context:,} tokens",
            hint="split the document, or give the task long_documents='chunk'",
        )
    room = min(budget - frame, cap or budget)
    if room < 64:
        raise DocumentError(f"{name}: the task prompt leaves no room for a chunk in {context:,}")
    return chunk(text, counter, room, overlap_tokens)


def chunk(text: str, counter: TokenCounter, room: int, overlap_tokens: int) -> list[str]:
    """Split `text` into pieces of at most `room` tokens, overlapping by trailing paragraphs."""
    pieces = _pieces(text, counter, room)
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    for piece in pieces:
        if current and sum(n for _, n in current) + piece[1] > room:
            chunks.append("\n\n".join(p for p, _ in current))
            carried: list[tuple[str, int]] = []
            for previous in reversed(current):  # overlap: trailing paragraphs that fit
                if sum(n for _, n in carried) + previous[1] > overlap_tokens:
                    break
                carried.insert(0, previous)
            current = carried if sum(n for _, n in carried) + piece[1] <= room else []
        current.append(piece)
    if current:
        chunks.append("\n\n".join(p for p, _ in current))
    return chunks


def _pieces(text: str, counter: TokenCounter, room: int) -> list[tuple[str, int]]:
    """Paragraphs with their token counts, any paragraph over `room` split smaller."""
    paragraphs = [p.strip() for p in PARAGRAPH.split(text) if p.strip()]
    counts, _ = counter.count(paragraphs, special=False)
    pieces = []
    for paragraph, count in zip(paragraphs, counts, strict=True):
        if count <= room:
            pieces.append((paragraph, count + 2))  # + the "\n\n" joining it to the next
            continue
        lines = paragraph.splitlines()
        if len(lines) > 1:
            pieces += _pieces("\n\n".join(lines), counter, room)
            continue
        size = max(1, len(paragraph) * room // (count * 2))  # characters per half-room
        parts = [paragraph[i : i + size] for i in range(0, len(paragraph), size)]
        part_counts, _ = counter.count(parts, special=False)
        pieces += [(part, n + 2) for part, n in zip(parts, part_counts, strict=True)]
    return pieces


def merge(
    answers: list[dict[str, Any]], schema: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """One object from the chunks' answers: (merged, notes).

    Lists are joined and de-duplicated; where that passes the field's `maxItems`, the first
    items are kept and a note says what was dropped (the document then needs review). Any other
    field takes the value of the first chunk that has one (not null, not empty)."""
    merged: dict[str, Any] = {}
    for answer in answers:
        for key, value in answer.items():
            if isinstance(value, list):
                items = merged.setdefault(key, [])
                seen = {json.dumps(item, sort_keys=True) for item in items}
                for item in value:
                    if (canonical := json.dumps(item, sort_keys=True)) not in seen:
                        seen.add(canonical)
                        items.append(item)
            elif key not in merged or merged[key] in (None, "", {}):
                merged[key] = value
    notes = []
    for key, field in ((schema or {}).get("properties") or {}).items():
        limit = field.get("maxItems")
        if limit is not None and isinstance(merged.get(key), list) and len(merged[key]) > limit:
            notes.append(
                f"{key}: the chunks found {len(merged[key])} items; the task keeps at "
                f"most {limit}, so the last {len(merged[key]) - limit} were dropped"
            )
            merged[key] = merged[key][:limit]
    return merged, notes

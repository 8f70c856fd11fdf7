"""Confidence per field: how sure the model was of each value it wrote, from SGLang's token
log-probabilities.

SGLang returns, per output token, `meta_info["output_token_logprobs"]`: (logprob, token id,
token text) when asked with `return_logprob` and `return_text_in_logprobs`. Each leaf value of
the answer (string, number, boolean, null; paths as grounding writes them,
`line_items[2].description`) gets the joint probability of the tokens that wrote it: the product
of their probabilities, exp(sum of logprobs), rounded to 4 places.

Which distribution: the one the token was drawn from, after the grammar mask. SGLang applies
the mask in place to the logits (`sampling_info.apply_logits_bias` →
`grammar_mask.apply`, sglang/srt/model_executor/model_runner.py:2093 and
sglang/srt/sampling/sampling_batch_info.py:447) before the sampler takes `log_softmax` of the
same tensor (sglang/srt/layers/sampler.py:221 greedy, :315 sampled); NGRAM verification masks
the verify logits in place (sglang/srt/speculative/eagle_utils.py:588) and
`compute_spec_logprobs` reads them (sglang/srt/layers/logprob_processor.py:418, called at
sglang/srt/speculative/ngram_worker.py:517). So a probability is renormalized over the tokens the
schema allows. That is the one wanted: mass the model put on text the grammar forbids (prose,
markdown, another key) was never a candidate for the value, so it is not doubt about the value;
and a token the grammar forced (a key, a quote, a comma) has probability exactly 1, so it cannot
lower a value's confidence even where it shares a token with the value. Greedy decoding reports
the temperature-1 distribution (sampler.py:221: no temperature on that path).

Which tokens: those whose characters overlap the characters that decide the value. For a string
its characters and its closing quote (where the string stops is part of the value: "Acme" vs
"Acme Ltd"; the opening quote is forced); for a number its characters and the character after
it (the number ends there); for true/false/null their letters. Keys, punctuation and opening
quotes are left out, as are the choices between values (how many list items) which no single
value owns. The product makes a value's confidence its probability as a whole: a long string
is as sure as all its tokens together.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from forkpoint.programs.grounding import field_pattern, leaves

PLACES = 4
_LITERAL = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null")
_BROKEN = "\ufffd"  # a token that is part of a multi-byte character decodes alone as this

Thresholds = float | Mapping[str, float]


def confidences(raw: str, tokens: Sequence[Sequence[Any]] | None) -> dict[str, float] | None:
    """Each leaf value's confidence in `raw` (the answer's JSON text) from SGLang's
    `output_token_logprobs` for it. None when there are none (not asked, or not returned) or
    when they do not spell `raw` (then no figure is better than a wrong one)."""
    if not tokens:
        return None
    try:
        values = value_spans(raw)
    except ValueError:
        return None
    spans = token_spans(raw, [str(token[2] or "") for token in tokens])
    if spans is None:
        return None
    found: dict[str, float] = {}
    for path, start, end in values:
        logprobs = [
            token[0]
            for token, span in zip(tokens, spans, strict=True)
            if span is not None and span[0] < end and span[1] > start
        ]
        if logprobs and all(isinstance(lp, int | float) for lp in logprobs):
            found[path] = round(min(1.0, math.exp(sum(logprobs))), PLACES)
    return found


def value_spans(raw: str) -> list[tuple[str, int, int]]:
    """(path, start, end) for each leaf value of the JSON text `raw`: [start, end) the characters
    that decide it (see the module's docstring). Raises ValueError if `raw` is not JSON."""
    out: list[tuple[str, int, int]] = []
    end = _value(raw, _space(raw, 0), "", out)
    if _space(raw, end) != len(raw):
        raise ValueError("text after the JSON value")
    return out


def _space(raw: str, i: int) -> int:
    while i < len(raw) and raw[i] in " \t\n\r":
        i += 1
    return i


def _expect(raw: str, i: int, char: str) -> int:
    if i >= len(raw) or raw[i] != char:
        raise ValueError(f"expected {char!r} at {i}")
    return i + 1


def _string_end(raw: str, i: int) -> int:
    """The index of the closing quote of the string whose opening quote is at `i`."""
    i = _expect(raw, i, '"')
    while i < len(raw):
        if raw[i] == "\\":
            i += 2
        elif raw[i] == '"':
            return i
        else:
            i += 1
    raise ValueError("unterminated string")


def _value(raw: str, i: int, path: str, out: list[tuple[str, int, int]]) -> int:
    """Scan the value at `i`, adding its leaves to `out`; returns the index after it."""
    char = raw[i] if i < len(raw) else ""
    if char == "{":
        i = _space(raw, i + 1)
        if raw[i : i + 1] == "}":
            return i + 1
        while True:
            close = _string_end(raw, i)
            key = json.loads(raw[i : close + 1])
            i = _space(raw, _expect(raw, _space(raw, close + 1), ":"))
            i = _space(raw, _value(raw, i, f"{path}.{key}" if path else str(key), out))
            if raw[i : i + 1] == "}":
                return i + 1
            i = _space(raw, _expect(raw, i, ","))
    if char == "[":
        i = _space(raw, i + 1)
        if raw[i : i + 1] == "]":
            return i + 1
        index = 0
        while True:
            i = _space(raw, _value(raw, i, f"{path}[{index}]", out))
            index += 1
            if raw[i : i + 1] == "]":
                return i + 1
            i = _space(raw, _expect(raw, i, ","))
    if char == '"':
        close = _string_end(raw, i)
        out.append((path, i + 1, close + 1))  # the characters and the closing quote
        return close + 1
    literal = _LITERAL.match(raw, i)
    if literal is None:
        raise ValueError(f"no JSON value at {i}")
    end = literal.end()
    number = literal.group()[0] not in "tfn"
    out.append((path, i, min(end + 1, len(raw)) if number else end))
    return end


def token_spans(raw: str, texts: Sequence[str]) -> list[tuple[int, int] | None] | None:
    """Each token's character span [start, end) in `raw`, from the tokens' texts as SGLang
    decodes them one by one; None where a token lies past the end of `raw` (the end-of-turn
    token). Tolerates what one-by-one decoding loses: a dropped leading space (sentencepiece) is
    given to the token after it, and tokens holding part of a multi-byte character ("\\ufffd")
    share the characters up to the next token that decodes cleanly. None if the texts do not
    spell `raw`."""
    spans: list[tuple[int, int] | None] = []
    pending: list[int] = []  # broken tokens whose span ends where the next clean one starts
    pos = 0
    for text in texts:
        if pos >= len(raw) and not pending:
            spans.append(None)
            continue
        if not text or _BROKEN in text:
            pending.append(len(spans))
            spans.append(None)
            continue
        slack = 1 + sum(len(texts[k]) + 1 for k in pending)
        at = raw.find(text, pos, pos + len(text) + slack)
        if at < 0:
            return None
        for k in pending:
            spans[k] = (pos, at)
        spans.append((at if pending else pos, at + len(text)))
        pending, pos = [], at + len(text)
    for k in pending:
        spans[k] = (pos, len(raw))
    return spans


def merge_chunks(
    merged: Any, chunks: Sequence[tuple[Any, dict[str, float] | None]]
) -> dict[str, float] | None:
    """The confidences of a long document's merged answer from its chunks' (data, confidence):
    each merged value takes the confidence of the first chunk that wrote the same value for the
    same field (`long_documents.merge` keeps the first chunk's value and the first copy of a
    list item). A value no chunk with confidences wrote has none."""
    known = [(data, conf) for data, conf in chunks if conf is not None]
    if not known:
        return None
    found: dict[str, float] = {}
    for path, value in leaves(merged):
        pattern = field_pattern(path)
        for data, conf in known:
            hit = next(
                (
                    conf[p]
                    for p, v in leaves(data)
                    if v == value and p in conf and field_pattern(p) == pattern
                ),
                None,
            )
            if hit is not None:
                found[path] = hit
                break
    return found


def threshold(review_below: Thresholds | None, path: str) -> float | None:
    """The review threshold for a value's path: one for every field, or the one named for its
    field (`total`, `line_items[].amount`, or `line_items` for every value under it)."""
    if review_below is None or isinstance(review_below, int | float):
        return review_below
    pattern = field_pattern(path)
    for name, below in review_below.items():
        if pattern == name or pattern.startswith((f"{name}.", f"{name}[")):
            return below
    return None


def unsure(
    data: Any, confidence: dict[str, float] | None, review_below: Thresholds | None
) -> list[str]:
    """Review reasons, one per value whose confidence is under its threshold."""
    if not confidence or review_below is None:
        return []
    reasons = []
    for path, value in leaves(data):
        below = threshold(review_below, path)
        if below is not None and path in confidence and confidence[path] < below:
            reasons.append(
                f"{path} = {value!r} has confidence {confidence[path]:.2f}, under {below:g}"
            )
    return reasons


def field_confidence(confidence: dict[str, float], name: str) -> float | None:
    """A top-level field's confidence: the product of its values' (the joint probability of
    the whole field, a list's items together); None if none of its values has one."""
    values = [
        p
        for path, p in confidence.items()
        if path == name or path.startswith((f"{name}.", f"{name}["))
    ]
    return math.prod(values) if values else None

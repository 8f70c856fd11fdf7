"""What a perf script asks the runtime itself, past the extractor: empty its cache, one bare
/generate, the tokens of a prefix. Through RuntimeClient, so every call has a timeout and
carries the runtime key ($FORKPOINT_RUNTIME_API_KEY) a keyed server asks for."""

from __future__ import annotations

import time
from typing import Any

from forkpoint.errors import RuntimeUnavailable
from forkpoint.runtime.client import RuntimeClient

FLUSH_ATTEMPTS, FLUSH_PAUSE = 10, 0.2


def empty_cache(client: RuntimeClient) -> None:
    """Drop the runtime's prefix cache (and NGRAM's trie), or fail: a run that starts on a warm
    cache measures something else. SGLang refuses while any request is queued or running, and a
    request that has answered stays in the running batch until the scheduler's next step, so a
    refusal is asked again for up to two seconds first."""
    for _ in range(FLUSH_ATTEMPTS):
        if client.flush_cache():
            return
        time.sleep(FLUSH_PAUSE)
    raise RuntimeUnavailable(
        f"{client.url} refused /flush_cache for {FLUSH_ATTEMPTS * FLUSH_PAUSE:.0f} s",
        hint="is another job running on it?",
    )


def generate(client: RuntimeClient, text: str, sampling: dict[str, Any]) -> dict[str, Any]:
    """One /generate (no grammar, no extractor): its whole answer, `meta_info` included."""
    body = {"text": text, "sampling_params": sampling}
    return client.json("POST", "/generate", json=body, timeout=client.timeouts.generate)


def prefix_tokens(client: RuntimeClient, prefix: str) -> int:
    """Prompt tokens of the task prefix alone, as the runtime counts them."""
    return generate(client, prefix, {"max_new_tokens": 0})["meta_info"]["prompt_tokens"]

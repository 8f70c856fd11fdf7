"""NGRAM job corpora: a job's own documents, registered with the runtime as a named corpus.

SGLang's NGRAM speculation drafts from a trie of each request's recent tokens; the document body
is not in it. With `--speculative-ngram-external-sam-budget > 0` it can also draft from named
external corpora (`POST /add_external_corpus`). Extraction output copies spans of the document,
so as a job's documents start the gateway registers them as the corpus `forkpoint-job-<id>`
(beside the first documents: a document decoded before the corpus lands drafts from its own
tokens only), and removes it when the job ends — done, cancelled or failed. On start-up it
removes corpora of jobs that are no longer running (a crash must not leak them) and registers
them again for unfinished jobs; a restarted runtime gets them again too.

What is loaded is bounded: documents are sent in order until the profile's
`external_corpus_max_tokens` (estimated at 3 characters a token; SGLang cuts at the exact count
and says so), and the job's stats say how much was loaded. Speculation is an optimization:
a runtime that refuses (no NGRAM, an old SGLang) never fails a job, its answer is in the stats.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from forkpoint.errors import RuntimeUnavailable
from forkpoint.runtime.client import RuntimeClient
from forkpoint.runtime.profiles import Speculation

log = logging.getLogger("forkpoint.corpora")
PREFIX = "forkpoint-job-"
CHARS_PER_TOKEN = 3  # a low estimate: better to send a little too much than too little


def corpus_id(job_id: str) -> str:
    return PREFIX + job_id


class JobCorpora:
    """Register and remove per-job corpora on one runtime."""

    def __init__(
        self, url: str, speculation: Speculation, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.enabled = speculation.algorithm == "NGRAM" and speculation.external_sam_budget > 0
        self.max_tokens = speculation.external_corpus_max_tokens
        self.runtime = RuntimeClient(url, transport=transport)

    def register(self, job_id: str, texts: list[str]) -> dict[str, Any] | None:
        """Load the job's documents (bounded); the stats to show with the job, or None if off."""
        if not self.enabled:
            return None
        sent: list[str] = []
        budget = self.max_tokens * CHARS_PER_TOKEN
        for text in texts:
            if budget - len(text) < 0 and sent:
                break
            sent.append(text)
            budget -= len(text)
        stats: dict[str, Any] = {
            "corpus_id": corpus_id(job_id),
            "documents": len(texts),
            "documents_sent": len(sent),
            "tokens_loaded": 0,
        }
        try:
            body = {"corpus_id": corpus_id(job_id), "documents": sent}
            answer = self.runtime.request(
                "POST", "/add_external_corpus", json=body, timeout=self.runtime.timeouts.corpus
            ).json()
        except (RuntimeUnavailable, ValueError) as exc:
            stats["note"] = f"not loaded: {exc}"
            return stats
        if not answer.get("success"):
            stats["note"] = f"not loaded: {answer.get('message', 'refused')}"
            return stats
        stats["tokens_loaded"] = int(answer.get("loaded_token_count") or 0)
        if "truncated" in (answer.get("message") or ""):
            stats["note"] = answer["message"]
        return stats

    def remove(self, job_id: str) -> bool:
        """Remove the job's corpus; True if the runtime confirmed it."""
        if not self.enabled:
            return False
        try:
            body = {"corpus_id": corpus_id(job_id)}
            answer = self.runtime.request("POST", "/remove_external_corpus", json=body).json()
        except (RuntimeUnavailable, ValueError) as exc:
            log.warning("could not remove corpus of job %s: %s", job_id, exc)
            return False
        return bool(answer.get("success"))

    def loaded(self) -> dict[str, int]:
        """forkpoint's corpora on the runtime: job id → tokens (empty if it cannot say)."""
        if not self.enabled:
            return {}
        try:
            answer = self.runtime.request("GET", "/list_external_corpora").json()
        except (RuntimeUnavailable, ValueError):
            return {}
        counts = answer.get("corpus_token_counts") or {}
        return {k.removeprefix(PREFIX): v for k, v in counts.items() if k.startswith(PREFIX)}

    def sweep(self, running: set[str]) -> list[str]:
        """Remove the corpora of jobs not in `running` (left by a crash); the job ids removed."""
        leaked = [job_id for job_id in self.loaded() if job_id not in running]
        return [job_id for job_id in leaked if self.remove(job_id)]

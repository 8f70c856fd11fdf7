"""The emulated runtime: SGLang's HTTP surface as forkpoint uses it, answering recorded answers at
the projected server's pace.

    ./dev python -m forkpoint.perf.emulated.server --port 31000 --multiplier 10

Endpoints (SGLang 0.5.23's paths and shapes, only what forkpoint calls): `/generate`,
`/model_info` (and `/get_model_info`), `/server_info` (and `/get_server_info`), `/health`,
`/health_generate`, `/tokenize`, `/flush_cache`, `/add_external_corpus`,
`/remove_external_corpus`, `/list_external_corpora`.

What `/generate` does, as SGLang would: tokenizes the prompt with the embedded model's tokenizer
(prompt_tokens), finds the longest prefix of it already seen (cached_tokens: a radix cache of
every prompt since the last flush), compiles the request's `json_schema`, `ebnf` or `regex` with
xgrammar's GrammarCompiler on that tokenizer in a thread pool (SGLang's grammar backend runs its
compiles in a ThreadPoolExecutor; a grammar xgrammar refuses is answered 400, as SGLang aborts
the request), then waits until the pacer (service.py) says the projected server would have
answered, and answers with the recorded answer (recording.py): completion_tokens as the
tokenizer counts it plus the end-of-sequence token, spec_verify_ct at the projection's tokens per
verify step, finish_reason `stop`, or `length` when the answer does not fit `max_new_tokens`.
It does not decode: no token masks are computed. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from forkpoint.perf.emulated.recording import Recording
from forkpoint.perf.emulated.service import Pacer, Service

VERSION = "0.5.23"
CONTEXT_LENGTH = 8192  # SmolLM2-135M-Instruct's max_position_embeddings
# SGLang's grammar backend: a ThreadPoolExecutor with the executor's default worker count
COMPILE_THREADS = min(32, (os.cpu_count() or 1) + 4)
PAGE = 16  # tokens per radix-cache page of the prefix index (the match itself is exact)


class PrefixCache:
    """Prompts seen since the last flush, indexed by page-aligned prefix: the longest prefix a
    new prompt shares with any of them, in tokens (what SGLang reports as cached_tokens)."""

    def __init__(self) -> None:
        self._pages: dict[int, list[int]] = {}  # hash of a page-aligned prefix -> a prompt
        self._lock = threading.Lock()

    def match_and_insert(self, tokens: list[int]) -> int:
        keys, key = [], 0
        for end in range(PAGE, len(tokens) + 1, PAGE):
            key = hash((key, tuple(tokens[end - PAGE : end])))
            keys.append(key)
        with self._lock:
            depth, seen = 0, None
            for i, key in enumerate(keys):
                if key not in self._pages:
                    break
                depth, seen = (i + 1) * PAGE, self._pages[key]
            for key in keys[depth // PAGE :]:
                self._pages[key] = tokens
        if seen is not None:
            while depth < min(len(seen), len(tokens)) and seen[depth] == tokens[depth]:
                depth += 1
        elif keys:
            depth = 0
        # SGLang computes at least the last prompt token (its logits start the answer)
        return min(depth, max(len(tokens) - 1, 0))

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()


class Emulator:
    """The state behind the endpoints: tokenizer, grammar compiler, cache, pacer, counters."""

    def __init__(
        self,
        recording: Recording,
        service: Service,
        model_path: Path,
        compile_threads: int = COMPILE_THREADS,
        grammar: str = "compile",
    ) -> None:
        import xgrammar
        from transformers import AutoConfig, AutoTokenizer

        self.recording, self.service, self.model_path = recording, service, model_path
        self.grammar = grammar  # "compile": as SGLang; "off": no grammar work at all
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        config = AutoConfig.from_pretrained(str(model_path))
        self.architectures = list(config.architectures or [])
        self.model_type = config.model_type
        self.eos = self.tokenizer.eos_token_id
        info = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=config.vocab_size)
        # as runtime/grammar_cache.py bounds SGLang's own: 256 entries of 3 MiB
        self.compiler = xgrammar.GrammarCompiler(info, cache_limit_bytes=256 * 3 * 2**20)
        self.compiles = ThreadPoolExecutor(compile_threads, thread_name_prefix="grammar")
        self.compile_threads = compile_threads
        self.cache = PrefixCache()
        self.pacer = Pacer(service)
        self.corpora: dict[str, int] = {}
        self.running = 0
        self.counts = {"requests": 0, "answered": 0, "refused": 0, "missing": 0}
        self.compile_wall_seconds = 0.0  # in xgrammar compiles (which use threads of their own)
        self.lock = threading.Lock()

    def tokens(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def compile(self, params: dict[str, Any]) -> str | None:
        """Compile the request's constraint as SGLang's xgrammar backend does; the reason when
        xgrammar refuses it, None when it compiles (or there is none, or grammars are off)."""
        if self.grammar == "off":
            return None
        started = time.perf_counter()
        try:
            if params.get("json_schema") is not None:
                self.compiler.compile_json_schema(params["json_schema"], any_whitespace=True)
            elif params.get("ebnf") is not None:
                self.compiler.compile_grammar(params["ebnf"])
            elif params.get("regex") is not None:
                self.compiler.compile_regex(params["regex"])
        except (RuntimeError, ValueError, TypeError) as exc:
            return str(exc)
        finally:
            with self.lock:
                self.compile_wall_seconds += time.perf_counter() - started
        return None

    def meta(
        self, prompt: list[int], cached: int, completion: int, finish: dict[str, Any]
    ) -> dict[str, Any]:
        """SGLang 0.5.23's meta_info (tokenizer_manager.py) for a finished NGRAM request."""
        meta: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "finish_reason": finish,
            "prompt_tokens": len(prompt),
            "weight_version": "default",
            "num_retractions": 0,
            "reasoning_tokens": 0,
            "completion_tokens": completion,
            "cached_tokens": cached,
        }
        steps = math.ceil(completion / self.service.tokens_per_step) if completion else 0
        if steps:
            proposed = steps * (self.service.draft_tokens - 1)
            correct = completion - steps  # each step writes its accepted drafts + one token
            meta |= {
                "spec_accept_rate": correct / proposed if proposed else 0.0,
                "spec_accept_length": completion / steps,
                "spec_num_correct_drafts": correct,
                "spec_num_proposed_drafts": proposed,
                "spec_verify_ct": steps,
            }
        return meta


def create_app(emulator: Emulator) -> FastAPI:
    """The runtime's endpoints over `emulator`."""
    app = FastAPI(title="emulated SGLang runtime")
    em = emulator

    def model_info() -> dict[str, Any]:
        return {
            "model_path": str(em.model_path),
            "tokenizer_path": str(em.model_path),
            "is_generation": True,
            "preferred_sampling_params": None,
            "weight_version": "default",
            "has_image_understanding": False,
            "has_audio_understanding": False,
            "model_type": em.model_type,
            "architectures": em.architectures,
        }

    def server_info() -> dict[str, Any]:
        return {
            "model_path": str(em.model_path),
            "context_length": CONTEXT_LENGTH,
            "speculative_algorithm": "NGRAM",
            "grammar_backend": "xgrammar",
            "version": VERSION,
            "internal_states": [{"avg_spec_accept_length": em.service.tokens_per_step}],
            "emulated": {
                "service": em.service.to_json(),
                "grammar": em.grammar,
                "counts": dict(em.counts),
                "compile_wall_seconds": round(em.compile_wall_seconds, 3),
            },
        }

    for path, answer in (
        ("/model_info", model_info),
        ("/get_model_info", model_info),
        ("/server_info", server_info),
        ("/get_server_info", server_info),
    ):
        app.add_api_route(path, answer, methods=["GET"])

    @app.get("/health")
    @app.get("/health_generate")
    def health() -> Response:
        return Response(status_code=200)

    @app.post("/flush_cache")
    def flush_cache() -> Response:
        if em.running:
            return Response("Cache not flushed: requests are running.", status_code=400)
        em.cache.clear()
        em.compiler.clear_cache()  # SGLang's flush resets the grammar backend, compiler included
        return Response("Cache flushed.", status_code=200)

    @app.post("/tokenize")
    async def tokenize(request: Request) -> dict[str, Any]:
        body = await request.json()
        prompts = body.get("prompt")
        special = bool(body.get("add_special_tokens", True))
        single = isinstance(prompts, str)
        texts = [prompts] if single else list(prompts)
        ids = [em.tokenizer(t, add_special_tokens=special)["input_ids"] for t in texts]
        if single:
            return {"tokens": ids[0], "count": len(ids[0]), "max_model_len": CONTEXT_LENGTH}
        counts = [len(i) for i in ids]
        return {"tokens": ids, "count": counts, "max_model_len": CONTEXT_LENGTH}

    @app.post("/add_external_corpus")
    async def add_corpus(request: Request) -> dict[str, Any]:
        body = await request.json()
        loop = asyncio.get_running_loop()
        texts = list(body.get("documents") or ())
        count = await loop.run_in_executor(None, lambda: sum(len(em.tokens(t)) for t in texts))
        em.corpora[str(body["corpus_id"])] = count
        return {"success": True, "message": "", "loaded_token_count": count}

    @app.post("/remove_external_corpus")
    async def remove_corpus(request: Request) -> dict[str, Any]:
        body = await request.json()
        found = em.corpora.pop(str(body.get("corpus_id")), None) is not None
        return {"success": found, "message": "" if found else "no such corpus"}

    @app.get("/list_external_corpora")
    def list_corpora() -> dict[str, Any]:
        return {"success": True, "corpus_token_counts": dict(em.corpora)}

    @app.post("/generate")
    async def generate(request: Request) -> JSONResponse:
        body = await request.json()
        params = body.get("sampling_params") or {}
        loop = asyncio.get_running_loop()
        arrived = time.monotonic()
        em.counts["requests"] += 1
        em.running += 1
        try:
            text = str(body.get("text") or "")
            prompt = await loop.run_in_executor(None, em.tokens, text)
            cached = em.cache.match_and_insert(prompt)
            refused = await loop.run_in_executor(em.compiles, em.compile, params)
            if refused is not None:
                em.counts["refused"] += 1
                kind = "json" if params.get("json_schema") is not None else "ebnf"
                kind = "regex" if params.get("regex") is not None else kind
                return _error(f"Failed to compile {kind} grammar: {refused}")
            limit = params.get("max_new_tokens")
            answer = "" if limit == 0 else em.recording.find(text)
            if answer is None:
                em.counts["missing"] += 1
                return _error("the emulated runtime has no recorded answer for this prompt")
            out = em.tokens(answer) + ([em.eos] if answer else [])
            finish: dict[str, Any] = {"type": "stop", "matched": em.eos}
            if limit is not None and len(out) > limit:
                out = out[:limit]
                answer = str(em.tokenizer.decode(out, skip_special_tokens=True))
                finish = {"type": "length", "length": limit}
            due = em.pacer.due(len(prompt) - cached, max_new_tokens=limit)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            em.counts["answered"] += 1
            meta = em.meta(prompt, cached, len(out), finish)
            meta["e2e_latency"] = time.monotonic() - arrived
            return JSONResponse({"text": answer, "output_ids": out, "meta_info": meta})
        finally:
            em.running -= 1

    return app


def _error(message: str) -> JSONResponse:
    """SGLang's answer to a request it aborts with 400 (http_server.py _create_error_response)."""
    return JSONResponse({"error": {"message": message}}, status_code=400)


def build(
    multiplier: float,
    recording: Recording | None = None,
    compile_threads: int = COMPILE_THREADS,
    model_path: Path | None = None,
    grammar: str = "compile",
) -> Emulator:
    """An emulator over the projected server × `multiplier`, answering `recording` (default:
    the ground truth of the default 1,000-invoice corpus)."""
    from forkpoint.perf.bench.workload import load_workload
    from forkpoint.perf.emulated.service import projected
    from forkpoint.runtime.embedded_model import ensure_smollm2

    if recording is None:
        recording = Recording.ground_truth(load_workload().documents)
    return Emulator(
        recording, projected(multiplier), model_path or ensure_smollm2(), compile_threads, grammar
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=31000)
    parser.add_argument("--multiplier", type=float, default=1.0, help="× the projected rate")
    parser.add_argument("--compile-threads", type=int, default=COMPILE_THREADS)
    parser.add_argument(
        "--grammar",
        choices=("compile", "off"),
        default="compile",
        help="compile every request's grammar as SGLang does, or none (forkpoint's ceiling)",
    )
    parser.add_argument("--recording", type=Path, help="a saved Recording (default: corpus)")
    args = parser.parse_args(argv)
    recording = Recording.load(args.recording) if args.recording else None
    emulator = build(args.multiplier, recording, args.compile_threads, grammar=args.grammar)
    # loopback only: this server answers anyone who reaches it
    uvicorn.run(create_app(emulator), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

"""The extraction task as an SGLang frontend program, with its fork point.

Every document runs the same program: the task prefix (instructions, field guide, few-shot
turns), then the fork point, then the document's turn and a JSON-schema-constrained `sgl.gen`
(or constrained by the document's own grammar when the task has copy fields).
`warm_prefix` runs only the part before the fork point, once, so RadixAttention holds it before
the documents arrive and every document reads it from the cache.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import sglang as sgl
from sglang.lang.backend.base_backend import BaseBackend
from sglang.lang.backend.runtime_endpoint import RuntimeEndpoint
from sglang.lang.chat_template import get_chat_template_by_model_path
from sglang.lang.global_config import global_config
from sglang.lang.interpreter import ProgramState, StreamExecutor
from sglang.lang.ir import SglSamplingParams
from sglang.utils import HttpResponse

from forkpoint.programs.tasks.task import Sampling
from forkpoint.runtime.client import RuntimeClient

OUTPUT = "output"
LOGPROB_ITEMS = (
    "return_logprob",
    "logprob_start_len",
    "top_logprobs_num",
    "return_text_in_logprobs",
)
GREEDY = Sampling()


@sgl.function
def warm_prefix(s: ProgramState, prefix: str) -> None:
    s += prefix
    # max_tokens=0: prefill only; the answer's meta_info counts the prefix tokens.
    s += sgl.gen("warm", max_tokens=0)


class Ebnf(str):
    """An EBNF grammar (a document's copy-field grammar) for `sgl.gen`'s `json_schema` slot.

    SGLang's server takes `ebnf`, but the frontend's `gen` has no such argument and sends only
    `regex` and `json_schema` (`SglSamplingParams.to_srt_kwargs`). The grammar rides in the
    `json_schema` slot as this type, which the frontend passes through untouched, and
    `Endpoint.generate` sends it as `ebnf` instead (SGLang refuses more than one constraint).
    """


# Argument names avoid `max_tokens`/`temperature`: `.run()` takes those as its own defaults.
# `constraint`: the JSON schema, or an Ebnf grammar; it is not in the text, so not in the prefix.
@sgl.function
def extract_document(
    s: ProgramState,
    prefix: str,
    turn: str,
    constraint: str,
    budget: int,
    temp: float,
    nucleus: float,
    stops: list[str],
    logprobs: bool,
) -> None:
    s += prefix
    # ---- fork point: everything above is shared by every document of the task ----
    s += turn
    s += sgl.gen(
        OUTPUT,
        max_tokens=budget,
        temperature=temp,
        top_p=nucleus,
        stop=stops or None,
        json_schema=constraint,
        # each output token's log-probability and text, for the values' confidence
        # (confidence.py); logprob_start_len stays -1: the prompt's are not computed, and the
        # prefix is still read from the cache (schedule_batch.py:1774 caps it only for >= 0)
        return_logprob=logprobs or None,
        return_text_in_logprobs=logprobs or None,
    )


class ServerError(ConnectionError):
    """SGLang answered 5xx: the server's trouble, not the document's, so worth a retry."""


class Endpoint(RuntimeEndpoint):
    """SGLang's frontend backend over forkpoint's runtime client: every request has a timeout
    (the frontend's own urllib calls have none), connections are pooled, and a server error
    (5xx) is told from a refusal (4xx).

    The frontend raises the same bare RuntimeError for both; a 5xx, a dropped connection or a
    timeout becomes a ServerError (an OSError, retried by the extractor), a 4xx stays the
    document's own failure.
    """

    def __init__(self, client: RuntimeClient) -> None:
        BaseBackend.__init__(self)  # not RuntimeEndpoint's: it asks for the model without a timeout
        self.support_concate_and_append = True
        self.client = client
        self.base_url, self.api_key, self.verify = client.url, None, None
        self.model_info = client.model_info()
        self.chat_template = get_chat_template_by_model_path(self.model_info["model_path"])
        # sampling parameters the frontend's `gen` has no argument for (sampling_seed)
        self.extra_params: dict[str, Any] = {}

    def with_client(self, client: RuntimeClient) -> Endpoint:
        """This endpoint through another client (other timeouts): no request, same model."""
        view = copy.copy(self)
        view.client = client
        return view

    def with_params(self, **params: Any) -> Endpoint:
        """This endpoint sending `params` in every request's sampling_params as well."""
        if not params:
            return self
        view = copy.copy(self)
        view.extra_params = {**self.extra_params, **params}
        return view

    def generate(
        self, s: StreamExecutor, sampling_params: SglSamplingParams
    ) -> tuple[str, dict[str, Any]]:
        """As RuntimeEndpoint.generate (text in, text and meta_info out), through the client."""
        self._handle_dtype_to_regex(sampling_params)
        params = sampling_params.to_srt_kwargs()
        if isinstance(params.get("json_schema"), Ebnf):
            params["ebnf"] = str(params.pop("json_schema"))
        data = {
            "text": s.text_,
            "sampling_params": {
                "skip_special_tokens": global_config.skip_special_tokens_in_output,
                "spaces_between_special_tokens": global_config.spaces_between_special_tokens_in_out,
                **params,
                **self.extra_params,
            },
        }
        for item in LOGPROB_ITEMS:  # as RuntimeEndpoint.generate sends them
            value = getattr(sampling_params, item, None)
            if value is not None:
                data[item] = value
        try:
            res = self.client.http.post(
                "/generate",
                json=data,
                timeout=self.client.timeouts.httpx(self.client.timeouts.generate),
            )
        except httpx.HTTPError as exc:
            raise ServerError(
                f"SGLang did not answer /generate: {exc or type(exc).__name__}"
            ) from exc
        self._assert_success(res)
        body = res.json()
        return body["text"], body["meta_info"]

    def _assert_success(self, res: httpx.Response | HttpResponse) -> None:
        # httpx's from generate above; sglang's own from the RuntimeEndpoint methods not overridden
        if res.status_code >= 500:
            raise ServerError(f"SGLang answered {res.status_code}: {res.text[:500]}")
        super()._assert_success(res)


def connect(url: str | RuntimeClient, api_key: str | None = None) -> Endpoint:
    """A frontend backend for a running SGLang server (asks it for its model info once), by
    URL or through a client the caller made (with its own timeouts)."""
    client = url if isinstance(url, RuntimeClient) else RuntimeClient(url, api_key=api_key)
    return Endpoint(client)


def run_warm(endpoint: RuntimeEndpoint, prefix: str) -> dict[str, Any]:
    state = warm_prefix.run(prefix=prefix, backend=endpoint, use_thread=False)
    return state.get_meta_info("warm")


def run_extract(
    endpoint: RuntimeEndpoint,
    *,
    prefix: str,
    turn: str,
    json_schema: str,
    max_tokens: int,
    sampling: Sampling = GREEDY,
    ebnf: str | None = None,
    logprobs: bool = False,
) -> tuple[str, dict[str, Any]]:
    """Run one document; returns the raw output text and SGLang's meta_info. With `ebnf` (the
    document's copy-field grammar, which already holds the schema) it replaces `json_schema`.
    With `logprobs`, meta_info has `output_token_logprobs`: (logprob, token id, token text)."""
    if sampling.seed is not None and isinstance(endpoint, Endpoint):
        endpoint = endpoint.with_params(sampling_seed=sampling.seed)
    state = extract_document.run(
        prefix=prefix,
        turn=turn,
        constraint=json_schema if ebnf is None else Ebnf(ebnf),
        budget=max_tokens,
        temp=sampling.temperature,
        nucleus=sampling.top_p,
        stops=list(sampling.stop),
        logprobs=logprobs,
        backend=endpoint,
        use_thread=False,
    )
    return state[OUTPUT], state.get_meta_info(OUTPUT)

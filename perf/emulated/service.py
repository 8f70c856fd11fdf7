"""How long the emulated runtime takes per request: the GPU projection's server, at a multiple
of its rate.

From perf/projection (`project` at the mid assumptions, the `mixtral-awq-2x4090` profile, the
full-size report project.py reads): seconds per computed prefill token, the decode step at the
running batch, tokens written per verify step, and the server's whole-batch write rate. A
request that computes `c` prompt tokens is answered after its latency
    c × prefill s/token + (output / tokens per step) × decode step
and holds the server for its share of the job's time
    c × prefill s/token + output / write rate,
so a server kept full finishes documents at the projected rate (the projected job's seconds
over its documents), and an idle one in the projected latency. Both are divided by the
multiplier. `output` is the recorded run's mean output per document, not the emulated answer's
length (recording.py: ground-truth answers are shorter than a model's), capped by the request's
`max_new_tokens`: the fork point's warm-up (0) is one prefill, as on SGLang (it decoded a whole
answer's steps before, which put one answer's latency into every gateway job and none into the
bare run, whose warm-up is untimed).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Service:
    """The projected server, `multiplier` times as fast."""

    prefill_seconds_per_token: float
    step_seconds: float
    tokens_per_step: float
    write_tokens_per_second: float
    output_tokens_per_document: float
    projected_documents_per_second: float
    projected_job_seconds: float
    draft_tokens: int = 1  # tokens verified per sequence per step (the profile's)
    multiplier: float = 1.0
    source: str = "perf/projection, mid assumptions"

    def latency(self, computed_tokens: int, max_new_tokens: int | None = None) -> float:
        """Seconds from arrival to answer on a server with room."""
        steps = self.output_tokens(max_new_tokens) / self.tokens_per_step
        own = computed_tokens * self.prefill_seconds_per_token + steps * self.step_seconds
        return own / self.multiplier

    def share(self, computed_tokens: int, max_new_tokens: int | None = None) -> float:
        """Seconds of the whole server this request's work takes."""
        prefill = computed_tokens * self.prefill_seconds_per_token
        decode = self.output_tokens(max_new_tokens) / self.write_tokens_per_second
        return (prefill + decode) / self.multiplier

    def output_tokens(self, max_new_tokens: int | None = None) -> float:
        """What a request writes: the recorded mean, no more than it allows (a prefill-only
        request, `max_new_tokens=0` as the fork point's warm-up, writes nothing)."""
        if max_new_tokens is None:
            return self.output_tokens_per_document
        return min(self.output_tokens_per_document, max(0, max_new_tokens))

    @property
    def documents_per_second(self) -> float:
        return self.projected_documents_per_second * self.multiplier

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def projected(multiplier: float = 1.0, profile: str = "mixtral-awq-2x4090") -> Service:
    """The projection's server for the full-size job (mid assumptions), `multiplier` times as
    fast. No fallback figures: a projection that cannot run here is an error, not a run paced
    at some other commit's numbers."""
    return replace(_project(profile), multiplier=multiplier)


def _project(profile: str) -> Service:
    import json

    from forkpoint.perf.projection.draft_tree import replayed
    from forkpoint.perf.projection.gpu_assumptions import Assumptions
    from forkpoint.perf.projection.gpu_projection import accept_needed, project
    from forkpoint.perf.projection.project import FULL_SIZE, measured_job, profile_setup
    from forkpoint.runtime.profiles import get_profile

    job = measured_job(json.loads(FULL_SIZE.read_text()), "baseline")
    launch = get_profile(profile)
    setup = profile_setup(launch)
    # as project.py's headline: the job replayed at the profile's draft tree leads
    replay = replayed(setup.tree, launch.speculation.max_bfs_breadth)
    if replay:
        job = replace(job, accept_length=accept_needed(setup.draft_tokens, replay[0]))
    outcome = project(job, setup, Assumptions.at("mid"))
    return Service(
        prefill_seconds_per_token=1 / outcome.prefill_tokens_per_s,
        step_seconds=outcome.step_ms / 1e3,
        tokens_per_step=outcome.tokens_per_step,  # capped by the draft tree (draft_tree.py)
        write_tokens_per_second=outcome.write_tokens_per_s,
        output_tokens_per_document=job.output_per_doc,
        projected_documents_per_second=job.docs / outcome.total_s,
        projected_job_seconds=outcome.total_s,
        draft_tokens=setup.draft_tokens,
    )


class Pacer:
    """The server's clock: each request is answered after its latency, and no earlier than the
    server could have done its share of the work behind everything admitted before it (one
    queue of work at the server's rate). Thread-safe."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._busy_until = 0.0
        self._lock = threading.Lock()

    def due(
        self,
        computed_tokens: int,
        arrived: float | None = None,
        max_new_tokens: int | None = None,
    ) -> float:
        """The time.monotonic() at which a request that arrived at `arrived` is answered."""
        now = time.monotonic() if arrived is None else arrived
        share = self.service.share(computed_tokens, max_new_tokens)
        with self._lock:
            self._busy_until = max(self._busy_until, now) + share
            busy = self._busy_until
        return max(now + self.service.latency(computed_tokens, max_new_tokens), busy)

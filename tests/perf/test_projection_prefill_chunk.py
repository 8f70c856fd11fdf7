"""The steady-state prefill chunk and Marlin MoE's efficiency at it."""

import pytest

from forkpoint.perf.projection.gpu_assumptions import Assumptions
from forkpoint.perf.projection.gpu_step import Setup, prefill_seconds_per_token
from forkpoint.perf.projection.prefill_chunk import marlin_share, steady_chunk


def test_a_full_batch_replaces_what_one_step_finishes():
    # 128 sequences writing 3 tokens a step, 210-token answers: ~1.8 documents a step
    assert steady_chunk(128, 3.0, 210, 650) == pytest.approx(128 * 3 / 210 * 650)


def test_a_prefill_batch_holds_at_least_one_document_and_at_most_the_chunk():
    assert steady_chunk(8, 1.0, 210, 650) == 650
    assert steady_chunk(128, 3.0, 10, 650) == 4096


def test_marlin_runs_below_its_peak_share_under_4096_tokens():
    assert marlin_share(4096, 0.0) == marlin_share(8192, 1.0) == 1.0
    assert marlin_share(1024, 0.0) == pytest.approx(0.91)
    assert marlin_share(1024, 1.0) == pytest.approx(0.89)
    shares = [marlin_share(m, 0.5) for m in (128, 300, 700, 1500, 4096)]
    assert shares == sorted(shares)
    assert marlin_share(200, 1.0) <= marlin_share(200, 0.0)


def test_a_small_chunk_costs_more_per_prompt_token():
    mid = Assumptions.at("mid")
    small = prefill_seconds_per_token(Setup(), mid, 1000, chunk=700)
    full = prefill_seconds_per_token(Setup(), mid, 1000, chunk=4096)
    assert small > full

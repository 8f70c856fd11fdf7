"""The measured host-time curve and how the step model uses it."""

import json

import pytest

from forkpoint.perf.projection import host_cost
from forkpoint.perf.projection.gpu_assumptions import Assumptions
from forkpoint.perf.projection.gpu_step import Setup, decode_step, host_curve

CURVE = host_cost.HostCurve(
    source="test",
    machine="test",
    fits={1: (2.0, 0.05), 4: (3.0, 0.2), 8: (4.0, 0.4)},
    plain_fits={1: (1.0, 0.02), 4: (2.0, 0.05), 8: (2.5, 0.1)},
    prefill_ms=5.0,
)


def test_a_measured_draft_count_reads_its_own_line():
    assert CURVE.ms(100, 4) == pytest.approx(23.0)
    assert CURVE.ms(100, 4, grammar=False) == pytest.approx(7.0)


def test_other_draft_counts_are_interpolated_and_extrapolated():
    assert CURVE.ms(100, 6) == pytest.approx((23.0 + 44.0) / 2)
    assert CURVE.ms(100, 16) == pytest.approx(44.0 + (44.0 - 23.0) * 2)


def test_the_committed_measurement_loads_and_names_its_file():
    curve = host_curve()
    assert curve.source.startswith("host-cost-")
    data = json.loads((host_cost.RECORDS / curve.source).read_text())
    assert data["machine"] and data["commit"] and data["date"]
    assert set(curve.fits) >= {1, 4}
    assert curve.ms(128, 4) > curve.ms(1, 4) > 0


def test_the_step_pays_the_host_curve_at_the_assumed_cpu_speed():
    setup = Setup(draft_tokens=4)
    for where in ("low", "high"):
        a = Assumptions.at(where)
        step = decode_step(setup, a, 128, 1500)
        assert step.host == pytest.approx(host_curve().ms(128, 4) * a.host_speed / 1e3)


def test_a_missing_measurement_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="run perf/studies/host_cost.py"):
        host_cost.newest(tmp_path)

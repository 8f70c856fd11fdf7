"""A run's timeline and the wall time it reports come from one clock, rounded one way."""

from forkpoint.perf.bench.timeline import Timeline


def test_no_point_lies_after_the_wall_time_even_within_the_last_millisecond():
    # the last document finishes 18.0529996 s in, the run ends 0.2 µs later: both are 18.053 s
    # (CI once saw the point rounded to 18.053 and the wall left unrounded at 18.05297…)
    readings = iter([100.0, 100.0, 118.0529996, 118.0529998])
    with Timeline("run", 1, clock=lambda: next(readings)) as timeline:
        timeline(800, 90)
        wall = timeline.elapsed()
    assert timeline.points == [(18.053, 800, 90)]
    assert wall == 18.053 and timeline.points[-1][0] <= wall


def test_points_accumulate_tokens_in_the_order_documents_finish():
    readings = iter([0.0, 0.0, 1.0004, 2.5, 3.0])
    with Timeline("run", 2, clock=lambda: next(readings)) as timeline:
        timeline(100, 10)
        timeline(50, 5)
        wall = timeline.elapsed()
    assert timeline.points == [(1.0, 100, 10), (2.5, 150, 15)]
    assert wall == 3.0

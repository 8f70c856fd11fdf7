"""The supervisor's restart budget: a crash loop inside the window makes it give up, and only
until the window has passed; after a window without deaths the budget is full again."""

import subprocess
import time
from pathlib import Path

from forkpoint.runtime.supervisor import RestartBudget, RuntimeSupervisor


def test_the_budget_is_spent_by_a_crash_loop_and_full_again_after_a_window_without_deaths():
    now = [0.0]
    budget = RestartBudget(3, 600.0, clock=lambda: now[0])
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
    assert budget.seconds_until_free() == 600.0
    now[0] = 599.0
    assert not budget.take()
    assert budget.seconds_until_free() == 1.0
    now[0] = 600.0
    assert budget.remaining == 3


def test_the_window_slides_one_old_restart_frees_one_restart():
    now = [0.0]
    budget = RestartBudget(2, 10.0, clock=lambda: now[0])
    assert budget.take()
    now[0] = 6.0
    assert budget.take()
    now[0] = 11.0  # the first restart is out of the window, the second is not
    assert budget.remaining == 1
    assert budget.take()
    assert not budget.take()


class ShortLivedServer:
    """Stands in for RuntimeServer: each start() runs a real child process (`sleep`) that exits
    after the next of `lifetimes` seconds; the supervisor sees it die like a crashed runtime."""

    url = "http://127.0.0.1:9"
    log_path = Path("/dev/null")

    def __init__(self, lifetimes: list[float]) -> None:
        self.lifetimes = lifetimes
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "ShortLivedServer":
        self.process = subprocess.Popen(["sleep", str(self.lifetimes[self.starts])])
        self.starts += 1
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_supervisor_that_gave_up_on_a_crash_loop_restarts_the_runtime_once_the_window_passed():
    server = ShortLivedServer([0.2, 0.2, 60.0])  # two quick deaths, then a runtime that stays up
    supervisor = RuntimeSupervisor(server, max_restarts=1, window_seconds=3.0).start()
    try:
        assert wait_for(lambda: supervisor.gave_up is not None, 10)
        assert "died 1 times within 3 s" in str(supervisor.gave_up)
        assert not supervisor.ready.is_set()
        assert wait_for(lambda: supervisor.ready.is_set(), 10)
        assert supervisor.gave_up is None
        assert supervisor.restarts == 2
        assert server.starts == 3
        assert server.running
    finally:
        supervisor.stop()

"""The outage policy's verdicts, and the work queue's blocking take (the job runner's parts).

The runner's behaviour with a real (fake-HTTP) runtime dying and hanging is in
test_worker_faults.py; these pin each part's own rule."""

import threading

from forkpoint.api.fair_queue import WorkQueue
from forkpoint.api.jobs import WorkItem
from forkpoint.api.outage_policy import OutagePolicy
from forkpoint.errors import RuntimeUnavailable

DOWN = RuntimeUnavailable("the runtime at http://10.0.0.11:30000 did not answer /generate")


class Watch:
    """A runtime watch that says what the test tells it: was the runtime down and back?"""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)

    def wait_back(self, seconds: float) -> bool:
        return self.answers.pop(0)


def test_a_document_met_by_a_death_is_sent_again_and_a_second_death_fails_it():
    policy = OutagePolicy(Watch(True, True), attempts=3, down_wait_seconds=60)
    first = policy.met(("j", 0), DOWN)
    assert first.failure is None and first.delay == 0 and policy.suspect(("j", 0))
    second = policy.met(("j", 0), DOWN)
    assert second.failure.startswith("the runtime died twice while processing this document")
    assert "10.0.0.11" not in second.failure and "<runtime>" in second.failure


def test_outages_while_the_runtime_is_up_back_off_and_the_last_attempt_fails():
    policy = OutagePolicy(Watch(False, False, False), attempts=3, down_wait_seconds=60)
    delays = [policy.met(("j", 1), DOWN).delay for _ in range(2)]
    assert delays == [2.0, 4.0]
    last = policy.met(("j", 1), DOWN)
    reason = "the runtime at <runtime> did not answer /generate"
    assert last.failure == f"the runtime was unavailable on 3 attempts: {reason}"
    assert not policy.suspect(("j", 1))


def test_a_document_with_its_result_starts_over():
    policy = OutagePolicy(Watch(True, False), attempts=2, down_wait_seconds=60)
    policy.met(("j", 2), DOWN)
    policy.forget(("j", 2))
    assert not policy.suspect(("j", 2))
    assert policy.met(("j", 2), DOWN).failure is None  # its first outage again, not its second


def test_stopping_the_queue_wakes_every_waiting_worker():
    queue: WorkQueue[WorkItem] = WorkQueue()
    taken: list[WorkItem | None] = []
    workers = [threading.Thread(target=lambda: taken.append(queue.take())) for _ in range(3)]
    for worker in workers:
        worker.start()
    queue.stop()
    for worker in workers:
        worker.join(timeout=10)
    assert taken == [None, None, None]


def test_a_job_cancelled_before_its_documents_are_queued_queues_none():
    queue: WorkQueue[WorkItem] = WorkQueue()
    queue.add("j", None, [WorkItem("j", 0, "a.txt")], unless=lambda: True)
    queue.add("k", None, [WorkItem("k", 0, "b.txt")])
    assert queue.take() == WorkItem("k", 0, "b.txt")

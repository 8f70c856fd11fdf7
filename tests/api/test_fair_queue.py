"""The workers' queue takes documents in turns between API keys, then between a key's jobs."""

from dataclasses import dataclass

from forkpoint.api.fair_queue import FairQueue


@dataclass(frozen=True)
class Doc:
    job_id: str
    index: int


def docs(job_id: str, n: int) -> list[Doc]:
    return [Doc(job_id, i) for i in range(n)]


def drain(queue: FairQueue[Doc]) -> list[str]:
    taken = []
    while (item := queue.take()) is not None:
        taken.append(f"{item.job_id}{item.index}")
    return taken


def test_one_keys_many_jobs_get_no_more_turns_than_another_keys_one_job():
    queue: FairQueue[Doc] = FairQueue()
    for job in ("a", "b", "c"):
        queue.add(job, "alice", docs(job, 2))
    queue.add("z", "bob", docs("z", 3))
    taken = drain(queue)
    assert taken[:6] == ["a0", "z0", "b0", "z1", "c0", "z2"]  # bob every second turn
    assert taken[6:] == ["a1", "b1", "c1"]
    assert not queue


def test_a_document_put_back_is_taken_next_and_a_dropped_job_is_never_taken():
    queue: FairQueue[Doc] = FairQueue()
    queue.add("a", "alice", docs("a", 2))
    queue.add("z", "bob", docs("z", 2))
    first = queue.take()
    assert first == Doc("a", 0)
    queue.put_back(first)
    assert queue.take() == Doc("a", 0)
    queue.drop("z")
    assert drain(queue) == ["a1"]

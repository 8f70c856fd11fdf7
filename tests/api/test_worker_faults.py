"""What a worker meets that it did not expect: a runtime answering garbage, a runtime that dies
on one document, a task being warmed while others are needed.

The runtime here is a fake over real HTTP (SGLang cannot be made to answer garbage or die on
demand): it answers /health, /model_info and /generate (a prefix warm-up, max_new_tokens 0, is
answered with a token count; an extraction by `answer`). Everything else is the real gateway
code: JobRunner, JobStore, the SGLang frontend endpoint and the extractor.
"""

import gc
import http.server
import json
import logging
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable

import pytest
from http_fakes import JsonHandler

from forkpoint.api.job_task import JobTask
from forkpoint.api.jobs import JobRunner
from forkpoint.api.metrics import Metrics
from forkpoint.api.settings import Settings
from forkpoint.api.store import JobStore
from forkpoint.programs.documents.document import Document
from forkpoint.programs.tasks.task import schema_task

GOOD_ANSWER = b'{"text": "{\\"name\\": \\"Ada Lovelace\\"}", "meta_info": {"prompt_tokens": 9}}'


class FakeRuntime(http.server.ThreadingHTTPServer):
    """A fake SGLang runtime. `answer(text)` gives the body of an extraction's /generate reply,
    or None to drop the connection. `die(seconds)` is a crash and a restart: every request in
    flight is dropped, and for `seconds` /health answers 503 and /generate drops them too."""

    def __init__(self, answer: Callable[[str], bytes | None]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self.warms: Counter[str] = Counter()  # prefix text → warm-ups asked for it
        self.before_warm: Callable[[str], None] = lambda prefix: None
        self.dead_until = 0.0
        self.died = threading.Event()  # set by the next death (then replaced)
        self.generating = 0  # extraction requests being answered right now
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    @property
    def dead(self) -> bool:
        return time.monotonic() < self.dead_until

    def die(self, seconds: float) -> None:
        self.dead_until = time.monotonic() + seconds
        died, self.died = self.died, threading.Event()
        died.set()

    def busy(self, seconds: float) -> bool:
        """Work on a request for `seconds`; False if the runtime died meanwhile."""
        return not self.died.wait(seconds)


class _Handler(JsonHandler):
    server: FakeRuntime

    def do_GET(self):
        if self.path == "/health":
            self._reply(503 if self.server.dead else 200, b"{}")
        elif self.path == "/model_info":
            self._reply(200, b'{"model_path": "Qwen/fake-0.5B"}')
        else:
            self._reply(404, b"{}")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        died = self.server.died
        if self.path != "/generate":
            self._reply(404, b"{}")  # /tokenize: no context length, documents are not fitted
        elif self.server.dead:
            return  # the connection is dropped
        elif body["sampling_params"].get("max_new_tokens") == 0:
            self.server.before_warm(body["text"])
            self.server.warms[body["text"]] += 1
            self._reply(200, b'{"text": "", "meta_info": {"prompt_tokens": 7}}')
        else:
            self.server.generating += 1
            try:
                answer = self.server.answer(body["text"])
            finally:
                self.server.generating -= 1
            if answer is not None and not died.is_set():
                self._reply(200, answer)


@pytest.fixture
def runtimes():
    started: list[FakeRuntime] = []

    def start(answer: Callable[[str], bytes | None]) -> FakeRuntime:
        started.append(FakeRuntime(answer))
        return started[-1]

    yield start
    for runtime in started:
        runtime.shutdown()
        runtime.server_close()


@pytest.fixture
def make_runner(tmp_path):
    runners: list[JobRunner] = []

    def make(runtime: FakeRuntime, **settings) -> JobRunner:
        runner = JobRunner(
            JobStore(tmp_path / f"gateway-{len(runners)}.db"),
            Settings(db_path=tmp_path / "unused.db", sglang_url=runtime.url, **settings),
            Metrics(),
        )
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.stop()
        runner.store.close()


def wait_done(runner: JobRunner, job_id: str, seconds: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + seconds
    while runner.store.get(job_id).state != "done":
        assert time.monotonic() < deadline, f"job not done: {runner.store.counts(job_id)}"
        time.sleep(0.05)
    return runner.store.results(job_id)


def workers_alive(runner: JobRunner) -> int:
    return sum(t.name.startswith("fp-worker-") and t.is_alive() for t in threading.enumerate())


@pytest.mark.parametrize(
    "garbage",
    [b"<html>502 Bad Gateway</html>", b'{"meta": "no text, no meta_info"}'],
    ids=["not-json", "json-without-fields"],
)
def test_a_runtime_answering_garbage_fails_the_document_and_the_worker_lives_on(
    runtimes, make_runner, garbage
):
    runtime = runtimes(lambda text: garbage if "GARBAGE" in text else GOOD_ANSWER)
    runner = make_runner(runtime, concurrency=2)
    runner.start()
    texts = ["Ada Lovelace", "GARBAGE 1", "GARBAGE 2", "GARBAGE 3", "Ada Lovelace again"]
    job, _ = runner.submit(
        JobTask.named("contacts"), [Document(f"d{i}", t) for i, t in enumerate(texts)]
    )
    records = wait_done(runner, job.id)
    assert [r["status"] for r in records] == ["ok", "error", "error", "error", "ok"]
    assert "the gateway failed on this document" in records[1]["error"]
    assert workers_alive(runner) == 2
    assert runner.metrics.registry.get_sample_value("forkpoint_worker_errors_total") == 3
    # the pool still works: a second job runs on the same workers
    again, _ = runner.submit(JobTask.named("contacts"), [Document("d", "Ada Lovelace")])
    assert [r["status"] for r in wait_done(runner, again.id)] == ["ok"]


def test_a_store_that_fails_while_a_document_is_in_flight_leaves_the_worker_alive(
    runtimes, make_runner, caplog
):
    in_flight, answered = threading.Event(), threading.Event()

    def answer(text: str) -> bytes:
        in_flight.set()
        answered.wait(30)
        return GOOD_ANSWER

    runtime = runtimes(answer)
    runner = make_runner(runtime, concurrency=2)
    runner.start()
    runner.submit(JobTask.named("contacts"), [Document("d0", "Ada Lovelace")])
    # Closed only once a worker holds the document and waits on the runtime: closed earlier,
    # the worker would fail on reading the job instead, which is not the case under test.
    assert in_flight.wait(30), "the document never reached the runtime"
    with caplog.at_level(logging.ERROR, logger="forkpoint.jobs"):
        runner.store.close()  # storing its result, and then its error, raise sqlite3 errors
        answered.set()
        errors = "forkpoint_worker_errors_total"
        deadline = time.monotonic() + 30
        while runner.metrics.registry.get_sample_value(errors) != 1:
            assert time.monotonic() < deadline, "no worker error counted within 30 s"
            time.sleep(0.05)
        # The worker's last step on this document: logging that its failure could not be
        # stored either. Then it waits for the next document, if it is still alive.
        while "could not record the failure of document 0" not in caplog.text:
            assert time.monotonic() < deadline, "the worker did not log the failed store"
            time.sleep(0.05)
    time.sleep(0.2)  # time enough for a worker that died on it to be gone
    assert workers_alive(runner) == 2


def inline_task(name: str):
    schema = {"type": "object", "properties": {name: {"type": "string"}}, "required": [name]}
    return schema_task(json.dumps(schema), f"Extract field {name} (task {name}).")


def warms_of(runtime: FakeRuntime, name: str) -> int:
    return sum(n for prefix, n in runtime.warms.items() if f"(task {name})" in prefix)


def test_warmed_tasks_are_kept_up_to_max_warm_tasks_the_least_recently_used_dropped_first(
    runtimes, make_runner
):
    runtime = runtimes(lambda text: GOOD_ANSWER)
    runner = make_runner(runtime, max_warm_tasks=2)
    a, b, c = inline_task("alpha"), inline_task("beta"), inline_task("gamma")
    first_a = runner.extractor(a)
    runner.extractor(b)
    assert runner.extractor(a) is first_a  # a hit: alpha is now the most recently used
    runner.extractor(c)  # a third task: beta, the least recently used, is dropped
    assert runner.extractor(a) is first_a
    runner.extractor(b)  # warmed again
    assert [warms_of(runtime, name) for name in ("alpha", "beta", "gamma")] == [1, 2, 1]


def test_warming_one_task_holds_up_neither_other_tasks_nor_a_second_warm_up_of_itself(
    runtimes, make_runner
):
    runtime = runtimes(lambda text: GOOD_ANSWER)
    slow_warm_started, release = threading.Event(), threading.Event()

    def before_warm(prefix: str) -> None:
        if "(task slow)" in prefix:
            slow_warm_started.set()
            release.wait(10)  # a runtime busy computing a long prefix

    runtime.before_warm = before_warm
    runner = make_runner(runtime)
    slow, fast = inline_task("slow"), inline_task("fast")
    got: dict[str, object] = {}

    def get(label: str, task) -> threading.Thread:
        thread = threading.Thread(target=lambda: got.__setitem__(label, runner.extractor(task)))
        thread.start()
        return thread

    first = get("slow-1", slow)
    assert slow_warm_started.wait(5)
    second = get("slow-2", slow)  # the same task: waits for the warm-up under way
    other = get("fast", fast)
    other.join(timeout=3)
    assert not other.is_alive(), "warming 'fast' waited for 'slow' to finish warming"
    assert "slow-1" not in got and "slow-2" not in got
    release.set()
    first.join(timeout=5)
    second.join(timeout=5)
    assert got["slow-1"] is got["slow-2"]
    assert warms_of(runtime, "slow") == 1
    assert warms_of(runtime, "fast") == 1


def test_inline_schema_jobs_with_the_same_schema_and_other_instructions_get_their_own_prompt(
    runtimes, make_runner
):
    runtime = runtimes(lambda text: GOOD_ANSWER)
    runner = make_runner(runtime)
    schema = json.dumps({"type": "object", "properties": {"name": {"type": "string"}}})
    first = runner.extractor(schema_task(schema, "Extract the sender (task sender)."))
    second = runner.extractor(schema_task(schema, "Extract the recipient (task recipient)."))
    assert "task recipient" in second.prompt.prefix
    assert first is not second


def test_a_document_the_runtime_dies_on_twice_fails_alone_and_its_job_finishes(
    runtimes, make_runner
):
    """POISON kills the runtime on every try; SLOW is innocent but in flight when it dies."""

    def answer(text: str) -> bytes | None:
        if "POISON" in text:
            runtime.die(0.5)
            return None
        if "SLOW" in text and not runtime.busy(1.5):
            return None
        return GOOD_ANSWER

    runtime = runtimes(answer)
    runner = make_runner(runtime, concurrency=2)
    runner.start()
    texts = ["POISON Ada", "SLOW Ada", "Ada Lovelace"]
    job, _ = runner.submit(
        JobTask.named("contacts"), [Document(f"d{i}", t) for i, t in enumerate(texts)]
    )
    records = wait_done(runner, job.id, seconds=45)
    assert [r["status"] for r in records] == ["error", "ok", "ok"]
    assert "the runtime died twice while processing this document" in records[0]["error"]
    assert workers_alive(runner) == 2


def test_queued_documents_stay_in_the_store_not_in_the_gateways_memory(runtimes, make_runner):
    answering = threading.Event()
    runtime = runtimes(lambda text: GOOD_ANSWER if answering.wait(60) else None)
    runner = make_runner(runtime, concurrency=1)
    runner.start()
    texts = [f"Ada Lovelace {i}. " + "x" * 250_000 for i in range(40)]  # 10 MB queued
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    job, _ = runner.submit(
        JobTask.named("contacts"), [Document(f"d{i}", t) for i, t in enumerate(texts)]
    )
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    answering.set()
    assert held < 2_000_000, f"{held:,} bytes held for a queue of 40 documents of 250 KB"
    deadline = time.monotonic() + 60
    while not runner.store.results(job.id):  # and the queue still runs: texts come from disk
        assert time.monotonic() < deadline, "no document of the queued job done within 60 s"
        time.sleep(0.05)
    assert runner.store.results(job.id)[0]["status"] == "ok"


def test_stopping_waits_a_bounded_time_in_all_however_many_workers_hang(runtimes, make_runner):
    hung = threading.Event()
    runtime = runtimes(lambda text: GOOD_ANSWER if hung.wait(60) else None)
    runner = make_runner(runtime, concurrency=8)
    runner.start()
    texts = [f"Ada Lovelace {i}" for i in range(8)]
    runner.submit(JobTask.named("contacts"), [Document(f"d{i}", t) for i, t in enumerate(texts)])
    deadline = time.monotonic() + 30
    while runtime.generating < 8:  # every worker waits on the runtime
        assert time.monotonic() < deadline, f"{runtime.generating} of 8 workers reached it in 30 s"
        time.sleep(0.05)
    grace = 2.0
    started = time.monotonic()
    runner.stop(grace_seconds=grace)
    took = time.monotonic() - started
    hung.set()
    # A grace per worker would take 8 × 2 s = 16 s; the bound leaves a loaded machine 4 s.
    assert took < 3 * grace, f"stop took {took:.1f} s with 8 hung workers ({grace} s grace)"

"""Where the runtime is and how to talk to it (Target, resolved once), and the pool of warmed
extractors a server with many tasks keeps.

The runtime is a fake over real HTTP: it answers /model_info with the model it is told to
serve, and a prefix warm-up (/generate with max_new_tokens 0) with a token count, counting the
warm-ups per prefix; it can hold a warm-up, refuse one, or not answer /model_info for a while.
Everything else is real: the resolver, the SGLang frontend endpoint, the extractor, the pool.
"""

import http.server
import json
import threading
from collections import Counter

import pytest
from http_fakes import JsonHandler

from forkpoint.errors import ProfileError, RuntimeUnavailable
from forkpoint.programs.extractor_pool import ExtractorPool
from forkpoint.programs.target import LazyTarget, Target, resolve_target
from forkpoint.programs.tasks.task import schema_task
from forkpoint.runtime.client import Timeouts
from forkpoint.runtime.launcher import free_port
from forkpoint.runtime.profiles import get_profile

QWEN, MIXTRAL, UNKNOWN = "Qwen/fake-0.5B", "mistralai/Mixtral-8x7B-Instruct-v0.1", "acme/m-1"


class FakeRuntime(http.server.ThreadingHTTPServer):
    def __init__(self, model_path: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.model_path = model_path
        self.warms: Counter[str] = Counter()  # prefix text → warm-ups asked for it
        self.model_infos = 0  # /model_info requests answered
        self.before_warm = lambda prefix: None
        self.refused_warms = 0  # the next this many warm-ups are answered 400
        self.info_down = 0  # the next this many /model_info requests are answered 503
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def warms_of(self, name: str) -> int:
        return sum(n for prefix, n in self.warms.items() if f"(task {name})" in prefix)


class _Handler(JsonHandler):
    server: FakeRuntime

    def do_GET(self):
        if self.path != "/model_info":
            self._reply(404, b"{}")
        elif self.server.info_down:
            self.server.info_down -= 1
            self._reply(503, b"{}")
        else:
            self.server.model_infos += 1
            self._reply(200, json.dumps({"model_path": self.server.model_path}).encode())

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/generate" or body["sampling_params"].get("max_new_tokens") != 0:
            self._reply(404, b"{}")  # /tokenize: no context length
            return
        self.server.before_warm(body["text"])
        self.server.warms[body["text"]] += 1
        if self.server.refused_warms:
            self.server.refused_warms -= 1
            self._reply(400, b'{"error": "refused"}')
        else:
            self._reply(200, b'{"text": "", "meta_info": {"prompt_tokens": 7}}')


@pytest.fixture
def runtime():
    started: list[FakeRuntime] = []

    def start(model_path: str = QWEN) -> FakeRuntime:
        started.append(FakeRuntime(model_path))
        return started[-1]

    yield start
    for fake in started:
        fake.shutdown()
        fake.server_close()


def task(name: str):
    schema = {"type": "object", "properties": {name: {"type": "string"}}}
    return schema_task(json.dumps(schema), f"Extract field {name} (task {name}).")


# -- the target: URL, chat format, timeouts, key ---------------------------------------------


def test_a_given_chat_format_is_used_when_it_fits_the_served_model(runtime):
    fake = runtime(QWEN)
    target = resolve_target(
        fake.url, launched=get_profile("mixtral-awq-2x4090"), chat_format="chatml"
    )
    assert target == Target(fake.url, "chatml")


def test_the_launched_profiles_format_is_used_for_a_runtime_we_started(runtime):
    fake = runtime(UNKNOWN)  # a family forkpoint does not know: only the profile can say
    assert resolve_target(fake.url, launched=get_profile("cpu-small")).chat_format == "chatml"
    with pytest.raises(ProfileError, match="does not know"):
        resolve_target(fake.url)  # someone else's runtime: the model has to say


def test_without_a_format_or_a_launched_profile_the_served_models_format_is_used(runtime):
    assert resolve_target(runtime(MIXTRAL).url).chat_format == "mixtral-v1"
    assert resolve_target(runtime(QWEN).url).chat_format == "chatml"


def test_a_format_that_does_not_fit_the_served_model_is_a_profile_error(runtime):
    fake = runtime(QWEN)
    with pytest.raises(ProfileError, match="whose prompts use chatml, not mixtral-v1"):
        resolve_target(fake.url, chat_format="mixtral-v1")
    with pytest.raises(ProfileError, match="not mixtral-v1"):  # the profile's, checked too
        resolve_target(fake.url, launched=get_profile("mixtral-awq-2x4090"))


def test_a_runtime_someone_else_runs_that_does_not_answer_names_the_option_to_drop():
    with pytest.raises(RuntimeUnavailable) as refused:
        resolve_target(f"http://127.0.0.1:{free_port()}", check_seconds=2)
    assert "omit --sglang-url" in (refused.value.hint or "")


def test_a_bounded_target_waits_no_longer_than_its_seconds_on_any_call():
    bounded = Target("http://runtime", "chatml").bounded(3.0)
    assert (bounded.timeouts.connect, bounded.timeouts.call, bounded.timeouts.generate) == (3, 3, 3)
    assert Target("http://runtime", "chatml").bounded(60.0).timeouts.connect == Timeouts.connect


def test_a_lazy_target_asks_again_after_a_runtime_that_did_not_answer(runtime):
    fake = runtime(MIXTRAL)
    fake.info_down = 1
    lazy = LazyTarget(fake.url)
    with pytest.raises(RuntimeUnavailable):
        lazy.get()
    assert lazy.get() is lazy.get()  # resolved once, then kept
    assert lazy.get().chat_format == "mixtral-v1" and fake.model_infos == 1


# -- the pool: one warmed extractor per task ----------------------------------------------------


def test_concurrent_callers_of_one_task_share_its_one_warm_up(runtime):
    fake = runtime()
    pool = ExtractorPool(Target(fake.url, "chatml"))
    warming, release = threading.Event(), threading.Event()

    def before_warm(prefix: str) -> None:
        if "(task shared)" in prefix:
            warming.set()
            release.wait(10)  # a runtime busy computing a long prefix

    fake.before_warm = before_warm
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(pool.get(task("shared"))))]
    threads[0].start()
    assert warming.wait(5)
    for _ in range(5):  # the same task while its warm-up is under way
        threads.append(threading.Thread(target=lambda: got.append(pool.get(task("shared")))))
        threads[-1].start()
    other = pool.get(task("other"))  # another task goes on meanwhile
    assert got == [] and other.prefix_tokens == 7
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert len(got) == 6 and all(extractor is got[0] for extractor in got)
    assert fake.warms_of("shared") == 1


def test_a_failed_warm_up_is_tried_again_by_the_next_caller(runtime):
    fake = runtime()
    fake.refused_warms = 1
    pool = ExtractorPool(Target(fake.url, "chatml"))
    with pytest.raises(RuntimeError):
        pool.get(task("flaky"))
    assert pool.get(task("flaky")).prefix_tokens == 7
    assert fake.warms_of("flaky") == 2


def test_past_max_warm_tasks_the_least_recently_used_task_is_dropped(runtime):
    fake = runtime()
    pool = ExtractorPool(Target(fake.url, "chatml"), max_warm_tasks=2)
    a, b, c = task("alpha"), task("beta"), task("gamma")
    first_a = pool.get(a)
    pool.get(b)
    assert pool.get(a) is first_a  # a hit: alpha is now the most recently used
    pool.get(c)  # beta, the least recently used, is dropped
    assert pool.get(a) is first_a
    pool.get(b)  # built and warmed again
    assert [fake.warms_of(name) for name in ("alpha", "beta", "gamma")] == [1, 2, 1]


def test_tasks_are_told_apart_by_content_not_name(runtime):
    fake = runtime()
    pool = ExtractorPool(Target(fake.url, "chatml"))
    schema = json.dumps({"type": "object", "properties": {"name": {"type": "string"}}})
    sender = pool.get(schema_task(schema, "Extract the sender (task sender)."))
    recipient = pool.get(schema_task(schema, "Extract the recipient (task recipient)."))
    assert sender is not recipient and "task recipient" in recipient.prompt.prefix


def test_a_bounded_extractor_is_the_pools_entry_seen_with_bounded_timeouts(runtime):
    fake = runtime()
    pool = ExtractorPool(Target(fake.url, "chatml"), deadline_seconds=1800.0)
    early = pool.bounded(task("sync"), 5.0)  # first: built within the bound, not warmed
    assert fake.warms_of("sync") == 0 and early.endpoint.client.timeouts.generate == 5.0
    warmed = pool.get(task("sync"))  # the same entry, warmed once now, with the full timeouts
    assert fake.warms_of("sync") == 1 and fake.model_infos == 1
    assert warmed.endpoint.client.timeouts == Timeouts() and warmed.deadline_seconds == 1800.0
    later = pool.bounded(task("sync"), 5.0)
    assert (later.prompt, later.prefix_tokens, later.deadline_seconds) == (warmed.prompt, 7, 5.0)
    assert fake.model_infos == 1  # a view: no request of its own
    assert warmed.endpoint.client.timeouts == Timeouts()  # the entry itself is untouched


def test_a_dropped_task_is_built_and_warmed_again(runtime):
    fake = runtime()
    pool = ExtractorPool(Target(fake.url, "chatml"))
    first = pool.get(task("again"))
    pool.drop(task("again"))
    assert pool.get(task("again")) is not first
    assert fake.warms_of("again") == 2

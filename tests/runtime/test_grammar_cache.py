"""The bound on SGLang's grammar caches: the real SGLang classes patched in-process, the
environment the launcher gives every profile, and a fresh process loading the patch at start-up."""

import os
import subprocess
import sys
from concurrent.futures import Future

import pytest
import sglang.srt.constrained.base_grammar_backend as base
import xgrammar

from forkpoint.runtime import grammar_cache
from forkpoint.runtime.grammar_cache import BoundedGrammarCache
from forkpoint.runtime.launcher import launch_argv, server_env, server_site_dir
from forkpoint.runtime.profiles import get_profile


@pytest.fixture
def installed(monkeypatch):
    """install() for one test; then SGLang's classes, the import hooks and the bound as they
    were (monkeypatch puts back what the test started with)."""
    import sglang.srt.constrained.xgrammar_backend as xg

    for cls in (base.BaseGrammarBackend, xg.XGrammarGrammarBackend):
        monkeypatch.setattr(cls, "__init__", cls.__dict__["__init__"])
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(grammar_cache, "_max_entries", grammar_cache._max_entries)
    return grammar_cache.install


def test_the_cache_keeps_the_most_recently_used_entries():
    cache = BoundedGrammarCache(2)
    cache["a"], cache["b"] = 1, 2
    assert cache.get("a") == 1  # a is now the most recent
    cache["c"] = 3
    assert list(cache) == ["a", "c"]
    assert cache["a"] == 1 and cache.get("b") is None and "b" not in cache
    cache.update({"d": 4, "e": 5})
    assert list(cache) == ["d", "e"]
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        BoundedGrammarCache(0)


def test_a_real_backend_evicts_the_least_recently_used_grammar(installed):
    installed(3)
    backend = base.BaseGrammarBackend()
    assert isinstance(backend.cache, BoundedGrammarCache) and backend.cache.max_entries == 3
    keys = [("ebnf", f"root ::= {i}") for i in range(4)]
    grammars = [base.BaseGrammarObject() for _ in keys]  # SGLang's own grammar class
    for key, grammar in zip(keys[:3], grammars, strict=False):
        backend.set_cache(key, grammar)

    value, cached = backend.get_cached_or_future_value(keys[0], require_reasoning=False)
    assert cached and value is grammars[0]  # BaseGrammarObject.copy() returns itself
    backend.set_cache(keys[3], grammars[3])

    assert keys[0] in backend.cache  # read last, so kept
    assert keys[1] not in backend.cache  # the least recently used went
    assert len(backend.cache) == 3
    future, cached = backend.get_cached_or_future_value(keys[1], require_reasoning=False)
    assert not cached and isinstance(future, Future)  # evicted: compiled again
    future.result(timeout=30)
    backend.reset()
    assert len(backend.cache) == 0


def test_installing_twice_wraps_once_and_takes_the_new_bound(installed):
    installed(3)
    init = base.BaseGrammarBackend.__init__
    installed(5)
    assert base.BaseGrammarBackend.__init__ is init
    assert not getattr(init.__wrapped__, "__forkpoint_grammar_cache__", False)
    assert base.BaseGrammarBackend().cache.max_entries == 5
    hooks = [f for f in sys.meta_path if type(f).__name__ == "_PatchOnImport"]
    assert len(hooks) == 1


class _Tokenizer:
    """A tokenizer as SGLang's xgrammar backend takes one (`init_xgrammar`): a real xgrammar
    TokenizerInfo over a 100-token vocabulary, so the backend compiles real grammars."""

    vocab = ["</s>", *(chr(c) for c in range(32, 127)), "ab", "cd", "ef", "gh"][:100]

    def init_xgrammar(self):
        return xgrammar.TokenizerInfo(self.vocab, stop_token_ids=[0]), None


def test_the_xgrammar_backend_bounds_both_of_its_caches(installed):
    import sglang.srt.constrained.xgrammar_backend as xg

    installed(2)
    backend = xg.XGrammarGrammarBackend(_Tokenizer(), vocab_size=len(_Tokenizer.vocab))
    assert isinstance(backend.cache, BoundedGrammarCache) and backend.cache.max_entries == 2
    assert backend.grammar_compiler.cache_limit_bytes == 2 * grammar_cache.ENTRY_BYTES

    key = ("ebnf", 'root ::= "ab" [a-z]*')
    future, cached = backend.get_cached_or_future_value(key, require_reasoning=False)
    assert not cached
    grammar = future.result(timeout=60)
    assert isinstance(grammar, xg.XGrammarGrammar)
    backend.set_cache(key, grammar.copy())  # as SGLang's grammar manager does
    copied, cached = backend.get_cached_or_future_value(key, require_reasoning=False)
    assert cached and isinstance(copied, xg.XGrammarGrammar) and copied is not grammar
    for i in range(2):
        backend.set_cache(("ebnf", f'root ::= "{i}"'), grammar.copy())
    assert key not in backend.cache


def test_every_profile_gets_the_server_site_and_the_bound():
    gpu = get_profile("mixtral-awq-2x4090")
    env = server_env(gpu, {"PYTHONPATH": "/elsewhere", "PATH": "/usr/bin"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(server_site_dir()), "/elsewhere"]
    assert (server_site_dir() / "sitecustomize.py").is_file()
    assert env[grammar_cache.ENV] == str(grammar_cache.DEFAULT_ENTRIES)
    assert env["NCCL_P2P_DISABLE"] == "1"  # the profile's own env is still there
    assert "LD_LIBRARY_PATH" not in env  # the libcuda stub is for the CPU only

    smaller = gpu.model_copy(update={"grammar_cache_entries": 7})
    assert server_env(smaller, {})[grammar_cache.ENV] == "7"
    assert launch_argv(smaller) == launch_argv(gpu)  # an env var, not an SGLang flag

    cpu = server_env(get_profile("cpu-small"), {})
    assert cpu["PYTHONPATH"] == str(server_site_dir()) and grammar_cache.ENV in cpu


def _run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def test_a_fresh_process_with_the_launchers_env_gets_the_bounded_cache():
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env = server_env(get_profile("mixtral-awq-2x4090").model_copy(update={"port": 0}), environ)
    env[grammar_cache.ENV] = "17"

    # sitecustomize imports neither SGLang nor torch: it only hooks the grammar modules.
    loaded = _run("import sys; print('sglang' in sys.modules, 'torch' in sys.modules)", env)
    assert loaded.split() == ["False", "False"]

    out = _run(
        "import logging; logging.basicConfig(level=logging.INFO)\n"
        "import sglang.srt.constrained.base_grammar_backend as b\n"
        "cache = b.BaseGrammarBackend().cache\n"
        "print(type(cache).__name__, cache.max_entries)",
        env,
    )
    assert "BoundedGrammarCache 17" in out
    assert "forkpoint: SGLang grammar cache bounded at 17 entries" in out


@pytest.mark.slow
def test_the_session_servers_scheduler_bounds_its_grammar_cache(sglang_server):
    log = sglang_server.log_path.read_text(errors="replace")
    bound = sglang_server.profile.grammar_cache_entries
    assert f"forkpoint: SGLang grammar cache bounded at {bound} entries" in log
    assert "forkpoint: xgrammar compiler cache bounded at" in log

# perf/studies/host_cost.py puts this folder first on the SGLang child's PYTHONPATH in place of
# runtime/server_site: the same start-up as there, plus timers around the scheduler's phases.
from forkpoint.perf.studies import host_cost_timers
from forkpoint.runtime import cpu_speculation, grammar_cache, server_key

server_key.install()
cpu_speculation.install()
grammar_cache.install(grammar_cache.entries_from_env())
host_cost_timers.install()

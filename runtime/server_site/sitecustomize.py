# Loaded by Python at start-up in every process of an SGLang server the launcher starts (the
# launcher puts this folder first on the child's PYTHONPATH): the server itself, the scheduler,
# the detokenizer. None of the calls imports SGLang or torch here.
# - forkpoint.runtime.server_key: the runtime key, from FORKPOINT_SERVER_API_KEY (then removed
#   from the environment) onto SGLang's ServerArgs, never on the argv, redacted in the log;
# - forkpoint.runtime.cpu_speculation: NGRAM's missing kernels on the CPU engine (a no-op off it);
# - forkpoint.runtime.grammar_cache: a bound on SGLang's compiled-grammar caches, at
#   FORKPOINT_GRAMMAR_CACHE_ENTRIES entries (the profile's grammar_cache_entries).
from forkpoint.runtime import cpu_speculation, grammar_cache, server_key

server_key.install()
cpu_speculation.install()
grammar_cache.install(grammar_cache.entries_from_env())

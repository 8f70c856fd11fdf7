"""sglang-router with the runtime key from the environment, never on its argv.

`python -m forkpoint.runtime.router_launch ARGS` takes the same ARGS as
`python -m sglang_router.launch_router` (parsed by its `parse_router_args`) except `--api-key`,
which it refuses: an argv is world-readable (`ps`, /proc/PID/cmdline). The key the router sends
to its workers comes from $FORKPOINT_RUNTIME_API_KEY instead; it is taken out of `os.environ`
and set on the parsed `RouterArgs.api_key` before `launch_router` starts the Rust router.

What the router logs, read in its source (sglang-router 0.3.2):
- Python (sglang_router/launch_router.py, router.py, router_args.py): nothing logs the parsed
  args or `api_key`. `RouterArgs` is a dataclass whose repr would show the key, but nothing
  prints it; `launch_router` logs only `Error starting router: {exception}`. So there is
  nothing to redact on the Python side.
- Rust (sglang_router_rs.abi3.so, built from sglang's src/server.rs; its `startup` as stored in
  sgl-project/sglang): it logs host, port, mode (worker URLs), policy and payload limit, and the
  workers it registered, not the config as a whole. Seen running 0.3.2 with --log-level debug
  and a stub worker: the key is in none of its log lines; the workers get it as
  `Authorization: Bearer` on /model_info and /server_info (not on /health); and the router
  then requires it of its own callers too (/generate and /workers answer 401 without it).

Popping the variable keeps it from anything the router might start; /proc/PID/environ still
shows the environment the process started with, to its own user only (as for SGLang servers,
runtime/server_key.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping, Sequence

from sglang_router.launch_router import launch_router, parse_router_args
from sglang_router.router_args import RouterArgs

from forkpoint.runtime.client import RUNTIME_KEY_ENV

KEY_ON_ARGV = (
    "--api-key would put the runtime key on the router's command line, where `ps` shows it to "
    f"every user; set {RUNTIME_KEY_ENV} in the router's environment instead"
)


def router_args(argv: Sequence[str], environ: MutableMapping[str, str] | None = None) -> RouterArgs:
    """`argv` parsed as sglang_router.launch_router does, with `api_key` taken (popped) from
    $FORKPOINT_RUNTIME_API_KEY in `environ` (ours by default). ValueError if `argv` sets a key."""
    args = parse_router_args(list(argv))
    if args.api_key is not None:  # after parsing: also catches `--api-key=K` and `--api-k K`
        raise ValueError(KEY_ON_ARGV)
    args.api_key = (os.environ if environ is None else environ).pop(RUNTIME_KEY_ENV, None) or None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = router_args(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(f"forkpoint.runtime.router_launch: error: {exc}", file=sys.stderr)
        return 2
    launch_router(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

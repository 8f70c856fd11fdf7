"""How many parallel slots suit llama-server on this machine: the peer gets its best setting.

    ./dev python perf/peers/slots.py --docs 32 --slots 1,2,4,8,16,32

The same documents, prompts and schema as bench.py's peer run, once per slot count (client
concurrency = slots). Saves perf/results/peer-slots-<date>-<commit>.json and .md.
"""

from __future__ import annotations

import argparse
import json

from forkpoint.perf.bench import bench
from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.bench.machine import describe, heading
from forkpoint.perf.bench.results import add_out_argument, save
from forkpoint.perf.peers.llamacpp import PeerServer, run_peer
from forkpoint.programs.prompt import task_prompt
from forkpoint.programs.tasks.registry import get_task

KEYS = (
    "wall_seconds",
    "read_tokens_per_second",
    "write_tokens_per_second",
    "computed_prefill_tokens",
    "output_tokens",
    "ok",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--min-tokens", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=600)
    parser.add_argument("--slots", default="1,2,4,8,16,32")
    parser.add_argument("--task", default="invoices")
    add_out_argument(parser)
    args = parser.parse_args()
    task = get_task(args.task)
    prompt = task_prompt(task, "chatml")  # the embedded model's format
    spec = CorpusSpec(args.docs, args.min_tokens, args.max_tokens)
    documents = generate(spec)
    rows = []
    for slots in [int(n) for n in args.slots.split(",")]:
        with PeerServer("llama-server", slots=slots) as peer:
            run_peer(peer, prompt, task, documents[:2], min(slots, 2), 0)  # warm-up
            figures = bench.measure(
                f"{slots} slots", *run_peer(peer, prompt, task, documents, slots, 0)
            )
        rows.append({"slots": slots, **{key: figures[key] for key in KEYS}})
        print(json.dumps(rows[-1]), flush=True)
    report = {**describe(), "flags": vars(args), "corpus": vars(spec), "rows": rows}
    details = (
        f"{args.docs} invoices, {args.min_tokens}–{args.max_tokens} tokens; client "
        "concurrency = slots."
    )
    save(
        "peer-slots",
        report,
        [
            *heading("llama-server slots", report, details),
            "| slots | wall s | read tok/s | write tok/s | computed prefill | output tok | valid |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {r['slots']} | {r['wall_seconds']} | {r['read_tokens_per_second']} | "
                f"{r['write_tokens_per_second']} | {r['computed_prefill_tokens']:,} | "
                f"{r['output_tokens']:,} | {r['ok']}/{args.docs} |"
                for r in rows
            ),
        ],
        args.out,
    )


if __name__ == "__main__":
    main()

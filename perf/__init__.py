"""How fast forkpoint is, in four parts: `bench` (the benchmark and `forkpoint calibrate`, what
the CLI runs), `projection` (the model of a job on the 2×RTX 4090 server), `peers` (other engines
serving the same job: llama.cpp, vLLM) and `studies` (one-off measurements behind README figures).
Where result files go is bench/results.py; the committed records are a checkout's perf/results/."""

from pathlib import Path

# The committed benchmark records the README cites: a checkout's perf/results/. An installed
# package has none (they are not package data).
RECORDS = Path(__file__).resolve().parent / "results"

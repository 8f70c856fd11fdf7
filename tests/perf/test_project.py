"""The GPU projection takes its token counts from a saved bench report, never invents them."""

import json
import subprocess
import sys
from pathlib import Path

PERF = Path(__file__).resolve().parents[2] / "perf"
FULL_SIZE = PERF / "results" / "bench-2026-11-30-bf8fb1c-1000docs.json"  # the measured default job


def project(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PERF / "project.py"), *args],
                          capture_output=True, text=True)  # fmt: skip


def test_a_bench_report_gives_the_projection_its_measured_token_counts():
    baseline = json.loads(FULL_SIZE.read_text())["runs"]["baseline"]
    done = project("--from", str(FULL_SIZE), "--accept-length", "2.0", "--draft-tokens", "8")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    job = answer["job"]
    assert answer["projected"] is True
    assert job["docs"] == baseline["documents"] == 1000
    assert job["computed_prefill_tokens"] == baseline["computed_prefill_tokens"]
    assert job["output_tokens"] == baseline["output_tokens"]
    # speculation is the projection's setting, not the small CPU model's accept length
    assert (job["accept_length"], job["draft_tokens"]) == (2.0, 8)
    assert answer["result"]["total_seconds"] > 0


def test_a_run_the_report_does_not_hold_is_a_clear_error():
    done = project("--from", str(FULL_SIZE), "--run", "gateway")
    assert done.returncode != 0
    assert "no measured run 'gateway' (measured: baseline)" in done.stderr

"""perf/studies/prefill_batches.py reads SGLang's own "Prefill batch" lines (these are copied
from a cpu-small server's log) and splits steady state from the first wave."""

from forkpoint.perf.studies.prefill_batches import batches, study

LOG = """\
[2026-12-06 18:28:10] Prefill batch, #new-seq: 1, #new-token: 856, #cached-token: 0, token usage: 0.00, #running-req: 0, #queue-req: 0, #pending-token: 0, cpu graph: False, input throughput (token/s): 389.07
[2026-12-06 18:29:01] Decode batch, #running-req: 32, #token: 30000, token usage: 0.80, accept len: 4.00, cpu graph: False, gen throughput (token/s): 40.0, #queue-req: 0
[2026-12-06 18:51:11] Prefill batch, #new-seq: 3, #new-token: 2032, #cached-token: 2609, token usage: 0.78, #running-req: 28, #queue-req: 0, #pending-token: 0, cpu graph: False, input throughput (token/s): 12.86
[2026-12-06 18:51:12] Prefill batch, #new-seq: 1, #new-token: 523, #cached-token: 869, token usage: 0.79, #running-req: 31, #queue-req: 0, #pending-token: 0, cpu graph: False, input throughput (token/s): 399.38
[2026-12-06 18:59:00] Prefill batch, #new-seq: 1, #new-token: 600, #cached-token: 869, token usage: 0.79, #running-req: 31, #queue-req: 0, #pending-token: 0, cpu graph: False, input throughput (token/s): 399.38
"""  # noqa: E501


def test_prefill_batches_are_read_within_the_window_and_split_at_half_running():
    rows = batches(LOG, since="2026-12-06 18:28:00", until="2026-12-06 18:55:00")
    assert [r["documents"] for r in rows] == [1, 3, 1]  # no decode line, nothing after 18:55
    assert rows[1] == {
        "at": "2026-12-06 18:51:11",
        "documents": 3,
        "new_tokens": 2032,
        "cached_tokens": 2609,
        "running": 28,
    }
    report = study(rows, concurrency=32, accept=4.0, answer_tokens=200.0)
    assert report["steady"]["batches"] == 2 and report["rest"]["batches"] == 1
    assert report["steady"]["documents_per_batch"] == 2.0
    assert report["steady"]["new_tokens_per_document"] == round((2032 + 523) / 4, 1)
    assert report["steady"]["by_documents"] == {1: 1, 3: 1}
    # the model: 32 × 4 / 200 = 0.64 finish per step, so one document per batch
    assert report["model"]["documents_per_batch"] == 1.0
    assert report["model"]["new_tokens_per_batch"] == report["steady"]["new_tokens_per_document"]

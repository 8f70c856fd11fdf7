"""Host cores for copy-field grammar compiles: the measured seconds per document, times the
documents a second, times the ranks that each compile them."""

import json

from forkpoint.perf.projection import grammar_compile


def test_cores_are_compile_seconds_times_documents_per_second_times_ranks():
    cost = grammar_compile.CompileCost("f.json", "cpu", "abc1234", 0.25, 0.008)
    assert cost.cores(4.0, 2) == 2.0
    assert cost.cores(4.0, 1) == 1.0


def test_the_newest_version_in_a_report_is_the_one_used(tmp_path):
    report = {
        "machine": "AMD EPYC, 2 cores",
        "commit": "e70ebd74f4a0",
        "summary": {
            "2d0d142": {"compile_s_per_doc": 0.36, "build_ms_per_doc": 19.5},
            "working tree": {"compile_s_per_doc": 0.33, "build_ms_per_doc": 8.0},
        },
    }
    path = tmp_path / "copy-compile-2026-12-06-e70ebd7-150docs.json"
    path.write_text(json.dumps(report))
    cost = grammar_compile.load(path)
    assert cost is not None
    assert (cost.version, cost.compile_s_per_doc, cost.build_s_per_doc) == ("e70ebd7", 0.33, 0.008)


def test_the_committed_measurement_is_found():
    cost = grammar_compile.load()
    assert cost is not None and cost.source.startswith("copy-compile-")
    assert 0 < cost.compile_s_per_doc < 60

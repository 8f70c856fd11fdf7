"""Where results go (a checkout's perf/results/, else ./perf-results, or --out) and how the
bench empties the runtime's cache (through RuntimeClient, with the runtime key)."""

import argparse
import json

import httpx
import pytest

from forkpoint.errors import RuntimeUnavailable
from forkpoint.perf import RECORDS
from forkpoint.perf.bench import direct, results
from forkpoint.runtime.client import RuntimeClient


def test_a_checkout_writes_into_its_committed_perf_results():
    assert RECORDS.is_dir() and any(RECORDS.glob("bench-*.json"))
    assert results.default_dir() == RECORDS


def test_an_installed_package_writes_under_the_current_directory_not_into_itself(
    tmp_path, monkeypatch
):
    installed = tmp_path / "site-packages" / "forkpoint" / "perf" / "results"
    installed.mkdir(parents=True)  # even if an old install left one there
    monkeypatch.setattr(results, "RECORDS", installed)
    assert results.default_dir().as_posix() == "perf-results"


def test_out_names_the_folder_and_the_report_lands_there_as_json_and_markdown(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    results.add_out_argument(parser)
    assert parser.parse_args([]).out == results.default_dir()
    out = parser.parse_args(["--out", str(tmp_path / "new")]).out
    report = {"date": "2026-12-02T18:00:00+00:00", "commit": "abcdef1234", "flags": {"out": out}}
    stem = results.save("soak", report, ["# soak", "| a |"], out, suffix="-8docs")
    assert stem == out / "soak-2026-12-02-abcdef1-8docs"
    assert json.loads(stem.with_suffix(".json").read_text())["flags"]["out"] == str(out)
    assert stem.with_suffix(".md").read_text() == "# soak\n| a |\n"
    assert f"saved {stem}.json and .md" in capsys.readouterr().out


def runtime(answers: list[int], seen: list[httpx.Request]) -> RuntimeClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answers.pop(0) if answers else 200, json={})

    return RuntimeClient("http://runtime", api_key="k1", transport=httpx.MockTransport(handle))


def test_emptying_the_cache_sends_the_runtime_key_and_asks_again_while_refused(monkeypatch):
    monkeypatch.setattr(direct, "FLUSH_PAUSE", 0.0)
    seen: list[httpx.Request] = []
    direct.empty_cache(runtime([400, 400], seen))
    assert [r.url.path for r in seen] == ["/flush_cache"] * 3
    assert {r.headers["authorization"] for r in seen} == {"Bearer k1"}


def test_a_runtime_that_keeps_refusing_to_flush_is_an_error_not_a_warm_run(monkeypatch):
    monkeypatch.setattr(direct, "FLUSH_PAUSE", 0.0)
    seen: list[httpx.Request] = []
    with pytest.raises(RuntimeUnavailable, match="refused /flush_cache"):
        direct.empty_cache(runtime([400] * direct.FLUSH_ATTEMPTS, seen))
    assert len(seen) == direct.FLUSH_ATTEMPTS

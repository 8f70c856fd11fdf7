"""The review page in a real headless Chromium (#28), against a real gateway and SGLang server:
give the key, watch a running job's progress advance, open a `needs_review` document, see a
value's span light up, correct a value (a wrong one first: the schema's reason is shown),
export the labels and run `forkpoint eval` with them: the corrected field scores as corrected.
Then the same results as `forkpoint review`'s offline page.

Playwright drives Debian's chromium (its own browser download is not reachable here; ./dev
installs the package). FORKPOINT_SCREENSHOTS=DIR saves the job and document views there (the
README's docs/review-*.png were taken that way)."""

import json
import os
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from forkpoint.cli.main import app as cli
from forkpoint.programs.tasks.spec import TaskSpec

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KEY = "review-key"
TASK_FILE = Path(__file__).with_name("visitor_task.py")
DOCUMENTS = {  # no badge number (B-0000) in any: each is certainly needs_review
    "desk-log.txt": "Front desk log, Tuesday.\nVisitor: Maria Gomez arrived at 9:10 and met "
    "the facilities team about the east stairwell.",
    "sign-in.txt": "Sign-in sheet\nName: Tom Hale\nHost: R. Patel\nPurpose: delivery of two "
    "server racks",
    "interview.txt": "Visitor Priya Nair came for the 2 pm interview and was escorted to room 4 "
    "by security.",
}
CORRECTED = "Dr. Maria Gomez"  # what the reviewer says the first document's name is
WAIT = 300.0  # a generous bound on any one wait; nothing here asserts how fast it was


def wait_for(check, what: str, seconds: float = WAIT):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: ./dev pytest installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def screenshot(page, name: str) -> None:
    folder = os.environ.get("FORKPOINT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_review_a_running_job_correct_a_value_and_evaluate_with_the_labels(
    sglang_server, start_gateway, browser, tmp_path
):
    # one document at a time, so the job runs long enough to be watched
    gateway = start_gateway(
        sglang_server.url, FORKPOINT_API_KEYS=json.dumps([KEY]), FORKPOINT_CONCURRENCY="1"
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{gateway.url}/ui/")
    page.fill("#key", KEY)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#jobs")
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("sessionStorage.getItem('forkpoint.apiKey')") == KEY

    sys.path.insert(0, str(TASK_FILE.parent))
    from visitor_task import TASK

    spec = json.loads(TaskSpec.from_task(TASK).model_dump_json(by_alias=True))
    documents = [{"name": name, "text": text} for name, text in DOCUMENTS.items()]
    submitted = httpx.post(
        f"{gateway.url}/v1/jobs",
        json={"task_definition": spec, "documents": documents},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]

    # the jobs list shows it; its page shows the progress advancing and the chart growing
    page.wait_for_selector(f"tr.job-row[data-id='{job_id}']").click()
    page.wait_for_selector(".job-head .count")
    seen: list[tuple[int, int]] = []  # (documents done, chart points) as the page showed them
    total = len(DOCUMENTS)

    def finished() -> bool:
        done = int(page.text_content(".job-head .count").split("/")[0])
        points = int(page.get_attribute("svg.chart", "data-points") or 0)
        if not seen or seen[-1] != (done, points):
            seen.append((done, points))
        return done == total and page.is_visible(".job-head .state-done")

    wait_for(finished, "the job to finish on the page")
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # it only advances
    assert any(0 < d < total for d, _ in seen), seen  # seen mid-job, not only before and after
    chart_points = lambda: page.get_attribute("svg.chart", "data-points") == str(total + 1)  # noqa: E731
    wait_for(chart_points, "the chart's point per document, from the origin")
    assert len({points for _, points in seen}) > 2  # the chart grew while the job ran
    assert float(page.text_content("#rate-write")) > 0
    page.wait_for_selector("tr.doc-row")
    assert page.locator("tr.doc-row[data-status='needs_review']").count() == total
    page.click("button.filter[data-status='needs_review']")
    page.wait_for_selector("button.filter[data-status='needs_review'][aria-pressed='true']")
    screenshot(page, "review-job.png")

    # a needs_review document: the reason, the ungrounded badge, the name's span lit on hover
    page.click("tr.doc-row:has-text('desk-log.txt')")
    page.wait_for_selector("#document .doc-header")
    assert "Needs review" in page.text_content(".reason")
    assert page.locator("tr.field[data-path='badge'] .flag.ungrounded").count() == 1
    name = page.locator("tr.field[data-path='name'] input").input_value()
    assert name and name in DOCUMENTS["desk-log.txt"]  # a copy field: a span of the document
    page.hover("tr.field[data-path='name']")
    lit = page.locator("mark.span.lit")
    assert lit.count() >= 1 and name in "".join(lit.all_text_contents())
    page.mouse.move(5, 5)
    page.hover("mark.span")
    assert page.locator("tr.field[data-path='name'].lit").count() == 1
    page.hover("tr.field[data-path='name']")
    screenshot(page, "review-document.png")

    # a correction the schema refuses shows the reason; a good one is saved beside the answer
    page.fill("tr.field[data-path='badge'] input", "badge 12")
    page.click("button.save")
    page.wait_for_selector("#document .message.error")
    assert "badge" in page.text_content("#document .message.error")
    page.fill("tr.field[data-path='badge'] input", "B-0042")
    page.fill("tr.field[data-path='name'] input", CORRECTED)
    page.click("button.save")
    page.wait_for_selector(".badge.review-corrected")
    assert page.locator("#document .message.ok").text_content().startswith("Correction saved")
    assert CORRECTED in page.text_content("pre.correction")
    assert name in page.text_content("#document")  # the model's answer is still shown

    # accept another document's answer, then export the labels from the job's page
    page.click("text=← documents")
    page.click("tr.doc-row:has-text('sign-in.txt')")
    page.wait_for_selector("button.accept").click()
    page.wait_for_selector(".badge.review-accepted")
    page.click("text=← documents")
    page.wait_for_selector("tr.doc-row .badge.review-corrected")
    with page.expect_download() as download:
        page.click("#export-labels")
    labels = tmp_path / "labels.jsonl"
    download.value.save_as(labels)
    exported = [json.loads(line) for line in labels.read_text().splitlines()]
    assert [row["document"] for row in exported] == ["desk-log.txt", "sign-in.txt"]
    assert exported[0]["expected"] == {"name": CORRECTED, "badge": "B-0042"}

    # forkpoint eval with the exported labels: the model answers as before, so the corrected
    # document's name and badge are wrong against the correction (and its diff says so)
    folder = tmp_path / "documents"
    folder.mkdir()
    for doc_name, text in DOCUMENTS.items():
        (folder / doc_name).write_text(text)
    out = tmp_path / "eval"
    command = ["eval", str(folder), "--labels", str(labels), "--task-module", f"{TASK_FILE}:TASK"]
    command += ["--sglang-url", sglang_server.url, "--out-dir", str(out)]
    run = CliRunner().invoke(cli, command)
    assert run.exit_code == 0, run.output[-3000:]
    fields = json.loads((out / "report.json").read_text())["variants"][0]["fields"]
    assert fields["name"]["exact"] <= 0.5 and fields["badge"]["exact"] <= 0.5
    diffs = {row["document"]: row for row in map(json.loads, open(out / "diffs.jsonl"))}
    wrong = diffs["desk-log.txt"]["wrong"]
    assert wrong["name"]["expected"] == CORRECTED and wrong["name"]["got"] != CORRECTED
    assert wrong["badge"]["expected"] == "B-0042"

    # the same results without a gateway: forkpoint review's one file, opened from disk
    results = tmp_path / "results.jsonl"
    streamed = httpx.get(
        f"{gateway.url}/v1/jobs/{job_id}/results",
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    results.write_text(streamed.text)
    report = tmp_path / "report.html"
    run = CliRunner().invoke(cli, ["review", str(results), str(folder), "--html", str(report)])
    assert run.exit_code == 0, run.output[-3000:]
    offline = browser.new_page()
    offline.goto(report.as_uri())
    assert offline.locator("tr.doc-row[data-status='needs_review']").count() == total
    offline.click("tr.doc-row:has-text('desk-log.txt')")
    offline.hover("tr.field[data-path='name']")
    assert name in "".join(offline.locator("mark.span.lit").all_text_contents())
    assert offline.locator("input").count() == 0  # a report: nothing to save to

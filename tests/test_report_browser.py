"""The reports in a real browser: headless Chromium, desktop and phone widths.

Needs Debian's Chromium at /usr/bin/chromium (Playwright's own browser download
is not used). Screenshots go to $GRADER_TEST_ARTIFACTS/browser if set, else
under tmp_path; look at them to judge the layout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from report_samples import sample_results

from grader.grading.batch import write_class_reports
from grader.model.assignment import find_assignment

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    base = os.environ.get("GRADER_TEST_ARTIFACTS")
    folder = (Path(base) if base else tmp_path / "artifacts") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    out = tmp_path / "reports"
    write_class_reports(out, find_assignment("hello_processes"), sample_results(), source="class (folder)")
    return out


class Watcher:
    """Collects what must not happen on a page: console errors, script errors, dialogs, network requests."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("request", lambda r: None if r.url.startswith("file://") else self.problems.append(f"request: {r.url}"))


def overflows(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1"))


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_summary_then_student_report(reports: Path, artifacts: Path, device: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport=VIEWPORTS[device])
            page = context.new_page()
            watch = Watcher(page)
            page.goto((reports / "index.html").as_uri())
            assert page.locator("h1").inner_text() == "Hello, processes"
            assert page.locator("svg.hist rect.bar").count() == 3
            assert not overflows(page)
            page.screenshot(path=str(artifacts / f"{device}-index.png"), full_page=True)

            names = page.locator("#students tbody tr td:first-child")
            page.get_by_role("button", name="Score").click()
            first_by_score = names.first.inner_text()
            page.get_by_role("button", name="Score").click()
            assert names.first.inner_text() != first_by_score
            assert page.locator("#students th[aria-sort]").count() == 1

            page.get_by_role("link", name="Bob Jones").click()
            page.wait_for_load_state()
            assert page.url.endswith("/students/bob-jones.html")
            assert page.locator("h1").inner_text() == "Bob Jones"
            assert page.get_by_test_id("score").inner_text() == "3 / 5"
            assert not overflows(page)
            page.screenshot(path=str(artifacts / f"{device}-student.png"), full_page=True)

            page.get_by_role("link", name="Class summary").click()
            page.wait_for_load_state()
            page.get_by_role("link", name="<img src=x onerror=alert(1)>").click()
            page.wait_for_load_state()
            assert page.locator("h1").inner_text() == "<img src=x onerror=alert(1)>"
            output = page.locator("details.output").first
            assert not output.locator("pre").is_visible()
            output.locator("summary").click()
            assert '<script>alert("owned")</script>' in output.locator("pre").inner_text()
            assert not overflows(page)
            page.screenshot(path=str(artifacts / f"{device}-student-timeout.png"), full_page=True)
            page.emulate_media(media="print")
            page.screenshot(path=str(artifacts / f"{device}-student-print.png"), full_page=True)
            assert watch.problems == []
            context.close()
        finally:
            browser.close()
    assert sorted(p.name for p in artifacts.glob(f"{device}-*.png")) == [
        f"{device}-index.png",
        f"{device}-student-print.png",
        f"{device}-student-timeout.png",
        f"{device}-student.png",
    ]


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_students_with_no_submission_are_listed_apart(tmp_path: Path, artifacts: Path, device: str) -> None:
    from grader.model.results import SubmissionResult

    sync_api = pytest.importorskip("playwright.sync_api")
    missing = [
        SubmissionResult("hello_processes", "Gus Grey", "class/gus", no_submission="the submission is empty; expected "
                         "a file named hello_processes.py (or a notebook hello_processes.ipynb)"),
        SubmissionResult(
            "hello_processes", "Hal Hu", "class/hal",
            no_submission="found hello_processes.py and lab2/hello_processes.py, and any of them could be "
            "hello_processes.py: keep one (delete or rename the others) and submit again",
            seen=["hello_processes.py", "lab2/hello_processes.py", "a-very-long-folder-name/" * 6 + "notes.txt"],
        ),
    ]
    out = tmp_path / "reports"
    write_class_reports(out, find_assignment("hello_processes"), [*sample_results(), *missing], source="class (folder)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport=VIEWPORTS[device])
            page = context.new_page()
            watch = Watcher(page)
            page.goto((out / "index.html").as_uri())
            section = page.locator("#no-submission")
            assert section.is_visible()
            assert section.locator("h2").inner_text() == "No submission found"
            names = section.locator("tbody tr td:first-child").all_inner_texts()
            assert names == ["Gus Grey", "Hal Hu"]
            assert "lab2/hello_processes.py" in section.locator("tbody tr").nth(1).inner_text()
            table = page.locator("#students tbody").inner_text()
            assert "Gus Grey" not in table and "Hal Hu" not in table and "Ann Smith" in table
            assert page.locator(".tile", has_text="No submission found").locator(".big").inner_text() == "2"
            assert not overflows(page)
            section.screenshot(path=str(artifacts / f"{device}-no-submission.png"))
            section.get_by_role("link", name="Hal Hu").click()
            page.wait_for_load_state()
            assert page.locator("h1").inner_text() == "Hal Hu"
            alert = page.locator("#no-submission")
            assert "No submission found" in alert.inner_text() and "keep one" in alert.inner_text()
            assert alert.locator("li code").all_inner_texts()[:2] == ["hello_processes.py", "lab2/hello_processes.py"]
            assert page.get_by_test_id("score").count() == 0  # no score shown: it is not a zero
            assert not overflows(page)
            page.screenshot(path=str(artifacts / f"{device}-student-no-submission.png"), full_page=True)
            assert watch.problems == []
            context.close()
        finally:
            browser.close()

"""The HTML and gradebook exporters over the result model."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from report_samples import DIAGNOSTICS, sample_results

from grader.exporters.csv import to_gradebook_csv, write_gradebook
from grader.exporters.html import cap_text, histogram, render_class_html, render_student_html, write_student_html

EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:|//)|@import|url\(\s*["']?https?:""", re.I)


def test_student_report_shows_every_part_of_the_result() -> None:
    result = sample_results()[1]
    page = render_student_html(result, title="Hello, processes", back_link="../index.html")
    assert "0 / 5" in page
    for c in result.checks:
        assert f'id="check-{c.id}"' in page
    assert 'class="badge failed">failed<' in page and 'class="badge timed_out">timed out<' in page
    assert 'class="badge error">error<' in page
    assert "Where each process was blocked" in page
    assert "main process (pid 4242): hello_processes.py, line 19, in main: p.join()" in page
    assert "1.2&thinsp;s" in page or "1.3&thinsp;s" in page  # per-check timing
    for protection in result.protections:
        assert f"<li>{protection}</li>" in page
    assert '<details class="output">' in page  # output collapsed
    assert 'href="../index.html"' in page
    assert DIAGNOSTICS.splitlines()[0] in page


def test_nothing_a_student_prints_or_names_becomes_markup() -> None:
    result = sample_results()[1]
    page = render_student_html(result)
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>eve</b>" not in page
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<script>") == 1  # only the page's own
    index = render_class_html(sample_results(), title="<i>t</i>", links={"<img src=x onerror=alert(1)>": "students/x.html"})
    assert "<img src=x" not in index and "<i>t</i>" not in index and "&lt;i&gt;t&lt;/i&gt;" in index


def test_captured_output_is_capped() -> None:
    result = sample_results()[1]
    page = render_student_html(result)
    assert "characters cut" in page and "characters omitted" in page
    assert len(page) < 40_000
    text, omitted = cap_text("a" * 100 + "b" * 100, limit=50)
    assert omitted == 150 and text.startswith("a" * 25) and text.endswith("b" * 25)
    assert cap_text("short") == ("short", 0)


def test_pages_are_self_contained() -> None:
    pages = [render_student_html(r) for r in sample_results()]
    pages.append(render_class_html(sample_results(), title="t", links={"Ann Smith": "students/ann-smith.html"}))
    for page in pages:
        assert EXTERNAL.search(page) is None, EXTERNAL.search(page)
        assert "<style>" in page and '<meta name="viewport"' in page and "@media print" in page
        assert "default-src 'none'" in page


def test_class_summary_has_histogram_pass_rates_and_links() -> None:
    results = sample_results()
    links = {r.student: f"students/s{i}.html" for i, r in enumerate(results)}
    page = render_class_html(results, title="Hello, processes", assignment="hello_processes", links=links)
    assert '<svg class="hist"' in page
    assert page.count('<rect class="bar"') == 3  # scores 5, 0 and 3 of 5
    for link in links.values():
        assert f'href="{link}"' in page
    # per-check pass rates over the three graded submissions
    assert re.search(r"test_concurrent</code>.*?1/3", page, re.S)
    assert re.search(r"test_greeting</code>.*?2/3", page, re.S)
    assert "Most missed: <strong>Check test concurrent.</strong>" in page
    assert "not graded" in page and "pytest ended with exit code 3" in page
    assert "late</span>" in page


def test_histogram_bins() -> None:
    h = histogram([0, 12, 12, 6.5, 11.99], 12)
    assert [b["count"] for b in h["bars"]] == [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2]
    assert h["bars"][12]["h"] > h["bars"][0]["h"] > 0 and h["bars"][1]["h"] == 0
    h = histogram([0, 49.9, 50, 100, 73], 100)
    assert [b["count"] for b in h["bars"]] == [1, 0, 0, 0, 1, 1, 0, 1, 0, 1]
    assert h["unit"] == "percent" and h["bars"][0]["label"] == "0%"


def test_gradebook_csv() -> None:
    text = to_gradebook_csv(sample_results())
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["student", "score", "max_score", "test_greeting", "test_concurrent", "test_joined"]
    assert rows[1] == ["Ann Smith", "5", "5", "1", "2", "2"]
    assert rows[2] == ["<img src=x onerror=alert(1)>", "0", "5", "0", "0", "0"]
    assert rows[3] == ["Bob Jones", "3", "5", "1", "0", "2"]
    assert rows[4] == ['\'=HYPERLINK("http://x")', "", "", "", "", ""]  # not graded: blank, and no formula


def test_writers_create_files(tmp_path: Path) -> None:
    write_gradebook(sample_results(), tmp_path / "a" / "grades.csv")
    write_student_html(sample_results()[0], tmp_path / "b" / "ann.html", title="Hello")
    assert (tmp_path / "a" / "grades.csv").read_text().startswith("student,score,max_score,")
    assert "5 / 5" in (tmp_path / "b" / "ann.html").read_text()
    assert not list(tmp_path.rglob("*.tmp"))


def test_gradebook_gives_each_member_of_a_group_a_row() -> None:
    group = sample_results()[2]
    group.student = "Ann + Bob"
    group.metadata["submitters"] = [{"name": "Ann", "sid": "1"}, {"name": "Bob", "sid": "2"}]
    rows = list(csv.reader(io.StringIO(to_gradebook_csv([group]))))
    assert rows[1:] == [["Ann", "3", "5", "1", "0", "2"], ["Bob", "3", "5", "1", "0", "2"]]

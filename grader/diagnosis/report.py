"""Turn the stacks of a hung sandbox into feedback a student can act on: the report and its text.

Runs in the pytest process. When a run times out, or the student's code returns while
processes it started are still running, the sandbox reads where every process was before
killing it (:mod:`grader.sandbox.stacks`: py-spy from outside, else a ``faulthandler``
dump). This module puts together what :mod:`grader.diagnosis.patterns` makes of those
stacks and the recorded evidence (which process started and joined which, what each
process is) and writes:

- a **diagnosis** in plain words when the stacks show a classic pattern: a
  consumer waiting for a sentinel that never comes, a parent joining a child
  that is still flushing a queue nobody reads (join before drain), both ends
  of a pipe in ``send()``, processes waiting for a lock nobody releases, a
  child that does not stop on the stop message, a loop that never ends;
- one **section per process**: its role (main process, child ``Process-2``
  running ``consumer``), what it was doing, and for each thread the student's
  frames (file, line, function and the source line) and the library call it
  was blocked in.

The text format (what :attr:`grader.model.results.CheckResult.diagnostics` holds) is
documented in ``docs/diagnostics.md``; :func:`split_sections` reads it back for
exporters that render sections separately (HTML).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.diagnosis.patterns import (
    HIDDEN_WAITS,
    Finding,
    ProcessView,
    analyse,
    find_patterns,
    process_labels,
    student_place,
)
from grader.diagnosis.waits import SourceReader, Wait, kernel_wait
from grader.sandbox.stacks import ThreadStack

if TYPE_CHECKING:
    from grader.evidence import Run

__all__ = ["Report", "describe_hang", "describe_leftovers", "report_hang", "split_sections"]

MAX_SECTIONS = 12
MAX_THREADS_SHOWN = 6
MAX_STUDENT_FRAMES = 6
SECTION = re.compile(r"^== (?P<title>.*) ==$")


@dataclass
class Report:
    """The diagnosis of a run and one section per process, renderable as text."""

    heading: str
    findings: list[Finding] = field(default_factory=list)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        parts = []
        for finding in self.findings:
            parts.append(f"Likely cause ({finding.title}): {finding.text}")
        if not self.findings and self.sections:
            parts.append("No known deadlock pattern was recognised; the sections below show where each process was.")
        parts.append(self.heading)
        parts.extend(self.notes)
        text = "\n\n".join(parts)
        for title, body in self.sections:
            text += f"\n\n== {title} ==\n" + "\n".join(f"  {line}" if line else "" for line in body)
        return text


def split_sections(diagnostics: str) -> tuple[str, list[tuple[str, str]]]:
    """Read back a rendered diagnosis: the text before the first section, and (title, body) per process."""
    head: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in diagnostics.splitlines():
        match = SECTION.match(line)
        if match:
            sections.append((match.group("title"), []))
        elif sections:
            sections[-1][1].append(line[2:] if line.startswith("  ") else line)
        else:
            head.append(line)
    return "\n".join(head).strip(), [(title, "\n".join(body).strip("\n")) for title, body in sections]


# -- rendering -----------------------------------------------------------------------------------


def _signature(view: ProcessView) -> tuple[Any, ...]:
    return tuple(
        (w.kind, tuple((f.file, f.line) for f in t.student_frames())) for t, w in view.waits if w.kind not in HIDDEN_WAITS
    )


def _thread_lines(thread: ThreadStack, wait: Wait, source: SourceReader, many: bool) -> list[str]:
    title = thread.name or ("current thread" if thread.current else f"thread {thread.thread}")
    lines = [f"{'thread ' + title + ': ' if many else ''}{wait.text}"]
    student = thread.student_frames()
    if student:
        shown = list(reversed(student[:MAX_STUDENT_FRAMES]))
        if len(student) > MAX_STUDENT_FRAMES:
            lines.append(f"  ... {len(student) - MAX_STUDENT_FRAMES} outer frame(s) of your code not shown")
        for frame in shown:
            lines.append(f"  {source.rel(frame)}, line {frame.line}, in {frame.func}")
            code = source.line(frame)
            if code:
                lines.append(f"      {code}")
    elif wait.kind not in ("busy",):
        lines.append("  (not in your code)")
    inner = [f for f in thread.visible_frames() if f.owner == "library"]
    student_inner = student[0] if student else None
    if student_inner is not None:
        frames = thread.visible_frames()
        inner = [f for f in frames[: frames.index(student_inner)] if f.owner == "library"]
    if inner:
        # outermost first, as the calls were made; long chains keep their two ends
        names = [f"{f.short_func()} ({f.library}:{f.line})" for f in reversed(inner)]
        if len(names) > 4:
            names = names[:2] + ["..."] + names[-2:]
        lines.append(f"  in: {' -> '.join(names)}")
    kernel = kernel_wait(thread.wchan)
    if kernel and kernel not in wait.text:
        lines.append(f"  the operating system says it waits for {kernel}")
    return lines


def _sections(views: list[ProcessView], source: SourceReader) -> list[tuple[str, list[str]]]:
    groups: dict[tuple[Any, ...], list[ProcessView]] = {}
    order: list[tuple[Any, ...]] = []
    for view in views:
        key = _signature(view) if view.stack.threads and view.label.startswith("child") else ("pid", view.pid)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(view)
    sections = []
    for key in order[:MAX_SECTIONS]:
        group = groups[key]
        view = group[0]
        if len(group) > 1:
            names = ", ".join(v.label.removeprefix("child ") for v in group)
            title = f"{len(group)} child processes {names} (pids {', '.join(str(v.pid) for v in group)}): same place"
        else:
            title = f"{view.label} (pid {view.pid})"
        body: list[str] = []
        if view.stack.error or not view.stack.threads:
            body.append(f"its stack could not be read: {view.stack.error or 'no frames'}")
        else:
            main = view.main
            if main is not None:
                title += f": {main[1].short}"
            # idle queue feeder threads and the pool's helper threads say nothing about the problem
            shown = [(t, w) for t, w in view.waits if t.visible_frames() and w.kind not in HIDDEN_WAITS]
            shown.sort(key=lambda entry: (entry[0].name != "MainThread" and not entry[0].current,
                                          entry[0].student_frame() is None))
            shown = shown[:MAX_THREADS_SHOWN]
            for thread, wait in shown:
                body.extend(_thread_lines(thread, wait, source, len(view.waits) > 1))
            idle = sum(1 for _, w in view.waits if w.kind in HIDDEN_WAITS)
            hidden = len(view.waits) - len(shown) - idle
            if hidden > 0:
                body.append(f"... {hidden} more thread(s) not shown")
            if idle:
                body.append(f"({idle} idle queue feeder or pool helper thread(s) not shown)")
        sections.append((title, body))
    if len(order) > MAX_SECTIONS:
        rest = sum(len(groups[key]) for key in order[MAX_SECTIONS:])
        sections.append((f"{rest} more process(es)", ["not shown, to keep this short"]))
    return sections


def _how_read(views: list[ProcessView]) -> str:
    vias = sorted({v.stack.via for v in views if v.stack.via})
    return f" (stacks read with {' and '.join(vias)})" if vias else ""


def report_hang(run: Run, module_path: Path | None) -> Report:
    """The diagnosis of a timed-out run, as a :class:`Report`."""
    views, source = analyse(run, module_path)
    if not views:
        return Report("The grader could not read where the processes were blocked (no process could be inspected "
                      "before the kill).")
    moment = "when the grader found every thread waiting for another" if run.raw.deadlock else "when the time ran out"
    report = Report(f"Where each process was {moment}{_how_read(views)}:")
    report.findings = find_patterns(run, views, source)
    unread = [v for v in views if v.stack.error or not v.stack.threads]
    if unread:
        report.notes.append(f"The stacks of {len(unread)} process(es) could not be read; their sections say why.")
    report.sections = _sections(views, source)
    return report


def describe_hang(run: Run, module_path: Path | None) -> str:
    """Where every process of a timed-out run was blocked, and why, in words (one section per process)."""
    return report_hang(run, module_path).render()


def describe_leftovers(run: Run, module_path: Path | None) -> str:
    """Which processes were still running when the student's function returned, and where they were."""
    leftover = [int(p["pid"]) for p in run.leftovers if type(p.get("pid")) is int]
    if not leftover:
        return ""
    views, source = analyse(run, module_path, leftover)
    labels, _, _ = process_labels(run)
    report = Report(f"Processes still running when {run.label} returned, stopped by the grader{_how_read(views)}:")
    names = [f"the {labels.get(pid, 'process')} (pid {pid})" for pid in leftover]
    places = []
    for view in views:
        main = view.main
        if main is not None:
            where = student_place(main[0].student_frame(), source)
            label = view.label.removeprefix("child ")
            places.append(f"{label} was {main[1].short}" + (f" at {where}" if where else ""))
    text = (f"{', '.join(names[:5])}{' and others' if len(names) > 5 else ''} "
            f"{'were' if len(names) > 1 else 'was'} still running after {run.label} returned")
    text += (": " + "; ".join(places[:3]) + "." if places else ".")
    text += (" Every process you start must end and be joined before your function returns: join() each one, and "
             "make sure its code can finish (a stop message it recognises, a loop that ends).")
    report.findings = [Finding("processes left running", text)]
    missing = [pid for pid in leftover if pid not in {v.pid for v in views}]
    if missing:
        report.notes.append(f"The stacks of {len(missing)} process(es) could not be read before they were stopped.")
    report.sections = _sections(views, source)
    return report.render()

"""Can a run's evidence be trusted? Integrity flags for the instructor. Runs in the pytest process.

The probes write evidence inside the student's processes, where the student's
code could write it too (design principle 9: evidence is a witness, not a
judge). :func:`run_flags` lists what says a run's evidence was tampered with,
each flag one sentence naming what was seen:

- the sandbox's audit hook refused the student's code something that reaches
  the grader's machinery (``tamper`` events of :mod:`grader.inside.guard`), or
  a probe saw a function the evidence relies on replaced (``os.getpid``,
  ``time.monotonic``);
- the events of a process are not numbered 1, 2, 3 ... in time order (a line
  written by someone else, a line removed, a file rewritten), or come after the
  process's last event (its ``seal``), or the first process ended without one;
- the sandbox host found the evidence file replaced or deleted during the run;
- a ``multiprocessing`` child was reported started and exited 0, yet no process
  with its pid ever started the probes (a thread or nothing posing as a process).

A flagged check never keeps its points (the plugin fails it and lists the flags
for the instructor), whatever the evidence otherwise shows.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from grader.evidence.run import Run
from grader.inside import events
from grader.sandbox.readback import EVIDENCE_EVENTS

__all__ = ["run_flags"]

MAX_FLAGS = 6


def run_flags(run: Run) -> list[str]:
    """Integrity flags of one run (empty when nothing says the evidence was tampered with)."""
    flags = list(run.raw.integrity)
    flags += _tamper_flags(run)
    flags += _sequence_flags(run)
    flags += _phantom_children(run)
    unique = list(dict.fromkeys(flags))
    return unique[:MAX_FLAGS]


def _where(event: dict[str, Any]) -> str:
    file, line = event.get("file"), event.get("line")
    if isinstance(file, str) and file not in ("", "?") and type(line) is int and line > 0:
        return f" ({file[:80]} line {line})"
    return ""


def _tamper_flags(run: Run) -> list[str]:
    out = []
    for event in run.of(events.TAMPER):
        why = event.get("why")
        why = why[:200] if isinstance(why, str) else "did something the sandbox refused"
        if event.get("audit") == "replaced":
            out.append(
                f"the submission's code {why} while the grader records evidence: what the evidence says about "
                "which process ran what, and when, cannot be trusted"
            )
        else:
            out.append(
                f"the submission's code {why}{_where(event)}; the sandbox refused it (the grader's evidence and "
                "code are off limits to the submission)"
            )
    return out


def _sequence_flags(run: Run) -> list[str]:
    by_pid: dict[int, list[dict[str, Any]]] = defaultdict(list)
    unnumbered: set[int] = set()
    for event in run.events:
        if type(event.get("seq")) is int:
            by_pid[event["pid"]].append(event)
        else:
            unnumbered.add(event["pid"])
    capped = len(run.events) >= EVIDENCE_EVENTS
    out = []
    if unnumbered:
        out.append(
            f"the evidence of {len(unnumbered)} process(es) holds lines without a sequence number: they were not "
            "written by the probes"
        )
    problems: dict[str, list[int]] = defaultdict(list)
    for pid, group in sorted(by_pid.items()):
        problem = _sequence_problem(group, capped)
        if problem:
            problems[problem].append(pid)
    for problem, pids in problems.items():
        out.append(
            f"the evidence of {len(pids)} process(es) {problem}: lines were added, removed or rewritten by someone "
            "other than the probes"
        )
    sealed = {e["pid"] for e in run.of(events.SEAL)}
    if run.raw.result is not None and run.main_pid in by_pid and run.main_pid not in sealed:
        out.append(
            "the first process returned a result but its evidence ends without the probes' last "
            "event: its evidence stopped reaching the file during the run"
        )
    return out


def _sequence_problem(group: list[dict[str, Any]], capped: bool) -> str | None:
    """What is wrong with one process's numbering, or ``None``."""
    numbers = [e["seq"] for e in group]
    seen = set(numbers)
    if len(seen) != len(numbers):
        return "holds an event number twice"
    lost = sum(e["lost"] for e in group if type(e.get("lost")) is int and e["lost"] > 0)
    top = max(numbers)
    missing = top - len(numbers) - lost
    if missing > 0 and not capped:
        return "lacks some of its numbered events"
    by_number = sorted(group, key=lambda e: e["seq"])
    for before, after in zip(by_number, by_number[1:]):
        if after["t"] < before["t"] - 1e-6:
            return "has events numbered out of time order"
    seals = [e for e in group if e.get("ev") == events.SEAL]
    if seals and top > min(e["seq"] for e in seals):
        return "has events after its last one (the seal written as the process ended)"
    return None


def _phantom_children(run: Run) -> list[str]:
    started = {e["pid"] for e in run.of(events.PROC)}
    phantoms = [c for c in run.child_processes() if c.exitcode == 0 and c.pid not in started]
    if not phantoms:
        return []
    return [
        f"{len(phantoms)} process(es) (such as {phantoms[0].name}) were reported started and ended with code 0, but "
        "no process with their pid ever started the grader's probes: they were not real processes of the sandbox"
    ]

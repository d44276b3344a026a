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
  with its pid ever started the probes (a thread or nothing posing as a process);
- the kernel, sampled by the sandbox host while the run was in flight
  (:mod:`grader.sandbox.witness`), contradicts the evidence (:func:`kernel_flags`).

A flagged check never keeps its points (the plugin fails it and lists the flags
for the instructor), whatever the evidence otherwise shows.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from grader.evidence.run import Run
from grader.inside import events
from grader.sandbox.readback import EVIDENCE_EVENTS
from grader.sandbox.witness import KernelView

__all__ = ["KERNEL", "kernel_flags", "run_flags"]

MAX_FLAGS = 6
KERNEL = "the kernel "
"""How every flag of the kernel witness begins."""
MIN_LIFE = 0.3
"""Seconds (by the evidence's own times, and at least 10 sampling intervals) a process must have lived
for the kernel witness to be sure to have seen it."""
MIN_SAMPLES = 5
"""Complete samples of the tree that must lie within that life."""
MIN_IDLE = 1.5
"""Seconds a process must have used no CPU at all while the evidence has it writing events."""


def run_flags(run: Run) -> list[str]:
    """Integrity flags of one run (empty when nothing says the evidence was tampered with)."""
    flags = list(run.raw.integrity)
    flags += _tamper_flags(run)
    flags += _sequence_flags(run)
    flags += _phantom_children(run)
    flags += kernel_flags(run)
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
    # Events after a process's seal are not judged: from Python 3.13 on, threads and finalizers that run
    # at interpreter shutdown still record events after the seal the probes write at exit.
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


def _claims(run: Run) -> dict[int, list[float]]:
    """pid -> the times at which the evidence says a process with that pid existed.

    A process wrote an event (its ``pid``); ``start()`` returned a child with that pid (it exists
    from the fork until it is reaped, after the start event); a ``join()`` that began at ``since`` and
    returned the child's exit code (the child was not reaped yet while it waited: a join of a child
    already reaped returns at once); a pool was made with it as a worker.
    """
    out: dict[int, list[float]] = defaultdict(list)
    for event in run.events:
        out[event["pid"]].append(event["t"])
    for event in run.of(events.MP_START):
        if type(event.get("child")) is int:
            out[event["child"]].append(event["t"])
    for event in run.of(events.MP_JOIN):
        since = event.get("since")
        joined = type(event.get("exitcode")) is int and not event.get("alive")
        if joined and type(event.get("child")) is int and type(since) is float and since <= event["t"]:
            out[event["child"]] += [since, event["t"]]
    for event in run.of(events.POOL_NEW):
        workers = event.get("workers")
        if event.get("worker_kind", "processes") == "processes" and isinstance(workers, list):
            for pid in workers:
                if type(pid) is int:
                    out[pid].append(event["t"])
    return out


def kernel_flags(run: Run) -> list[str]:
    """Where the kernel witness (:attr:`Run.kernel`) contradicts the evidence; empty when it does not, or is absent.

    Conservative: sampling misses what lived between two samples, so a process the kernel did not
    see is flagged only when, by the evidence's own times, it lived at least :data:`MIN_LIFE` seconds
    (and 10 sampling intervals) with :data:`MIN_SAMPLES` complete samples of the tree taken meanwhile.
    """
    view = run.kernel
    if view is None or not view.samples:
        return []
    out: list[str] = []
    processes, threads = view.processes(), view.threads()
    claims = _claims(run)
    # The walk reaches every process of the tree for sure only while the student's first process lives
    # (its orphans are re-parented afterwards): a process is "never seen" only within that time.
    main = processes.get(run.main_pid) if run.main_pid is not None else None
    unseen, as_threads = [], []
    for pid, times in sorted(claims.items()):
        if pid in processes:
            continue
        start, end = min(times), max(times)
        thread = threads.get(pid)
        if thread is not None and thread.first <= end and thread.last >= start:
            as_threads.append(pid)
            continue
        if thread is not None or main is None or not view.complete or view.capped:
            continue
        end = min(end, main.last)
        if _must_have_seen(view, start, end):
            unseen.append((pid, end - start))
    if unseen:
        pid, life = unseen[0]
        out.append(
            f"{KERNEL}never saw {len(unseen)} process(es) the evidence names (such as pid {pid}, which by the "
            f"evidence existed for {life:.1f} s while the sandbox host sampled the tree every {view.interval:g} s): "
            "they were not real processes of the sandbox; look at the start events of those pids"
        )
    if as_threads:
        out.append(
            f"{KERNEL}saw {len(as_threads)} task(s) the evidence calls processes (such as pid {as_threads[0]}) as "
            "threads of another process: a process that was a thread"
        )
    out += _idle_writers(run, claims)
    return out


def _must_have_seen(view: KernelView, start: float, end: float) -> bool:
    """Whether a process that existed from ``start`` to ``end`` cannot have slipped between samples."""
    if end - start < max(MIN_LIFE, 10 * view.interval):
        return False
    return len(view.samples_within(start, end)) >= MIN_SAMPLES


def _idle_writers(run: Run, claims: dict[int, list[float]]) -> list[str]:
    """Processes that, by the kernel, ran on no CPU for :data:`MIN_IDLE` s while the evidence has them writing events."""
    view = run.kernel
    if view is None or not view.precise_cpu:
        return []
    idle = []
    for pid, points in sorted(view.cpu.items()):
        times = sorted(claims.get(pid, []))
        if not times:
            continue
        for first, last in _still_stretches(points):
            low, high = view.samples[first][1], view.samples[last][0]
            inside = [t for t in times if low < t < high]
            if high - low >= MIN_IDLE and len(inside) >= 2:
                idle.append((pid, high - low, len(inside)))
                break
    if not idle:
        return []
    pid, seconds, count = idle[0]
    return [
        f"{KERNEL}saw {len(idle)} process(es) run on no CPU at all while the evidence has them at work (such as pid "
        f"{pid}: {count} events in {seconds:.1f} s without a nanosecond of CPU): their events were written by "
        "someone else; look at which process wrote the events of those pids"
    ]


def _still_stretches(points: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """``(first, last)`` sample indices of each run of points with the same CPU time and number of threads."""
    out = []
    begin = 0
    for i in range(1, len(points) + 1):
        if i == len(points) or points[i][1:] != points[begin][1:]:
            if i - 1 > begin:
                out.append((points[begin][0], points[i - 1][0]))
            begin = i
    return out

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
- the kernel's word on who sent each event of the evidence stream (:mod:`grader.sandbox.stream`)
  contradicts the pid the event names (:func:`sender_flags`);
- the kernel, sampled by the sandbox host while the run was in flight
  (:mod:`grader.sandbox.witness`), contradicts the evidence (:func:`kernel_flags`): a process it
  never saw, a "process" that was a thread, events without CPU, a Python child the evidence never
  mentions, a parent or an exit code the evidence misstates, children the evidence has running
  together that it saw one after the other.

A flagged check never keeps its points (the plugin fails it and lists the flags
for the instructor), whatever the evidence otherwise shows.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from grader.evidence.run import MP_HELPERS, Run
from grader.inside import events
from grader.sandbox.readback import EVIDENCE_EVENTS, SENT_BY
from grader.sandbox.witness import KernelTask, KernelView

__all__ = ["KERNEL", "kernel_flags", "run_flags", "sender_flags"]

MAX_FLAGS = 6
KERNEL = "the kernel "
"""How every flag of the kernel witness begins."""
MIN_LIFE = 0.3
"""Seconds (by the evidence's own times, and at least 10 sampling intervals) a process must have lived
for the kernel witness to be sure to have seen it."""
MIN_SAMPLES = 5
"""Complete samples of the tree that must lie within that life."""
OMIT_CPU = 0.5
"""CPU seconds a Python process the evidence never mentions must have used to be flagged (starting an interpreter
up to the probes' first event takes well under a tenth of that)."""
OMIT_LIFE = 5.0
"""Or seconds it must have been seen alive while the student's first process lived (a child killed while still
starting, under a loaded machine, lives far less)."""
OMIT_FORK_LIFE = 1.0
"""Or, for a fork of a process that runs the probes (the same command line as its parent), seconds seen alive: the
probes' fork hook records the child before ``os.fork`` returns in it."""
OVERLAP = 0.3
"""Seconds two children must, by the evidence, have existed at the same time for the kernel to be asked."""
MIN_IDLE = 1.5
"""Seconds a process must have used no CPU at all while the evidence has it writing events."""


def run_flags(run: Run) -> list[str]:
    """Integrity flags of one run (empty when nothing says the evidence was tampered with); judged once per run."""
    return list(run.derived("integrity flags", _run_flags))


def _run_flags(run: Run) -> tuple[str, ...]:
    flags = list(run.raw.integrity)
    flags += _tamper_flags(run)
    flags += _sequence_flags(run)
    flags += _phantom_children(run)
    flags += sender_flags(run)
    flags += kernel_flags(run)
    return tuple(dict.fromkeys(flags))[:MAX_FLAGS]


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


def _sent_by(event: dict[str, Any]) -> list[Any] | None:
    """The event's :data:`SENT_BY` ``[host pid, pid, arrival]`` where the evidence stream set one, else ``None``."""
    sent = event.get(SENT_BY)
    return sent if isinstance(sent, list) and len(sent) == 3 and type(sent[0]) is int and sent[0] > 0 else None


def _senders(run: Run) -> list[tuple[dict[str, Any], int, int | None, float]]:
    """``(event, sender's host pid, its pid in the sandbox or None, arrival time)`` of every streamed event."""
    return [
        (event, sent[0], sent[1] if type(sent[1]) is int else None, float(sent[2]))
        for event in run.events
        for sent in [_sent_by(event)]
        if sent is not None
    ]


def _streamed(run: Run) -> bool:
    """Whether any event came through the evidence stream (:func:`_senders` would list one)."""
    return any(_sent_by(event) is not None for event in run.events)


def sender_flags(run: Run) -> list[str]:
    """Where the kernel's word on who sent each streamed event (``SCM_CREDENTIALS``) contradicts the event's ``pid``.

    Three rules, none of which a run whose events all came from the probes can break: an event sent
    by a process the grader identified must name that process's pid; one process sends for one pid
    only; two processes never send for the same pid at the same time (their messages' arrival
    times interleave). A sender not identified (it ended before the grader read its ``/proc`` entry
    and the kernel witness never sampled it) is judged by the last two rules and by the pid it
    claims: a pid the kernel witness saw as another process is not its own.
    """
    streamed = _senders(run)
    if not streamed:
        return []
    hosts_of: dict[int, set[int]] = defaultdict(set)
    if run.kernel is not None:
        for task in run.kernel.tasks:
            if not task.thread:
                hosts_of[task.pid].add(task.host)
    wrong: list[tuple[int, int | None, int]] = []  # (claimed pid, sender's pid, sender's host pid)
    claims: dict[int, set[int]] = defaultdict(set)  # sender's host pid -> pids its events name
    spans: dict[int, dict[int, list[float]]] = defaultdict(dict)  # claimed pid -> host -> [first, last arrival]
    for event, host, pid, arrived in streamed:
        claimed = event["pid"]
        claims[host].add(claimed)
        span = spans[claimed].setdefault(host, [arrived, arrived])
        span[0], span[1] = min(span[0], arrived), max(span[1], arrived)
        if (pid is not None and pid != claimed) or (pid is None and hosts_of.get(claimed) and host not in hosts_of[claimed]):
            wrong.append((claimed, pid, host))
    out = []
    if wrong:
        claimed, pid, host = wrong[0]
        who = f"pid {pid}" if pid is not None else f"a process with host pid {host}"
        out.append(
            f"{KERNEL}says {len(wrong)} evidence event(s) were sent by another process than the one they name (such "
            f"as an event of pid {claimed} sent by {who}): they were forged; look at what wrote to the grader's "
            "evidence descriptor"
        )
    many = sorted((host, pids) for host, pids in claims.items() if len(pids) > 1)
    if many:
        host, pids = many[0]
        out.append(
            f"{KERNEL}says one process sent evidence events in the name of {len(pids)} different pids (such as "
            f"{', '.join(map(str, sorted(pids)[:4]))}): a process only ever records its own events"
        )
    shared = [pid for pid, by in spans.items() if _overlapping(list(by.values()))]
    if shared:
        out.append(
            f"{KERNEL}says {len(shared)} pid(s) (such as {shared[0]}) had events sent by two different processes at "
            "the same time: one of them forged the other's events"
        )
    return out


def _overlapping(spans: list[list[float]]) -> bool:
    ordered = sorted(spans)
    return any(later[0] < earlier[1] for earlier, later in zip(ordered, ordered[1:]))


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
    out = _written(run)
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


def _written(run: Run) -> dict[int, list[float]]:
    """pid -> the times of the events that process itself recorded (not what others said of it).

    A parent's ``start()`` and ``join()`` name a child that may be asleep the whole while: only the
    child's own events say it was at work.
    """
    out: dict[int, list[float]] = defaultdict(list)
    for event in run.events:
        out[event["pid"]].append(event["t"])
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
    if not _streamed(run):  # streamed evidence: the kernel named each event's sender (sender_flags), which
        out += _idle_writers(run, _written(run))  # settles what the CPU-time heuristic only suspects
    out += _omitted_processes(run, claims, main)
    out += _misstated_parents(run)
    out += _misstated_exit_codes(run)
    out += _claimed_overlaps(run)
    return out


def _is_helper(task: KernelTask, view: KernelView, processes: dict[int, KernelTask]) -> bool:
    """A process of the sandbox that is not the student's: the PID namespace's init, or one of ``multiprocessing``'s
    helpers (resource tracker, forkserver) itself, not a process the forkserver forked (it has the same command)."""
    if view.namespace and task.pid == 1:
        return True
    parent = processes.get(task.ppid) if task.ppid is not None else None
    marked = any(mark in task.command for mark in MP_HELPERS)
    return marked and not (parent is not None and any(mark in parent.command for mark in MP_HELPERS))


def _python(task: KernelTask) -> bool:
    first = task.command.split(" ", 1)[0].rsplit("/", 1)[-1]
    return first.startswith("python")


def _omitted_processes(run: Run, claims: dict[int, list[float]], main: KernelTask | None) -> list[str]:
    """Python processes of the tree the kernel saw at work that the evidence never mentions (no event names them)."""
    view = run.kernel
    if view is None or main is None or not view.complete or view.capped or run.raw.refused:
        return []
    senders = {sent[0] for event in run.events for sent in [event.get(SENT_BY)] if isinstance(sent, list) and sent}
    omitted = []
    processes = view.processes()
    for task in processes.values():
        if task.pid in claims or task.host in senders or task.pid == run.main_pid or _is_helper(task, view, processes):
            continue
        if not _python(task) or task.first < main.first:
            continue
        life = min(task.last, main.last) - task.first
        parent = processes.get(task.ppid) if task.ppid is not None else None
        forked = parent is not None and parent.command == task.command and (parent.pid in claims or parent.host in senders)
        enough = OMIT_FORK_LIFE if forked else OMIT_LIFE
        if task.cpu >= OMIT_CPU or (life >= enough and len(view.samples_within(task.first, task.last)) >= MIN_SAMPLES):
            omitted.append((task, life))
    if not omitted:
        return []
    task, life = omitted[0]
    return [
        f"{KERNEL}saw {len(omitted)} Python process(es) of the submission that the evidence never mentions (such as "
        f"pid {task.pid}, child of pid {task.ppid}, seen for {max(life, 0.0):.1f} s using {task.cpu:.2f} s of CPU): "
        "they ran with the grader's probes blinded; look at how those processes were started"
    ]


def _misstated_parents(run: Run) -> list[str]:
    """``proc`` events whose parent pid is another process of the tree than the kernel's parent of that process.

    Orphans are re-parented (to the PID namespace's init, pid 1, or to the grader outside the tree), so a
    parent of 1 on either side, or a claimed parent the kernel never saw in the tree, is never judged.
    """
    view = run.kernel
    if view is None:
        return []
    processes = view.processes()
    wrong = []
    for event in run.of(events.PROC):
        task = processes.get(event["pid"])
        claimed = event.get("ppid")
        if task is None or task.ppid in (None, 1) or type(claimed) is not int or claimed in (1, task.ppid):
            continue
        if claimed in processes and not _is_helper(processes[claimed], view, processes):
            wrong.append((event["pid"], claimed, task.ppid))
    if not wrong:
        return []
    pid, claimed, real = wrong[0]
    return [
        f"{KERNEL}says {len(wrong)} process(es) of the evidence had another parent than the evidence names (such as "
        f"pid {pid}: child of pid {claimed} by the evidence, of pid {real} by the kernel): look at who started them"
    ]


def _exit_code(status: int) -> int:
    """The ``exitcode`` ``multiprocessing`` reports for a wait status."""
    return -(status & 0x7F) if status & 0x7F else (status >> 8) & 0xFF


def _misstated_exit_codes(run: Run) -> list[str]:
    """``join()`` events whose exit code differs from the one the kernel showed when the child was a zombie.

    Only a non-zero status of the kernel is believed (a status it may not show to the reader reads 0).
    """
    view = run.kernel
    if view is None:
        return []
    processes = view.processes()
    wrong = []
    for event in run.of(events.MP_JOIN):
        task = processes.get(event.get("child"))  # type: ignore[arg-type]
        code = event.get("exitcode")
        if task is None or not task.exit or type(code) is not int:
            continue
        if code != _exit_code(task.exit):
            wrong.append((task.pid, code, _exit_code(task.exit)))
    if not wrong:
        return []
    pid, claimed, real = wrong[0]
    return [
        f"{KERNEL}saw {len(wrong)} child process(es) end with another exit code than join() reported (such as pid "
        f"{pid}: exit code {claimed} by the evidence, {real} by the kernel): look at how those children ended"
    ]


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


def _existence(run: Run) -> dict[int, tuple[float, float]]:
    """child pid -> a time span in which, by the evidence, the child certainly existed.

    From its ``start()`` to the end of a ``join()`` that waited for it (a process exists from its fork to
    its reaping); a ``join()`` that returned at once may find the child reaped already, so it adds nothing.
    """
    starts = {e["child"]: e["t"] for e in run.of(events.MP_START) if type(e.get("child")) is int}
    spans = {pid: (t, t) for pid, t in starts.items()}
    for event in run.of(events.MP_JOIN):
        pid, since = event.get("child"), event.get("since")
        if pid in starts and type(since) is float and event["t"] - since >= OVERLAP / 3 and type(event.get("exitcode")) is int:
            spans[pid] = (starts[pid], max(starts[pid], event["t"]))  # type: ignore[index]
    return spans


def _claimed_overlaps(run: Run) -> list[str]:
    """Children the evidence has existing together that the kernel saw one after the other.

    Decided only where every process of the tree is reached at every sample (a complete view) and at least
    two complete samples lie between the end of one child and the start of the other, so neither could have
    been missed while it existed.
    """
    view = run.kernel
    if view is None or not view.complete or view.capped:
        return []
    processes = view.processes()
    spans = _existence(run)
    pids = sorted(pid for pid in spans if pid in processes)
    for i, a in enumerate(pids):
        for b in pids[i + 1 :]:
            together = min(spans[a][1], spans[b][1]) - max(spans[a][0], spans[b][0])
            if together < OVERLAP:
                continue
            first, second = sorted((processes[a], processes[b]), key=lambda t: t.first)
            if len(view.samples_within(first.last + 1e-6, second.first - 1e-6)) >= 2:
                return [
                    f"{KERNEL}saw pid {first.pid} end before pid {second.pid} began, yet by the evidence both existed "
                    f"together for {together:.1f} s (started before either was joined): the evidence of when they "
                    "were started or joined was rewritten; look at how the children were started and joined"
                ]
    return []

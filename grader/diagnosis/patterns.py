"""Which classic deadlock pattern the stacks of a hung run show, in words for the student.

Runs in the pytest process, on the stacks the sandbox read back. :func:`analyse` turns
each process's :class:`~grader.sandbox.stacks.ProcessStack` into a :class:`ProcessView`
(its role from the recorded evidence, and what each of its threads waits for, see
:mod:`grader.diagnosis.waits`). :func:`find_patterns` then walks :data:`PATTERNS`, one
small function per deadlock pattern, in order: each looks at a :class:`PatternContext`
(the views, who started which child, which children already ended, the findings so far)
and returns the :class:`Finding` (or findings) it recognises. The order matters: the
last two patterns speak only when no earlier one did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.diagnosis.waits import SourceReader, Wait, classify, cpu_words
from grader.evidence.lockorder import blocked_cycle
from grader.inside import events
from grader.sandbox.stacks import Frame, ProcessStack, ThreadStack

if TYPE_CHECKING:
    from grader.evidence import Run

__all__ = ["PATTERNS", "Finding", "PatternContext", "ProcessView", "analyse", "find_patterns"]


@dataclass
class ProcessView:
    """A process as the analysis sees it: what it is, what it was doing."""

    pid: int
    label: str
    stack: ProcessStack
    waits: list[tuple[ThreadStack, Wait]]
    parent: int | None = None

    @property
    def main(self) -> tuple[ThreadStack, Wait] | None:
        """The thread that says most about the process: one in the student's code, else its main thread."""
        for thread, wait in self.waits:
            if thread.student_frame() is not None and wait.kind not in ("feeder", "feeder_idle"):
                return thread, wait
        for thread, wait in self.waits:
            if thread.name == "MainThread" or thread.current:
                return thread, wait
        return self.waits[0] if self.waits else None

    def kinds(self) -> set[str]:
        return {wait.kind for _, wait in self.waits}

    def threads_of(self, *kinds: str) -> list[tuple[ThreadStack, Wait]]:
        return [(t, w) for t, w in self.waits if w.kind in kinds]

    def first(self, *kinds: str) -> tuple[ThreadStack, Wait] | None:
        """The first thread waiting in one of ``kinds``."""
        found = self.threads_of(*kinds)
        return found[0] if found else None


@dataclass(frozen=True)
class Finding:
    """One diagnosis: a short title (``join before drain``) and an explanation for the student."""

    title: str
    text: str


def _short_target(target: str | None) -> str:
    return target.rsplit(".", 1)[-1] if target else ""


def process_labels(run: Run) -> tuple[dict[int, str], dict[int, int], dict[int, Any]]:
    labels: dict[int, str] = {run.main_pid: "main process"}
    parents: dict[int, int] = {}
    children: dict[int, Any] = {}
    for child in run.child_processes():
        target = _short_target(child.target)
        labels[child.pid] = f"child {child.name}" + (f" ({target})" if target else "")
        parents[child.pid] = child.parent
        children[child.pid] = child
    return labels, parents, children


def student_place(frame: Frame | None, source: SourceReader) -> str:
    """``file.py, line 12 (`code`)`` for a student's frame."""
    if frame is None:
        return ""
    text = f"{source.rel(frame)}, line {frame.line}"
    code = source.line(frame)
    return f"{text} (`{code}`)" if code else text


def _work_dir(stacks: dict[int, ProcessStack]) -> str | None:
    for stack in stacks.values():
        if stack.work_dir is not None:
            return stack.work_dir
    return None


def analyse(
    run: Run, module_path: Path | None, pids: Iterable[int] | None = None
) -> tuple[list[ProcessView], SourceReader]:
    """Classify the stacks of ``run`` (of ``pids`` only, if given)."""
    stacks = run.stacks
    wanted = set(stacks) if pids is None else set(pids) & set(stacks)
    source = SourceReader(module_path, run.module_file, _work_dir(stacks))
    labels, parents, _ = process_labels(run)
    views = []
    for pid in sorted(wanted, key=lambda p: (p != run.main_pid, p)):
        stack = stacks[pid]
        label = labels.get(pid) or (f"process {stack.name}" if stack.name else "process")
        waits = [(thread, classify(thread, stack, source)) for thread in stack.threads]
        views.append(ProcessView(pid, label, stack, waits, parents.get(pid, stack.ppid)))
    return views, source


# -- what every pattern may look at ------------------------------------------------------------


@dataclass
class PatternContext:
    """The processes of a hung run as the patterns see them, and the findings so far."""

    run: Run
    views: list[ProcessView]
    source: SourceReader
    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_pid = {v.pid: v for v in self.views}
        self.labels, self.parents, self.children = process_labels(self.run)
        self.alive = set(self.by_pid)
        # a process still starting up uses the CPU too: only a busy thread in the student's code counts
        self.busy = [(v, t, w) for v in self.views for t, w in v.waits
                     if w.kind == "busy" and t.student_frame() is not None]
        self.joiners = [v for v in self.views if v.first("join")]
        self.senders = [(v, t) for v in self.views for t, w in v.waits if w.kind == "send"]

    def name(self, pid: int) -> str:
        """``the child Process-2 (consumer) (pid 12)``."""
        view = self.by_pid.get(pid)
        label = view.label if view else self.labels.get(pid, "process")
        return f"the {label} (pid {pid})"

    def at(self, thread: ThreadStack) -> str:
        """`` at file.py, line 12 (`code`)`` for the thread's innermost student frame, or nothing."""
        where = student_place(thread.student_frame(), self.source)
        return f" at {where}" if where else ""

    def children_of(self, parent: int) -> list[int]:
        """The live processes ``parent`` started (from the evidence, else from the process table)."""
        return [pid for pid in self.alive if self.parents.get(pid) == parent or self.by_pid[pid].stack.ppid == parent]

    def joined_child(self, parent: ProcessView, prefer: Iterable[int]) -> int | None:
        """The child ``parent`` waits for in join(): one of ``prefer``, else its only live child."""
        mine = self.children_of(parent.pid)
        for pid in prefer:
            if pid in mine:
                return pid
        return mine[0] if len(mine) == 1 else None

    def ended(self, *, besides: int) -> list[int]:
        """Children the evidence saw start that are no longer alive (not ``besides``)."""
        return [pid for pid in self.children if pid not in self.alive and pid != besides]


# -- the patterns, one function each, in the order they are tried -------------------------------------


def threads_that_died(ctx: PatternContext) -> Finding | None:
    """``thread ended by an exception``: a thread of the run died before it got stuck; the others may wait for it."""
    errors = ctx.run.thread_errors()
    if not errors:
        return None
    first = errors[0]
    where = ""
    if first.file and first.line:
        frame = Frame(first.file, first.line, first.func, "student")
        where = f" at {student_place(frame, ctx.source)}" + (f", in {first.func}" if first.func else "")
    thread = f"thread {first.name}" if first.name else "a thread"
    process = "" if first.pid == ctx.run.main_pid else f" of {ctx.name(first.pid)}"
    message = f": {first.message}" if first.message else ""
    more = len(errors) - 1
    also = f" {more} more thread(s) of the run ended by an exception too." if more else ""
    return Finding(
        "thread ended by an exception",
        f"{thread}{process} ended with {first.error}{message}{where}, before the run got stuck.{also} A thread "
        f"that dies does not do the rest of its work, and the threads that wait for it (for an item it would take, "
        f"a lock it would release, a message it would send) wait forever: find why that line raised.",
    )


def children_flushing_a_queue(ctx: PatternContext) -> list[Finding]:
    """``join before drain`` (a parent joins it) or ``queue never drained``: a child that returned but cannot end."""
    findings = []
    exiting = [v for v in ctx.views if v.kinds() & {"exiting", "feeder"} and not any(
        t.student_frame() is not None and w.kind not in ("feeder", "feeder_idle") for t, w in v.waits)]
    for child in exiting:
        joiner = next((j for j in ctx.joiners if ctx.joined_child(j, [child.pid]) == child.pid), None)
        if joiner is not None:
            findings.append(_join_before_drain(ctx, joiner, child))
        else:
            findings.append(Finding(
                "queue never drained",
                f"{ctx.name(child.pid)} has finished its code but cannot end: items it put on a multiprocessing.Queue "
                f"are still waiting to be written into the queue's pipe, and no process reads that queue. Make sure "
                f"every item put on a queue is taken off it.",
            ))
    return findings


def _join_before_drain(ctx: PatternContext, joiner: ProcessView, child: ProcessView) -> Finding:
    thread, _ = joiner.first("join") or (None, None)
    return Finding(
        "join before drain",
        f"{ctx.name(joiner.pid)} waits in join(){ctx.at(thread) if thread else ''} for {ctx.name(child.pid)} to end. "
        f"That child has finished its code, but a process that put items on a multiprocessing.Queue ends "
        f"only after those items have been written into the queue's pipe, and the pipe takes them only as "
        f"fast as someone reads the queue. Nobody reads it while the parent waits in join(), so both wait "
        f"forever (this shows with large or many items). Take every item off the queue (up to the sentinel) "
        f"first, then join() the process.",
    )


def both_ends_sending(ctx: PatternContext) -> Finding | None:
    """``both ends sending``: two or more processes blocked in send(), so nobody receives."""
    senders = ctx.senders
    if len({v.pid for v, _ in senders}) < 2:
        return None
    listed = " and ".join(f"{ctx.name(v.pid)}{ctx.at(t)}" for v, t in senders[:3])
    return Finding(
        "both ends sending",
        f"{listed} are {'both' if len(senders) == 2 else 'all'} blocked in send() and no process is receiving. "
        f"A pipe holds only about 64 KiB: "
        f"sending a larger message blocks until the other end calls recv(). When both ends send before they "
        f"receive, each waits for the other forever. Receive each reply before sending the next message "
        f"(or receive in another thread).",
    )


def nobody_receiving(ctx: PatternContext) -> Finding | None:
    """``nobody receiving``: one process blocked in send() and no process in recv()."""
    senders = ctx.senders
    if not senders or len({v.pid for v, _ in senders}) >= 2:
        return None
    if any(w.kind == "recv" for v in ctx.views for _, w in v.waits):
        return None
    view, thread = senders[0]
    return Finding(
        "nobody receiving",
        f"{ctx.name(view.pid)} is blocked in send(){ctx.at(thread)}: the pipe is full and no process is receiving "
        f"from its other end. A pipe holds only about 64 KiB; the other end must call recv().",
    )


def loops_that_never_end(ctx: PatternContext) -> list[Finding]:
    """``loop that never ends``: a thread running in the student's code (the first two such threads)."""
    findings = []
    for view, thread, _ in ctx.busy[:2]:
        where = ctx.at(thread)
        findings.append(Finding(
            "loop that never ends",
            f"{ctx.name(view.pid)} was running, not waiting{where}{cpu_words(thread, view.stack)}: a loop whose exit "
            f"condition never becomes true. Polling (empty(), qsize(), a flag, a counter) instead of blocking in "
            f"get(), recv() or join() often does this, and so does a stop condition the other process never meets.",
        ))
    return findings


def locks_in_a_circle(ctx: PatternContext) -> Finding | None:
    """``locks taken in a circle``: threads each waiting for a lock the next one holds (recorded attempts).

    Needs the ``locks`` probe in the run; the circle is the one
    :func:`grader.evidence.lockorder.blocked_cycle` finds in the evidence.
    """
    if ctx.busy:
        return None
    cycle = blocked_cycle(ctx.run)
    if cycle is None:
        return None
    return Finding(
        "locks taken in a circle",
        f"{cycle.describe(ctx.run)}. Take the locks in one global order (the lowest-numbered first) in every "
        "thread, or take them all under one guard lock, or take the second one with acquire(blocking=False) and "
        "put the first back when it is taken.",
    )


def lock_never_released(ctx: PatternContext) -> Finding | None:
    """``lock never released``: processes wait to acquire a lock and nothing runs; names a likely holder."""
    waiters = [(v, t) for v in ctx.views for t, w in v.waits if w.kind == "acquire"]
    if not waiters or ctx.busy or any(f.title == "locks taken in a circle" for f in ctx.findings):
        return None
    places = sorted({student_place(t.student_frame(), ctx.source) for _, t in waiters} - {""})
    holders = [(v, t, w) for v in ctx.views for t, w in v.waits
               if w.kind in ("sync_wait", "sleep", "blocked", "get", "recv") and t.student_frame() is not None]
    count = len({v.pid for v, _ in waiters})
    text = (f"{count} process{'es' if count > 1 else ''} wait{'' if count > 1 else 's'} to acquire a lock"
            + (f" at {'; '.join(places[:3])}" if places else "")
            + " and no process is running to release it.")
    if holders:
        view, thread, wait = holders[0]
        holder = ctx.name(view.pid)
        text += (f" {holder[0].upper()}{holder[1:]} may be holding it while it waits{ctx.at(thread)} "
                 f"({wait.short}). Do not wait for anything (an event, a queue, another lock) while holding a "
                 f"lock, and keep only the few lines that need the lock inside `with lock:`.")
    else:
        text += (" A lock that is acquired and not released on every path (a missing release(), or a return, "
                 "break or exception between acquire() and release()) blocks every later acquire, also a second "
                 "acquire by the same process. Use `with lock:` around the few lines that need the lock, so it "
                 "is always released.")
    return Finding("lock never released", text)


HIDDEN_WAITS = ("feeder_idle", "pool_thread")
"""Threads of the standard library's own that say nothing about a hang (idle queue feeders, a pool's helpers)."""

_WAITING_KINDS = {"join", "get", "recv", "acquire", "idle_worker", "exiting", "feeder_idle", "thread_join"}


def message_that_never_comes(ctx: PatternContext) -> Finding | None:
    """``missing sentinel`` or ``child that does not stop``: a process in get()/recv() while every other waits."""
    if ctx.busy or ctx.senders:
        return None
    for view in ctx.views:
        entry = view.first("get", "recv")
        if entry is None or view.kinds() & {"idle_worker"}:
            continue
        if not all(v.pid == view.pid or v.kinds() & _WAITING_KINDS for v in ctx.views):
            continue
        return _no_message(ctx, view, *entry)
    return None


def _no_message(ctx: PatternContext, view: ProcessView, thread: ThreadStack, wait: Wait) -> Finding:
    what = "get()" if wait.kind == "get" else "recv()"
    parent = ctx.by_pid.get(ctx.parents.get(view.pid, -1)) if view.pid != ctx.run.main_pid else None
    ended = ctx.ended(besides=view.pid)
    ended_names = ", ".join(f"{ctx.labels.get(pid)} (pid {pid})" for pid in ended[:3])
    if parent is not None and parent.first("join") is not None and ended:
        return Finding(
            "missing sentinel",
            f"{ctx.name(view.pid)} waits in {what}{ctx.at(thread)} for the next item, but {ended_names} already "
            f"ended and {ctx.name(parent.pid)} waits in join(): no sentinel (stop message) is coming. The "
            f"producer must send the sentinel after its last item, and the consumer must stop as soon as it "
            f"receives it (compare with `is None` / `== SENTINEL`).",
        )
    if parent is not None and parent.first("join") is not None:
        return Finding(
            "child that does not stop",
            f"{ctx.name(parent.pid)} waits in join() for {ctx.name(view.pid)}, which waits in {what}{ctx.at(thread)} for "
            f"another message. The parent has nothing more to send, so the child must return when it "
            f"receives the stop message (None) instead of waiting for more.",
        )
    gone = f"{ended_names} already ended" if ended else "every other process is itself waiting"
    return Finding(
        "missing sentinel",
        f"{ctx.name(view.pid)} waits in {what}{ctx.at(thread)} for an item no process will send: {gone}. "
        f"The process feeding it must send a sentinel (stop message) after the last item, and the "
        f"receiver must stop when it gets it.",
    )


def pool_result_that_never_comes(ctx: PatternContext) -> Finding | None:
    """``pool result that never comes``: a process waits for a pool's results while every worker is idle."""
    pool_waiters = [(v, t) for v in ctx.views for t, w in v.waits if w.kind == "pool_wait" and t.student_frame()]
    workers = [v for v in ctx.views if "idle_worker" in v.kinds()]
    if not (pool_waiters and workers and not ctx.busy and all(
        v.kinds() <= {"idle_worker", "feeder_idle", "pool_thread"} for v in workers
    )):
        return None
    view, thread = pool_waiters[0]
    dead = [pid for pid in ctx.children if pid not in ctx.alive and "PoolWorker" in ctx.labels.get(pid, "")]
    dead_names = ", ".join(f"the {ctx.labels[pid]} (pid {pid})" for pid in dead[:3])
    gone = f" Evidence: {dead_names} ended while the pool was in use." if dead else ""
    return Finding(
        "pool result that never comes",
        f"{ctx.name(view.pid)} waits for the pool's results{ctx.at(thread)}, but every worker of the pool is idle, "
        f"waiting for a new task: a result is missing and will never come. This happens when a worker process "
        f"dies while running a task (os._exit() or sys.exit() in the function, a crash, a memory limit): the "
        f"pool starts a new worker, but that task is lost and map() waits forever.{gone} Check what the function "
        f"you give the pool does with every input.",
    )


def _one_after_another(ctx: PatternContext, pid: int, processes: bool) -> tuple[int, str] | None:
    """``(how many were started, the name of the last)`` if ``pid`` joined each thread (or child) it started
    before starting the next, at least once, and now waits for the last one; else ``None``."""
    start, join, key = (events.MP_START, events.MP_JOIN, "child") if processes else (events.TH_START, events.TH_JOIN,
                                                                                        "ident")
    order = [e for e in ctx.run.events if e.get("pid") == pid and e.get("ev") in (start, join)]
    if len(order) < 3 or len(order) % 2 == 0:
        return None
    for index, event in enumerate(order):
        expected = start if index % 2 == 0 else join
        if event["ev"] != expected or (expected == join and (event.get(key) != order[index - 1].get(key)
                                                             or event.get("alive"))):
            return None
    return len(order) // 2 + 1, str(order[-1].get("name") or "")


def _stuck_places(ctx: PatternContext, kinds: tuple[str, ...], others: tuple[str, ...]) -> dict[str, int] | None:
    """The places of the student's code where threads wait in one of ``kinds``, each with how many wait there;
    ``None`` when a thread is doing anything but that or one of ``others`` (the standard library's idle threads
    aside)."""
    places: dict[str, int] = {}
    for view in ctx.views:
        for thread, wait in view.waits:
            if wait.kind in HIDDEN_WAITS:
                continue
            if wait.kind in kinds and thread.student_frame() is not None:
                where = student_place(thread.student_frame(), ctx.source)
                places[where] = places.get(where, 0) + 1
            elif wait.kind not in kinds + others:
                return None
    return places


def nobody_left_to_notify(ctx: PatternContext) -> Finding | None:
    """``everyone waiting for a notify``: threads wait in ``wait()`` at two or more places of the student's code, and
    every other thread waits too: nobody is left to notify them (a lost or misdirected wake-up)."""
    places = None if ctx.busy else _stuck_places(ctx, ("sync_wait",), ("join", "thread_join", "acquire"))
    if places is None or len(places) < 2:
        return None
    counted = sorted(places.items(), key=lambda place: -place[1])[:3]
    shown = "; ".join(f"{count} {'in wait() ' if not index else ''}at {where}"
                      for index, (where, count) in enumerate(counted))
    return Finding(
        "everyone waiting for a notify",
        f"every thread waits: {shown}; any other thread waits for those. None is left to call notify(). "
        "With one Condition for threads that wait for different things (producers for room, consumers for an "
        "item), notify() wakes a single waiter, which may be of the wrong kind: it waits again, and the wake-up "
        "the other kind needed is lost. Use notify_all(), or one Condition per kind on the same lock (not_full, "
        "not_empty), and notify whenever the state a waiter checks changes.",
    )


def join_inside_the_start_loop(ctx: PatternContext) -> Finding | None:
    """``join inside the start loop``: a process joined each thread or child before starting the next one."""
    for view in ctx.views:
        entry = view.first("thread_join", "join")
        if entry is None or entry[0].student_frame() is None:
            continue
        thread, wait = entry
        found = _one_after_another(ctx, view.pid, processes=wait.kind == "join")
        if found is None:
            continue
        started, name = found
        kind = "child process" if wait.kind == "join" else "thread"
        return Finding(
            "join inside the start loop",
            f"{ctx.name(view.pid)} waits in join(){ctx.at(thread)} for {name or 'the ' + kind + ' it started last'}. "
            f"It joined each {kind} before it started the next one ({started} started so far, each joined before "
            f"the next start): join() inside the loop that starts them makes them run one after another, never at "
            f"the same time, and the total time the sum of all their times. Start every {kind} in one loop, then "
            f"join them all in a second loop.",
        )
    return None


def child_that_does_not_end(ctx: PatternContext) -> Finding | None:
    """``child that does not end``: a parent joins a child still in its code. Only when nothing else matched."""
    if ctx.findings:
        return None
    for joiner in ctx.joiners:
        mine = sorted(pid for pid in ctx.children_of(joiner.pid) if pid != joiner.pid)
        running = [pid for pid in mine if ctx.by_pid[pid].main is not None]
        if not running:
            continue
        child_pid = running[0]
        thread, wait = ctx.by_pid[child_pid].main  # type: ignore[misc]
        more = f" (and {len(running) - 1} more of its children)" if len(running) > 1 else ""
        return Finding(
            "child that does not end",
            f"{ctx.name(joiner.pid)} waits in join() for {ctx.name(child_pid)}{more}, which is still in its code"
            f"{ctx.at(thread)} ({wait.short}). A child ends only when its target function returns: "
            f"check the loop or the call it is stuck in.",
        )
    return None


def thread_that_does_not_stop(ctx: PatternContext) -> Finding | None:
    """``thread that does not stop``: a thread waits in join() for threads that all wait, in the student's code, for
    something no running thread will do. Only when nothing else matched."""
    if ctx.findings or ctx.busy:
        return None
    places = _stuck_places(ctx, ("sync_wait", "get", "acquire"), ("thread_join",))
    joiner = next(((v, t) for v in ctx.views for t, w in v.waits if w.kind == "thread_join"), None)
    if not places or joiner is None:
        return None
    count = sum(places.values())
    counted = sorted(places.items(), key=lambda place: -place[1])[:3]
    shown = f"at {counted[0][0]}" if len(counted) == 1 else "; ".join(f"{n} at {where}" for where, n in counted)
    return Finding(
        "thread that does not stop",
        f"{ctx.name(joiner[0].pid)} waits in join(){ctx.at(joiner[1])} for its threads, and {count} of them "
        f"{'wait' if count > 1 else 'waits'} in your code for something no running thread will do: {shown}. A "
        "consumer that waits for a stop value must receive one: put one sentinel for each consumer once the "
        "producers are done (or let each consumer stop on a count it shares), so that every join can return.",
    )


def sleeping_in_a_loop(ctx: PatternContext) -> Finding | None:
    """``sleeping in a loop``: the main process sleeps when the time runs out. Only when nothing else matched."""
    if ctx.findings:
        return None
    main_view = ctx.by_pid.get(ctx.run.main_pid)
    entry = main_view.first("sleep") if main_view is not None else None
    if main_view is None or entry is None:
        return None
    return Finding(
        "sleeping in a loop",
        f"{ctx.name(main_view.pid)} was sleeping{ctx.at(entry[0])} when the time ran out. A single sleep as long as "
        f"the whole time limit is unlikely: this is most often a loop around the sleep whose exit condition "
        f"never becomes true.",
    )


Pattern = Callable[[PatternContext], Finding | list[Finding] | None]

PATTERNS: tuple[Pattern, ...] = (
    threads_that_died,
    children_flushing_a_queue,
    both_ends_sending,
    nobody_receiving,
    loops_that_never_end,
    locks_in_a_circle,
    lock_never_released,
    message_that_never_comes,
    pool_result_that_never_comes,
    nobody_left_to_notify,
    join_inside_the_start_loop,
    child_that_does_not_end,
    thread_that_does_not_stop,
    sleeping_in_a_loop,
)
"""The deadlock patterns in the order they are tried; every one that matches adds its findings."""


def find_patterns(run: Run, views: list[ProcessView], source: SourceReader) -> list[Finding]:
    """The findings of every pattern of :data:`PATTERNS` that the processes of ``run`` show, in order."""
    ctx = PatternContext(run, views, source)
    for pattern in PATTERNS:
        found = pattern(ctx)
        if isinstance(found, Finding):
            ctx.findings.append(found)
        elif found:
            ctx.findings.extend(found)
    return ctx.findings

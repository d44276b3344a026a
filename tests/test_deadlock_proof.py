"""A run ends as soon as the kernel proves it deadlocked, and never when it still makes progress.

The proof (:mod:`grader.sandbox.blocked`) is read from the host's ``/proc``: every thread of the tree
sleeps in a system call without a time limit that only the tree can end, and none runs for a while.
The deadlock corpus (``tests/corpus/deadlocks``) ends early with its diagnosis unchanged
(``test_hang_diagnostics``); the submissions of ``tests/corpus/progress`` wait in ways that look like a
deadlock (every other thread blocked for good) while one thread sleeps or waits with a timeout: they
must return, never be ended early.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ready_process

from grader.grading.grade import grade_submission
from grader.model.assignment import Assignment
from grader.model.results import Status
from grader.sandbox import blocked

ROOT = Path(__file__).parent
PROGRESS = ROOT / "corpus" / "progress"

pytestmark = pytest.mark.skipif(not blocked.available(), reason="no /proc/PID/task/TID/syscall here")


@pytest.mark.parametrize("path", sorted(PROGRESS.glob("*.py")), ids=lambda p: p.stem)
def test_a_run_that_makes_progress_is_never_ended_early(path: Path) -> None:
    result = grade_submission(Assignment.load(ROOT / "assignments" / "progress"), path)
    assert result.error is None, result.error_detail
    [check] = result.checks
    assert check.status is Status.PASSED, f"{check.message}\n{check.diagnostics}"


def _prove(code: str, timeout: float) -> blocked.Proof | None:
    """Watch ``code`` (it prints ``ready`` once it is about to block) for ``timeout`` seconds."""
    with ready_process(code) as proc:
        try:
            return blocked.wait_or_prove(proc, timeout, lambda: [proc.pid])
        except subprocess.TimeoutExpired:
            return None


LOCK_CYCLE = """
    import threading, time
    a, b = threading.Lock(), threading.Lock()
    def other():
        with b:
            time.sleep(0.2)
            with a:
                pass
    with a:
        threading.Thread(target=other).start()
        time.sleep(0.2)
        print("ready", flush=True)
        with b:
            pass
"""


def test_two_threads_waiting_for_each_others_lock_are_proven_deadlocked() -> None:
    proof = _prove(LOCK_CYCLE, timeout=60)
    assert proof is not None
    assert (proof.processes, proof.threads) == (1, 2)
    assert proof.waits == ((blocked.LOCK, 2),)
    assert proof.window >= blocked.CONFIRM
    assert f"waited without a time limit (for {blocked.LOCK}) and none of them ran" in proof.describe()


def test_the_watch_reads_the_tree_through_files_it_keeps_open_and_closes_them() -> None:
    """Between looks the watch keeps the threads' files open (fewer path walks); none is left once it returns."""
    before = set(os.listdir("/proc/self/fd"))
    proof = _prove(LOCK_CYCLE, timeout=60)
    assert proof is not None
    assert set(os.listdir("/proc/self/fd")) <= before  # wait_or_prove closed its watch's files
    watch = blocked.DeadlockWatch()
    with ready_process(LOCK_CYCLE) as proc:
        while not watch.look(blocked.tree([proc.pid], watch.files), time.monotonic()):
            time.sleep(blocked.LOOK_EVERY)
        assert len(watch.files) >= 8  # each of the two threads' stat, syscall, schedstat and children
    watch.close()
    assert len(watch.files) == 0


@pytest.mark.parametrize(
    "code",
    [
        # a thread that sleeps in a loop while the other waits for its lock
        "import threading, time\nl = threading.Lock()\nl.acquire()\nthreading.Thread(target=l.acquire).start()\n"
        "print('ready', flush=True)\nwhile True:\n    time.sleep(0.05)\n",
        # a wait on a lock with a timeout, again and again
        "import threading\nl = threading.Lock()\nl.acquire()\nprint('ready', flush=True)\n"
        "while not l.acquire(timeout=0.1):\n    pass\n",
        # a busy loop
        "print('ready', flush=True)\nwhile True:\n    pass\n",
        # a deadlock, but the process catches SIGALRM: the clock may still wake it
        "import signal, threading\nsignal.signal(signal.SIGALRM, lambda *a: None)\nl = threading.Lock()\n"
        "l.acquire()\nprint('ready', flush=True)\nl.acquire()\n",
        # a read on a TCP connection: a process outside the tree could write to it
        "import socket\nserver = socket.create_server(('127.0.0.1', 0))\n"
        "client = socket.create_connection(server.getsockname())\nprint('ready', flush=True)\nclient.recv(1)\n",
    ],
    ids=["sleep-loop", "timed-acquire", "busy", "sigalrm-handler", "tcp-read"],
)
def test_a_process_that_can_still_be_woken_is_never_proven(code: str) -> None:
    # looked at for 1.5 s (five times the confirmation window): none of these may ever be proven, and none ends
    with ready_process(code) as proc, pytest.raises(subprocess.TimeoutExpired):
        blocked.wait_or_prove(proc, 1.5, lambda: [proc.pid])


def test_untimed_waits_are_told_from_timed_ones_by_their_arguments() -> None:
    futex, wait4, poll = (next(n for n, name in blocked.NUMBERS.items() if name == want)
                          for want in ("futex", "wait4", "poll" if "poll" in blocked.NUMBERS.values() else "ppoll"))
    files = blocked._Files(0)
    assert blocked.untimed_wait((futex, 1, 0x189, 0, 0, 0, 0xFFFFFFFF), files) == blocked.LOCK
    assert blocked.untimed_wait((futex, 1, 0x189, 0, 0x7FFC0000, 0, 0xFFFFFFFF), files) is None  # a timeout
    assert blocked.untimed_wait((futex, 1, 1, 1, 0, 0, 0), files) is None  # FUTEX_WAKE is no wait
    assert blocked.untimed_wait((wait4, 12, 0, 0, 0, 0, 0), files) == blocked.CHILD
    assert blocked.untimed_wait((wait4, 12, 0, 1, 0, 0, 0), files) is None  # WNOHANG
    assert blocked.untimed_wait((poll, 0x7FFC0000, 1, 500, 0, 0, 0), files) is None
    assert blocked.untimed_wait((futex, 1, 0x189), files) is None  # not a whole syscall line


@pytest.mark.parametrize("drop", [False, True])
def test_the_checks_alarm_that_came_during_a_run_is_delivered_after_it_unless_the_run_timed_out(drop: bool) -> None:
    """A run that timed out (or deadlocked) keeps its own verdict and diagnosis; the check's alarm is dropped."""
    import signal
    import time

    from grader.sandbox.sandbox import HeldAlarm

    fired: list[str] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append("check timed out"))
    try:
        with HeldAlarm() as held:
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            deadline, came = time.monotonic() + 5, False
            while not came and time.monotonic() < deadline:  # until the alarm came while the run was under way
                # held back: blocked (pending), or noted when a thread that does not block it took it. It moves
                # from the one to the other between two looks, so it is judged at the look that saw it.
                came = signal.SIGALRM in signal.sigpending() or bool(held.pending)
                if not came:
                    time.sleep(0.01)
            assert came and not fired
            held.drop = drop
        assert fired == ([] if drop else ["check timed out"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_proven_deadlocks_stacks_take_their_cpu_from_the_proof_without_watching_again(tmp_path: Path) -> None:
    """The proof saw no thread run for its window: each stack says so (no CPU over that window, never running), and
    the stacks are read without a second watch of the threads (:data:`grader.sandbox.stacks.CPU_WINDOW`)."""
    from unittest import mock

    from grader.inside import wire
    from grader.sandbox import Isolation, Sandbox, stacks

    (tmp_path / "mod.py").write_text("def run():\n" + LOCK_CYCLE.replace('print("ready", flush=True)', "pass"))
    box = Sandbox(tmp_path / "mod.py", "mod", start_method="spawn", isolation=Isolation(audit_hook=False))
    with mock.patch.object(stacks, "_measure_cpu") as watched:
        raw = box.run({"kind": "call", "func": "run", "args": wire.encode([]), "kwargs": wire.encode({})}, timeout=30)
    assert raw.deadlock is not None, (raw.result, raw.stderr[-2000:])
    watched.assert_not_called()
    [stack] = raw.stacks.values()
    assert stack.window == raw.deadlock.window and stack.cpu == 0.0
    threads = [thread for thread in stack.threads if thread.cpu is not None]
    assert len(threads) == 2 and all(thread.cpu == 0.0 and thread.running == 0.0 for thread in threads), stack

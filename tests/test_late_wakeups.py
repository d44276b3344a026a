"""The probes that hold threads back where a race would show (grader/inside/probe_pause.py), and the
diagnosis of a thread that died.

``late_wakeups``: a wait under ``if`` instead of ``while`` is wrong only when another thread runs
between the ``notify`` and the woken thread taking the lock back. With the probe, every thread woken
in a ``Condition.wait`` takes its lock back only once all the others are paused or waiting, the woken
ones in the order they woke: the ``if`` version finds the buffer empty again on every run, while a
wait in a loop waits again and loses nothing. A thread that dies of it is named in the diagnosis.

``unlocked_uses``: a thread about to use a watched container holding no lock pauses until the others
are paused or waiting, and those paused there go on together: a check for room made under the lock
and an append made after it let every producer in.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

from grader.diagnosis import describe_hang
from grader.evidence import Run
from grader.evidence.lockorder import pauses
from grader.evidence.locks import accesses
from grader.inside import events, wire
from grader.sandbox import Sandbox

CORPUS = Path(__file__).parent / "corpus" / "bounded_buffer"
SMALL = [2, 3, 10, 1]  # the bounded_buffer checks' run(2, 3, 10, 1): three consumers, a capacity of one


def sandbox_run(path: Path, args: list[int], probes: list[str], watch: bool = False) -> Run:
    sandbox = Sandbox(path, "bounded_buffer", start_method="spawn")
    action = {"kind": "call", "func": "run", "args": wire.encode(args), "kwargs": wire.encode({})}
    trace = ["BoundedBuffer.get", *(["@BoundedBuffer"] if watch else [])]
    raw = sandbox.run(action, timeout=20, trace=trace, probes=probes)
    return Run(raw, label="run(2, 3, 10, 1)", module_file="bounded_buffer.py")


def all_items(producers: int, items: int) -> list[tuple[int, int]]:
    return sorted((p, k) for p in range(producers) for k in range(items))


def test_a_wait_under_if_gets_stuck_on_every_run_and_the_dead_consumer_is_named(tmp_path: Path) -> None:
    source = CORPUS / "buggy" / "if_not_while.py"
    for _ in range(3):
        run = sandbox_run(source, SMALL, ["late_wakeups"])
        ending = run.ending()
        assert ending is not None and "deadlocked: after" in ending.observed, ending
        assert pauses(run).quiet > 0, "woken threads were held back until the others paused or waited"
        errors = run.thread_errors()
        assert len(errors) >= 2 and {e.error for e in errors} == {"IndexError"}
        first = errors[0]
        assert first.file.endswith("bounded_buffer.py") and first.func.endswith("get")
        assert "pop(0)" in source.read_text().splitlines()[first.line - 1]
    diagnosis = describe_hang(run, source)
    assert "Likely cause (thread ended by an exception)" in diagnosis
    line = source.read_text().splitlines().index("            item = self.items.pop(0)") + 1
    assert f"IndexError: pop from empty list at bounded_buffer.py, line {line} (`item = self.items.pop(0)`)" in diagnosis
    assert "1 more thread(s) of the run ended by an exception too" in diagnosis


def test_one_condition_woken_with_notify_gets_stuck_on_every_run_and_the_lost_wakeup_is_named() -> None:
    source = CORPUS / "buggy" / "notify_one_condition.py"
    lines = source.read_text().splitlines()
    waits = [number for number, text in enumerate(lines, 1) if text.strip() == "self.cond.wait()"]
    for _ in range(3):
        run = sandbox_run(source, SMALL, ["late_wakeups"])
        ending = run.ending()
        assert ending is not None and "deadlocked: after" in ending.observed, ending
    diagnosis = describe_hang(run, source)
    assert "Likely cause (everyone waiting for a notify): every thread waits: " in diagnosis
    assert all(f"bounded_buffer.py, line {number} (`self.cond.wait()`)" in diagnosis for number in waits)
    assert "Use notify_all(), or one Condition per kind" in diagnosis


@pytest.mark.parametrize(
    "name", ["one_condition_notify_all.py", "wait_for_counted.py", "two_conditions.py", "timed_wait_close.py"]
)
def test_waits_in_a_loop_lose_nothing_when_woken_threads_go_last(name: str) -> None:
    run = sandbox_run(CORPUS / "correct" / name, SMALL, ["late_wakeups"])
    assert run.ending() is None and sorted(run.value) == all_items(2, 10)
    summary = pauses(run)
    assert summary.quiet > 0 and summary.cut == 0 and summary.dropped == 0
    assert run.thread_errors() == []


def test_semaphores_are_never_held_back() -> None:
    run = sandbox_run(CORPUS / "correct" / "semaphores.py", SMALL, ["late_wakeups"])
    assert run.ending() is None and sorted(run.value) == all_items(2, 10)
    assert pauses(run).quiet == pauses(run).cut == 0, "only a Condition's wait of the student's code is held back"


def test_a_woken_thread_takes_the_lock_back_after_a_thread_that_came_later(tmp_path: Path) -> None:
    """notify() wakes a waiter while another thread already wants the lock: that one goes first, on every run."""
    path = tmp_path / "bounded_buffer.py"
    path.write_text(textwrap.dedent("""
        import threading

        def run(*args):
            cond = threading.Condition()
            items, seen = [], []
            ready = threading.Semaphore(0)

            def waiter():
                with cond:
                    ready.release()
                    cond.wait()
                    seen.append(("waiter", list(items)))

            def latecomer():
                with cond:
                    seen.append(("latecomer", list(items)))
                    items.clear()

            first = threading.Thread(target=waiter)
            first.start()
            ready.acquire()
            with cond:
                items.append(1)
                cond.notify()
                later = threading.Thread(target=latecomer)
                later.start()  # it waits for the lock this thread holds
            first.join()
            later.join()
            return seen
    """))
    for _ in range(3):
        run = sandbox_run(path, [], ["late_wakeups"])
        assert run.ending() is None
        assert run.value == [("latecomer", [1]), ("waiter", [])]
        assert pauses(run).quiet == 1


def test_a_thread_that_died_is_recorded_whatever_its_exception_says(tmp_path: Path) -> None:
    path = tmp_path / "bounded_buffer.py"
    path.write_text(textwrap.dedent("""
        import threading

        class Odd(Exception):
            def __str__(self):
                raise RuntimeError("no words")

        def fail(kind):
            if kind == "odd":
                raise Odd()
            raise ValueError("\\x1b[31m" + "x" * 5000)

        def run(*args):
            for kind in ("value", "odd"):
                t = threading.Thread(target=fail, args=(kind,), name=kind)
                t.start()
                t.join()
            return "done"
    """))
    run = sandbox_run(path, [], [])
    assert run.ending() is None and run.value == "done"
    value, odd = run.thread_errors()
    assert (value.name, value.error, value.line, value.func) == ("value", "ValueError", 11, "fail")
    assert len(value.message) == 200 and value.message.startswith("\x1b[31mxxx")
    assert (odd.name, odd.error, odd.message, odd.line) == ("odd", "Odd", "", 10)


RUN = [3, 2, 25, 2]  # the bounded_buffer checks' run(3, 2, 25, 2)


def storage_sizes(run: Run) -> list[int]:
    return [a.size for a in accesses(run) if a.op == "use" and a.size is not None]


def unlocked_pauses(run: Run) -> list[dict[str, object]]:
    return [e for e in run.of(events.LK_PAUSE) if str(e.get("lock", "")).startswith("attr:")]


def test_an_append_after_the_lock_overfills_the_buffer_on_every_run() -> None:
    source = CORPUS / "buggy" / "append_outside_lock.py"
    for _ in range(3):
        run = sandbox_run(source, RUN, ["late_wakeups", "unlocked_uses"], watch=True)
        assert run.ending() is None and sorted(run.value) == all_items(3, 25)
        assert max(storage_sizes(run)) > 2, "producers that saw room under the lock all appended after it"
        per_thread = Counter(e["tid"] for e in unlocked_pauses(run))
        assert per_thread and max(per_thread.values()) <= 10, "at most 10 pauses per thread"


def test_uses_under_the_lock_are_never_held_back() -> None:
    for path in (CORPUS / "correct" / "one_condition_notify_all.py", CORPUS / "correct" / "semaphores.py"):
        run = sandbox_run(path, RUN, ["late_wakeups", "unlocked_uses"], watch=True)
        assert run.ending() is None and sorted(run.value) == all_items(3, 25)
        assert max(storage_sizes(run)) <= 2 and unlocked_pauses(run) == []


def test_a_thread_pauses_ten_times_at_most_before_unlocked_uses(tmp_path: Path) -> None:
    path = tmp_path / "bounded_buffer.py"
    path.write_text(textwrap.dedent("""
        import threading

        class BoundedBuffer:
            def __init__(self):
                self.items = []

        def run(*args):
            buffer = BoundedBuffer()

            def fill():
                for k in range(100):
                    buffer.items.append(k)

            threads = [threading.Thread(target=fill) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return len(buffer.items)
    """))
    run = sandbox_run(path, [], ["unlocked_uses"], watch=True)
    assert run.ending() is None and run.value == 200
    paused = unlocked_pauses(run)
    per_thread = Counter(e["tid"] for e in paused)
    assert sorted(per_thread.values()) == [1, 10, 10], "10 for each filler, 1 for the caller's len()"
    assert {e["outcome"] for e in paused} == {"quiet"}


def test_a_consumer_left_without_a_sentinel_is_named() -> None:
    source = CORPUS / "buggy" / "one_sentinel.py"
    lines = source.read_text().splitlines()
    # the consumers' wait is in get(), after put()'s; the join that hangs is the consumers', after the producers'
    wait = [number for number, text in enumerate(lines, 1) if text.strip() == "self.cond.wait()"][-1]
    join = [number for number, text in enumerate(lines, 1) if text.strip() == "t.join()"][-1]
    run = sandbox_run(source, RUN, ["locks"], watch=True)
    ending = run.ending()
    assert ending is not None and "deadlocked: after" in ending.observed, ending
    diagnosis = describe_hang(run, source)
    assert (f"Likely cause (thread that does not stop): the main process (pid {run.main_pid}) waits in join() at "
            f"bounded_buffer.py, line {join} (`t.join()`) for its threads, and 1 of them waits in your code for "
            f"something no running thread will do: at bounded_buffer.py, line {wait} (`self.cond.wait()`).") in diagnosis
    assert "one sentinel for each consumer" in diagnosis

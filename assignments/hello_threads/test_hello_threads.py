"""Checks for hello_threads: greetings from concurrent, joined threads of the caller's process."""

from __future__ import annotations

import pytest

from grader.checks import (
    GREETING,
    Submission,
    expect,
    expect_greeting,
    expect_hello_calls,
    expect_no_import_side_effects,
    expect_random_delays,
    expect_sleeps_for_delay,
    fail,
    line_problems,
)
from grader.evidence import ChildThread, Run, max_overlap

WAITED_RUN = (4, 0.3)  # main(count, delay) of the run the output check and the thread check share
SEED = 137  # after random.seed(137) ten random.randint(1, 3) draws give 1 and 2, never 3 (a shorter run)


def _no_processes(run: Run, label: str) -> None:
    children = run.child_processes()
    if children:
        fail(
            f"{label} started {len(children)} process(es) with multiprocessing",
            "threads only: every greeting from a threading.Thread of the caller's own process",
            "use threading.Thread(target=hello, args=(i, d)) instead of multiprocessing.Process",
        )


def _threads(run: Run, count: int, label: str) -> list[ChildThread]:
    _no_processes(run, label)
    threads = run.child_threads(pid=run.main_pid)
    if len(threads) < count:
        fail(
            f"{label} started {len(threads)} thread(s)",
            f"{count} threads, one per greeting",
            "create one threading.Thread per greeting inside the loop and call start() on each",
        )
    return threads


def _waited_run(submission: Submission, *, allow_error: bool = False) -> Run:
    """main(4, 0.3), then a wait for threads it left running, with each thread's lifetime recorded.

    One run for the output check, the check of who printed each greeting and the import check: the
    wait lets a program that does not join print every greeting.
    """
    count, delay = WAITED_RUN
    label = f"main(count={count}, delay={delay})"
    return submission.shared_drive(
        "main_then_wait", count, delay, probes=["thread_lifetimes"], timeout=10, label=label, allow_error=allow_error
    )


def _main_run(submission: Submission, count: int) -> Run:
    """main(count, 0.5), called with positional arguments (the signature's order), shared by two checks."""
    return submission.shared_call("main", count, 0.5, timeout=8)


def _steps(run: Run, threads: list[ChildThread]) -> str:
    steps = sorted(
        [(t.started, f"start {t.name}") for t in threads] + [(t.joined, f"join {t.name}") for t in threads if t.joined]
    )
    return ", ".join(step for _, step in steps[:8]) + (", ..." if len(steps) > 8 else "")


@pytest.mark.points(1)
def test_hello_prints_its_greeting(submission: Submission) -> None:
    """hello(n, delay) prints exactly "[n] Hello!"."""
    expect_greeting(submission)


@pytest.mark.points(1)
def test_hello_sleeps_for_delay(submission: Submission) -> None:
    """hello(n, delay) sleeps about `delay` seconds (not a fixed time), then prints."""
    long = expect_sleeps_for_delay(submission)
    called = long.phase_time("call")
    printed = [line.t for line in long.lines() if line.pid == long.main_pid]
    expect(
        called is not None and printed and printed[0] - called >= 1.15,
        observed=f"hello(2, 1.2) printed after {printed[0] - called:.2f} s"
        if called is not None and printed
        else "hello(2, 1.2) printed nothing",
        expected="the greeting printed after the 1.2 s sleep",
        hint="sleep first, then print",
    )


@pytest.mark.points(2)
def test_output_lines(submission: Submission) -> None:
    """main prints one "[i] Hello!" per thread and one "Done!", nothing else.

    That "Done!" comes last is the join check's: joined before "Done!" is the
    evidence, where the order of the lines of a program that does not join
    changes from run to run.
    """
    count = WAITED_RUN[0]
    run = _waited_run(submission)
    lines = run.stdout_lines()
    expected = [f"[{i}] Hello!" for i in range(count)] + ["Done!"]
    problems = line_problems(lines, expected)
    expect(
        not problems,
        observed=f"{run.label} printed {len(lines)} line(s): " + "; ".join(problems[:5]),
        expected=f"'[0] Hello!' to '[{count - 1}] Hello!' once each, in any order, then 'Done!'",
        hint="print only in hello() and print 'Done!' once in main(), after joining",
    )


@pytest.mark.points(1)
def test_each_thread_runs_hello_with_its_number_and_delay(submission: Submission) -> None:
    """Thread i runs hello(i, delay) with the delay main() was given, 0 included."""
    mains = [(4, 0.2), (3, 0)]
    label = " and ".join(f"main({count}, {delay})" for count, delay in mains)
    run = submission.drive("mains_then_wait", mains, trace=["hello"], timeout=10, label=label)
    expect_hello_calls([c for c in run.calls("hello") if c.pid == run.main_pid], mains, worker="thread")


@pytest.mark.points(2)
def test_each_hello_on_its_own_thread(submission: Submission) -> None:
    """Each greeting is printed by its own thread of the caller's process, none by the caller's thread."""
    count = WAITED_RUN[0]
    run = _waited_run(submission)
    label = run.label
    greetings = [line for line in run.lines() if GREETING.match(line.text)]
    _no_processes(run, label)
    expect(
        len(greetings) == count,
        observed=f"{label} printed {len(greetings)} greeting line(s)",
        expected=f"{count} greetings, one per thread",
        hint="start one thread per greeting, each running hello(i, d)",
    )
    owners = set()
    for line in greetings:
        if line.pid != run.main_pid:
            fail(
                f"{line.text!r} was printed by another process (pid {line.pid})",
                "every greeting printed by a thread of the process that called main()",
                "use threading.Thread, not multiprocessing or subprocess",
            )
        if line.tid == run.caller_tid:
            fail(
                f"{line.text!r} was printed by the thread that called main() itself ({line.thread})",
                "each greeting printed by a thread that main() started",
                "pass the function and its arguments separately: Thread(target=hello, args=(i, d)); "
                "Thread(target=hello(i, d)) calls hello right away in main, and printing in main after "
                "join() does not count either",
            )
        owner = run.thread_run_at(line.pid, line.tid, line.t)
        owners.add((owner.ident, owner.begin) if owner else (line.tid, None))
    expect(
        len(owners) == count,
        observed=f"the {count} greetings were printed by only {len(owners)} thread(s)",
        expected=f"{count} different threads, one per greeting",
        hint="create a new Thread for each i, each with target=hello and args=(i, d)",
    )


@pytest.mark.points(2)
def test_threads_run_concurrently(submission: Submission) -> None:
    """All threads are started before any is joined, so they run at the same time."""
    count = 4
    run = _main_run(submission, count)
    threads = _threads(run, count, run.label)
    end = run.phase_time("return") or float("inf")
    peak = max_overlap((t.started, t.joined if t.joined is not None else end) for t in threads)
    expect(
        peak >= count,
        observed=f"at most {peak} of the {len(threads)} threads were running at the same time; "
        f"main did: {_steps(run, threads)}",
        expected=f"all {count} threads started before the first join(), so they all run at once",
        hint="start every thread in one loop, then join them all in a second loop",
    )


@pytest.mark.points(2)
def test_all_joined_before_done(submission: Submission) -> None:
    """Every thread is joined before "Done!" is printed (so it is last); none is left running when main returns."""
    count = 4
    run = _main_run(submission, count)
    threads = _threads(run, count, run.label)
    done = [line for line in run.lines() if line.text == "Done!" and line.pid == run.main_pid]
    done_at = done[0].t if done else None
    for thread in threads:
        if thread.joined is None:
            how = " (a daemon thread)" if thread.daemon else ""
            fail(
                f"thread {thread.name}{how} was never joined by main()",
                "main() calls join() on every thread it started, and each join returns",
                "keep the Thread objects in a list and call t.join() on each before printing 'Done!'",
            )
        if done_at is not None and thread.joined > done_at:
            fail(
                f"'Done!' was printed before thread {thread.name} was joined; main did: {_steps(run, threads)}",
                "'Done!' printed only after every join() returned",
                "move print('Done!') after the loop that joins the threads",
            )
    alive = run.threads_alive_at_return()
    expect(
        not alive,
        observed=f"{len(alive)} thread(s) still running when main() returned: "
        + ", ".join(str(t.get("name")) for t in alive[:4]),
        expected="no thread left running",
        hint="join every thread you start",
    )


@pytest.mark.points(1)
def test_random_delay_by_default(submission: Submission) -> None:
    """main() with its defaults greets 10 times, each thread with its own random.randint(1, 3) delay."""
    run = submission.drive("main_with_defaults", SEED, trace=["hello"], timeout=10, label="main()")
    delays = expect_random_delays([c for c in run.calls("hello") if c.pid == run.main_pid], worker="thread")
    expect(
        len(set(delays)) > 1,
        observed=f"all 10 threads got the same delay {delays[0]!r} although Python's random generator "
        "was seeded so that ten random.randint(1, 3) draws differ",
        expected="a new random.randint(1, 3) for each thread",
        hint="draw the random delay inside the loop, once per thread, not once before it (nor a fixed number)",
    )


@pytest.mark.points(1)
def test_no_side_effects_at_import(submission: Submission) -> None:
    """Importing hello_threads.py prints nothing and starts no thread or process."""
    expect_no_import_side_effects(
        submission,
        expected="importing the module only defines functions",
        hint="put the call to main() under `if __name__ == \"__main__\":`",
        within=lambda: _waited_run(submission, allow_error=True),
    )

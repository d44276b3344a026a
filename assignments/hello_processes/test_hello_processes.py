"""Checks for hello_processes: greetings from concurrent, joined child processes under spawn."""

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
from grader.evidence import Run, max_overlap

# After random.seed(s), ten random.randint(1, 3) draws give both 1 and 2 (and never 3: a shorter run).
SEEDS = (137, 150)
GREETING_RUN = (4, 0.5)  # main(count, delay) of the run four checks share
SPAWN_RUN = (2, 0)  # main(count, delay) of the run the spawn check and the delay check share
SPAWN_HINT = (
    "under the spawn start method each child re-imports your file and receives its target by pickling: "
    "the target must be a module-level function (no lambda, no nested function), and the call to main() "
    "must sit under `if __name__ == \"__main__\":`"
)


def _children(run: Run, count: int) -> list:
    children = run.child_processes(parent=run.main_pid)
    threads = run.child_threads(pid=run.main_pid)
    if not children:
        how = f" (it started {len(threads)} thread(s) instead)" if threads else ""
        fail(
            f"main(count={count}) started no multiprocessing.Process{how}",
            f"{count} child processes, one per greeting",
            "create each child with multiprocessing.Process(target=hello, args=(i, d)) and call start()",
        )
    return children


def _greeting_run(submission: Submission, *, allow_error: bool = False) -> Run:
    """main(4, 0.5), then a wait for the children it left running: the checks of what the children did, the import's."""
    count, delay = GREETING_RUN
    label = f"main(count={count}, delay={delay})"
    return submission.shared_drive(
        "main_then_wait", count, delay, trace=["hello"], timeout=10, label=label, allow_error=allow_error
    )


def _spawn_run(submission: Submission) -> Run:
    """main(2, 0) under spawn, then a wait for its children; the spawn check judges its errors itself."""
    count, delay = SPAWN_RUN
    return submission.shared_drive(
        "main_then_wait", count, delay, trace=["hello"], allow_error=True, timeout=8,
        label=f"main(count={count}, delay={delay})",
    )


@pytest.mark.points(1)
def test_hello_prints_its_greeting(submission: Submission) -> None:
    """hello(n, delay) prints exactly "[n] Hello!"."""
    expect_greeting(submission)


@pytest.mark.points(1)
def test_hello_sleeps_for_delay(submission: Submission) -> None:
    """hello(n, delay) sleeps about `delay` seconds, not a fixed time."""
    expect_sleeps_for_delay(submission)


@pytest.mark.points(2)
def test_output_lines(submission: Submission) -> None:
    """main prints one "[i] Hello!" per process and "Done!" as the last line, nothing else.

    Judged on the run the checks of what the children did share: its wait for children left
    running lets a program that does not join print every greeting, after "Done!".
    """
    count, delay = GREETING_RUN
    run = _greeting_run(submission)
    lines = run.stdout_lines()
    expected = [f"[{i}] Hello!" for i in range(count)] + ["Done!"]
    problems = line_problems(lines, expected)
    expect(
        not problems,
        observed=f"main(count={count}, delay={delay}) printed {len(lines)} line(s): " + "; ".join(problems[:5]),
        expected=f"'[0] Hello!' to '[{count - 1}] Hello!' once each, in any order, then 'Done!'",
        hint="print only in hello() and print 'Done!' once in main(), after joining",
    )
    expect(
        lines[-1] == "Done!",
        observed=f"the last line was {lines[-1]!r}; the order was {lines!r}",
        expected="'Done!' as the very last line, after every greeting",
        hint="join every process before printing 'Done!'",
    )


@pytest.mark.points(2)
def test_each_hello_in_own_child_process(submission: Submission) -> None:
    """Each greeting is printed by its own child process, none by the parent."""
    count = GREETING_RUN[0]
    run = _greeting_run(submission)
    greetings = [line for line in run.lines() if GREETING.match(line.text)]
    expect(
        len(greetings) == count,
        observed=f"{len(greetings)} greeting line(s) were printed",
        expected=f"{count} greetings",
        hint="start one process per greeting",
    )
    for line in greetings:
        if line.pid == run.main_pid:
            in_thread = line.thread != "MainThread"
            fail(
                f"{line.text!r} was printed by the parent process itself"
                + (f", from a thread ({line.thread})" if in_thread else ""),
                "each greeting printed by a child process started with multiprocessing.Process",
                "threads share the parent's process; use multiprocessing.Process(target=hello, args=(i, d))"
                if in_thread
                else "do not call hello() directly in main(); pass it as the target of a Process",
            )
    pids = [line.pid for line in greetings]
    expect(
        len(set(pids)) == count,
        observed=f"{count} greetings came from only {len(set(pids))} process(es)",
        expected=f"{count} different child processes, one per greeting",
        hint="create a new Process for each i",
    )
    children = {child.pid for child in _children(run, count)}
    strangers = sorted(set(pids) - children)
    expect(
        not strangers,
        observed=f"greetings came from process(es) {strangers} that main() did not start with multiprocessing",
        expected="every greeting from a child started by main()",
        hint="start the children in main() with multiprocessing.Process",
    )


@pytest.mark.points(2)
def test_children_run_concurrently(submission: Submission) -> None:
    """All children are started before any is joined, so they run at the same time."""
    count = GREETING_RUN[0]
    run = _greeting_run(submission)
    children = _children(run, count)
    end = run.phase_time("return") or float("inf")
    peak = max_overlap((c.started, c.joined if c.joined is not None else end) for c in children)
    order = sorted(
        [(c.started, f"start {c.name}") for c in children] + [(c.joined, f"join {c.name}") for c in children if c.joined],
    )
    expect(
        peak >= count,
        observed=f"at most {peak} of the {len(children)} processes were running at the same time; "
        f"main did: {', '.join(step for _, step in order[:8])}",
        expected=f"all {count} processes started before the first join(), so they all run at once",
        hint="start every process in one loop, then join them all in a second loop",
    )


@pytest.mark.points(1)
def test_each_child_runs_hello_with_its_number_and_delay(submission: Submission) -> None:
    """Process i runs hello(i, delay) with the delay main() was given, 0 included."""
    greeting = _greeting_run(submission)
    spawn = _spawn_run(submission)
    submission.require_returned(spawn)
    expect_hello_calls([*greeting.calls("hello"), *spawn.calls("hello")], [GREETING_RUN, SPAWN_RUN], worker="process")


@pytest.mark.points(1)
@pytest.mark.timeout(40)
def test_random_delay_by_default(submission: Submission) -> None:
    """main() with its defaults greets 10 times, each process with its own random.randint(1, 3) delay.

    The parent's random generator is seeded, so delays drawn in main() differ on
    the first run. A child that draws its own delay is not seeded: ten such draws
    are all equal once in 3**9 runs, so the check fails only when a second run,
    with another seed, again gives every child one delay (once in 3**18 runs for
    such a solution; every run for a fixed delay or a single draw for all).
    """
    delays: list[object] = []
    for seed in SEEDS:
        run = submission.drive("main_with_defaults", seed, trace=["hello"], timeout=15, label="main()")
        delays = expect_random_delays(run.calls("hello"), worker="process")
        if len(set(delays)) > 1:
            return
    fail(
        f"all 10 processes got the same delay {delays[0]!r}, in two runs, although Python's random generator "
        "was seeded so that ten random.randint(1, 3) draws differ",
        "a new random.randint(1, 3) for each process",
        "draw the random delay inside the loop, once per process, not once before it (nor a fixed number)",
    )


@pytest.mark.points(2)
def test_all_joined_before_done(submission: Submission) -> None:
    """Every child is joined and exited with code 0 before "Done!" is printed."""
    count = 4
    run = submission.call("main", count, 0.2, timeout=8)
    children = _children(run, count)
    done = [line for line in run.lines() if line.text == "Done!" and line.pid == run.main_pid]
    done_at = done[0].t if done else None
    for child in children:
        if child.joined is None:
            fail(
                f"process {child.name} (pid {child.pid}) was never joined by main()",
                "main() calls join() on every process it started",
                "keep the Process objects in a list and call p.join() on each before printing 'Done!'",
            )
        if child.exitcode != 0:
            detail = run.stderr.strip().splitlines()[-3:]
            fail(
                f"process {child.name} (pid {child.pid}) exited with code {child.exitcode}"
                + (f"; its last error output: {' | '.join(detail)}" if detail else ""),
                "every child exits with code 0",
                "an exception in the child ends it with code 1; the error output shows where",
            )
        if done_at is not None and child.joined > done_at:
            fail(
                f"'Done!' was printed before process {child.name} was joined",
                "'Done!' printed only after every join() returned",
                "move print('Done!') after the loop that joins the processes",
            )
    alive = run.processes_alive_at_return()
    expect(
        not alive,
        observed=f"{len(alive)} process(es) still running when main() returned",
        expected="no child process left running",
        hint="join every process you start",
    )


@pytest.mark.points(1)
def test_no_side_effects_at_import(submission: Submission) -> None:
    """Importing hello_processes.py prints nothing and starts no process or thread."""
    expect_no_import_side_effects(
        submission,
        expected="importing the module only defines functions",
        hint="put the call to main() under `if __name__ == \"__main__\":` - under spawn every child "
        "re-imports your file",
        within=lambda: _greeting_run(submission, allow_error=True),
    )


@pytest.mark.points(1)
def test_works_under_spawn(submission: Submission) -> None:
    """main runs to completion under the spawn start method, every child exiting cleanly."""
    run = _spawn_run(submission)
    if run.error is not None or run.import_error is not None or run.missing is not None:
        err = run.error or run.import_error
        spawnish = err is not None and (
            "pickle" in (err.type + err.message).lower() or "local object" in err.message
        )
        if spawnish or err is None:
            fail(f"{run.describe_failure()}", "main() runs under spawn", SPAWN_HINT)
        submission.require_returned(run)
    submission.require_returned(run)
    children = _children(run, 2)
    bad = [c for c in children if c.exitcode not in (0, None)]
    if bad:
        bootstrapping = "bootstrapping phase" in run.stderr
        fail(
            f"{len(bad)} child process(es) exited with code {bad[0].exitcode}"
            + (": they tried to start processes while importing your file" if bootstrapping else ""),
            "every child exits with code 0 under spawn",
            SPAWN_HINT,
        )

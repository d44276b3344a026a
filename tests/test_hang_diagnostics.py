"""Hang and deadlock diagnostics: stacks of every process, read before the kill, turned into feedback.

The corpus in ``tests/corpus/deadlocks/<module>/`` holds submissions that hang
in the classic ways. The first line of each names the diagnosis the grader must
give (``# expect-diagnosis: join before drain``) or, for a function that returns
while processes still run, ``# expect-leftover: ...``; every line marked
``# blocks-here`` is where some process of it blocks, and the feedback must name
that file and line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from conftest import ready_process

from grader.checks import CheckTimedOut, Submission
from grader.diagnosis.report import split_sections
from grader.diagnosis.waits import SourceReader, classify
from grader.exporters import render_text, to_gradescope
from grader.grading.grade import grade_submission
from grader.model.assignment import Assignment, find_assignment
from grader.model.results import Status
from grader.sandbox import stacks
from grader.sandbox.stacks import Frame, ProcessStack, ThreadStack, parse_faulthandler, parse_stack

ROOT = Path(__file__).parent
CORPUS = ROOT / "corpus" / "deadlocks"
ASSIGNMENTS = ROOT / "assignments"
HEADER = re.compile(r"^# expect-(?P<kind>diagnosis|leftover): (?P<title>.+)$")


def _cases() -> list[Path]:
    return sorted(CORPUS.glob("*/*.py"))


def _expectation(path: Path) -> tuple[str, str, list[tuple[int, str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    match = HEADER.match(lines[0])
    assert match, f"{path} must start with '# expect-diagnosis: ...' or '# expect-leftover: ...'"
    marked = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.rstrip().endswith("# blocks-here")]
    assert marked, f"{path} marks no line with '# blocks-here'"
    return match.group("kind"), match.group("title"), marked


def _assignment(module_dir: str) -> Assignment:
    return Assignment.load(ASSIGNMENTS / f"hang_{module_dir}")


@pytest.mark.parametrize("path", _cases(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_deadlock_corpus_feedback_names_file_line_and_cause(path: Path) -> None:
    kind, title, marked = _expectation(path)
    module_file = f"{path.parent.name}.py"
    result = grade_submission(_assignment(path.parent.name), path)
    assert result.error is None, result.error_detail
    [check] = result.checks
    assert check.status is (Status.TIMED_OUT if kind == "diagnosis" else Status.FAILED), check.message
    diagnostics = check.diagnostics
    # a deadlock is proven and ended before its time limit; a loop that never ends runs until it
    proven = "deadlocked: after" in check.message
    assert proven == (kind == "diagnosis" and title != "loop that never ends"), check.message
    if kind == "diagnosis":
        assert f"Likely cause ({title})" in diagnostics, diagnostics
    else:
        assert "Likely cause (processes left running)" in diagnostics, diagnostics
        assert title in diagnostics
    for number, code in marked:
        assert f"{module_file}, line {number}" in diagnostics, f"line {number} ({code}) not named:\n{diagnostics}"
        assert code in diagnostics
    head, sections = split_sections(diagnostics)
    assert "Likely cause" in head
    assert sections and all(body for _, body in sections)
    if kind == "diagnosis":
        assert any(t.startswith("main process (pid ") for t, _ in sections), [t for t, _ in sections]
    # every output carries it: the terminal summary and Gradescope's test output
    assert textwrap.indent(diagnostics, "       ") in render_text(result)
    gradescope = to_gradescope(result)["tests"][0]["output"]
    assert diagnostics in gradescope


def test_faulthandler_fallback_when_py_spy_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stacks, "find_py_spy", lambda: None)
    path = CORPUS / "duplex_pipe" / "worker_never_exits.py"
    _, title, marked = _expectation(path)
    submission = Submission(_assignment("duplex_pipe"), path, run_timeout=3)
    with pytest.raises(CheckTimedOut) as caught:
        submission.call("ping_pong", ["a", "b"])
    diagnostics = caught.value.diagnostics
    assert "stacks read with faulthandler" in diagnostics
    assert f"Likely cause ({title})" in diagnostics
    for number, _ in marked:
        assert f"duplex_pipe.py, line {number}" in diagnostics
    read = list(submission.runs[0].stacks.values())
    assert read and all("py-spy is not installed" in stack.notes for stack in read)


def test_stack_collection_is_bounded_with_many_processes() -> None:
    if stacks.find_py_spy() is None:
        pytest.skip("py-spy is not installed")
    path = CORPUS / "locked_counter" / "lock_never_released.py"
    # a generous limit: the run ends once all 8 workers are proven blocked, however long they take to start
    submission = Submission(_assignment("locked_counter"), path, run_timeout=60)
    started = time.monotonic()
    with pytest.raises(CheckTimedOut) as caught:
        submission.call("run", workers=8, times=50)
    took = time.monotonic() - started
    run = submission.runs[0]
    assert run.raw.deadlock is not None, caught.value.message
    read = list(run.stacks.values())
    assert len(read) == 9, [stack.error for stack in read]
    assert all(stack.via == "py-spy" for stack in read), [stack.notes for stack in read]
    # reading 9 processes within the collection's budget, then killing and reaping them and reading back quickly
    assert all(stack.window is not None and stack.window < stacks.TOTAL_BUDGET + 0.5 for stack in read)
    assert took < run.raw.duration + 3.0, (took, run.raw.duration)
    assert "Likely cause (lock never released): 8 processes wait to acquire a lock" in caught.value.diagnostics


# -- parsing and classification on recorded stacks ------------------------------------------------

WORK = "/tmp/grader-sandbox-x/work"
SUPPORT = "/tmp/grader-sandbox-x/support"
LIB = "/usr/lib/python3.11"


def _doc(threads: list[dict[str, object]], **extra: object) -> str:
    doc = {"pid": 10, "via": "py-spy", "error": None, "notes": [], "work_dir": WORK, "support_dir": SUPPORT,
           "window": 0.3, "cpu": 0.0, "threads": threads}
    doc.update(extra)
    return json.dumps(doc)


def _frame(func: str, file: str, line: int) -> dict[str, object]:
    return {"func": func, "file": file, "line": line}


def test_a_spinning_thread_in_student_code_is_busy() -> None:
    stack = parse_stack(10, _doc([{"id": 10, "name": "MainThread", "active": True, "cpu": 0.28, "wchan": None,
                                   "frames": [_frame("consumer", f"{WORK}/fifo_queue.py", 16)]}], cpu=0.28))
    [thread] = stack.threads
    assert classify(thread, stack).kind == "busy"


def test_an_idle_thread_on_a_with_line_waits_for_a_lock(tmp_path: Path) -> None:
    source = tmp_path / "locked_counter.py"
    source.write_text("def increment(counter, lock, times):\n    with lock:\n        counter.value += 1\n")
    stack = parse_stack(10, _doc([{"id": 10, "name": "MainThread", "active": False, "cpu": 0.0,
                                   "wchan": "futex_do_wait",
                                   "frames": [_frame("increment", f"{WORK}/locked_counter.py", 2),
                                              _frame("run", f"{LIB}/multiprocessing/process.py", 108)]}]))
    reader = SourceReader(source, "locked_counter.py", WORK)
    wait = classify(stack.threads[0], stack, reader)
    assert wait.kind == "acquire"
    assert reader.line(stack.threads[0].frames[0]) == "with lock:"


def test_grader_frames_are_hidden_and_the_call_made_is_named() -> None:
    stack = parse_stack(10, _doc([{"id": 10, "name": "MainThread", "active": False, "cpu": 0.0, "wchan": "do_wait",
                                   "frames": [_frame("Popen.wait", f"{LIB}/multiprocessing/popen_fork.py", 43),
                                              _frame("BaseProcess.join", f"{LIB}/multiprocessing/process.py", 149),
                                              _frame("install_processes.<locals>.join",
                                                     f"{SUPPORT}/grader_inside/probes.py", 205),
                                              _frame("run_pipeline", f"{WORK}/fifo_queue.py", 31),
                                              _frame("main", f"{SUPPORT}/grader_inside/runner.py", 199)]}]))
    thread = stack.threads[0]
    assert [f.owner for f in thread.frames] == ["library", "library", "grader", "student", "grader"]
    wait = classify(thread, stack)
    assert wait.kind == "join"
    assert wait.call is not None and wait.call.func == "BaseProcess.join"


def test_parse_faulthandler_dump() -> None:
    text = (
        "Thread 0x00007f1 (most recent call first):\n"
        f'  File "{LIB}/multiprocessing/connection.py", line 395 in _recv\n'
        f'  File "{WORK}/duplex_pipe.py", line 10 in echo_worker\n'
        "\n"
        "Current thread 0x00007f2 (most recent call first):\n"
        f'  File "{SUPPORT}/grader_boot.py", line 37 in <module>\n'
    )
    threads = parse_faulthandler(text, WORK, SUPPORT)
    assert [t.current for t in threads] == [False, True]
    assert threads[0].student_frame() == Frame(f"{WORK}/duplex_pipe.py", 10, "echo_worker", "student")
    assert threads[1].frames[0].owner == "grader"


def test_a_stack_that_could_not_be_read_says_why() -> None:
    stack = parse_stack(10, _doc([], via=None, error="py-spy: Permission denied; no faulthandler dump arrived"))
    assert stack.via is None and stack.threads == () and "Permission denied" in (stack.error or "")


def test_source_lines_of_folder_and_renamed_single_file_submissions(tmp_path: Path) -> None:
    folder = tmp_path / "sub"
    (folder / "helpers").mkdir(parents=True)
    (folder / "fifo_queue.py").write_text("a = 1\nb = 2\n")
    (folder / "helpers" / "work.py").write_text("x = 1\n")
    reader = SourceReader(folder / "fifo_queue.py", "fifo_queue.py", WORK)
    assert reader.line(Frame(f"{WORK}/fifo_queue.py", 2, "f", "student")) == "b = 2"
    assert reader.line(Frame(f"{WORK}/helpers/work.py", 1, "g", "student")) == "x = 1"
    assert reader.rel(Frame(f"{WORK}/helpers/work.py", 1, "g", "student")) == "helpers/work.py"
    single = tmp_path / "student_42.py"
    single.write_text("only = 1\n")
    reader = SourceReader(single, "fifo_queue.py", WORK)
    assert reader.line(Frame(f"{WORK}/fifo_queue.py", 1, "f", "student")) == "only = 1"
    assert reader.line(Frame(f"{WORK}/other.py", 1, "f", "student")) == ""


def test_source_lines_never_come_from_outside_the_submission(tmp_path: Path) -> None:
    """A frame's file name is the student's to choose: only the submission's own regular files are read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET\n")
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "fifo_queue.py").write_text("a = 1\n")
    (folder / "link.py").symlink_to(secret)
    (folder / "linked").symlink_to(tmp_path, target_is_directory=True)
    (folder / "pipe.py").touch()
    reader = SourceReader(folder / "fifo_queue.py", "fifo_queue.py", WORK)
    for name in (f"/{secret}", f"../{secret.name}", "link.py", f"linked/{secret.name}", f"./{secret.name}", "", "."):
        assert reader.line(Frame(f"{WORK}/{name}", 1, "f", "student")) == "", name
    assert reader.line(Frame(f"{WORK}//{secret}", 1, "f", "student")) == ""
    assert reader.line(Frame(str(secret), 1, "f", "student")) == ""
    assert reader.line(Frame(f"{WORK}/../../etc/passwd", 1, "f", "student")) == ""


def test_split_sections_reads_back_the_rendered_text() -> None:
    text = (
        "Likely cause (x): words.\n\nWhere each process was:\n\n"
        "== main process (pid 1): waiting in join() ==\n  line one\n    indented\n\n"
        "== child Process-1 (pid 2): blocked ==\n  other"
    )
    head, sections = split_sections(text)
    assert head == "Likely cause (x): words.\n\nWhere each process was:"
    assert sections == [
        ("main process (pid 1): waiting in join()", "line one\n  indented"),
        ("child Process-1 (pid 2): blocked", "other"),
    ]


def test_thread_stack_without_frames_is_unknown() -> None:
    stack = ProcessStack(1, (ThreadStack("1", True, ()),))
    assert classify(stack.threads[0], stack).kind == "unknown"


def test_collect_falls_back_to_faulthandler_and_says_what_could_not_be_read(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "stacks").mkdir(parents=True)
    with_handler = (
        "import faulthandler, os, signal, time\n"
        f"f = open(os.path.join({str(out / 'stacks')!r}, '%d.txt' % os.getpid()), 'w')\n"
        "faulthandler.register(signal.SIGUSR1, file=f, all_threads=True)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    without_handler = "import time\nprint('ready', flush=True)\ntime.sleep(30)\n"
    with ready_process(with_handler) as first, ready_process(without_handler) as second:
        procs = [first, second]
        # an executable that fails like py-spy without ptrace rights
        found = stacks.collect([psutil.Process(p.pid) for p in procs], out, py_spy="/bin/false")
    read, unread = (found[p.pid] for p in procs)
    assert read.via == "faulthandler" and read.error is None
    assert read.notes == ("py-spy: exit status 1",)
    assert [f.line for f in read.threads[0].frames] == [5]
    assert read.threads[0].frames[0].owner == "library"  # `python -c` code, not in the sandbox's work folder
    assert unread.via is None and unread.threads == ()
    assert "py-spy: exit status 1" in (unread.error or "") and "no faulthandler dump arrived" in (unread.error or "")


@pytest.mark.timeout(30)
def test_collect_waits_for_no_process_that_has_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Leftovers often end while their stacks are read: the watch of their states and the wait for their dumps
    stop once every process has ended, whatever time those were given (a minute each here)."""
    monkeypatch.setattr(stacks, "CPU_WINDOW", 60.0)
    monkeypatch.setattr(stacks, "FAULTHANDLER_WAIT", 60.0)
    out = tmp_path / "out"
    (out / "stacks").mkdir(parents=True)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    while psutil.Process(ended.pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.01)
    try:  # a process that has ended but is not reaped yet: nothing to watch, no dump to wait for
        found = stacks.collect([psutil.Process(ended.pid)], out, py_spy="/bin/false", budget=120)
    finally:
        ended.wait()
    assert found[ended.pid].via is None and "no faulthandler dump arrived" in (found[ended.pid].error or "")

    monkeypatch.setattr(stacks, "CPU_WINDOW", 0.3)
    dumps_then_ends = (  # the dump is written by faulthandler itself, then the chained handler ends the process
        "import faulthandler, os, signal, time\n"
        f"f = open(os.path.join({str(out / 'stacks')!r}, '%d.txt' % os.getpid()), 'w')\n"
        "signal.signal(signal.SIGUSR1, lambda *_: os._exit(0))\n"
        "faulthandler.register(signal.SIGUSR1, file=f, all_threads=True, chain=True)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    with ready_process(dumps_then_ends) as proc:
        found = stacks.collect([psutil.Process(proc.pid)], out, py_spy="/bin/false", budget=120)
    read = found[proc.pid]
    assert read.via == "faulthandler" and read.error is None
    assert [f.line for f in read.threads[0].frames] == [6]


@pytest.mark.parametrize(
    ("assignment", "kind"), [("hello_threads", "thread"), ("hello_processes", "child process")]
)
def test_join_inside_the_start_loop_is_named_for_what_it_is(assignment: str, kind: str) -> None:
    """Ten greetings of 1 s each, joined one by one, cannot finish in 6 s: the main thread waits in join()."""
    path = ROOT / "corpus" / assignment / "buggy" / ("join_in_loop.py" if kind == "thread" else "start_join_loop.py")
    submission = Submission(find_assignment(assignment), path, run_timeout=6)
    with pytest.raises(CheckTimedOut) as caught:
        submission.call("main", 10, 1)
    diagnostics = caught.value.diagnostics
    head, _ = split_sections(diagnostics)
    assert "Likely cause (join inside the start loop)" in head, diagnostics
    assert "sleeping in a loop" not in head and "exit condition" not in head, diagnostics
    assert f"It joined each {kind} before it started the next one" in head
    line = next(n for n, text in enumerate(path.read_text().splitlines(), start=1) if text.strip().endswith(".join()"))
    assert f"{path.parent.parent.name}.py, line {line}" in head, diagnostics
    assert not submission.runs[0].raw.deadlock  # the greeting sleeps: not a deadlock, it ran into its time limit


def test_busy_or_blocked_is_the_kernels_word_not_the_cpu_share() -> None:
    """A spinning thread the load starves of CPU is still running at every look; a blocked one never is."""
    poll = [_frame("_poll", f"{LIB}/multiprocessing/connection.py", 424),
            _frame("Connection.poll", f"{LIB}/multiprocessing/connection.py", 257),
            _frame("Queue.empty", f"{LIB}/multiprocessing/queues.py", 129),
            _frame("consumer", f"{WORK}/fifo_queue.py", 23)]
    # caught by the stack reader inside empty(), with almost no CPU (a loaded machine), but runnable at every look
    starved = parse_stack(10, _doc([{"id": 10, "name": "MainThread", "active": True, "cpu": 0.0, "wchan": None,
                                     "running": 1.0, "frames": poll}], cpu=0.0))
    assert classify(starved.threads[0], starved).kind == "busy"
    # the same place with CPU to spare but asleep at every look: waiting, not running
    asleep = parse_stack(10, _doc([{"id": 10, "name": "MainThread", "active": True, "cpu": 0.29,
                                    "wchan": "do_sys_poll", "running": 0.0, "frames": poll}], cpu=0.29))
    assert classify(asleep.threads[0], asleep).kind == "blocked"

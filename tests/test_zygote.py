"""``spawn`` children cloned from the sandbox's zygote start as an ``execve``'d child would, and end the same way."""

from __future__ import annotations

import json
import re
import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

from grader import served
from grader.evidence.integrity import kernel_flags
from grader.evidence.run import Run
from grader.inside import wire
from grader.sandbox import Isolation, Sandbox

pytestmark = pytest.mark.skipif(not served.supported(), reason="the zygote needs Linux")

CHILD_STATE = '''
import gc, json, multiprocessing as mp, os, resource, signal, sys, threading

NO_HANDLER = (signal.SIGKILL, signal.SIGSTOP)


def child_state(queue):
    main = sys.modules["__main__"]
    base = os.path.dirname(os.path.dirname(main.__file__))
    def rel(text):
        return str(text).replace(base, "<sandbox>")
    with open("/proc/self/cmdline", "rb") as handle:
        cmdline = handle.read().decode(errors="replace")
    fds = {}
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            fds[fd] = rel(os.readlink(f"/proc/self/fd/{fd}")).split(":")[0]
        except OSError:
            continue
    queue.put(json.dumps({
        "state": {
            "argv": [rel(a) for a in sys.argv],
            "orig_argv": [rel(a) for a in sys.orig_argv] if hasattr(sys, "orig_argv") else None,
            "path": [rel(p) for p in sys.path],
            "flags": list(sys.flags),
            "environ": sorted((k, rel(v)) for k, v in os.environ.items()),
            "main": [rel(main.__file__), main.__name__, main.__spec__ is None],
            "fds": fds,
            "signals": {str(s): str(signal.getsignal(s)) for s in signal.valid_signals() if s not in NO_HANDLER},
            "umask": os.umask(0o077),
            "cwd": rel(os.getcwd()),
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],  # the hard limit has one more for the zygote
            "cpus": sorted(os.sched_getaffinity(0)),
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "threads": threading.active_count(),
            "gc": gc.isenabled(),
            "hash": hash("concurrency"),
            "ppid_is_parent": os.getppid() == mp.parent_process().pid,
            "group": [os.getpgrp() == os.getpgid(os.getppid()), os.getsid(0) == os.getsid(os.getppid())],
            "student_module_fresh": __name__ == "mod" and COUNTER == 0,
        },
        "cmdline": cmdline,
        "helpers": _siblings_marked(),
    }))


def _siblings_marked():
    """Command lines of this process's siblings that read as the zygote's."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                line = handle.read().rstrip(b"\\0").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getppid() and "grader_inside.zygote" in line:
            found.append(line)
    return found


COUNTER = 0


def run(tmp):
    global COUNTER
    COUNTER = 5  # the child imports this module afresh: it sees 0
    os.environ["GRADER_TEST_SET_BY_PARENT"] = "yes"
    os.environ.pop("HOME", None)
    os.chdir(tmp)
    os.umask(0o027)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 200), hard))
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + 3)
    out = os.open(os.path.join(tmp, "child-stdout.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.dup2(out, 1)
    os.close(out)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=child_state, args=(queue,))
    child.start()
    got = json.loads(queue.get(timeout=20))
    child.join(20)
    got["exitcode"] = child.exitcode
    return json.dumps(got)
'''


def _sandbox(tmp_path: Path, source: str, name: str) -> Sandbox:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "mod.py").write_text(textwrap.dedent(source))
    return Sandbox(folder / "mod.py", "mod", start_method="spawn", isolation=Isolation(audit_hook=False))


def _call(func: str, *args: Any) -> dict[str, Any]:
    return {"kind": "call", "func": func, "args": wire.encode(list(args)), "kwargs": wire.encode({})}


def _value(raw: Any) -> Any:
    assert raw.result is not None and raw.result["call"]["ok"], (raw.result, raw.stderr[-3000:])
    return wire.decode(raw.result["call"]["value"])


def _child_state(tmp_path: Path, name: str) -> dict[str, Any]:
    box = _sandbox(tmp_path, CHILD_STATE, name)
    raw = box.run(_call("run", "/tmp"), timeout=60)
    got: dict[str, Any] = json.loads(_value(raw))
    assert raw.leftovers == [], raw.leftovers
    return got


def test_a_cloned_spawn_child_starts_as_an_executed_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same interpreter state in the child whether the zygote cloned it or an ``execve`` started it.

    The parent changed its environment, working folder, umask, a signal's disposition, a resource limit, its CPU
    affinity, its priority and its standard output before starting the child: the child has each as the parent had
    it then.
    """
    monkeypatch.delenv("GRADER_SPAWN_SERVER", raising=False)
    cloned = _child_state(tmp_path, "cloned")
    monkeypatch.setenv("GRADER_SPAWN_SERVER", "off")
    executed = _child_state(tmp_path, "executed")
    assert "--multiprocessing-fork" not in cloned["cmdline"], "the child was not cloned from the zygote"
    assert "--multiprocessing-fork" in executed["cmdline"]
    assert "grader_inside.zygote" not in cloned["cmdline"], "a clone would count as a helper, not the student's"
    assert [line.split("\0")[0] for line in cloned["helpers"]] == ["python3 -m grader_inside.zygote"]
    assert executed["helpers"] == []
    for state in (cloned["state"], executed["state"]):  # the first process holds the zygote's channel too:
        state["fds"] = sorted(re.sub(r"\d+", "N", v) for v in state["fds"].values())  # other numbers, other pids
        state["orig_argv"] = [re.sub(r"=\d+", "=N", arg) for arg in state["orig_argv"]]
    assert cloned["state"] == executed["state"]
    assert cloned["exitcode"] == executed["exitcode"] == 0
    state = cloned["state"]
    assert ["GRADER_TEST_SET_BY_PARENT", "yes"] in state["environ"]
    assert not any(key == "HOME" for key, _ in state["environ"])
    assert (state["cwd"], state["umask"], state["nofile"], len(state["cpus"])) == ("/tmp", 0o027, 200, 1)
    assert state["nice"] >= 3
    assert state["signals"][str(signal.SIGHUP)] == str(signal.SIG_IGN)
    assert "/tmp/child-stdout.txt" in state["fds"]
    assert state["ppid_is_parent"] and state["group"] == [True, True] and state["student_module_fresh"]


ENDINGS = '''
import multiprocessing as mp, os, sys, time


def sleeper():
    time.sleep(60)


def exits(code):
    sys.exit(code)


def raises():
    raise ValueError("boom")


def grandchild(queue):
    queue.put(os.getppid())


def starts_a_child(queue):
    inner = mp.get_context("spawn").Process(target=grandchild, args=(queue,))
    inner.start()
    inner.join(20)
    queue.put((os.getpid(), inner.exitcode))


def signals_its_main_thread(queue):
    import signal, threading

    errors = []

    def poke():
        try:
            signal.pthread_kill(threading.main_thread().ident, 0)
        except OSError as exc:
            errors.append(repr(exc))

    thread = threading.Thread(target=poke)
    thread.start()
    thread.join()
    queue.put(errors)


def run():
    ctx = mp.get_context("spawn")
    codes = {}
    queue = ctx.Queue()
    p = ctx.Process(target=signals_its_main_thread, args=(queue,))
    p.start()
    codes["pthread_kill_errors"] = queue.get(timeout=20)
    p.join(20)
    p = ctx.Process(target=sleeper)
    p.start()
    time.sleep(0.2)
    p.terminate()
    p.join(20)
    codes["terminated"] = p.exitcode
    for name, proc in (("exit3", ctx.Process(target=exits, args=(3,))), ("raised", ctx.Process(target=raises))):
        proc.start()
        proc.join(20)
        codes[name] = proc.exitcode
    queue = ctx.Queue()
    middle = ctx.Process(target=starts_a_child, args=(queue,))
    middle.start()
    first, second = queue.get(timeout=20), queue.get(timeout=20)
    middle.join(20)
    codes["grandchild_parent_is_its_starter"] = first == second[0]
    codes["grandchild"] = second[1]
    codes["middle"] = middle.exitcode
    with ctx.Pool(2) as pool:
        codes["pool"] = pool.map(abs, [-1, -2, -3])
    pid = os.fork()
    if pid == 0:  # a fork of the first process starts its own child: a new interpreter, its own child
        child = ctx.Process(target=exits, args=(5,))
        child.start()
        child.join(20)
        os._exit(child.exitcode)
    codes["forked"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return codes
'''


@pytest.mark.parametrize("setting", ["on", "off"])
def test_cloned_children_end_wait_and_start_children_as_executed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """Exit codes, ``terminate``, a child's own children, a pool, and a fork of the first process starting one; a
    thread of a child signals the child's main thread (the C library knows the clone's own thread id)."""
    monkeypatch.setenv("GRADER_SPAWN_SERVER", setting)
    raw = _sandbox(tmp_path, ENDINGS, setting).run(_call("run"), timeout=60)
    assert _value(raw) == {
        "pthread_kill_errors": [], "terminated": -15, "exit3": 3, "raised": 1,
        "grandchild_parent_is_its_starter": True, "grandchild": 0, "middle": 0, "pool": [1, 2, 3], "forked": 5,
    }
    assert raw.leftovers == []
    assert "ValueError: boom" in raw.stderr


DEADLOCK = '''
import multiprocessing as mp


def waits(queue):
    queue.get()


def run():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=waits, args=(queue,))
    child.start()
    child.join()
'''


def test_a_deadlock_with_a_cloned_child_is_proven_and_the_zygote_is_nobodys_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zygote waits for good too: the deadlock is proven before the time limit; its stack is not read, and the
    kernel witness does not count it among the student's processes the evidence never mentions."""
    monkeypatch.delenv("GRADER_SPAWN_SERVER", raising=False)
    raw = _sandbox(tmp_path, DEADLOCK, "deadlock").run(_call("run"), timeout=30)
    assert raw.deadlock is not None and raw.duration < 15, (raw.deadlock, raw.duration)
    assert len(raw.stacks) == 2, sorted(raw.stacks)  # the first process and its child, not the zygote
    assert raw.kernel is not None
    marked = [task for task in raw.kernel.processes().values() if "grader_inside.zygote" in task.command]
    assert len(marked) == 1 and marked[0].ppid == raw.main_pid
    assert kernel_flags(Run(raw, label="run()", module_file="mod.py")) == []


CROWDED = '''
import multiprocessing as mp, os, resource


def nothing():
    pass


def run():
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    held = [os.open(os.devnull, os.O_RDONLY)]
    while held[-1] < soft - 9:  # the child's pipes come next; moved above them, they would cross the limit
        held.append(os.open(os.devnull, os.O_RDONLY))
    child = mp.get_context("spawn").Process(target=nothing)
    child.start()
    child.join(20)
    return [child.exitcode, len(held) > 200]
'''


@pytest.mark.parametrize("setting", ["on", "off"])
def test_a_parent_near_its_descriptor_limit_still_starts_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """A clone moves the descriptors it is given above every number first; where that would cross the limit, the
    child is a new interpreter, as without the zygote (the sandbox allows the first process one descriptor more:
    the zygote's socket)."""
    monkeypatch.setenv("GRADER_SPAWN_SERVER", setting)
    raw = _sandbox(tmp_path, CROWDED, setting).run(_call("run"), timeout=60)
    assert _value(raw) == [0, True], raw.stderr[-2000:]


def test_only_runs_that_call_the_students_code_fork_a_zygote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import-only run starts no child it needs: no zygote. A call has one, seen by the kernel as a helper."""
    monkeypatch.delenv("GRADER_SPAWN_SERVER", raising=False)
    source = "import time\n\ntime.sleep(0.3)  # long enough for the kernel witness to see a zygote\n\ndef run():\n    pass\n"
    marked = {}
    for kind, action in (("import", {"kind": "import"}), ("call", _call("run"))):
        raw = _sandbox(tmp_path, source, kind).run(action, timeout=30)
        assert raw.kernel is not None and raw.result is not None
        marked[kind] = [t.pid for t in raw.kernel.processes().values() if "grader_inside.zygote" in t.command]
    assert marked["import"] == [] and len(marked["call"]) == 1


EXITS = '''
import atexit, multiprocessing as mp, os, sys, tempfile, threading, time

KEPT = []


def leaves_work_behind(folder, code):
    atexit.register(lambda: open(os.path.join(folder, "atexit.txt"), "w").write("ran"))
    def late():
        time.sleep(0.3)
        with open(os.path.join(folder, "thread.txt"), "w") as handle:
            handle.write("joined")
    threading.Thread(target=late).start()
    text = open(os.path.join(folder, "unclosed.txt"), "w")
    text.write("text never flushed")
    binary = open(os.path.join(folder, "unclosed.bin"), "wb")
    binary.write(b"bytes never flushed")
    KEPT.extend([text, binary])
    sys.stdout = open(os.path.join(folder, "stdout.txt"), "w")
    print("no newline at the end", end="")
    sys.exit(code)


def run():
    found = {}
    for code in (0, 4):
        folder = tempfile.mkdtemp()
        child = mp.get_context("spawn").Process(target=leaves_work_behind, args=(folder, code))
        child.start()
        child.join(20)
        files = {}
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as handle:
                files[name] = handle.read().decode()
        found[code] = [child.exitcode, files]
    return found
'''


@pytest.mark.parametrize("setting", ["on", "off"])
def test_a_cloned_child_ends_its_threads_exit_handlers_and_files_as_an_executed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """A clone leaves without freeing what the zygote shares (:func:`grader.inside.zygote.leave`), yet as a new
    interpreter would: its threads joined, its ``atexit`` handlers run, its open files flushed, its exit code kept."""
    monkeypatch.setenv("GRADER_SPAWN_SERVER", setting)
    raw = _sandbox(tmp_path, EXITS, setting).run(_call("run"), timeout=60)
    files = {"atexit.txt": "ran", "stdout.txt": "no newline at the end", "thread.txt": "joined",
             "unclosed.bin": "bytes never flushed", "unclosed.txt": "text never flushed"}
    assert _value(raw) == {0: [0, files], 4: [4, files]}
    assert raw.leftovers == []


def test_the_boot_script_is_compiled_once_for_every_clone_while_it_reads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``runpy`` gets the zygote's code of the first process's main script under the name ``spawn`` passes, and
    reads and compiles the file as before once it reads otherwise; any other file is read as before."""
    import runpy
    import sys
    import types

    from grader.inside import zygote

    script = tmp_path / "grader_boot.py"
    script.write_text("WHO = 'first'\n")
    other = tmp_path / "other.py"
    other.write_text("WHO = 'other'\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(runpy, "_get_code_from_file", runpy._get_code_from_file)  # type: ignore[attr-defined]
    zygote._compile_main_once()
    assert runpy.run_path(str(script))["WHO"] == "first"

    def code_of(path: Path) -> Any:
        read = runpy._get_code_from_file  # type: ignore[attr-defined]
        found = read("__mp_main__", str(path)) if sys.version_info < (3, 13) else read(str(path))
        return found[0] if isinstance(found, tuple) else found

    code = code_of(script)
    assert code is code_of(script), "compiled once, not at each run"
    assert code.co_filename == str(script)
    assert runpy.run_path(str(other))["WHO"] == "other"
    script.write_text("WHO = 'changed'\n")
    assert runpy.run_path(str(script))["WHO"] == "changed"


def test_a_runpy_reader_of_another_shape_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy
    import sys
    import types

    from grader.inside import zygote

    script = tmp_path / "grader_boot.py"
    script.write_text("WHO = 'first'\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)

    def reader(run_name: str, fname: str, extra: object) -> Any:
        raise AssertionError("not called here")

    monkeypatch.setattr(runpy, "_get_code_from_file", reader)
    zygote._compile_main_once()
    assert runpy._get_code_from_file is reader  # type: ignore[attr-defined]

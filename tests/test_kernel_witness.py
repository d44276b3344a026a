"""The kernel as a second witness: the sandbox host's record of the tree, and its cross-checks with the evidence.

The sampler (:mod:`grader.sandbox.witness`) is run on a hand-made tree, in a PID namespace (as root and
as a user without root, simulated with ``unshare --user`` as ``tests/test_sandbox_namespaces.py`` does)
and without one; the cross-checks (:func:`grader.evidence.integrity.kernel_flags`) are run on forgeries,
where they alone must flag, on every correct solution and reference, where they must never flag, and on
hand-made views. Nothing is written outside the temporary folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader.evidence.integrity import KERNEL, kernel_flags
from grader.evidence.run import Run
from grader.grading.grade import grade_submission
from grader.model.assignment import find_assignment
from grader.sandbox import RawRun
from grader.sandbox.witness import KernelTask, KernelView, available

REPO = Path(__file__).resolve().parent.parent
ROOT = sys.platform.startswith("linux") and os.geteuid() == 0
FORGED = ["hello_processes/thread_popen.py", "pool_map/sequential_fabricated.py"]

needs_proc = pytest.mark.skipif(not available(), reason="the kernel witness reads Linux's /proc")

TREE = '''
import os, threading, time

def tree():
    pid = os.fork()
    if pid == 0:
        time.sleep(1.0)
        os._exit(0)
    thread = threading.Thread(target=time.sleep, args=(1.0,))
    thread.start()
    thread.join()
    os.waitpid(pid, 0)
    return {"me": os.getpid(), "child": pid, "thread": thread.native_id}
'''

HOST = '''
import json, sys
from pathlib import Path
from grader.inside import wire
from grader.sandbox import Sandbox
from grader.sandbox.containment import Isolation
isolation = Isolation(processes=False) if sys.argv[2] == "off" else None
raw = Sandbox(Path(sys.argv[1]), "mod", isolation=isolation).run(
    {"kind": "call", "func": "tree", "args": wire.encode([]), "kwargs": wire.encode({})}, timeout=30)
view = raw.kernel
print(json.dumps({
    "value": wire.decode(raw.result["call"]["value"]), "main": raw.main_pid, "namespace": view.namespace,
    "tasks": [[t.pid, t.tgid, t.ppid, t.thread, t.last - t.first] for t in view.tasks], "samples": len(view.samples),
    "protections": raw.protections,
}))
'''


def _sample_tree(tmp_path: Path, mode: str) -> dict:
    prefix: list[str] = []
    if mode == "unprivileged":
        if not ROOT or shutil.which("unshare") is None:
            pytest.skip("simulates a user without root with unshare, as root")
        prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
    module = tmp_path / "mod.py"
    module.write_text(textwrap.dedent(TREE), encoding="utf-8")
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
    done = subprocess.run([*prefix, sys.executable, "-c", HOST, str(module), mode], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"no user namespaces here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@needs_proc
@pytest.mark.parametrize("mode", ["root", "unprivileged", "off"])
def test_sampler_sees_one_child_process_and_one_thread_with_their_parents(tmp_path: Path, mode: str) -> None:
    report = _sample_tree(tmp_path, mode)
    value, main = report["value"], report["main"]
    assert value["me"] == main
    tasks = {pid: (tgid, ppid, thread, life) for pid, tgid, ppid, thread, life in report["tasks"]}
    namespaced = "own PID namespace" in " ".join(report["protections"])
    assert report["namespace"] is namespaced
    if mode == "off":
        assert not namespaced
    if namespaced:
        assert main == 2 and tasks[1][:3] == (1, None, False), "init, the namespace's pid 1"
    children = {pid: t for pid, t in tasks.items() if not t[2] and t[1] == main}
    threads = {pid: t for pid, t in tasks.items() if t[2]}
    assert set(children) == {value["child"]}, tasks
    assert set(threads) == {value["thread"]}, tasks
    assert threads[value["thread"]][0] == main, "the thread belongs to the student's first process"
    assert children[value["child"]][3] > 0.5 and threads[value["thread"]][3] > 0.5
    assert report["samples"] > 10


@needs_proc
@pytest.mark.slow
@pytest.mark.parametrize("name", FORGED)
def test_kernel_witness_alone_flags_forgery(name: str) -> None:
    path = REPO / "tests" / "corpus" / "forgery" / name
    result = grade_submission(find_assignment(path.parent.name), path)
    kernel = [flag for check in result.checks for flag in check.integrity if flag.startswith(KERNEL)]
    assert kernel, f"{name}: no flag of the kernel witness among {result.integrity}"


# No false flags on honest code: tests/test_corpus.py asserts that every correct solution of every
# assignment carries no integrity flag at all (the kernel witness's included), on both CI Pythons.


def _run(view: KernelView, events: list[dict]) -> Run:
    for seq, event in enumerate(events, 1):
        event.setdefault("tid", 1)
        event.setdefault("seq", seq)
    raw = RawRun(result=None, events=events, stdout="", stderr="", timed_out=False, exit_status=0, duration=3.0,
                 main_pid=2, kernel=view)
    return Run(raw, label="f()", module_file="m.py")


def _view(tasks: list[KernelTask], cpu: dict | None = None) -> KernelView:
    samples = [(i * 0.02, i * 0.02 + 0.001) for i in range(150)]  # 3 s, a sample every 20 ms
    return KernelView(interval=0.02, namespace=True, tasks=tasks, samples=samples, cpu=cpu or {}, precise_cpu=True)


MAIN = KernelTask(host=100, pid=2, tgid=2, ppid=1, first=0.0, last=3.0, seen=150)


def test_a_process_that_was_a_thread_is_flagged() -> None:
    thread = KernelTask(host=101, pid=3, tgid=2, ppid=1, first=0.5, last=1.0, seen=25)
    run = _run(_view([MAIN, thread]), [{"ev": "mp_start", "pid": 2, "t": 0.6, "child": 3}])
    assert any("a process that was a thread" in flag for flag in kernel_flags(run))


def test_a_short_lived_unseen_process_is_not_flagged_and_a_long_lived_one_is() -> None:
    short = [{"ev": "mp_start", "pid": 2, "t": 1.0, "child": 7},
             {"ev": "mp_join", "pid": 2, "t": 1.01, "child": 7, "exitcode": 0, "alive": False, "since": 1.0}]
    assert kernel_flags(_run(_view([MAIN]), short)) == []
    long = [{"ev": "mp_start", "pid": 2, "t": 1.0, "child": 7},
            {"ev": "mp_join", "pid": 2, "t": 2.0, "child": 7, "exitcode": 0, "alive": False, "since": 1.0}]
    assert any("never saw 1 process" in flag for flag in kernel_flags(_run(_view([MAIN]), long)))
    open_view = _view([MAIN])
    open_view.complete = False  # orphans could have left the walked tree: nothing is said
    assert kernel_flags(_run(open_view, long)) == []


def test_a_process_with_events_but_no_cpu_is_flagged() -> None:
    worker = KernelTask(host=102, pid=4, tgid=4, ppid=2, first=0.0, last=3.0, seen=150)
    still = {4: [(i, 5_000_000, 1) for i in range(150)]}
    tasks = [{"ev": "pool_task", "pid": 4, "t": 1.0 + i * 0.1, "phase": "start", "item": i} for i in range(5)]
    assert any("no CPU at all" in flag for flag in kernel_flags(_run(_view([MAIN, worker], still), tasks)))
    busy = {4: [(i, 5_000_000 + i * 1000, 1) for i in range(150)]}
    assert kernel_flags(_run(_view([MAIN, worker], busy), tasks)) == []


def test_a_sleeping_child_its_parent_joins_is_not_an_idle_writer() -> None:
    # The parent's start() and join() name the child while it sleeps on no CPU: that is not the child at work.
    child = KernelTask(host=103, pid=5, tgid=5, ppid=2, first=0.5, last=3.0, seen=150)
    still = {5: [(i, 5_000_000, 1) for i in range(150)]}
    parent = [{"ev": "mp_start", "pid": 2, "t": 0.6, "child": 5},
              {"ev": "mp_join", "pid": 2, "t": 2.9, "child": 5, "exitcode": 0, "alive": False, "since": 1.0},
              {"ev": "mp_join", "pid": 2, "t": 2.95, "child": 5, "exitcode": 0, "alive": False, "since": 1.2}]
    assert not any("no CPU at all" in flag for flag in kernel_flags(_run(_view([MAIN, child], still), parent)))


def test_a_process_released_as_its_status_is_read_has_no_pid_rather_than_pid_0(tmp_path: Path) -> None:
    """A sender that ended just after its first message can show ``NSpid: 0 0`` while it is released: that is no pid
    (it is identified later from the witness's record), not pid 0, which the integrity check would call forged."""
    from grader.sandbox.witness import _nspid

    status = tmp_path / "status"
    status.write_text("Name:\tpython3\nNSpid:\t0\t0\n")
    assert _nspid(str(status)) is None
    status.write_text("Name:\tpython3\nNSpid:\t4242\t7\n")
    assert _nspid(str(status)) == (7, True)
    status.write_text("Name:\tpython3\nNSpid:\t4242\n")
    assert _nspid(str(status)) == (4242, False)

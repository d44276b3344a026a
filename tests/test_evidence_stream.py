"""The evidence stream and the kernel's cross-checks of the evidence.

End to end (a real sandbox, as root, as a user without root simulated with ``unshare --user`` as
``tests/test_kernel_witness.py`` does, and without a PID namespace): every event the probes send
arrives with the pid the kernel says sent it; an event written by number into the probes' descriptor
in another process's name is flagged; the student's code holds no capability and the kernel refuses
its claim of another pid. Where the stream cannot be used the evidence file is read, and a sender the
sandbox claims for itself is dropped. The cross-checks (:func:`grader.evidence.integrity.sender_flags`
and :func:`~grader.evidence.integrity.kernel_flags`) are run on hand-made runs, and on the forgeries
of ``tests/corpus/forgery/`` written against them, where each must raise its own flag. Nothing is
written outside the temporary folders.
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

import grader.sandbox.stream as stream_module
from grader.evidence.integrity import KERNEL, kernel_flags, run_flags, sender_flags
from grader.evidence.run import Run
from grader.grading.grade import grade_submission
from grader.inside import wire
from grader.model.assignment import find_assignment
from grader.sandbox import RawRun, Sandbox
from grader.sandbox.readback import SENT_BY
from grader.sandbox.witness import KernelTask, KernelView, available

REPO = Path(__file__).resolve().parent.parent
ROOT = sys.platform.startswith("linux") and os.geteuid() == 0
needs_stream = pytest.mark.skipif(not stream_module.usable(Path("/tmp/x")) or not available(),
                                  reason="the evidence stream needs Linux (SO_PASSCRED, /proc)")

TREE = '''
import json, os, socket, stat, struct, time
import multiprocessing as mp

def child():
    print("child")

def _claim(pid):
    """Send one message claiming `pid` as the sender (SCM_CREDENTIALS); the errno, or 0 if the kernel let it."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    creds = struct.pack("3i", pid, os.getuid(), os.getgid())
    try:
        a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds)])
        return 0
    except OSError as exc:
        return exc.errno
    finally:
        a.close(); b.close()

def tree():
    p = mp.get_context("spawn").Process(target=child)
    p.start(); p.join()
    pid = os.fork()
    if pid == 0:
        print("forked"); os._exit(0)
    os.waitpid(pid, 0)
    caps = {k: v.strip() for k, v in (l.split(":", 1) for l in open("/proc/self/status")) if k.startswith("Cap")}
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                event = {"ev": "out", "pid": 4242, "tid": 1, "t": time.monotonic(), "seq": 1, "stream": "stdout",
                         "text": "x", "thread": "MainThread"}
                os.write(fd, json.dumps(event).encode())
                break
        except OSError:
            pass
    return {"me": os.getpid(), "child": p.pid, "fork": pid, "caps": caps, "own": _claim(os.getpid()),
            "other": _claim(1)}
'''

HOST = '''
import json, sys
from pathlib import Path
from grader.evidence.integrity import run_flags
from grader.evidence.run import Run
from grader.inside import wire
from grader.sandbox import Sandbox
from grader.sandbox.containment import Isolation
isolation = Isolation(processes=False) if sys.argv[2] == "off" else None
raw = Sandbox(Path(sys.argv[1]), "mod", isolation=isolation).run(
    {"kind": "call", "func": "tree", "args": wire.encode([]), "kwargs": wire.encode({})}, timeout=60)
print(json.dumps({
    "value": wire.decode(raw.result["call"]["value"]), "main": raw.main_pid, "refused": raw.refused,
    "events": [[e["ev"], e["pid"], e.get("sent_by")] for e in raw.events],
    "flags": run_flags(Run(raw, label="tree()", module_file="mod.py")), "protections": raw.protections,
}))
'''


def _host(tmp_path: Path, mode: str) -> dict:
    prefix: list[str] = []
    if mode == "unprivileged":
        if not ROOT or shutil.which("unshare") is None:
            pytest.skip("simulates a user without root with unshare, as root")
        prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
        tmp_path.chmod(0o777)
    module = tmp_path / "mod.py"
    module.write_text(textwrap.dedent(TREE), encoding="utf-8")
    module.chmod(0o644)
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
    done = subprocess.run([*prefix, sys.executable, "-c", HOST, str(module), mode], capture_output=True, text=True,
                          timeout=180, cwd=REPO, env=env, check=False)
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"no user namespaces here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@needs_stream
@pytest.mark.parametrize("mode", ["root", "unprivileged", "off"])
def test_every_event_arrives_with_the_pid_the_kernel_says_sent_it(tmp_path: Path, mode: str) -> None:
    report = _host(tmp_path, mode)
    value, main = report["value"], report["main"]
    assert report["refused"] == []
    forged = [e for e in report["events"] if e[1] == 4242]
    honest = [e for e in report["events"] if e[1] != 4242]
    assert {e[1] for e in honest} == {main, value["child"], value["fork"]}, report["events"]
    # The kernel always names the sender; its pid in the sandbox is known unless it ended and was reaped before the
    # grader read its /proc entry and between two samples of the witness (the fork here lives a few milliseconds).
    assert all(sent is not None and sent[0] > 0 and sent[1] in (pid, None) for _, pid, sent in honest), report["events"]
    assert all(sent[1] == main for _, pid, sent in honest if pid == main), "the first process is always identified"
    assert [sent[1] for _, _, sent in forged] == [main], "the forged event was sent by the first process"
    assert any("sent by another process than the one they name" in flag for flag in report["flags"]), report["flags"]
    assert any("in the name of 2 different pids" in flag for flag in report["flags"]), report["flags"]


@needs_stream
@pytest.mark.parametrize("mode", ["root", "unprivileged"])
def test_student_code_has_no_capability_and_cannot_claim_another_pid(tmp_path: Path, mode: str) -> None:
    """SCM_CREDENTIALS may name another pid only with CAP_SYS_ADMIN over the PID namespace's user namespace."""
    report = _host(tmp_path, mode)
    caps = report["value"]["caps"]
    assert int(caps["CapEff"], 16) == 0 and int(caps["CapPrm"], 16) == 0 and int(caps["CapAmb"], 16) == 0, caps
    assert report["value"]["own"] == 0, "a process may name itself"
    assert report["value"]["other"] == 1, "EPERM: the kernel refuses another pid"


def test_without_the_stream_the_evidence_file_is_read_and_a_claimed_sender_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_module, "usable", lambda path: False)
    (tmp_path / "mod.py").write_text(textwrap.dedent('''
        import json, os, time
        def f():
            out = os.environ["GRADER_SANDBOX_OUT"]
            for fd in range(3, 64):
                try:
                    if os.path.samefile(f"/proc/self/fd/{fd}", os.path.join(out, "evidence.jsonl")):
                        break
                except OSError:
                    continue
            event = {"ev": "out", "pid": os.getpid(), "tid": 1, "t": time.monotonic(), "seq": 99, "stream": "stdout",
                     "text": "x", "thread": "MainThread", "sent_by": [1, 1, 0.0]}
            os.write(fd, json.dumps(event).encode() + b"\\n")
            return fd
    '''), encoding="utf-8")
    raw = Sandbox(tmp_path, "mod").run({"kind": "call", "func": "f", "args": wire.encode([]),
                                       "kwargs": wire.encode({})}, timeout=30)
    assert raw.result is not None and raw.result["call"]["ok"], raw.result
    assert raw.events and all(SENT_BY not in e for e in raw.events)
    assert any(e.get("seq") == 99 for e in raw.events)


@needs_stream
def test_the_audit_hook_refuses_the_students_own_connection_to_the_stream(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(textwrap.dedent('''
        import os, socket
        def f():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                sock.connect(os.path.join(os.environ["GRADER_SANDBOX_OUT"], "evidence.sock"))
            except PermissionError as exc:
                return str(exc)
            return "connected"
    '''), encoding="utf-8")
    raw = Sandbox(tmp_path, "mod").run({"kind": "call", "func": "f", "args": wire.encode([]),
                                       "kwargs": wire.encode({})}, timeout=30)
    assert raw.result is not None and raw.result["call"]["ok"], raw.result
    assert "connects to a socket of the grader's output folder" in wire.decode(raw.result["call"]["value"])
    flags = run_flags(Run(raw, label="f()", module_file="mod.py"))
    assert any("connects to a socket of the grader's output folder" in f for f in flags), flags


# -- the cross-checks on hand-made runs -------------------------------------------------------------------

PY = "/usr/bin/python3 -s /s/support/grader_boot.py"


def _run(events: list[dict], view: KernelView | None = None) -> Run:
    for seq, event in enumerate(events, 1):
        event.setdefault("tid", 1)
        event.setdefault("seq", seq)
    raw = RawRun(result=None, events=events, stdout="", stderr="", timed_out=False, exit_status=0, duration=3.0,
                 main_pid=2, kernel=view)
    return Run(raw, label="f()", module_file="m.py")


def _view(tasks: list[KernelTask]) -> KernelView:
    samples = [(i * 0.02, i * 0.02 + 0.001) for i in range(150)]  # 3 s, a sample every 20 ms
    return KernelView(interval=0.02, namespace=True, tasks=tasks, samples=samples, precise_cpu=True)


def _task(pid: int, first: float, last: float, *, ppid: int = 2, command: str = PY, exit: int | None = None) -> KernelTask:
    return KernelTask(host=100 + pid, pid=pid, tgid=pid, ppid=ppid, first=first, last=last,
                      seen=int((last - first) / 0.02) + 1, command=command, exit=exit)


MAIN = _task(2, 0.0, 3.0, ppid=1)


def _sent(event: dict, host: int, pid: int | None, at: float) -> dict:
    event[SENT_BY] = [host, pid, at]
    return event


def test_sender_flags_name_forged_senders_and_spare_honest_ones() -> None:
    honest = [_sent({"ev": "proc", "pid": 2, "t": 0.1}, 102, 2, 0.1),
              _sent({"ev": "proc", "pid": 4, "t": 0.2, "seq": 1}, 104, 4, 0.2),
              _sent({"ev": "seal", "pid": 4, "t": 0.3, "seq": 2}, 104, None, 0.3)]
    assert sender_flags(_run(honest)) == []
    forged = [*honest, _sent({"ev": "out", "pid": 4, "t": 0.4, "seq": 3}, 102, 2, 0.25)]
    flags = sender_flags(_run(forged))
    assert any("an event of pid 4 sent by pid 2" in f for f in flags), flags
    assert any("in the name of 2 different pids" in f for f in flags), flags
    assert any("sent by two different processes at the same time" in f for f in flags), flags
    unknown = [_sent({"ev": "out", "pid": 2, "t": 0.4}, 999, None, 0.4)]  # an unidentified sender claims main
    view = _view([MAIN])
    assert any("sent by a process with host pid 999" in f for f in sender_flags(_run(unknown, view)))


def test_a_hidden_python_child_is_flagged_and_helpers_or_starting_children_are_not() -> None:
    events = [{"ev": "proc", "pid": 2, "t": 0.0, "ppid": 1}]
    hidden = _task(5, 0.5, 1.8)
    assert any("never mentions" in f for f in kernel_flags(_run(events, _view([MAIN, hidden]))))
    brief = _task(5, 0.5, 1.0)  # a fork seen for half a second: not enough to be sure
    tracker = _task(3, 0.1, 3.0, command="/usr/bin/python3 -c from multiprocessing.resource_tracker import main;main(5)")
    starting = _task(6, 0.5, 3.0, command="/usr/bin/python3 -s -c from multiprocessing.spawn import spawn_main; "
                                          "--multiprocessing-fork")  # a spawn child may take seconds to start
    assert kernel_flags(_run(events, _view([MAIN, brief, tracker, starting]))) == []
    named = [*events, {"ev": "mp_start", "pid": 2, "t": 0.5, "child": 5}]
    assert kernel_flags(_run(named, _view([MAIN, hidden]))) == []


def test_a_parent_the_evidence_misstates_is_flagged_but_a_reparented_orphan_is_not() -> None:
    tasks = [MAIN, _task(4, 0.2, 2.0), _task(5, 0.3, 2.0, ppid=4)]
    lie = [{"ev": "proc", "pid": 5, "t": 0.3, "ppid": 2}, {"ev": "proc", "pid": 4, "t": 0.2, "ppid": 2}]
    assert any("child of pid 2 by the evidence, of pid 4 by the kernel" in f for f in kernel_flags(_run(lie, _view(tasks))))
    orphan = [{"ev": "proc", "pid": 5, "t": 0.3, "ppid": 1}, {"ev": "proc", "pid": 4, "t": 0.2, "ppid": 2}]
    assert kernel_flags(_run(orphan, _view(tasks))) == []


def test_an_exit_code_the_evidence_misstates_is_flagged() -> None:
    events = [{"ev": "mp_start", "pid": 2, "t": 0.2, "child": 4},
              {"ev": "mp_join", "pid": 2, "t": 1.0, "child": 4, "exitcode": 0, "alive": False, "since": 0.3}]
    flags = kernel_flags(_run(events, _view([MAIN, _task(4, 0.2, 0.9, exit=3 << 8)])))
    assert any("exit code 0 by the evidence, 3 by the kernel" in f for f in flags), flags
    assert kernel_flags(_run(events, _view([MAIN, _task(4, 0.2, 0.9, exit=0)]))) == []
    assert kernel_flags(_run(events, _view([MAIN, _task(4, 0.2, 0.9)]))) == []  # not known: nothing said


def test_children_claimed_together_that_the_kernel_saw_one_after_the_other_are_flagged() -> None:
    events = [{"ev": "mp_start", "pid": 2, "t": 0.2, "child": 4}, {"ev": "mp_start", "pid": 2, "t": 0.21, "child": 5},
              {"ev": "mp_join", "pid": 2, "t": 2.5, "child": 4, "exitcode": 0, "alive": False, "since": 0.3},
              {"ev": "mp_join", "pid": 2, "t": 2.6, "child": 5, "exitcode": 0, "alive": False, "since": 2.5}]
    apart = _view([MAIN, _task(4, 0.2, 1.0), _task(5, 1.1, 2.5)])
    assert any("end before pid 5 began" in f for f in kernel_flags(_run(events, apart)))
    together = _view([MAIN, _task(4, 0.2, 2.4), _task(5, 0.22, 2.5)])
    assert kernel_flags(_run(events, together)) == []
    apart.complete = False  # orphans could have left the walked tree: nothing is said
    assert kernel_flags(_run(events, apart)) == []


# -- the forgeries written against the stream and the cross-checks ----------------------------------------

FORGED = {
    "hello_processes/speaks_for_children.py": "sent by another process than the one they name",
    "hello_processes/intercepted_joins.py": "began, yet by the evidence both existed together",
    "hello_processes/exitcode_property.py": "by the evidence, 3 by the kernel",
    "hello_processes/hidden_fork.py": "that the evidence never mentions",
}


@needs_stream
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FORGED))
def test_each_forgery_raises_its_own_kernel_flag(name: str) -> None:
    path = REPO / "tests" / "corpus" / "forgery" / name
    result = grade_submission(find_assignment(path.parent.name), path)
    kernel = [flag for check in result.checks for flag in check.integrity if flag.startswith(KERNEL)]
    assert any(FORGED[name] in flag for flag in kernel), f"{name}: {result.integrity}"
    assert result.score < result.max_score


def test_run_flags_include_the_sender_flags() -> None:
    events = [_sent({"ev": "out", "pid": 7, "t": 0.4}, 102, 2, 0.4)]
    assert any("sent by pid 2" in f for f in run_flags(_run(events)))


def test_events_of_a_kind_are_indexed_once_and_follow_changes() -> None:
    run = _run([{"ev": "proc", "pid": 2, "t": 0.1}, {"ev": ["not", "a", "kind"], "pid": 2, "t": 0.2},
                {"ev": "out", "pid": 2, "t": 0.3, "stream": "stdout", "text": "hi\n"}])
    procs = run.of("proc")
    assert [e["t"] for e in procs] == [0.1]
    procs.clear()  # the caller's own list: the index is not changed through it
    assert [e["t"] for e in run.of("proc")] == [0.1]
    run.events.append({"ev": "proc", "pid": 3, "t": 0.4})  # an event added after the first look is seen
    assert [e["pid"] for e in run.of("proc")] == [2, 3]
    run.events = [{"ev": "out", "pid": 2, "t": 0.5, "stream": "stdout", "text": "bye\n"}]  # and a new list
    assert run.of("proc") == [] and [line.text for line in run.lines()] == ["bye"]

"""Checks for duplex_pipe: an echo worker in a child process, answering on one duplex Pipe.

echo_worker() is first run alone by the driver (in a thread of the sandbox's
process, with its own end of a Pipe, so the grader can see that it closes it),
then ping_pong() as a whole. The ``pipe_ops`` probe records every send() and
recv() on a connection, so "send a message, receive its reply, then send the
next" is checked from what the parent did, not from whether small messages
happen to fit in the pipe.
"""

from __future__ import annotations

from typing import Any

import pytest

from grader.checks import (
    Submission,
    brief,
    expect,
    expect_children_joined,
    expect_no_import_side_effects,
    fail,
    same,
    sequence_problem,
)
from grader.evidence import Run
from grader.evidence.pipes import PipeOp, pipe_ops, unanswered_request

MESSAGES: list[Any] = ["ping", 2, 3.5, (4, "four"), {"five": [5]}, [6, 6], b"seven", 0, "", False, {8, 9}]
# Fewer than MESSAGES (a process per message stays quick); "ping" twice: each message gets its reply, repeats too.
PING_PONG: list[Any] = ["ping", 0, 3.5, (4, "four"), {"five": [5]}, b"six", "ping"]
LARGE: list[Any] = [letter * 1_000_000 for letter in "cab"]  # not in sorted order: sorted replies show
DRIVER_LIMIT = 4.0

REPLY_HINT = "in echo_worker, answer each message with conn.send((os.getpid(), message)): a tuple of the pid and the message"


def _worker_alone(submission: Submission) -> dict[str, Any]:
    """echo_worker() run alone by the driver (one run, shared by the two worker checks)."""
    run = submission.shared_drive("worker_alone", MESSAGES, DRIVER_LIMIT, timeout=12, label="echo_worker(conn)")
    out: dict[str, Any] = run.value
    return out


def _mixed_run(submission: Submission, *, allow_error: bool = False) -> Run:
    """ping_pong with messages of many types, shared by the checks of its replies, its pipe use, its child, the import."""
    return submission.shared_call("ping_pong", PING_PONG, probes=["pipe_ops"], timeout=12, allow_error=allow_error)


def _reply_problem(reply: Any, message: Any, pid: int, ppid: int | None = None) -> str | None:
    """What is wrong with one reply to ``message`` from a worker whose pid is ``pid``, or ``None``."""
    if type(reply) is not tuple or len(reply) != 2:
        if same(reply, message):
            return f"the reply to {brief(message, 30)} was the message alone, without the pid"
        return f"the reply to {brief(message, 30)} was {brief(reply, 50)}, not a tuple (pid, message)"
    tag, echoed = reply
    if not same(echoed, message):
        return f"the reply to {brief(message, 30)} was {brief(reply, 50)}: its second part is not the message"
    if type(tag) is not int:
        return f"the reply to {brief(message, 30)} was {brief(reply, 50)}: its first part is not a pid (an int)"
    if tag != pid:
        whose = " (the pid of the parent process, os.getppid())" if ppid is not None and tag == ppid else ""
        return f"the reply to {brief(message, 30)} was tagged with pid {tag}{whose}, but the worker ran in process {pid}"
    return None


@pytest.mark.points(2)
def test_worker_replies_in_order_with_its_pid(submission: Submission) -> None:
    """echo_worker answers each message, in order, with (its own pid, the message)."""
    out = _worker_alone(submission)
    replies, unanswered = out["replies"], out["unanswered"]
    if unanswered is not None:
        message = MESSAGES[unanswered]
        fail(
            f"echo_worker(conn) did not answer message {unanswered + 1} ({brief(message, 30)}) within "
            f"{DRIVER_LIMIT:g} s" + (" (it stopped: its end of the pipe was closed)" if out["closed"] else ""),
            "one reply per message, sent back before the next message arrives",
            "stop only when the message is None (`if message is None:`): 0, '' and False are messages too"
            if not message
            else "loop: conn.recv(), then conn.send((os.getpid(), message)) for every message but None",
        )
    for reply, message in zip(replies, MESSAGES):
        problem = _reply_problem(reply, message, out["pid"], out["ppid"])
        expect(
            problem is None,
            observed=f"sent {len(MESSAGES)} messages one at a time to echo_worker(conn): {problem}",
            expected=f"each reply is (pid, message) with the pid of the process running echo_worker ({out['pid']})",
            hint=REPLY_HINT,
        )


@pytest.mark.points(2)
def test_worker_returns_and_closes_on_none(submission: Submission) -> None:
    """On None, echo_worker sends nothing back, closes its end of the pipe and returns."""
    out = _worker_alone(submission)
    expect(
        out["returned"],
        observed=f"echo_worker(conn) was still running {DRIVER_LIMIT:g} s after it received None",
        expected="echo_worker returns as soon as it receives None",
        hint="test the message with `if message is None:`, then conn.close() and return",
    )
    expect(
        not out["extra"],
        observed=f"after None, echo_worker(conn) still sent {brief(out['extra'][0] if out['extra'] else None, 50)}",
        expected="no reply to None: it only tells the worker to stop",
        hint="check for None right after conn.recv(), before sending anything",
    )
    expect(
        out["closed"] and out["eof"],
        observed="echo_worker(conn) returned after None without closing its end of the pipe, so the other end "
        "never sees EOFError",
        expected="echo_worker calls conn.close() before it returns",
        hint="call conn.close() when the message is None (or use `with conn:` around the loop)",
    )


@pytest.mark.points(2)
def test_ping_pong_replies_in_order_from_one_child(submission: Submission) -> None:
    """ping_pong returns one reply per message, in order, all from one child process other than the caller."""
    run = _mixed_run(submission)
    replies = run.value
    if type(replies) is not list:
        fail(
            f"ping_pong(messages) returned {brief(replies)}, not a list",
            "a list with one reply (pid, message) per message",
            "append each reply to a list and return it",
        )
    expect(
        len(replies) == len(PING_PONG),
        observed=f"ping_pong(messages) returned {len(replies)} replies for {len(PING_PONG)} messages",
        expected="one reply per message",
        hint="receive exactly one reply after each message you send",
    )
    for reply, message in zip(replies, PING_PONG):
        if type(reply) is not tuple or len(reply) != 2:
            fail(f"ping_pong(messages): {_reply_problem(reply, message, -1)}", "each reply a tuple (pid, message)", REPLY_HINT)
    problem = sequence_problem([r[1] for r in replies], PING_PONG)
    expect(
        problem is None,
        observed=f"the messages in the replies of ping_pong(messages) were {problem}",
        expected=f"the replies in the order of the messages: {brief(PING_PONG, 100)}",
        hint="send one message, receive its reply and append it, then go on with the next message",
    )
    pids = sorted({r[0] for r in replies}, key=repr)
    children = {child.pid: child for child in run.child_processes()}
    if run.main_pid in pids:
        threads = run.child_threads(pid=run.main_pid)
        fail(
            f"the replies were tagged with the pid of the process that called ping_pong ({run.main_pid})"
            + (", where echo_worker ran in a thread" if threads and not children else ""),
            "every reply from a child process started with multiprocessing.Process",
            "run echo_worker as the target of a multiprocessing.Process, not a thread; it tags each reply "
            "with os.getpid() in its own process",
        )
    expect(
        len(pids) == 1,
        observed=f"the replies came from {len(pids)} different processes ({', '.join(map(str, pids[:5]))})",
        expected="one child process answering every message",
        hint="start one worker process before the loop, and send it every message through the same pipe",
    )
    expect(
        pids[0] in children,
        observed=f"the replies were tagged with pid {pids[0]!r}, which is not a process ping_pong started",
        expected="the pid of the child process running echo_worker",
        hint=REPLY_HINT,
    )


@pytest.mark.points(1)
def test_ping_pong_waits_for_each_reply(submission: Submission) -> None:
    """ping_pong receives each reply before it sends the next message."""
    run = _mixed_run(submission)
    ops = _caller_ops(run)
    sends = [op for op in ops if op.op == "send"]
    expect(
        len(sends) >= len(PING_PONG),
        observed=f"ping_pong(messages) sent {len(sends)} message(s) through a multiprocessing.Pipe for "
        f"{len(PING_PONG)} messages",
        expected="each message sent with send() on the parent's end of the pipe",
        hint="send every message with conn.send(message) on your end of the Pipe",
    )
    early = unanswered_request([op.op for op in ops])
    expect(
        early is None,
        observed=f"ping_pong(messages) sent message number {(early or 0) + 1}, {sends[early or 0].what}, before it "
        f"had received the reply to message number {early}",
        expected="send one message, receive its reply, then send the next",
        hint="with large messages, sending everything first deadlocks: both ends wait in send() for the other "
        "to read; call recv() right after each send()",
    )


def _caller_ops(run: Run) -> list[PipeOp]:
    """The sends and receives ping_pong made itself (on the thread that called it)."""
    return [op for op in pipe_ops(run, pid=run.main_pid, tid=run.caller_tid) if op.op in ("send", "recv", "eof")]


@pytest.mark.points(1)
def test_ping_pong_stops_worker_with_none(submission: Submission) -> None:
    """After the last reply, ping_pong sends None, and the worker returns by itself (it is not terminated)."""
    run = _mixed_run(submission)
    sends = [op for op in _caller_ops(run) if op.op == "send"]
    after = [op.what for op in sends[len(PING_PONG):]]
    killed = [c for c in run.child_processes(parent=run.main_pid) if c.exitcode is not None and c.exitcode < 0]
    problems = []
    if after[:1] != ["None"]:
        problems.append(f"after the {len(PING_PONG)} messages ping_pong(messages) sent "
                        + (", ".join(after[:3]) if after else "nothing more"))
    if killed:
        signal = -(killed[0].exitcode or 0)
        problems.append(f"the worker process {killed[0].name} was killed by signal {signal}"
                        + (" (SIGTERM: terminate())" if signal == 15 else ""))
    expect(
        not problems,
        observed="; ".join(problems),
        expected="None, sent once after the last message: echo_worker then closes its end and returns by itself, "
        "exiting with code 0",
        hint="do not terminate() or kill() the worker: after the loop, conn.send(None), then join() it"
        if killed
        else "after the loop: conn.send(None), then join() the worker",
    )


@pytest.mark.points(1)
def test_ping_pong_uses_one_duplex_pipe(submission: Submission) -> None:
    """ping_pong sends the messages and receives the replies on the same end of one duplex Pipe."""
    run = _mixed_run(submission)
    ends = {(op.op, op.conn) for op in _caller_ops(run) if op.op in ("send", "recv")}
    sent_on = {conn for op, conn in ends if op == "send"}
    received_on = {conn for op, conn in ends if op == "recv"}
    expect(
        len(sent_on | received_on) == 1,
        observed=f"ping_pong(messages) sent on {len(sent_on)} connection(s) and received on {len(received_on)}, "
        f"{len(sent_on | received_on)} different connection(s) in all",
        expected="one duplex pipe: parent_end, child_end = multiprocessing.Pipe(); the parent sends and receives "
        "on parent_end, the worker on child_end",
        hint="create one Pipe() (duplex is the default) instead of one pipe per direction",
    )


@pytest.mark.points(2)
def test_ping_pong_large_messages(submission: Submission) -> None:
    """ping_pong answers three messages of 1 MB each, in order, without a deadlock."""
    run = submission.call("ping_pong", LARGE, timeout=12)
    replies = run.value
    if type(replies) is list:
        for reply, message in zip(replies, LARGE):
            if type(reply) is not tuple or len(reply) != 2 or type(reply[0]) is not int:
                fail(
                    f"with three strings of 1 MB each: {_reply_problem(reply, message, -1)}",
                    "each reply a tuple (pid, message)",
                    REPLY_HINT,
                )
        replies = [reply[1] for reply in replies]
    problem = sequence_problem(replies, LARGE)
    expect(
        problem is None,
        observed=f"with three strings of 1 MB each, the messages in the replies of ping_pong(messages) were {problem}",
        expected="three replies (pid, message), in the order of the messages",
        hint="send one message, receive its reply, then send the next",
    )


@pytest.mark.points(2)
def test_child_joined_and_exited(submission: Submission) -> None:
    """The child process is joined and exits with code 0; nothing is left running."""
    expect_children_joined(
        _mixed_run(submission),
        "ping_pong",
        wanted="one child process running echo_worker, joined before ping_pong returns",
        start_hint="start echo_worker with multiprocessing.Process(target=echo_worker, args=(child_end,))",
        join_expected="ping_pong sends None, then calls join() on the worker process",
        join_hint="after the loop: conn.send(None), then worker.join()",
        exit_expected="the worker exits with code 0",
        exit_hint="an exception in the worker ends it with code 1 (an EOFError if its pipe was closed before None "
        "arrived; its error output shows where); a negative code -N is a kill by signal N (terminate() sends 15): "
        "send None and let the worker return by itself",
        alive_hint="send None so that the worker returns, then join it",
    )


@pytest.mark.points(1)
def test_no_side_effects_at_import(submission: Submission) -> None:
    """Importing duplex_pipe.py prints nothing and starts no process or thread."""
    expect_no_import_side_effects(
        submission,
        expected="importing the module only defines the functions",
        hint="put any test code under `if __name__ == \"__main__\":` - under spawn every child re-imports your file",
        within=lambda: _mixed_run(submission, allow_error=True),
    )

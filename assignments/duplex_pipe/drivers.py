"""Driver for the duplex_pipe checks: talk to echo_worker() alone through a real Pipe.

Runs inside the sandbox, next to the student's module (standard library only).
The worker runs in a thread of this process, so that once it returns the
driver can see whether it closed its end of the pipe (the same Connection
object), and the pid it should tag its replies with is this process's.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from typing import Any


def worker_alone(student: Any, messages: list[Any], limit: float = 5.0) -> dict[str, Any]:
    """Send each message to ``echo_worker`` and wait for its reply, then send ``None``; report what happened.

    The result: ``pid`` (of the process running the worker), ``replies`` (one
    per answered message, in order), ``unanswered`` (the position of the first
    message not answered within ``limit`` seconds, or before the worker returned or
    raised, or ``None``), ``returned``
    (the worker returned after ``None``), ``closed`` (its end was closed),
    ``eof`` (this end then saw ``EOFError``) and ``extra`` (anything the worker
    sent after ``None``).
    """
    here, there = multiprocessing.Pipe()
    raised: list[BaseException] = []
    ended, ending = os.pipe()  # readable (at its end of file) once the worker has returned or raised

    def host() -> None:
        try:
            student.echo_worker(there)
        except SystemExit as exc:  # sys.exit() ends a worker process cleanly: count it as returning
            if exc.code not in (0, None):
                raised.append(exc)
        except BaseException as exc:  # re-raised below, with the student's frames
            raised.append(exc)
        finally:
            os.close(ending)

    thread = threading.Thread(target=host, name="echo_worker", daemon=True)
    thread.start()
    replies: list[Any] = []
    unanswered = None
    for position, message in enumerate(messages):
        try:
            here.send(message)
            # a worker that has returned or raised answers nothing more: no waiting out the limit for it
            multiprocessing.connection.wait([here, ended], timeout=limit)
            if not here.poll(0):
                unanswered = position
                break
            replies.append(here.recv())
        except (EOFError, OSError):
            unanswered = position
            break
    try:
        here.send(None)
    except OSError:
        pass
    thread.join(limit)
    os.close(ended)
    if raised:
        raise raised[0]
    returned = not thread.is_alive()
    extra: list[Any] = []
    eof = False
    if returned:
        while here.poll(1.0):
            try:
                extra.append(here.recv())
            except EOFError:
                eof = True
                break
            if len(extra) > 5:
                break
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "replies": replies,
        "unanswered": unanswered,
        "returned": returned,
        "closed": there.closed,
        "eof": eof,
        "extra": extra,
    }

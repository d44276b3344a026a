"""Drivers of the bounded_buffer checks: they run inside the sandbox, next to the student's module.

``alone`` drives one BoundedBuffer from helper threads and reports what happened as plain data. A
thread is *waiting* when its stack holds a frame of ``threading.Condition.wait`` (a Semaphore's
acquire waits in one too); the driver looks at the stack instead of guessing from the clock, so a
correct buffer is judged the same on an idle and on a loaded machine.
"""

import sys
import threading
import time

STEP = 5.0  # seconds a put or get that should return is given
UNSURE = 3.0  # seconds to look for a thread that neither returns nor shows a wait
SPUN = 1.0  # seconds of CPU such a thread may use before the look ends: it is polling, not on its way to a wait
SETTLE = 0.3  # seconds a waiting thread is left waiting, so that its call is mostly a wait


class _Call:
    """One call of put or get in a daemon helper thread (a stuck call must not keep the sandbox alive)."""

    def __init__(self, method, *args):
        self.done = False
        self.value = None
        self.error = None
        self.clock = None  # the thread's CPU clock, read by the thread itself (a thread that ended has none)
        self.thread = threading.Thread(target=self._run, args=(method, args), daemon=True)
        self.thread.start()

    def _run(self, method, args):
        try:
            self.clock = time.pthread_getcpuclockid(threading.get_ident())
        except (AttributeError, OSError):  # not on this platform: the look lasts UNSURE seconds
            pass
        try:
            self.value = method(*args)
        except BaseException as exc:  # the student's exception is reported, not raised here
            self.error = f"{type(exc).__name__}: {exc}"[:300]
        self.done = True

    def finish(self, seconds=STEP):
        self.thread.join(seconds)
        return self.done

    def waiting_on(self):
        """The Condition the thread waits in now, or None (running, blocked in C, or done)."""
        frame = sys._current_frames().get(self.thread.ident)
        while frame is not None:
            code = frame.f_code
            if code.co_name in ("wait", "wait_for") and code.co_filename.endswith("threading.py"):
                owner = frame.f_locals.get("self")
                if type(owner).__name__ == "Condition":
                    return owner
            frame = frame.f_back
        return None

    def cpu(self):
        """Seconds of CPU the call's thread has used, or None where that cannot be read (or it ended)."""
        try:
            return time.clock_gettime(self.clock) if self.clock is not None else None
        except OSError:  # the thread ended: the kernel no longer knows its clock
            return None

    def settle(self):
        """Wait until the call returned or is seen waiting ("done", "waiting" or "unsure").

        "unsure" after UNSURE seconds, or once the thread used SPUN seconds of CPU: a call
        on its way to a wait, or blocked in C, uses almost none; one that keeps checking
        the buffer without waiting uses a CPU, and then a second is enough to show it.
        """
        deadline = time.monotonic() + UNSURE
        while time.monotonic() < deadline:
            if self.done:
                return "done"
            if self.waiting_on() is not None:
                return "waiting"
            if (self.cpu() or 0.0) >= SPUN:  # the thread is new: all its CPU went to this call
                break
            time.sleep(0.005)
        return "done" if self.done else "unsure"

    def outcome(self):
        return {"value": self.value, "error": self.error}


def _wake_without_change(call):
    """notify_all() the Condition ``call`` waits in, as another thread may; report what the call did then."""
    cond = call.waiting_on()
    if cond is None:
        return None
    with cond:
        cond.notify_all()
    return call.settle()


def _fill(buffer, tag, count, report):
    for k in range(count):
        call = _Call(buffer.put, (tag, k))
        if not call.finish():
            report.update(outcome="put_blocked", held=k)
            return False
        if call.error:
            report.update(outcome="put_raised", error=call.error)
            return False
    return True


def _drain(buffer, count, report):
    got = []
    for _ in range(count):
        call = _Call(buffer.get)
        if not call.finish():
            report.update(outcome="get_stuck", got=got)
            return None
        if call.error:
            report.update(outcome="get_raised", error=call.error, got=got)
            return None
        got.append(call.value)
    return got


def _full_put(buffer, capacity, report):
    """A put on a full buffer waits, survives a wake-up that made no room, and returns after a get."""
    extra = _Call(buffer.put, ("a", capacity))
    state = extra.settle()
    if state == "done":
        report.update(outcome="put_did_not_wait", **extra.outcome())
        _drain(buffer, capacity + 1, {})  # its gets see (and record) the buffer holding one too many
        return False
    if state == "waiting":
        report["put_waits_in"] = extra.waiting_on()
        time.sleep(SETTLE)
        if _wake_without_change(extra) == "done":
            report.update(outcome="put_woke_full", **extra.outcome())
            _drain(buffer, capacity + 1, {})
            return False
    first = _Call(buffer.get)
    if not first.finish():
        report.update(outcome="get_stuck", got=[])
        return False
    report["first"] = first.value
    if first.error:
        report.update(outcome="get_raised", error=first.error, got=[])
        return False
    if not extra.finish():
        report.update(outcome="put_stayed_blocked")
        return False
    return True


def _empty_get(buffer, report):
    """A get on an empty buffer waits, survives a wake-up with nothing put, and returns the next put."""
    waiting = _Call(buffer.get)
    state = waiting.settle()
    if state == "done":
        report.update(outcome="get_did_not_wait", **waiting.outcome())
        return False
    if state == "waiting":
        put_cond = report.pop("put_waits_in", None)
        report["one_condition"] = put_cond is not None and put_cond is waiting.waiting_on()
        time.sleep(SETTLE)
        if _wake_without_change(waiting) == "done":
            report.update(outcome="get_woke_empty", **waiting.outcome())
            return False
        time.sleep(SETTLE)
    put = _Call(buffer.put, ("b", 0))
    if not put.finish() or put.error:
        report.update(outcome="put_raised" if put.error else "put_blocked", error=put.error, held=0)
        return False
    if not waiting.finish():
        report.update(outcome="get_stayed_blocked")
        return False
    report["late"] = waiting.value
    return True


def alone(student, capacity):
    """put/get of one BoundedBuffer(capacity), driven step by step; returns what happened.

    Fill it; one more put must wait (also after a notify_all that made no room) and return once a
    get took the oldest item; the rest comes out in order; a get on the empty buffer must wait (also
    after a notify_all with nothing put) and return the next item put. ``one_condition`` says whether
    the waiting put and the waiting get waited in the same Condition object.
    """
    report = {"outcome": "ok"}
    buffer = student.BoundedBuffer(capacity)
    if _fill(buffer, "a", capacity, report) and _full_put(buffer, capacity, report):
        rest = _drain(buffer, capacity, report)
        if rest is not None:
            report["rest"] = rest
            _empty_get(buffer, report)
    report.pop("put_waits_in", None)  # a Condition object: only plain data goes back
    return report

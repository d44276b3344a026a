"""The lock probe on threading primitives, traced methods and watched attributes, on real sandbox runs.

Each program makes its threads meet deterministically (an Event, a Semaphore(0), a join), so what is
recorded does not depend on how the machine schedules them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from grader.evidence import Run
from grader.evidence.lockorder import blocked_cycle, order_cycles
from grader.evidence.locks import accesses, acquisitions, attempts, lock_creations, lockset
from grader.evidence.waiting import activity, waits
from grader.inside import wire
from grader.sandbox import Sandbox

BUFFER = """
import threading
import time
from collections import deque


class BoundedBuffer:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = deque()
        self.cond = threading.Condition()  # COND
        self.loops = 0

    def put(self, item):
        with self.cond:
            while len(self.items) >= self.capacity:  # FULL
                self.cond.wait()
            self.items.append(item)
            self.cond.notify_all()

    def get(self):
{get}


def run(items=30, capacity=3):
    buf = BoundedBuffer(capacity)
    got = []
    producers = [threading.Thread(target=lambda p=p: [buf.put((p, i)) for i in range(items)]) for p in range(2)]
    consumer = threading.Thread(target=lambda: got.extend(buf.get() for _ in range(2 * items)))
    for t in [*producers, consumer]:
        t.start()
    for t in [*producers, consumer]:
        t.join()
    return sorted(got)


def fill_then_drain(capacity=3):
    buf = BoundedBuffer(capacity)
    producer = threading.Thread(target=lambda: [buf.put(i) for i in range(capacity + 1)])
    producer.start()
    producer.join()
    got = []
    consumer = threading.Thread(target=lambda: got.extend(buf.get() for _ in range(capacity + 1)))
    consumer.start()
    consumer.join()
    return got


def get_waits():
    buf = BoundedBuffer(2)
    got = []
    t = threading.Thread(target=lambda: got.append(buf.get()))
    t.start()
    while not (buf.cond._waiters or buf.loops >= 20):  # the consumer is inside get(), waiting or looping
        time.sleep(0.001)
    time.sleep(1.0)
    buf.put("late")
    t.join()
    return got
"""

GET = """
        with self.cond:
            while not self.items:
                self.cond.wait()  # WAIT
            item = self.items.popleft()
            self.cond.notify_all()
            return item
"""


def line_of(source: str, marker: str) -> int:
    return next(n for n, text in enumerate(textwrap.dedent(source).splitlines(), 1) if f"# {marker}" in text)


def buffer(get: str = GET) -> str:
    return BUFFER.format(get=get.strip("\n"))


def sandbox_run(
    tmp_path: Path, source: str, func: str, *, trace: tuple[str, ...] = (), watch: tuple[str, ...] = ()
) -> Run:
    path = tmp_path / "prims.py"
    path.write_text(textwrap.dedent(source))
    sandbox = Sandbox(path, "prims", start_method="spawn")
    action = {"kind": "call", "func": func, "args": wire.encode([]), "kwargs": wire.encode({})}
    raw = sandbox.run(action, timeout=30, trace=[*trace, *(f"@{w}" for w in watch)], probes=["locks"])
    run = Run(raw, label=f"{func}()", module_file="prims.py")
    assert run.ending() is None, run.ending()
    return run


def test_a_condition_buffer_every_access_under_its_lock_methods_traced(tmp_path: Path) -> None:
    source = buffer()
    run = sandbox_run(tmp_path, source, "run", trace=("BoundedBuffer.put", "BoundedBuffer.get"), watch=("BoundedBuffer",))
    assert run.value == sorted((p, i) for p in range(2) for i in range(30))
    (cond,) = [c for c in lock_creations(run).values() if c.kind == "Condition"]
    assert cond.line == line_of(source, "COND") and cond.func == "__init__"
    results = lockset(run, name="the buffer's items")
    assert [r.value.rpartition(".")[2] for r in results] == ["items"]  # capacity and loops: only read after set-up
    assert results[0].ok and results[0].common == frozenset({cond.key})
    uses = [a for a in accesses(run) if a.attribute == "items" and a.op == "use"]
    assert uses and {a.owner for a in uses} == {"BoundedBuffer#1"}
    assert max(a.size or 0 for a in uses) <= 3
    gets = run.calls("BoundedBuffer.get")
    assert len(gets) == 60 and {c.obj for c in gets} == {1} and all(c.args == () for c in gets)
    assert sorted(c.value for c in gets) == run.value
    puts = run.calls("BoundedBuffer.put")
    assert sorted(c.args[0] for c in puts) == run.value
    assert acquisitions(run, op="notify_all")


def test_an_access_outside_the_lock_and_an_overfull_buffer_are_seen(tmp_path: Path) -> None:
    get = """
        while not self.items:  # UNLOCKED
            time.sleep(0.001)
        with self.cond:
            item = self.items.popleft()
            self.cond.notify_all()
            return item
    """
    source = buffer(get).replace("while len(self.items) >= self.capacity:", "while len(self.items) > self.capacity:")
    run = sandbox_run(tmp_path, source, "fill_then_drain", watch=("BoundedBuffer.items",))
    assert run.value == [0, 1, 2, 3]  # the producer put capacity + 1 items before anyone took one
    (result,) = lockset(run, name="the buffer's items")
    assert result.problem is not None
    assert f"used the buffer's items at prims.py line {line_of(source, 'UNLOCKED')} holding no lock" in result.problem
    assert max(a.size or 0 for a in accesses(run)) == 4  # capacity 3, one more than allowed


def test_a_wait_releases_and_reacquires_the_conditions_lock_and_blocks(tmp_path: Path) -> None:
    source = buffer()
    run = sandbox_run(tmp_path, source, "get_waits", trace=("BoundedBuffer.get",))
    assert run.value == ["late"]
    (cond,) = [c.key for c in lock_creations(run).values() if c.kind == "Condition"]
    (get,) = run.calls("BoundedBuffer.get")
    condition_waits = [w for w in waits(run, get.pid, get.tid) if w.kind == "condition"]
    assert condition_waits and all(w.lock == cond and w.timeout is None for w in condition_waits)
    assert condition_waits[0].line == line_of(source, "WAIT")
    reacquired = [a for a in acquisitions(run) if a.lock == cond and a.line == line_of(source, "WAIT")]
    assert reacquired and (reacquired[0].pid, reacquired[0].tid) == (get.pid, get.tid)
    assert get.end is not None
    seen = activity(run, get.pid, get.tid, get.start, get.end)
    assert seen.blocked, seen.describe()
    assert seen.describe().startswith(f"waited (condition wait at prims.py line {line_of(source, 'WAIT')})")


def test_a_get_that_spins_or_polls_is_not_blocked(tmp_path: Path) -> None:
    spin = """
        while True:
            self.loops += 1
            with self.cond:
                if self.items:
                    return self.items.popleft()
    """
    poll = """
        while True:
            self.loops += 1
            with self.cond:
                if self.items:
                    return self.items.popleft()
            time.sleep(0.005)
    """
    for body in (spin, poll):
        run = sandbox_run(tmp_path, buffer(body), "get_waits", trace=("BoundedBuffer.get",), watch=("BoundedBuffer",))
        assert run.value == ["late"]
        (get,) = run.calls("BoundedBuffer.get")
        assert get.end is not None
        seen = activity(run, get.pid, get.tid, get.start, get.end)
        assert not seen.blocked, seen.describe()
        assert seen.operations >= 80  # 20 loops at least (4 operations each) before the item came
        assert seen.describe().startswith("kept running for ")


def test_a_timed_wait_in_a_loop_woken_by_notify_is_blocked(tmp_path: Path) -> None:
    timed = GET.replace("self.cond.wait()  # WAIT", "self.cond.wait(0.05)  # WAIT")
    run = sandbox_run(tmp_path, buffer(timed), "get_waits", trace=("BoundedBuffer.get",))
    (get,) = run.calls("BoundedBuffer.get")
    assert get.end is not None
    seen = activity(run, get.pid, get.tid, get.start, get.end)
    assert seen.blocked, seen.describe()
    assert {w.timeout for w in seen.waits} == {0.05}


PRIMITIVES = """
import threading
import time

shared = {"n": 0}


class Box:
    def __init__(self):
        self.n = 0


def semaphores():
    mutex = threading.BoundedSemaphore(1)  # MUTEX
    gate = threading.Semaphore(0)  # GATE
    box = Box()

    def work():
        gate.acquire()  # BLOCKS
        for _ in range(50):
            with mutex:
                box.n += 1  # ACCESS

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    while len(gate._cond._waiters) < 2:  # both workers are blocked on the gate
        time.sleep(0.001)
    gate.release(2)
    for t in threads:
        t.join()
    return box.n


def events_and_barriers():
    ready = threading.Event()  # EVENT
    barrier = threading.Barrier(2)  # BARRIER
    rlock = threading.RLock()  # RLOCK
    box = Box()

    def work():
        ready.wait()  # EVENT_WAIT
        barrier.wait()
        with rlock:
            with rlock:
                box.n += 1

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    ready.set()
    for t in threads:
        t.join()
    return box.n
"""


def test_semaphores_are_recorded_as_locks_with_their_value_and_their_blocking_acquire(tmp_path: Path) -> None:
    run = sandbox_run(tmp_path, PRIMITIVES, "semaphores", watch=("Box",))
    assert run.value == 100
    made = {c.line: c for c in lock_creations(run).values()}
    mutex, gate = made[line_of(PRIMITIVES, "MUTEX")], made[line_of(PRIMITIVES, "GATE")]
    assert (mutex.kind, mutex.initial, gate.kind, gate.initial) == ("BoundedSemaphore", 1, "Semaphore", 0)
    (result,) = lockset(run, name="box.n")
    assert result.ok and mutex.key in result.common
    blocked = [w for w in waits(run) if w.lock == gate.key]  # (the mutex may be waited for too, now and then)
    assert len(blocked) == 2 and {(w.kind, w.line) for w in blocked} == {("semaphore", line_of(PRIMITIVES, "BLOCKS"))}
    assert [a.count for a in acquisitions(run, op="release") if a.lock == gate.key] == [1]


def test_events_barriers_and_rlocks(tmp_path: Path) -> None:
    run = sandbox_run(tmp_path, PRIMITIVES, "events_and_barriers", watch=("Box",))
    assert run.value == 2
    kinds = {c.kind: c for c in lock_creations(run).values()}
    assert kinds["Barrier"].initial == 2 and kinds["RLock"].line == line_of(PRIMITIVES, "RLOCK")
    recorded = {w.kind for w in waits(run)}
    assert {"barrier", "join"} <= recorded
    assert [a.op for a in acquisitions(run, op="set")] == ["set"]
    rlock = kinds["RLock"].key
    assert sorted(a.reentry for a in acquisitions(run) if a.lock == rlock) == [False, False, True, True]
    (result,) = lockset(run, name="box.n")
    assert result.ok and result.common == frozenset({rlock})


HOT = """
import threading


class Box:
    def __init__(self):
        self.items = []


def hot():
    lock = threading.Lock()
    cond = threading.Condition()
    box = Box()

    def work():
        for i in range(20000):
            with lock:  # TAKE
                box.items.append(i)
                box.items.pop()
        with cond:
            for _ in range(1500):
                cond.wait(0)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(box.items)
"""


def test_a_hot_loop_is_counted_not_recorded_one_event_each(tmp_path: Path) -> None:
    run = sandbox_run(tmp_path, HOT, "hot", watch=("Box",))
    assert run.value == 0
    assert len(run.events) < 1500  # 80 000 accesses, 40 000 acquisitions, 3 000 waits
    taken = [a for a in acquisitions(run) if a.line == line_of(HOT, "TAKE")]
    assert [(a.count, a.held) for a in taken] == [(20000, frozenset())] * 2
    assert sum(a.count for a in accesses(run) if a.attribute == "items" and a.tid != run.caller_tid) == 80000
    recorded = waits(run)
    condition_waits = [w for w in recorded if w.kind == "condition"]
    assert sum(w.count for w in condition_waits) == 3000
    assert len(run.of("lk_wait")) == 1000  # one by one up to the limit (lock waits included), then summed
    assert run.of("lk_wait_summary")


SAME = """
import threading


def behaviour():
    seen = []
    for make in (threading.Lock, threading.RLock, threading.Semaphore, threading.BoundedSemaphore):
        obj = make()
        try:
            obj.acquire(False, 1)
        except ValueError as exc:
            seen.append(str(exc))
        seen.append([obj.acquire(False), obj.acquire(timeout=0.01)])
        try:
            for _ in range(3):
                obj.release()
        except (RuntimeError, ValueError) as exc:
            seen.append(type(exc).__name__)
    cond = threading.Condition(threading.Lock())
    try:
        cond.notify()
    except RuntimeError as exc:
        seen.append(str(exc))
    with cond:
        seen.append(cond.wait(0.01))
    event = threading.Event()
    seen.append([event.wait(0.01), event.is_set()])
    return seen
"""


def test_recorded_primitives_behave_as_the_real_ones(tmp_path: Path) -> None:
    namespace: dict[str, object] = {}
    exec(compile(textwrap.dedent(SAME), "same.py", "exec"), namespace)  # noqa: S102 - the grader's own test code
    expected = namespace["behaviour"]()  # type: ignore[operator]
    run = sandbox_run(tmp_path, SAME, "behaviour")
    made = sorted(c.kind for c in lock_creations(run).values())
    assert made == ["BoundedSemaphore", "Event", "Lock", "Lock", "RLock", "Semaphore"]  # all recorded ...
    assert run.value == wire.decode(wire.encode(expected))  # ... and all behave as without the probe


CROSSED = """
import multiprocessing
import threading
import time


def take(first, second, meet):
    with first:  # FIRST
        meet.wait()
        with second:  # SECOND
            pass


def crossed():
    a, b = threading.Lock(), threading.Lock()
    meet = threading.Barrier(2)
    threads = [threading.Thread(target=take, args=(*pair, meet)) for pair in ((a, b), (b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Meet:
    def __init__(self, end):
        self.end = end

    def wait(self):  # each side sends, then receives: both hold their first lock when either goes on
        self.end.send("here")
        self.end.recv()


def crossed_processes():
    ctx = multiprocessing.get_context("spawn")
    a, b = ctx.Lock(), ctx.Lock()
    ends = ctx.Pipe()
    procs = [ctx.Process(target=take, args=(*pair, Meet(end))) for pair, end in zip(((a, b), (b, a)), ends)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


def waits_then_gets():
    lock = threading.Lock()
    cond = threading.Condition(threading.RLock())
    taken, woken = threading.Event(), []

    def holder():
        with lock:
            taken.set()
            time.sleep(0.3)

    def notifier():
        with cond:
            cond.notify()
            time.sleep(0.3)  # the waiter, woken, waits to take the Condition's lock back

    t = threading.Thread(target=holder)
    t.start()
    taken.wait()
    with lock:  # WAITED
        pass
    t.join()
    with cond:
        with cond:
            t = threading.Thread(target=notifier)
            t.start()
            woken.append(cond.wait(5))  # REACQUIRED
        woken.append(cond._is_owned())  # still held once: the wait gave back both levels
    woken.append(cond._is_owned())
    t.join()
    return woken
"""


def stopped_run(tmp_path: Path, func: str) -> Run:
    path = tmp_path / "prims.py"
    path.write_text(textwrap.dedent(CROSSED))
    sandbox = Sandbox(path, "prims", start_method="spawn")
    action = {"kind": "call", "func": func, "args": wire.encode([]), "kwargs": wire.encode({})}
    raw = sandbox.run(action, timeout=30, probes=["locks"])
    return Run(raw, label=f"{func}()", module_file="prims.py")


def test_a_deadlock_leaves_its_attempts_the_lock_order_cycle_and_the_circle_by_line(tmp_path: Path) -> None:
    first, second = line_of(CROSSED, "FIRST"), line_of(CROSSED, "SECOND")
    for func in ("crossed", "crossed_processes"):
        run = stopped_run(tmp_path, func)
        ending = run.ending()
        assert ending is not None and "deadlocked" in ending.observed, (func, ending)
        waiting = [a for a in attempts(run) if not a.ended]
        assert sorted(a.line for a in waiting) == [second, second] and all(len(a.held) == 1 for a in waiting)
        (cycle,) = order_cycles(run)
        assert all(edge.waiting and edge.line == second for edge in cycle.edges), func
        assert len({edge.pid for edge in cycle.edges}) == (2 if func == "crossed_processes" else 1)
        blocked = blocked_cycle(run)
        assert blocked is not None and len(blocked.steps) == 2
        text = blocked.describe(run)
        assert text.count(f"(taken at prims.py line {first}) and waits for ") == 2, text
        assert text.count(f" at prims.py line {second}, which ") == 2, text


def test_a_wait_that_ends_is_an_attempt_with_its_end_and_a_condition_gets_back_every_level(tmp_path: Path) -> None:
    run = stopped_run(tmp_path, "waits_then_gets")
    assert run.ending() is None, run.ending()
    assert run.value == [True, True, False]
    by_line = {a.line: a for a in attempts(run)}
    waited, reacquired = by_line[line_of(CROSSED, "WAITED")], by_line[line_of(CROSSED, "REACQUIRED")]
    assert waited.ended and waited.got and waited.held == frozenset()
    assert reacquired.ended and reacquired.got
    assert blocked_cycle(run) is None and order_cycles(run) == []

"""The evidence schema: probe names and event kinds, the one list both sides import.

Plain data that imports nothing. The probes of this package run in the
student's processes and import it relatively (``from . import events``); the
trusted side, in the pytest process, imports it as ``grader.inside.events`` to
read the events back by the same names and to refuse a probe or event kind
that does not exist before any sandbox starts.

Every event is one JSON object with ``ev`` (its kind, below), ``pid``, ``tid``,
``t`` and ``seq`` (1, 2, 3 ... in each process; ``lost``: writes that failed
just before it), plus the fields of its kind.
"""

from __future__ import annotations

# -- probes a check asks for with ``probes=[...]`` ----------------------------------
# (output, processes, threads, trace and stacks are installed in every run.)
PROBE_LOCKS = "locks"
"""probe_locks: reads and writes of shared values, with the locks held at each; lock creation sites."""
PROBE_RACE = "race"
"""probe_locks: ``locks``, and race windows widened so that a missing or unshared lock loses updates."""
PROBE_POOLS = "pools"
"""probe_pools: the life of every ``multiprocessing.Pool``."""
PROBE_PIPE_OPS = "pipe_ops"
"""probe_pipes: every ``send``/``recv`` on a ``multiprocessing`` connection."""
PROBE_PACED_PRODUCER = "paced_producer"
"""probe_queues: the student's producer waits for a reader, then 0.05 s before each put."""
PROBE_SLOW_PRODUCER = "slow_producer"
"""probe_queues: the same with 0.2 s before each put."""
PROBE_THREAD_LIFETIMES = "thread_lifetimes"
"""probe_threads: every thread records when it begins and ends."""
PROBE_MODULE_GLOBALS = "module_globals"
"""probe_threads: each child process records the student's module globals when it ends."""
PROBE_CLOSE_CYCLES = "close_cycles"
"""probe_pause: ``locks``, and a thread about to take a lock while holding another pauses until every other thread
is paused or waiting, so that a lock-order cycle that can close does."""
PROBE_LATE_WAKEUPS = "late_wakeups"
"""probe_pause: ``locks``, and a thread woken in a ``Condition.wait`` takes the lock back only once every other thread
is paused or waiting (the woken ones in the order they woke), so that another thread runs first and can take what the
notify announced."""
PROBE_UNLOCKED_USES = "unlocked_uses"
"""probe_pause: ``locks``, and a thread about to use a watched container (``watch=``) holding no lock pauses first
until every other thread is paused or waiting (10 times per thread at most), so that a check and an act split across
the lock (room seen under it, the append after it) let the other threads in between on every run."""
PROBE_FUTURES = "futures"
"""probe_futures: tasks of ``concurrent.futures`` executors (worker, times, exception) and their shutdown."""

PROBES = frozenset(
    {
        PROBE_LOCKS,
        PROBE_RACE,
        PROBE_POOLS,
        PROBE_PIPE_OPS,
        PROBE_PACED_PRODUCER,
        PROBE_SLOW_PRODUCER,
        PROBE_THREAD_LIFETIMES,
        PROBE_MODULE_GLOBALS,
        PROBE_FUTURES,
        PROBE_CLOSE_CYCLES,
        PROBE_LATE_WAKEUPS,
        PROBE_UNLOCKED_USES,
    }
)
"""Every probe name a check may ask for."""

PROBE_MODULES = {
    PROBE_LOCKS: "probe_locks",
    PROBE_RACE: "probe_locks",
    PROBE_POOLS: "probe_pools",
    PROBE_PIPE_OPS: "probe_pipes",
    PROBE_PACED_PRODUCER: "probe_queues",
    PROBE_SLOW_PRODUCER: "probe_queues",
    PROBE_THREAD_LIFETIMES: "probe_threads",
    PROBE_MODULE_GLOBALS: "probe_threads",
    PROBE_FUTURES: "probe_futures",
    PROBE_CLOSE_CYCLES: "probe_pause",
    PROBE_LATE_WAKEUPS: "probe_pause",
    PROBE_UNLOCKED_USES: "probe_pause",
}
"""The module of this package that registers each probe: a process imports only those of its probes (each import
costs every process of the run, ``spawn`` children included; ``probe_futures`` alone imports ``concurrent.futures``)."""

PROBE_IMPORTS = {
    "probe_locks": ("multiprocessing.synchronize", "multiprocessing.sharedctypes", "grader_inside.probe_sync",
                    "grader_inside.probe_values"),
    "probe_pause": ("multiprocessing.synchronize", "multiprocessing.sharedctypes", "grader_inside.probe_sync",
                    "grader_inside.probe_values"),
    "probe_pools": ("multiprocessing.pool",),
    "probe_pipes": ("multiprocessing.connection",),
    "probe_queues": ("multiprocessing.queues",),
    "probe_futures": ("concurrent.futures.process", "concurrent.futures.thread"),
    "probe_threads": (),
}
"""What each probe module's ``install`` imports (``probes.preload``): the first process imports it before its guard,
where the fork server has it loaded already and its ``spawn`` children's zygote inherits it.
``tests/test_fork_server.py`` holds this table complete."""

# -- event kinds (the ``ev`` field) ---------------------------------------------------
# always recorded (probes.py, runner.py)
PROC = "proc"  # a Python process of the sandbox started the probes: role, ppid, argv0
OUT = "out"  # one printed line: stream, text, thread
PHASE = "phase"  # the runner's progress in the first process: name (see PHASE_*), func
MP_START = "mp_start"  # a multiprocessing process started: child, name, target, cls, daemon
MP_JOIN = "mp_join"  # join() returned: child, exitcode, alive, since
TH_START = "th_start"  # a threading.Thread started: ident, obj, native, name, target, cls, daemon
TH_JOIN = "th_join"  # Thread.join() returned: ident, obj, name, alive, since
TH_ERROR = "th_error"  # a thread ended with an exception (threading.excepthook): ident, name, error (its type's
#                        name), message, file, line, func (the innermost frame of the student's code, if any)
ENTER = "enter"  # a traced function or method ("Class.method") was called: func, call, args, kwargs, thread,
#                  thread_no (threads numbered per process as they first call a traced function; idents are
#                  reused), obj (a method's instance number), locks (held, with probe "locks")
EXIT = "exit"  # a traced call ended: func, call, result or error
SEAL = "seal"  # the last event of a process that ended normally: count (its events, this one included)
TAMPER = "tamper"  # guard.py refused the student's code something (audit, why, file, line), or a probe saw
#                    a function the evidence relies on replaced (audit "replaced")
# probe_threads
TH_BEGIN = "th_begin"  # a thread began running: ident, name
TH_END = "th_end"  # a thread ended: ident, name
GLOBALS = "globals"  # a child's module globals as it ended: module, values
# probe_locks
LK_ACCESS = "lk_access"  # first access of its kind: value, op, locks, own, file, line, func, student, v, size, name
#                          (value "attr:PID:Class#N.attr" for a watched attribute; op "read"/"write"/"use")
LK_SUMMARY = "lk_summary"  # counts of one kind of access: ... thread, count, first, last
#   (lk_access and lk_summary with varied: true count together the accesses of one site under many sets of locks:
#    locks are those held at every one of them; the summary's distinct, the thread's different locks on the value)
LK_NEW = "lk_new"  # a lock was created: key, lock, file, line, func, student
LK_NEW_UNRECORDED = "lk_new_unrecorded"  # locks created past the recording limit: count
#   (lk_new also for threading primitives the student created: key "th:PID:N", lock "Lock"/"RLock"/"Condition"/
#    "Semaphore"/"BoundedSemaphore"/"Event"/"Barrier", index (nth made at that line), initial (a semaphore's value))
LK_OP = "lk_op"  # first operation of its kind on a lock: op ("acquire", "notify", "notify_all", "set", "clear",
#                  "release" of a semaphore), lock, held (keys held before), mode ("block"/"try"/"timeout"),
#                  reentry, file, line, func, student, thread_no (threads numbered per process), name (thread's),
#                  free_under (locks held without a break since this thread saw the lock free with locked())
LK_OP_SUMMARY = "lk_op_summary"  # counts of one kind of operation: ... thread, count, first, last
LK_WAIT = "lk_wait"  # a wait ended: wait ("condition"/"event"/"semaphore"/"barrier"/"lock"), lock, start,
#                      timeout, ok, file, line, func, student
LK_WAIT_SUMMARY = "lk_wait_summary"  # waits past the per-process limit: ... thread, timed, count, seconds, first, last
LK_WANT = "lk_want"  # an acquisition still waiting after probe_wants.WANT_AFTER: phase "start" with want (its
#                      number in the process), lock, held, mode, file, line, func, student, thread_no, name; then
#                      phase "end" with want and ok when the acquire returned (never, in a run that deadlocked)
LK_PAUSE = "lk_pause"  # probe close_cycles: a pause before a lock taken while holding others ended (late_wakeups:
#                        before a woken Condition.wait took its lock back; unlocked_uses: before a watched container
#                        was used holding no lock, its lock the attribute's key "attr:..."): lock, held,
#                        file, line, func, outcome ("quiet": every other thread paused or waiting; "limit";
#                        "spent": the thread's budget was used up), seconds, thread_no
LK_DROPPED = "lk_dropped"  # records not kept past a limit: what, count
# probe_futures
FUT_NEW = "fut_new"  # an executor was created: executor, worker_kind ("threads"/"processes"), max_workers, file, line
FUT_SUBMIT = "fut_submit"  # a task was submitted: executor, task, fn
FUT_TASK = "fut_task"  # a task ran: phase ("start"/"end"), executor, task, fn, error
FUT_SHUTDOWN = "fut_shutdown"  # shutdown() was called: executor, wait, cancel
# probe_pools
POOL_NEW = "pool_new"  # pool, worker_kind, cls, processes, workers
POOL_CLOSE = "pool_close"  # pool
POOL_TERMINATE = "pool_terminate"  # pool
POOL_JOIN = "pool_join"  # pool
POOL_UNCLOSED = "pool_unclosed"  # the pool was garbage-collected while running: pool
POOL_MARK = "pool_mark"  # probe_pools.mark(label) in a driver: label
POOL_TASK = "pool_task"  # the grader's task: phase ("start"/"end"), item, thread, error, waits
# probe_pipes
PIPE = "pipe"  # op ("send", "recv", "eof"), conn, what, thread
# probe_queues
QUEUE_READER = "queue_reader"  # a reader of a queue started
QUEUE_PACED = "queue_paced"  # a put was slowed: delay, waited

KINDS = frozenset(
    {
        PROC, OUT, PHASE, MP_START, MP_JOIN, TH_START, TH_JOIN, TH_ERROR, ENTER, EXIT, SEAL, TAMPER,
        TH_BEGIN, TH_END, GLOBALS,
        LK_ACCESS, LK_SUMMARY, LK_NEW, LK_NEW_UNRECORDED, LK_OP, LK_OP_SUMMARY, LK_WAIT, LK_WAIT_SUMMARY, LK_WANT,
        LK_DROPPED, LK_PAUSE,
        FUT_NEW, FUT_SUBMIT, FUT_TASK, FUT_SHUTDOWN,
        POOL_NEW, POOL_CLOSE, POOL_TERMINATE, POOL_JOIN, POOL_UNCLOSED, POOL_MARK, POOL_TASK,
        PIPE,
        QUEUE_READER, QUEUE_PACED,
    }
)
"""Every event kind a probe records."""

# -- names of the runner's phases (``phase`` events) ----------------------------------
PHASE_IMPORT = "import"
PHASE_IMPORTED = "imported"
PHASE_CALL = "call"
PHASE_RETURN = "return"

# -- names in a scenario's ``trace`` list ---------------------------------------------
WATCH_MARK = "@"
"""A ``trace`` entry ``"@Class"`` or ``"@Class.attr"`` watches instance attributes (``watch=`` of a run)."""

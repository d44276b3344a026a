"""The concurrency mutation operators: the classic mistakes of the course, as ast transforms.

Each operator is a plain function ``operator(tree) -> Iterator[Site]`` (see
:mod:`grader.mutation.sites`) yielding one site per place it applies to. :data:`OPERATORS` lists
them in the order mutants are reported. An instructor adds their own in the assignment folder
(``mutants.py``, see docs/authoring.md).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator

from grader.mutation.sites import (
    Site,
    become,
    callee,
    calls,
    expr_of,
    functions,
    insert_import,
    is_lockish,
    lock_factory,
    method_call,
    splice,
    statements,
    with_load,
)

__all__ = ["OPERATORS", "Operator"]

Operator = Callable[[ast.Module], Iterator[Site]]

SENDS = ("put", "put_nowait", "send")
RECEIVES = ("get", "get_nowait", "recv")
WORKERS = ("Process", "Thread")
POOLS = ("Pool", "ThreadPool", "ProcessPoolExecutor", "ThreadPoolExecutor")
PARAMETER_CONSTANTS: dict[str, object] = {"delay": 2, "times": 1000, "count": 10, "workers": 4, "n": 10}
"""The constant a parameter is replaced by when it has no plain default of its own."""


# -- locks -----------------------------------------------------------------------------------
def remove_lock(tree: ast.Module) -> Iterator[Site]:
    """``with lock:`` runs its body without the lock; ``lock.acquire()`` / ``lock.release()`` removed."""
    for body, stmt in statements(tree):
        if isinstance(stmt, ast.With) and any(is_lockish(i.context_expr) for i in stmt.items):

            def unwrap(body: list[ast.stmt] = body, stmt: ast.With = stmt) -> None:
                stmt.items = [i for i in stmt.items if not is_lockish(i.context_expr)]
                if not stmt.items:
                    splice(body, stmt, stmt.body)

            yield Site(stmt, unwrap, "the block runs without taking the lock")
    for func in functions(tree):
        found = [(b, s, c) for b, s in statements(func) if (c := method_call(s, "acquire")) and is_lockish(c.func.value)]  # type: ignore[attr-defined]
        for receiver in sorted({ast.unparse(c.func.value) for _, _, c in found}):  # type: ignore[attr-defined]

            def drop(func: ast.AST = func, receiver: str = receiver) -> None:
                for body, stmt in statements(func):
                    call = method_call(stmt, "acquire", "release")
                    if call is not None and ast.unparse(call.func.value) == receiver:  # type: ignore[attr-defined]
                        splice(body, stmt, [])

            yield Site(next(s for _, s, c in found if ast.unparse(c.func.value) == receiver), drop, "acquire/release removed")  # type: ignore[attr-defined]


def lock_per_call(tree: ast.Module) -> Iterator[Site]:
    """A function that takes the lock as a parameter makes its own instead (one lock per call)."""
    factory = lock_factory(tree)
    if factory is None:
        return
    for func in functions(tree):
        params = {a.arg for a in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]}
        used = {
            n.id for n in ast.walk(func) if isinstance(n, ast.Name) and n.id in params and is_lockish(n)
        }
        for name in sorted(used):

            def fresh(func: ast.FunctionDef | ast.AsyncFunctionDef = func, name: str = name) -> None:
                func.body.insert(0, ast.Assign(targets=[ast.Name(name, ast.Store())], value=copy.deepcopy(factory), lineno=0))

            yield Site(func, fresh, f"{name} is a new lock in every call")


def lock_per_worker(tree: ast.Module) -> Iterator[Site]:
    """Each worker gets a lock of its own instead of the shared one."""
    factory = lock_factory(tree)
    if factory is None:
        return
    for call in calls(tree, *WORKERS):
        for keyword in call.keywords:
            if keyword.arg == "args" and isinstance(keyword.value, (ast.Tuple, ast.List)):
                for index, element in enumerate(keyword.value.elts):
                    if is_lockish(element):

                        def own(elts: list[ast.expr] = keyword.value.elts, index: int = index) -> None:
                            elts[index] = copy.deepcopy(factory)

                        yield Site(call, own, "each worker gets its own lock")


def release_before_write(tree: ast.Module) -> Iterator[Site]:
    """The lock is held while reading, released before the write (``x += 1`` split around the release)."""
    for body, stmt in statements(tree):
        if not (isinstance(stmt, ast.With) and any(is_lockish(i.context_expr) for i in stmt.items)):
            continue
        writes = [
            i for i, s in enumerate(stmt.body)
            if isinstance(s, ast.AugAssign) or (isinstance(s, ast.Assign) and not isinstance(s.targets[0], ast.Name))
        ]
        if writes:

            def split(body: list[ast.stmt] = body, stmt: ast.With = stmt, at: int = writes[0]) -> None:
                write, after = stmt.body[at], stmt.body[at + 1 :]
                if isinstance(write, ast.AugAssign):
                    read = ast.Assign(targets=[ast.Name("_read", ast.Store())], value=with_load(write.target), lineno=0)
                    stmt.body[at:] = [read]
                    value = ast.BinOp(ast.Name("_read", ast.Load()), write.op, write.value)
                    write = ast.Assign(targets=[write.target], value=value, lineno=0)
                else:
                    stmt.body[at:] = [] if at else [ast.Pass()]
                index = next(i for i, s in enumerate(body) if s is stmt)
                body[index + 1 : index + 1] = [write, *after]

            yield Site(stmt.body[writes[0]], split, "the write happens after the lock is released")


# -- starting and joining ----------------------------------------------------------------------
def join_in_start_loop(tree: ast.Module) -> Iterator[Site]:
    """Each worker is joined right after it starts, in the start loop (so they run one at a time)."""
    for loop in ast.walk(tree):
        if isinstance(loop, (ast.For, ast.While)):
            for stmt in loop.body:
                call = method_call(stmt, "start")
                if call is not None:

                    def join(loop: ast.For | ast.While = loop, stmt: ast.stmt = stmt, call: ast.Call = call) -> None:
                        index = loop.body.index(stmt)
                        receiver = ast.unparse(call.func.value)  # type: ignore[attr-defined]
                        loop.body.insert(index + 1, ast.parse(f"{receiver}.join()").body[0])

                    yield Site(stmt, join, "join() right after start(), inside the loop")


def remove_join(tree: ast.Module) -> Iterator[Site]:
    """A ``join()`` is left out."""
    for body, stmt in statements(tree):
        call = method_call(stmt, "join")
        if call is not None and not isinstance(call.func.value, ast.Constant):  # type: ignore[attr-defined]

            def drop(body: list[ast.stmt] = body, stmt: ast.stmt = stmt) -> None:
                splice(body, stmt, [])

            yield Site(stmt, drop, "join() removed")


def daemon_not_joined(tree: ast.Module) -> Iterator[Site]:
    """Workers are daemons and are never joined."""
    for func in functions(tree):
        for call in calls(func, *WORKERS):

            def daemon(func: ast.AST = func, call: ast.Call = call) -> None:
                call.keywords = [k for k in call.keywords if k.arg != "daemon"]
                call.keywords.append(ast.keyword("daemon", ast.Constant(True)))
                for body, stmt in statements(func):
                    if method_call(stmt, "join") is not None:
                        splice(body, stmt, [])

            yield Site(call, daemon, "daemon=True and no join()")


def _swap_worker(tree: ast.Module, old: str, module: str, new: str) -> Iterator[Site]:
    for call in calls(tree, old):

        def swap(call: ast.Call = call) -> None:
            call.func = ast.Attribute(ast.Name(module, ast.Load()), new, ast.Load())
            insert_import(tree, f"import {module}")

        yield Site(call, swap, f"{module}.{new} instead of {old}")


def process_to_thread(tree: ast.Module) -> Iterator[Site]:
    """A ``Process`` becomes a ``threading.Thread``."""
    return _swap_worker(tree, "Process", "threading", "Thread")


def thread_to_process(tree: ast.Module) -> Iterator[Site]:
    """A ``Thread`` becomes a ``multiprocessing.Process``."""
    return _swap_worker(tree, "Thread", "multiprocessing", "Process")


# -- pools -------------------------------------------------------------------------------------
def _pool_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                pool = isinstance(item.context_expr, ast.Call) and callee(item.context_expr) in POOLS
                if pool and isinstance(item.optional_vars, ast.Name):
                    names.add(item.optional_vars.id)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and callee(node.value) in POOLS:
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def pool_to_sequential(tree: ast.Module) -> Iterator[Site]:
    """``pool.map(f, items)`` becomes ``list(map(f, items))`` in the caller's process."""
    pools = _pool_names(tree)
    for call in calls(tree, "map", "imap", "imap_unordered"):
        receiver = call.func.value  # type: ignore[attr-defined]
        if isinstance(receiver, ast.Name) and receiver.id in pools and len(call.args) >= 2:

            def sequential(call: ast.Call = call) -> None:
                call.func = ast.Name("map", ast.Load())
                call.args, call.keywords = call.args[:2], []
                inner = copy.copy(call)
                call.func, call.args = ast.Name("list", ast.Load()), [inner]

            yield Site(call, sequential, "the map runs in the caller, one item after another")


def pool_not_closed(tree: ast.Module) -> Iterator[Site]:
    """The pool is never closed (``with Pool() as p:`` becomes ``p = Pool()``; ``p.close()`` removed)."""
    pools = _pool_names(tree)
    for body, stmt in statements(tree):
        if isinstance(stmt, ast.With) and len(stmt.items) == 1:
            item = stmt.items[0]
            target = item.optional_vars
            if isinstance(item.context_expr, ast.Call) and callee(item.context_expr) in POOLS and target is not None:

                def unwrap(body: list[ast.stmt] = body, stmt: ast.With = stmt, item: ast.withitem = item) -> None:
                    assign = ast.Assign(targets=[item.optional_vars or ast.Name("_")], value=item.context_expr, lineno=0)
                    splice(body, stmt, [assign, *stmt.body])

                yield Site(stmt, unwrap, "the pool is never closed or joined")
        call = method_call(stmt, "close", "terminate")
        if call is not None and ast.unparse(call.func.value) in pools:  # type: ignore[attr-defined]

            def drop(body: list[ast.stmt] = body, stmt: ast.stmt = stmt) -> None:
                splice(body, stmt, [])

            yield Site(stmt, drop, "the pool is never closed")


# -- queues, pipes and sentinels --------------------------------------------------------------------
def _sentinels(tree: ast.Module) -> set[str]:
    """Module-level names bound to ``None`` or ``object()`` (``SENTINEL = None``)."""
    names: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and (
            (isinstance(stmt.value, ast.Constant) and stmt.value.value is None)
            or (isinstance(stmt.value, ast.Call) and callee(stmt.value) == "object")
        ):
            names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
    return names


def _is_sentinel(expr: ast.expr, sentinels: set[str]) -> bool:
    return (isinstance(expr, ast.Constant) and expr.value is None) or (isinstance(expr, ast.Name) and expr.id in sentinels)


def _sentinel_sends(tree: ast.Module) -> Iterator[tuple[list[ast.stmt], ast.stmt]]:
    sentinels = _sentinels(tree)
    for body, stmt in statements(tree):
        call = method_call(stmt, *SENDS)
        if call is not None and len(call.args) == 1 and _is_sentinel(call.args[0], sentinels):
            yield body, stmt


def sentinel_not_sent(tree: ast.Module) -> Iterator[Site]:
    """The end-of-data sentinel (``None`` or a module's ``SENTINEL``) is never sent."""
    for body, stmt in _sentinel_sends(tree):

        def drop(body: list[ast.stmt] = body, stmt: ast.stmt = stmt) -> None:
            splice(body, stmt, [])

        yield Site(stmt, drop, "the sentinel is not sent")


def sentinel_sent_twice(tree: ast.Module) -> Iterator[Site]:
    """The sentinel is sent twice."""
    for body, stmt in _sentinel_sends(tree):

        def twice(body: list[ast.stmt] = body, stmt: ast.stmt = stmt) -> None:
            splice(body, stmt, [stmt, copy.deepcopy(stmt)])

        yield Site(stmt, twice, "the sentinel is sent twice")


def stop_at_falsy(tree: ast.Module) -> Iterator[Site]:
    """``item is SENTINEL`` becomes ``not item``: the consumer stops at the first falsy item (0, '', [])."""
    sentinels = _sentinels(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.While)) and isinstance(node.test, ast.Compare):
            test = node.test
            if len(test.ops) == 1 and _is_sentinel(test.comparators[0], sentinels):
                positive = isinstance(test.ops[0], (ast.Is, ast.Eq))
                if positive or isinstance(test.ops[0], (ast.IsNot, ast.NotEq)):

                    def falsy(node: ast.If | ast.While = node, positive: bool = positive) -> None:
                        left = node.test.left  # type: ignore[attr-defined]
                        node.test = ast.UnaryOp(ast.Not(), left) if positive else left

                    yield Site(node.test, falsy, "stops at the first falsy item")


def _simple(stmt: ast.stmt, methods: tuple[str, ...]) -> bool:
    """A simple statement (no block) that calls one of ``methods``."""
    if not isinstance(stmt, (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign)):
        return False
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in methods for n in ast.walk(stmt))


def put_get_swapped(tree: ast.Module) -> Iterator[Site]:
    """A send (put) and the receive (get) right after it change places, or the reverse."""
    for body, stmt in statements(tree):
        index = body.index(stmt)
        if index + 1 < len(body):
            following = body[index + 1]
            if (_simple(stmt, SENDS) and _simple(following, RECEIVES)) or (_simple(stmt, RECEIVES) and _simple(following, SENDS)):

                def swap(body: list[ast.stmt] = body, index: int = index) -> None:
                    body[index], body[index + 1] = body[index + 1], body[index]

                yield Site(stmt, swap, "send and receive swapped")


def replies_all_at_once(tree: ast.Module) -> Iterator[Site]:
    """A loop that sends then receives is split: every message is sent first, the replies received after."""
    for body, loop in statements(tree):
        if not isinstance(loop, ast.For) or not isinstance(loop.iter, (ast.Name, ast.Attribute)):
            continue
        sends = [i for i, s in enumerate(loop.body) if _simple(s, SENDS)]
        receives = [i for i, s in enumerate(loop.body) if _simple(s, RECEIVES)]
        if sends and receives and sends[0] < receives[0]:

            def split(body: list[ast.stmt] = body, loop: ast.For = loop, at: int = receives[0]) -> None:
                second = copy.deepcopy(loop)
                loop.body, second.body = loop.body[:at], second.body[at:]
                splice(body, loop, [loop, second])

            yield Site(loop, split, "all messages sent before any reply is received")


# -- results -----------------------------------------------------------------------------------
def _list_names(func: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.ListComp)):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _list_returns(tree: ast.Module) -> Iterator[ast.Return]:
    for func in functions(tree):
        lists = _list_names(func)
        for node in ast.walk(func):
            if isinstance(node, ast.Return) and node.value is not None:
                value = node.value
                if (isinstance(value, ast.Name) and value.id in lists) or (
                    isinstance(value, ast.Call) and callee(value) in ("map", "starmap", "list")
                ):
                    yield node


def _wrap_returns(tree: ast.Module, template: str, what: str, helper: str = "") -> Iterator[Site]:
    for node in _list_returns(tree):

        def wrap(node: ast.Return = node) -> None:
            node.value = expr_of(template.format(value=ast.unparse(node.value)))  # type: ignore[arg-type]
            if helper:
                insert_import(tree, helper)

        yield Site(node, wrap, what)


SORTED_HELPER = """
def _sorted_when_comparable(items):
    try:
        return sorted(items)
    except TypeError:
        return items
"""


def results_sorted(tree: ast.Module) -> Iterator[Site]:
    """The returned list is sorted whenever its items can be compared (left alone when they cannot)."""
    return _wrap_returns(tree, "_sorted_when_comparable(list({value}))", "the results are sorted when they can be", SORTED_HELPER)


def results_reversed(tree: ast.Module) -> Iterator[Site]:
    """The returned list is reversed."""
    return _wrap_returns(tree, "list(reversed({value}))", "the results are reversed")


def results_deduplicated(tree: ast.Module) -> Iterator[Site]:
    """Repeated items are dropped from the returned list."""
    template = "(lambda v: [x for i, x in enumerate(v) if x not in v[:i]])(list({value}))"
    return _wrap_returns(tree, template, "repeated results are dropped")


# -- values ------------------------------------------------------------------------------------
def _constant_for(arg: ast.arg, default: ast.expr | None) -> object:
    if isinstance(default, ast.Constant) and default.value is not None:
        return default.value
    return PARAMETER_CONSTANTS.get(arg.arg, ...)


def _defaults(func: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, ast.expr | None]:
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    found = {a.arg: d for a, d in zip(positional, defaults)}
    found.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults)})
    return found


def constant_for_parameter(tree: ast.Module) -> Iterator[Site]:
    """Every use of a parameter (delay, times, workers, ...) is replaced by a constant."""
    for func in functions(tree):
        defaults = _defaults(func)
        identity = (ast.Is, ast.IsNot)
        compared = {id(c.left) for c in ast.walk(func) if isinstance(c, ast.Compare) and isinstance(c.ops[0], identity)}
        for arg in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]:
            value = _constant_for(arg, defaults[arg.arg])
            uses = [
                n for n in ast.walk(func)
                if isinstance(n, ast.Name) and n.id == arg.arg and isinstance(n.ctx, ast.Load) and id(n) not in compared
            ]
            if value is ... or not uses:
                continue

            def fix(uses: list[ast.Name] = uses, value: object = value) -> None:
                for use in uses:
                    become(use, ast.Constant(value))  # type: ignore[arg-type]

            yield Site(uses[0], fix, f"{arg.arg} replaced by {value!r}")


def default_changed(tree: ast.Module) -> Iterator[Site]:
    """A default argument value is changed (a number + 1, ``None`` to 1, a flag negated)."""
    for func in functions(tree):
        for name, default in _defaults(func).items():
            if not isinstance(default, ast.Constant):
                continue
            value = default.value
            if isinstance(value, bool):
                changed: object = not value
            elif isinstance(value, (int, float)):
                changed = value + 1
            elif value is None:
                changed = 1
            elif isinstance(value, str):
                changed = value + "x"
            else:
                continue

            def change(default: ast.Constant = default, changed: object = changed) -> None:
                default.value = changed  # type: ignore[assignment]

            yield Site(default, change, f"default of {name} changed to {changed!r}")


def random_fixed(tree: ast.Module) -> Iterator[Site]:
    """A random choice is fixed: ``randint(a, b)`` and ``uniform(a, b)`` give ``a``, ``choice(s)`` ``s[0]``."""
    for call in calls(tree, "randint", "uniform", "randrange", "choice", "random"):
        if callee(call) == "random" and call.args:
            continue
        if callee(call) == "choice" and call.args:
            template = f"({ast.unparse(call.args[0])})[0]"
        elif callee(call) == "random":
            template = "0.5"
        elif call.args:
            template = ast.unparse(call.args[0])
        else:
            continue

        def fix(call: ast.Call = call, template: str = template) -> None:
            become(call, expr_of(template))

        yield Site(call, fix, f"always {template}")


def range_off_by_one(tree: ast.Module) -> Iterator[Site]:
    """``range(n)`` loses its last value: ``range(n - 1)``."""
    for call in calls(tree, "range"):
        if isinstance(call.func, ast.Name) and 1 <= len(call.args) <= 2:

            def shorten(call: ast.Call = call) -> None:
                stop = 0 if len(call.args) == 1 else 1
                call.args[stop] = ast.BinOp(call.args[stop], ast.Sub(), ast.Constant(1))

            yield Site(call, shorten, "range stops one early")


def output_text(tree: ast.Module) -> Iterator[Site]:
    """Printed text changed: the last character of a ``print`` call's text is dropped."""
    for call in calls(tree, "print"):
        if not call.args:
            continue
        first = call.args[0]
        parts = [first] if isinstance(first, ast.Constant) else getattr(first, "values", [])
        texts = [p for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str) and p.value]
        if texts:

            def change(part: ast.Constant = texts[-1]) -> None:
                part.value = str(part.value)[:-1]

            yield Site(call, change, "the printed text differs")


OPERATORS: dict[str, Operator] = {
    "remove_lock": remove_lock,
    "lock_per_call": lock_per_call,
    "lock_per_worker": lock_per_worker,
    "release_before_write": release_before_write,
    "join_in_start_loop": join_in_start_loop,
    "remove_join": remove_join,
    "daemon_not_joined": daemon_not_joined,
    "process_to_thread": process_to_thread,
    "thread_to_process": thread_to_process,
    "pool_to_sequential": pool_to_sequential,
    "pool_not_closed": pool_not_closed,
    "sentinel_not_sent": sentinel_not_sent,
    "sentinel_sent_twice": sentinel_sent_twice,
    "stop_at_falsy": stop_at_falsy,
    "put_get_swapped": put_get_swapped,
    "replies_all_at_once": replies_all_at_once,
    "results_sorted": results_sorted,
    "results_reversed": results_reversed,
    "results_deduplicated": results_deduplicated,
    "constant_for_parameter": constant_for_parameter,
    "default_changed": default_changed,
    "random_fixed": random_fixed,
    "range_off_by_one": range_off_by_one,
    "output_text": output_text,
}
"""The built-in operators by name, in the order their mutants are reported."""

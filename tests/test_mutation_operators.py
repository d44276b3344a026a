"""The mutation operators of `grader mutants`, each on small sources: the mutant it makes, and where it does not apply.

Every mutant must compile; the `if __name__ == "__main__":` block is never mutated; names are
`operator@function:line` and stay put while the reference does not change.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from grader.mutation.mutants import MutationError, generate, instructor_operators, not_importable
from grader.mutation.operators import OPERATORS

LOCKED = """
from multiprocessing import Lock, Process, Value

def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1

def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    processes = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    return counter.value
"""
ACQUIRE = """
import threading
lock = threading.Lock()
total = 0

def add():
    global total
    lock.acquire()
    try:
        total += 1
    finally:
        lock.release()
"""
PIPE = """
import os
from multiprocessing import Pipe, Process

def echo_worker(conn):
    while True:
        message = conn.recv()
        if message is None:
            conn.close()
            return
        conn.send((os.getpid(), message))

def ping_pong(messages):
    parent_end, child_end = Pipe()
    worker = Process(target=echo_worker, args=(child_end,))
    worker.start()
    replies = []
    for message in messages:
        parent_end.send(message)
        replies.append(parent_end.recv())
    parent_end.send(None)
    worker.join()
    return replies
"""
QUEUE = """
SENTINEL = None

def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(SENTINEL)
"""
POOL = """
from multiprocessing import Pool

def parallel_map(func, items, workers=4):
    with Pool(processes=workers) as pool:
        return pool.map(func, items)

def explicit(func, items):
    pool = Pool(2)
    result = pool.map(func, items)
    pool.close()
    pool.join()
    return result
"""
HELLO = """
import random
import time
from threading import Thread

def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")

def main(count=10, delay=None):
    threads = []
    for i in range(count):
        d = delay if delay is not None else random.randint(1, 3)
        t = Thread(target=hello, args=(i, d))
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
    print("Done!")

if __name__ == "__main__":
    main(count=3)
"""
PLAIN = """
def add(a, b):
    return a + b
"""

CASES = [
    # operator, source, {mutant name: a line of its source}
    ("remove_lock", LOCKED, {"remove_lock@increment:6": "    for _ in range(times):\n        counter.value += 1"}),
    ("remove_lock", ACQUIRE, {"remove_lock@add:8": "    try:\n        total += 1\n    finally:\n        pass"}),
    ("lock_per_call", LOCKED, {"lock_per_call@increment:4": "def increment(counter, lock, times):\n    lock = Lock()"}),
    ("lock_per_worker", LOCKED, {"lock_per_worker@run:12": "args=(counter, Lock(), times)"}),
    ("release_before_write", LOCKED, {
        "release_before_write@increment:7": "_read = counter.value\n        counter.value = _read + 1",
    }),
    ("join_in_start_loop", LOCKED, {"join_in_start_loop@run:14": "        p.start()\n        p.join()"}),
    ("remove_join", LOCKED, {"remove_join@run:16": "    for p in processes:\n        pass"}),
    ("daemon_not_joined", HELLO, {"daemon_not_joined@main:14": "args=(i, d), daemon=True)"}),
    ("process_to_thread", PIPE, {"process_to_thread@ping_pong:15": "worker = threading.Thread(target=echo_worker"}),
    ("thread_to_process", HELLO, {"thread_to_process@main:14": "t = multiprocessing.Process(target=hello"}),
    ("pool_to_sequential", POOL, {
        "pool_to_sequential@parallel_map:6": "return list(map(func, items))",
        "pool_to_sequential@explicit:10": "result = list(map(func, items))",
    }),
    ("pool_not_closed", POOL, {
        "pool_not_closed@parallel_map:5": "    pool = Pool(processes=workers)\n    return pool.map(func, items)",
        "pool_not_closed@explicit:11": "    result = pool.map(func, items)\n    pool.join()",
    }),
    ("sentinel_not_sent", QUEUE, {"sentinel_not_sent@producer:7": "        queue.put(item)\n"}),
    ("sentinel_sent_twice", PIPE, {"sentinel_sent_twice@ping_pong:21": "parent_end.send(None)\n    parent_end.send(None)"}),
    ("stop_at_falsy", PIPE, {"stop_at_falsy@echo_worker:8": "if not message:"}),
    ("put_get_swapped", PIPE, {
        "put_get_swapped@ping_pong:19": "replies.append(parent_end.recv())\n        parent_end.send(message)",
    }),
    ("replies_all_at_once", PIPE, {
        "replies_all_at_once@ping_pong:18": (
            "        parent_end.send(message)\n    for message in messages:\n        replies.append"
        ),
    }),
    ("results_sorted", PIPE, {"results_sorted@ping_pong:23": "return _sorted_when_comparable(list(replies))"}),
    ("results_reversed", POOL, {"results_reversed@parallel_map:6": "return list(reversed(pool.map(func, items)))"}),
    ("results_deduplicated", PIPE, {"results_deduplicated@ping_pong:23": "if x not in v[:i]])(list(replies))"}),
    ("constant_for_parameter", HELLO, {
        "constant_for_parameter@hello:7": "time.sleep(2)",
        "constant_for_parameter@hello:8": "print(f'[{10}] Hello!')",
        "constant_for_parameter@main:12": "for i in range(10):",
        "constant_for_parameter@main:13": "d = 2 if delay is not None else",
    }),
    ("default_changed", HELLO, {"default_changed@main:10": "def main(count=11, delay=None):",
                                "default_changed@main:10#2": "def main(count=10, delay=1):"}),
    ("random_fixed", HELLO, {"random_fixed@main:13": "d = delay if delay is not None else 1"}),
    ("range_off_by_one", HELLO, {"range_off_by_one@main:12": "for i in range(count - 1):"}),
    ("output_text", HELLO, {"output_text@hello:8": "print(f'[{n}] Hello')", "output_text@main:19": "print('Done')"}),
]


@pytest.mark.parametrize(("operator", "source", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_operator_makes_the_expected_mutants(operator: str, source: str, expected: dict[str, str]) -> None:
    mutants = generate(source, {operator: OPERATORS[operator]})
    assert {m.name: m for m in mutants}.keys() == expected.keys(), [m.name for m in mutants]
    original = ast.unparse(ast.parse(source))
    for mutant in mutants:
        compile(mutant.source, mutant.name, "exec")
        assert expected[mutant.name] in mutant.source, mutant.source
        assert mutant.source.strip() != original.strip()
        assert mutant.diff.startswith(f"--- reference/solution.py\n+++ {mutant.name}/solution.py\n@@ ")
        assert "if __name__ == '__main__':\n    main(count=3)" in mutant.source or "__main__" not in source


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_no_operator_applies_to_code_without_its_shape(operator: str) -> None:
    assert generate(PLAIN, {operator: OPERATORS[operator]}) == []


def test_only_where_it_should() -> None:
    """No lock mutant without a lock, no pool mutant without a pool, no sentinel mutant for a plain put."""
    locks = ("remove_lock", "lock_per_call", "lock_per_worker", "release_before_write")
    assert generate(HELLO, {k: OPERATORS[k] for k in locks}) == []
    assert generate(LOCKED, {k: OPERATORS[k] for k in ("pool_to_sequential", "pool_not_closed")}) == []
    assert generate("def f(q, x):\n    q.put(x)\n", {k: OPERATORS[k] for k in ("sentinel_not_sent", "sentinel_sent_twice")}) == []
    assert generate("def f(items):\n    return items\n", {"results_sorted": OPERATORS["results_sorted"]}) == []
    main_only = 'def f():\n    pass\n\nif __name__ == "__main__":\n    for i in range(3):\n        print("x")\n'
    assert generate(main_only) == []


def test_every_bundled_reference_has_mutants_that_import(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent / "reference"
    paths = []
    for reference in sorted(root.glob("*.py")):
        mutants = generate(reference.read_text(), module_file=reference.name)
        assert len(mutants) >= 8, reference.name
        assert len({m.name for m in mutants}) == len(mutants) == len({m.source for m in mutants})
        for index, mutant in enumerate(mutants):
            path = tmp_path / f"{reference.stem}_{index}" / reference.name
            path.parent.mkdir()
            path.write_text(mutant.source)
            paths.append(path)
    assert not_importable(paths) == {}


def test_names_stay_put_when_code_elsewhere_changes() -> None:
    before = {m.name for m in generate(LOCKED)}
    after = {m.name for m in generate(LOCKED + "\n\ndef extra():\n    return 1\n")}
    assert before <= after


def test_an_instructors_operators(tmp_path: Path) -> None:
    module = tmp_path / "mutants.py"
    module.write_text(textwrap.dedent("""
        import ast
        from grader.mutation.sites import Site

        def mutate_plus_to_minus(tree):
            for node in ast.walk(tree):
                if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
                    def change(node=node):
                        node.op = ast.Sub()
                    yield Site(node, change, "+ becomes -")

        def helper():
            return None
    """))
    operators = instructor_operators(module)
    assert list(operators) == ["plus_to_minus"]
    (mutant,) = generate(PLAIN, operators)
    assert (mutant.name, mutant.what) == ("plus_to_minus@add:3", "+ becomes -")
    assert "return a - b" in mutant.source


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("def helper():\n    pass\n", "defines no mutation operator (a function named mutate_<name>(tree)"),
        ("def mutate_remove_join(tree):\n    return iter(())\n", "remove_join are built-in operators already"),
        ("raise RuntimeError('boom')\n", "importing the mutation operators failed: RuntimeError: boom"),
    ],
)
def test_a_broken_instructors_module_is_named(tmp_path: Path, text: str, message: str) -> None:
    module = tmp_path / "mutants.py"
    module.write_text(text)
    with pytest.raises(MutationError, match="mutants.py: ") as caught:
        instructor_operators(module)
    assert message in str(caught.value)


def test_an_operator_that_raises_is_named() -> None:
    def mutate_broken(tree: ast.Module):  # type: ignore[no-untyped-def]
        raise KeyError("site")
        yield

    with pytest.raises(MutationError, match="mutation operator broken failed: KeyError: 'site'"):
        generate(PLAIN, {"broken": mutate_broken})


def test_a_reference_that_does_not_parse() -> None:
    with pytest.raises(MutationError, match="the reference does not parse: line 1"):
        generate("def f(:\n")


def test_a_mutant_that_does_not_import_is_found(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text("import os\n")
    bad.write_text("from multiprocessing import Proces\n")
    failed = not_importable([good, bad])
    assert list(failed) == [bad] and failed[bad].startswith("ImportError: cannot import name 'Proces'"), failed

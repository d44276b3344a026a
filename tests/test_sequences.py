"""The queue and pipe toolkit: exact comparison, sequence diagnoses, request/reply order, shared runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from grader.checks import Submission, brief, same, same_items, sequence_problem
from grader.evidence.pipes import unanswered_request
from grader.inside import wire
from grader.inside.probe_pipes import brief as message_brief
from grader.model.assignment import find_assignment

PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner),
    max_leaves=8,
)


def test_same_compares_types_at_every_level() -> None:
    assert same((1, "a", [2.0]), (1, "a", [2.0]))
    assert not same((1, 0), (1, False))
    assert not same([1], (1,))
    assert not same({"k": [1]}, {"k": (1,)})
    assert not same({1: "x"}, {True: "x"})
    assert same({frozenset({1, 2}), 3}, {3, frozenset({2, 1})})
    assert not same(wire.Opaque("Fake", "1"), wire.Opaque("Fake", "1"))


@settings(max_examples=60, deadline=None)
@given(st.lists(PLAIN, max_size=8))
def test_a_sequence_is_exactly_itself(items: list[Any]) -> None:
    assert sequence_problem(list(items), items) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(), min_size=2, max_size=8, unique=True), st.data())
def test_any_other_order_is_a_problem(items: list[int], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(items))
    problem = sequence_problem(list(shuffled), items)
    assert (problem is None) == (list(shuffled) == items)


def test_sequence_problem_names_the_classic_queue_bugs() -> None:
    items = [5, 3, 9, 1]
    assert sequence_problem(items[::-1], items) == "the items in reverse order (last in, first out)"
    assert sequence_problem(sorted(items), items) == "the items sorted, not in the order they were put on the queue"
    assert sequence_problem([*items, None], items) == "every item and then the sentinel None, which is not an item"
    assert sequence_problem([None], []) == "[None]: the sentinel, which is not an item"
    assert sequence_problem(items[1:], items) == "every item but the first one (5)"
    assert sequence_problem([5, 9], items) == "2 item(s) where 4 were expected: missing 3, 1"
    assert sequence_problem([5, 3, 9, 1, 1], items) == "5 item(s) where 4 were expected: unexpected 1"
    assert sequence_problem([5, 9, 3, 1], items) == (
        "the right items in the wrong order: position 1 holds 9 where 3 was put"
    )
    assert sequence_problem((5, 3, 9, 1), items) == "(5, 3, 9, 1) (a tuple) instead of a list"
    assert sequence_problem([5, 3.0, 9, 1], items) == "4 items: missing 3; unexpected 3.0"


def test_brief_never_copies_a_large_message() -> None:
    big = "x" * 1_000_000
    assert brief(big) == "a str of length 1000000 starting 'xxxxxxxxxxxx'"
    assert len(message_brief(big)) < 80 and len(message_brief(list(range(10**5)))) <= 120
    assert same_items([big], ["x" * 1_000_000])


def test_unanswered_request_finds_a_send_before_the_reply() -> None:
    assert unanswered_request(["send", "recv", "send", "recv", "send"]) is None
    assert unanswered_request(["send", "send", "recv", "recv"]) == 1
    assert unanswered_request(["send", "recv", "send", "send"]) == 2
    assert unanswered_request([]) is None


def test_shared_call_runs_once_for_checks_asking_the_same(root: Path) -> None:
    assignment = find_assignment("fifo_queue")
    reference = root / "reference" / "fifo_queue.py"
    first, second = Submission(assignment, reference), Submission(assignment, reference)
    run = first.shared_call("run_pipeline", [1, 2], timeout=8)
    assert run.value == [1, 2]
    assert second.shared_call("run_pipeline", [1, 2], timeout=8) is run
    assert second.runs == [run]
    assert second.shared_call("run_pipeline", [2, 1], timeout=8) is not run

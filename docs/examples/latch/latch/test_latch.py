import pytest

from grader.checks import Submission, expect, expect_no_lock_order_cycle
from grader.evidence.locks import lockset
from grader.evidence.waiting import activity


@pytest.mark.points(2)
def test_every_waiter_is_released(submission: Submission) -> None:
    """Three threads waiting on Latch(4) all return True once four threads have counted it down."""
    run = submission.drive("many_threads", waiters=3, count=4, timeout=15)
    expect(run.value == [True, True, True], observed=f"the three wait() calls returned {run.value!r}",
           expected="[True, True, True]", hint="notify_all() when the count reaches zero, and return True")


@pytest.mark.points(3)
def test_wait_blocks_until_the_latch_opens(submission: Submission) -> None:
    """wait() blocks (it does not poll) until count_down() opens the latch."""
    run = submission.drive("wait_then_open", trace=["Latch.wait"], probes=["locks"], timeout=15)
    (call,) = run.calls("Latch.wait")
    seen = activity(run, call.pid, call.tid, call.start, call.end or call.start)
    expect(seen.blocked, observed=f"while the latch was closed, wait() {seen.describe()}",
           expected="wait() blocks in a Condition's wait() until count_down() wakes it",
           hint="loop on `while self.count > 0: self.cond.wait()` and notify_all() in count_down()")


@pytest.mark.points(3)
def test_the_count_is_only_used_under_the_lock(submission: Submission) -> None:
    """Every read and write of the latch's attributes, by every thread, holds one common lock."""
    run = submission.drive("many_threads", waiters=3, count=4, watch=["Latch"], probes=["locks"], timeout=15)
    for result in lockset(run, name="the latch's count"):
        expect(result.ok, observed=result.problem or "", expected="one lock held at every access to the count",
               hint="read and change the count only inside `with self.cond:`")
    expect_no_lock_order_cycle(run)

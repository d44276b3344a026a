"""Graded results to render in exporter and browser tests (shaped like real ones)."""

from __future__ import annotations

from grader.model.results import CheckResult, Status, SubmissionResult

PROTECTIONS = ["own process group and session", "private working folder", "scrubbed environment"]
DIAGNOSTICS = (
    "Where each process was when the time ran out:\n"
    "- main process (pid 4242): hello_processes.py, line 19, in main: p.join()\n"
    "- child process Process-1, target hello (pid 4243): hello_processes.py, line 8, in hello: go.wait()"
)


def check(cid: str, points: float, max_points: float, status: Status, **extra: object) -> CheckResult:
    return CheckResult(
        id=cid,
        name=f"Check {cid.replace('_', ' ')}.",
        max_points=max_points,
        points=points,
        status=status,
        duration=1.25,
        **extra,
    )  # type: ignore[arg-type]


def sample_results() -> list[SubmissionResult]:
    full = SubmissionResult(
        assignment="hello_processes",
        student="Ann Smith",
        submission="class/ann",
        protections=PROTECTIONS,
        duration=5.5,
        python="3.11.7",
        checks=[
            check("test_greeting", 1, 1, Status.PASSED, output="--- hello(3, 0) ---\n[3] Hello!"),
            check("test_concurrent", 2, 2, Status.PASSED),
            check("test_joined", 2, 2, Status.PASSED),
        ],
    )
    markup = SubmissionResult(
        assignment="hello_processes",
        student="<img src=x onerror=alert(1)>",
        submission="class/<b>eve</b>.py",
        protections=PROTECTIONS,
        duration=30.1,
        metadata={"late": True, "canvas_id": "1003"},
        checks=[
            check(
                "test_greeting",
                0,
                1,
                Status.FAILED,
                message="Observed: hello(3, 0) printed ['<script>alert(1)</script>']\n"
                "Expected: '[3] Hello!'\nHint: mind the brackets",
                output='--- hello(3, 0) ---\n<script>alert("owned")</script>\n' + "x" * 50_000,
            ),
            check(
                "test_concurrent",
                0,
                2,
                Status.TIMED_OUT,
                message="main(count=4) did not finish within 8 seconds.",
                diagnostics=DIAGNOSTICS,
            ),
            check("test_joined", 0, 2, Status.ERROR, message="the check itself crashed: KeyError"),
        ],
    )
    partial = SubmissionResult(
        assignment="hello_processes",
        student="Bob Jones",
        submission="class/bob.py",
        protections=PROTECTIONS,
        duration=4.0,
        checks=[
            check("test_greeting", 1, 1, Status.PASSED),
            check(
                "test_concurrent",
                0,
                2,
                Status.FAILED,
                message="Observed: at most 1 of the 4 processes were running at the same time",
            ),
            check("test_joined", 2, 2, Status.PASSED),
        ],
    )
    broken = SubmissionResult(
        assignment="hello_processes",
        student='=HYPERLINK("http://x")',
        submission="class/carl",
        error="the grader could not run the checks: pytest ended with exit code 3",
        error_detail="INTERNALERROR> boom",
    )
    return [full, markup, partial, broken]

"""The one result model every exporter reads.

A :class:`SubmissionResult` holds one graded submission: who, which assignment,
and a :class:`CheckResult` per check. It knows nothing of any LMS format; the
exporters in :mod:`grader.exporters` turn it into terminal text, Gradescope
JSON and the rest. ``to_dict``/``from_dict`` give the model's own JSON form,
used between the grading process and the CLI and between shards of a batch.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


class Status(str, enum.Enum):
    """How a check ended."""

    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    ERROR = "error"

    @property
    def label(self) -> str:
        return {"passed": "passed", "failed": "failed", "timed_out": "timed out", "error": "error"}[self.value]


@dataclass
class CheckResult:
    """One check of one submission."""

    id: str
    name: str
    max_points: float
    points: float
    status: Status
    message: str = ""
    output: str = ""
    duration: float = 0.0
    visibility: str = "visible"
    description: str = ""
    diagnostics: str = ""
    integrity: list[str] = field(default_factory=list)
    """Why this check's evidence cannot be trusted (one sentence each); a flagged check never keeps its points."""

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["status"] = Status(data["status"])
        fields["integrity"] = [str(f) for f in data.get("integrity") or []]
        return cls(**fields)


@dataclass
class SubmissionResult:
    """A graded submission: the checks, or why it could not be graded."""

    assignment: str
    student: str
    submission: str
    checks: list[CheckResult] = field(default_factory=list)
    duration: float = 0.0
    error: str | None = None
    error_detail: str = ""
    protections: list[str] = field(default_factory=list)
    python: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    integrity: list[str] = field(default_factory=list)
    """Integrity flags of the whole submission, for the instructor to review (see :meth:`flag_integrity`)."""
    no_submission: str | None = None
    """Why no gradable file was found in the submission (observed, expected, what to do); no check ran.

    Not the grader's failure (``error``) and not a zero: the student handed in nothing gradable."""
    seen: list[str] = field(default_factory=list)
    """The files seen in a submission without a gradable file (bounded), for the reports."""
    graded_file: str = ""
    """The file graded, as the student named it, when it was not the module's name at the submission's top."""
    notes: list[str] = field(default_factory=list)
    """Sentences about what was graded ("graded lab2/HelloThreads.py as hello_threads.py", notebook lines dropped)."""
    unsafe: str = ""
    """Non-empty when the instructor graded with ``--unsafe-no-sandbox``: what that allowed (every report shows it)."""

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 4)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_points for c in self.checks), 4)

    @property
    def graded(self) -> bool:
        """True when the checks ran (whatever they found)."""
        return self.error is None and self.no_submission is None

    @property
    def status(self) -> str:
        """``graded``, ``no_submission`` (nothing gradable was handed in) or ``not_graded`` (the grader failed)."""
        if self.no_submission is not None:
            return "no_submission"
        return "graded" if self.error is None else "not_graded"

    @property
    def full_marks(self) -> bool:
        return self.graded and bool(self.checks) and all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "assignment": self.assignment,
            "student": self.student,
            "submission": self.submission,
            "score": self.score,
            "max_score": self.max_score,
            "duration": self.duration,
            "error": self.error,
            "error_detail": self.error_detail,
            "protections": list(self.protections),
            "python": self.python,
            "metadata": dict(self.metadata),
            "checks": [c.to_dict() for c in self.checks],
            "integrity": list(self.integrity),
            "status": self.status,
            "no_submission": self.no_submission,
            "seen": list(self.seen),
            "graded_file": self.graded_file,
            "notes": list(self.notes),
            **({"unsafe_no_sandbox": self.unsafe} if self.unsafe else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        return cls(
            assignment=data["assignment"],
            student=data.get("student", ""),
            submission=data.get("submission", ""),
            checks=[CheckResult.from_dict(c) for c in data.get("checks", [])],
            duration=float(data.get("duration", 0.0)),
            error=data.get("error"),
            error_detail=data.get("error_detail", ""),
            protections=list(data.get("protections", [])),
            python=data.get("python", ""),
            metadata=dict(data.get("metadata", {})),
            integrity=[str(f) for f in data.get("integrity") or []],
            no_submission=data.get("no_submission"),
            seen=[str(s) for s in data.get("seen", [])],
            graded_file=str(data.get("graded_file", "")),
            notes=[str(n) for n in data.get("notes", [])],
            unsafe=str(data.get("unsafe_no_sandbox") or ""),
        )

    def flag_integrity(self) -> None:
        """Gather the checks' integrity flags into :attr:`integrity` (each once, in check order)."""
        flags = list(self.integrity)
        for check in self.checks:
            flags.extend(check.integrity)
        self.integrity = list(dict.fromkeys(flags))

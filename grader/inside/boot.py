"""Boot script of a sandbox, copied into it as ``grader_boot.py``.

It is the ``__main__`` of the sandbox's first process and, because ``spawn``
children re-run their parent's main script as ``__mp_main__``, also runs at
the start of every child the student's code starts. That is how the evidence
probes reach every process: the first process runs the scenario, children only
install the probes and then go on with what ``multiprocessing`` asked of them.
"""

import json
import os
import sys


def _boot() -> None:
    out_dir = os.environ.get("GRADER_SANDBOX_OUT")
    if not out_dir:
        return
    try:
        with open(os.path.join(out_dir, "scenario.json"), encoding="utf-8") as handle:
            scenario = json.load(handle)
    except (OSError, ValueError):
        return
    from grader_inside import guard, probes

    # First of all: the audit hook that keeps the student's code away from the evidence and the probes.
    if scenario.get("audit_hook", True):
        guard.install(scenario["work_dir"], os.path.dirname(os.path.abspath(__file__)), out_dir, probes.record)
    if __name__ == "__main__":
        from grader_inside import runner

        runner.main(out_dir)
        return
    work_dir = os.path.abspath(scenario["work_dir"])
    if work_dir not in sys.path:
        sys.path.insert(0, work_dir)
    probes.install(scenario, out_dir, "child")


_boot()

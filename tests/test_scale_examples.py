"""The scale-out examples of docs/scale.md run as written: every shard, then the merge, on a tiny class.

Each example's own command is taken from its file (the Slurm scripts are run
with bash, the Kubernetes container command with sh, the GitHub Actions steps
with bash after substituting the matrix values), with the index variable the
engine would set, and the merged gradebook must equal one unsharded run's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.extended]  # each example grades a small class several times

EXAMPLES = ROOT / "docs" / "examples" / "scale"
BIN = str(Path(sys.executable).parent)


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["TMPDIR"] = str(tmp_path)
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")  # `grader` is the one under test
    env.update(extra)
    return env


def run_all(commands: list[tuple[list[str], dict[str, str]]], cwd: Path) -> None:
    """Run the shard commands side by side, as the engine's workers would."""
    procs = [subprocess.Popen(c, env=e, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c, e in commands]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{proc.args}: {stdout}{stderr}"


def differences(merged: Path, unsharded: Path) -> list[str]:
    """Per student and check, what differs between two result folders (status and message), for the failure report."""
    found = []
    for path in sorted((unsharded / "students").glob("*.result.json")):
        one = {c["id"]: c for c in json.loads(path.read_text())["checks"]}
        other_path = merged / "students" / path.name
        other = {c["id"]: c for c in json.loads(other_path.read_text())["checks"]} if other_path.is_file() else {}
        for check_id in sorted(set(one) | set(other)):
            a, b = one.get(check_id, {}), other.get(check_id, {})
            if (a.get("status"), a.get("points")) != (b.get("status"), b.get("points")):
                found.append(f"{path.name} {check_id}: unsharded {a.get('status')} {a.get('message', '')[:300]!r}; "
                             f"merged {b.get('status')} {b.get('message', '')[:300]!r}")
    return found


def same_as_one_run(merged: Path, unsharded: Path) -> None:
    assert (merged / "grades.csv").read_text() == (unsharded / "grades.csv").read_text(), differences(merged, unsharded)
    assert sorted(p.name for p in (merged / "students").iterdir()) == sorted(p.name for p in (unsharded / "students").iterdir())


def test_slurm_array_job(tiny_class: Path, tiny_class_graded: Path, tmp_path: Path) -> None:
    script = (EXAMPLES / "slurm" / "grade.sbatch").read_text()
    first, last = map(int, re.search(r"^#SBATCH --array=(\d+)-(\d+)$", script, re.M).groups())  # type: ignore[union-attr]
    results = tmp_path / "results"
    common = {"ASSIGNMENT": "hello_processes", "SUBMISSIONS": str(tiny_class), "RESULTS": str(results)}
    count = last - first + 1
    run_all(
        [
            (["bash", str(EXAMPLES / "slurm" / "grade.sbatch")],
             environment(tmp_path, SLURM_ARRAY_TASK_ID=str(i), SLURM_ARRAY_TASK_COUNT=str(count),
                         SLURM_CPUS_PER_TASK="1", **common))
            for i in range(first, last + 1)
        ],
        tmp_path,
    )
    assert sorted(p.name for p in results.iterdir()) == [f"shard-{i}" for i in range(first, last + 1)]
    run_all([(["bash", str(EXAMPLES / "slurm" / "merge.sbatch")], environment(tmp_path, **common))], tmp_path)
    same_as_one_run(results / "class", tiny_class_graded)


def test_slurm_submit_chains_the_merge_after_the_array(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "sbatch.log"
    (fake / "sbatch").write_text(f'#!/bin/sh\necho "$@" >> {log}\necho "4242;cluster"\n')
    (fake / "sbatch").chmod(0o755)
    env = environment(tmp_path)
    env["PATH"] = f"{fake}{os.pathsep}{env['PATH']}"
    subprocess.run(["bash", str(EXAMPLES / "slurm" / "submit.sh")], env=env, check=True, timeout=60)
    assert log.read_text().splitlines() == ["--parsable grade.sbatch", "--parsable --dependency=afterany:4242 merge.sbatch"]


def container(document: dict) -> dict:
    (only,) = document["spec"]["template"]["spec"]["containers"]
    return only


def test_kubernetes_indexed_job(tiny_class: Path, tiny_class_graded: Path, tmp_path: Path) -> None:
    job = yaml.safe_load((EXAMPLES / "kubernetes" / "grade-job.yaml").read_text())
    assert job["kind"] == "Job" and job["spec"]["completionMode"] == "Indexed"
    completions = job["spec"]["completions"]
    grade = container(job)
    values = {e["name"]: e["value"] for e in grade["env"]}
    assert int(values["SHARDS"]) == completions  # the shard count must match the number of indexes
    results = tmp_path / "results"
    values.update(SUBMISSIONS=str(tiny_class), RESULTS=str(results))  # the volume's paths, here
    command = [*grade["command"], *grade["args"]]
    assert command[:2] == ["sh", "-c"]
    run_all(
        [(command, environment(tmp_path, JOB_COMPLETION_INDEX=str(i), **values)) for i in range(completions)],
        tmp_path,
    )
    merge_job = yaml.safe_load((EXAMPLES / "kubernetes" / "merge-job.yaml").read_text())
    merge = container(merge_job)
    assert {v["mountPath"] for v in merge["volumeMounts"]} == {v["mountPath"] for v in grade["volumeMounts"]}
    merge_env = {e["name"]: e["value"] for e in merge["env"]} | {"RESULTS": str(results)}
    run_all([([*merge["command"], *merge["args"]], environment(tmp_path, **merge_env))], tmp_path)
    same_as_one_run(results / "class", tiny_class_graded)


def test_github_actions_matrix(tiny_class: Path, tiny_class_graded: Path, tmp_path: Path) -> None:
    workflow = yaml.safe_load((EXAMPLES / "github-actions" / "grade-class.yml").read_text())
    grade_job, merge_job = workflow["jobs"]["grade"], workflow["jobs"]["merge"]
    assert merge_job["needs"] == "grade"
    shards = grade_job["strategy"]["matrix"]["shard"]
    (step,) = [s for s in grade_job["steps"] if "grader grade" in s.get("run", "")]
    (merge_step,) = [s for s in merge_job["steps"] if "grader merge" in s.get("run", "")]
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    shutil.copytree(tiny_class, workspace / "submissions")

    def expand(text: str, shard: object = None) -> str:
        text = text.replace("${{ matrix.shard }}", str(shard)).replace("${{ strategy.job-total }}", str(len(shards)))
        assert "${{" not in text, text
        return text

    run_all([(["bash", "-c", expand(step["run"], s)], environment(tmp_path)) for s in shards], workspace)
    # upload-artifact of results/shard-N and download-artifact with pattern shard-* into results/ keep the paths
    uploads = [s["with"]["path"] for s in grade_job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert [expand(u, s) for s in shards for u in uploads] == [f"results/shard-{s}" for s in shards]
    run_all([(["bash", "-c", expand(merge_step["run"])], environment(tmp_path))], workspace)
    same_as_one_run(workspace / "report", tiny_class_graded)


@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".sbatch", ".sh")))
def test_shell_examples_are_valid_bash(path: Path) -> None:
    subprocess.run(["bash", "-n", str(path)], check=True, timeout=30)

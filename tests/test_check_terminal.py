"""What `grader check` prints, on a terminal (a pseudo-terminal) and in a pipe, as the checks finish."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from conftest import grader_command

CORPUS = Path(__file__).parent / "corpus" / "hello_processes"
REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "hello_processes.py"
SGR = re.compile(rb"\x1b\[[0-9;]*m")
ESCAPE = re.compile(rb"\x1b")
CHECK_LINE = re.compile(r"^  (PASS|FAIL|TIME|ERR ) +\d+(\.\d+)?/\d+(\.\d+)? +\d+\.\ds  \S", re.MULTILINE)
CHECKS = 10  # hello_processes has ten checks


@dataclass
class Captured:
    chunks: list[tuple[float, bytes]]
    ended: float
    returncode: int

    @property
    def data(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)

    def first(self, pattern: bytes) -> float:
        """Seconds after the start when ``pattern`` had been read in full."""
        seen = b""
        for at, chunk in self.chunks:
            seen += chunk
            if re.search(pattern, seen):
                return at
        raise AssertionError(f"{pattern!r} never appeared in {self.data[-2000:]!r}")


def _env(grader_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in grader_env.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def run_in_pty(
    args: list[str], env: dict[str, str], cwd: Path, columns: int = 100, timeout: float = 300,
    watch: Callable[[int], None] | None = None,
) -> Captured:
    """Run `grader ARGS` with a pseudo-terminal as stdin, stdout and stderr; read its output as it comes.

    ``watch`` is called with the command's pid about five times a second while it runs."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    started = time.monotonic()
    proc = subprocess.Popen(
        grader_command(*args), stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
    )
    os.close(slave)
    chunks: list[tuple[float, bytes]] = []
    try:
        while time.monotonic() - started < timeout:
            ready, _, _ = select.select([master], [], [], 0.2)
            if watch is not None:
                watch(proc.pid)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal closed it
                break
            if not chunk:
                break
            chunks.append((time.monotonic() - started, chunk))
        returncode = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Captured(chunks, time.monotonic() - started, returncode)


def run_in_pipe(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(grader_command(*args), capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_reference_on_a_terminal_shows_lines_as_checks_finish(tmp_path: Path, grader_env: dict[str, str]) -> None:
    out = run_in_pty(["check", "hello_processes", str(REFERENCE)], _env(grader_env), tmp_path)
    assert out.returncode == 0, out.data.decode(errors="replace")
    first_line = out.first(rb"PASS\S*\s+\d+/\d+")
    score = out.first(rb"Score: 14/14")
    assert first_line + 0.5 < score, (first_line, score)  # the first check's line came well before the end
    assert out.first(rb"checks done|starting pytest") < first_line  # the live indicator ran before any line
    assert SGR.search(out.data), "a terminal gets colour"
    assert b"Sandbox: " in out.data and b"protections active (-v lists them)" in out.data


@pytest.mark.slow
def test_on_a_terminal_the_checks_run_in_a_fork_of_the_grader_command(tmp_path: Path, grader_env: dict[str, str]) -> None:
    """The live indicator (a thread) starts once the checks run: a process with a thread is never forked."""
    seen: dict[int, list[str]] = {}
    command: list[str] = []

    def children(pid: int) -> None:
        try:
            command[:] = command or psutil.Process(pid).cmdline()
            for child in psutil.Process(pid).children():
                cmdline = child.cmdline()
                if cmdline:  # empty: a child that has ended and is not yet reaped (a zombie has no command line)
                    seen.setdefault(child.pid, cmdline)
        except psutil.Error:
            pass

    out = run_in_pty(["check", "hello_processes", str(REFERENCE)], _env(grader_env), tmp_path, watch=children)
    assert out.returncode == 0, out.data.decode(errors="replace")
    assert seen, "no process of the grading was seen"
    graders = [cmdline for cmdline in seen.values() if not any(arg.endswith("fork_server.py") for arg in cmdline)]
    assert graders, seen  # beside the sandboxes' fork server (its own interpreter, by design), the pytest process
    assert all(cmdline == command for cmdline in graders), seen  # a new interpreter: `-m grader.pytest_process`
    assert re.search(rb"\d+\.\ds of \d+s", out.data), "the live indicator ran"


def test_hanging_submission_with_no_color_streams_and_names_the_running_checks(
    tmp_path: Path, grader_env: dict[str, str]
) -> None:
    env = _env(grader_env, NO_COLOR="1")
    out = run_in_pty(["check", "hello_processes", str(CORPUS / "buggy" / "hangs.py")], env, tmp_path)
    assert out.returncode == 1, out.data.decode(errors="replace")
    text = out.data.decode(errors="replace")
    first_line = out.first(rb"(PASS|TIME)\s+\d+/\d+")
    assert first_line + 5 < out.first(rb"Score: 1/14"), "lines come as checks finish, not at the end"
    # the indicator names a running check with its time and its limit
    assert re.search(r"\d+\.\ds of \d+s  (hello|main|Each|All|Every|Importing)", text), text[-3000:]
    assert not SGR.search(out.data), "NO_COLOR: no colour (only the cursor moves of the live indicator)"


def _plain_lines(stdout: str) -> list[str]:
    return [m.group(0) for m in CHECK_LINE.finditer(stdout)]


def test_pipe_gets_plain_stable_lines_and_each_problem_once(tmp_path: Path, grader_env: dict[str, str]) -> None:
    syntax_error = CORPUS / "buggy" / "syntax_error.py"
    out = run_in_pipe(["check", "hello_processes", str(syntax_error)], _env(grader_env), tmp_path)
    assert out.returncode == 1, out.stderr
    assert not ESCAPE.search(out.stdout.encode()), "no colour and no live indicator in a pipe"
    lines = out.stdout.splitlines()
    assert lines[0] == f"hello_processes: {syntax_error.resolve()}"
    checks = _plain_lines(out.stdout)
    assert len(checks) == CHECKS, out.stdout
    names = [line.split("s  ", 1)[1] for line in lines[1 : 1 + CHECKS]]
    assert len(set(names)) == CHECKS, "each check's line once"
    assert all(line.startswith("  FAIL ") for line in lines[1 : 1 + CHECKS])
    # the message every check shares is said once, with what it cost
    assert out.stdout.count("could not be imported: SyntaxError") == 1, out.stdout
    assert "  FAIL the same problem in all 10 checks (14 points):" in out.stdout
    assert "Score: 0/14 (10 of 10 checks lost points;" in out.stdout
    assert re.search(r"^Sandbox: (\d+ protections active \(-v lists them\)|no student code ran)", out.stdout, re.M)


def test_quiet_prints_the_score_line_only_and_force_color_paints_a_pipe(tmp_path: Path, grader_env: dict[str, str]) -> None:
    syntax_error = str(CORPUS / "buggy" / "syntax_error.py")
    quiet = run_in_pipe(["check", "hello_processes", syntax_error, "-q"], _env(grader_env), tmp_path)
    assert quiet.returncode == 1
    assert re.fullmatch(r"Score: 0/14 \(10 of 10 checks lost points; \d+\.\ds\)\n", quiet.stdout), quiet.stdout
    coloured = run_in_pipe(["check", "hello_processes", syntax_error], _env(grader_env, FORCE_COLOR="1"), tmp_path)
    assert SGR.search(coloured.stdout.encode()), coloured.stdout
    assert "\x1b[?25l" not in coloured.stdout, "no live indicator in a pipe, even with FORCE_COLOR"
    plain = SGR.sub(b"", coloured.stdout.encode()).decode()
    assert len(_plain_lines(plain)) == CHECKS


def test_a_zipped_folder_gets_full_marks_and_verbose_lists_the_protections(
    tmp_path: Path, grader_env: dict[str, str]
) -> None:
    archive = tmp_path / "alice.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # the way students zip: one folder holding the module
        zf.write(REFERENCE, "alice/hello_processes.py")
        zf.writestr("alice/notes.txt", "my notes\n")
    out = run_in_pipe(["check", "hello_processes", str(archive), "-v"], _env(grader_env), tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == f"hello_processes: {archive}"
    assert "Score: 14/14 (all checks passed;" in out.stdout
    assert "Sandbox protections: own session and process group;" in out.stdout
    assert "-v lists them" not in out.stdout
    assert len(_plain_lines(out.stdout)) == CHECKS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.zip"], "the extracted copy is gone"


def test_a_refused_zip_is_one_line_and_exit_2(tmp_path: Path, grader_env: dict[str, str]) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.py", "x = 1\n")
    out = run_in_pipe(["check", "hello_processes", str(archive)], _env(grader_env), tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("grader: error: refused entry '../escape.py'"), out.stderr
    assert "Traceback" not in out.stderr


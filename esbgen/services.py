"""The ESB's own services after a change: ``sync_data_at_deploy`` and the supervisor restart.

Both become post-steps of a plan (run after the change is applied, printed
only in a dry run).

The ESB's interpreter for ``--sync`` is the first of:

1. ``--esb-python PATH``, else ``$ESBGEN_ESB_PYTHON`` (set by ``manage.py esbgen`` of
   ``esbgen_django`` to the interpreter running the ESB);
2. a virtualenv in the ESB root: ``<root>/bin/python`` (the root is the virtualenv),
   ``<root>/.venv/bin/python``, ``<root>/venv/bin/python``;
3. ``$WORKON_HOME/esb/bin/python`` (virtualenvwrapper's ``esb``);
4. BlueKing's layout, ``$INSTALL_PATH/paas/esb`` with ``$INSTALL_PATH/.envs/esb``:
   ``<root>/../../.envs/esb/bin/python``, then ``/data/*/.envs/esb/bin/python``
   (the first in name order);
5. ``python`` on ``PATH``.

``supervisorctl`` for ``--restart`` is ``--supervisorctl PATH``, else the one next
to the Python running esbgen, else the one on ``PATH``.

Every child esbgen runs (the sync, supervisorctl, nginx) goes through ``run_child``: it runs in a
process group of its own and ends with esbgen. Ctrl-C or SIGTERM is passed on to the whole group,
and what still runs after ``CHILD_GRACE_SECONDS`` is killed, so no orphan keeps writing.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esbgen.errors import Refused, Terminated, UsageError
from esbgen.plan import PostStep

# BlueKing installs under /data/<install>/ by default; tests point this elsewhere.
INSTALL_GLOB = "/data/*/.envs/esb/bin/python"
ESB_PYTHON_ENV = "ESBGEN_ESB_PYTHON"
PROGRAM_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
CHILD_GRACE_SECONDS = 10.0  # how long a signalled child may take to stop before it is killed


def run_child(command: list[str], *, timeout: float | None = None, **options: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(command, capture_output=True, text=True)`` in a process group of its own.

    Interrupted (Ctrl-C, SIGTERM), esbgen passes the same signal to the child's whole group and waits
    for it to end (killing it after CHILD_GRACE_SECONDS), then raises the interrupt; a timeout kills the
    group and raises ``subprocess.TimeoutExpired``. Its own group keeps a terminal's Ctrl-C from reaching
    the child twice, and lets esbgen end the grandchildren a child started.
    """
    options.setdefault("text", True)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                               **options)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _end_group(process, signal.SIGKILL)
        raise
    except BaseException as error:
        _end_group(process, signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT)
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _end_group(process: subprocess.Popen, signum: int) -> None:
    """Signal the child's group, give it CHILD_GRACE_SECONDS, then kill what is left of the group.

    The child is reaped only after that: while it is a zombie its group id stays its own, so the last
    kill reaches only its group. A further interrupt meanwhile waits until the group is gone.
    """
    from esbgen.errors import signals_held

    with signals_held():
        if process.returncode is not None:  # reaped already (Python waits a moment on Ctrl-C): its id may be reused
            process.communicate()
            return
        _kill_group(process.pid, signum)
        deadline = time.monotonic() + CHILD_GRACE_SECONDS
        while not _exited(process) and time.monotonic() < deadline:
            time.sleep(0.02)
        _kill_group(process.pid, signal.SIGKILL)
        process.communicate()


def _exited(process: subprocess.Popen) -> bool:
    """Whether the child has ended, without reaping it."""
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


@dataclass
class ServiceOptions:
    sync: bool = False
    restart: bool = False
    esb_python: str | None = None
    supervisor_conf: str | None = None
    program: str = "esb"
    supervisorctl: str | None = None
    grants: tuple[str, ...] = ()  # --grant APP_CODE of clone and new (esbgen.db.sync)
    no_force_sync: bool = False  # --no-force-sync: never run the ESB's sync with --force

    def plugin_options(self) -> dict[str, object]:
        """What ``esbgen_plan_steps`` hooks see (the built-in reminders drop what is run)."""
        return {"sync": self.sync, "restart": self.restart}


class ServiceStep(PostStep):
    """A post-step that knows how to explain its own failure in one line."""

    hint_patterns: tuple[tuple[str, str], ...] = ()

    def explain_failure(self, output: str) -> str | None:
        lowered = output.lower()
        for needle, hint in self.hint_patterns:
            if needle in lowered:
                return hint
        return None


class RestartStep(ServiceStep):
    hint_patterns = (
        ("no such file", "supervisord is not running (its socket does not exist)"),
        ("refused connection", "supervisord is not running (nothing answers on its server URL)"),
        ("connection refused", "supervisord is not running (nothing answers on its server URL)"),
        ("no such process", "supervisord knows no such program"),
        ("spawn error", "the program failed to start again"),
    )


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_esb_python(root: Path, explicit: str | None = None) -> tuple[str, str]:
    """The interpreter to run the ESB's manage.py with, and where it was found."""
    if explicit:
        path = Path(explicit).expanduser().absolute()  # the sync runs in the ESB root, not here
        if not _executable(path):
            raise UsageError(f"--esb-python {explicit} is not an executable file")
        return str(path), "--esb-python"
    from_env = os.environ.get(ESB_PYTHON_ENV)
    if from_env:
        path = Path(from_env).expanduser()
        if not _executable(path):
            raise UsageError(f"${ESB_PYTHON_ENV} {from_env} is not an executable file")
        return str(path), f"${ESB_PYTHON_ENV}, the interpreter running the ESB's manage.py"
    candidates = [
        (root / "bin" / "python", "the ESB root's virtualenv"),
        (root / ".venv" / "bin" / "python", "<root>/.venv"),
        (root / "venv" / "bin" / "python", "<root>/venv"),
    ]
    workon = os.environ.get("WORKON_HOME")
    if workon:
        candidates.append((Path(workon) / "esb" / "bin" / "python", "$WORKON_HOME/esb"))
    candidates.append((root.parent.parent / ".envs" / "esb" / "bin" / "python", "$INSTALL_PATH/.envs/esb"))
    candidates.extend((Path(found), "BlueKing's .envs/esb") for found in sorted(glob.glob(INSTALL_GLOB)))
    for path, how in candidates:
        if _executable(path):
            return str(path), how
    on_path = shutil.which("python")
    if on_path:
        return on_path, "python on PATH"
    looked = ", ".join(str(path) for path, _ in candidates)
    raise Refused(f"no Python for the ESB found (looked at {looked} and PATH); give --esb-python PATH")


def find_supervisorctl(explicit: str | None = None) -> str:
    if explicit:
        path = Path(explicit).expanduser()
        if not _executable(path):
            raise UsageError(f"--supervisorctl {explicit} is not an executable file")
        return str(path)
    beside = Path(sys.executable).parent / "supervisorctl"
    if _executable(beside):
        return str(beside)
    on_path = shutil.which("supervisorctl")
    if on_path:
        return on_path
    raise Refused("no supervisorctl found beside esbgen's Python or on PATH; give --supervisorctl PATH")


def sync_step(root: Path, options: ServiceOptions) -> PostStep:
    if not (root / "manage.py").is_file():
        raise Refused(f"{root} has no manage.py; cannot run sync_data_at_deploy there")
    python, how = find_esb_python(root, options.esb_python)
    command = [python, "manage.py", "sync_data_at_deploy"]
    return ServiceStep(f"sync the ESB's data: {shlex.join(command)} (in {root}; Python: {how})", command=command, cwd=root)


def restart_step(options: ServiceOptions) -> PostStep:
    if not PROGRAM_RE.match(options.program or ""):
        raise UsageError(f"--program {options.program!r} is not a supervisor program name")
    command = [find_supervisorctl(options.supervisorctl)]
    if options.supervisor_conf:
        conf = Path(options.supervisor_conf).expanduser()
        if not conf.is_file():
            raise UsageError(f"--supervisor-conf {options.supervisor_conf} is not a file")
        command += ["-c", str(conf.absolute())]
    command += ["restart", options.program]
    return RestartStep(f"restart the ESB: {shlex.join(command)}", command=command)


def program_state(step: PostStep) -> str:
    """The supervisor program's state (RUNNING, STOPPED, FATAL ...) as the restart step's supervisorctl tells it;
    refused when supervisord is not running or knows no such program (a restart could not happen)."""
    import subprocess

    command = [*step.command[:-2], "status", step.command[-1]]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Refused(f"{shlex.join(command)} failed: {error}") from None
    output = (done.stdout + done.stderr).strip()
    words = output.split()
    if len(words) >= 2 and words[0] == step.command[-1] and words[1].isupper():
        return words[1]
    hint = step.explain_failure(output)
    raise Refused(f"the ESB cannot be restarted: {hint + ': ' if hint else ''}"
                  f"{output.splitlines()[-1] if output else 'no output'} ({shlex.join(command)})")


def service_steps(root: Path, options: ServiceOptions | None) -> list[PostStep]:
    """The steps asked for, sync before restart; validated now, run after the apply."""
    if options is None:
        return []
    steps = []
    if options.sync:
        steps.append(sync_step(root, options))
    if options.restart:
        steps.append(restart_step(options))
    return steps

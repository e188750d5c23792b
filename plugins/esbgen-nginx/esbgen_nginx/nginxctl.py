"""Running the nginx binary: ``nginx -t`` and ``nginx -s reload`` on one configuration."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from esbgen.errors import EsbgenError

TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Nginx:
    """The binary plus the ``-c`` main file and the optional ``-p`` prefix nginx runs with."""

    ctl: str
    main_conf: Path
    prefix: Path | None = None

    def resolve(self) -> "Nginx":
        """Refuse early, before any file is touched, when the binary cannot be found."""
        found = shutil.which(self.ctl)
        if found is None:
            raise EsbgenError(f"cannot find the nginx binary {self.ctl!r} (see --nginx-ctl)")
        return Nginx(found, self.main_conf, self.prefix)

    def command(self, *args: str) -> list[str]:
        argv = [self.ctl]
        if self.prefix is not None:
            argv += ["-p", str(self.prefix)]
        argv += ["-c", str(self.main_conf), *args]
        return argv

    def run(self, *args: str) -> "Outcome":
        argv = self.command(*args)
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=TIMEOUT_SECONDS,
            )
        except FileNotFoundError as error:
            return Outcome(argv, False, f"cannot run {argv[0]}: {error.strerror}")
        except subprocess.TimeoutExpired:
            return Outcome(argv, False, f"no answer within {TIMEOUT_SECONDS} s")
        return Outcome(argv, done.returncode == 0, _one_line(done.stderr or done.stdout), done.returncode)

    def test(self) -> "Outcome":
        return self.run("-t")

    def reload(self) -> "Outcome":
        return self.run("-s", "reload")


@dataclass(frozen=True)
class Outcome:
    argv: list[str]
    ok: bool
    output: str  # nginx's stderr on one line
    returncode: int | None = None


_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (?:\*\d+ )?")


def _one_line(text: str) -> str:
    """nginx's stderr as one line, e.g. ``[emerg] invalid parameter ...; nginx: ... test failed``.

    The timestamp and pid of nginx's log lines are dropped, and so are its
    ``[notice]`` / ``[info]`` lines when something more telling is left.
    """
    lines = []
    for line in text.splitlines():
        line = line.strip()
        match = _LOG_PREFIX.match(line)
        if match:
            line = f"[{match.group(1)}] {line[match.end():]}"
        if line:
            lines.append(line)
    telling = [line for line in lines if not line.startswith(("[notice]", "[info]", "[debug]"))]
    return "; ".join(telling or lines)

"""Running nginx (or OpenResty): ``-t`` and the reload, on one configuration, found where it is installed.

Two layouts are known: Debian's (``/etc/nginx``, binary ``nginx``) and OpenResty's
(``/usr/local/openresty/nginx/conf``, binary ``/usr/local/openresty/bin/openresty``, prefix
``/usr/local/openresty/nginx``). A server root of the form ``PREFIX/nginx/conf`` beside a
``PREFIX/bin/openresty`` is OpenResty's: that binary tests and reloads it, with ``-p PREFIX/nginx``,
unless ``--nginx-ctl`` / ``--nginx-prefix`` say otherwise. Where the service manager runs nginx
(``systemctl reload openresty``), ``--reload-command`` replaces ``nginx -s reload``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from esbgen.errors import EsbgenError
from esbgen.services import run_child

TIMEOUT_SECONDS = 60
DEFAULT_SERVER_ROOT = Path("/etc/nginx")
OPENRESTY_SERVER_ROOT = Path("/usr/local/openresty/nginx/conf")
OPENRESTY_BINARY = Path("/usr/local/openresty/bin/openresty")


def default_server_root() -> Path:
    """/etc/nginx, or OpenResty's conf folder on a machine that has only that."""
    if not (DEFAULT_SERVER_ROOT / "nginx.conf").is_file() and (OPENRESTY_SERVER_ROOT / "nginx.conf").is_file():
        return OPENRESTY_SERVER_ROOT
    return DEFAULT_SERVER_ROOT


def openresty_prefix(server_root: Path) -> Path | None:
    """``PREFIX/nginx`` when ``server_root`` is ``PREFIX/nginx/conf`` of an OpenResty install (``PREFIX/bin/openresty``)."""
    root = Path(os.path.abspath(server_root))
    if root.name == "conf" and root.parent.name == "nginx" and (root.parent.parent / "bin" / "openresty").exists():
        return root.parent
    return None


@dataclass(frozen=True)
class Nginx:
    """The binary plus the ``-c`` main file and the optional ``-p`` prefix nginx runs with."""

    ctl: str
    main_conf: Path
    prefix: Path | None = None
    reload_command: tuple[str, ...] = field(default=())  # instead of ``ctl ... -s reload``

    @classmethod
    def for_root(cls, server_root: Path, ctl: str | None, prefix: Path | None,
                 reload_command: str | None = None) -> "Nginx":
        """The binary that runs ``server_root``: ``ctl`` if given, else OpenResty's beside an OpenResty root, else nginx."""
        root = Path(os.path.abspath(server_root))
        resty = openresty_prefix(root)
        if ctl is None:
            ctl = str(resty.parent / "bin" / "openresty") if resty is not None else "nginx"
        if prefix is None and resty is not None:
            prefix = resty
        command: tuple[str, ...] = ()
        if reload_command is not None:
            try:
                command = tuple(shlex.split(reload_command))
            except ValueError as error:
                raise EsbgenError(f"--reload-command {reload_command!r} does not parse: {error}") from None
            if not command:
                raise EsbgenError("--reload-command is empty")
        return cls(ctl, root / "nginx.conf", Path(os.path.abspath(prefix)) if prefix is not None else None, command)

    def resolve(self) -> "Nginx":
        """Refuse early, before any file is touched, when the binary cannot be found."""
        found = shutil.which(self.ctl)
        if found is None and self.ctl in ("nginx", "openresty"):
            # an OpenResty machine: its binary is openresty, on PATH or where its installer puts it
            found = shutil.which("openresty") or (str(OPENRESTY_BINARY) if OPENRESTY_BINARY.exists() else None)
        if found is None:
            raise EsbgenError(f"cannot find the nginx binary {self.ctl!r} (see --nginx-ctl)")
        if self.reload_command and shutil.which(self.reload_command[0]) is None:
            raise EsbgenError(f"cannot find {self.reload_command[0]!r} of --reload-command")
        return Nginx(found, self.main_conf, self.prefix, self.reload_command)

    def command(self, *args: str) -> list[str]:
        argv = [self.ctl]
        if self.prefix is not None:
            argv += ["-p", str(self.prefix)]
        argv += ["-c", str(self.main_conf), *args]
        return argv

    def reload_argv(self) -> list[str]:
        return list(self.reload_command) if self.reload_command else self.command("-s", "reload")

    def run(self, *args: str) -> "Outcome":
        return self._run(self.command(*args))

    def _run(self, argv: list[str]) -> "Outcome":
        try:
            done = run_child(argv, stdin=subprocess.DEVNULL, errors="replace", timeout=TIMEOUT_SECONDS)
        except FileNotFoundError as error:
            return Outcome(argv, False, f"cannot run {argv[0]}: {error.strerror}")
        except subprocess.TimeoutExpired:
            return Outcome(argv, False, f"no answer within {TIMEOUT_SECONDS} s")
        return Outcome(argv, done.returncode == 0, _one_line(done.stderr or done.stdout), done.returncode)

    def test(self) -> "Outcome":
        return self.run("-t")

    def reload(self) -> "Outcome":
        return self._run(self.reload_argv())

    def to_record(self) -> dict:
        return {"ctl": self.ctl, "main_conf": str(self.main_conf),
                "prefix": str(self.prefix) if self.prefix is not None else None,
                "reload_command": list(self.reload_command)}

    @classmethod
    def from_record(cls, record: dict) -> "Nginx":
        prefix = record.get("prefix")
        return cls(record["ctl"], Path(record["main_conf"]), Path(prefix) if prefix else None,
                   tuple(record.get("reload_command") or ()))


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

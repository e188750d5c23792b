"""``--stop-old``: the supervisor program of the old backend, found and stopped once the new one serves.

The program is named (``--old-program``), or found from the swap's old address: among the programs
``supervisorctl status`` lists as RUNNING, the one whose processes listen on that port (read from
/proc: the listening sockets of the program's process and its children), else the one whose command
line names the port. Several candidates, none, or one that also serves a new backend refuse the swap
before anything is touched.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from esbgen.errors import EsbgenError, UsageError

from esbgen_nginx.backends import Backend

TIMEOUT_SECONDS = 60
BACK_SECONDS = 30.0  # how long a started program gets to accept connections again
_STATUS_LINE = re.compile(r"^(\S+)\s+([A-Z]+)\b(?:.*?\bpid (\d+))?")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


@dataclass(frozen=True)
class Program:
    name: str  # as supervisorctl names it: "paas", "group:name"
    state: str  # RUNNING, STOPPED, ...
    pid: int | None


@dataclass(frozen=True)
class Supervisorctl:
    argv: tuple[str, ...]  # supervisorctl [-c CONF]

    @classmethod
    def find(cls, explicit: str | None, conf: Path | None) -> "Supervisorctl":
        from esbgen.services import find_supervisorctl

        argv = [find_supervisorctl(explicit)]
        if conf is not None:
            if not conf.is_file():
                raise UsageError(f"--supervisor-conf {conf} is not a file")
            argv += ["-c", str(conf.absolute())]
        return cls(tuple(argv))

    def run(self, *args: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([*self.argv, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", timeout=TIMEOUT_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise EsbgenError(f"{' '.join(self.argv)} {' '.join(args)} failed: {error}") from None

    def programs(self) -> dict[str, Program]:
        done = self.run("status")
        found = {}
        for line in done.stdout.splitlines():
            match = _STATUS_LINE.match(line)
            if match and match.group(2) in _STATES:
                pid = int(match.group(3)) if match.group(3) else None
                found[match.group(1)] = Program(match.group(1), match.group(2), pid)
        if not found and done.returncode not in (0, 3):  # 3: some program is not running
            reason = " ".join((done.stderr or done.stdout).split()) or f"exit status {done.returncode}"
            raise EsbgenError(f"cannot read supervisor's programs ({' '.join(self.argv)} status): {reason}")
        return found

    def state(self, name: str) -> str | None:
        program = self.programs().get(name)
        return program.state if program else None

    def stop(self, name: str) -> None:
        done = self.run("stop", name)
        if self.state(name) not in ("STOPPED", "EXITED"):
            raise EsbgenError(f"supervisorctl stop {name} did not stop it: {_one_line(done)}")

    def start(self, name: str) -> None:
        done = self.run("start", name)
        if self.state(name) != "RUNNING":
            raise EsbgenError(f"supervisorctl start {name} did not start it: {_one_line(done)}")


_STATES = {"RUNNING", "STOPPED", "STARTING", "STOPPING", "BACKOFF", "EXITED", "FATAL", "UNKNOWN"}


def _one_line(done: subprocess.CompletedProcess) -> str:
    return " ".join((done.stdout + done.stderr).split()) or f"exit status {done.returncode}"


def find_program(ctl: Supervisorctl, old: list[str], new: list[Backend], named: str | None) -> Program:
    """The program to stop; refuse (one line) when it cannot be told for sure."""
    programs = ctl.programs()
    if named is not None:
        if named not in programs:
            known = ", ".join(sorted(programs)) or "none"
            raise EsbgenError(f"--old-program {named}: supervisor has no such program (it has: {known})")
        program = programs[named]
    else:
        running = [p for p in programs.values() if p.state == "RUNNING" and p.pid]
        ports = {_port(server) for server in old} - {None}
        by_socket = [p for p in running if _listening_ports(p.pid) & ports]
        candidates = by_socket or [p for p in running if any(_names_port(p.pid, port) for port in ports)]
        if len(candidates) != 1:
            what = ("no running supervisor program serves" if not candidates else
                    f"supervisor programs {', '.join(p.name for p in candidates)} all serve")
            raise EsbgenError(f"--stop-old: {what} the old backend {', '.join(old)} on this machine; "
                              "name the program with --old-program")
        program = candidates[0]
    if program.pid and _listening_ports(program.pid) & {backend.port for backend in new if _is_local(backend.host)}:
        raise EsbgenError(f"--stop-old: supervisor program {program.name} also serves a new backend; "
                          "stopping it would stop the service")
    return program


def _port(server: str) -> int | None:
    tail = server.rpartition(":")[2]
    return int(tail) if tail.isdigit() else None


def _is_local(host: str) -> bool:
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, 0))
        return True
    except OSError:
        return False


def _tree(pid: int) -> set[int]:
    """``pid`` and its descendants (a gunicorn master and its workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(children.get(current, []))
    return found


def _listening_ports(pid: int) -> set[int]:
    """The TCP ports the process tree of ``pid`` listens on."""
    inodes = set()
    for member in _tree(pid):
        try:
            for fd in os.listdir(f"/proc/{member}/fd"):
                target = os.readlink(f"/proc/{member}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _names_port(pid: int, port: int) -> bool:
    pattern = re.compile(rf"(?:^|[\s:=]){port}(?:$|[\s/,])")
    for member in _tree(pid):
        try:
            command = Path(f"/proc/{member}/cmdline").read_bytes().replace(b"\0", b" ")
            if pattern.search(command.decode(errors="replace")):
                return True
        except OSError:
            continue
    return False


def wait_accepting(addresses: list[str], seconds: float = BACK_SECONDS) -> list[str]:
    """Wait (bounded) until each ``HOST:PORT`` accepts connections; those that still do not."""
    from esbgen_nginx.backends import parse_backend

    deadline = time.monotonic() + seconds
    left = list(addresses)
    while left and time.monotonic() < deadline:
        for address in list(left):
            try:
                backend = parse_backend(address)
                with socket.create_connection((backend.host, backend.port), timeout=1):
                    left.remove(address)
            except (OSError, ValueError):
                pass
        if left:
            time.sleep(0.05)
    return left

"""A fleet of ESB hosts for the Ansible tests: one sshd on loopback, three inventory hosts.

The sshd (Debian's openssh-server, installed by scripts/ensure-system-packages.sh)
is the test's own: a generated host key and client key, a temporary config,
``UsePAM no``, listening on 127.0.0.1 only, one free port per inventory host, and
run as the current user. Its sessions get ``ESBGEN_EXECUTABLE`` (this checkout's
esbgen) and ``ESBGEN_FAKE_SYNC_LOG`` in their environment, as an operator would
set them on a host. Each host has its own ESB root (a copy of fixtures/esb) and
its own supervisord with an ``esb`` program. Modules run with the host's Debian
Python (``/usr/bin/python3``), not esbgen's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import FIXTURES
from conftest_services import START_DEADLINE, Supervisor, free_port

REPO = Path(__file__).resolve().parents[1]
COLLECTION = REPO / "ansible" / "esbgen"
PLAYBOOKS = COLLECTION / "playbooks"
BIN = Path(sys.executable).parent
ESBGEN = BIN / "esbgen"
HOST_PYTHON = "/usr/bin/python3"
SSHD = "/usr/sbin/sshd"


def _run(argv: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False, **kwargs)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_line = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat_line.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Sshd:
    """An sshd on 127.0.0.1 per host name, each on a port of its own: one host can be lost (stop_host)."""

    def __init__(self, base: Path, names: list[str], env: dict[str, str]):
        self.base = base
        self.ports = {name: free_port() for name in names}
        self.client_key = base / "client_key"
        self.known_hosts = base / "known_hosts"
        self.host_key = base / "host_key"
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        if not os.access(SSHD, os.X_OK):
            pytest.fail(f"{SSHD} is missing: run `make test`, whose scripts/ensure-system-packages.sh installs "
                        "Debian's openssh-server", pytrace=False)
        for key in (self.host_key, self.client_key):
            done = _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "esbgen-test", "-f", key])
            if done.returncode != 0:
                pytest.fail(f"ssh-keygen failed: {done.stderr.strip()}", pytrace=False)
        (self.base / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        public = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts.write_text("".join(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n" for port in self.ports.values()))
        # sshd refuses to start without its privilege separation folder (the Debian service makes it at boot).
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        for name in self.ports:
            self.start_host(name)

    def start_host(self, name: str) -> None:
        port = self.ports[name]
        env = " ".join(f"{key}={value}" for key, value in self.env.items())
        config = self.base / f"sshd_config.{name}"
        config.write_text(
            f"ListenAddress 127.0.0.1:{port}\n"
            f"HostKey {self.host_key}\nPidFile {self.base / f'sshd.{name}.pid'}\n"
            f"AuthorizedKeysFile {self.base / 'authorized_keys'}\n"
            "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "StrictModes no\nSubsystem sftp internal-sftp\nMaxStartups 50\nMaxSessions 50\nLogLevel ERROR\n"
            f"SetEnv {env}\n"
        )
        log = self.base / f"sshd.{name}.log"
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                                   stderr=log.open("w"), start_new_session=True)
        self.processes[name] = process
        deadline = time.monotonic() + START_DEADLINE
        while not self._answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"sshd did not start: {log.read_text().strip()[-500:]}", pytrace=False)
            time.sleep(0.05)

    @staticmethod
    def _answers(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                return connection.recv(8).startswith(b"SSH-")
        except OSError:
            return False

    def stop_host(self, name: str) -> None:
        """The host is lost: its sshd and every connection it has end (an SSH control master's too)."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        for child in _children(process.pid):  # each connection's sshd-session, which a SIGTERM to the group spares
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(process.pid, signal.SIGTERM)  # the listener and any session it still has
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        for name in list(self.processes):
            self.stop_host(name)


@dataclass
class Host:
    name: str
    root: Path
    supervisor: Supervisor
    port: int
    vars: dict = field(default_factory=dict)

    @property
    def broken(self) -> Path:
        """While this file exists, this host's ESB does not start with the clone's code (exits at once: FATAL)."""
        return self.root.parent / "clone-does-not-start-here"

    def journals(self) -> list[dict]:
        folder = self.root / ".esbgen" / "journal"
        found = [json.loads(path.read_text()) for path in folder.glob("*/journal.json")] if folder.is_dir() else []
        return sorted(found, key=lambda journal: journal["seq"])

    def program_state(self) -> str:
        words = self.supervisor.ctl("status", "esb").stdout.split()
        return words[1] if len(words) > 1 else "?"


@dataclass
class Fleet:
    base: Path
    hosts: list[Host]
    sshd: Sshd
    collections: Path
    sync_log: Path

    def inventory(self) -> Path:
        hosts = {}
        for host in self.hosts:
            hosts[host.name] = {"ansible_port": host.port, "esb_root": str(host.root),
                                "supervisor_conf": str(host.supervisor.conf), **host.vars}
        inventory = {"esb": {"hosts": hosts, "vars": {
            "ansible_host": "127.0.0.1",
            "ansible_user": "root",
            "ansible_connection": "ssh",
            "ansible_python_interpreter": HOST_PYTHON,
            "ansible_ssh_private_key_file": str(self.sshd.client_key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.sshd.known_hosts} -o StrictHostKeyChecking=yes "
                                       "-o IdentitiesOnly=yes -o BatchMode=yes",
            "ansible_remote_tmp": str(self.base / "remote-tmp"),
            "esb_python": HOST_PYTHON,
            "esbgen_supervisorctl": self.hosts[0].supervisor.supervisorctl,
        }}}
        path = self.base / "inventory.json"
        path.write_text(json.dumps(inventory, indent=1))
        return path

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "ESBGEN_"))}
        home = self.base / "ansible-home"
        (self.base / "tmp").mkdir(exist_ok=True)
        env.update(
            LC_ALL="C.UTF-8", LANG="C.UTF-8", HOME=str(self.home), TMPDIR=str(self.base / "tmp"),
            ANSIBLE_HOME=str(home), ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
            ANSIBLE_COLLECTIONS_PATH=str(self.collections), ANSIBLE_CONFIG=str(self.base / "no-ansible.cfg"),
            ANSIBLE_PIPELINING="True", ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_RETRY_FILES_ENABLED="False",
            ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_SSH_RETRIES="0", ANSIBLE_TIMEOUT="30",
            # A control master per host saves an SSH handshake per task; Fleet.close() ends them.
            ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=20s",
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.control_dir),
            ANSIBLE_DISPLAY_SKIPPED_HOSTS="True", ANSIBLE_STDOUT_CALLBACK="default",
        )
        return env

    def argv(self, playbook: Path | str, *args: str, **extra_vars) -> list[str]:
        argv = [str(BIN / "ansible-playbook"), "-i", str(self.inventory()), str(playbook), *args]
        for key, value in extra_vars.items():
            argv += ["-e", f"{key}={value}"]
        return argv

    def playbook(self, playbook: Path | str, *args: str, **extra_vars) -> subprocess.CompletedProcess:
        return _run(self.argv(playbook, *args, **extra_vars), env=self.env(), cwd=self.base)

    def start_playbook(self, playbook: Path | str, *args: str, **extra_vars) -> subprocess.Popen:
        """ansible-playbook in the background (its output in base/run.log), for a test to interrupt."""
        return subprocess.Popen(self.argv(playbook, *args, **extra_vars), env=self.env(), cwd=self.base, text=True,
                                stdout=(self.base / "run.log").open("w"), stderr=subprocess.STDOUT)

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def plans(self) -> Path:
        """The controller's folder of plans (the playbook's default, under the test's $HOME)."""
        return self.home / ".esbgen" / "plans"

    def reset(self) -> None:
        """Every host as before any run: a fresh ESB root with the clone's host setting, its supervisord and
        its sshd up, its ESB running; no plan on the controller, no sync."""
        for host in self.hosts:
            shutil.rmtree(host.root)
            shutil.copytree(FIXTURES / "esb", host.root, symlinks=True)
            define_host_setting(host.root)
            host.broken.unlink(missing_ok=True)
            if host.supervisor.process is None or host.supervisor.process.poll() is not None:
                host.supervisor.start()
            elif host.program_state() != "RUNNING":
                host.supervisor.ctl("start", "esb")
            if host.name not in self.sshd.processes:
                self.sshd.start_host(host.name)
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.base / "tmp", ignore_errors=True)
        self.sync_log.write_text("")

    @property
    def control_dir(self) -> Path:
        return self.base / "cp"

    def close(self) -> None:
        """End the SSH control masters the runs left (they would otherwise linger for ControlPersist)."""
        if not self.control_dir.is_dir():
            return
        for socket_path in self.control_dir.iterdir():
            _run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "esbgen-test-host"])

    def syncs(self) -> list[dict]:
        text = self.sync_log.read_text() if self.sync_log.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def install_collection(base: Path) -> Path:
    """``ansible-galaxy collection build`` and ``install``, as an operator installs it from a checkout."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(LC_ALL="C.UTF-8", ANSIBLE_HOME=str(base / "galaxy-home"))
    built = _run([BIN / "ansible-galaxy", "collection", "build", COLLECTION, "--output-path", base, "--force"], env=env)
    if built.returncode != 0:
        pytest.fail(f"ansible-galaxy collection build failed: {built.stdout}{built.stderr}", pytrace=False)
    tarballs = list(base.glob("esbgen-esb-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    target = base / "collections"
    installed = _run([BIN / "ansible-galaxy", "collection", "install", tarballs[0], "-p", target, "--force"], env=env)
    if installed.returncode != 0:
        pytest.fail(f"ansible-galaxy collection install failed: {installed.stdout}{installed.stderr}", pytrace=False)
    assert (target / "ansible_collections" / "esbgen" / "esb" / "plugins" / "modules" / "esbgen.py").is_file()
    return target


# Each host's ESB: a long-sleeping program, which exits at once (on esb1, supervisord makes it FATAL) while
# the host's `broken` file and the clone's folder are both there: the clone's code does not start there.
PROGRAM = """#!/bin/sh
if [ -e {broken} ] && [ -d {root}/components/confapis/bk_sops_ce ]; then
    echo "bk_sops_ce: cannot import its component on this host" >&2
    exit 1
fi
exec {python} -c "import signal; signal.pause()"
"""


def make_hosts(base: Path, sshd: Sshd) -> list[Host]:
    hosts = []
    for name, port in sshd.ports.items():
        folder = base / name
        root = folder / "esb"
        shutil.copytree(FIXTURES / "esb", root, symlinks=True)
        (folder / "sv").mkdir(parents=True)
        program = folder / "esb-program.sh"
        host = Host(name, root, None, port)
        program.write_text(PROGRAM.format(broken=host.broken, root=root, python=sys.executable))
        program.chmod(0o755)
        # esb1's start counts after a second, so that its program exiting at once is a failed start (FATAL)
        startsecs = 1 if name == "esb1" else 0
        host.supervisor = Supervisor(folder / "sv", f"command={program}\nstartsecs={startsecs}\nstartretries=0\n"
                                                    "stopwaitsecs=10\nautorestart=false\n")
        host.supervisor.start()
        hosts.append(host)
    return hosts


# The clone's host setting, as an operator defines it on every host before the run: the same line
# everywhere, since a plan fingerprints the settings file. Nothing listens there; verify reads files only.
HOST_SETTING = 'BK_SOPS_CE_URL = "http://127.0.0.1:18013"'


def define_host_setting(root: Path, line: str = HOST_SETTING) -> None:
    path = root / "configs" / "default.py"
    path.write_text(path.read_text() + line + "\n")


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP as numbers: {host: {"ok": .., "changed": .., "failed": .., ...}}."""
    found = {}
    lines = output.splitlines()
    if "PLAY RECAP" not in output:
        return found
    start = next(i for i, line in enumerate(lines) if line.startswith("PLAY RECAP"))
    for line in lines[start + 1:]:
        if ":" not in line or "=" not in line:
            continue
        host, counts = line.split(":", 1)
        found[host.strip()] = {key: int(value) for key, value in (pair.split("=") for pair in counts.split())}
    return found


def task_results(output: str) -> dict[str, list[tuple[str, str]]]:
    """Each task's host lines, in order: {"task name": [("changed", "esb1"), ("skipping", "esb2"), ...]}."""
    import re

    found: dict[str, list[tuple[str, str]]] = {}
    task = None
    for line in output.splitlines():
        header = re.match(r"^(?:TASK|RUNNING HANDLER) \[(.*)\] \*", line)
        if header:
            task = header.group(1)
            continue
        status = re.match(r"^(ok|changed|skipping|failed|fatal): \[([^\]]+)\]", line)
        if status and task is not None:
            found.setdefault(task, []).append((status.group(1), status.group(2).split(" ->")[0]))
    return found

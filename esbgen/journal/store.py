"""Where a journal lives and who may write it: the state folder of an ESB root (``.esbgen/``) or the
host's (``$ESBGEN_STATE_DIR``), private to its owner, and the lock one writer at a time holds on it.

The lock is an flock on the ESB root folder; ``lock`` in the state folder names the run that holds it.
The state folder appears with the first change recorded in it: a run that holds the lock without
recording a change removes what it made.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shlex
import shutil
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from esbgen.errors import EsbgenError, Refused

STATE_DIR = ".esbgen"
HOST_STATE_ENV = "ESBGEN_STATE_DIR"
HOST_STATE_DEFAULT = "/var/lib/esbgen"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def host_store() -> Path:
    """The host's state folder, ``$ESBGEN_STATE_DIR`` or /var/lib/esbgen: the journal of changes that belong
    to no ESB tree (swaps). It is made with the first change recorded in it, never by a dry or refused run."""
    return Path(os.path.abspath(os.environ.get(HOST_STATE_ENV) or HOST_STATE_DEFAULT))


def private_dir(path: Path) -> Path:
    """Make ``path`` (its parent exists) a folder only its owner reads, or make an existing one so."""
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        if path.is_symlink() or not path.is_dir():
            raise
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o7777 != PRIVATE_DIR:
            os.chmod(path, PRIVATE_DIR)
    return path


def write_private(path: Path, data: bytes) -> None:
    """A new file only its owner reads (never through a link, never over an existing file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def is_host_store(root: Path) -> bool:
    """The host's state folder is its own journal's root; an ESB root keeps its journal in .esbgen/."""
    return os.path.realpath(root) == os.path.realpath(host_store())


def state_dir(root: Path) -> Path:
    return root if is_host_store(root) else root / STATE_DIR


def work_dir(root: Path) -> Path:
    """A scratch folder on the tree's file system, so staged output moves into place by rename.

    It lives in the state folder, which this creates if needed; a run that
    holds the lock without recording a change removes what it created (see ``locked``).
    """
    path = ensure_state_dir(root) / "tmp" / uuid.uuid4().hex[:12]
    try:
        private_dir(path.parent)
        private_dir(path)
    except OSError as error:
        raise EsbgenError(f"cannot make a scratch folder in {state_dir(root)}: {error.strerror or error}") from None
    return path


def drop_work_dir(path: Path) -> None:
    """Remove a scratch folder of ``work_dir``, and ``tmp/`` with it once it is empty."""
    shutil.rmtree(path, ignore_errors=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Locking


def lock_timeout() -> float:
    try:
        return max(0.0, float(os.environ.get("ESBGEN_LOCK_TIMEOUT", "5")))
    except ValueError:
        return 5.0


def safe_argv() -> list[str]:
    """This run's arguments with any password in a database URL masked (they go into .esbgen/)."""
    try:
        from esbgen.db.connection import redact_argv
    except ImportError:  # pragma: no cover - esbgen.db.connection is part of esbgen
        return ["***" if "://" in arg else arg for arg in sys.argv[1:]]
    return redact_argv(sys.argv[1:])


def _holder_line() -> str:
    return f"esbgen pid {os.getpid()} ({_shown_command(safe_argv())}) since {utc_now()}"


def _shown_command(argv: list[str]) -> str:
    command = " ".join(shlex.quote(arg) for arg in argv)
    command = "".join(c if c.isprintable() else repr(c)[1:-1] for c in command)  # one line, whatever the arguments
    if len(command) > 200:
        command = command[:197] + "..."
    return command or "no arguments"


def _state_dir_checked(root: Path) -> Path:
    directory = state_dir(root)
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise EsbgenError(f"{directory} is not a folder (a link or a file); esbgen keeps its journal only in a real folder")
    return directory


@dataclass
class _Held:
    """The lock this process holds on one ESB root."""

    root: Path
    fd: int
    tidy: bool  # remove the state folder on release if this run created it and recorded no change
    created_state: bool = False
    holder: Any = None  # the open lock file naming this run, once the state folder exists
    depth: int = 1


_HELD: dict[str, _Held] = {}


def _held(root: Path) -> _Held | None:
    return _HELD.get(os.path.realpath(root))


def _write_holder(held: _Held) -> None:
    """Name this run in ``.esbgen/lock`` for a run that waits (informational: the lock is on the root folder)."""
    if held.holder is not None:
        return
    try:
        # private: the line names a command line, which is no one else's business
        fd = os.open(state_dir(held.root) / "lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE)
        handle = os.fdopen(fd, "r+", encoding="utf-8")
    except OSError:
        return
    held.holder = handle
    try:
        os.fchmod(handle.fileno(), 0o600)  # a lock file of an earlier esbgen was made with the umask's mode
        handle.seek(0)
        handle.truncate()
        handle.write(_holder_line() + "\n")
        handle.flush()
    except OSError:
        pass


def ensure_state_dir(root: Path) -> Path:
    """The state folder, created now if it is missing: only for a change that is about to be staged or applied."""
    directory = _state_dir_checked(root)
    held = _held(root)
    if not directory.is_dir():
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            _state_dir_checked(root)
        except OSError as error:
            raise EsbgenError(f"cannot make esbgen's state folder {directory}: {error.strerror or error}") from None
        else:
            if held is not None:
                held.created_state = True
    if held is not None:
        _write_holder(held)
    return directory


def _recorded_any_change(root: Path) -> bool:
    folder = state_dir(root) / "journal"
    try:
        return any(folder.iterdir())
    except OSError:
        return False


def _open_root(root: Path) -> int:
    try:
        return os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as error:
        raise EsbgenError(f"cannot lock {root}: {error.strerror or error}") from None


def _holder_of(root: Path) -> str:
    try:
        named = (state_dir(root) / "lock").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        named = ""
    return named or _flock_holder(root) or "another esbgen run"


def _flock_holder(root: Path) -> str | None:
    """The process holding the flock on ``root``, from the kernel's list of locks (Linux): a run that has not
    made the state folder yet (it writes nothing to take the lock) is named all the same."""
    try:
        info = os.stat(root)
        with open("/proc/locks", encoding="ascii") as locks:
            rows = locks.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    inode = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for row in rows:
        fields = row.split()  # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF"; a waiter's row reads "1: -> FLOCK ..."
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode and fields[4].isdigit():
            return _process_line(int(fields[4]))
    return None


def _process_line(pid: int) -> str:
    """A process as the lock's line names a run: its id, its command (passwords masked), since when."""
    from esbgen.db.connection import redact_argv

    try:
        argv = [arg.decode(errors="replace") for arg in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]]
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])  # field 22, starttime
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return f"pid {pid}"
    since = datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), timezone.utc)
    return f"pid {pid} ({_shown_command(redact_argv(argv))}) since {since.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def _make_host_store(root: Path) -> bool:
    """A host state folder is what the lock is taken on: made (private to root) when a run is about to change
    something; the lock's release removes it again if no change was recorded."""
    if not is_host_store(root) or os.path.isdir(root):
        return False
    try:
        os.makedirs(root, mode=0o700)
    except FileExistsError:
        return False
    except OSError as error:
        raise Refused(f"cannot make esbgen's state folder {root} (${HOST_STATE_ENV}): {error.strerror or error}") from None
    return True


@contextmanager
def locked(root: Path, timeout: float | None = None, *, create: bool = True) -> Iterator[None]:
    """One esbgen writer per ESB root: wait briefly for the lock, then refuse naming its holder.

    The lock is an flock on the ESB root folder itself, so taking it writes
    nothing.  ``.esbgen/lock`` names the run that holds it, once the state
    folder exists.  ``create`` makes the state folder and that file at once;
    without it (the commands), they appear only when a change is staged
    (``work_dir``, ``prepare``), and a run that then records no change removes
    the state folder it made before it lets go of the lock: a refused or
    empty run leaves the tree as it found it.
    """
    _state_dir_checked(root)
    held = _held(root)
    if held is not None:  # this process holds it already (a nested use)
        held.depth += 1
        try:
            if create:
                ensure_state_dir(root)
            yield
        finally:
            held.depth -= 1
        return
    wait = lock_timeout() if timeout is None else timeout
    made = _make_host_store(root)
    try:
        fd = _open_root(root)
    except BaseException:
        if made:
            shutil.rmtree(root, ignore_errors=True)
        raise
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise EsbgenError(f"cannot lock {root}: {error.strerror}") from None
                if time.monotonic() >= deadline:
                    raise EsbgenError(
                        f"{root} is locked by {_holder_of(root)}; waited {wait:g} s ($ESBGEN_LOCK_TIMEOUT): "
                        "try again when it has finished"
                    ) from None
                time.sleep(0.05)
    except BaseException:
        os.close(fd)
        if made:
            shutil.rmtree(root, ignore_errors=True)
        raise
    held = _Held(root, fd, tidy=not create, created_state=made)
    _HELD[os.path.realpath(root)] = held
    try:
        if create or state_dir(root).is_dir():
            ensure_state_dir(root)
        yield
    finally:
        try:
            if held.holder is not None:
                try:
                    held.holder.seek(0)
                    held.holder.truncate()
                    held.holder.flush()
                except OSError:
                    pass
                try:
                    held.holder.close()
                except OSError:  # a full disk refuses even the holder line's flush: the lock goes anyway
                    pass
            if held.tidy and held.created_state and not _recorded_any_change(root):
                shutil.rmtree(state_dir(root), ignore_errors=True)
        finally:
            _HELD.pop(os.path.realpath(root), None)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

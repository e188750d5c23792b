"""A clone's helper process: cookiecutter renders the template there, and the verbatim files are
copied there, while esbgen reads, checks and stages the clone on the other core.

Started when a clone begins, the helper imports cookiecutter (0.15 s of Jinja, rich, arrow and
slugify in a fresh interpreter) and copies the files no clone edits (at 20,000 channels 40,000
apidocs, mostly the kernel's work of creating files, on which a thread of esbgen's would wait for
the interpreter lock) while esbgen reads the tree; it then renders the template and copies the
other verbatim files. (Importing after the first copy instead made a real-sized clone wait for
cookiecutter: 3.2x ``--help`` against 2.7x.) For each copied file it
tells what ``journal.remember_written`` keeps: its stat key and the sha256 of its bytes.

The helper is forked by esbgen's console script (esbgen/console.py, before click and the plugins
load), or else this file run by ``python -I -S`` (the standard library only, until it is given
esbgen's ``sys.path``). It reads one JSON message a line on stdin:

- ``{"kind": "path", "path": [...]}``: take that ``sys.path`` and import cookiecutter; says ``ready``;
- ``{"kind": "render", "template": ..., "values": {...}, "output": ...}``: cookiecutter's
  ``generate_files``, as ``esbgen.template.render`` calls it; says ``rendered``;
- ``{"kind": "copy", "jobs": <file>, "results": <file>}``: copy each ``[source folder, destination
  folder, [name or [source name, destination name], ...]]`` of the jobs file; one line
  ``dev ino size mtime_ns ctime_ns sha256`` a file in the results file; says ``copied``. A copy
  looks for a message every CHUNK files: a render asked for meanwhile is done first (esbgen waits
  for the rendered files to compare them with the clone it checked, not for the copies);
- ``{"kind": "fingerprint", "folders": [...], "results": <file>, "rendered": [...]}``: once the
  copies asked for before it are done, ``journal.tree_fingerprint`` of each folder (null for one
  not there), as a JSON object in the results file, a copied file from what was noted when it was
  written (but a ``rendered`` one); says ``fingerprinted``. esbgen asks for it last, for the
  folders the clone stages, so that it need not stat 40,000 files again itself.

On its stdout it says what is done, one word a line, or ``! <json>`` for the failure it stops
at. It ignores SIGINT (esbgen stops it and words the interruption) and dies with esbgen.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import sys
from contextlib import contextmanager
from os.path import normpath
from typing import Iterator

POLL = 0.1  # seconds between looks while waiting for the helper (Ctrl-C is acted on meanwhile)


# --- the helper's side ----------------------------------------------------------------------------


PROCESS_NAME = b"esbgen-helper"  # what ps and /proc/PID/comm show of a helper (a forked one has esbgen's command line)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when esbgen's ends (a killed esbgen leaves no helper writing),
    and to name it PROCESS_NAME."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        libc.prctl(15, PROCESS_NAME)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # esbgen ended before the request took hold
        os._exit(1)


def copy_bytes(source: str, destination: str) -> tuple[os.stat_result, bytes]:
    """copyfile + copymode, in the fewest system calls: one read where the size is known, and no
    chmod where the file is created with its mode (8 calls for a file of 2 KB, where it took 10; shutil's take 14).
    What stat says of the copy once written, and its bytes. esbgen copies with it too, without a helper."""
    fd = os.open(source, os.O_RDONLY)
    try:
        info = os.fstat(fd)
        data = os.read(fd, info.st_size + 1)  # a short read of a regular file is its end
        if len(data) > info.st_size:  # it grew meanwhile: read on to the end
            chunks = [data]
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    mode = info.st_mode & 0o7777
    try:
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        created = True
    except FileExistsError:  # copied again (esbgen does what a helper that stopped could not finish)
        fd = os.open(destination, os.O_WRONLY | os.O_TRUNC)
        created = False
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if not created or mode & (_umask() | 0o7000):  # open() gave less than the source's mode
            os.fchmod(fd, mode)
        return os.fstat(fd), data
    finally:
        os.close(fd)


_UMASK: int | None = None


def _umask() -> int:
    """This process's umask, read where Linux tells it without changing it; else taken as all bits
    (a chmod a file, as before)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = 0o7777
        try:
            with open("/proc/self/status", "rb") as handle:
                for line in handle:
                    if line.startswith(b"Umask:"):
                        _UMASK = int(line.split()[1], 8)
                        break
        except (OSError, ValueError, IndexError):
            pass
    return _UMASK


def copy_jobs(jobs: list[list], copied) -> None:
    """Copy every file of ``jobs`` (``[source folder, destination folder, [name or [source name,
    destination name], ...]]``); ``copied(stat, data, destination)`` after each. A failure names the file."""
    for source_folder, destination_folder, names in jobs:
        os.makedirs(destination_folder, exist_ok=True)
        for entry in names:
            source_name, destination_name = (entry, entry) if isinstance(entry, str) else entry
            source = os.path.join(source_folder, source_name)
            destination = os.path.join(destination_folder, destination_name)
            try:
                info, data = copy_bytes(source, destination)
            except OSError as error:
                error.filename = error.filename or source
                raise
            copied(info, data, destination)


CHUNK = 200  # files copied between two looks for a message waiting (a render goes first)


def _copy_all(jobs_file: str, results_file: str, between, written: dict, recorded: dict) -> None:
    """Copy the files of a jobs file, a results line each, into ``written`` their stat keys and
    sha256s, into ``recorded`` their modes and sha256s by path; ``between()`` after every CHUNK files."""
    with open(jobs_file, "rb") as handle:
        jobs = json.loads(handle.read().decode("utf-8", "surrogateescape"))
    stat_key = _fingerprint_module().stat_key
    done = 0
    with open(results_file, "wb", buffering=1 << 16) as out:

        def copied(info: os.stat_result, data: bytes, destination: str) -> None:
            nonlocal done
            key = stat_key(info)
            written[key] = sha = hashlib.sha256(data).hexdigest().encode()
            recorded[destination] = (info.st_mode, sha)  # found by the fingerprint's own spelling of it, or not at all
            out.write(b"%d %d %d %d %d %s\n" % (*key, sha))
            done += 1
            if done % CHUNK == 0:
                out.flush()
                between()

        copy_jobs(jobs, copied)


class _Messages:
    """esbgen's messages on stdin, a JSON object a line, read as they come (never more than is there)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._ended = False

    def waiting(self) -> bool:
        return b"\n" in self._buffer or (not self._ended and bool(select.select([0], [], [], 0)[0]))

    def next(self) -> dict | None:
        """The next message; None once stdin is closed."""
        while b"\n" not in self._buffer:
            chunk = b"" if self._ended else os.read(0, 1 << 16)
            if not chunk:
                self._ended = True
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        # bytes both ways: a path that is not UTF-8 travels as surrogate escapes, whatever the locale
        return json.loads(line.decode("utf-8", "surrogateescape"))


_FINGERPRINT = None


def _fingerprint_module():
    """esbgen/fingerprint.py, loaded by its file: the path esbgen gives need not hold esbgen (an
    editable install's finder), and the helper keys and fingerprints as the journal does."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import importlib.util

        spec = importlib.util.spec_from_file_location("_esbgen_fingerprint",
                                                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "fingerprint.py"))
        _FINGERPRINT = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_FINGERPRINT)
    return _FINGERPRINT


def _fingerprint(message: dict, written: dict, recorded: dict) -> None:
    """journal.tree_fingerprint of each folder asked for (null for one not there), as JSON in the results file.

    A copied file is fingerprinted from what was noted when it was written, but where the render
    wrote (the message's ``rendered`` paths): that file is looked at again."""
    tree_fingerprint = _fingerprint_module().tree_fingerprint
    for path in message.get("rendered", []):
        recorded.pop(normpath(path), None)
    found = {folder: tree_fingerprint(folder, written, None, recorded) if os.path.isdir(folder) else None
             for folder in message["folders"]}
    with open(message["results"], "w", encoding="utf-8", errors="surrogateescape") as out:
        json.dump(found, out, ensure_ascii=False)


def _render(message: dict) -> None:
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.generate import generate_files

    template = message["template"]
    with open(os.path.join(template, "cookiecutter.json"), "rb") as handle:  # bytes: no newline translation of 7 MB
        defaults = json.loads(handle.read())
    context = {"cookiecutter": {**defaults, **message["values"]}}
    try:
        generate_files(repo_dir=template, context=context, output_dir=message["output"], overwrite_if_exists=True,
                       accept_hooks=False)
    except CookiecutterException as error:
        raise _Told(f"rendering the template failed: {error}") from error


class _Told(Exception):
    """A failure worded for the operator already."""


def helper_main(parent: int | None = None) -> int:
    """The helper's loop; ``parent``: esbgen's pid (else the first argument: this file run by Python)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(int(sys.argv[1]) if parent is None else parent)
    control = sys.stdout.buffer
    messages = _Messages()
    queued: list[dict] = []  # copies and fingerprints asked for, in order; a render asked for meanwhile goes first
    written: dict = {}  # stat key -> sha256 of every file copied
    recorded: dict = {}  # path -> mode and sha256 of every file copied

    def say(line: bytes) -> None:
        control.write(line + b"\n")
        control.flush()

    doing = "path"  # what a failure is told as: the work under way when it happened

    def take(message: dict) -> None:
        nonlocal doing
        kind, before = message["kind"], doing
        doing = kind
        if kind == "path":
            sys.path[:] = message["path"]
            import cookiecutter.generate  # noqa: F401 - imported now, while esbgen reads the tree
            from cookiecutter.utils import create_env_with_context

            create_env_with_context({})  # the extensions it loads (arrow, slugify) and Jinja's lexer, ahead
            say(b"ready")
        elif kind == "render":
            _render(message)
            say(b"rendered")
        elif kind in ("copy", "fingerprint"):
            queued.append(message)
        doing = before

    def between() -> None:
        while messages.waiting():
            message = messages.next()
            if message is None:
                return
            take(message)

    try:
        while True:
            if queued:
                message = queued.pop(0)
                doing = message["kind"]
                if doing == "copy":
                    _copy_all(message["jobs"], message["results"], between, written, recorded)
                    say(b"copied")
                else:
                    _fingerprint(message, written, recorded)
                    say(b"fingerprinted")
                doing = "idle"
                continue
            message = messages.next()
            if message is None:
                return 0
            take(message)
    except _Told as told:
        say(b"! " + json.dumps({"kind": doing, "message": str(told)}).encode())
    except OSError as error:
        filename = os.fsdecode(error.filename) if error.filename is not None else None
        say(b"! " + json.dumps({"kind": doing, "filename": filename, "strerror": error.strerror or str(error)}).encode())
    except Exception as error:  # noqa: BLE001 - whatever stopped it, said in one line
        say(b"! " + json.dumps({"kind": doing, "message": f"{type(error).__name__}: {error}"}).encode())
    return 1


# --- esbgen's side ---------------------------------------------------------------------------------


_prestarted: "RenderHelper | None" = None


def prestart(forked: "tuple[int, int, int, int] | None" = None) -> None:
    """Start the next clone's helper now: the command line does, before it loads its own modules
    and plugins, so that the helper's import of cookiecutter is over when the clone needs it.
    ``forked``: a helper the console script forked already (console.fork_helper)."""
    global _prestarted
    if _prestarted is None:
        try:
            _prestarted = RenderHelper(_Forked(*forked) if forked is not None else None)
        except OSError:
            pass


def discard_prestarted() -> None:
    """Stop a helper started for a clone that never came to render (a refusal, --help, an error)."""
    global _prestarted
    helper, _prestarted = _prestarted, None
    if helper is not None:
        helper.stop()


@contextmanager
def start_helper() -> Iterator["RenderHelper | None"]:
    """The helper of a clone (the one started ahead, else a new one); None where none can be
    started (esbgen then renders in its own process). Leaving the block stops it."""
    global _prestarted
    helper, _prestarted = _prestarted, None
    if helper is None:
        try:
            helper = RenderHelper()
        except OSError:
            yield None
            return
    try:
        yield helper
    finally:
        helper.stop()


class _Forked:
    """A helper forked by the console script, with what esbgen uses of a ``subprocess.Popen``."""

    def __init__(self, pid: int, stdin: int, stdout: int, stderr: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = os.fdopen(stdin, "wb")
        self.stdout = os.fdopen(stdout, "rb")
        self.stderr = os.fdopen(stderr, "rb")

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)


class HelperUnusable(Exception):
    """The helper could not start or import cookiecutter: esbgen renders in its own process instead."""


class RenderHelper:
    """The helper process of one clone. Use it as a context manager: leaving the block stops a
    helper still running (a refusal, an error, Ctrl-C), so nothing writes into the scratch folder
    after esbgen has left it."""

    def __init__(self, process: "_Forked | None" = None) -> None:
        self._copies: list[tuple[str, int]] = []  # (results file, files) of each copy asked for
        self._fingerprints: str | None = None  # the results file of the fingerprints asked for
        self._said: list[str] = []  # what the helper has said so far, in order
        self._buffer = b""
        self._errors = b""  # the end of what the helper wrote to stderr (a Python that cannot start says why)
        self._stderr_ended = False
        self._done = False
        if process is None:
            import subprocess

            process = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        self._process = process
        # entries as text (a tool may put a Path or bytes there); what JSON cannot carry, the helper goes without
        path = [os.fsdecode(entry) for entry in sys.path if isinstance(entry, (str, bytes, os.PathLike))]
        self._send({"kind": "path", "path": path})

    def __enter__(self) -> "RenderHelper":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _send(self, message: dict) -> None:
        try:
            self._process.stdin.write(json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogateescape") + b"\n")
            self._process.stdin.flush()
        except OSError:
            pass  # the helper has ended: what it said tells why

    def render(self, template_dir: str, values: dict, output_dir: str) -> None:
        """Ask for the template to be rendered (cookiecutter's generate_files) into ``output_dir``."""
        self._send({"kind": "render", "template": template_dir, "values": values, "output": output_dir})

    def copy(self, jobs: list[list], scratch: str) -> None:
        """Ask for the files of ``jobs`` to be copied; the list goes by a file in ``scratch`` (a pipe
        would block esbgen while the helper is busy)."""
        number = len(self._copies)
        jobs_file = os.path.join(scratch, f"copy-{number}.json")
        results_file = os.path.join(scratch, f"copied-{number}.txt")
        with open(jobs_file, "wb") as handle:
            handle.write(json.dumps(jobs, ensure_ascii=False).encode("utf-8", "surrogateescape"))
        self._copies.append((results_file, sum(len(names) for _, _, names in jobs)))
        self._send({"kind": "copy", "jobs": jobs_file, "results": results_file})

    def wait_rendered(self) -> None:
        """Until the template is rendered. HelperUnusable if the helper could not import cookiecutter."""
        self._wait_for("rendered")

    def fingerprint(self, folders: list[str], scratch: str, rendered: list[str] = ()) -> None:
        """Ask for the fingerprint of each folder once the copies asked for so far are done
        (the last request: nothing may write into them after it); ``rendered``: the files the
        render writes."""
        self._fingerprints = os.path.join(scratch, "fingerprints.json")
        self._send({"kind": "fingerprint", "folders": folders, "results": self._fingerprints,
                    "rendered": list(rendered)})

    def finish(self, tick=None) -> dict[str, str | None]:
        """Until every copy (and the fingerprints asked for) is done; the fingerprints, by folder."""
        from esbgen.errors import EsbgenError

        for number in range(len(self._copies)):
            self._wait_for("copied", number + 1, tick)
        found: dict[str, str | None] = {}
        if self._fingerprints is not None:
            self._wait_for("fingerprinted")
            with open(self._fingerprints, encoding="utf-8", errors="surrogateescape") as handle:
                found = json.load(handle)
        self._send({"kind": "end"})
        self._stop_input()
        for results_file, expected in self._copies:
            with open(results_file, "rb") as handle:
                copied = handle.read().count(b"\n")
            if copied != expected:
                raise EsbgenError(f"copying the clone's files failed: {copied} of {expected} copied")
        return found

    def written(self) -> dict[tuple[int, int, int, int, int], bytes]:
        """The stat key and sha256 of each file copied (journal.remember_written's), once finished;
        none once the scratch folder is gone (the journal then reads the files)."""
        written: dict[tuple[int, int, int, int, int], bytes] = {}
        for results_file, _ in self._copies:
            try:
                with open(results_file, "rb") as handle:
                    data = handle.read()
            except OSError:
                return {}
            for line in data.decode("ascii").splitlines():
                *key, sha = line.split(" ")
                written[tuple(int(part) for part in key)] = sha.encode()  # type: ignore[misc]
        return written

    def _wait_for(self, word: str, count: int = 1, tick=None) -> None:
        from esbgen.errors import EsbgenError

        results = self._copies[count - 1][0] if word == "copied" else None
        seen = 0
        stdout, stderr = self._process.stdout, self._process.stderr
        while self._said.count(word) < count:
            ready, _, _ = select.select([stdout, stderr] if not self._stderr_ended else [stdout], [], [], POLL)
            if stderr in ready:  # read as it comes: a full pipe would stop the helper
                chunk = os.read(stderr.fileno(), 65536)
                self._stderr_ended = not chunk
                self._errors = (self._errors + chunk)[-8192:]
            if stdout in ready:
                chunk = os.read(stdout.fileno(), 65536)
                if not chunk:
                    self._process.wait()
                    if not self._stderr_ended:
                        self._errors = (self._errors + stderr.read())[-8192:]
                    error = self._errors.decode("utf-8", errors="replace").strip()
                    detail = error.splitlines()[-1] if error else f"exit status {self._process.returncode}"
                    if "ready" not in self._said:  # it never started working: esbgen does the work itself
                        raise HelperUnusable(detail)
                    raise EsbgenError(f"the clone's helper process ended: {detail}")
                self._buffer += chunk
                *lines, self._buffer = self._buffer.split(b"\n")
                for line in lines:
                    said = line.decode("utf-8", errors="replace")
                    if said.startswith("! "):
                        self._failed(json.loads(said[2:]))
                    self._said.append(said)
            if tick is not None and results is not None:
                seen = self._tick_copied(results, seen, tick)
        if tick is not None and results is not None:
            self._tick_copied(results, seen, tick)

    def _tick_copied(self, results: str, seen: int, tick) -> int:
        try:
            with open(results, "rb") as handle:
                count = handle.read().count(b"\n")
        except OSError:
            return seen
        if count > seen:
            tick(count - seen)
        return max(count, seen)

    def _failed(self, failure: dict) -> None:
        from esbgen.errors import EsbgenError

        self.stop()
        if failure["kind"] == "path":
            raise HelperUnusable(failure.get("message") or failure.get("strerror") or "cannot import cookiecutter")
        if "strerror" in failure:
            if failure["kind"] == "copy":
                raise EsbgenError(f"copying {failure['filename'] or 'a file'} failed: {failure['strerror']}")
            raise EsbgenError(f"rendering the template failed: {failure['strerror']}: {failure['filename'] or 'a file'}")
        raise EsbgenError(failure["message"])

    def _stop_input(self) -> None:
        try:
            self._process.stdin.close()
        except OSError:
            pass

    def stop(self) -> None:
        """End the helper (killed if it still works) and wait for it to be gone."""
        if self._done:
            return
        self._done = True
        self._stop_input()
        if self._process.poll() is None:
            try:
                self._process.kill()
            except OSError:
                pass
        self._process.wait()
        for stream in (self._process.stdout, self._process.stderr):
            try:
                stream.close()
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(helper_main())

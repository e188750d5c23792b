"""Copying a clone's verbatim files in a helper process, while esbgen checks the clone.

A 20,000-channel system has 40,000 apidocs to copy, which is mostly the kernel's work of
creating files; a thread of this process would wait for the interpreter lock after each
system call while the checks hold it. So a second interpreter (``python -I -S`` running this
file, the standard library only) copies them on the other core, and tells, for each file, what
``journal.remember_written`` keeps: its stat key and the sha256 of its bytes.

The job is a JSON list of ``[source folder, destination folder, [name or [source name,
destination name], ...]]`` on the helper's stdin; each copied file is one line on its stdout
(``dev ino size mtime_ns ctime_ns sha256``), a failure one line ``! <json>`` and exit status 1.
The helper ignores SIGINT (esbgen stops it and words the interruption) and dies with esbgen.

Only the standard library is imported at the top: this file is also the helper's program.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys

POLL = 0.1  # seconds between looks at the helper while waiting for it (Ctrl-C is acted on meanwhile)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when esbgen's ends (a killed esbgen leaves no helper writing)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # esbgen ended before the request took hold
        os._exit(1)


def _copy(source: str, destination: str, out) -> None:
    fd = os.open(source, os.O_RDONLY)
    try:
        mode = os.fstat(fd).st_mode & 0o7777
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
        info = os.fstat(fd)
    finally:
        os.close(fd)
    out.write(b"%d %d %d %d %d %s\n" % (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
                                        hashlib.sha256(data).hexdigest().encode()))


def helper_main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(int(sys.argv[1]))
    # bytes both ways: a path that is not UTF-8 travels as surrogate escapes, whatever the locale
    jobs = json.loads(sys.stdin.buffer.read().decode("utf-8", "surrogateescape"))
    out = sys.stdout.buffer
    source = ""
    try:
        for source_folder, destination_folder, names in jobs:
            os.makedirs(destination_folder, exist_ok=True)
            for entry in names:
                source_name, destination_name = (entry, entry) if isinstance(entry, str) else entry
                source = os.path.join(source_folder, source_name)
                _copy(source, os.path.join(destination_folder, destination_name), out)
    except OSError as error:
        failure = {"filename": error.filename or source, "strerror": error.strerror or str(error)}
        out.write(b"! " + json.dumps(failure).encode() + b"\n")
        out.flush()
        return 1
    out.flush()
    return 0


class BackgroundCopy:
    """The helper copying a list of folders' files; ``wait()`` for it, ``stop()`` it.

    Use it as a context manager: leaving the block stops a helper still running (an error
    or Ctrl-C in the checks), so nothing writes into the scratch folder after esbgen leaves it.
    """

    def __init__(self, jobs: list[list], results: str, total: int) -> None:
        import subprocess

        self.total = total
        # the helper's stdout is its own handle on the file: one shared handle would share its offset
        with open(results, "wb") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid())],
                stdin=subprocess.PIPE, stdout=out, stderr=subprocess.PIPE,
            )
        self._results = open(results, "rb")
        try:
            self._process.stdin.write(json.dumps(jobs, ensure_ascii=False).encode("utf-8", "surrogateescape"))
            self._process.stdin.close()
        except OSError:
            pass  # the helper ended at once: wait() tells why
        self._done = False

    def __enter__(self) -> "BackgroundCopy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait(self, tick=None) -> dict[tuple[int, int, int, int, int], bytes]:
        """Wait for the copy; the stat key and sha256 of each file copied. Raises EsbgenError if one failed."""
        import subprocess

        from esbgen.errors import EsbgenError

        data = bytearray()
        while True:
            try:
                self._process.wait(timeout=POLL)
                break
            except subprocess.TimeoutExpired:
                if tick is not None:
                    self._read_new(data, tick)
        self._done = True
        self._read_new(data, tick)
        error = self._process.stderr.read().decode("utf-8", errors="replace").strip() if self._process.stderr else ""
        self._close()
        lines = data.decode("ascii").splitlines()
        written: dict[tuple[int, int, int, int, int], bytes] = {}
        for line in lines:
            if line.startswith("! "):
                failure = json.loads(line[2:])
                raise EsbgenError(f"copying {failure['filename']} failed: {failure['strerror']}")
            *key, sha = line.split(" ")
            written[tuple(int(part) for part in key)] = sha.encode()  # type: ignore[misc]
        if self._process.returncode != 0 or len(written) != self.total:
            detail = error.splitlines()[-1] if error else f"exit status {self._process.returncode}"
            raise EsbgenError(f"copying the clone's files failed: {detail}")
        return written

    def _read_new(self, data: bytearray, tick) -> None:
        """Take in what the helper wrote since the last look; tick for each file it names."""
        chunk = self._results.read()
        if chunk:
            data += chunk
            if tick is not None:
                tick(chunk.count(b"\n"))

    def stop(self) -> None:
        """Kill the helper if it still runs, and wait for it to be gone."""
        if not self._done:
            self._done = True
            try:
                self._process.kill()
            except OSError:
                pass
            self._process.wait()
            self._close()

    def _close(self) -> None:
        for stream in (self._results, self._process.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(helper_main())

"""Byte-exact file helpers shared by every command that writes."""

from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a part.

    A symbolic link stays a link (its target is replaced), and an existing file keeps its
    owner and permission bits, as an operator's editor would leave them.
    """
    path = Path(os.path.realpath(path))
    try:
        current = path.stat()
    except FileNotFoundError:
        current = None
    if mode is None:
        mode = current.st_mode if current is not None else 0o644
    mode &= 0o777  # never a setuid, setgid or sticky bit
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".esbgen-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if current is not None and (current.st_uid, current.st_gid) != (os.getuid(), os.getgid()):
            try:
                os.chown(tmp, current.st_uid, current.st_gid)
            except PermissionError:
                pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def remove_stray_temps(target: Path) -> None:
    """Remove the half-written files ``atomic_write_bytes`` leaves beside ``target`` when killed."""
    real = Path(os.path.realpath(target))
    try:
        names = os.listdir(real.parent)
    except OSError:
        return
    for name in names:
        if name.startswith(f".{real.name}.") and name.endswith(".esbgen-tmp"):
            try:
                os.unlink(real.parent / name)
            except FileNotFoundError:
                pass


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def unified_diff(before: bytes | None, after: bytes | None, label: str) -> str:
    """A unified diff an operator can read; line ends are shown where they change; secrets masked
    (``esbgen.redact``), context lines included."""
    from esbgen.redact import mask

    old = _lines(before)
    new = _lines(after)
    diff = difflib.unified_diff(
        old,
        new,
        fromfile=f"a/{label}" if before is not None else "/dev/null",
        tofile=f"b/{label}" if after is not None else "/dev/null",
        lineterm="",
    )
    return mask("\n".join(line.rstrip("\n") for line in diff))


def byte_edits(before: bytes, after: bytes) -> list[tuple[int, int, bytes]]:
    """The line spans of ``before`` that ``after`` replaces, as (start, end, new bytes), first to last."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    offsets = [0]
    for line in old:
        offsets.append(offsets[-1] + len(line))
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [(offsets[i1], offsets[i2], b"".join(new[j1:j2]))
            for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def apply_edits(before: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """``before`` with each (start, end, new bytes) span replaced; the spans in order, none overlapping."""
    parts, at = [], 0
    for start, end, text in edits:
        if not at <= start <= end <= len(before):
            raise ValueError(f"the span {start}-{end} is out of order or outside the file")
        parts += [before[at:start], text]
        at = end
    parts.append(before[at:])
    return b"".join(parts)


def _lines(data: bytes | None) -> list[str]:
    if data is None:
        return []
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    shown = []
    for line in lines:
        if line.endswith("\r\n"):
            shown.append(line[:-2] + "\\r\n")
        elif not line.endswith("\n"):
            shown.append(line + "\n\\ No newline at end of file\n")
        else:
            shown.append(line)
    return shown

"""Byte-exact file helpers shared by every command that writes."""

from __future__ import annotations

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
    (``esbgen.redact``), context lines included.

    Lines are matched by patience diff: difflib's matcher takes time in the product of the
    lines and the changes (a retarget of 2,000 channels, one changed line each: 19 s of 23).
    """
    from patiencediff import PatienceSequenceMatcher

    from esbgen.redact import mask

    old = _lines(before)
    new = _lines(after)
    out: list[str] = []
    for group in PatienceSequenceMatcher(None, old, new).get_grouped_opcodes(3):
        if not out:
            out.append(f"--- a/{label}" if before is not None else "--- /dev/null")
            out.append(f"+++ b/{label}" if after is not None else "+++ /dev/null")
        first, last = group[0], group[-1]
        out.append(f"@@ -{_hunk_range(first[1], last[2])} +{_hunk_range(first[3], last[4])} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(" " + line for line in old[i1:i2])
                continue
            out.extend("-" + line for line in old[i1:i2])
            out.extend("+" + line for line in new[j1:j2])
    return mask("\n".join(line.rstrip("\n") for line in out))


def _hunk_range(start: int, stop: int) -> str:
    """A hunk's range as GNU diff writes it: ``start,length``, the length left out when it is 1, and an
    empty range named by the line before it."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def byte_edits(before: bytes, after: bytes) -> list[tuple[int, int, bytes]]:
    """The line spans of ``before`` that ``after`` replaces, as (start, end, new bytes), first to last."""
    from patiencediff import PatienceSequenceMatcher

    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    offsets = [0]
    for line in old:
        offsets.append(offsets[-1] + len(line))
    matcher = PatienceSequenceMatcher(None, old, new)  # linear where difflib's is quadratic (see unified_diff)
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

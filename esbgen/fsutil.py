"""Byte-exact file helpers shared by every command that writes."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from esbgen.errors import EsbgenError

# Far above any real file esbgen reads (the largest confapis file of an ESB is tens of KB; a
# 20,000-channel one, 7 MB), and far below what parsing takes memory for (a YAML file costs
# about 40 times its size).
DEFAULT_MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_FILE_BYTES_SETTING = "ESBGEN_MAX_FILE_BYTES"
YAML_MAX_SETTING = "ESBGEN_MAX_YAML_BYTES"  # for YAML files alone, before the general one
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def max_file_bytes(settings: tuple[str, ...] = (MAX_FILE_BYTES_SETTING,)) -> int:
    """The size of the largest file esbgen reads and parses: the first of ``settings`` set in the
    environment ($ESBGEN_MAX_FILE_BYTES), else the default."""
    for name in settings:
        raw = os.environ.get(name)
        if raw is None or not raw.strip():
            continue
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if limit <= 0:
            raise EsbgenError(f"${name} is {raw!r}: give the largest file esbgen may read, in bytes")
        return limit
    return DEFAULT_MAX_FILE_BYTES


def size_text(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB" if size % (1024 * 1024) == 0 else f"{size} bytes"


def special_kind(mode: int) -> str | None:
    """What a file that is neither a regular file, a folder nor a link is: a FIFO, a socket, a device."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
        return None
    return "not a regular file"


def refuse_special(label, kind: str) -> EsbgenError:
    return EsbgenError(f"{label} is {kind}, not a regular file; esbgen reads regular files only (remove it first)")


def check_entry(entry: os.DirEntry, label) -> None:
    """Refuse a folder entry that is a FIFO, a socket or a device, by its type in the listing (never opened)."""
    try:
        if entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False) or entry.is_symlink():
            return
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError:  # gone since the listing: nothing to read there
        return
    kind = special_kind(mode)
    if kind is not None:
        raise refuse_special(label, kind)


def folder_entries(directory: str, *, by_name: bool = False) -> list[os.DirEntry]:
    """A folder's entries (sorted by name with ``by_name``), as os.walk reads them: an unreadable
    folder holds nothing."""
    try:
        with os.scandir(directory) as listing:
            return sorted(listing, key=lambda entry: entry.name) if by_name else list(listing)
    except OSError:
        return []


def refuse_special_files(folder: Path, label) -> None:
    """Refuse the first FIFO, socket or device anywhere under ``folder`` (links are not followed)."""
    pending = [(os.fspath(folder), str(label))]  # labels as str: a Path a file cost more than the listing
    while pending:
        directory, shown = pending.pop()
        for entry in folder_entries(directory):
            check_entry(entry, f"{shown}/{entry.name}")
            if entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, f"{shown}/{entry.name}"))


def read_input(path, label, *, follow_links: bool = True, limit: int | None = None) -> bytes:
    """The bytes of a file esbgen reads to parse: a regular file no larger than ``max_file_bytes()``.

    A FIFO, socket or device is refused by its type before it is opened (a FIFO would block
    the run, a device could be endless); the file is opened without blocking (and, without
    ``follow_links``, not through a link), and its type checked again on the open file, so a
    swap in between is refused too. Never more than the limit is read. An OSError (no such
    file, no permission) is the caller's to word, as with ``Path.read_bytes``.
    """
    limit = max_file_bytes() if limit is None else limit
    info = os.stat(path) if follow_links else os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise EsbgenError(f"{label} is a symbolic link; esbgen does not read through links here")
    kind = special_kind(info.st_mode) or (None if stat.S_ISREG(info.st_mode) else "a folder")
    if kind is not None:
        raise refuse_special(label, kind)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP and not follow_links:
            raise EsbgenError(f"{label} is a symbolic link; esbgen does not read through links here") from None
        raise
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise refuse_special(label, special_kind(opened.st_mode) or "a folder")
        if opened.st_size > limit:
            raise too_large(label, limit)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while read
                raise too_large(label, limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


def too_large(label, limit: int) -> EsbgenError:
    return EsbgenError(f"{label}: file is larger than {size_text(limit)}; refusing to read it "
                       f"(${MAX_FILE_BYTES_SETTING} sets the limit)")


def decode_text(data: bytes, label, what: str = "") -> str:
    """UTF-8 text of a file esbgen reads, or one line naming the first byte that is not.

    A byte order mark stays in the text (as U+FEFF), so that offsets into the text and the
    bytes written back keep it where it was. ``what``: what esbgen does with such files, said
    with the refusal.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        more = f"; {what}" if what else ""
        raise EsbgenError(f"{label}: not UTF-8 text (byte {error.start}){more}") from None


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


def lstat_components(root: Path, parts: tuple[str, ...]) -> Iterator[tuple[int, Path, os.stat_result]]:
    """Each component of ``root/parts`` in turn with its lstat (a link is looked at, never followed), up to
    the first that does not exist; another error of lstat is raised."""
    here = Path(root)
    for index, part in enumerate(parts):
        here = here / part
        try:
            info = os.lstat(here)
        except FileNotFoundError:
            return
        yield index, here, info


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

    return mask(unmasked_diff(before, after, label))


def unmasked_diff(before: bytes | None, after: bytes | None, label: str) -> str:
    """``unified_diff`` with its secrets still in it, for a caller that masks what it shows of it: masking
    the whole diff of a retarget of 20,000 channels took 1.2 s, to show its first hunk.

    Lines are matched by patience diff: difflib's matcher takes time in the product of the
    lines and the changes (a retarget of 2,000 channels, one changed line each: 19 s of 23).
    """
    from patiencediff import PatienceSequenceMatcher

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
    return "\n".join(line.rstrip("\n") for line in out)


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
    if "\r" not in text and len(lines) == text.count("\n"):  # every line ends in "\n": shown as it is
        return lines
    shown = []
    for line in lines:
        if line.endswith("\r\n"):
            shown.append(line[:-2] + "\\r\n")
        elif not line.endswith("\n"):
            shown.append(line + "\n\\ No newline at end of file\n")
        else:
            shown.append(line)
    return shown

"""What undo compares before it touches a folder it added: the names, kinds, modes and bytes under it."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from typing import Callable, Dict, Tuple

# device, inode, size, mtime and ctime in ns: any later change to a file changes its ctime, so a
# file whose key is still the one noted when it was written holds the bytes written
StatKey = Tuple[int, int, int, int, int]


def stat_key(info: os.stat_result) -> StatKey:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def tree_fingerprint(folder: str | os.PathLike, known: Dict[StatKey, bytes],
                     tick: Callable[[int], None] | None = None) -> str:
    """Names, kinds, modes and bytes of everything under ``folder`` (links are not followed); the
    sha256 of a file whose stat key ``known`` holds is not read again. ``tick(files)`` a folder."""
    digest = hashlib.sha256()
    update = digest.update
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()  # os.fsencode's, once
    pending = [""]
    while pending:
        relative_dir = pending.pop()
        update(b"D " + (relative_dir or ".").encode(encoding, errors) + b"\n")
        with os.scandir(os.path.join(folder, relative_dir)) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        prefix = relative_dir + "/" if relative_dir else ""
        subdirs = []
        lines = []  # one update a folder: the digest is the same as of each line in turn
        for entry in entries:
            relative = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(relative)
                continue
            info = entry.stat(follow_symlinks=False)
            mode = info.st_mode
            if stat.S_ISLNK(mode):
                kind, content = b"L", os.fsencode(os.readlink(entry.path))
            else:
                kind, content = b"F", known.get(stat_key(info)) or content_sha(entry.path)
            lines.append(b"%s %s\0%o\0%s\n" % (kind, relative.encode(encoding, errors), mode & 0o7777, content))
        update(b"".join(lines))
        if tick is not None:
            tick(len(lines))
        pending.extend(reversed(subdirs))
    return digest.hexdigest()


def content_sha(path: str) -> bytes:
    """sha256 of a file's bytes, as hex (os.open/os.read: open() adds an ioctl, a seek and a stat a file)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest().encode()


# Hashes of files this process has just written itself (the verbatim files of a clone), keyed by what
# stat says of them: a key that still matches is the same bytes, and tree_fingerprint need not read
# them again (4,000 opens less at 2,000 channels: measured 0.04 s on tmpfs, several times that on a
# busy disk).
WRITTEN: Dict[StatKey, bytes] = {}


def remember_written(info: os.stat_result, data: bytes) -> None:
    """Note the hash of ``data``, just written (and chmod-ed) to the file ``info`` is the stat of."""
    WRITTEN[stat_key(info)] = hashlib.sha256(data).hexdigest().encode()

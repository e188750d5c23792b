"""Undo on a full disk: refused up front with nothing changed, or done completely, never stopped half-way.

The ESB root lives on a small tmpfs mounted for the test (the tests run as root, as `make test`
does), filled up with a file as a log or a backup fills a real disk.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, snapshot
from esbgen.journal import record as jr
from esbgen.journal import store
from esbgen.plan import FileWrite, Plan

SIZE = 8 * 1024 * 1024


@pytest.fixture
def disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"these tests mount a small tmpfs and need root: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int = 0) -> Path:
    """Fill the file system with one file, then give ``leave`` bytes back."""
    filler = mount / "filler.log"
    chunk = b"x" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as error:
        assert error.errno == errno.ENOSPC
        for size in (4096, 512, 1):  # the last pages too
            try:
                while True:
                    os.write(fd, chunk[:size])
            except OSError:
                pass
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def esbgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "esbgen", *args], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.startswith("ESBGEN_")})


def test_undo_on_a_full_disk_is_refused_up_front_then_done_when_there_is_room(disk):
    root = disk / "esb"
    shutil.copytree(FIXTURES / "esb", root, symlinks=True)
    before = snapshot(root)
    cloned = esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", str(root))
    assert cloned.returncode == 0, cloned.stderr
    after = snapshot(root)
    filler = fill(disk)

    refused = esbgen("undo", "--esb-root", str(root))
    assert refused.returncode == 1
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr
    line = lines[0]
    assert "No space left on device" in line and line.endswith("nothing was changed")
    assert snapshot(root) == after  # the change is still applied, whole
    assert [j.state for j in jr.journals(root)] == ["applied"]

    filler.unlink()
    undone = esbgen("undo", "--esb-root", str(root))
    assert undone.returncode == 0, undone.stderr
    assert snapshot(root) == before
    assert [j.state for j in jr.journals(root)] == ["undone"]


def test_files_go_back_by_rename_so_an_undo_needs_no_room_for_them(disk):
    """A change that rewrote a file bigger than the room left: the undo still finishes, exactly."""
    root = disk / "esb"
    (root / "conf").mkdir(parents=True)
    big = root / "conf" / "default.py"
    original = b"# settings\n" + b"X = 1\n" * 60000  # about 360 KB
    big.write_bytes(original)
    big.chmod(0o640)
    plan = Plan(root, "rewrite the settings")
    plan.file_writes.append(FileWrite(Path("conf/default.py"), original, original.replace(b"X = 1", b"X = 2")))
    with store.locked(root):
        jr.apply(plan, argv=["test"])
    assert big.read_bytes() != original
    fill(disk, leave=64 * 1024)  # far less than the file: a copy back could not be written

    with store.locked(root):
        journal = jr.undo(root)
    assert journal.state == "undone"
    assert big.read_bytes() == original and (big.stat().st_mode & 0o777) == 0o640
    assert not [name for name in os.listdir(big.parent) if name.endswith(".esbgen-tmp")]

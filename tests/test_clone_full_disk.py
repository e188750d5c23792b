"""A clone on a disk that fills up at any moment: one line, the tree as it was, and no state left.

The ESB root lives on a small tmpfs mounted for the test (see tests/test_undo_full_disk.py), filled
up to leave less and less room, so that each run runs out of it at another moment of the clone:
while its files are listed and copied ahead, rendered, checked, prepared in the journal, applied.
"""

from __future__ import annotations

import os
import shutil

from conftest import FIXTURES, snapshot
from test_undo_full_disk import disk, esbgen, fill  # noqa: F401 - the fixture is used by name

STEP = 8 * 1024


def test_a_clone_that_runs_out_of_room_at_any_moment_says_so_in_one_line_and_changes_nothing(disk):  # noqa: F811
    root = disk / "esb"
    moments: dict[str, int] = {}
    room = 0
    while True:
        shutil.copytree(FIXTURES / "esb", root, symlinks=True)
        before = snapshot(root)
        filler = fill(disk, leave=room)
        done = esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", str(root))
        filler.unlink()
        if done.returncode == 0:
            break
        assert done.returncode == 1, (room, done.stderr)
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("esbgen: error: "), (room, done.stderr)
        assert "No space left on device" in lines[0] and "Traceback" not in done.stderr, (room, done.stderr)
        assert snapshot(root) == before, room
        state = root / ".esbgen"
        # refused before anything was applied, or rolled back whole: either way no state is left
        assert not state.exists(), (room, sorted(os.listdir(state)))
        moments.setdefault(lines[0].split("No space left on device")[0], room)
        shutil.rmtree(root)
        room += STEP
        assert room < 4 * 1024 * 1024, "a clone of the fixture never needs this much room"
    assert len(moments) >= 3, moments  # it ran out of room at several moments of the clone
    assert esbgen("check", "--esb-root", str(root)).returncode == 0

"""Helpers for the routing fixtures: a scratch copy of one, and where a call to a channel goes."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import FIXTURES

LEGACY = "routing-legacy"
LATER = "routing-later"


def copy_fixture(tmp_path: Path, name: str, as_name: str | None = None) -> Path:
    root = tmp_path / (as_name or name)
    shutil.copytree(FIXTURES / name, root, symlinks=True)
    return root


def call(root: Path, system: str, channel: str, **path_vars: str):
    """Where a call to /api/c/compapi/v2/<system>/<channel>/ goes, read back from the files."""
    from esbgen.esb.tree import load_tree
    from esbgen.esb.routing import destinations

    tree = load_tree(root, only={system})
    found = [
        d for d in destinations(root, tree.systems[system], path_vars)
        if d.channel.name == channel and d.channel.run_mode is None
    ]
    assert len(found) == 1, found
    return found[0]

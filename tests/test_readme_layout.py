"""The README's Layout section names every module of esbgen's package, and nothing the tree lacks."""

from __future__ import annotations

import re

from conftest import REPO


def _layout_entries() -> set[str]:
    """The package's paths the Layout block names, from its indentation (two spaces a level)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## Layout\n\n```\n", 1)[1].split("```", 1)[0]
    entries: set[str] = set()
    folders: list[str] = []
    for line in block.splitlines():
        match = re.match(r"^( *)(\S+)", line)
        if not match or len(match.group(1)) % 2 or line[len(match.group(1)):].startswith(" "):
            continue
        level = len(match.group(1)) // 2
        name = match.group(2)
        if not re.fullmatch(r"[\w.-]+/?", name):
            continue
        del folders[level:]
        path = "".join(folders) + name
        if name.endswith("/"):
            folders.append(name)
        if path.startswith("esbgen/"):
            entries.add(path.rstrip("/"))
    return entries


def _package_entries() -> set[str]:
    found = set()
    for path in (REPO / "esbgen").rglob("*"):
        relative = path.relative_to(REPO)
        if "__pycache__" in relative.parts or path.name == "__init__.py":
            continue
        if path.is_dir() or path.suffix == ".py":
            found.add(str(relative))
    return found


def test_the_layout_section_matches_the_package():
    named, present = _layout_entries(), _package_entries()
    builtin = {entry for entry in present if entry.startswith("esbgen/builtin/")}  # named together on one line
    assert "esbgen" in named
    assert present - builtin - named == set(), "modules the README's Layout does not name"
    assert named - present - {"esbgen"} == set(), "the README's Layout names what the package does not have"

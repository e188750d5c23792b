"""Turning a source component set into a cookiecutter template, and rendering it.

A template file is the source file with its identifiers replaced by template
variables; every other byte is protected from Jinja, so that rendering gives
back the source byte for byte except where a variable stands.  Files without
identifiers are copied without rendering (``_copy_without_render``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from esbgen.errors import EsbgenError

TOP = "{{cookiecutter._components}}"
JINJA_MARKERS = ("{{", "{%", "{#")


@dataclass(frozen=True)
class Var:
    """A template variable standing where an identifier of the source stood."""

    name: str


@dataclass
class Edit:
    """Replace text[start:end] of a file with literal text and variables."""

    start: int
    end: int
    parts: list[str | Var]
    note: str = ""


@dataclass
class TemplateFile:
    source: Path  # absolute path of the source file
    target: list[str | Var]  # the path below components/, as parts
    text: str | None = None  # decoded source text, when the file has edits
    edits: list[Edit] = field(default_factory=list)

    @property
    def verbatim(self) -> bool:
        return not self.edits


def var(name: str) -> str:
    return "{{ cookiecutter.%s }}" % name


def _expr_literal(text: str) -> str:
    return "{{ %s }}" % json.dumps(text)


def _protect_plain(chunk: str) -> str:
    if not chunk:
        return ""
    if any(marker in chunk for marker in JINJA_MARKERS):
        pieces = chunk.split("{%")
        body = "{% endraw %}" + _expr_literal("{%") + "{% raw %}"
        return "{% raw %}" + body.join(pieces) + "{% endraw %}"
    # A trailing brace would form a marker with the tag or variable that follows it.
    if chunk.endswith("{"):
        return chunk[:-1] + _expr_literal("{")
    return chunk


def protect(chunk: str, carriage_returns_as_vars: bool = False) -> str:
    """Template text that renders to ``chunk`` exactly."""
    if carriage_returns_as_vars and "\r" in chunk:
        return _expr_literal("\r").join(_protect_plain(piece) for piece in chunk.split("\r"))
    return _protect_plain(chunk)


def newline_style(text: str) -> str:
    """'lf', 'crlf' or 'mixed'; cookiecutter keeps the first two, the third needs care."""
    if "\r" not in text:
        return "lf"
    if text.count("\r") == text.count("\r\n") == text.count("\n"):
        return "crlf"
    return "mixed"


def template_text(text: str, edits: list[Edit]) -> str:
    """The Jinja source of a file: protected text, with variables at the edits."""
    body = _assemble(text, edits, carriage_returns_as_vars=False)
    if newline_style(body) == "mixed":
        # Jinja reads every line end as LF and cookiecutter writes them all as the first
        # line's; so keep the template LF only and give each carriage return as an expression.
        body = _assemble(text, edits, carriage_returns_as_vars=True)
    return body


def _assemble(text: str, edits: list[Edit], carriage_returns_as_vars: bool) -> str:
    out: list[str] = []
    position = 0
    for edit in sorted(edits, key=lambda e: e.start):
        if edit.start < position:
            raise EsbgenError(f"overlapping edits at offset {edit.start}")
        out.append(protect(text[position:edit.start], carriage_returns_as_vars))
        for part in edit.parts:
            out.append(var(part.name) if isinstance(part, Var) else protect(part, carriage_returns_as_vars))
        position = edit.end
    out.append(protect(text[position:], carriage_returns_as_vars))
    return "".join(out)


def rendered_text(text: str, edits: list[Edit], values: dict[str, str]) -> str:
    """What rendering ``template_text`` gives, computed directly (for checks and diffs)."""
    out: list[str] = []
    position = 0
    for edit in sorted(edits, key=lambda e: e.start):
        out.append(text[position:edit.start])
        out.extend(values[p.name] if isinstance(p, Var) else p for p in edit.parts)
        position = edit.end
    out.append(text[position:])
    return "".join(out)


def _path_template(parts: list[str | Var]) -> str:
    rendered = []
    for part in parts:
        if isinstance(part, Var):
            rendered.append("{{cookiecutter.%s}}" % part.name)
        else:
            if any(marker in part for marker in JINJA_MARKERS):
                raise EsbgenError(f"file name {part!r} looks like a template; rename it before cloning")
            rendered.append(part)
    return "".join(rendered)


def _glob_escape(path: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


@dataclass
class TemplateSpec:
    """A whole template: its files and the cookiecutter.json it is rendered with."""

    files: list[TemplateFile]
    defaults: dict[str, Any]  # cookiecutter.json, in prompt order

    def copy_only_patterns(self) -> list[str]:
        """Glob patterns for the folders and files that need no rendering, folders first."""
        files = {PurePosixPath(_path_template(f.target)): f.verbatim for f in self.files}
        dirs: dict[PurePosixPath, bool] = {}
        for path, verbatim in files.items():
            for parent in path.parents:
                if str(parent) == ".":
                    break
                dirs[parent] = dirs.get(parent, True) and verbatim
        patterns = []
        covered: set[PurePosixPath] = set()
        for directory in sorted(dirs, key=lambda p: len(p.parts)):
            if dirs[directory] and not any(c in directory.parents for c in covered):
                covered.add(directory)
                patterns.append(_glob_escape(str(directory)))
        for path, verbatim in sorted(files.items()):
            if verbatim and not any(c in path.parents for c in covered):
                patterns.append(_glob_escape(str(path)))
        return patterns

    def write(self, directory: Path, link: bool = False) -> Path:
        """Write the template to ``directory``; ``link`` hard-links verbatim files (private use)."""
        directory.mkdir(parents=True, exist_ok=True)
        top = directory / TOP
        for item in self.files:
            destination = top / _path_template(item.target)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if item.verbatim:
                _copy_file(item.source, destination, link)
            else:
                body = template_text(item.text or "", item.edits)
                # newline="" writes line ends exactly as the body holds them
                with open(destination, "w", encoding="utf-8", newline="") as handle:
                    handle.write(body)
                shutil.copymode(item.source, destination)
        context = dict(self.defaults)
        context["_copy_without_render"] = self.copy_only_patterns()
        (directory / "cookiecutter.json").write_text(
            json.dumps(context, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return directory


def _copy_file(source: Path, destination: Path, link: bool) -> None:
    if link:
        try:
            os.link(source, destination)
            return
        except OSError:
            pass
    shutil.copyfile(source, destination)
    shutil.copymode(source, destination)


def render(template_dir: Path, values: dict[str, Any], output_dir: Path) -> Path:
    """Render a template with cookiecutter's API into ``output_dir`` (which must be empty)."""
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.generate import generate_files

    context_file = template_dir / "cookiecutter.json"
    defaults = json.loads(context_file.read_text(encoding="utf-8"))
    context = {"cookiecutter": {**defaults, **values}}
    try:
        generate_files(
            repo_dir=str(template_dir),
            context=context,
            output_dir=str(output_dir),
            overwrite_if_exists=True,
            accept_hooks=False,
        )
    except CookiecutterException as error:
        raise EsbgenError(f"rendering the template failed: {error}") from error
    return output_dir


def matches_copy_only(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)

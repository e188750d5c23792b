"""The ESB's layout is spelled in one module: esbgen/esb/layout.py.

A path of the tree written as a string anywhere else (``"components/confapis"``,
``"conf.py"``, ``"configs/default.py"``) is a second definition that drifts from the first.
Documentation strings and comments may name the files; code may not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAYOUT = REPO / "esbgen" / "esb" / "layout.py"

# the spellings of the layout: folders of components/, the conf modules, the settings files, lib/gse
LAYOUT_TEXT = re.compile(
    r"(?<![A-Za-z0-9_.])("
    r"components/|bk/apisv2|bk/apis(?![A-Za-z0-9_])|generic/templates|generic/apis|confapis/"
    r"|esb_conf\.py|conf\.py|conf(?:igs)?/default\.py|lib/gse"
    r")"
)
LAYOUT_WORDS = {"components", "apisv2"}


def modules() -> list[Path]:
    found = list((REPO / "esbgen").rglob("*.py"))
    for package in (REPO / "plugins").glob("*/esbgen_*"):
        found.extend(p for p in package.rglob("*.py") if "templates" not in p.parts)
    return sorted(p for p in found if p != LAYOUT)


def documentation(module: ast.Module) -> set[int]:
    """ids of the string statements: docstrings of modules, classes, functions, and bare strings."""
    ids = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            ids.add(id(node.value))
    return ids


def layout_literals(path: Path) -> list[str]:
    label = path.relative_to(REPO) if REPO in path.parents else path.name
    module = ast.parse(path.read_text(encoding="utf-8"))
    docs = documentation(module)
    found = []
    for node in ast.walk(module):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if LAYOUT_TEXT.search(node.value) or node.value in LAYOUT_WORDS:
                found.append(f"{label}:{node.lineno}: {node.value!r}")
    return found


def test_only_layout_py_spells_the_esb_layout():
    assert len(modules()) > 30  # the scan sees the package
    offenders = [line for path in modules() for line in layout_literals(path)]
    assert offenders == [], "\n".join(offenders)


def test_the_scan_finds_a_layout_literal(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Reads components/generic/apis/conf.py."""\n'
        'A = "components/confapis"\n'
        'B = f"{root}/conf/default.py"\n'
        'C = "components"\n'
        'def f():\n    "esb_conf.py is documented here"\n    return "esb_conf.py"\n'
        'D = "confapis"  # a SaaS type name, not a path\n'
    )
    found = sorted(line.split(":", 1)[1] for line in layout_literals(sample))
    assert found == ["2: 'components/confapis'", "3: '/conf/default.py'", "4: 'components'", "7: 'esb_conf.py'"]


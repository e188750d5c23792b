"""Edits of Python files at the positions libcst reports; every other byte stays.

Two uses: the identifiers of a cloned component set become template
variables (``python_edits``), and entries are appended to the lists of the
custom conf module (``append_to_list``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from esbgen.errors import EsbgenError
from esbgen.template import Edit, Var


@dataclass(frozen=True)
class Rewrite:
    """Inside string literals, the text of group ``old`` of ``pattern`` becomes ``var``."""

    pattern: re.Pattern[str]
    var: str
    why: str = ""


@dataclass
class PythonRewrites:
    """What a clone changes in the Python files of a component set."""

    assignments: dict[str, str] = field(default_factory=dict)  # SYSTEM_NAME -> var
    strings: list[Rewrite] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # settings.X -> var
    package: tuple[tuple[str, ...], str] | None = None  # ("components","bk","apisv2","sops"), var


def _parse(data: bytes, label: str):
    import libcst as cst

    try:
        return cst.parse_module(data)
    except cst.ParserSyntaxError as error:
        raise EsbgenError(f"{label}:{error.raw_line}: Python syntax error: {error.message}") from None


def _dotted_names(node) -> list:
    """The Name nodes of a dotted expression, left to right (``a.b.c``)."""
    import libcst as cst

    names = []
    while isinstance(node, cst.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, cst.Name):
        names.append(node)
        return list(reversed(names))
    return []


def python_edits(data: bytes, label: str, rewrites: PythonRewrites) -> tuple[str, list[Edit]]:
    """The decoded text of a Python file and the edits that templatize it."""
    import libcst as cst
    from libcst.metadata import ByteSpanPositionProvider, MetadataWrapper

    module = _parse(data, label)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    spans = wrapper.resolve(ByteSpanPositionProvider)
    byte_edits: list[tuple[int, int, list[str | Var], str]] = []

    def add(start: int, end: int, parts: list[str | Var], note: str) -> None:
        byte_edits.append((start, end, parts, note))

    def string_inner(node) -> tuple[int, str]:
        span = spans[node]
        opener = len((node.prefix + node.quote).encode("utf-8"))
        raw = node.value[len(node.prefix) + len(node.quote): len(node.value) - len(node.quote)]
        return span.start + opener, raw

    def rewrite_text(start: int, raw: str) -> None:
        hits = []
        for rewrite in rewrites.strings:
            for match in rewrite.pattern.finditer(raw):
                hits.append((match.start("old"), match.end("old"), rewrite))
        hits.sort(key=lambda hit: (hit[0], -hit[1]))
        last_end = -1
        for begin, finish, rewrite in hits:
            if begin < last_end:
                continue
            offset = start + len(raw[:begin].encode("utf-8"))
            length = len(raw[begin:finish].encode("utf-8"))
            add(offset, offset + length, [Var(rewrite.var)], rewrite.why)
            last_end = finish

    class Finder(cst.CSTVisitor):
        def visit_Assign(self, node) -> None:
            if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
                return
            name = node.targets[0].target.value
            variable = rewrites.assignments.get(name)
            if variable is None:
                return
            value = node.value
            if not isinstance(value, cst.SimpleString):
                raise EsbgenError(f"{label}: {name} is not a plain string literal; set it by hand")
            start, raw = string_inner(value)
            if ast.literal_eval(value.value) != raw:
                raise EsbgenError(f"{label}: {name} uses escapes; set it by hand")
            add(start, start + len(raw.encode("utf-8")), [Var(variable)], name)
            self.assigned = getattr(self, "assigned", set()) | {id(value)}

        def visit_SimpleString(self, node) -> None:
            if id(node) in getattr(self, "assigned", set()):
                return
            start, raw = string_inner(node)
            rewrite_text(start, raw)

        def visit_FormattedStringText(self, node) -> None:
            rewrite_text(spans[node].start, node.value)

        def visit_Attribute(self, node) -> None:
            if isinstance(node.value, cst.Name) and node.value.value == "settings":
                variable = rewrites.settings.get(node.attr.value)
                if variable:
                    span = spans[node.attr]
                    add(span.start, span.start + span.length, [Var(variable)], "host setting")

        def _module_path(self, dotted) -> None:
            if rewrites.package is None or dotted is None:
                return
            prefix, variable = rewrites.package
            names = _dotted_names(dotted)
            if len(names) >= len(prefix) and tuple(n.value for n in names[: len(prefix)]) == prefix:
                span = spans[names[len(prefix) - 1]]
                add(span.start, span.start + span.length, [Var(variable)], "package path")

        def visit_ImportFrom(self, node) -> None:
            if not node.relative:
                self._module_path(node.module)

        def visit_Import(self, node) -> None:
            for alias in node.names:
                self._module_path(alias.name)

    wrapper.visit(Finder())
    text = data.decode("utf-8")
    edits = []
    for start, end, parts, note in sorted(byte_edits, key=lambda e: e[0]):
        char_start = len(data[:start].decode("utf-8"))
        char_end = char_start + len(data[start:end].decode("utf-8"))
        edits.append(Edit(char_start, char_end, parts, note))
    return text, edits


def newline_of(text: str) -> str:
    index = text.find("\n")
    return "\r\n" if index > 0 and text[index - 1] == "\r" else "\n"


def py_literal(value) -> str:
    """A literal both Python 2.7 (the legacy ESB) and Python 3 read alike."""
    if isinstance(value, str):
        literal = repr(value)
        if not value.isascii():
            literal = "u" + literal
        return literal
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(py_literal(v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
        )
    raise EsbgenError(f"cannot write {type(value).__name__} into a conf module")


def _line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def append_to_list(text: str, list_name: str, elements: list[str], label: str) -> str:
    """Append element sources to the module-level list ``list_name``; add the list when missing."""
    import libcst as cst
    from libcst.metadata import ByteSpanPositionProvider, MetadataWrapper

    if not elements:
        return text
    newline = newline_of(text)
    data = text.encode("utf-8")
    module = _parse(data, label)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    spans = wrapper.resolve(ByteSpanPositionProvider)
    target = None
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if (
                    isinstance(small, cst.Assign)
                    and len(small.targets) == 1
                    and isinstance(small.targets[0].target, cst.Name)
                    and small.targets[0].target.value == list_name
                ):
                    if target is not None:
                        raise EsbgenError(f"{label}:{_line(data, spans[small].start)}: {list_name} is assigned twice; "
                                          "edit it by hand")
                    target = small.value
    if target is None:
        body = "".join(f"    {element},{newline}" for element in elements)
        separator = "" if text.endswith(("\n", "\r")) or not text else newline
        lead = newline if text.strip() else ""
        return f"{text}{separator}{lead}{list_name} = [{newline}{body}]{newline}"
    if not isinstance(target, cst.List):
        raise EsbgenError(f"{label}:{_line(data, spans[target].start)}: {list_name} is not a list literal "
                          "([...]); esbgen cannot add to it faithfully, edit it by hand")
    span = spans[target]
    close = span.start + span.length - 1  # the byte of ']'
    inserts: list[tuple[int, bytes]] = []
    if target.elements and isinstance(target.elements[-1].comma, cst.MaybeSentinel):
        last = spans[target.elements[-1].value]
        inserts.append((last.start + last.length, b","))
    line_start = data.rfind(b"\n", 0, close) + 1
    before_close = data[line_start:close]
    if before_close.strip() == b"":
        indent = before_close.decode("utf-8") + "    "
        body = "".join(f"{indent}{element},{newline}" for element in elements)
        inserts.append((line_start, body.encode("utf-8")))
    else:
        indent = "    "
        body = "".join(f"{newline}{indent}{element}," for element in elements)
        inserts.append((close, (body + newline).encode("utf-8")))
    for offset, insert in sorted(inserts, key=lambda item: item[0], reverse=True):
        data = data[:offset] + insert + data[offset:]
    return data.decode("utf-8")

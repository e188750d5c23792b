"""Edits of Python files at the positions their parser reports; every other byte stays.

Two uses: the identifiers of a cloned component set become template
variables (``python_edits``), and entries are appended to the lists of the
custom conf module (``append_to_list``).

A file Python 3's own ``ast`` and ``tokenize`` read (no f-string, no lone carriage
return) is read with them: they give the same nodes and positions as libcst for
such a file, and importing libcst costs more than a whole small clone. Any other
file, Python 2 forms included, is read by libcst.
"""

from __future__ import annotations

import ast
import codecs
import io
import re
import tokenize
from dataclasses import dataclass, field
from functools import lru_cache

from esbgen.errors import Refused
from esbgen.fsutil import decode_text


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


def source_segment(text: str, node: ast.AST) -> str | None:
    """``ast.get_source_segment(text, node)``, with the lines of ``text`` found once for all its nodes
    (the standard one splits the whole text again on every call: a conf module of 500 channels
    read its presets in quadratic time)."""
    end_lineno, end_col = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
    if end_lineno is None or end_col is None:
        return None
    data, starts = _line_starts(text)
    try:
        start, end = starts[node.lineno - 1] + node.col_offset, starts[end_lineno - 1] + end_col
    except IndexError:
        return None
    return data[start:end].decode("utf-8")


@lru_cache(maxsize=8)
def _line_starts(text: str) -> tuple[bytes, list[int]]:
    """The UTF-8 bytes of ``text`` (ast's offsets count them) and where each line starts, lines ending
    as Python's own reading ends them (\\r\\n, \\n or \\r; not a form feed)."""
    data = text.encode("utf-8")
    return data, [0] + [match.end() for match in re.finditer(rb"\r\n|\r|\n", data)]


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
        raise Refused(f"{label}:{error.raw_line}: Python syntax error: {error.message}") from None
    except UnicodeDecodeError as error:
        raise Refused(f"{label}: not text in the encoding it declares ({error.encoding}, byte {error.start})") from None


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


class _Tokens:
    """A Python 3 file read by ``ast`` and ``tokenize``, with character offsets of its tokens."""

    def __init__(self, text: str, module: ast.Module, tokens: list[tokenize.TokenInfo]):
        self.text, self.module, self.tokens = text, module, tokens
        self.line_starts = [0]
        for line in text.split("\n")[:-1]:
            self.line_starts.append(self.line_starts[-1] + len(line) + 1)
        self.lines = text.split("\n")
        self.at = {tok.start: index for index, tok in enumerate(tokens)}

    def offset(self, row: int, column: int) -> int:
        """Character offset of a tokenize position (row from 1, column in characters)."""
        return self.line_starts[row - 1] + column

    def node_start(self, node: ast.AST) -> tuple[int, int]:
        """The tokenize position of where an ast node starts (ast columns count UTF-8 bytes)."""
        return node.lineno, self._column(node.lineno, node.col_offset)

    def node_end(self, node: ast.AST) -> tuple[int, int]:
        return node.end_lineno, self._column(node.end_lineno, node.end_col_offset)

    def _column(self, row: int, byte_column: int) -> int:
        line = self.lines[row - 1]
        return byte_column if line.isascii() else len(line.encode("utf-8")[:byte_column].decode("utf-8"))


def _read_tokens(data: bytes) -> _Tokens | None:
    """The file read by Python 3's parser and tokenizer, or None when libcst must read it.

    None for what the two readers could place differently: Python 2 forms, f-strings
    (libcst reads inside them), a byte order mark, a coding line other than UTF-8, and
    carriage returns or form feeds that are not part of a CRLF line end.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith("\ufeff") or "\f" in text or "\r" in text.replace("\r\n", ""):
        return None
    try:  # a coding line naming another encoding: libcst reads the file in it, and so must this
        if tokenize.detect_encoding(io.BytesIO(data).readline)[0] != "utf-8":
            return None
    except SyntaxError:
        return None
    try:
        module = ast.parse(text)
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (SyntaxError, ValueError, tokenize.TokenError, RecursionError, MemoryError):
        return None
    fstring_start = getattr(tokenize, "FSTRING_START", None)
    for tok in tokens:
        if tok.type == fstring_start or (tok.type == tokenize.STRING and "f" in _string_prefix(tok.string).lower()):
            return None
    return _Tokens(text, module, tokens)


def _string_prefix(literal: str) -> str:
    return literal[: len(literal) - len(literal.lstrip("rRbBuUfF"))]


def _string_parts(literal: str) -> tuple[int, str]:
    """Length of a string token's prefix and opening quote, and the raw text inside its quotes."""
    prefix = _string_prefix(literal)
    body = literal[len(prefix):]
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    return len(prefix) + len(quote), body[len(quote): len(body) - len(quote)]


def python_edits(data: bytes, label: str, rewrites: PythonRewrites) -> tuple[str, list[Edit]]:
    """The decoded text of a Python file and the edits that templatize it, at their offsets in that text.

    A byte order mark stays the text's first character, every edit after it. A file in another
    encoding its coding line declares (Latin-1) is read in it; it may be edited only where its
    bytes are ASCII, the same in UTF-8, since the edited file is written as UTF-8: otherwise it
    is refused, unless it needs no edit (then it is copied as it is).
    """
    encoding = declared_encoding(data, label)
    if data.startswith(codecs.BOM_UTF8):
        text, edits = python_edits(data[len(codecs.BOM_UTF8):], label, rewrites)
        return "\ufeff" + text, [Edit(e.start + 1, e.end + 1, e.parts, e.note) for e in edits]
    if encoding != "utf-8" and not data.isascii():
        text, edits = _libcst_edits(data, label, rewrites)
        if edits:
            raise Refused(f"{label}: its coding line declares {encoding} and it holds text that is not ASCII; "
                          "esbgen writes an edited file as UTF-8, which would change those bytes: "
                          "convert it to UTF-8 first")
        return text, edits
    decode_text(data, label, "esbgen edits UTF-8 Python files only")
    read = _read_tokens(data)
    if read is not None:
        return read.text, _token_edits(read, label, rewrites)
    return _libcst_edits(data, label, rewrites)


def declared_encoding(data: bytes, label: str) -> str:
    """The encoding Python reads a file in (a byte order mark, a coding line, else UTF-8), or one line
    refusing a file Python itself refuses to read for it."""
    try:
        encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    except SyntaxError as error:
        raise Refused(f"{label}: Python cannot read it: {error.msg}") from None
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _string_rewrites(start: int, raw: str, rewrites: PythonRewrites) -> list[Edit]:
    """The edits ``rewrites.strings`` make in one string literal's text (``start``: its offset)."""
    hits = []
    for rewrite in rewrites.strings:
        for match in rewrite.pattern.finditer(raw):
            hits.append((match.start("old"), match.end("old"), rewrite))
    hits.sort(key=lambda hit: (hit[0], -hit[1]))
    edits, last_end = [], -1
    for begin, finish, rewrite in hits:
        if begin < last_end:
            continue
        edits.append(Edit(start + begin, start + finish, [Var(rewrite.var)], rewrite.why))
        last_end = finish
    return edits


def _token_edits(read: _Tokens, label: str, rewrites: PythonRewrites) -> list[Edit]:
    """``python_edits`` from ast nodes and tokens: what the libcst visitor finds, at the same offsets."""
    tokens, edits = read.tokens, []
    assigned: set[int] = set()  # token indexes of the strings an assignment rewrite takes whole

    def name_edit(index: int, variable: str, note: str) -> None:
        tok = tokens[index]
        start = read.offset(*tok.start)
        edits.append(Edit(start, start + len(tok.string), [Var(variable)], note))

    def module_path(index: int) -> None:
        """A dotted module name starting at token ``index``: the package's segment becomes the variable."""
        if rewrites.package is None:
            return
        prefix, variable = rewrites.package
        names: list[int] = []
        while index < len(tokens):
            tok = tokens[index]
            if tok.type == tokenize.NAME and tok.string not in ("import", "as"):
                names.append(index)
            elif not (tok.type == tokenize.OP and tok.string == ".") and tok.type != tokenize.NL:
                break
            index += 1
        if len(names) >= len(prefix) and tuple(tokens[i].string for i in names[: len(prefix)]) == prefix:
            name_edit(names[len(prefix) - 1], variable, "package path")

    for node in ast.walk(read.module):
        if isinstance(node, ast.Assign):
            if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
                continue
            name = node.targets[0].id
            variable = rewrites.assignments.get(name)
            if variable is None:
                continue
            first = read.at.get(read.node_start(node.value))
            if (not isinstance(node.value, ast.Constant) or first is None or tokens[first].type != tokenize.STRING
                    or tokens[first].end != read.node_end(node.value)):
                raise Refused(f"{label}: {name} is not a plain string literal; set it by hand")
            literal = tokens[first].string
            opening, raw = _string_parts(literal)
            if ast.literal_eval(literal) != raw:
                raise Refused(f"{label}: {name} uses escapes; set it by hand")
            start = read.offset(*tokens[first].start) + opening
            edits.append(Edit(start, start + len(raw), [Var(variable)], name))
            assigned.add(first)
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "settings":
                variable = rewrites.settings.get(node.attr)
                if variable:
                    end = read.node_end(node)
                    index = next((i for i in range(read.at.get(read.node_start(node), 0), len(tokens))
                                  if tokens[i].end == end), None)
                    if index is None or tokens[index].type != tokenize.NAME:
                        raise Refused(f"{label}:{node.lineno}: cannot place settings.{node.attr}")
                    name_edit(index, variable, "host setting")
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module is not None:
                index = read.at[read.node_start(node)]  # the "from" keyword
                module_path(index + 1)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                module_path(read.at[read.node_start(alias)])
    for index, tok in enumerate(tokens):
        if tok.type == tokenize.STRING and index not in assigned:
            opening, raw = _string_parts(tok.string)
            edits.extend(_string_rewrites(read.offset(*tok.start) + opening, raw, rewrites))
    return sorted(edits, key=lambda e: e.start)


def _libcst_edits(data: bytes, label: str, rewrites: PythonRewrites) -> tuple[str, list[Edit]]:
    """``python_edits`` for a file only libcst reads (Python 2 forms, f-strings)."""
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
                raise Refused(f"{label}: {name} is not a plain string literal; set it by hand")
            start, raw = string_inner(value)
            if ast.literal_eval(value.value) != raw:
                raise Refused(f"{label}: {name} uses escapes; set it by hand")
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
    # libcst's byte spans count the UTF-8 bytes of the decoded text, whatever the file's encoding
    text = data.decode(module.encoding)
    code = text.encode("utf-8")
    edits = []
    for start, end, parts, note in sorted(byte_edits, key=lambda e: e[0]):
        char_start = len(code[:start].decode("utf-8"))
        char_end = char_start + len(code[start:end].decode("utf-8"))
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
    raise Refused(f"cannot write {type(value).__name__} into a conf module")


def _line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def append_to_list(text: str, list_name: str, elements: list[str], label: str) -> str:
    """Append element sources to the module-level list ``list_name``; add the list when missing."""
    if not elements:
        return text
    if text.startswith("\ufeff"):  # the parsers' offsets start after a byte order mark
        return "\ufeff" + append_to_list(text[1:], list_name, elements, label)
    newline = newline_of(text)
    data = text.encode("utf-8")
    found = _list_by_tokens(data, list_name, label)
    if found is None:
        found = _list_by_libcst(data, list_name, label)
    if found is False:
        body = "".join(f"    {element},{newline}" for element in elements)
        separator = "" if text.endswith(("\n", "\r")) or not text else newline
        lead = newline if text.strip() else ""
        return f"{text}{separator}{lead}{list_name} = [{newline}{body}]{newline}"
    close, comma_at = found
    inserts: list[tuple[int, bytes]] = []
    if comma_at is not None:
        inserts.append((comma_at, b","))
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


def _list_by_tokens(data: bytes, list_name: str, label: str) -> tuple[int, int | None] | bool | None:
    """Where the list's ``]`` is and where its last element needs a comma (byte offsets), False
    when the module does not assign it, or None when libcst must read the file."""
    read = _read_tokens(data)
    if read is None:
        return None
    target = None
    for statement in read.module.body:
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == list_name):
            if target is not None:
                raise Refused(f"{label}:{statement.lineno}: {list_name} is assigned twice; edit it by hand")
            target = statement.value
    if target is None:
        return False
    if not isinstance(target, ast.List):
        raise Refused(f"{label}:{target.lineno}: {list_name} is not a list literal "
                      "([...]); esbgen cannot add to it faithfully, edit it by hand")
    tokens = read.tokens
    opening = read.at.get(read.node_start(target))
    closing = next((i for i in range(opening or 0, len(tokens)) if tokens[i].end == read.node_end(target)), None)
    if opening is None or closing is None or tokens[closing].string != "]" or tokens[opening - 1].string != "=":
        return None  # a parenthesised list: libcst places it
    if tokens[closing + 1].type not in (tokenize.NEWLINE, tokenize.COMMENT, tokenize.ENDMARKER):
        return None

    def byte_offset(position: tuple[int, int]) -> int:
        return len(read.text[: read.offset(*position)].encode("utf-8"))

    comma_at = None
    if target.elts:
        last = closing - 1
        while tokens[last].type in (tokenize.NL, tokenize.COMMENT):
            last -= 1
        if tokens[last].string != ",":
            comma_at = byte_offset(tokens[last].end)
    return byte_offset(tokens[closing].start), comma_at


def _list_by_libcst(data: bytes, list_name: str, label: str) -> tuple[int, int | None] | bool:
    import libcst as cst
    from libcst.metadata import ByteSpanPositionProvider, MetadataWrapper

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
                        raise Refused(f"{label}:{_line(data, spans[small].start)}: {list_name} is assigned twice; "
                                      "edit it by hand")
                    target = small.value
    if target is None:
        return False
    if not isinstance(target, cst.List):
        raise Refused(f"{label}:{_line(data, spans[target].start)}: {list_name} is not a list literal "
                      "([...]); esbgen cannot add to it faithfully, edit it by hand")
    span = spans[target]
    close = span.start + span.length - 1  # the byte of ']'
    comma_at = None
    if target.elements and isinstance(target.elements[-1].comma, cst.MaybeSentinel):
        last = spans[target.elements[-1]]  # the element with its parentheses: "(2)," not "(2,)"
        comma_at = last.start + last.length
    return close, comma_at

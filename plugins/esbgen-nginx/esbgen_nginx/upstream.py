"""Find one ``upstream`` block with nginx-crossplane and rewrite its ``server`` lines.

crossplane does all the reading of nginx syntax: :func:`crossplane.parse`
follows the includes and gives each directive its file and line, and
:func:`crossplane.lex` gives every token its line.  This module only maps
those tokens back onto the bytes of the file, and refuses whenever the
mapping is not exact, so that an edit touches the ``server`` lines and
nothing else: other directives, comments, spacing and line ends (CRLF too)
of every file stay as they were.

Rules (a refusal names its reason):

* the upstream must be defined exactly once in the ``http`` context, across
  the main file and everything it includes (nginx compares upstream names
  without regard to case, and so does this module);
* every ``server`` directive of the block sits alone on its own line:
  ``server`` + address + options + ``;`` and at most a trailing comment;
  no quoting or escapes on that line;
* no ``server`` is flagged ``backup`` or ``down`` (which of the new
  backends would take that role is the operator's decision, not ours);
* the block includes no other file and has at least one ``server``.

Commented-out ``server`` lines are comments: they are left exactly as they
are and listed in the result so the summary can mention them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esbgen.errors import EsbgenError

from esbgen_nginx.backends import Backend

UNMAPPABLE_FLAGS = ("backup", "down")


@dataclass
class ServerLine:
    """One ``server`` directive of the upstream, located to the character."""

    lineno: int  # 1-based, as crossplane counts
    text: str  # the whole line, line end included
    address: str  # "127.0.0.1:8001"
    start: int  # index of ``server`` in ``text`` (what is before it is indentation)
    addr_start: int  # index of the address in ``text``
    addr_end: int
    semicolon: int  # index of the ``;`` in ``text``

    @property
    def options(self) -> str:
        """Everything between the address and ``;``: `` max_fails=1  fail_timeout=30s``."""
        return self.text[self.addr_end : self.semicolon]

    @property
    def directive(self) -> str:
        """The directive alone, without indentation, comment or line end."""
        return self.text[: self.semicolon + 1].strip()


@dataclass
class Upstream:
    name: str  # as written in the file
    file: Path  # as nginx names it (through includes, maybe a symlink)
    lineno: int  # line of ``upstream NAME {``
    servers: list[ServerLine]
    raw: bytes  # the file's bytes the lines were located in
    commented_servers: list[int] = field(default_factory=list)  # lines of ``# server ...``


@dataclass
class Edit:
    """The new bytes of one file and what changed in them."""

    upstream: Upstream
    before: bytes
    after: bytes
    old_servers: list[str]
    new_servers: list[str]
    changes: list[tuple[str, int, str, str]]  # (kind, line, old directive, new directive)

    @property
    def is_noop(self) -> bool:
        return self.before == self.after

    @property
    def removed_servers(self) -> list[str]:
        """The old servers the upstream no longer has: the backends the swap takes out of service."""
        return [server for server in self.old_servers if server not in self.new_servers]


def _crossplane():
    try:
        import crossplane
    except ImportError as error:  # pragma: no cover - a dependency of the distribution
        raise EsbgenError(f"esbgen-nginx needs nginx-crossplane: {error}") from error
    return crossplane


def find_upstream(main_conf: Path, name: str) -> Upstream:
    """Locate upstream ``name`` in the configuration rooted at ``main_conf``; refuse if unsafe."""
    main_conf = Path(main_conf)
    if not main_conf.is_file():
        raise EsbgenError(f"nginx main file {main_conf} not found (see --nginx-server-root)")
    crossplane = _crossplane()
    # Context and argument checks are left to `nginx -t`, which knows the
    # modules this nginx was built with; crossplane still reports syntax
    # errors and includes it cannot read, and nginx would refuse those too.
    payload = crossplane.parse(
        str(main_conf), comments=True, catch_errors=True, check_ctx=False, check_args=False
    )
    if payload["errors"]:
        first = payload["errors"][0]
        where = first.get("file") or main_conf
        if first.get("line"):
            where = f"{where}:{first['line']}"
        raise EsbgenError(f"cannot read the nginx configuration: {where}: {first['error']}")
    _refuse_unreadable_lua(payload, crossplane)
    found = _collect_upstreams(payload, name)
    if not found:
        raise EsbgenError(
            f"upstream {name} is not defined in {main_conf} or the files it includes"
        )
    if len(found) > 1:
        places = ", ".join(f"{file}:{stmt['line']}" for file, stmt in found)
        raise EsbgenError(f"upstream {name} is defined {len(found)} times ({places}); fix that first")
    file, stmt = found[0]
    return _locate_servers(Path(file), stmt, crossplane)


# Lua the lexer of crossplane's Lua extension reads wrongly: it knows '...' and "..." strings without escapes and
# -- line comments only, so an escaped quote, a long bracket ([[ ]], [==[ ]==], --[[ ]]) or a brace inside one can
# end its block early and make the rest of the file look like other directives.
_LUA_TRAPS = re.compile(r"""\\["']|\[=*\[""")
_LUA_BLOCK = re.compile(rb"\b([A-Za-z_]+_by_lua_block)\b")


def _refuse_unreadable_lua(payload: dict[str, Any], crossplane) -> None:
    """Refuse a configuration whose Lua blocks crossplane cannot be trusted to have read right: editing it
    could not be proven to leave them (and everything after them) as they are."""
    from crossplane.ext.lua import LuaBlockPlugin

    known = set(LuaBlockPlugin.directives)
    for config in payload["config"]:
        try:
            raw = Path(config["file"]).read_bytes()
        except OSError:
            continue
        for match in _LUA_BLOCK.finditer(raw):
            name = match.group(1).decode()
            if name not in known:
                line = raw.count(b"\n", 0, match.start()) + 1
                raise EsbgenError(
                    f"{config['file']}:{line}: {name} is a Lua block esbgen's nginx parser does not know; "
                    "it could misread the file, so edit the upstream by hand"
                )

        def visit(block: list[dict]) -> None:
            for stmt in block:
                if stmt["directive"] in known and any(_LUA_TRAPS.search(arg) for arg in stmt.get("args", [])):
                    raise EsbgenError(
                        f"{config['file']}:{stmt['line']}: the Lua code of {stmt['directive']} has an escaped quote "
                        "or a long bracket ([[ ]]), which esbgen's nginx parser cannot follow; edit the upstream by hand"
                    )
                visit(stmt.get("block", []))

        visit(config["parsed"])


def _collect_upstreams(payload: dict[str, Any], name: str) -> list[tuple[str, dict]]:
    configs = payload["config"]
    wanted = name.lower()
    found: list[tuple[str, dict]] = []

    def walk(index: int, ctx: tuple[str, ...], stack: tuple[int, ...]) -> None:
        if index in stack:  # an include loop; nginx itself would recurse until it fails
            return
        config = configs[index]
        visit(config["parsed"], config["file"], ctx, stack + (index,))

    def visit(block: list[dict], file: str, ctx: tuple[str, ...], stack: tuple[int, ...]) -> None:
        for stmt in block:
            directive = stmt["directive"]
            if directive == "#":
                continue
            if (
                directive == "upstream"
                and ctx == ("http",)
                and stmt["args"]
                and stmt["args"][0].lower() == wanted
            ):
                found.append((file, stmt))
            for included in stmt.get("includes", ()):
                walk(included, ctx, stack)
            if "block" in stmt:
                visit(stmt["block"], file, ctx + (directive,), stack)

    walk(0, (), ())
    return found


def _locate_servers(file: Path, stmt: dict, crossplane) -> Upstream:
    name = stmt["args"][0]
    where = f"upstream {name} ({file}:{stmt['line']})"
    tokens_by_line: dict[int, list[tuple[str, bool]]] = {}
    for token, lineno, quoted in crossplane.lex(str(file)):
        tokens_by_line.setdefault(lineno, []).append((token, quoted))
    raw = file.read_bytes()
    lines = raw.splitlines(keepends=True)  # \n, \r\n and a lone \r, as crossplane counts

    servers: list[ServerLine] = []
    commented: list[int] = []
    for inner in stmt.get("block", []):
        directive, lineno = inner["directive"], inner["line"]
        if directive == "#":
            if inner.get("comment", "").strip().startswith("server "):
                commented.append(lineno)
            continue
        if directive == "include":
            raise EsbgenError(f"{where} includes another file at line {lineno}; edit it by hand")
        if "block" in inner:
            raise EsbgenError(f"{where} has a block '{directive}' at line {lineno}; edit it by hand")
        if directive != "server":
            continue  # ip_hash, keepalive, hash, zone ... stay as they are
        args = inner["args"]
        if not args:
            raise EsbgenError(f"{where}: the server directive at line {lineno} has no address")
        flags = [arg for arg in args[1:] if arg in UNMAPPABLE_FLAGS]
        if flags:
            raise EsbgenError(
                f"{where}: server {args[0]} at line {lineno} is marked '{flags[0]}'; "
                "esbgen cannot tell which new backend should take that role, edit it by hand"
            )
        servers.append(_map_server_line(where, lineno, args, tokens_by_line, lines))
    if not servers:
        raise EsbgenError(f"{where} has no server line to replace")
    return Upstream(
        name=name, file=file, lineno=stmt["line"], servers=servers, raw=raw, commented_servers=commented
    )


def _map_server_line(
    where: str,
    lineno: int,
    args: list[str],
    tokens_by_line: dict[int, list[tuple[str, bool]]],
    lines: list[bytes],
) -> ServerLine:
    tokens = tokens_by_line.get(lineno, [])
    expected = ["server", *args, ";"]
    code = [token for token, quoted in tokens if quoted or not token.startswith("#")]
    comments = [token for token, quoted in tokens if not quoted and token.startswith("#")]
    trailing_comment_only = not comments or (len(comments) == 1 and tokens[-1][0] == comments[0])
    if code != expected or not trailing_comment_only:
        if len(code) < len(expected) and expected[: len(code)] == code:
            reason = "spans several lines"
        elif code[:1] != ["server"] or len(code) > len(expected):
            reason = "shares its line with other directives or braces"
        else:
            reason = "cannot be mapped onto its line"
        raise EsbgenError(
            f"{where}: the server directive at line {lineno} {reason}; "
            "esbgen edits one directive per line only, put it on a line of its own first"
        )
    comment = comments[0] if comments else None
    if any(quoted for _, quoted in tokens) or any("\\" in word for word in code):
        raise EsbgenError(
            f"{where}: the server directive at line {lineno} uses quotes or escapes; edit it by hand"
        )
    try:
        text = lines[lineno - 1].decode("utf-8")
    except (IndexError, UnicodeDecodeError):
        raise EsbgenError(f"{where}: line {lineno} is not UTF-8 text; edit it by hand") from None

    # Walk the tokens crossplane found along the line's characters.
    pos = _skip_space(text, 0)
    positions = []
    for index, word in enumerate(expected):
        if index and word != ";":
            if pos == positions[-1][1]:  # two tokens glued together: not what crossplane saw
                raise EsbgenError(f"{where}: line {lineno} cannot be mapped; edit it by hand")
        if not text.startswith(word, pos):
            raise EsbgenError(f"{where}: line {lineno} cannot be mapped; edit it by hand")
        positions.append((pos, pos + len(word)))
        pos = _skip_space(text, pos + len(word))
    body = text[pos:].rstrip("\r\n")
    if (comment is None and body) or (comment is not None and body != comment):
        raise EsbgenError(f"{where}: line {lineno} cannot be mapped; edit it by hand")
    return ServerLine(
        lineno=lineno,
        text=text,
        address=args[0],
        start=positions[0][0],
        addr_start=positions[1][0],
        addr_end=positions[1][1],
        semicolon=positions[-1][0],
    )


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\f\v":
        pos += 1
    return pos


def plan_edit(upstream: Upstream, backends: list[Backend]) -> Edit:
    """The file with the upstream's server list replaced by ``backends``.

    The j-th new server goes on the j-th old server's line: only its address
    changes, plus its options when they differ from the first server's (the
    first server's options are carried to every new server); indentation,
    trailing comment and line end stay.  Extra new servers get lines of their
    own after the last reused one, shaped like the first server's line
    without its comment; old servers beyond the new list lose their lines.
    """
    before = upstream.raw
    lines = before.splitlines(keepends=True)
    first = upstream.servers[0]
    options = first.options
    new_addresses = [backend.address for backend in backends]
    replaced: dict[int, list[str]] = {}
    changes: list[tuple[str, int, str, str]] = []

    for index, server in enumerate(upstream.servers):
        if index < len(new_addresses):
            head = server.text[: server.addr_start] + new_addresses[index] + options + ";"
            text = head + server.text[server.semicolon + 1 :]
            replaced[server.lineno] = [text]
            if text != server.text:
                changes.append(("changed", server.lineno, server.directive, head[server.start :]))
        else:
            replaced[server.lineno] = []
            changes.append(("removed", server.lineno, server.directive, ""))
    if len(new_addresses) > len(upstream.servers):
        last = upstream.servers[len(upstream.servers) - 1]
        ending = _line_ending(first.text) or _line_ending(last.text) or "\n"
        indent = first.text[: first.start]
        head = first.text[first.start : first.addr_start]  # "server" and the space after it
        for address in new_addresses[len(upstream.servers) :]:
            directive = f"{head}{address}{options};"
            replaced[last.lineno].append(f"{indent}{directive}{ending}")
            changes.append(("added", last.lineno, "", directive.strip()))

    out = []
    for number, line in enumerate(lines, start=1):
        if number in replaced:
            out.extend(text.encode("utf-8") for text in replaced[number])
        else:
            out.append(line)
    after = b"".join(out)
    return Edit(
        upstream=upstream,
        before=before,
        after=after,
        old_servers=[server.address for server in upstream.servers],
        new_servers=new_addresses,
        changes=changes,
    )


def _line_ending(text: str) -> str:
    if text.endswith("\r\n"):
        return "\r\n"
    if text.endswith(("\n", "\r")):
        return text[-1]
    return ""


def real_path(path: Path) -> Path:
    """The file to write: an included path may be a symlink (sites-enabled -> sites-available)."""
    return Path(os.path.realpath(path))

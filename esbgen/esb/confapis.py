"""Reading confapis YAML files as the ESB reads them (PyYAML's C loader), with the positions of
their values for in-place edits; ruamel.yaml reads what libyaml cannot place, and words errors."""

from __future__ import annotations

import gc
import re
import sys
from contextlib import contextmanager
from pathlib import Path

from esbgen.esb.model import Channel, Span
from esbgen.errors import EsbgenError
from esbgen.fsutil import MAX_FILE_BYTES_SETTING, YAML_MAX_SETTING, decode_text, max_file_bytes, read_input

# The values esbgen edits in place (a clone's, a retarget's): only they get a span (the others of
# 20,000 entries were 160,000 spans made for nothing).
POSITIONED_FIELDS = frozenset({"path", "comp_codename", "dest_path"})


def read_text(path: Path, label: str) -> str:
    """A YAML file's text: a regular file, within the size limit, UTF-8 (see esbgen.fsutil)."""
    limit = max_file_bytes((YAML_MAX_SETTING, MAX_FILE_BYTES_SETTING))
    return decode_text(read_input(path, label, limit=limit), label)


def compose(text: str, label: str):
    """The node graph of a YAML document; aliases stay references (no expansion).

    ruamel.yaml's libyaml parser (ruamel.yaml.clib) composes it: ten times faster
    than its pure-Python round-trip parser, with the same character offsets; on
    any error the round-trip parser reads it again and words the problem.
    """
    node = _compose_libyaml(text)
    if node is not None:
        return node
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return YAML(typ="rt").compose(text)
    except RecursionError:
        raise EsbgenError(f"{label}: malformed YAML: nested too deeply") from None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = error.problem or error.context or "malformed YAML"
        context = error.context_mark
        if error.problem and error.context and context is not None and mark is not None and context.line != mark.line:
            problem += f" ({error.context} at line {context.line + 1})"
        raise EsbgenError(f"{label}{line}: malformed YAML: {problem}") from None
    except YAMLError as error:
        position = getattr(error, "position", None)  # a ReaderError: a character YAML does not allow
        line = f":{text.count(chr(10), 0, position) + 1}" if isinstance(position, int) else ""
        problem = " ".join(str(error).split("\n")[0].split())  # one line, never the reader's second one
        raise EsbgenError(f"{label}{line}: malformed YAML: {problem}") from None


# libyaml composes nested collections by C recursion, which a hostile file can overflow (a crash,
# not an error); the pure-Python composer stops at Python's recursion limit with an error instead.
MAX_C_NESTING = 200


_NOT_BRACKETS = bytes(code for code in range(256) if code not in b"[]{}")
_OPENING = frozenset(b"[{")


def _deeply_nested(text: str) -> bool:
    """Whether the text may nest collections deeper than the C composer safely recurses.

    The brackets are picked out of the UTF-8 bytes (ASCII, never inside a longer character) and an
    indentation run is looked for after each line break: 7 MB took 63 ms with regular expressions
    over the text, 15 ms so."""
    depth = 0
    for code in text.encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKETS):
        depth = depth + 1 if code in _OPENING else max(depth - 1, 0)
        if depth > MAX_C_NESTING:
            return True
    indentation = 2 * MAX_C_NESTING
    return (re.match(r"[ \t-]{%d}" % indentation, text) is not None
            or re.search(r"\n[ \t-]{%d}" % indentation, text) is not None)


def _compose_libyaml(text: str):
    """The document composed by ruamel.yaml's libyaml parser, or None (no clib, empty, or any error)."""
    if "\ufeff" in text:  # libyaml does not count a byte order mark in its offsets
        return None
    if _deeply_nested(text):
        return None
    try:
        from ruamel.yaml import YAML
        from ruamel.yaml.clib._ruamel_yaml import CParser  # noqa: F401 - the C parser must be there
    except ImportError:
        return None
    yaml = YAML(typ="safe", pure=False)
    yaml.Resolver = _resolver_class()
    try:
        return yaml.compose(text)
    except Exception:  # noqa: BLE001 - the round-trip parser reads it again and words the error
        return None


_RESOLVER = None


def _resolver_class():
    """ruamel's resolver, its table looked up once a document and each tag made once, not per scalar.

    With the C parser there is no scanner to report a ``%YAML`` directive, so the table
    (the loader's version, else YAML 1.2's) stays the same for the whole document; ruamel
    works it out again, and makes a new Tag, for each of the 440,000 scalars of a
    20,000-channel system (2 s of a 7 s clone). The tags it gives are the same: the same
    regular expressions, tried in the same order.
    """
    global _RESOLVER
    if _RESOLVER is None:
        from ruamel.yaml.nodes import ScalarNode
        from ruamel.yaml.resolver import VersionedResolver
        from ruamel.yaml.tag import Tag

        class OnceResolver(VersionedResolver):
            @property
            def versioned_resolver(self):
                table = self.__dict__.get("_esbgen_table")
                if table is None:
                    table = self.__dict__["_esbgen_table"] = VersionedResolver.versioned_resolver.fget(self)
                return table

            def _plain_table(self):
                """First character -> the (Tag, pattern) pairs to try, the first-character-free ones after."""
                table = self.versioned_resolver
                tags: dict[str, Tag] = {}

                def tagged(pairs):
                    return [(tags.setdefault(tag, Tag(suffix=tag)), regexp) for tag, regexp in pairs]

                anywhere = tagged(table.get(None, []))
                plain = {key: tagged(pairs) + anywhere for key, pairs in table.items() if key is not None}
                if "" not in plain:
                    plain[""] = anywhere
                self.__dict__["_esbgen_plain"] = found = (plain, anywhere)
                return found

            def resolve(self, kind, value, implicit):
                if kind is not ScalarNode or self.yaml_path_resolvers:
                    return VersionedResolver.resolve(self, kind, value, implicit)
                if implicit[0]:
                    plain, anywhere = self.__dict__.get("_esbgen_plain") or self._plain_table()
                    for tag, regexp in plain.get(value[:1], anywhere):
                        if regexp.match(value):
                            return tag
                return self.DEFAULT_SCALAR_TAG

        _RESOLVER = OnceResolver
    return _RESOLVER


def _tag_text(node, known: dict[int, str]) -> str:
    """``node.tag`` (the tag as text), worked out once for each of the few Tag objects a document has."""
    ctag = node.ctag
    text = known.get(id(ctag))
    if text is None:
        text = known[id(ctag)] = node.tag or ""
    return text


def channels_of(root: Path, relpath: Path, run_mode: str | None = None, positions: bool = True) -> list[Channel]:
    """The entries of one confapis file; with ``positions``, each with the spans of its POSITIONED_FIELDS.

    PyYAML's C loader (the parser of the ESB's own yaml.safe_load) composes the file, its
    resolver asked only whether a scalar is a null or a merge key; libyaml's marks give the
    spans. A file it does not read (a byte order mark, which libyaml leaves out of its offsets,
    deep nesting, any error) ruamel.yaml reads again, so errors are worded with its positions.
    Both readings give the same entries and spans (tests/test_yaml_readers.py).
    """
    label = str(relpath)
    text = read_text(root / relpath, label)
    with collector_paused():
        return _read_channels(text, relpath, label, run_mode, positions)


def _read_channels(text: str, relpath: Path, label: str, run_mode: str | None, positions: bool) -> list[Channel]:
    # a function of its own: the node graph is freed when it returns, before collection resumes
    if not (positions and "\ufeff" in text):
        document = _compose_fast(text)
        if document is not _UNREAD:
            return _channels(document, relpath, label, run_mode, _fast_tag_text, positions)
    return precise_channels(text, relpath, run_mode, positions)


def precise_channels(text: str, relpath: Path, run_mode: str | None = None, positions: bool = True) -> list[Channel]:
    """The entries as ruamel.yaml composes the text (the reading that words every error)."""
    label = str(relpath)
    return _channels(compose(text, label), relpath, label, run_mode, _tag_text, positions)


@contextmanager
def collector_paused():
    """No cyclic garbage collection while a document's node graph is built and read.

    Half a million nodes at 20,000 channels, none in a cycle (refcounting frees them all):
    each collection that ran meanwhile walked every one of them, for nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _channels(document, relpath: Path, label: str, run_mode: str | None, tag_text, positions: bool) -> list[Channel]:
    if document is None:
        return []
    # Node kinds by ``id`` ('scalar', 'sequence', 'mapping'): the nodes of every composer alike.
    if document.id != "sequence":
        raise EsbgenError(f"{label}:{document.start_mark.line + 1}: the file is not a list of channels")
    channels = []
    tags: dict[int, str] = {}
    intern = sys.intern
    fast = tag_text is _fast_tag_text  # PyYAML's nodes: a tag is text already
    for item in document.value:
        line = item.start_mark.line + 1
        if item.id != "mapping":
            raise EsbgenError(f"{label}:{line}: a channel entry is not a mapping")
        fields: dict = {}
        spans: dict[str, Span] = {}
        nested: set[str] = set()
        pairs = _plain_items(item) if fast else None
        if pairs is None:
            pairs = _entry_items(item, tags, tag_text)
        for key, value_node in pairs:
            key = intern(key)  # 10 names for 200,000 keys at 20,000 channels
            if value_node.id == "scalar":
                tag = (value_node.tag or "") if fast else tag_text(value_node, tags)
                fields[key] = None if tag.endswith(":null") else _own(value_node.value)
                if positions and key in POSITIONED_FIELDS:
                    start = value_node.start_mark
                    spans[key] = Span(
                        start.index,
                        value_node.end_mark.index,
                        start.line + 1,
                        value_node.style or None,  # libyaml says '' for plain
                    )
            else:
                fields[key] = None
                nested.add(key)
        channels.append(Channel(relpath, line, fields, spans, run_mode, frozenset(nested)))
    return channels


def _plain_items(mapping) -> list | None:
    """The (key, value node) pairs of an entry of PyYAML's nodes without a merge key (the usual
    entry); None when it has one, for ``_entry_items`` to work it out."""
    for key_node, _ in mapping.value:
        if key_node.id == "scalar" and ((key_node.value == "<<" and not key_node.style)
                                        or (key_node.tag or "").endswith(":merge")):
            return None
    return [(key_node.value, value_node) for key_node, value_node in mapping.value if key_node.id == "scalar"]


_UNREAD = object()
_FAST_LOADER = None


def _fast_loader():
    """PyYAML's C loader with a resolver that tells apart only what a channel's reading asks:
    a null (``~``, ``null``, empty, plain) and a merge key (``<<``, plain); every other implicit
    scalar is text, as esbgen keeps every value. Both are the same in YAML 1.1 and 1.2."""
    global _FAST_LOADER
    if _FAST_LOADER is None:
        import yaml

        null, merge, text = "tag:yaml.org,2002:null", "tag:yaml.org,2002:merge", "tag:yaml.org,2002:str"
        nulls = frozenset(("~", "null", "Null", "NULL", ""))
        scalar = yaml.ScalarNode
        base = yaml.resolver.BaseResolver.resolve

        class ChannelLoader(yaml.CBaseLoader):
            def resolve(self, kind, value, implicit):
                if kind is not scalar:
                    return base(self, kind, value, implicit)
                if implicit[0]:
                    if value in nulls:
                        return null
                    if value == "<<":
                        return merge
                return text

        _FAST_LOADER = ChannelLoader
    return _FAST_LOADER


def _compose_fast(text: str):
    """The document's nodes as PyYAML's C composer makes them (None for an empty one), or _UNREAD:
    no C loader, nesting too deep for C recursion, or any error (the precise reader words it)."""
    if _deeply_nested(text):
        return _UNREAD
    try:
        import yaml

        if not getattr(yaml, "__with_libyaml__", False):
            return _UNREAD
        loader = _fast_loader()(text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except Exception:  # noqa: BLE001 - the precise reader reads it again and words the error
        return _UNREAD


_DOCUMENT_MARKER = re.compile(r"(?:---|\.\.\.)(?=[ \t\r\n\x85\u2028\u2029]|\Z)")
_LINE_BREAKS = "\n\r\x85\u2028\u2029"
_HEADER_LINE = re.compile(r"[ \t]*(?:#.*)?\Z|%")  # blank, a comment, a directive


def composes(text: str) -> bool:
    """Whether PyYAML's C loader (the ESB's) composes the text, as ``_compose_fast`` says, in a third of its time.

    libyaml's parser alone, building no node, says whether the text is YAML; all the composer adds is
    refusing an alias without its anchor, an anchor set twice, a second document, and nesting too deep
    for its C recursion. Where the text may hold an anchor or alias (a ``&`` or ``*`` in it), a document
    marker after the first one's header, or deep nesting, the composer itself is asked."""
    markers = [m for m in _DOCUMENT_MARKER.finditer(text) if m.start() == 0 or text[m.start() - 1] in _LINE_BREAKS]
    one_document = not markers or (len(markers) == 1 and markers[0].group() == "---" and all(
        _HEADER_LINE.match(line) for line in text[:markers[0].start()].splitlines()))
    if "&" in text or "*" in text or not one_document or _deeply_nested(text):
        return _compose_fast(text) is not _UNREAD
    try:
        from yaml._yaml import CParser

        CParser(text).raw_parse()
    except Exception:  # noqa: BLE001 - what libyaml refuses (or no libyaml: _compose_fast could not say either)
        return False
    return True


def _fast_tag_text(node, known: dict[int, str]) -> str:
    return node.tag or ""


def _own(value: str) -> str:
    """A copy of a scalar's text, so that none of the node graph outlives the channels read from it.

    The C composer allocates the texts among its nodes and marks; a text kept from there keeps its
    memory pages from ever being freed: the next phases then grew the process by another 95 MiB
    at 20,000 channels (peak 369 MiB, 274 MiB with the copies).
    """
    return (value + " ")[:-1] if value else value


def _entry_items(mapping, tags: dict[int, str], tag_text=_tag_text, depth: int = 0) -> list:
    """The (key, value node) pairs of an entry as the ESB's YAML loader sees them: merge keys
    (``<<: *defaults``, or a list of them) give the keys the entry does not set itself, the
    first merged mapping winning; an alias stands for its anchored node."""
    own, merged = [], []
    for key_node, value_node in mapping.value:
        if key_node.id != "scalar":
            continue
        if (key_node.value == "<<" and not key_node.style) or tag_text(key_node, tags).endswith(":merge"):
            sources = [value_node] if value_node.id == "mapping" else [
                n for n in (value_node.value if value_node.id == "sequence" else []) if n.id == "mapping"]
            if depth < 16:
                for source in sources:
                    merged.extend(_entry_items(source, tags, tag_text, depth + 1))
            continue
        own.append((key_node.value, value_node))
    seen = {key for key, _ in own}
    for key, value_node in merged:
        if key not in seen:
            own.append((key, value_node))
            seen.add(key)
    return own


def scalar_inner(text: str, channel: Channel, key: str) -> tuple[int, str]:
    """Where the value of ``key`` stands in ``text`` (inside its quotes) and that text.

    Refuses values an in-place edit could not change faithfully: block
    scalars, escapes, values spanning lines.
    """
    span = channel.spans[key]
    raw = text[span.start:span.end]
    if span.style is None:
        start, inner = span.start, raw
    elif span.style in ('"', "'"):
        start, inner = span.start + 1, raw[1:-1]
    else:
        raise EsbgenError(f"{channel.file}:{span.line}: {key} is a block scalar; write it on one line first")
    if inner != channel.fields.get(key):
        raise EsbgenError(f"{channel.file}:{span.line}: {key} uses escapes or spans lines; write it plainly first")
    return start, inner


def dest_path_app_edit(text: str, channel: Channel, app: str | None, note: str = "dest_path"):
    """The Edit that puts the variable ``app_code`` where ``app`` stands in ``/o/<app>/...`` of the
    channel's dest_path; None when the channel has no dest_path on that app."""
    if not app or "dest_path" not in channel.spans or not isinstance(channel.fields.get("dest_path"), str):
        return None
    start, inner = scalar_inner(text, channel, "dest_path")
    app_path, edit, app_code = _edit_names()
    match = app_path.match(inner)
    if match is None or match.group(1) != app:
        return None
    return edit(start + match.start(1), start + match.end(1), [app_code], note)


_EDIT_NAMES: tuple = ()


def _edit_names() -> tuple:
    """rules.APP_PATH_RE, Edit and Var("app_code"), imported once (not for each of 20,000 entries)."""
    global _EDIT_NAMES
    if not _EDIT_NAMES:
        from esbgen.esb.rules import APP_PATH_RE
        from esbgen.edit.python import Edit, Var

        _EDIT_NAMES = (APP_PATH_RE, Edit, Var("app_code"))
    return _EDIT_NAMES

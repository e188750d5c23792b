"""Reading an ESB root from its files: systems, components, channels, registrations."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from esbgen.esb.confapis import channels_of
from esbgen.esb.model import (
    COMPONENT_GROUPS,
    ComponentClass,
    ComponentSet,
    EsbTree,
    PresetChannel,
    RegisteredSystem,
)
from esbgen.errors import EsbgenError
from esbgen.fsutil import check_entry, folder_entries, read_input, refuse_special_files
from esbgen.edit.python import source_segment
from esbgen.esb.layout import APIDOCS, COMPONENTS, CONFAPIS, CUSTOM_CONF, ESB_CONF, SYSTEM_CONFIGS, generation, is_esb_root, not_a_root_reason
from esbgen.esb.rules import NON_COMPONENT_DIRS, component_codename

SKIPPED_NAMES = ("__pycache__",)


def resolve_root(explicit: str | os.PathLike | None) -> Path:
    """The ESB root: the option, else $ESBGEN_ESB_ROOT, else the current directory."""
    raw = explicit or os.environ.get("ESBGEN_ESB_ROOT") or os.getcwd()
    root = Path(raw).absolute()
    if not root.is_dir():
        raise EsbgenError(f"{root} is not a directory")
    if not is_esb_root(root):
        raise EsbgenError(f"{not_a_root_reason(root)}; use --esb-root or run from $INSTALL_PATH/paas/esb")
    return root


def _visible_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        child
        for child in folder.iterdir()
        if child.is_dir() and not child.is_symlink() and not child.name.startswith((".", "_"))
    )


def parse_python(path: Path, label: str) -> ast.Module:
    return _parsed(read_input(path, label), label)


def _parsed(data: bytes, label: str) -> ast.Module:
    try:
        return ast.parse(data, filename=label)
    except SyntaxError as error:
        raise EsbgenError(f"{label}:{error.lineno}: Python syntax error: {error.msg}") from None


def string_constant(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def module_assignments(module: ast.Module) -> dict[str, ast.expr]:
    return assignments_in(module.body)


def assignments_in(body: list[ast.stmt]) -> dict[str, ast.expr]:
    """The names a block of statements assigns, with the value each gets last."""
    values = {}
    for statement in body:
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = statement.value
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value:
            values[statement.target.id] = statement.value
    return values


def settings_read(module: ast.Module) -> list[str]:
    """Names a module reads from django settings: ``settings.X`` and ``getattr(settings, "X", ...)``."""
    names = []
    for node in ast.walk(module):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "settings":
            names.append(node.attr)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == "settings"
        ):
            name = string_constant(node.args[1])
            if name:
                names.append(name)
    return names


def python_files(folder: Path, root: Path | None = None) -> list[Path]:
    """Every .py file of a system folder, not following links out of it (in os.walk's order).

    A FIFO, socket or device anywhere in it is refused by name (``root``: what names are shown
    relative to), from its type in the folder listing, never opened.
    """
    found: list[Path] = []

    def walk(directory: str) -> None:
        subfolders = []
        for entry in folder_entries(directory, by_name=True):
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIPPED_NAMES:
                    subfolders.append(entry.path)
                continue
            path = Path(entry.path)
            check_entry(entry, path.relative_to(root) if root is not None else path)
            if entry.name.endswith(".py"):
                found.append(path)
        for subfolder in subfolders:
            walk(subfolder)

    walk(os.fspath(folder))
    return found


def is_component_module(relative: Path) -> bool:
    """Files in toolkit/ and apidoc folders, and files starting with '_', are never components."""
    if relative.name.startswith("_"):
        return False
    return not any(part in NON_COMPONENT_DIRS for part in relative.parts[:-1])


@dataclass
class ModuleFacts:
    """What esbgen needs of one Python file of a system, however it was parsed."""

    classes: list[tuple[str, list[str], int, str | None]]  # name, base names, line, class-level ``name``
    strings: dict[str, str]  # module-level assignments of a string literal
    settings: list[str]  # names read from django settings
    python3: bool = True  # False: only a Python 2 grammar reads it (the legacy ESB runs it, the later cannot)
    python2_only: bool = False  # only the Python 2.7 grammar reads it: esbgen copies it, it cannot edit it


def _class_alias(node: ast.ClassDef) -> str | None:
    """A class-level ``name = "..."``: the ESB names the component's channels by it."""
    for statement in node.body:
        if isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "name" for t in statement.targets):
            return string_constant(statement.value)
    return None


def _base_name(base: ast.expr) -> str:
    return base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")


def _facts_of_ast(module: ast.Module, data: bytes = b"settings") -> ModuleFacts:
    classes = [
        (node.name, [_base_name(b) for b in node.bases], node.lineno, _class_alias(node))
        for node in module.body
        if isinstance(node, ast.ClassDef)
    ]
    strings = {name: value for name, node in module_assignments(module).items() if (value := string_constant(node)) is not None}
    # Both forms name ``settings``: a file without the word reads none, and its tree need not be walked
    # (unless it has non-ASCII text: Python reads some other letters as these, NFKC-normalised).
    walk = b"settings" in data or not data.isascii()
    return ModuleFacts(classes, strings, settings_read(module) if walk else [])


def _facts_of_libcst(data: bytes) -> ModuleFacts | None:
    """The same facts from libcst, whose grammar also takes the Python 2 forms legacy components use
    (``except KeyError, e``); None when it cannot read the file either."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    try:
        wrapper = MetadataWrapper(cst.parse_module(data))
    except Exception:  # noqa: BLE001 - any parser failure means: not readable
        return None
    positions = wrapper.resolve(PositionProvider)

    def literal(node) -> str | None:
        if isinstance(node, cst.SimpleString):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, SyntaxError):
                return None
            return value if isinstance(value, str) else None
        return None

    def assigned(statement, target_name: str):
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign) and any(
                    isinstance(t.target, cst.Name) and t.target.value == target_name for t in small.targets
                ):
                    return small.value
        return None

    classes, strings, settings = [], {}, []
    for statement in wrapper.module.body:
        if isinstance(statement, cst.ClassDef):
            bases = [a.value.attr.value if isinstance(a.value, cst.Attribute) else getattr(a.value, "value", "") for a in statement.bases]
            alias = next((literal(v) for v in (assigned(s, "name") for s in statement.body.body) if v is not None), None)
            classes.append((statement.name.value, bases, positions[statement].start.line, alias))
        elif isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
                    value = literal(small.value)
                    if value is not None:
                        strings[small.targets[0].target.value] = value

    class Settings(cst.CSTVisitor):
        def visit_Attribute(self, node) -> None:
            if isinstance(node.value, cst.Name) and node.value.value == "settings":
                settings.append(node.attr.value)

        def visit_Call(self, node) -> None:
            if isinstance(node.func, cst.Name) and node.func.value == "getattr" and len(node.args) >= 2:
                first, second = node.args[0].value, literal(node.args[1].value)
                if isinstance(first, cst.Name) and first.value == "settings" and second:
                    settings.append(second)

    wrapper.module.visit(Settings())
    return ModuleFacts(classes, strings, settings, python3=False)


def _facts_of_python2(data: bytes) -> ModuleFacts | None:
    """The same facts read with the Python 2.7 grammar (parso's), for what only Python 2 reads
    (``print "..."``), as the legacy ESB runs it; None when that grammar does not read it either."""
    try:
        import parso
        grammar = parso.load_grammar(version="2.7")
    except (ImportError, NotImplementedError):  # a parso without the 2.7 grammar
        return None
    try:
        module = grammar.parse(data.decode("utf-8"))
    except (UnicodeDecodeError, Exception):  # noqa: BLE001 - any parser failure means: not readable
        return None
    if next(iter(grammar.iter_errors(module)), None) is not None:
        return None

    def literal(node) -> str | None:
        if node is not None and node.type == "string":
            try:
                value = ast.literal_eval(node.value.lstrip("uUbB") if node.value[:1] in "uU" else node.value)
            except (ValueError, SyntaxError):
                return None
            return value if isinstance(value, str) else None
        return None

    classes, strings, settings = [], {}, []
    for node in module.children:
        if node.type == "classdef":
            alias = None
            body = node.children[-1]
            for statement in getattr(body, "children", []):
                parts = statement.children[0].children if statement.type == "simple_stmt" and \
                    statement.children[0].type == "expr_stmt" else []
                if len(parts) == 3 and parts[0].type == "name" and parts[0].value == "name" and parts[1].value == "=":
                    alias = literal(parts[2])
            bases = []
            for child in node.children:
                if child.type == "name" and child.value not in ("class", node.name.value):
                    bases.append(child.value)
                elif child.type in ("arglist", "power", "atom_expr"):
                    bases.extend(leaf.value for leaf in child.children if leaf.type == "name")
            classes.append((node.name.value, bases, node.start_pos[0], alias))
        elif node.type == "simple_stmt" and node.children[0].type == "expr_stmt":
            parts = node.children[0].children
            if len(parts) == 3 and parts[0].type == "name" and parts[1].value == "=" and literal(parts[2]) is not None:
                strings[parts[0].value] = literal(parts[2])

    def walk(node) -> None:
        children = getattr(node, "children", None)
        if children is None:
            return
        if node.type in ("power", "atom_expr") and len(children) >= 2 and children[0].type == "name":
            first, trailer = children[0], children[1]
            if first.value == "settings" and trailer.type == "trailer" and trailer.children[0].value == ".":
                settings.append(trailer.children[1].value)
            elif first.value == "getattr" and trailer.type == "trailer" and len(trailer.children) == 3 \
                    and trailer.children[1].type == "arglist":
                args = [a for a in trailer.children[1].children if a.type != "operator"]
                if len(args) >= 2 and args[0].type == "name" and args[0].value == "settings" and literal(args[1]):
                    settings.append(literal(args[1]))
        for child in children:
            walk(child)

    walk(module)
    return ModuleFacts(classes, strings, settings, python3=False, python2_only=True)


def module_facts(path: Path, label: str, unreadable: list[str] | None = None) -> ModuleFacts | None:
    """The facts of a Python file: Python 3's own parser first, then libcst for Python 2 forms, then
    the Python 2.7 grammar for what only Python 2 reads (the legacy ESB runs Python 2.7).

    A file none reads is named in ``unreadable`` (the ESB cannot import it either) and
    skipped; without that list it is refused.
    """
    return facts_of_bytes(read_input(path, label), label, unreadable)


def facts_of_bytes(data: bytes, label: str, unreadable: list[str] | None = None) -> ModuleFacts | None:
    """``module_facts`` of a file's bytes (a file about to be written is read as it will be)."""
    try:
        return _facts_of_ast(ast.parse(data, filename=label), data)
    except (SyntaxError, ValueError) as error:
        facts = _facts_of_libcst(data) or _facts_of_python2(data)
        if facts is not None:
            return facts
        if unreadable is None:
            raise EsbgenError(f"{label}:{getattr(error, 'lineno', '?')}: Python syntax error: {getattr(error, 'msg', error)}") from None
        unreadable.append(f"{label}:{getattr(error, 'lineno', '?')}")
        return None


def read_python_system(root: Path, folder: Path, prefix: str, system: ComponentSet) -> None:
    """One Python side of a system: its SYSTEM_NAME, its component classes and the settings it reads."""
    relative_folder = folder.relative_to(root)
    configs = folder / SYSTEM_CONFIGS
    side_name = None
    read: dict[Path, ModuleFacts | None] = {}
    if configs.is_file():
        facts = read[configs] = module_facts(configs, str(configs.relative_to(root)))
        side_name = facts.strings.get("SYSTEM_NAME")
    system.side_names[relative_folder] = side_name
    if system.system_name is None:
        system.system_name = side_name
    sys_name = side_name or system.system_name or folder.name.upper()
    settings: list[str] = []
    for path in python_files(folder, root):
        relative = path.relative_to(folder)
        label = str(path.relative_to(root))
        facts = read[path] if path in read else module_facts(path, label, system.unreadable)
        if facts is None:
            continue
        if facts.python2_only:
            system.python2_files.append(label)
        for name in facts.settings:
            if name not in settings:
                settings.append(name)
        if not is_component_module(relative):
            continue
        for class_name, bases, line, alias in facts.classes:
            if any(base.endswith("Component") for base in bases):
                system.components.append(
                    ComponentClass(
                        class_name,
                        path.relative_to(root),
                        line,
                        component_codename(prefix, sys_name, class_name),
                        alias,
                        facts.python3,
                    )
                )
    system.settings_read.extend(name for name in settings if name not in system.settings_read)


def confapis_files(root: Path, folder: Path) -> list[tuple[Path, str | None]]:
    """The YAML files the ESB reads for a system, with their RUN_MODE folder (None for defaults)."""
    files = [(p.relative_to(root), None) for p in sorted(folder.glob("*.yaml")) if p.is_file() and not p.is_symlink()]
    for sub in _visible_dirs(folder):
        if sub.name == APIDOCS:
            continue
        files.extend(
            (p.relative_to(root), sub.name) for p in sorted(sub.glob("*.yaml")) if p.is_file() and not p.is_symlink()
        )
    return files


def _shadows_dict(module: ast.Module) -> bool:
    """Whether the module binds the name ``dict`` itself (then ``dict(...)`` is not the builtin)."""
    for node in ast.walk(module):
        if isinstance(node, ast.Name) and node.id == "dict" and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == "dict":
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == "dict" for a in node.names):
            return True
    return False


def is_dict_call(node: ast.expr | None) -> bool:
    """``dict(...)`` with keyword arguments (and at most one mapping before them), as the ESB's conf.py may write an entry."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and len(node.args) <= 1
        and not any(isinstance(a, ast.Starred) for a in node.args)
    )


def dict_items(node: ast.expr) -> list[tuple[str | None, ast.expr]] | None:
    """The (key, value node) pairs of a dict display or a ``dict(...)`` call, in the order the
    mapping gets them (a key written twice keeps its last value); ``None`` keys stand for parts
    whose keys only running the code shows (``**base``, a positional mapping). None if not a dict."""
    if isinstance(node, ast.Dict):
        # a key that is no string (a number, a name) is "": no config key the ESB reads
        return [(None if k is None else (string_constant(k) or ""), v) for k, v in zip(node.keys, node.values)]
    if is_dict_call(node):
        pairs: list[tuple[str | None, ast.expr]] = []
        if node.args:
            inner = dict_items(node.args[0])
            pairs.extend(inner if inner is not None else [(None, node.args[0])])
        pairs.extend((kw.arg, kw.value) for kw in node.keywords)
        return pairs
    return None


def _conf_value(node: ast.expr, builtin_dict: bool = True):
    """The value of a conf module's expression as the ESB gets it by importing the module.

    A literal (``ast.literal_eval``), or a ``dict(name=..., ...)`` call, at any depth (an entry
    of SYSTEMS, a config of CHANNELS, a value inside one). Anything else is code: ValueError.
    """
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        values = [_conf_value(e, builtin_dict) for e in node.elts]
        return values if isinstance(node, ast.List) else tuple(values) if isinstance(node, ast.Tuple) else set(values)
    if isinstance(node, ast.Dict) or (builtin_dict and is_dict_call(node)):
        result: dict = {}
        if isinstance(node, ast.Call) and node.args:
            first = _conf_value(node.args[0], builtin_dict)
            try:
                result.update(first)
            except (TypeError, ValueError):
                raise ValueError("dict() of something that is no mapping") from None
        keys = node.keys if isinstance(node, ast.Dict) else [kw.arg for kw in node.keywords]
        values = node.values if isinstance(node, ast.Dict) else [kw.value for kw in node.keywords]
        for key, value in zip(keys, values):
            if key is None:  # **mapping
                inner = _conf_value(value, builtin_dict)
                if not isinstance(inner, dict):
                    raise ValueError("** of something that is no mapping")
                result.update(inner)
            else:
                result[key if isinstance(key, str) else _conf_value(key, builtin_dict)] = _conf_value(value, builtin_dict)
        return result
    raise ValueError(f"not a literal: {type(node).__name__}")


def conf_value(node: ast.expr, builtin_dict: bool = True):
    """``_conf_value``, whose every failure is a ValueError (an unhashable key, nesting too deep)."""
    try:
        return _conf_value(node, builtin_dict)
    except (TypeError, RecursionError, MemoryError):
        raise ValueError("not a value esbgen can read") from None


def _literal_items(node: ast.expr, builtin_dict: bool = True) -> tuple[dict, tuple[str, ...]]:
    """The keys of a config (a dict display or ``dict(...)``), and the values among them that are literals."""
    values: dict = {}
    keys = []
    for name, value in dict_items(node) or []:
        if not name:
            continue
        keys.append(name)
        try:
            values[name] = conf_value(value, builtin_dict)
        except ValueError:
            pass  # built in code (validators): kept as text
    return values, tuple(keys)


def _is_config(node: ast.expr, builtin_dict: bool) -> bool:
    return isinstance(node, ast.Dict) or (builtin_dict and is_dict_call(node))


def _preset_of(node: ast.expr, text: str, source: str, builtin_dict: bool = True) -> PresetChannel | None:
    """A channel entry in either form the ESB reads: ``(path, {config})`` or ``{"path":..., "comp_codename":...}``;
    a config may be written ``dict(...)`` too, which is the same mapping to the ESB."""
    if isinstance(node, ast.Tuple) and len(node.elts) == 2 and _is_config(node.elts[1], builtin_dict):
        path = string_constant(node.elts[0])
        options = node.elts[1]
        config, keys = _literal_items(options, builtin_dict)
        codename = config.get("comp_codename")
        if path is None or not isinstance(codename, str):
            return None
        code = source_segment(text, options)
        span = None
        for key, value in dict_items(options) or []:
            if key == "comp_codename":
                segment = source_segment(text, value) or ""
                start = _relative_offset(code or "", options, value)
                span = (start, start + len(segment))
        names = frozenset(n.id for n in ast.walk(options) if isinstance(n, ast.Name))
        if isinstance(options, ast.Call):
            names -= {"dict"}
        return PresetChannel(path, codename, source, node.lineno, "tuple", config, keys, code, span, names)
    if _is_config(node, builtin_dict):
        config, keys = _literal_items(node, builtin_dict)
        path, codename = config.get("path"), config.get("comp_codename")
        if isinstance(path, str) and isinstance(codename, str):
            return PresetChannel(path, codename, source, node.lineno, "dict", {"comp_codename": codename}, keys)
    return None


def _relative_offset(code: str, outer: ast.expr, inner: ast.expr) -> int:
    """Where ``inner`` starts inside ``code``, the source text of ``outer``."""
    lines = code.split("\n")
    line = inner.lineno - outer.lineno
    head = sum(len(text) + 1 for text in lines[:line])
    column_base = outer.col_offset if line == 0 else 0
    line_bytes = lines[line].encode("utf-8")
    return head + len(line_bytes[: inner.col_offset - column_base].decode("utf-8", errors="ignore"))


def group_entries(module: ast.Module) -> Iterator[tuple[str | None, str | None, ast.expr]]:
    """Every key of every dict literal of esb_conf.py, as (its channel group, the key, its value): a dict
    that is the value of a string key is that group's (ast.walk reaches a dict before the dicts in it)."""
    group_of: dict[int, str] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                name = string_constant(key)
                if name is not None and isinstance(value, ast.Dict):
                    group_of[id(value)] = name
            for key, value in zip(node.keys, node.values):
                yield group_of.get(id(node)), string_constant(key), value


def channel_groups(module: ast.Module, text: str, source: str) -> tuple[list[PresetChannel], list[tuple[str, str, str | None]]]:
    """The ``preset_channels`` of esb_conf.py's channel groups, in file order, each with its group,
    and the groups' ``rewrite_channels`` (alias, path, group)."""
    found, rewrites = [], []
    for group, name, value in group_entries(module):
        if name == "preset_channels" and isinstance(value, (ast.List, ast.Tuple)):
            for preset in (_preset_of(e, text, source) for e in value.elts):
                if preset is not None:
                    preset.group = group
                    found.append(preset)
        elif name == "rewrite_channels" and isinstance(value, ast.Dict):
            for alias, path in zip(value.keys, value.values):
                if string_constant(alias) is not None and string_constant(path) is not None:
                    rewrites.append((string_constant(alias), string_constant(path), group))
    return sorted(found, key=lambda preset: preset.line), rewrites


def read_custom_conf(root: Path, unread: list[str] | None = None) -> tuple[dict[str, RegisteredSystem], list[PresetChannel]]:
    """SYSTEMS and CHANNELS of the custom conf module, as the ESB gets them by importing it.

    An entry is a literal or written with ``dict(...)`` (the same mapping to the ESB); an entry
    built by other code is not read, and ``unread`` gets where it stands (``file:line``).
    """
    path = root / CUSTOM_CONF
    if not os.path.lexists(path):
        return {}, []
    data = read_input(path, str(CUSTOM_CONF))
    module = _parsed(data, str(CUSTOM_CONF))
    builtin_dict = not _shadows_dict(module)
    assignments = module_assignments(module)
    registered: dict[str, RegisteredSystem] = {}
    systems = assignments.get("SYSTEMS")
    if isinstance(systems, (ast.List, ast.Tuple)):
        for element in systems.elts:
            try:
                entry = conf_value(element, builtin_dict)
            except ValueError:
                entry = None
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                registered[entry["name"]] = RegisteredSystem(entry["name"], entry)
            elif unread is not None:
                unread.append(f"{CUSTOM_CONF}:{element.lineno}")
    elif systems is not None and unread is not None:
        unread.append(f"{CUSTOM_CONF}:{systems.lineno}")
    if unread is not None:  # SYSTEMS changed by code after its assignment: += [...], .append(...), .extend(...)
        for node in ast.walk(module):
            if (isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == "SYSTEMS") or (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "SYSTEMS"
            ):
                unread.append(f"{CUSTOM_CONF}:{node.lineno}")
    channels_node = assignments.get("CHANNELS")
    channels = []
    if isinstance(channels_node, (ast.List, ast.Tuple)):
        text = data.decode("utf-8", errors="replace")
        channels = [p for p in (_preset_of(e, text, str(CUSTOM_CONF), builtin_dict) for e in channels_node.elts) if p is not None]
    return registered, channels


def _owner_of(codename: str) -> str | None:
    for prefix in sorted(set(COMPONENT_GROUPS.values()), key=len, reverse=True):
        if codename.startswith(prefix):
            rest = codename[len(prefix):]
            if "." in rest:
                return rest.split(".", 1)[0]
    return None


def load_tree(root: Path, only: set[str] | None = None, positions: set[str] | None = None) -> EsbTree:
    """Read the tree; with ``only``, read channels and components of those systems alone.

    ``positions`` names the systems whose channels get the spans of their values (the ones a
    command edits); None gives every system its spans. The others are read faster, without.
    """
    from esbgen import progress

    systems: dict[str, ComponentSet] = {}
    progress.phase("reading")

    def wanted(name: str) -> bool:
        return only is None or name in only

    for group, prefix in COMPONENT_GROUPS.items():
        for folder in _visible_dirs(root / COMPONENTS / group):
            name = folder.name
            system = systems.get(name)
            if system is None:
                system = systems[name] = ComponentSet(
                    name, None, folder.relative_to(root), prefix, None
                )
            system.python_dirs.append(folder.relative_to(root))
            if wanted(name):
                read_python_system(root, folder, prefix, system)
                progress.tick()
    for folder in _visible_dirs(root / CONFAPIS):
        name = folder.name
        system = systems.get(name)
        if system is None:
            system = systems[name] = ComponentSet(name, None, None, "generic.v2.", None)
        system.confapis_dir = folder.relative_to(root)
        if wanted(name):
            refuse_special_files(folder, folder.relative_to(root))  # the ESB reads its docs too
            for relpath, run_mode in confapis_files(root, folder):
                system.yaml_files.append(relpath)
                system.channels.extend(channels_of(root, relpath, run_mode, positions is None or name in positions))
                progress.tick()
    esb_conf = root / ESB_CONF
    presets, rewrites = [], []
    if os.path.lexists(esb_conf):
        data = read_input(esb_conf, str(ESB_CONF))
        text = data.decode("utf-8", errors="replace")
        presets, rewrites = channel_groups(_parsed(data, str(ESB_CONF)), text, str(ESB_CONF))
    unread: list[str] = []
    registered, conf_channels = read_custom_conf(root, unread)
    for preset in presets + conf_channels:
        owner = _owner_of(preset.codename)
        if owner in systems:
            systems[owner].preset_channels.append(preset)
    return EsbTree(root, systems, registered, conf_channels, presets, generation(root), unread, rewrites)

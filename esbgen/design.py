"""A clone's design: a source component set read, designed as a new system, made a cookiecutter template,
rendered and checked. ``esbgen clone``, ``new`` and ``templatize`` all build on it."""

from __future__ import annotations

import ast
import filecmp
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from esbgen.edit.python import PythonRewrites, Rewrite, append_to_list, py_literal, python_edits
from esbgen.edit.template import Edit, TemplateFile, TemplateSpec, Var, VerbatimFolder, render
from esbgen.errors import Refused, UsageError
from esbgen.esb.confapis import dest_path_app_edit, read_text, scalar_inner
from esbgen.esb.layout import (
    APIDOCS,
    APISV2,
    COMPONENTS,
    CONFAPIS_GROUP,
    CUSTOM_CONF,
    ESB_CONF,
    settings_file,
    system_folders,
)
from esbgen.esb.model import Channel, CloneTarget, ComponentSet, EsbTree, PresetChannel
from esbgen.esb.rules import (
    APP_PATH_RE,
    Problem,
    check_channel_fields,
    clone_remark,
    clone_source,
    default_app_code,
    follows_path_pattern,
    is_v2_path,
    known_flawless,
    normalised_path,
    own_and_inherited,
    preset_name,
    renamed_setting,
    served_channels,
    served_paths,
    standard_path_parts,
    validate_app_code,
    validate_host_setting_answer,
    validate_host_settings_of_type,
    validate_label,
    validate_new_system,
    validate_system_folder,
)
from esbgen.esb.tree import group_entries, load_tree, module_facts
from esbgen.fsutil import check_entry, decode_text, folder_entries, read_input
from esbgen.plan import FileWrite, Plan, TreeAdd, relative_names
from esbgen.saas import SaasType, codename_literal, select_saas_type

SKIPPED_FILES = ("__pycache__", ".pyc", ".pyo")


@dataclass
class CloneRequest:
    source: str
    new: str
    app_code: str | None = None
    label: str | None = None
    force: bool = False
    saas_type: str | None = None
    empty_ok: bool = False  # a source that declares no channel gives a system that serves nothing


@dataclass
class CloneOutcome:
    plan: Plan
    target: CloneTarget
    source: ComponentSet
    saas_type: SaasType
    source_app: str | None
    context: dict[str, Any]
    spec: TemplateSpec
    edits_by_kind: dict[str, int] = field(default_factory=dict)
    # the host settings the clone's code reads, each with the source's name and the clone's channels needing it
    backend_settings: dict[str, tuple[str, list[str]]] = field(default_factory=dict)


def _source_files(folder: Path, label: Path) -> list[tuple[str, list[str]]]:
    """Files of a source folder, a sub-folder at a time: (its path relative to ``folder``, "" or ending
    with "/"; its file names). Links are refused, caches skipped.

    The order is os.walk's (a folder's files sorted, then its sub-folders, sorted). One os.scandir
    a folder and strings, not Paths: a link is told by the entry's type, without a stat a file.
    """
    found: list[tuple[str, list[str]]] = []

    def refuse_name(relative: str, name: str, what: str, more: str = "") -> None:
        shown = os.fsencode(name).decode("utf-8", errors="backslashreplace")
        raise Refused(f"{label / relative / shown}: the {what} name is not UTF-8; rename it first{more}") from None

    def walk(directory: str, prefix: str) -> None:
        folders, files = [], []
        for entry in folder_entries(directory):
            try:
                is_folder = entry.is_dir()
            except OSError:
                is_folder = False
            (folders if is_folder else files).append(entry)
        for entry in folders:
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError:
                refuse_name(prefix, entry.name, "folder")
            if entry.is_symlink():
                raise Refused(f"{label / (prefix + entry.name)} is a symbolic link; esbgen does not clone links")
        names: list[str] = []
        for entry in sorted(files, key=lambda e: e.name):
            name = entry.name
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                refuse_name(prefix, name, "file", " (a clone cannot name it in its template)")
            if entry.is_symlink():
                raise Refused(f"{label / (prefix + name)} is a symbolic link; esbgen does not clone links")
            check_entry(entry, f"{label}/{prefix}{name}")  # a str: a Path a file cost more than the listing
            if name.endswith(SKIPPED_FILES[1:]):
                continue
            names.append(name)
        if names:
            found.append((prefix, names))
        for entry in sorted(folders, key=lambda e: e.name):
            if entry.name != "__pycache__":
                walk(entry.path, prefix + entry.name + "/")

    walk(os.fspath(folder), "")
    return found


def clone_path(path: str, source: str, name: str | None, system: Var = Var("system")) -> list[str | Var]:
    """The clone's path for a source channel path, as parts with ``Var("system")``.

    A standard path (``/v2/<source>/<name>/`` or ``/<source>/<name>/``, slashes as the ESB
    normalises them) becomes the same form for the clone; any other path keeps its shape with
    the source's segment renamed (``/devops/api/v1/getBuildInfo`` -> ``/<clone>/api/v1/getBuildInfo``).
    """
    if name and follows_path_pattern(source, name, normalised_path(path)):
        # the ESB adds a missing last slash itself, so the clone leaves it missing too
        return standard_path_parts(system, name, v2=is_v2_path(path), last_slash=path.endswith("/"))
    segments = path.split("/")
    for index, segment in enumerate(segments):
        if segment == source:
            return ["/".join(segments[:index]) + "/", system, "/" + "/".join(segments[index + 1:]) if index + 1 < len(segments) else ""]
    raise Refused(f"channel path {path!r} names no {source} segment; esbgen cannot place it under the clone")


def yaml_edits(text: str, channels: list[Channel], source: ComponentSet, source_app: str | None,
               asked: dict[int, list[tuple[str, Edit]]] | None = None) -> list[Edit]:
    """Edits of one confapis file: path, comp_codename and dest_path of every entry, in place.

    An entry the ESB skips (a required field missing, a value out of its choices) and one
    whose codename is no component of the source are carried over unchanged: the clone
    serves exactly what the source serves, and the entry is reported as inherited.
    ``asked`` gets, by ``id`` of each channel, the fields its edits change (for derived_clone).
    """
    edits = []
    codename_parts: dict[str, list[Any]] = {}  # the clone's codename of each component, as parts (shared, never changed)
    system = Var("system")
    for candidate in source.components:  # component_by_codename's answer: the first of a codename
        if candidate.codename not in codename_parts:
            codename_parts[candidate.codename] = [candidate.prefix, system, f".{candidate.component_name}"]
    for channel in channels:
        if check_channel_fields(channel):
            continue
        start, inner = scalar_inner(text, channel, "comp_codename")
        parts = codename_parts.get(inner)
        if parts is None:
            continue
        name = channel.fields.get("name")
        start_path, path = scalar_inner(text, channel, "path")
        mine = [("path", Edit(start_path, start_path + len(path), clone_path(path, source.name, name, system), "path")),
                ("comp_codename", Edit(start, start + len(inner), parts, "comp_codename"))]
        edit = dest_path_app_edit(text, channel, source_app)
        if edit is not None:
            mine.append(("dest_path", edit))
        edits.extend(edit for _, edit in mine)
        if asked is not None:
            asked[id(channel)] = mine
    return shared_once(edits, channels[0].file if channels else "")


def shared_once(edits: list[Edit], label) -> list[Edit]:
    """The edits in file order, each span once: a value under an anchor (``&base``) that several
    entries merge is edited where it stands, once, if every entry asks the same of it."""
    by_span: dict[tuple[int, int], Edit] = {}
    for edit in edits:
        first = by_span.setdefault((edit.start, edit.end), edit)
        if first.parts != edit.parts:
            raise Refused(f"{label}: entries share one anchored {edit.note} but need different values in the clone; "
                          "write it in each entry first")
    return sorted(by_span.values(), key=lambda e: e.start)


def _renamed(name: str, source: str) -> list[str | Var]:
    if name == f"{source}.yaml":
        return [Var("system"), ".yaml"]
    return [name]


def setting_variables(names: list[str]) -> dict[str, str]:
    """The template variable of each host setting: the main one is ``host_setting``."""
    return {name: "host_setting" if index == 0 else f"host_setting_{index + 1}" for index, name in enumerate(names)}


@dataclass
class SourceFiles:
    """Every file of a source system's folders, as the clone's template holds them (paths with ``Var("system")``)."""

    python_files: list[tuple[TemplateFile, Path]]  # each Python file, with its folder
    confapis_files: list[TemplateFile]  # each YAML file of the confapis folder
    folders: list[VerbatimFolder]  # the files no clone edits, whatever the channels: neither of those

    def all(self) -> list[TemplateFile]:
        return [item for item, _ in self.python_files] + self.confapis_files


def list_source_files(root: Path, python_dirs: list[Path], confapis_dir: Path | None, source: str) -> SourceFiles:
    """The files of a source's Python sides and confapis folder, each with the path it gets in the clone."""
    python_files: list[tuple[TemplateFile, Path]] = []
    folders: list[VerbatimFolder] = []
    for folder in python_dirs:
        group = folder.parent.relative_to(COMPONENTS).as_posix()  # e.g. "bk/apisv2"
        absolute = os.path.join(root, folder)
        for prefix, names in _source_files(root / folder, folder):
            others = [name for name in names if not name.endswith(".py")]
            if others:
                folders.append(VerbatimFolder(os.path.join(absolute, prefix), [group + "/", Var("system"), "/" + prefix],
                                              others))
            for name in names:
                if name.endswith(".py"):
                    item = TemplateFile(os.path.join(absolute, prefix + name), [group + "/", Var("system"), "/" + prefix + name],
                                        relative=f"{folder}/{prefix}{name}")
                    python_files.append((item, folder))
    confapis_files: list[TemplateFile] = []
    if confapis_dir is not None:
        absolute = os.path.join(root, confapis_dir)
        for prefix, names in _source_files(root / confapis_dir, confapis_dir):
            parts: list[str | Var] = [CONFAPIS_GROUP + "/", Var("system"), "/"]
            if prefix:
                parts.append(prefix)
            others = [name for name in names if not name.endswith(".yaml")]
            if others:
                folders.append(VerbatimFolder(os.path.join(absolute, prefix), parts, others))
            for name in names:
                if name.endswith(".yaml"):
                    confapis_files.append(TemplateFile(os.path.join(absolute, prefix + name), parts + _renamed(name, source),
                                                       relative=f"{confapis_dir}/{prefix}{name}"))
    return SourceFiles(python_files, confapis_files, folders)


def build_template(tree: EsbTree, source: ComponentSet, saas_type: SaasType, target: CloneTarget,
                   source_app: str | None, asked: dict[int, list[tuple[str, Edit]]] | None = None,
                   ) -> tuple[TemplateSpec, dict[str, int]]:
    """The clone's template; ``asked`` gets what each confapis entry's edits change (see yaml_edits)."""
    from esbgen import progress

    progress.phase("reading")
    root = tree.root
    listed = list_source_files(root, source.python_dirs, source.confapis_dir, source.name)
    to_edit: list[tuple[TemplateFile, Any]] = []  # (file, how its edits are made)
    counts: dict[str, int] = {}
    settings = saas_type.host_settings(source)
    variables = setting_variables(settings)
    # a component calling one of its own system's by codename must call the clone's (whatever the SaaS type)
    strings = [*saas_type.literal_rewrites(source, target, source_app, variables),
               Rewrite(codename_literal(source.name), "system", "component codename")]
    # what no Python 3 grammar reads is copied as it is (the legacy ESB imports Python 2 only files)
    unreadable = {w.rsplit(":", 1)[0] for w in source.unreadable} | set(source.python2_files)
    for label in source.python2_files:
        facts = module_facts(root / label, label)
        if "SYSTEM_NAME" in facts.strings or set(facts.settings) & set(settings):
            raise Refused(f"{label}: only a Python 2 grammar reads this file, and the clone must change it "
                          "(its SYSTEM_NAME or host settings); esbgen edits Python 3 and libcst-readable files only")
    rewrites_of: dict[Path, PythonRewrites] = {}
    for folder in source.python_dirs:
        rewrites_of[folder] = PythonRewrites(
            assignments={"SYSTEM_NAME": "SYSTEM_NAME"},
            strings=strings,
            settings=variables,
            package=(folder.parts, "system"),
        )
    for item, folder in listed.python_files:
        if item.relative not in unreadable:
            to_edit.append((item, rewrites_of[folder]))
    by_file: dict[str, list[Channel]] = {}
    for channel in source.channels:
        by_file.setdefault(str(channel.file), []).append(channel)
    for item in listed.confapis_files:
        if item.relative in by_file:
            to_edit.append((item, None))
    files = listed.all()
    progress.tick(len(files) - len(to_edit))
    for item, rewrites in to_edit:
        label, path = item.relative or "", str(item.source)
        if rewrites is not None:
            text, edits = python_edits(read_input(path, label, follow_links=False), label, rewrites)
            if edits:
                item.text, item.edits = text, edits
        else:
            text = read_text(Path(path), label)
            item.text, item.edits = text, yaml_edits(text, by_file[label], source, source_app, asked)
        progress.tick()
    for item in files:
        for edit in item.edits:
            counts[edit.note] = counts.get(edit.note, 0) + 1
    defaults = template_defaults(target)
    return TemplateSpec(files, defaults, folders=listed.folders), counts


def template_defaults(target: CloneTarget) -> dict[str, Any]:
    """cookiecutter.json: the clone's values, derived from ``system`` where they follow the rules."""
    from esbgen.esb.rules import default_host_setting

    defaults: dict[str, Any] = {"system": target.name, "SYSTEM_NAME": "{{ cookiecutter.system|upper }}"}
    defaults["app_code"] = (
        "{{ cookiecutter.system|replace('_', '-') }}" if target.app_code == default_app_code(target.name) else target.app_code
    )
    defaults["host_setting"] = (
        "BK_{{ cookiecutter.system[3:]|upper if cookiecutter.system.startswith('bk_') else cookiecutter.system|upper }}_URL"
        if target.host_setting == default_host_setting(target.name)
        else target.host_setting
    )
    for index, new_name in enumerate(list(target.renamed_settings.values())[1:], start=2):
        defaults[f"host_setting_{index}"] = new_name
    defaults["_components"] = str(COMPONENTS)
    return defaults


def clone_target(source: ComponentSet, request: CloneRequest, settings: list[str], tree: EsbTree) -> CloneTarget:
    """The new system's names; ``settings`` are the source's host settings, the main one first."""
    from esbgen.plugins import answers

    app_code = validate_app_code(request.app_code) if request.app_code is not None else default_app_code(request.new)
    label = request.label if request.label is not None else request.new.upper()
    validate_label(label, blank_ok=False)
    target = CloneTarget(request.new, app_code, label, "")
    main = settings[0] if settings else None
    plugin, answer = answers("esbgen_host_setting", target=target, source=source, old=main)[0]
    target.host_setting = validate_host_setting_answer(plugin, answer, tree, request.new)
    source_name = source.system_name or source.name.upper()
    for name in settings:
        target.renamed_settings[name] = target.host_setting if name == main else renamed_setting(name, source_name, target.system_name)
    taken = list(target.renamed_settings.values())
    if len(set(taken)) != len(taken):
        raise Refused(f"the clone's host settings would share a name ({', '.join(taken)}); choose another --as")
    return target


def _same_tree(left: Path, right: Path, right_names: list[str] | None = None) -> tuple[bool, list[Path]]:
    """Whether two folders hold the same files with the same bytes; the files that differ.

    ``right_names``: the files of ``right`` (``relative_names``), when the caller has them.
    """
    if right_names is None:
        right_names = relative_names(right)
    if not os.path.isdir(left):  # nothing there yet: every file differs, none is read
        return not right_names, sorted((Path(name) for name in right_names), key=_by_parts)
    left_files = set(relative_names(left))
    right_files = set(right_names)
    differing = list(left_files ^ right_files)
    left_dir, right_dir = os.fspath(left), os.fspath(right)
    for relative in sorted(left_files & right_files):
        if not filecmp.cmp(os.path.join(left_dir, relative), os.path.join(right_dir, relative), shallow=False):
            differing.append(relative)
    return not differing, sorted((Path(name) for name in differing), key=_by_parts)


def _by_parts(path: Path) -> tuple[str, ...]:
    return path.parts  # Path order, without Path.__lt__ (40,000 files: 0.4 s)


def registration_entry(target: CloneTarget, remark: str) -> dict[str, Any]:
    return {"name": target.system_name, "label": target.label, "remark": remark}


def conf_changes(tree: EsbTree, target: CloneTarget, remark: str, source: ComponentSet | None = None,
                 source_text: str = "") -> tuple[FileWrite | None, list[str], list[PresetChannel]]:
    """Register the system in SYSTEMS of the custom conf module, and give it in CHANNELS every
    channel its source declares in Python, each with its whole config (tuple form)."""
    path = tree.root / CUSTOM_CONF
    before = read_input(path, CUSTOM_CONF) if os.path.lexists(path) else None
    text = decode_text(before, CUSTOM_CONF) if before is not None else CONF_HEADER
    said = []
    if target.system_name in tree.registered:
        said.append(f"{target.system_name} is already registered in {CUSTOM_CONF}")
    else:
        if tree.unread_systems:
            # the entry esbgen cannot read may be this very system: adding it could register it twice
            raise Refused(f"{tree.unread_systems[0]}: esbgen cannot read this part of SYSTEMS (code, not an entry "
                          "written as {...} or dict(...)), so it cannot tell whether the system is there; "
                          "write it as a literal first, or register by hand")
        entry = registration_entry(target, remark)
        text = append_to_list(text, "SYSTEMS", [py_literal(entry)], str(CUSTOM_CONF))
    existing = {(channel.path, channel.method) for channel in tree.conf_channels}
    new_channels, carried = [], []
    names_needed: set[str] = set()
    for preset in source.preset_channels if source is not None else []:
        if preset.source == str(ESB_CONF):
            continue  # esb_conf_changes: beside the source's, where the ESB reads presets
        component = source.component_by_codename(preset.codename)
        if component is None:
            continue  # the ESB serves nothing there, and so the clone serves nothing there either
        name = preset_name(preset, component)
        path_value = "".join(p if isinstance(p, str) else target.name for p in clone_path(preset.path, source.name, name))
        if (path_value, preset.method) in existing:
            continue  # already in CHANNELS: a repeat of this clone
        # a path the source declares twice is declared twice here too: the ESB's sync, which creates
        # the row from the first and updates it from the second, makes the same row of both
        codename = f"{component.prefix}{target.name}.{component.component_name}"
        new_channels.append(_preset_entry(preset, path_value, codename))
        names_needed |= preset.names
        carried.append(preset)
    if new_channels:
        text = add_imports(text, names_needed, source_text, str(CUSTOM_CONF))
        text = append_to_list(text, "CHANNELS", new_channels, str(CUSTOM_CONF))
    after = text.encode("utf-8")
    if before is not None and after == before:
        return None, said, carried
    return FileWrite(CUSTOM_CONF, before, after), said, carried


def _preset_entry(preset: PresetChannel, path: str, codename: str, dedent: bool = True) -> str:
    """``(path, {config})`` for the clone: the source's config text, its codename replaced.

    A dict-form entry (of which the ESB keeps path and codename) becomes a tuple with its codename.
    ``dedent``: move the config's continuation lines left (for a list indented otherwise than the source's).
    """
    if preset.form != "tuple" or preset.code is None or preset.codename_span is None:
        return "(" + py_literal(path) + ", " + py_literal({"comp_codename": codename}) + ")"
    start, end = preset.codename_span
    quote = preset.code[start:end]
    quoted = quote[:1] in "'\"" and quote[-1:] == quote[:1]
    literal = quote[0] + codename + quote[-1] if quoted else py_literal(codename)
    code = preset.code[:start] + literal + preset.code[end:]
    path_literal = quote[0] + path + quote[0] if quoted and path.isascii() and quote[0] not in path else py_literal(path)
    return "(" + path_literal + ", " + (_dedent_continuation(code) if dedent else code) + ")"


def esb_conf_changes(tree: EsbTree, target: CloneTarget, source: ComponentSet) -> tuple[FileWrite | None, list[PresetChannel], int]:
    """The clone's presets and alias paths in esb_conf.py, each beside the source's in the same channel group.

    That is where both ESB generations read them: the legacy router serves a preset with or without
    a row (hidden and v1 channels have none), the later ESB applies the request validators of
    esb_conf.py's channels only, and both serve the aliases of ``rewrite_channels``. Only text is
    added: the source's entries stay byte for byte, and undo restores the file as it was.
    Returns the write, the presets carried over and the number of aliases added.
    """
    path = tree.root / ESB_CONF
    ours = [p for p in source.preset_channels if p.source == str(ESB_CONF)]
    if not ours or not path.is_file():
        return None, [], 0
    before = path.read_bytes()
    existing = {(p.path, p.method) for p in tree.preset_channels}
    entries: dict[tuple[str | None, str], list[str]] = {}
    carried, moved = [], {}
    for preset in ours:
        component = source.component_by_codename(preset.codename)
        if component is None:
            continue  # the ESB serves nothing there, and so the clone serves nothing there either
        name = preset_name(preset, component)
        new_path = "".join(p if isinstance(p, str) else target.name for p in clone_path(preset.path, source.name, name))
        moved[preset.path] = new_path
        if (new_path, preset.method) in existing:
            continue  # already there: a repeat of this clone
        codename = f"{component.prefix}{target.name}.{component.component_name}"
        entries.setdefault((preset.group, "preset_channels"), []).append(_preset_entry(preset, new_path, codename, dedent=False))
        carried.append(preset)
    aliases = 0
    taken = {alias for alias, _, _ in tree.rewrite_channels}
    for alias, served, group in tree.rewrite_channels:
        if served not in moved:
            continue
        name = alias.rstrip("/").rsplit("/", 1)[-1]
        new_alias = "".join(p if isinstance(p, str) else target.name for p in clone_path(alias, source.name, name))
        if new_alias in taken:
            continue
        entries.setdefault((group, "rewrite_channels"), []).append(f"{py_literal(new_alias)}: {py_literal(moved[served])}")
        aliases += 1
    if not entries:
        return None, carried, aliases
    after = add_to_channel_groups(before, entries, str(ESB_CONF))
    return FileWrite(ESB_CONF, before, after), carried, aliases


def add_to_channel_groups(data: bytes, entries: dict[tuple[str | None, str], list[str]], label: str) -> bytes:
    """``data`` (esb_conf.py) with ``entries`` appended, one a line, to the list, tuple or dict ``key``
    of each channel group, after its last item and at its indentation; nothing else changes."""
    try:
        data.decode("utf-8")
        module = ast.parse(data)
    except (UnicodeDecodeError, SyntaxError):
        raise Refused(f"{label}: esbgen reads UTF-8 Python only; cannot add the clone's channels to it") from None
    newline = b"\r\n" if b"\r\n" in data else b"\n"
    starts = [0]
    for line in data.split(b"\n")[:-1]:
        starts.append(starts[-1] + len(line) + 1)

    def offset(lineno: int, col: int) -> int:
        return starts[lineno - 1] + col

    found: dict[tuple[str | None, str], ast.expr] = {}
    for group, name, value in group_entries(module):
        if (group, name) in entries and isinstance(value, (ast.List, ast.Tuple, ast.Dict)):
            found.setdefault((group, name), value)
    inserts: list[tuple[int, bytes]] = []
    for where, items in entries.items():
        node = found.get(where)
        if node is None:
            raise Refused(f"{label}: no {where[1]} in channel group {where[0]!r}; cannot add the clone's channels there")
        close = offset(node.end_lineno, node.end_col_offset) - 1
        elements = node.values if isinstance(node, ast.Dict) else node.elts
        line_start = data.rfind(b"\n", 0, close) + 1
        own_line = not data[line_start:close].strip()
        if elements:
            last = elements[-1]
            last_end = offset(last.end_lineno, last.end_col_offset)
            between = b"".join(part.split(b"#", 1)[0] for part in data[last_end:close].split(b"\n"))
            if b"," not in between:
                inserts.append((last_end, b","))
            first = (node.keys[0] or elements[0]) if isinstance(node, ast.Dict) else elements[0]
            indent = b" " * first.col_offset if first.lineno != node.lineno else b""
        else:
            indent = b" " * (close - line_start + 4) if own_line else b""
        if own_line and indent:
            block = b"".join(indent + item.encode("utf-8") + b"," + newline for item in items)
            inserts.append((line_start, block))
        else:
            inserts.append((close, b" " + b", ".join(item.encode("utf-8") for item in items) + b","))
    after = data
    for position, block in sorted(inserts, key=lambda insert: insert[0], reverse=True):
        after = after[:position] + block + after[position:]
    return after


def _dedent_continuation(code: str) -> str:
    """Lines after the first, moved left as a block so the entry sits at the list's indentation."""
    lines = code.split("\n")
    if len(lines) < 2:
        return code
    widths = [len(line) - len(line.lstrip(" ")) for line in lines[1:] if line.strip()]
    shift = max(min(widths) - 4, 0) if widths else 0
    if shift == 0 or any(line.strip() and not line.startswith(" " * shift) for line in lines[1:]):
        return code
    return "\n".join([lines[0]] + [line[shift:] for line in lines[1:]])


def add_imports(text: str, names: set[str], source_text: str, label: str) -> str:
    """The imports that bind ``names`` in esb_conf.py, added to the conf module where it lacks them.

    A config builds its validators in code (``[APIGatewayAdapter(), AppAuthValidator()]``);
    the clone's copy must find the same names.
    """
    if not names:
        return text
    source = ast.parse(source_text)
    have = _bound_names(ast.parse(text))
    lines = []
    for statement in source.body:
        if isinstance(statement, ast.ImportFrom) and statement.module and statement.level == 0:
            wanted = [a for a in statement.names if (a.asname or a.name) in names and (a.asname or a.name) not in have]
            if wanted:
                lines.append(f"from {statement.module} import " + ", ".join(
                    a.name if a.asname is None else f"{a.name} as {a.asname}" for a in wanted))
                have |= {a.asname or a.name for a in wanted}
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound in names and bound not in have:
                    lines.append(f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
                    have.add(bound)
    missing = sorted(n for n in names - have if n not in BUILTIN_NAMES)
    if missing:
        raise Refused(f"the source's channel configs use {', '.join(missing)}, which {ESB_CONF} does not import; "
                      "esbgen cannot carry them over")
    if not lines:
        return text
    newline = "\r\n" if "\r\n" in text else "\n"
    module = ast.parse(text)
    after_line = 0
    for statement in module.body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)) or (
            isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and after_line == statement.lineno - 1
        ):
            after_line = statement.end_lineno
    kept = text.split(newline)
    block = lines if after_line else [*lines, ""]
    return newline.join(kept[:after_line] + block + kept[after_line:])


BUILTIN_NAMES = frozenset({"True", "False", "None", "dict", "list", "tuple", "set", "_"})


def _bound_names(module: ast.Module) -> set[str]:
    bound = set()
    for statement in module.body:
        if isinstance(statement, ast.ImportFrom):
            bound |= {a.asname or a.name for a in statement.names}
        elif isinstance(statement, ast.Import):
            bound |= {a.asname or a.name.split(".")[0] for a in statement.names}
    return bound


CONF_HEADER = '''# -*- coding: utf-8 -*-
"""Custom systems and channels of this ESB (read by sync_data_at_deploy)."""


SYSTEM_DOC_CATEGORY = []


SYSTEMS = []


CHANNELS = []


BUFFET_COMPONENTS = []
'''


@dataclass
class CloneDesign:
    """A validated clone, before rendering: source, target and the template that makes it."""

    tree: EsbTree
    source: ComponentSet
    saas_type: SaasType
    source_app: str | None
    target: CloneTarget
    spec: TemplateSpec
    counts: dict[str, int]
    context: dict[str, Any]
    # id of a source channel -> (field, edit) of each of its values the template changes
    asked: dict[int, list[tuple[str, Edit]]] = field(default_factory=dict)

    def rendered_path(self, item: TemplateFile | VerbatimFolder) -> str:
        """Where a file (or folder) of the template renders, relative to the root it renders into."""
        return f"{COMPONENTS}/" + item.rendered_target(self.context)


def design_clone(root: Path, request: CloneRequest) -> CloneDesign:
    """Validate a clone request against the tree and build its template (in memory)."""
    from esbgen.plugins import call_hook

    validate_system_folder(request.source, "source system")
    validate_new_system(request.new)
    if request.new == request.source:
        raise UsageError("the new system must differ from the source")
    folder_names = {"system": request.new, "_components": str(COMPONENTS)}  # what the clone's folders are named by
    tree = load_tree(root, positions={request.source})  # only the source's YAML is edited
    source = tree.systems.get(request.source)
    if source is None:
        known = ", ".join(sorted(tree.systems)) or "none"
        raise Refused(f"unknown source system {request.source!r} in {root} (systems: {known})")
    for folder in system_folders(request.source):
        if (root / folder).is_symlink():
            raise Refused(f"{folder} is a symbolic link; esbgen does not clone links "
                          "(copy the folder it points at into place first)")
    if not source.python_dirs:
        raise Refused(f"{request.source} has no Python side ({APISV2 / request.source}); nothing to clone its components from")
    if not (source.channels or source.preset_channels or request.empty_ok):
        raise Refused(f"{request.source} declares no channel in this tree (no confapis entry, no preset of {ESB_CONF}, "
                      f"no CHANNELS entry of {CUSTOM_CONF}): its clone would serve nothing; give --empty to create it anyway")
    for folder in [*source.python_dirs, *([source.confapis_dir] if source.confapis_dir else [])]:
        occupied = root / folder.parent / request.new
        if occupied.is_symlink():
            raise Refused(f"{folder.parent / request.new} is a symbolic link; refusing to replace it")
        if occupied.exists() and not occupied.is_dir():
            raise Refused(f"{folder.parent / request.new} exists and is not a folder")
    for channel in source.channels:
        malformed = [p for p in check_channel_fields(channel) if p.code == "malformed"]
        if malformed:
            raise Refused(f"source {malformed[0]}; esbgen cannot say what the ESB makes of it")
    saas_type = select_saas_type(source, request.saas_type)
    source_app = saas_type.source_app_code(source)
    settings = validate_host_settings_of_type(saas_type, saas_type.host_settings(source))
    target = clone_target(source, request, settings, tree)
    context: dict[str, Any] = {
        "system": target.name,
        "SYSTEM_NAME": target.system_name,
        "app_code": target.app_code,
        "host_setting": target.host_setting,
        "_components": str(COMPONENTS),
    }
    for index, new_name in enumerate(list(target.renamed_settings.values())[1:], start=2):
        context[f"host_setting_{index}"] = new_name
    call_hook("esbgen_clone_context", context=context, source=source, target=target)
    for key, value in folder_names.items():
        if context.get(key) != value:
            raise Refused(f"a plugin changed the clone's {key!r} to {context.get(key)!r}; "
                          f"the clone's folders are named after {value!r}")
    asked: dict[int, list[tuple[str, Edit]]] = {}
    spec, counts = build_template(tree, source, saas_type, target, source_app, asked)
    return CloneDesign(tree, source, saas_type, source_app, target, spec, counts, context, asked)


def plan_clone(root: Path, request: CloneRequest, work: Path) -> CloneOutcome:
    """Compute, render and validate a clone; nothing in the tree changes."""
    output = work / "output"
    output.mkdir()
    design = design_clone(root, request)
    tree, source, target = design.tree, design.source, design.target
    template_dir = design.spec.write(work / "template", link=True, values=design.context)
    render(template_dir, design.context, output, design.spec.written_context)
    plan = Plan(root, f"clone {request.source} as {request.new}")
    folders = [folder.parent / request.new for folder in source.python_dirs]
    if source.confapis_dir is not None:
        folders.append(source.confapis_dir.parent / request.new)
    remark = clone_remark(source)
    esb_conf = root / ESB_CONF
    source_text = esb_conf.read_bytes().decode("utf-8", errors="replace") if esb_conf.is_file() else ""
    conf_write, said, carried = conf_changes(tree, target, remark, source, source_text)
    preset_write, presets_carried, aliases = esb_conf_changes(tree, target, source)
    inherited = validate_rendered(tree, output, request.new, source, conf_write, design, preset_write)
    add_rendered_folders(plan, output, folders, request.force)
    for write in (conf_write, preset_write):
        if write is not None:
            plan.file_writes.append(write)
    plan.unchanged.extend(said)
    if carried and not plan.is_empty:
        plan.notes.append(f"{len(carried)} channel(s) that {request.source} declares in Python go to CHANNELS of {CUSTOM_CONF}, "
                          "each with its whole config")
    if (presets_carried or aliases) and not plan.is_empty:
        plan.notes.append(f"{len(presets_carried)} preset channel(s) and {aliases} alias path(s) of {request.source} go to "
                          f"{ESB_CONF}, each beside the source's with its whole config (validators included): "
                          "the ESB serves and checks them as it does the source's")
    settings_path = settings_file(root)
    needs = clone_backend_settings(tree, source, target)
    plan.needs_settings = sorted(needs)
    if needs and not plan.is_empty:
        pairs = ", ".join(f"{new} (where {request.source} reads {old})" for new, (old, _) in needs.items())
        plan.notes.append(f"define in {settings_path}: {pairs}; each is the address of the clone's own backend "
                          f"(app {target.app_code})")
        plan.notes.append("channels of the clone that need each: " + "; ".join(
            f"{new}: {len(paths)} ({', '.join(paths[:3])}{', ...' if len(paths) > 3 else ''})"
            for new, (_, paths) in needs.items()))
    source_app = design.source_app
    if source_app is None and source.confapis_dir is not None:
        plan.notes.append(f"no /o/<app> dest_path in {request.source}: dest_paths are kept as they are")
    for channel in source.channels:
        dest = channel.get("dest_path")
        match = APP_PATH_RE.match(dest) if isinstance(dest, str) else None
        if source_app and isinstance(dest, str) and (match is None or match.group(1) != source_app):
            plan.notes.append(f"{channel.where}: dest_path {dest!r} is not on app {source_app}; kept")
    for problem in inherited:
        plan.notes.append(f"inherited from {request.source}, as the ESB treats it there: {problem}")
    return CloneOutcome(plan, target, source, design.saas_type, source_app, design.context, design.spec, design.counts,
                        needs)


def clone_backend_settings(tree: EsbTree, source: ComponentSet, target: CloneTarget) -> dict[str, tuple[str, list[str]]]:
    """The host settings the clone's code reads for its own backend (``routing.backend_settings`` of the
    source, under the clone's names), each with the source's name and the clone's channel paths that need it."""
    from esbgen.esb.routing import backend_settings

    needs: dict[str, tuple[str, list[str]]] = {}
    for old, paths in backend_settings(tree.root, tree, source).items():
        new = target.renamed_settings.get(old)
        if new is None:
            continue  # kept as it is (the platform's shared entrance): defined on every ESB
        renamed = ["".join(p if isinstance(p, str) else target.name for p in clone_path(path, source.name, None))
                   for path in paths]
        needs[new] = (old, renamed)
    return needs


def add_rendered_folders(plan: Plan, output: Path, folders: list[Path], force: bool) -> None:
    """Folders rendered under ``output`` go into the plan: added, replaced (--force) or already there."""
    from esbgen import progress

    progress.phase("checking")
    existing_differs = []
    for relative in folders:
        staged_folder = output / relative
        names = relative_names(staged_folder)
        replaces = (plan.root / relative).exists()
        same, differing = _same_tree(plan.root / relative, staged_folder, names) if replaces else (not names, [])
        if same:
            plan.unchanged.append(f"{relative}/ is already as asked")
            continue
        if replaces:
            existing_differs.append(str(relative))
        plan.tree_adds.append(
            TreeAdd(relative, staged_folder, names, replaces, differing if replaces else [])
        )
    if existing_differs and not force:
        raise Refused(
            f"{', '.join(existing_differs)} already exists and differs; use --force to replace it"
        )


def validate_rendered(tree: EsbTree, output: Path, new: str, source: ComponentSet | None,
                      conf_write: FileWrite | None = None, design: CloneDesign | None = None,
                      preset_write: FileWrite | None = None) -> list[Problem]:
    """Hold the clone rendered under ``output`` (with the conf module it gets) to the ESB's rules.

    The same check as ``esbgen check``: a problem the source has too is inherited (reported,
    the clone serves what the source serves); any other refuses the clone. Returns the inherited.
    """
    from esbgen import progress

    progress.phase("checking")
    if conf_write is not None:
        conf = output / CUSTOM_CONF
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_bytes(conf_write.after)
    elif (tree.root / CUSTOM_CONF).is_file():
        (output / CUSTOM_CONF).parent.mkdir(parents=True, exist_ok=True)
        (output / CUSTOM_CONF).write_bytes((tree.root / CUSTOM_CONF).read_bytes())
    if preset_write is not None:
        (output / ESB_CONF).parent.mkdir(parents=True, exist_ok=True)
        (output / ESB_CONF).write_bytes(preset_write.after)
    staged_tree = derived_clone(tree, output, new, design) if design is not None else None
    if staged_tree is not None:
        problems, inherited = _rule_check(tree, staged_tree, new, source)
        if rendered_as_derived(design, output):
            return _refused_or(problems, inherited)
        # a template or plugin rendered otherwise: what is on disk is held to the rules instead
    problems, inherited = _rule_check(tree, load_tree(output, only={new}), new, source)
    return _refused_or(problems, inherited)


def _rule_check(tree: EsbTree, staged_tree: EsbTree, new: str, source: ComponentSet | None) -> tuple[list[str], list[Problem]]:
    """The staged clone's problems that refuse it, and those it inherits from its source."""
    staged_tree.generation = tree.generation
    staged_tree.preset_channels = tree.preset_channels  # the ESB drops a confapis entry on a preset's path
    staged = staged_tree.systems.get(new)
    if staged is None:
        raise Refused(f"the rendered template holds no system folder {new!r}; is a template or plugin wrong?")
    # as `esbgen check` will tell them once it is written: its source is the one its registration names
    source = clone_source(tree, staged, staged_tree.registered) if source is not None else None
    own, inherited = own_and_inherited(staged_tree, staged, tree, source)
    problems = [str(p) for p in own]
    taken: dict[str, list[str]] = {}
    for (path, _method), owners in served_paths(tree, skip={new}).items():
        taken.setdefault(path, []).extend(owners)
    for preset in tree.preset_channels + tree.conf_channels:  # declared, even where the ESB would skip it
        if preset.codename.split(".")[-2] != new and not taken.get(preset.path):
            taken[preset.path] = [preset.source]
    for channel in served_channels(staged_tree, staged)[0]:
        owners = taken.get(channel.path, [])
        if owners:
            problems.append(f"{channel.where}: path {channel.path} is already served by {', '.join(sorted(set(owners)))}")
    if staged.system_name != new.upper():
        problems.append(f"SYSTEM_NAME of the clone is {staged.system_name!r}, not {new.upper()!r}")
    return problems, inherited


def _refused_or(problems: list[str], inherited: list[Problem]) -> list[Problem]:
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise Refused(f"the clone would break ESB rules, nothing was written: {shown}")
    return inherited


def _text_values(context: dict[str, Any]) -> dict[str, str]:
    """The context's text values: what the clone's edits put in place of their variables."""
    return {key: value for key, value in context.items() if isinstance(value, str)}


def rendered_as_derived(design: CloneDesign, output: Path) -> bool:
    """Whether each edited file rendered under ``output`` is what its edits give (derived_clone computed
    the clone from them)."""
    from esbgen.edit.template import compact_text, rendered_text

    values = _text_values(design.context)
    for item in design.spec.files:
        if not item.edits:
            continue
        relative = design.rendered_path(item)
        try:
            written = (output / relative).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        if item.compact is not None:  # as the compact template holds it: a replace a variable
            expected = compact_text(item.compact, values)
        else:
            expected = rendered_text(item.text or "", item.edits, values)
        if written != expected:
            return False
    return True


def derived_clone(tree: EsbTree, output: Path, new: str, design: CloneDesign) -> EsbTree | None:
    """The rendered clone as ``load_tree`` would read it, computed from the source and the edits.

    Reading 4,000 rendered files and composing the YAML again costs as much as the clone
    itself; what was rendered is known. Nothing rendered is read here: ``rendered_as_derived``
    compares each edited file with what its edits give once it is written (a template or plugin
    that renders otherwise has the clone read back from disk instead); None where the context
    is not the one the edits were made for.
    """
    from dataclasses import replace

    from esbgen.esb.tree import channel_groups, parse_python, read_custom_conf

    source, target, context = design.source, design.target, design.context
    if context.get("system") != new or context.get("SYSTEM_NAME") != target.system_name:
        return None
    values = _text_values(context)
    if not _python_reads_as_derived(design, values):
        return None  # the clone is read back from disk, as `esbgen check` reads it
    renamed_file: dict[str, str] = {}
    edits_of: dict[str, list[Edit]] = {}
    for item in design.spec.files:
        relative = design.rendered_path(item)
        source_relative = item.relative or str(Path(item.source).relative_to(tree.root))
        renamed_file[source_relative] = relative
        if item.edits:
            edits_of[source_relative] = item.edits

    def moved(path: Path) -> Path:
        found = renamed_file.get(str(path))
        if found is None:
            raise KeyError(path)
        return Path(found)

    try:
        staged = ComponentSet(new, target.system_name, moved_dir(source.python_dir, new), source.codename_prefix,
                              moved_dir(source.confapis_dir, new))
        staged.python_dirs = [moved_dir(p, new) for p in source.python_dirs]
        staged.side_names = {moved_dir(p, new): target.system_name if name else None for p, name in source.side_names.items()}
        staged.settings_read = [target.renamed_settings.get(n, n) for n in source.settings_read]
        staged.unreadable = [str(moved(Path(w.rsplit(":", 1)[0]))) + ":" + w.rsplit(":", 1)[1] for w in source.unreadable]
        staged.python2_files = [str(moved(Path(label))) for label in source.python2_files]
        staged.yaml_files = [moved(p) for p in source.yaml_files]
        for component in source.components:
            staged.components.append(replace(component, module=moved(component.module),
                                             codename=f"{component.prefix}{new}.{component.component_name}"))
        files: dict[str, Path] = {}
        attributed: dict[str, set[int]] = {}  # per file, the edits some channel asked for
        asked = design.asked
        for channel in source.channels:
            key_of_file = str(channel.file)
            staged_file = files.get(key_of_file)
            if staged_file is None:
                staged_file = files[key_of_file] = moved(channel.file)
            fields = channel.fields
            mine = asked.get(id(channel))
            if mine:
                fields = dict(fields)
                seen = attributed.setdefault(key_of_file, set())
                for key, edit in mine:
                    span = channel.spans[key]
                    offset = span.start + (1 if span.style in ('"', "'") else 0)
                    value = fields[key]
                    fields[key] = "".join((value[:edit.start - offset],
                                           *(values[p.name] if isinstance(p, Var) else p for p in edit.parts),
                                           value[edit.end - offset:]))
                    seen.add(edit.start)
            staged_channel = Channel(staged_file, channel.line, fields, {}, channel.run_mode, channel.nested)
            if mine:  # yaml_edits edits flawless entries only, and only values that stay filled
                known_flawless(staged_channel)
            staged.channels.append(staged_channel)
        for key_of_file in files:
            if {e.start for e in edits_of.get(key_of_file, [])} != attributed.get(key_of_file, set()):
                return None  # an edit of the entries' file that no entry asked for: the clone is read back instead
    except KeyError:
        return None
    registered, conf_channels = read_custom_conf(output)
    presets = []
    if (output / ESB_CONF).is_file():
        presets = channel_groups(parse_python(output / ESB_CONF, str(ESB_CONF)),
                                  (output / ESB_CONF).read_bytes().decode("utf-8"), str(ESB_CONF))[0]
    staged.preset_channels = [p for p in presets + conf_channels if p.codename.split(".")[-2] == new]
    derived = EsbTree(output, {new: staged}, registered, conf_channels, [], tree.generation)
    folders = [(design.rendered_path(folder), folder.names) for folder in design.spec.folders]
    derived.planned_docs = {new: planned_docs(staged, renamed_file.values(), folders)}
    return derived


def _python_reads_as_derived(design: CloneDesign, values: dict[str, str]) -> bool:
    """Whether each edited Python file, as it is to be written, reads as derived_clone takes it to:
    with ``esbgen check``'s own reader, the source's classes and lines, its settings renamed, and
    SYSTEM_NAME set. An edit that broke a file (or changed what it declares) fails this."""
    from esbgen.edit.template import compact_text, rendered_text
    from esbgen.esb.tree import facts_of_bytes

    target = design.target
    for item in design.spec.files:
        if not item.edits or not str(item.source).endswith(".py"):
            continue
        label = design.rendered_path(item)
        text = compact_text(item.compact, values) if item.compact is not None else rendered_text(
            item.text or "", item.edits, values)
        before = facts_of_bytes(read_input(item.source, item.relative or label), label, [])
        after = facts_of_bytes(text.encode("utf-8"), label, [])
        if before is None or after is None or (after.classes, after.python3) != (before.classes, before.python3):
            return False
        if after.settings != [target.renamed_settings.get(name, name) for name in before.settings]:
            return False
        if "SYSTEM_NAME" in before.strings and after.strings.get("SYSTEM_NAME") != target.system_name:
            return False
    return True


def planned_docs(staged: ComponentSet, rendered: Iterable[str],
                 folders: Iterable[tuple[str, list[str]]] = ()) -> dict[str, set[str]]:
    """The apidocs a rendered clone holds, by language, from the paths its template renders
    (``folders``: a folder's rendered path, ending with "/", and the names of the files it gets)."""
    docs: dict[str, set[str]] = {}
    if staged.confapis_dir is None:
        return docs
    prefix = f"{staged.confapis_dir.as_posix()}/{APIDOCS}/"
    for relative in rendered:
        if relative.startswith(prefix):
            language, slash, name = relative[len(prefix):].partition("/")
            if slash and name and "/" not in name:
                docs.setdefault(language, set()).add(name)
    for folder, names in folders:
        if folder.startswith(prefix):
            language, slash, rest = folder[len(prefix):].partition("/")
            if language and slash and not rest:
                docs.setdefault(language, set()).update(names)
    return docs


def moved_dir(folder: Path | None, new: str) -> Path | None:
    return folder.parent / new if folder is not None else None

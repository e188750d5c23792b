"""Reading an ESB root from its files: systems, components, channels, registrations."""

from __future__ import annotations

import ast
import os
from pathlib import Path

from esbgen.confapis import channels_of
from esbgen.domain import (
    COMPONENT_GROUPS,
    CUSTOM_CONF,
    ComponentClass,
    ComponentSet,
    EsbTree,
    PresetChannel,
    RegisteredSystem,
)
from esbgen.errors import EsbgenError
from esbgen.rules import NON_COMPONENT_DIRS, component_codename

ESB_CONF = Path("components/esb_conf.py")
CONFAPIS = Path("components/confapis")
SKIPPED_NAMES = ("__pycache__",)


def resolve_root(explicit: str | os.PathLike | None) -> Path:
    """The ESB root: the option, else $ESBGEN_ESB_ROOT, else the current directory."""
    raw = explicit or os.environ.get("ESBGEN_ESB_ROOT") or os.getcwd()
    root = Path(raw).absolute()
    if not root.is_dir():
        raise EsbgenError(f"{root} is not a directory")
    components = root / "components"
    if not components.is_dir() or not ((components / "bk").is_dir() or (components / "confapis").is_dir()):
        raise EsbgenError(
            f"{root} is not an ESB root (no components/bk or components/confapis); "
            "use --esb-root or run from $INSTALL_PATH/paas/esb"
        )
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
    try:
        return ast.parse(path.read_bytes(), filename=label)
    except SyntaxError as error:
        raise EsbgenError(f"{label}:{error.lineno}: Python syntax error: {error.msg}") from None


def string_constant(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def module_assignments(module: ast.Module) -> dict[str, ast.expr]:
    values = {}
    for statement in module.body:
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


def _is_component_class(node: ast.ClassDef) -> bool:
    for base in node.bases:
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        if name.endswith("Component"):
            return True
    return False


def python_files(folder: Path) -> list[Path]:
    """Every .py file of a system folder, not following links out of it."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_NAMES and not os.path.islink(os.path.join(dirpath, d)))
        for filename in sorted(filenames):
            path = Path(dirpath, filename)
            if filename.endswith(".py") and not path.is_symlink():
                found.append(path)
    return found


def is_component_module(relative: Path) -> bool:
    """Files in toolkit/ and apidoc folders, and files starting with '_', are never components."""
    if relative.name.startswith("_"):
        return False
    return not any(part in NON_COMPONENT_DIRS for part in relative.parts[:-1])


def read_python_system(root: Path, folder: Path, prefix: str, system: ComponentSet) -> None:
    configs = folder / "toolkit" / "configs.py"
    if configs.is_file() and system.system_name is None:
        module = parse_python(configs, str(configs.relative_to(root)))
        system.system_name = string_constant(module_assignments(module).get("SYSTEM_NAME"))
    sys_name = system.system_name or folder.name.upper()
    settings: list[str] = []
    for path in python_files(folder):
        relative = path.relative_to(folder)
        label = str(path.relative_to(root))
        module = parse_python(path, label)
        for name in settings_read(module):
            if name not in settings:
                settings.append(name)
        if not is_component_module(relative):
            continue
        for node in module.body:
            if isinstance(node, ast.ClassDef) and _is_component_class(node):
                system.components.append(
                    ComponentClass(
                        node.name,
                        path.relative_to(root),
                        node.lineno,
                        component_codename(prefix, sys_name, node.name),
                    )
                )
    system.settings_read.extend(name for name in settings if name not in system.settings_read)


def confapis_files(root: Path, folder: Path) -> list[tuple[Path, str | None]]:
    """The YAML files the ESB reads for a system, with their RUN_MODE folder (None for defaults)."""
    files = [(p.relative_to(root), None) for p in sorted(folder.glob("*.yaml")) if p.is_file() and not p.is_symlink()]
    for sub in _visible_dirs(folder):
        if sub.name == "apidocs":
            continue
        files.extend(
            (p.relative_to(root), sub.name) for p in sorted(sub.glob("*.yaml")) if p.is_file() and not p.is_symlink()
        )
    return files


def _tuples_with_codename(module: ast.Module, source: str) -> list[PresetChannel]:
    found = []
    for node in ast.walk(module):
        if isinstance(node, ast.Tuple) and len(node.elts) >= 2 and isinstance(node.elts[1], ast.Dict):
            path = string_constant(node.elts[0])
            options = node.elts[1]
            for key, value in zip(options.keys, options.values):
                if string_constant(key) == "comp_codename" and path is not None:
                    codename = string_constant(value)
                    if codename:
                        found.append(PresetChannel(path, codename, source))
    return found


def read_custom_conf(root: Path) -> tuple[dict[str, RegisteredSystem], list[PresetChannel]]:
    path = root / CUSTOM_CONF
    if not path.is_file():
        return {}, []
    module = parse_python(path, str(CUSTOM_CONF))
    assignments = module_assignments(module)
    registered: dict[str, RegisteredSystem] = {}
    systems = assignments.get("SYSTEMS")
    if isinstance(systems, (ast.List, ast.Tuple)):
        for element in systems.elts:
            try:
                entry = ast.literal_eval(element)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                registered[entry["name"]] = RegisteredSystem(entry["name"], entry)
    channels_node = assignments.get("CHANNELS")
    channels = []
    if channels_node is not None:
        holder = ast.Module(body=[ast.Expr(channels_node)], type_ignores=[])
        channels = _tuples_with_codename(holder, str(CUSTOM_CONF))
    return registered, channels


def _owner_of(codename: str) -> str | None:
    for prefix in sorted(set(COMPONENT_GROUPS.values()), key=len, reverse=True):
        if codename.startswith(prefix):
            rest = codename[len(prefix):]
            if "." in rest:
                return rest.split(".", 1)[0]
    return None


def load_tree(root: Path, only: set[str] | None = None) -> EsbTree:
    """Read the tree; with ``only``, read channels and components of those systems alone."""
    systems: dict[str, ComponentSet] = {}

    def wanted(name: str) -> bool:
        return only is None or name in only

    for group, prefix in COMPONENT_GROUPS.items():
        for folder in _visible_dirs(root / "components" / group):
            name = folder.name
            system = systems.get(name)
            if system is None:
                system = systems[name] = ComponentSet(
                    name, None, folder.relative_to(root), prefix, None
                )
            if wanted(name):
                read_python_system(root, folder, prefix, system)
    for folder in _visible_dirs(root / CONFAPIS):
        name = folder.name
        system = systems.get(name)
        if system is None:
            system = systems[name] = ComponentSet(name, None, None, "generic.v2.", None)
        system.confapis_dir = folder.relative_to(root)
        if wanted(name):
            for relpath, run_mode in confapis_files(root, folder):
                system.yaml_files.append(relpath)
                system.channels.extend(channels_of(root, relpath, run_mode))
    esb_conf = root / ESB_CONF
    presets = _tuples_with_codename(parse_python(esb_conf, str(ESB_CONF)), str(ESB_CONF)) if esb_conf.is_file() else []
    registered, conf_channels = read_custom_conf(root)
    for preset in presets + conf_channels:
        owner = _owner_of(preset.codename)
        if owner in systems:
            systems[owner].preset_channels.append(preset)
    return EsbTree(root, systems, registered, conf_channels, presets)

"""Where a call to a channel goes, read from the component's code and the settings file.

The ESB forwards a channel's call with its component: the component picks a
host (``host=...`` of its HTTP call, usually ``configs.host``, a ``SmartHost``
built from a setting) and a path (the channel's ``dest_path`` with its
``{vars}`` filled, maybe rewritten first).  Two shapes are in the field:

* shared host, whole path (the legacy ESB's sops): the host is ``PAAS_HOST``
  and the path is the whole ``dest_path``; ``/o/<app>/`` picks the app on the
  platform's app server.
* per-app host, stripped prefix (the later ESB's sops): the component takes
  ``^/o/bk_sops`` off the path (``re.sub`` in ``_get_cleaned_path``) and calls
  the host in ``BK_SOPS_URL``, the app's own address.

Everything is read with ``ast``; nothing of the ESB is imported.  What the code
does not show plainly (a host from a function call, a path built another way)
is left out rather than guessed: ``host_settings`` is then empty, or
``strips`` holds only the rewrites seen.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from esbgen.esb.model import Channel, ComponentClass, ComponentSet
from esbgen.errors import EsbgenError, Refused
from esbgen.esb.tree import assignments_in
from esbgen.fsutil import read_input
from esbgen.edit.python import source_segment

MAX_DEPTH = 12  # how far names are followed (assignments, imports, methods)
PATH_VAR_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ComponentRouting:
    """How one component forwards: the setting(s) its host comes from and the rewrites of the path."""

    module: Path  # relative to the ESB root
    class_name: str
    host_settings: tuple[str, ...]  # settings the host is read from; the first is the production host
    strips: tuple[tuple[str, str], ...]  # (pattern, replacement) of re.sub on the path, applied in order

    @property
    def host_setting(self) -> str | None:
        return self.host_settings[0] if self.host_settings else None

    @property
    def whole_path(self) -> bool:
        """Whether the component forwards the dest_path as it is (no prefix taken off)."""
        return not self.strips

    def forwarded_path(self, path: str) -> str:
        for pattern, replacement in self.strips:
            path = re.sub(pattern, replacement, path)
        return path

    def strips_app(self, app: str) -> bool:
        """Whether the path rewrites take ``/o/<app>`` off a dest_path on that app."""
        sample = f"/o/{app}/x/"
        return any(re.match(pattern, sample) for pattern, _ in self.strips)

    def takes_app_prefix(self, app: str) -> bool:
        """Whether the component takes an app prefix off the path: that app's, or another ``^/o/...``."""
        return self.strips_app(app) or any(pattern.startswith("^/o/") for pattern, _ in self.strips)


@dataclass(frozen=True)
class SettingValue:
    name: str
    value: str | None  # the plain string it is set to, if it is one
    code: str  # the source of its value


@dataclass(frozen=True)
class Destination:
    """Where a call to ``channel`` goes."""

    channel: Channel
    routing: ComponentRouting | None  # None: the codename resolves to no component of the system
    method: str | None
    path: str | None  # the path the component forwards ({vars} filled when given)
    settings_file: Path
    setting: SettingValue | None  # the host setting as the settings file defines it (None: not defined)

    @property
    def host_setting(self) -> str | None:
        return self.routing.host_setting if self.routing else None

    @property
    def host(self) -> str | None:
        return self.setting.value if self.setting else None

    def describe(self) -> str:
        """``GET http://host/apigw/x/2/ (BK_SOPS_URL)``; ``$NAME`` stands for a host whose value is not in the file."""
        method, path, name = self.method or "?", self.path or "", self.host_setting
        if name is None:
            return f"{method} <a host not readable from the component>{path}"
        if self.setting is None:
            return f"{method} ${name}{path} ({name} is not defined in {self.settings_file})"
        if self.setting.value is None:
            return f"{method} ${name}{path} ({name} = {self.setting.code} in {self.settings_file})"
        return f"{method} {self.setting.value.rstrip('/')}{path} ({name})"


# --- the settings file ---------------------------------------------------------------------------


def settings_values(root: Path, settings_file: Path | None = None) -> dict[str, SettingValue]:
    """Top-level assignments of the tree's settings file (the last one of a name counts); unreadable: none."""
    from esbgen.esb.layout import settings_file as tree_settings_file

    relative = settings_file or tree_settings_file(root)
    try:
        data = read_input(root / relative, relative)
        module = ast.parse(data)
        text = data.decode("utf-8")
    except (OSError, SyntaxError, ValueError):
        return {}
    values: dict[str, SettingValue] = {}
    for statement in module.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        code = source_segment(text, value) or ""
        plain = value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
        for target in targets:
            if isinstance(target, ast.Name):
                values[target.id] = SettingValue(target.id, plain, code)
    return values


# --- reading the component -------------------------------------------------------------------------


@dataclass
class _Module:
    path: Path  # absolute
    tree: ast.Module
    assignments: dict[str, ast.expr]
    imports: dict[str, tuple[Path, str | None]]  # local name -> (module file, attribute or None for the module)


def _module_file(base: Path) -> Path | None:
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


class _Reader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: dict[Path, _Module | None] = {}

    def module(self, path: Path) -> _Module | None:
        if path not in self.modules:
            self.modules[path] = None
            try:
                data = read_input(path, path.relative_to(self.root) if path.is_relative_to(self.root) else path)
                tree = ast.parse(data, filename=str(path))
            except (SyntaxError, ValueError):
                try:  # a legacy component: read it as the legacy ESB's Python 2 does
                    tree = ast.parse(python2_excepts_as_3(data), filename=str(path))
                except (SyntaxError, ValueError):
                    return None
            except OSError:
                return None
            self.modules[path] = _Module(path, tree, assignments_in(tree.body), self._imports(path, tree))
        return self.modules[path]

    def _imports(self, path: Path, tree: ast.Module) -> dict[str, tuple[Path, str | None]]:
        found: dict[str, tuple[Path, str | None]] = {}
        for node in tree.body:
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
            else:
                base = self.root
            if node.module:
                base = base.joinpath(*node.module.split("."))
            for alias in node.names:
                local = alias.asname or alias.name
                submodule = _module_file(base / alias.name)
                if submodule is not None:
                    found[local] = (submodule, None)
                    continue
                holder = _module_file(base)
                if holder is not None:
                    found[local] = (holder, alias.name)
        return found

    # -- values: which settings an expression reads ------------------------------------------------

    def settings_of(self, expr: ast.expr | None, scope: "_Scope", depth: int = 0) -> list[str]:
        if expr is None or depth > MAX_DEPTH:
            return []
        if isinstance(expr, ast.Call):
            func = expr.func
            if isinstance(func, ast.Name) and func.id == "getattr" and len(expr.args) >= 2 and _is_settings(expr.args[0]):
                name = _string(expr.args[1])
                return [name] if name else []
            if (isinstance(func, ast.Name) and func.id == "SmartHost") or (
                isinstance(func, ast.Attribute) and func.attr == "SmartHost"
            ):
                prod = next((k.value for k in expr.keywords if k.arg == "host_prod"), expr.args[0] if expr.args else None)
                return self.settings_of(prod, scope, depth + 1)
            return []
        if isinstance(expr, ast.Attribute):
            if _is_settings(expr.value):
                return [expr.attr]
            if isinstance(expr.value, ast.Name) and expr.value.id == "self":
                if _set_in_methods(scope.cls, expr.attr):
                    return []  # chosen while the call is handled (datav3's get_host): no setting to read
                return self.settings_of(scope.class_assignments.get(expr.attr), scope.at_class(), depth + 1)
            if isinstance(expr.value, ast.Name):
                target = scope.module.imports.get(expr.value.id)
                if target is not None and target[1] is None:
                    other = self.module(target[0])
                    if other is not None:
                        return self.settings_of(other.assignments.get(expr.attr), _Scope(other), depth + 1)
            return []
        if isinstance(expr, ast.Name):
            value, inner = scope.lookup(expr.id, self)
            return self.settings_of(value, inner, depth + 1) if value is not None else []
        if isinstance(expr, ast.BoolOp):
            return [name for value in expr.values for name in self.settings_of(value, scope, depth + 1)]
        return []

    def string_of(self, expr: ast.expr | None, scope: "_Scope", depth: int = 0) -> str | None:
        if expr is None or depth > MAX_DEPTH:
            return None
        if isinstance(expr, ast.Name):
            value, inner = scope.lookup(expr.id, self)
            return self.string_of(value, inner, depth + 1)
        return _string(expr)

    # -- the path: which rewrites it goes through ---------------------------------------------------

    def strips_of(self, expr: ast.expr | None, scope: "_Scope", depth: int = 0) -> list[tuple[str, str]]:
        """re.sub rewrites the path expression applies, innermost first."""
        if expr is None or depth > MAX_DEPTH:
            return []
        if isinstance(expr, ast.Call):
            func = expr.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "sub"
                and isinstance(func.value, ast.Name)
                and func.value.id == "re"
                and len(expr.args) >= 3
            ):
                pattern, replacement = self.string_of(expr.args[0], scope), self.string_of(expr.args[1], scope)
                inner = self.strips_of(expr.args[2], scope, depth + 1)
                return inner + ([(pattern, replacement)] if pattern is not None and replacement is not None else [])
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
                method = scope.methods.get(func.attr)
                if method is not None:
                    returned = next((n.value for n in ast.walk(method) if isinstance(n, ast.Return) and n.value), None)
                    params = [a.arg for a in method.args.args[1:]]
                    bound = {name: (arg, scope) for name, arg in zip(params, expr.args)}
                    return self.strips_of(returned, scope.in_function(method, bound), depth + 1)
                return []
            if isinstance(func, ast.Attribute) and func.attr == "format":
                return self.strips_of(func.value, scope, depth + 1)
            return []
        if isinstance(expr, ast.Name):
            if expr.id in scope.bound:
                value, outer = scope.bound[expr.id]
                return self.strips_of(value, outer, depth + 1)
            value, inner = scope.lookup(expr.id, self, locals_only=True)
            return self.strips_of(value, inner, depth + 1) if value is not None else []
        return []


@dataclass
class _Scope:
    module: _Module
    cls: ast.ClassDef | None = None
    function: ast.FunctionDef | None = None
    bound: dict | None = None

    def __post_init__(self) -> None:
        self.bound = self.bound or {}

    @property
    def class_assignments(self) -> dict[str, ast.expr]:
        return assignments_in(self.cls.body) if self.cls is not None else {}

    @property
    def methods(self) -> dict[str, ast.FunctionDef]:
        if self.cls is None:
            return {}
        return {n.name: n for n in self.cls.body if isinstance(n, ast.FunctionDef)}

    def at_class(self) -> "_Scope":
        return _Scope(self.module, self.cls)

    def in_function(self, function: ast.FunctionDef, bound: dict) -> "_Scope":
        return _Scope(self.module, self.cls, function, bound)

    def lookup(self, name: str, reader: _Reader, locals_only: bool = False) -> tuple[ast.expr | None, "_Scope"]:
        if self.function is not None:
            local = None
            for node in ast.walk(self.function):
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                    local = node.value
            if local is not None:
                return local, self
        if locals_only:
            return None, self
        if name in self.module.assignments:
            return self.module.assignments[name], _Scope(self.module)
        target = self.module.imports.get(name)
        if target is not None and target[1] is not None:
            other = reader.module(target[0])
            if other is not None:
                return other.assignments.get(target[1]), _Scope(other)
        return None, self


PYTHON2_EXCEPT_RE = re.compile(rb"^(\s*except\s+[\w.]+)\s*,\s*(\w+)\s*:", re.M)


def python2_excepts_as_3(data: bytes) -> bytes:
    """``except KeyError, e:`` (the Python 2 form legacy components use) as ``except KeyError as e:``."""
    return PYTHON2_EXCEPT_RE.sub(rb"\1 as \2:", data)


def _set_in_methods(cls: ast.ClassDef | None, attr: str) -> bool:
    """Whether a method of the class assigns ``self.<attr>``."""
    for node in ast.walk(cls) if cls is not None else ():
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Attribute) and t.attr == attr and isinstance(t.value, ast.Name) and t.value.id == "self"
            for t in node.targets
        ):
            return True
    return False


def _is_settings(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "settings"


def _string(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _enclosing_function(node: ast.AST, parents: dict[int, ast.AST]) -> ast.FunctionDef | None:
    """The method a call stands in (``_parents`` of its class), or None at class level."""
    current: ast.AST | None = node
    while current is not None:
        current = parents.get(id(current))
        if isinstance(current, ast.FunctionDef):
            return current
    return None


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    return parents


def component_routing(root: Path, component: ComponentClass) -> ComponentRouting:
    """How ``component`` forwards a call, read from its module (and the modules it imports)."""
    reader = _Reader(root)
    module = reader.module(root / component.module)
    if module is None and not component.python3:
        return ComponentRouting(component.module, component.class_name, (), ())  # Python 2 only: not followed
    if module is None:
        raise Refused(f"{component.module}: cannot read it as Python")
    cls = next(
        (n for n in module.tree.body if isinstance(n, ast.ClassDef) and n.name == component.class_name), None
    )
    if cls is None:
        raise Refused(f"{component.module}: no class {component.class_name}")
    parents = _parents(cls)
    hosts: list[str] = []
    strips: list[tuple[str, str]] = []
    for call in (n for n in ast.walk(cls) if isinstance(n, ast.Call)):
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        if "host" not in keywords and isinstance(call.func, ast.Attribute) and call.func.attr == "request" \
                and len(call.args) >= 3:
            # http_client.request(method, host, path, ...): the same call with its arguments in place
            keywords = {**keywords, "host": call.args[1], "path": call.args[2]}
        if "host" not in keywords:
            continue
        scope = _Scope(module, cls, _enclosing_function(call, parents))
        for name in reader.settings_of(keywords["host"], scope):
            if name not in hosts:
                hosts.append(name)
        for strip in reader.strips_of(keywords.get("path"), scope):
            if strip not in strips:
                strips.append(strip)
    return ComponentRouting(component.module, component.class_name, tuple(hosts), tuple(strips))


HTTP_VERBS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class ComponentCall:
    """One HTTP call a component's code makes: its method and path where they are literals."""

    method: str | None
    host_settings: tuple[str, ...]
    path: str | None


def component_calls(root: Path, component: ComponentClass) -> list[ComponentCall]:
    """The HTTP calls in ``component``'s class that reach a host setting: ``http_client.post(host, path)``,
    ``request(method, host, path)``, and their keyword forms. A method or path that is not a plain string
    (followed through names) is None."""
    reader = _Reader(root)
    module = reader.module(root / component.module)
    if module is None:
        raise Refused(f"{component.module}: cannot read it as Python")
    cls = next((n for n in module.tree.body if isinstance(n, ast.ClassDef) and n.name == component.class_name), None)
    if cls is None:
        raise Refused(f"{component.module}: no class {component.class_name}")
    parents = _parents(cls)
    found: list[ComponentCall] = []
    for call in (n for n in ast.walk(cls) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)):
        verb = call.func.attr
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        if verb == "request":
            method_node, rest = (call.args[0] if call.args else keywords.get("method")), call.args[1:]
        elif verb in HTTP_VERBS:
            method_node, rest = ast.Constant(verb.upper()), call.args
        else:
            continue
        host = keywords.get("host", rest[0] if rest else None)
        path = keywords.get("path", rest[1] if len(rest) > 1 else (rest[0] if rest and "host" in keywords else None))
        scope = _Scope(module, cls, _enclosing_function(call, parents))
        settings = tuple(dict.fromkeys(reader.settings_of(host, scope)))
        if not settings:
            continue
        method = reader.string_of(method_node, scope)
        found.append(ComponentCall(method.upper() if method else None, settings, reader.string_of(path, scope)))
    return found


def fill_path(path: str, values: dict[str, str] | None) -> str:
    """``{name}`` parts of a dest_path replaced by the values given (the others stay as they are)."""
    if not values:
        return path
    return PATH_VAR_RE.sub(lambda m: str(values.get(m.group(1), m.group(0))), path)


def destination(root: Path, system: ComponentSet, channel: Channel, path_vars: dict[str, str] | None = None,
                settings: dict[str, SettingValue] | None = None,
                routings: dict[str, ComponentRouting] | None = None, where: Path | None = None) -> Destination:
    """Where a call to ``channel`` goes: host setting, its value in the settings file (``where``, else the
    tree's: looked up once for 20,000 channels, not for each), method and path."""
    from esbgen.esb.layout import settings_file

    component = system.component_by_codename(channel.codename) if channel.codename else None
    routing = None
    if component is not None:
        if routings is not None and component.codename in routings:
            routing = routings[component.codename]
        else:
            routing = component_routing(root, component)
            if routings is not None:
                routings[component.codename] = routing
    dest = channel.get("dest_path")
    path = None
    if isinstance(dest, str) and routing is not None:
        path = routing.forwarded_path(fill_path(dest, path_vars))
    values = settings if settings is not None else settings_values(root)
    setting = values.get(routing.host_setting) if routing is not None and routing.host_setting else None
    return Destination(channel, routing, channel.get("dest_http_method"), path, where or settings_file(root), setting)


def destinations(root: Path, system: ComponentSet, path_vars: dict[str, str] | None = None) -> list[Destination]:
    """Where a call to each channel of ``system`` goes (RUN_MODE channels included)."""
    from esbgen.esb.layout import settings_file

    settings, where = settings_values(root), settings_file(root)
    routings: dict[str, ComponentRouting] = {}
    return [destination(root, system, c, path_vars, settings, routings, where) for c in system.channels]


def preset_entry(preset) -> Channel:
    """A Python-declared channel (an esb_conf.py preset, a conf.py CHANNELS tuple) as the entry its
    ``comp_conf`` makes of it: path, codename, and the ``dest_path``/``dest_http_method`` its
    generic component forwards by.  A component with its own code and no comp_conf has neither."""
    fields = {"path": preset.path, "comp_codename": preset.codename}
    for key in ("name", "dest_path", "dest_http_method"):
        value = preset.comp_conf.get(key)
        if isinstance(value, str):
            fields[key] = value
    return Channel(Path(preset.source), preset.line, fields)


def preset_destination(root: Path, system: ComponentSet, preset, path_vars: dict[str, str] | None = None,
                       settings: dict[str, SettingValue] | None = None,
                       routings: dict[str, ComponentRouting] | None = None, where: Path | None = None) -> Destination:
    """Where a call to a Python-declared channel goes (``destination`` of its :func:`preset_entry`)."""
    return destination(root, system, preset_entry(preset), path_vars, settings, routings, where)


def backend_settings(root: Path, tree, system, served=None, routings=None) -> dict[str, list[str]]:
    """The host settings a system's code reads for its backend, each with the paths of the channels that need it.

    A channel needs the setting its component's host comes from; a host setting of the system's own
    that no component's host names (read as a module is imported, or by a helper) is needed by every
    channel, since an undefined one fails the import. The platform's shared entrance (``PAAS_HOST``
    ...) counts only where a component's host comes from it. ``verify`` and a clone's notes both ask
    this, so they name the same settings.
    """
    from esbgen.esb.rules import SHARED_SETTINGS, is_host_setting, served_calls

    if served is None:
        served = served_calls(tree, system)
    routings = routings if routings is not None else {}
    needs: dict[str, list[str]] = {}
    for item in served:
        if item.component is None:
            continue
        routing = routings.get(item.codename)
        if routing is None:
            try:
                routing = routings[item.codename] = component_routing(root, item.component)
            except EsbgenError:
                continue
        if routing.host_setting is not None:
            needs.setdefault(routing.host_setting, []).append(item.path)
    for name in system.settings_read:
        if is_host_setting(name) and name not in SHARED_SETTINGS and name not in needs:
            needs[name] = [item.path for item in served]
    return needs


def closing_notes(root: Path, system_folder: str, needs: dict | None = None) -> list[str]:
    """The note that ends a clone or a new system's output while a host setting its code reads is undefined:
    ``needs`` (``backend_settings`` of the system, as its plan knew them), else read from the system as written."""
    from esbgen.esb.layout import settings_file

    defined = settings_values(root)
    if needs is None:
        from esbgen.esb.tree import load_tree

        tree = load_tree(root, only={system_folder})
        system = tree.systems.get(system_folder)
        needs = backend_settings(root, tree, system) if system is not None else {}
    missing = [name for name in needs if name not in defined]
    if not missing:
        return []
    return [f"Next: define {', '.join(missing)} in {settings_file(root)}; `esbgen verify {system_folder}` shows where "
            f"each channel's call goes, and fails while {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} undefined."]

"""A system of the ESB written out as a BlueKing API gateway project that ``apigw-manager`` syncs.

The project is a folder:

* ``definition.yaml`` (``spec_version: 2``): the gateway, its stage with one backend (the system's host),
  where the docs are, and optional grants;
* ``resources.yaml``: Swagger 2.0 with the gateway's ``x-bk-apigateway-resource`` extension, one
  operation per channel the ESB serves for the system;
* ``docs/{zh,en}/<resource>.md``: the channels' apidocs;
* ``MIGRATION.md`` and ``migration.csv``: each old ESB URL beside its gateway URL, and the steps;
* ``manage.py`` and ``apigw_settings.py``: the smallest Django project that runs apigw-manager's commands.

The resources follow the gateway's own converter of ESB components (``convertor.py`` of its dashboard),
one per channel the ESB answers (its sync's rows, and on the legacy ESB every preset of ``esb_conf.py``,
row or no row, and the aliases of ``rewrite_channels``): at the ESB's path, so callers keep their URL;
named ``{system}_{name}`` in lower case; the ESB's method, ANY where it declared none; public as the
channel was. Authentication is what the ESB's validators checked on a call of the channel (its own
``request_validators``, else its group's channel class). The backend is not the ESB, as in the
converter, but where the component's code sends the call (``routing``): the host setting's address,
the forwarded path and method. Where that cannot be read (a component with its own logic, a path the
ESB fills from request parameters, a setting without an address) and the operator names nothing
(``--backend``, ``--channel-backend``), the channel is not exported, and the export says why.

Everything is read from files (``esb.tree``, ``rules.served_channels``, ``routing``); nothing of the
ESB is imported and the ESB tree is never written.
"""

from __future__ import annotations

import ast
import csv
import functools
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from esbgen.errors import EsbgenError, Refused, UsageError
from esbgen.esb.esbconf import config_validators
from esbgen.esb.layout import APIDOCS, COMPONENTS, ESB_CONF, inside_components
from esbgen.runner import Context, Operation

GATEWAY_NAME_RE = re.compile(r"[a-z][a-z0-9-]{2,29}")  # the gateway's own rule for names
STAGE_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]{0,19}")
RESOURCE_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,255}")
PATH_VAR_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,29}")
PATH_VAR_RE = re.compile(r"\{([^{}]*)\}")
HOST_RE = re.compile(r"https?://[^\s/]+")
ESB_URL_PREFIX = "/api/c/compapi"
DOC_LANGUAGES = {"zh_hans": "zh", "en": "en"}  # the ESB's folder -> the gateway's
COMMON_ARGS_RE = re.compile(r"\{\{\s*common_args_desc\s*\}\}")
GATEWAY_DOC_PLACEHOLDER = "{{ bkapi_authorization_description }}"
ESB_TEMPLATE_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
MANIFEST = ".esbgen-export.json"
DEFAULT_STAGE = "prod"
DEFAULT_TIMEOUT = 60  # seconds, the stage backend's when the system sets none
VERBATIM = "esbgen_text"  # name of the Django {% verbatim %} block that keeps the YAML's text as written
COMMANDS = (
    "sync_apigw_config",
    "sync_apigw_stage",
    "sync_apigw_resources",
    "sync_resource_docs_by_archive",
    "create_version_and_release_apigw",
)
TRUE_WORDS = frozenset({"true", "yes", "on", "y"})
BACKEND_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
# the ESB's request validators, by what they check
APP_VALIDATORS = frozenset({"AppAuthValidator", "SelfAppCodeAppSecret"})
USER_VALIDATORS = frozenset({"UserAuthValidator", "VerifiedUserRequiredValidator"})
PERMISSION_VALIDATORS = frozenset({"ComponentPermValidator"})
APP_LIST_VALIDATORS = frozenset({"AppCodeWhiteListValidator"})
STANDARD_VALIDATORS = ("AppAuthValidator", "UserAuthValidator", "ComponentPermValidator")  # ApiChannelForAPIS


@dataclass
class PathVar:
    name: str
    origin: str  # "request": a request parameter the ESB put into dest_path; "path": in the ESB path itself


@dataclass
class GatewayResource:
    """One gateway resource made from one channel the ESB serves."""

    esb_path: str
    esb_method: str  # "" for the ESB's any-method channel
    name: str  # operationId, the resource's name
    channel_name: str
    path: str  # the resource's path on the gateway
    description: str
    description_en: str
    is_public: bool
    backend: str  # backend name
    backend_method: str
    backend_path: str
    timeout: int
    app_verified: bool
    resource_permission: bool
    user_verified: bool
    host_setting: str | None
    host: str = ""  # the backend's address
    path_vars: list[PathVar] = field(default_factory=list)
    refused: str | None = None  # why the backend can be neither read from the code nor was named: not exported
    notes: list[str] = field(default_factory=list)
    docs: dict[str, Path | None] = field(default_factory=dict)  # gateway language -> ESB doc (relative to root)

    @property
    def method(self) -> str:
        return self.esb_method or "ANY"

    @property
    def esb_url(self) -> str:
        return ESB_URL_PREFIX + self.esb_path

    def gateway_url(self, gateway: str, stage: str) -> str:
        return f"/api/{gateway}/{stage}{self.path}"


@dataclass
class Backend:
    name: str
    setting: str | None
    host: str
    known: bool  # False: a placeholder the operator must replace
    why: str = ""


@dataclass
class Export:
    system: str
    system_name: str
    gateway: str
    stage: str
    root: Path
    settings_file: Path
    operations: list[GatewayResource]
    backends: list[Backend]
    left_out: list[tuple[str, str]]  # (ESB path or where, why)
    warnings: list[str]
    files: dict[str, bytes | DocFile] = field(default_factory=dict)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (where, ESB path, why) of channels not exported


# --- reading the channels ----------------------------------------------------------------------------


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in TRUE_WORDS
    return bool(value)


def _component_doc_label(root: Path, component) -> str | None:
    """The ``apiLabel`` of a component's docstring, its ``{{ _("...") }}`` taken as the text (as the ESB renders it)."""
    try:
        module = ast.parse((root / component.module).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    cls = next((n for n in module.body if isinstance(n, ast.ClassDef) and n.name == component.class_name), None)
    if cls is None:
        return None
    for statement in cls.body:
        if isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "label" for t in statement.targets):
            if isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str):
                return statement.value.value
    match = re.search(r"apiLabel\s*(.+)", ast.get_docstring(cls) or "")
    if not match:
        return None
    text = match.group(1).strip()
    return re.sub(r"""\{\{\s*_\(\s*(["'])(.*?)\1\s*\)\s*\}\}""", r"\2", text)


def _fallback_name(method: str, esb_path: str) -> str:
    """The gateway converter's name for a clashing component: method, then the path's words."""
    return f"{method.lower()}_{'_'.join(re.findall(r'[a-z0-9]+', esb_path.lower()))}"


def _docs_of(root: Path, tree, system, served, doc_names: dict) -> dict[str, Path | str | None]:
    """The channel's doc in each gateway language, as the ESB has it: a confapis channel's apidocs; a Python
    component's apidocs beside its module, or else its docstring, which the ESB renders in each language.
    ``doc_names`` keeps each apidocs folder's regular files, listed once however many channels it documents."""
    if served.channel is not None:
        folder = system.confapis_dir / APIDOCS if system.confapis_dir is not None else None
    else:
        folder = served.component.module.parent / APIDOCS if served.component is not None else None
    found: dict[str, Path | str | None] = {}
    for esb_language, language in DOC_LANGUAGES.items():
        found[language] = None
        if folder is not None:
            if (folder, esb_language) not in doc_names:
                doc_names[folder, esb_language] = _regular_files(root / folder / esb_language)
            if f"{served.name}.md" in doc_names[folder, esb_language]:
                found[language] = folder / esb_language / f"{served.name}.md"
    if served.channel is None and served.component is not None and not any(found.values()):
        docstring = _class_docstring(root, served.component)
        if docstring and docstring.strip():
            for esb_language, language in DOC_LANGUAGES.items():
                found[language] = _render_docstring(root, docstring, esb_language)
    return found


def _regular_files(folder: Path) -> frozenset[str]:
    try:
        with os.scandir(folder) as listing:
            return frozenset(entry.name for entry in listing if entry.is_file(follow_symlinks=False))
    except OSError:
        return frozenset()


def _class_docstring(root: Path, component) -> str | None:
    """The component class's docstring as Python has it, from a Python 2 module too."""
    data = (root / component.module).read_bytes()
    try:
        module = ast.parse(data)
    except (SyntaxError, ValueError):
        import libcst as cst

        try:
            parsed = cst.parse_module(data)
        except Exception:  # noqa: BLE001 - any parser failure means: no docstring to read
            return None
        cls = next((n for n in parsed.body if isinstance(n, cst.ClassDef) and n.name.value == component.class_name), None)
        docstring = cls.get_docstring(clean=False) if cls is not None else None
        return docstring
    cls = next((n for n in module.body if isinstance(n, ast.ClassDef) and n.name == component.class_name), None)
    return ast.get_docstring(cls, clean=False) if cls is not None else None


def _render_docstring(root: Path, docstring: str, esb_language: str) -> str | None:
    """The doc the ESB makes of a docstring in a language: Jinja2 with its gettext catalog, dedented,
    the leading ``apiMethod``/``apiLabel`` lines taken off; ``{{ common_args_desc }}`` is the gateway's own."""
    import gettext

    import jinja2

    translations: gettext.NullTranslations = gettext.NullTranslations()
    for base in ("locale/locale_api", "locale"):
        for folder in ({"zh_hans": "zh_Hans", "en": "en"}[esb_language], esb_language):
            catalog = root / base / folder / "LC_MESSAGES" / "django.mo"
            if catalog.is_file():
                with catalog.open("rb") as handle:
                    try:
                        translations = gettext.GNUTranslations(handle)
                    except (OSError, ValueError):
                        continue
                break
        else:
            continue
        break
    environment = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=False, keep_trailing_newline=True)
    environment.install_gettext_translations(translations, newstyle=False)
    try:
        text = environment.from_string(docstring).render(common_args_desc=GATEWAY_DOC_PLACEHOLDER)
    except jinja2.TemplateError:
        return None
    lines = textwrap.dedent(text).strip().splitlines()
    while lines and lines[0].startswith("api"):
        lines.pop(0)
    return "\n".join(lines).strip() + "\n"


def build_export(root: Path, system_folder: str, *, gateway: str | None = None, stage: str | None = None,
                 backend_host: str | None = None, backends: dict[str, str] | None = None,
                 channel_backends: dict[str, str] | None = None, via_esb: str | None = None,
                 grant_apps: tuple[str, ...] = ()) -> Export:
    """Read the system and plan the whole project (nothing is written).

    ``backends`` gives host settings their address (``SETTING -> URL``), ``channel_backends`` a channel
    its whole backend (``name -> "METHOD URL"``); ``backend_host`` is the address of the system's main setting.
    ``via_esb`` is the ESB's address: a channel whose backend is neither read nor named goes through it there,
    as the gateway's own converter sends every component.
    """
    from esbgen.esb.esbconf import read_esb_conf
    from esbgen.esb.layout import settings_file
    from esbgen.esb.routing import settings_values
    from esbgen.esb.rules import check_channel_fields, served_channels, validate_system_folder
    from esbgen.esb.tree import load_tree

    validate_system_folder(system_folder, "system")
    gateway = gateway or default_gateway_name(system_folder)
    if not GATEWAY_NAME_RE.fullmatch(gateway):
        raise UsageError(f"gateway name {gateway!r} is not valid: a lower-case letter, then 2 to 29 letters, digits or '-'")
    stage = stage or DEFAULT_STAGE
    if not STAGE_NAME_RE.fullmatch(stage):
        raise UsageError(f"stage name {stage!r} is not valid: a letter, then at most 19 letters, digits, '_' or '-'")
    from esbgen.esb.rules import validate_url

    if backend_host is not None:
        validate_url(backend_host, "--backend-host", path_ok=False)
    backends = dict(backends or {})
    for setting, url in backends.items():
        validate_url(url, f"--backend {setting}", path_ok=False)
    named = {name: _channel_backend(name, text) for name, text in (channel_backends or {}).items()}
    if via_esb is not None:
        validate_url(via_esb, "--via-esb", path_ok=False)
    for app in grant_apps:
        from esbgen.esb.rules import validate_app_code

        validate_app_code(app)
    tree = load_tree(root, only={system_folder}, positions=set())  # an export edits no YAML
    system = tree.systems.get(system_folder)
    if system is None:
        raise Refused(f"no system {system_folder!r} in {root} (systems: {', '.join(sorted(tree.systems)) or 'none'})")
    system_name = (system.system_name or system.name).upper()
    conf = read_esb_conf(root)
    served, dropped = served_channels(tree, system)
    served, aliases = _router_served(tree, system, conf, served)
    settings = settings_values(root)
    warnings: list[str] = []
    left_out = [(problem.where, problem.message) for problem in dropped]
    served_keys = {(s.path, s.method) for s in served}
    dropped_where = {problem.where for problem in dropped}
    served_where = {s.where for s in served}
    for channel in system.default_channels():
        if any(p.code == "skipped-entry" for p in check_channel_fields(channel)):
            left_out.append((channel.where, "the ESB skips this entry (a required field is missing or a value is not allowed)"))
        elif channel.where not in served_where and channel.where not in dropped_where:
            left_out.append((channel.where, f"{channel.path}: the {tree.generation} ESB does not serve it (hidden, off the standard path, or a second entry of a path)"))
    for preset in system.preset_channels:
        if (preset.path, preset.method) not in served_keys and preset.where not in dropped_where:
            left_out.append((preset.where, f"{preset.path}: the {tree.generation} ESB does not serve it (hidden, off the standard path, or a second entry of a path)"))
    for channel in system.channels:
        if channel.run_mode is not None:
            left_out.append((channel.where, f"{channel.path}: an override for RUN_MODE folder {channel.run_mode!r}; "
                                            "the default entry is exported"))
    for where, why in list(left_out):
        if "is no component of" in why:
            codename = why.split("'")[1] if "'" in why else ""
            component = system.component_by_codename(codename)
            if component is not None and not component.python3 and tree.generation == "later":
                left_out[left_out.index((where, why))] = (where, f"{why}: {component.module} is written for Python 2, "
                                                                 "which the later ESB cannot import")
    if not served:
        why = "; ".join(f"{where}: {message}" for where, message in left_out) or "it declares no channel"
        raise Refused(f"the ESB serves no channel of {system_folder}, so there is nothing to export ({why})")

    routings: dict = {}  # each component's routing, read once however many channels it serves
    doc_names: dict = {}
    main_setting = _main_setting(root, system, served, routings)
    if backend_host and main_setting:
        backends.setdefault(main_setting, backend_host)
    operations: list[GatewayResource] = []
    refused: list[tuple[str, str, str]] = []
    used_names: set[str] = set()
    from esbgen import progress

    progress.phase("exporting", len(served))
    for item in sorted(served, key=lambda s: (s.path, s.method)):
        progress.tick()
        op = _operation(root, tree, system, conf, item, aliases.get((item.path, item.method)), settings, backends,
                        routings, doc_names)
        custom = named.get(item.name)
        if custom is not None:
            used_names.add(item.name)
            op.refused = None
            op.backend_method, op.host, op.backend_path = custom
            op.host_setting = None
            op.notes.append(f"backend named with --channel-backend {item.name}")
        elif op.refused and via_esb:
            # the gateway's converter: the ESB itself, at the component's full path, with the method called
            op.notes.append(f"through the ESB (--via-esb), which still runs its component: {op.refused.split(';')[0]}")
            op.refused, op.host_setting, op.host = None, None, via_esb.rstrip("/")
            op.backend_method, op.backend_path = op.method, ESB_URL_PREFIX + op.esb_path
        if op.refused:
            refused.append((item.where, item.path, op.refused))
        else:
            operations.append(op)
    unknown = sorted(set(named) - used_names)
    if unknown:
        raise UsageError(f"--channel-backend {unknown[0]}: {system_folder} serves no channel of that name")
    for where, path, why in refused:
        left_out.append((where, f"{path}: not exported: {why}"))
        warnings.append(f"{path}: not exported: {why}")
    if not operations:
        raise Refused(f"no channel of {system_folder} has a backend that can be read from its code or was named, "
                      f"so nothing is exported ({len(refused)} refused; {refused[0][1]}: {refused[0][2]})")
    _name_and_place(operations, system_name)

    # the stage's backends: the most used host first ("default"), then the others, named after their setting
    counts = Counter(op.host for op in operations)
    hosts = [counts.most_common(1)[0][0]] + sorted(h for h in counts if h != counts.most_common(1)[0][0])
    stage_backends: list[Backend] = []
    by_host: dict[str, str] = {}
    for host in hosts:
        op = next(o for o in operations if o.host == host)
        via = via_esb is not None and host == via_esb.rstrip("/") and op.backend_path.startswith(ESB_URL_PREFIX)
        source = "--via-esb" if via else f"--channel-backend {op.channel_name}" if op.host_setting is None else \
            (f"--backend {op.host_setting}" if op.host_setting in backends else op.host_setting)
        name = "default" if not stage_backends else _backend_name("esb" if via else op.host_setting or host, by_host.values())
        stage_backends.append(Backend(name, op.host_setting, host, True, source))
        by_host[host] = name
    for op in operations:
        op.backend = by_host[op.host]
    export = Export(system_folder, system_name, gateway, stage, root, settings_file(root), operations, stage_backends,
                    left_out, warnings, refused=refused)
    registered = tree.registered.get(system_name)
    export.files = _render(export, registered.fields if registered else {}, grant_apps)
    return export


def _channel_backend(name: str, text: str) -> tuple[str, str, str]:
    """``METHOD http://host/path/`` of --channel-backend NAME=...: (method, host, path)."""
    method, _, url = text.strip().partition(" ")
    match = HOST_RE.match(url.strip())
    if method.upper() not in BACKEND_METHODS or not match or not url.strip()[match.end():].startswith("/"):
        raise UsageError(f"--channel-backend {name}={text!r} is not 'METHOD http://host/path/' "
                         f"(METHOD one of {', '.join(sorted(BACKEND_METHODS))})")
    return method.upper(), match.group(0), url.strip()[match.end():]


def _main_setting(root: Path, system, served, routings: dict) -> str | None:
    """The host setting most of the system's channels are forwarded to, as the code shows it."""
    from esbgen.esb.routing import component_routing

    counts: Counter = Counter()
    for item in served:
        if item.component is None:
            continue
        try:
            if item.component.codename not in routings:
                routings[item.component.codename] = component_routing(root, item.component)
            setting = routings[item.component.codename].host_setting
        except EsbgenError:
            continue
        if setting:
            counts[setting] += 1
    return counts.most_common(1)[0][0] if counts else None


def _router_served(tree, system, conf, served: list) -> tuple[list, dict]:
    """The channels the ESB answers at request time: the ones its sync keeps, then (legacy) every esb_conf.py
    preset, row or no row, and the alias paths of ``rewrite_channels``. Aliases map to the channel they serve as."""
    from esbgen.esb.rules import Served, preset_name

    served = list(served)
    if tree.generation == "legacy":
        # the legacy ESB keeps one row per path, and answers it with GET and POST whatever the entry's method
        paths: set[str] = set()
        rows = []
        for item in served:
            if item.channel is not None:
                if item.path in paths:
                    continue
                paths.add(item.path)
                item = Served(item.path, "", item.name, item.codename, item.component, item.where, channel=item.channel)
            rows.append(item)
        served = rows
    keys = {(s.path, s.method) for s in served}
    if tree.generation == "legacy":
        for preset in system.preset_channels:
            component = system.component_by_codename(preset.codename)
            if preset.source != str(ESB_CONF) or component is None or (preset.path, preset.method) in keys:
                continue
            keys.add((preset.path, preset.method))
            served.append(Served(preset.path, preset.method, preset_name(preset, component), preset.codename, component,
                                 preset.where, preset=preset))
    aliases: dict[tuple[str, str], object] = {}
    for alias, target in conf.rewrites.items():
        serving = next((s for s in served if s.path == target and not s.method), None)
        if serving is None or (alias, "") in keys:
            continue
        keys.add((alias, ""))
        served.append(Served(alias, "", f"{serving.name}_rewrite", serving.codename, serving.component,
                             f"{ESB_CONF} rewrite_channels", channel=serving.channel, preset=serving.preset))
        aliases[(alias, "")] = serving
    return served, aliases


def _backend_name(setting: str, taken) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", setting.lower()).strip("-")[:20] or "backend"
    base = base if base[0].isalpha() else f"b-{base}"[:20]
    name, n = base, 2
    while name in taken or name == "default":
        name = f"{base[:17]}-{n}"
        n += 1
    return name


def _checks(tree, conf, served) -> tuple[tuple[str, ...], str | None]:
    """The validators the ESB runs on a call of the channel, and a note when they are not readable."""
    preset = served.preset
    if preset is not None and preset.source == str(ESB_CONF):
        own, appended = config_validators(preset.code)
        group = conf.group_of(preset.line)
        base = own if own is not None else conf.validators_of_class(group.channel_class if group else None)
    else:
        # rows alone (confapis, conf.py CHANNELS): the default channel class, whatever the entry says
        appended, base = (), conf.validators_of_class(conf.default_class)
    note = None
    if base is None:
        note = (f"its channel class is not readable from {ESB_CONF.name}: the ESB's standard checks "
                "(app, user, permission) are kept")
        base = STANDARD_VALIDATORS
    return conf.real(tuple(base) + tuple(appended)), note


def _operation(root, tree, system, conf, served, alias_of, settings, backends, routings, doc_names) -> GatewayResource:
    from esbgen.esb.routing import destination, preset_destination

    notes: list[str] = []
    refused = None
    preset = served.preset
    config = preset.config if preset is not None else {}
    if served.channel is not None:
        fields = served.channel.fields
        description = fields.get("label") or served.name
        description_en = fields.get("label_en") or ""
        hidden = _truthy(fields.get("is_hidden"))
        deprecated = False
        permission_level = "unlimited"
        timeout = 0
    else:
        conf_fields = preset.comp_conf
        description = conf_fields.get("label") or (_component_doc_label(root, served.component) if served.component else None) or served.name
        description_en = conf_fields.get("label_en") or ""
        hidden = _truthy(config.get("is_hidden"))
        deprecated = _truthy(config.get("is_deprecated"))
        permission_level = config.get("permission_level") if isinstance(config.get("permission_level"), str) else "unlimited"
        timeout = config.get("timeout") if isinstance(config.get("timeout"), int) and config.get("timeout") > 0 else 0
    validators, note = _checks(tree, conf, served)
    if note:
        notes.append(note)
    rowless = tree.generation == "legacy" and preset is not None and (_truthy(config.get("is_hidden")) or alias_of is not None
                                                                      or (served.path, served.method) not in _synced_keys(tree, system))
    app_verified = any(v in APP_VALIDATORS for v in validators)
    user_verified = any(v in USER_VALIDATORS for v in validators)
    # the ESB checks an app's permission only for a channel with a row and a level other than unlimited
    resource_permission = (any(v in PERMISSION_VALIDATORS for v in validators) and permission_level != "unlimited"
                           and not rowless)
    limited = [v for v in validators if v in APP_LIST_VALIDATORS]
    if limited:
        notes.append(f"the ESB let only the apps its {limited[0]} lists call it: grant just those apps")
    host_setting = host = backend_method = backend_path = None
    try:
        if served.channel is not None:
            dest = destination(root, system, served.channel, settings=settings, routings=routings)
        else:
            dest = preset_destination(root, system, preset, settings=settings, routings=routings)
    except EsbgenError as error:
        dest, refused = None, f"its component cannot be read ({error})"
    esb_vars = PATH_VAR_RE.findall(served.path)
    if dest is not None:
        host_setting = dest.host_setting
        backend_method = dest.method.upper() if isinstance(dest.method, str) else None
        backend_path = dest.path
        if (backend_path is None or backend_method is None) and served.component is not None:
            own = _own_call(root, served.component)
            if own is not None:
                backend_method, host_setting, backend_path = own
                notes.append(f"the component's own code calls {backend_method} {backend_path} on {host_setting}; "
                             "it may also reshape the request and the answer, which the gateway passes as they come")
        if backend_path is None or backend_method is None:
            refused = ("its component builds the backend call in its own code" if host_setting is None or served.channel is None
                       and not preset.comp_conf else
                       f"its component ({served.component.class_name}) forwards by a dest_path and dest_http_method the channel does not give")
        elif host_setting is None:
            refused = "the component's code does not show which host it calls"
        else:
            request_vars = [v for v in PATH_VAR_RE.findall(backend_path) if v not in esb_vars]
            if request_vars:
                refused = (f"the ESB fills {', '.join('{' + v + '}' for v in request_vars)} of its dest_path from the request's "
                           "parameters, and the gateway fills a backend path only from its own path")
            else:
                host = (backends.get(host_setting) or "").rstrip("/") or _plain_address(settings.get(host_setting))
                if host is None:
                    refused = (f"{host_setting} has no address in the settings file"
                               f"{'' if host_setting in settings else ' (not defined there)'}: give --backend {host_setting}=URL")
    if refused:
        refused += f"; or name it with --channel-backend {served.name}='METHOD http://host/path/'"
    bad = [v for v in esb_vars if not PATH_VAR_NAME_RE.fullmatch(v)]
    if bad and not refused:
        refused = f"path variable(s) {', '.join(bad)} are not names the gateway accepts"
    if not refused and served.method and backend_method != served.method.upper():
        notes.append(f"called with {served.method.upper()}, forwarded with {backend_method}, as the ESB did")
    elif not refused and not served.method:
        notes.append(f"any method on the ESB (ANY on the gateway); the backend is called with {backend_method}")
    if alias_of is not None:
        notes.append(f"an alias the ESB serves as {alias_of.path}")
    return GatewayResource(
        esb_path=served.path, esb_method=served.method.upper(), name="", channel_name=served.name, path=served.path,
        description=str(description), description_en=str(description_en),
        is_public=not (hidden or deprecated or alias_of is not None),
        backend="default", backend_method=backend_method or "", backend_path=backend_path or "", timeout=timeout,
        app_verified=app_verified, resource_permission=resource_permission, user_verified=user_verified,
        host_setting=host_setting, host=host or "", path_vars=[PathVar(v, "path") for v in esb_vars], refused=refused,
        notes=notes, docs=_docs_of(root, tree, system, alias_of or served, doc_names),
    )


def _own_call(root: Path, component) -> tuple[str, str, str] | None:
    """(method, host setting, path) of the one HTTP call a component's own code makes, where all are plain."""
    from esbgen.esb.routing import component_calls

    try:
        calls = set(component_calls(root, component))
    except EsbgenError:
        return None
    if len(calls) != 1:
        return None
    call = calls.pop()
    if not (call.method in BACKEND_METHODS and call.path and call.path.startswith("/")):
        return None
    return call.method, call.host_settings[0], call.path


def _synced_keys(tree, system) -> set:
    from esbgen.esb.rules import served_channels

    return {(s.path, s.method) for s in served_channels(tree, system)[0]}


def _plain_address(setting) -> str | None:
    if setting is not None and setting.value and HOST_RE.fullmatch(setting.value.strip().rstrip("/")):
        return setting.value.strip().rstrip("/")
    return None


def _name_and_place(operations: list[GatewayResource], system_name: str) -> None:
    """Resource names as the gateway's converter gives them: ``{system}_{name}`` in lower case, and on a
    clash the method and the path's words."""
    names: set[str] = set()
    for op in operations:
        name = f"{system_name}_{op.channel_name}".replace("-", "_").lower()
        if name in names or not RESOURCE_NAME_RE.fullmatch(name):
            fallback = _fallback_name(op.method, op.esb_path)
            op.notes.append(f"resource named {fallback}: {name} is {'taken by another channel' if name in names else 'not a resource name'}")
            name = fallback
        if name in names or not RESOURCE_NAME_RE.fullmatch(name):
            raise Refused(f"{op.esb_path}: no unique resource name for channel {op.channel_name!r}")
        names.add(name)
        op.name = name


def default_gateway_name(system: str) -> str:
    name = system.replace("_", "-")
    return name if name.startswith("bk-") else f"bk-{name}"


# --- writing -------------------------------------------------------------------------------------------


# A text libyaml writes plain in a block mapping, checked conservatively: no indicator first, no ':' or '#',
# no space at either end, printable without a line break; the rest is left to libyaml.
PLAIN_TEXT_RE = re.compile("[A-Za-z0-9_/(\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]"
                           "(?:[ !\"$-9;-~\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]*"
                           "[!\"$-9;-~\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd])?")
SIMPLE_KEY_BYTES = 128  # libyaml writes a longer key as a complex one ("? key")


class _NotPlain(Exception):
    """A value the quick writer leaves to libyaml."""


def _yaml_text(data: dict) -> str:
    """Block-style YAML, keys in their order, text unescaped: the bytes of PyYAML's CSafeDumper (libyaml), which
    is asked only for the entries holding a text it might quote; its representer costs a Python call per node."""
    if not data:
        return _libyaml_text(data)
    lines: list[str] = []
    _mapping(data, 0, (), lines)
    return "".join(lines)


def _libyaml_text(data) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, default_flow_style=False, allow_unicode=True, sort_keys=False, width=4096)


def _plain(value, key: bool = False) -> str:
    """The scalar as libyaml writes it in a block mapping, for a key too; _NotPlain where it might quote it."""
    text = None if isinstance(value, (dict, list)) else _known_plain(value, key)
    if text is None:
        raise _NotPlain
    return text


@functools.lru_cache(maxsize=1024, typed=True)  # keys and most values repeat from one resource to the next
def _known_plain(value, key: bool) -> str | None:
    if key and not isinstance(value, str):
        return None
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if value == "" and not key:
        return "''"
    if not isinstance(value, str) or not PLAIN_TEXT_RE.fullmatch(value) \
            or len(value.encode()) > (SIMPLE_KEY_BYTES if key else 2048) or _resolves_as_other(value):
        return None
    return value


def _resolves_as_other(text: str) -> bool:
    """Whether YAML reads the plain text as a number, a boolean, a date or null (libyaml then quotes it)."""
    import yaml

    resolver = _resolver()
    return text[0] in resolver.yaml_implicit_resolvers and \
        resolver.resolve(yaml.ScalarNode, text, (True, False)) != "tag:yaml.org,2002:str"


@functools.cache
def _resolver():
    import yaml

    return yaml.resolver.Resolver()


def _mapping(data: dict, indent: int, keys: tuple | None, lines: list[str]) -> None:
    """Each entry of a block mapping; an entry with a text to quote is libyaml's, written inside the same
    enclosing keys (``keys``, None under a sequence: then the whole mapping is given up) and cut out of it."""
    pad = " " * indent
    for key, value in data.items():
        start = len(lines)
        try:
            _entry(pad, _plain(key, key=True), value, indent, keys, lines)
        except _NotPlain:
            if keys is None:
                raise
            del lines[start:]
            wrapped = {key: value}
            for outer in reversed(keys):
                wrapped = {outer: wrapped}
            lines.append(_libyaml_text(wrapped).split("\n", len(keys))[-1])


def _entry(pad: str, key: str, value, indent: int, keys: tuple | None, lines: list[str]) -> None:
    if isinstance(value, dict) and value:
        lines.append(f"{pad}{key}:\n")
        _mapping(value, indent + 2, None if keys is None else (*keys, key), lines)
    elif isinstance(value, list) and value:
        lines.append(f"{pad}{key}:\n")
        for item in value:  # libyaml does not indent a sequence in a mapping
            if isinstance(item, dict) and item:
                first = len(lines)
                _mapping(item, indent + 2, None, lines)
                lines[first] = f"{pad}- {lines[first][indent + 2:]}"
            else:
                lines.append(f"{pad}- {_plain(item)}\n")
    elif isinstance(value, (dict, list)):
        lines.append(f"{pad}{key}: {'{}' if isinstance(value, dict) else '[]'}\n")
    else:
        lines.append(f"{pad}{key}: {_plain(value)}\n")


def _verbatim(header: str, body: str) -> str:
    """YAML that apigw-manager's Django template rendering gives back as written (labels may hold ``{{ }}``)."""
    end = f"{{% endverbatim {VERBATIM} %}}"
    if end in body:
        raise Refused(f"a text of the system contains {end!r}, which the export cannot keep verbatim")
    return f"{header}# {{% verbatim {VERBATIM} %}}\n{body}# {end}\n"


def _definition(export: Export, registered: dict, grant_apps: tuple[str, ...], has_docs: bool) -> str:
    label = registered.get("label") if isinstance(registered.get("label"), str) else None
    data = {
        "spec_version": 2,
        "release": {
            "version": "1.0.0",
            "title": f"{export.system_name} moved from the ESB",
            "comment": f"Channels of the ESB system {export.system_name}, exported by esbgen export-apigw",
        },
        "apigateway": {
            "description": label or f"{export.system_name} 的 API（迁移自 ESB）",
            "description_en": f"APIs of {export.system_name}, moved from the ESB",
            "is_public": True,
            "maintainers": ["admin"],
        },
        "stages": [
            {
                "name": export.stage,
                "description": f"{export.system_name} 的 API",
                "description_en": f"APIs of {export.system_name}",
                "vars": {},
                "backends": [
                    {
                        "name": backend.name,
                        "config": {
                            "timeout": _system_timeout(registered),
                            "loadbalance": "roundrobin",
                            "hosts": [{"host": backend.host, "weight": 100}],
                        },
                    }
                    for backend in export.backends
                ],
            }
        ],
    }
    if has_docs:
        data["resource_docs"] = {"basedir": "docs/"}
    if grant_apps:
        data["grant_permissions"] = [{"bk_app_code": app, "grant_dimension": "gateway"} for app in grant_apps]
    header = [
        f"# The API gateway {export.gateway} for the ESB system {export.system_name} (esbgen export-apigw).",
        "# apigw-manager reads this file (spec_version 2) in sync_apigw_config, sync_apigw_stage,",
        "# sync_resource_docs_by_archive and create_version_and_release_apigw; see MIGRATION.md.",
        "# resource_docs.basedir is relative: run the commands from this folder.",
    ]
    for backend in export.backends:
        if backend.known:
            header.append(f"# backend {backend.name}: {backend.host}, from {backend.why}.")
        else:
            header.append(f"# backend {backend.name}: PLACEHOLDER {backend.host}: {backend.why}; put the address here.")
    return _verbatim("\n".join(header) + "\n", _yaml_text(data))


def _system_timeout(registered: dict) -> int:
    values = [registered.get(k) for k in ("execute_timeout", "query_timeout")]
    values = [v for v in values if isinstance(v, int) and v > 0]
    return max(values) if values else DEFAULT_TIMEOUT


def _resources(export: Export) -> str:
    paths: dict[str, dict] = {}
    for op in export.operations:
        operation = {
            "operationId": op.name,
            "description": op.description,
            "tags": [export.system_name],
        }
        if op.path_vars:
            operation["parameters"] = [
                {
                    "name": var.name,
                    "in": "path",
                    "required": True,
                    "type": "string",
                    "description": f"part of the ESB path {op.esb_path}",
                }
                for var in op.path_vars
            ]
        operation["responses"] = {"default": {"description": ""}}
        resource = {
            "isPublic": op.is_public,
            "allowApplyPermission": op.is_public,
            "matchSubpath": False,
            "backend": {
                "name": op.backend,
                "method": op.backend_method.lower(),
                "path": op.backend_path,
                "matchSubpath": False,
                "timeout": op.timeout,
            },
            "authConfig": {
                "appVerifiedRequired": op.app_verified,
                "resourcePermissionRequired": op.resource_permission,
                "userVerifiedRequired": op.user_verified,
            },
        }
        if op.description_en:
            resource["descriptionEn"] = op.description_en
        operation["x-bk-apigateway-resource"] = resource
        key = "x-bk-apigateway-method-any" if op.method == "ANY" else op.method.lower()
        paths.setdefault(op.path, {})[key] = operation
    data = {
        "swagger": "2.0",
        "basePath": "/",
        "info": {"title": f"API gateway {export.gateway}", "version": "1.0.0",
                 "description": f"Resources of the ESB system {export.system_name}"},
        "schemes": ["http"],
        "paths": paths,
    }
    header = (f"# Resources of the API gateway {export.gateway}: one per channel the ESB serves for {export.system_name}.\n"
              "# Swagger 2.0 with the gateway's x-bk-apigateway-resource; apigw-manager's sync_apigw_resources reads it.\n")
    return _verbatim(header, _yaml_text(data))


def _doc(text: bytes) -> tuple[bytes, list[str]]:
    """The doc with the ESB's common-arguments placeholder replaced, and the ESB template text the gateway shows as is."""
    decoded = text.decode("utf-8", errors="surrogateescape")
    replaced = COMMON_ARGS_RE.sub(GATEWAY_DOC_PLACEHOLDER, decoded)
    left = sorted({m.group(0) for m in ESB_TEMPLATE_RE.finditer(replaced) if m.group(0) != GATEWAY_DOC_PLACEHOLDER})
    return replaced.encode("utf-8", errors="surrogateescape"), left


@dataclass(frozen=True)
class DocFile:
    """An ESB doc in the export, read again when it is written rather than kept: 40,000 docs are 100 MB."""

    source: Path
    size: int
    digest: str

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        data, _ = _doc(self.source.read_bytes())
        if hashlib.sha256(data).hexdigest() != self.digest:
            raise Refused(f"{self.source} changed while it was exported; export again")
        return data


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _render(export: Export, registered: dict, grant_apps: tuple[str, ...]) -> dict[str, bytes | DocFile]:
    files: dict[str, bytes | DocFile] = {}
    digests: dict[str, str] = {}
    doc_notes: list[str] = []
    from esbgen import progress

    progress.phase("writing", len(export.operations))
    for op in export.operations:
        progress.tick()
        for language, source in sorted(op.docs.items()):
            if source is None:
                doc_notes.append(f"- `{op.name}`: no {language} doc on the ESB (the gateway shows none)")
                continue
            if isinstance(source, str):  # a docstring, rendered as the ESB renders it
                files[f"docs/{language}/{op.name}.md"] = source.encode("utf-8", errors="surrogateescape")
                continue
            data, left = _doc((export.root / source).read_bytes())
            name = f"docs/{language}/{op.name}.md"
            digests[name] = hashlib.sha256(data).hexdigest()
            files[name] = DocFile(export.root / source, len(data), digests[name])
            if left:
                doc_notes.append(f"- `docs/{language}/{op.name}.md`: ESB template text the gateway shows as written "
                                 f"(it renders no `.md` doc): {', '.join(f'`{t}`' for t in left)}")
    # the gateway refuses an archive without docs, and apigw-manager a docs folder that is not there:
    # a system the ESB had no doc for names no docs folder at all
    has_docs = bool(files)
    files["definition.yaml"] = _definition(export, registered, grant_apps, has_docs).encode()
    files["resources.yaml"] = _resources(export).encode()
    files["migration.csv"] = _csv(export).encode()
    files["MIGRATION.md"] = _migration(export, doc_notes, has_docs).encode()
    files["manage.py"] = MANAGE_PY.encode()
    files["apigw_settings.py"] = SETTINGS_PY.format(gateway=export.gateway).encode()
    manifest = {
        "system": export.system,
        "gateway": export.gateway,
        "files": {name: digests.get(name) or hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return dict(sorted(files.items()))


def _csv(export: Export) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["esb_url", "esb_method", "gateway_url", "gateway_method", "resource", "backend", "backend_method",
                     "backend_path", "status", "notes"])
    for op in export.operations:
        writer.writerow([op.esb_url, op.esb_method or "ANY", op.gateway_url(export.gateway, export.stage), op.method,
                         op.name, op.backend, op.backend_method, op.backend_path,
                         "mapped", "; ".join(op.notes)])
    return out.getvalue()


def _migration(export: Export, doc_notes: list[str], has_docs: bool) -> str:
    g, s = export.gateway, export.stage
    lines = [
        f"# Moving {export.system_name} from the ESB to the API gateway `{g}`",
        "",
        f"Written by `esbgen export-apigw {export.system}` from the ESB at `{export.root.name}` "
        f"({len(export.operations)} channels exported, {len(export.refused)} not exported: see below).",
        "",
        "## Backend",
        "",
    ]
    for backend in export.backends:
        if backend.known:
            lines.append(f"- `{backend.name}`: `{backend.host}` (from {backend.why})")
        else:
            lines.append(f"- `{backend.name}`: **placeholder** `{backend.host}`: {backend.why}. "
                         "Put the address in `definition.yaml`, or export again with `--backend-host URL`.")
    lines += [
        "",
        "## Steps",
        "",
        "Run them from this folder (`docs/` is found from it). `manage.py` and `apigw_settings.py` are the",
        "smallest Django project apigw-manager's commands run in; any Django project with `apigw_manager.apigw`",
        "in `INSTALLED_APPS` does as well.",
        "",
        "```",
        "python3 -m venv .venv && .venv/bin/pip install 'apigw-manager[django]'",
        "export BK_APP_CODE=<app code> BK_APP_SECRET=<its secret>   # an app the gateway lets manage gateways",
        "export BK_API_URL_TMPL='http://bkapi.example.com/api/{api_name}/'   # your API gateway's URL template",
        ".venv/bin/python manage.py migrate   # apigw-manager keeps release versions in a small local database",
    ]
    commands = [c for c in COMMANDS if has_docs or c != "sync_resource_docs_by_archive"]
    for command in commands:
        flags = {"sync_apigw_resources": " -f resources.yaml",
                 "create_version_and_release_apigw": f" -f definition.yaml -s {s}"}.get(command, " -f definition.yaml")
        lines.append(f".venv/bin/python manage.py {command} --gateway-name {g}{flags}")
    steps = {
        "sync_apigw_config": "creates the gateway (or updates its description and maintainers).",
        "sync_apigw_stage": f"creates stage `{s}` and its backend hosts.",
        "sync_apigw_resources": "creates one resource per channel from `resources.yaml`.",
        "sync_resource_docs_by_archive": "uploads `docs/zh` and `docs/en`.",
        "create_version_and_release_apigw": f"makes version 1.0.0 and publishes it to `{s}`: only now can apps call it.",
    }
    lines += ["```", ""]
    lines += [f"{n}. `{command}` {steps[command]}" for n, command in enumerate(commands, 1)]
    if not has_docs:
        lines.append("The ESB had no doc for these channels, so there is no docs folder and no docs step.")
    lines += [
        "",
        "Then grant the apps that called the ESB (`grant_permissions` in `definition.yaml`, or the gateway's web page),",
        "move each caller to its new URL below, and take the channel off the ESB once nobody calls it there.",
        "Each resource checks what the ESB checked on that channel (the app, the user, the app's permission);",
        "callers send `bk_app_code` and `bk_app_secret` (and `bk_token` or `bk_username`) in the",
        "`X-Bkapi-Authorization` header.",
        "",
        "## URLs",
        "",
        f"Gateway URLs are on your API gateway's host (`BK_API_URL_TMPL` with `{{api_name}}` = `{g}`), stage `{s}`.",
        "`{name}` in a new URL is a path variable: the caller puts the value there instead of in the request.",
        "",
        "| ESB URL | ESB method | gateway URL | method | resource | backend | notes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for op in export.operations:
        notes = "; ".join(op.notes)
        lines.append(f"| `{op.esb_url}` | {op.esb_method or 'any'} | `{op.gateway_url(g, s)}` | {op.method} | `{op.name}` | "
                     f"{op.backend_method} `{op.backend}{op.backend_path}` | {_cell(notes)} |")
    lines += ["", "## Needing a hand", ""]
    if export.refused:
        lines.append("The ESB serves these channels, but where it sends their calls can be neither read from the code nor "
                     "was it named, so they are not exported. Name each backend (`--backend SETTING=URL`, "
                     "`--channel-backend NAME='METHOD http://host/path/'`) and export again:")
        lines.append("")
        lines += [f"- `{path}` ({where}): {_cell(why)}" for where, path, why in export.refused]
    else:
        lines.append("None: every channel the ESB serves is exported with the backend its code calls.")
    lines += ["", "## Not exported", ""]
    lines += [f"- {where}: {_cell(why)}" for where, why in export.left_out] or ["Nothing: every channel the system declares is served and exported."]
    lines += ["", "## Docs", ""]
    lines.append(f"`docs/zh` holds the ESB's `zh_hans` docs, `docs/en` its `en` docs, byte for byte, but `{{{{ common_args_desc }}}}`,"
                 f" which is now `{GATEWAY_DOC_PLACEHOLDER}`: the gateway puts its own common-parameters section on every doc.")
    lines.append("")
    lines += doc_notes or ["Every doc is complete."]
    lines += ["", "## Warnings", ""]
    lines += [f"- {_cell(w)}" for w in export.warnings] or ["None."]
    return "\n".join(lines) + "\n"


MANAGE_PY = '''#!/usr/bin/env python
"""Runs apigw-manager's Django commands for this gateway project (written by esbgen export-apigw)."""
import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apigw_settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''

SETTINGS_PY = '''"""The smallest Django settings apigw-manager's commands need (written by esbgen export-apigw).

BK_APP_CODE, BK_APP_SECRET and BK_API_URL_TMPL come from the environment; see MIGRATION.md.
"""
import os

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "apigw-manager-commands-only")
INSTALLED_APPS = ["apigw_manager.apigw"]
DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(BASE_DIR, ".apigw-manager.sqlite3"),
    }}
}}
# apigw-manager renders definition.yaml and resources.yaml with Django's template engine
TEMPLATES = [{{"BACKEND": "django.template.backends.django.DjangoTemplates"}}]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"  # apigw-manager's table as it made it
USE_TZ = True
BK_APIGW_NAME = os.environ.get("BK_APIGW_NAME", "{gateway}")
BK_APP_CODE = os.environ.get("BK_APP_CODE", "")
BK_APP_SECRET = os.environ.get("BK_APP_SECRET", "")
BK_API_URL_TMPL = os.environ.get("BK_API_URL_TMPL", "")
'''


# --- the output folder ---------------------------------------------------------------------------------


def check_output(root: Path, output: Path, system: str) -> tuple[bool, dict[str, str]]:
    """Whether ``output`` may take the export: (it holds a previous export, its files esbgen did not write).

    Refused: a folder inside the ESB's ``components/`` or holding the ESB root, a file, a non-empty folder
    that is not an export of the same system, and a previous export with files edited since.
    """
    out = Path(os.path.realpath(output))
    esb = Path(os.path.realpath(root))
    if inside_components(esb, out):
        raise Refused(f"{output} is inside the ESB's {COMPONENTS}/; write the export elsewhere")
    if out == esb or out in esb.parents:
        raise Refused(f"{output} holds the ESB root {root}; write the export elsewhere")
    if not out.exists():
        return False, {}
    if not out.is_dir():
        raise Refused(f"{output} is not a folder")
    if not any(out.iterdir()):
        return False, {}
    manifest_path = out / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        listed = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise Refused(f"{output} is not empty and holds no export of esbgen; choose an empty or new folder") from None
    if manifest.get("system") != system:
        raise Refused(f"{output} holds the export of {manifest.get('system')!r}, not of {system!r}")
    edited = []
    for name, digest in sorted(listed.items()):
        path = out / name
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            edited.append(name)
    if edited:
        raise Refused(f"{output}: {', '.join(edited)} changed since the last export; move the changes away "
                      "(or give them as options) before exporting again")
    others = {}
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames.sort()
        for filename in sorted(filenames):
            relative = str(Path(dirpath, filename).relative_to(out))
            if relative not in listed and relative != MANIFEST:
                others[relative] = str(Path(dirpath, filename))
    return True, others


def write_export(export: Export, output: Path) -> tuple[bool, list[str]]:
    """Write the project into ``output``: staged beside it, then moved into place by renames.

    A previous export of the same system is replaced; files esbgen did not write there (apigw-manager's
    database, notes) are carried over. Returns (replaced, files carried over).
    """
    replacing, others = check_output(export.root, output, export.system)
    out = Path(os.path.realpath(output))
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".esbgen-new", dir=out.parent))
    try:
        made: set[str] = set()
        for name, data in export.files.items():
            folder = os.path.dirname(name)
            if folder not in made:
                (stage / folder).mkdir(parents=True, exist_ok=True)
                made.add(folder)
            with open(os.path.join(stage, name), "wb") as handle:
                handle.write(bytes(data))
        for relative, source in others.items():
            target = stage / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
        os.chmod(stage, 0o755)
        if not out.exists():
            os.rename(stage, out)
            return False, []
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".esbgen-old", dir=out.parent))
        os.rmdir(old)
        os.rename(out, old)
        try:
            os.rename(stage, out)
        except BaseException:
            os.rename(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return replacing, sorted(others)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


@dataclass
class ExportApigw(Operation):
    """Write a system as an API gateway project (esbgen.commands.export_apigw); only DIR is written, never the ESB tree."""

    system: str
    output: str
    gateway: str | None = None
    stage: str | None = None
    backend_host: str | None = None
    grant_apps: tuple[str, ...] = ()
    strict: bool = False
    backends: tuple[str, ...] = ()  # SETTING=URL
    channel_backends: tuple[str, ...] = ()  # NAME=METHOD URL
    via_esb: str | None = None
    command = "export-apigw"
    writes = False

    def read(self, ctx: Context) -> int:
        say, root = ctx.say, ctx.root
        export = build_export(root, self.system, gateway=self.gateway, stage=self.stage,
                              backend_host=self.backend_host, backends=_pairs("--backend", self.backends),
                              channel_backends=_pairs("--channel-backend", self.channel_backends),
                              via_esb=self.via_esb, grant_apps=tuple(self.grant_apps))
        if self.strict and export.refused:
            raise Refused(f"--strict: {len(export.refused)} channel(s) of {self.system} have no backend read from the "
                          "code or named: " + "; ".join(f"{path} ({why})" for _, path, why in export.refused))
        for line in export.warnings:
            say(f"warning: {line}")
        replacing, _ = check_output(root, Path(self.output), self.system)
        summary = (f"{len(export.operations)} resources ({len(export.refused)} channel(s) not exported, see MIGRATION.md) "
                   f"for gateway {export.gateway}, stage {export.stage}")
        if ctx.dry_run:
            say(f"Would {'replace the export in' if replacing else 'write'} {self.output}: {summary}.")
            for name, data in export.files.items():
                say(f"  {name}  ({len(data)} bytes)")
            say("Dry run: nothing was written.")
            return 0
        replaced, carried = write_export(export, Path(self.output))
        say(f"{'Replaced the export in' if replaced else 'Wrote'} {self.output}: {summary}; {len(export.files)} files.")
        if carried:
            say(f"Kept from the earlier export: {', '.join(carried)}")
        say(f"Next: the apigw-manager steps in {Path(self.output) / 'MIGRATION.md'}.")
        return 0


def _pairs(option: str, values: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise UsageError(f"{option} {value!r} is not NAME=VALUE")
        pairs[key.strip()] = rest.strip()
    return pairs

"""A system of the ESB written out as a BlueKing API gateway project that ``apigw-manager`` syncs.

The project is a folder:

* ``definition.yaml`` (``spec_version: 2``): the gateway, its stage with one backend (the system's host),
  where the docs are, and optional grants;
* ``resources.yaml``: Swagger 2.0 with the gateway's ``x-bk-apigateway-resource`` extension, one
  operation per channel the ESB serves for the system;
* ``docs/{zh,en}/<resource>.md``: the channels' apidocs;
* ``MIGRATION.md`` and ``migration.csv``: each old ESB URL beside its gateway URL, and the steps;
* ``manage.py`` and ``apigw_settings.py``: the smallest Django project that runs apigw-manager's commands.

Where the gateway's own converter of ESB components into resources defines a mapping, the export
follows it: an ESB channel without a method becomes the gateway's ANY method, resources are named
after the channel (on a clash, after method and path), the system is the tag, ``permission_level``
other than ``unlimited`` requires the resource permission, and ``verified_user_required`` the user.
One thing differs on purpose: that converter leaves app verification to the ESB behind the gateway;
here the backend is called directly, so the gateway verifies the calling app on every resource,
as the ESB did.

Everything is read from files (``esbtree``, ``rules.served_channels``, ``routing``); nothing of the
ESB is imported and the ESB tree is never written.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from esbgen.errors import EsbgenError, UsageError
from esbgen.layout import APIDOCS, COMPONENTS, inside_components
from esbgen.rules import path_below_system

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


@dataclass
class PathVar:
    name: str
    origin: str  # "request": a request parameter the ESB put into dest_path; "path": in the ESB path itself


@dataclass
class Operation:
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
    path_vars: list[PathVar] = field(default_factory=list)
    unmapped: str | None = None  # why the backend could not be read from the ESB; the resource is disabled
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
    operations: list[Operation]
    backends: list[Backend]
    left_out: list[tuple[str, str]]  # (ESB path or where, why)
    warnings: list[str]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def unmapped(self) -> list[Operation]:
        return [op for op in self.operations if op.unmapped]


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


def _resource_name(name: str, system: str) -> str | None:
    """The channel's name as a resource name, or None when it cannot be one."""
    candidate = name.replace("-", "_")
    if candidate and not candidate[0].isalpha():
        candidate = f"{system}_{candidate}"
    return candidate if RESOURCE_NAME_RE.fullmatch(candidate) else None


def _fallback_name(method: str, esb_path: str) -> str:
    """The gateway converter's name for a clashing component: method, then the path's words."""
    return f"{method.lower()}_{'_'.join(re.findall(r'[a-z0-9]+', esb_path.lower()))}"


def _without_system(esb_path: str, system: str) -> str:
    parts = [p for p in esb_path.strip("/").split("/") if p and p.lower() != system]
    return "/" + "/".join(parts) + "/" if parts else "/"


def _docs_of(root: Path, system, served) -> dict[str, Path | None]:
    """The ESB's apidoc of a channel in each language, where the ESB reads it."""
    if served.channel is not None:
        folder = system.confapis_dir / APIDOCS if system.confapis_dir is not None else None
    else:
        folder = served.component.module.parent / APIDOCS if served.component is not None else None
    found: dict[str, Path | None] = {}
    for esb_language, language in DOC_LANGUAGES.items():
        path = folder / esb_language / f"{served.name}.md" if folder is not None else None
        found[language] = path if path is not None and (root / path).is_file() and not (root / path).is_symlink() else None
    return found


def _host_value(setting, backend_host: str | None) -> tuple[str | None, str]:
    if backend_host:
        return backend_host.rstrip("/"), "--backend-host"
    if setting is not None and setting.value and HOST_RE.match(setting.value.strip()):
        return setting.value.strip().rstrip("/"), setting.name
    return None, ""


def _placeholder(setting: str | None) -> str:
    word = (setting or "backend").lower().replace("_", "-")
    return f"http://{word}.not-set.invalid"


def build_export(root: Path, system_folder: str, *, gateway: str | None = None, stage: str | None = None,
                 backend_host: str | None = None, grant_apps: tuple[str, ...] = ()) -> Export:
    """Read the system and plan the whole project (nothing is written)."""
    from esbgen.esbtree import load_tree
    from esbgen.layout import settings_file
    from esbgen.routing import destination, preset_destination, settings_values
    from esbgen.rules import check_channel_fields, is_host_setting, normalised_path, served_channels, validate_system_folder

    validate_system_folder(system_folder, "system")
    gateway = gateway or default_gateway_name(system_folder)
    if not GATEWAY_NAME_RE.fullmatch(gateway):
        raise UsageError(f"gateway name {gateway!r} is not valid: a lower-case letter, then 2 to 29 letters, digits or '-'")
    stage = stage or DEFAULT_STAGE
    if not STAGE_NAME_RE.fullmatch(stage):
        raise UsageError(f"stage name {stage!r} is not valid: a letter, then at most 19 letters, digits, '_' or '-'")
    if backend_host is not None:
        from esbgen.rules import validate_url

        validate_url(backend_host, "--backend-host", path_ok=False)
    for app in grant_apps:
        from esbgen.rules import validate_app_code

        validate_app_code(app)
    tree = load_tree(root, only={system_folder})
    system = tree.systems.get(system_folder)
    if system is None:
        raise EsbgenError(f"no system {system_folder!r} in {root} (systems: {', '.join(sorted(tree.systems)) or 'none'})")
    system_name = (system.system_name or system.name).upper()
    served, dropped = served_channels(tree, system)
    settings = settings_values(root)
    routings: dict = {}
    warnings: list[str] = []
    left_out = [(problem.where, problem.message) for problem in dropped]
    served_keys = {(s.path, s.method) for s in served}
    dropped_where = {problem.where for problem in dropped}
    for channel in system.default_channels():
        if any(p.code == "skipped-entry" for p in check_channel_fields(channel)):
            left_out.append((channel.where, "the ESB skips this entry (a required field is missing or a value is not allowed)"))
        elif (normalised_path(channel.path), (channel.get("method") or "").upper()) not in served_keys and channel.where not in dropped_where:
            left_out.append((channel.where, f"{channel.path}: the {tree.generation} ESB does not serve it (hidden, or off the standard path)"))
    for preset in system.preset_channels:
        if (preset.path, preset.method) not in served_keys and preset.where not in dropped_where:
            left_out.append((preset.where, f"{preset.path}: the {tree.generation} ESB does not serve it (hidden, or off the standard path)"))
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
        raise EsbgenError(f"the ESB serves no channel of {system_folder}, so there is nothing to export ({why})")

    operations: list[Operation] = []
    for item in sorted(served, key=lambda s: (s.path, s.method)):
        operations.append(_operation(root, system, item, settings, routings, destination, preset_destination))
    _name_and_place(operations, system_folder)

    # the stage's backends: the system's main host first ("default"), then any other host a channel calls
    counts = Counter(op.host_setting for op in operations if op.host_setting and not op.unmapped)
    main = counts.most_common(1)[0][0] if counts else None
    if main is None:
        main = next((n for n in system.settings_read if is_host_setting(n) and not n.endswith("_PORT")), None)
    backends: list[Backend] = []
    by_setting: dict[str | None, str] = {}
    for setting in [main] + sorted(s for s in counts if s != main):
        name = "default" if not backends else _backend_name(setting, by_setting.values())
        value, source = _host_value(settings.get(setting) if setting else None, backend_host if not backends else None)
        if value is None:
            where = settings_file(root)
            why = (f"{setting} is not a plain address in {where}" if setting in settings else
                   f"{setting} is not defined in {where}" if setting else "no host setting is read by the system's code")
            warnings.append(f"backend {name}: {why}; definition.yaml holds the placeholder {_placeholder(setting)}: "
                            "put the address there, or export again with --backend-host URL")
            backends.append(Backend(name, setting, _placeholder(setting), False, why))
        else:
            backends.append(Backend(name, setting, value, True, source))
        by_setting[setting] = name
    for op in operations:
        op.backend = by_setting.get(op.host_setting, "default")
        if op.unmapped:
            warnings.append(f"{op.esb_path}: {op.unmapped}; resource {op.name} is exported disabled in stage {stage}")
    export = Export(system_folder, system_name, gateway, stage, root, settings_file(root), operations, backends,
                    left_out, warnings)
    registered = tree.registered.get(system_name)
    export.files = _render(export, registered.fields if registered else {}, grant_apps)
    return export


def _backend_name(setting: str, taken) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", setting.lower()).strip("-")[:20] or "backend"
    name, n = base, 2
    while name in taken or name == "default":
        name = f"{base[:17]}-{n}"
        n += 1
    return name


def _operation(root, system, served, settings, routings, destination, preset_destination) -> Operation:
    notes: list[str] = []
    unmapped = None
    preset = served.preset
    config = preset.config if preset is not None else {}
    if served.channel is not None:
        fields = served.channel.fields
        description = fields.get("label") or served.name
        description_en = fields.get("label_en") or ""
        hidden = _truthy(fields.get("is_hidden"))
        deprecated = False
        permission_level = "unlimited"
        user_verified = True
        timeout = 0
    else:
        conf = preset.comp_conf
        description = conf.get("label") or (_component_doc_label(root, served.component) if served.component else None) or served.name
        description_en = conf.get("label_en") or ""
        hidden = _truthy(config.get("is_hidden"))
        deprecated = _truthy(config.get("is_deprecated"))
        permission_level = config.get("permission_level") if isinstance(config.get("permission_level"), str) else "unlimited"
        user_verified = config.get("verified_user_required", True) if isinstance(config.get("verified_user_required"), bool) else True
        timeout = config.get("timeout") if isinstance(config.get("timeout"), int) and config.get("timeout") > 0 else 0
        built = sorted(set(preset.keys) - set(config) - {"path"})
        if built:
            notes.append(f"config built in code, not exported: {', '.join(built)} (who may call it is the gateway's "
                         "permission now)")
    host_setting = None
    backend_method = backend_path = None
    try:
        if served.channel is not None:
            dest = destination(root, system, served.channel, settings=settings, routings=routings)
        else:
            dest = preset_destination(root, system, preset, settings=settings, routings=routings)
    except EsbgenError as error:
        dest = None
        unmapped = f"its component cannot be read ({error})"
    if dest is not None:
        host_setting = dest.host_setting
        backend_method = dest.method.upper() if isinstance(dest.method, str) else None
        backend_path = dest.path
        if backend_path is None or backend_method is None:
            if host_setting is None:
                unmapped = "a Python component with its own logic, not a proxy: its code builds the backend call"
            else:
                unmapped = (f"a proxy component ({served.component.class_name}), but the channel names no dest_path "
                            "or dest_http_method for it")
        elif host_setting is None:
            unmapped = "the component's code does not show which host it calls"
    path_vars: list[PathVar] = []
    for var in PATH_VAR_RE.findall(served.path):
        path_vars.append(PathVar(var, "path"))
    if backend_path is not None:
        for var in PATH_VAR_RE.findall(backend_path):
            if var not in [v.name for v in path_vars]:
                path_vars.append(PathVar(var, "request"))
    bad = [v.name for v in path_vars if not PATH_VAR_NAME_RE.fullmatch(v.name)]
    if bad and not unmapped:
        unmapped = f"path variable(s) {', '.join(bad)} are not names the gateway accepts"
    requested = [v.name for v in path_vars if v.origin == "request"]
    if requested:
        notes.append(f"{', '.join(requested)}: a request parameter on the ESB, now part of the URL path")
    if unmapped:
        backend_method = backend_method or (served.method or "ANY")
        backend_path = backend_path or path_below_system(served.path, system.name)
    elif served.method and backend_method != served.method.upper():
        notes.append(f"called with {served.method.upper()}, forwarded with {backend_method}, as the ESB did; "
                     "the gateway passes the request on as it comes (the ESB rebuilt it)")
    elif not served.method:
        notes.append(f"any method on the ESB (ANY on the gateway); the backend is called with {backend_method}")
    return Operation(
        esb_path=served.path, esb_method=served.method.upper(), name="", channel_name=served.name, path="",
        description=str(description), description_en=str(description_en), is_public=not (hidden or deprecated),
        backend="default", backend_method=backend_method, backend_path=backend_path, timeout=timeout,
        app_verified=True, resource_permission=permission_level != "unlimited", user_verified=bool(user_verified),
        host_setting=host_setting, path_vars=path_vars, unmapped=unmapped, notes=notes,
        docs=_docs_of(root, system, served),
    )


def _name_and_place(operations: list[Operation], system: str) -> None:
    """Resource names (unique, also without regard to case) and paths (unique per method; ANY alone on its path)."""
    names: set[str] = set()
    for op in operations:
        name = _resource_name(op.channel_name, system)
        if name is None or name.lower() in names:
            fallback = _fallback_name(op.method, op.esb_path)
            if name is not None:
                op.notes.append(f"resource named {fallback}: {name} is taken by another channel")
            else:
                op.notes.append(f"resource named {fallback}: {op.channel_name!r} is not a resource name")
            name = fallback
        if name.lower() in names or not RESOURCE_NAME_RE.fullmatch(name):
            raise EsbgenError(f"{op.esb_path}: no unique resource name for channel {op.channel_name!r}")
        names.add(name.lower())
        op.name = name
    taken: dict[str, set[str]] = {}
    for op in operations:
        for candidate in (path_below_system(op.esb_path, system), _without_system(op.esb_path, system), op.esb_path):
            path = candidate + "".join(f"{{{v.name}}}/" for v in op.path_vars if v.origin == "request")
            methods = taken.get(path, set())
            if op.method in methods or (methods and (op.method == "ANY" or "ANY" in methods)):
                continue
            break
        else:
            raise EsbgenError(f"{op.esb_path}: no free gateway path for it")
        taken.setdefault(path, set()).add(op.method)
        op.path = path


def default_gateway_name(system: str) -> str:
    name = system.replace("_", "-")
    return name if name.startswith("bk-") else f"bk-{name}"


# --- writing -------------------------------------------------------------------------------------------


def _yaml_text(data) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.sort_base_mapping_type_on_output = False
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _verbatim(header: str, body: str) -> str:
    """YAML that apigw-manager's Django template rendering gives back as written (labels may hold ``{{ }}``)."""
    end = f"{{% endverbatim {VERBATIM} %}}"
    if end in body:
        raise EsbgenError(f"a text of the system contains {end!r}, which the export cannot keep verbatim")
    return f"{header}# {{% verbatim {VERBATIM} %}}\n{body}# {end}\n"


def _definition(export: Export, registered: dict, grant_apps: tuple[str, ...]) -> str:
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
        "resource_docs": {"basedir": "docs/"},
    }
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
                    "description": (f"was the request parameter {var.name} on the ESB" if var.origin == "request"
                                    else f"part of the ESB path {op.esb_path}"),
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
        if op.unmapped:
            resource["disabledStages"] = [export.stage]
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


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _render(export: Export, registered: dict, grant_apps: tuple[str, ...]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    doc_notes: list[str] = []
    for op in export.operations:
        for language, source in sorted(op.docs.items()):
            if source is None:
                doc_notes.append(f"- `{op.name}`: no {language} doc on the ESB (the gateway shows none)")
                continue
            data, left = _doc((export.root / source).read_bytes())
            files[f"docs/{language}/{op.name}.md"] = data
            if left:
                doc_notes.append(f"- `docs/{language}/{op.name}.md`: ESB template text the gateway shows as written "
                                 f"(it renders no `.md` doc): {', '.join(f'`{t}`' for t in left)}")
    files["definition.yaml"] = _definition(export, registered, grant_apps).encode()
    files["resources.yaml"] = _resources(export).encode()
    files["migration.csv"] = _csv(export).encode()
    files["MIGRATION.md"] = _migration(export, doc_notes).encode()
    files["manage.py"] = MANAGE_PY.encode()
    files["apigw_settings.py"] = SETTINGS_PY.format(gateway=export.gateway).encode()
    manifest = {
        "system": export.system,
        "gateway": export.gateway,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
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
                         "needs-hand" if op.unmapped else "mapped", "; ".join(([op.unmapped] if op.unmapped else []) + op.notes)])
    return out.getvalue()


def _migration(export: Export, doc_notes: list[str]) -> str:
    g, s = export.gateway, export.stage
    lines = [
        f"# Moving {export.system_name} from the ESB to the API gateway `{g}`",
        "",
        f"Written by `esbgen export-apigw {export.system}` from the ESB at `{export.root.name}` "
        f"({len(export.operations)} channels, {len(export.unmapped)} needing a hand).",
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
    for command in COMMANDS:
        flags = {"sync_apigw_resources": " -f resources.yaml",
                 "create_version_and_release_apigw": f" -f definition.yaml -s {s}"}.get(command, " -f definition.yaml")
        lines.append(f".venv/bin/python manage.py {command} --gateway-name {g}{flags}")
    lines += [
        "```",
        "",
        "1. `sync_apigw_config` creates the gateway (or updates its description and maintainers).",
        f"2. `sync_apigw_stage` creates stage `{s}` and its backend hosts.",
        "3. `sync_apigw_resources` creates one resource per channel from `resources.yaml`.",
        "4. `sync_resource_docs_by_archive` uploads `docs/zh` and `docs/en`.",
        f"5. `create_version_and_release_apigw` makes version 1.0.0 and publishes it to `{s}`: only now can apps call it.",
        "",
        "Then grant the apps that called the ESB (`grant_permissions` in `definition.yaml`, or the gateway's web page),",
        "move each caller to its new URL below, and take the channel off the ESB once nobody calls it there.",
        "The gateway checks the calling app on every resource, as the ESB did; callers send `bk_app_code` and",
        "`bk_app_secret` (and `bk_token` or `bk_username`) in the `X-Bkapi-Authorization` header.",
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
        notes = "; ".join(([f"**needs a hand**: {op.unmapped}"] if op.unmapped else []) + op.notes)
        lines.append(f"| `{op.esb_url}` | {op.esb_method or 'any'} | `{op.gateway_url(g, s)}` | {op.method} | `{op.name}` | "
                     f"{op.backend_method} `{op.backend}{op.backend_path}` | {_cell(notes)} |")
    lines += ["", "## Needing a hand", ""]
    if export.unmapped:
        lines.append(f"These resources are exported with what the ESB shows, and disabled in stage `{s}`"
                     " (`disabledStages`) until their backend is set by hand in `resources.yaml`:")
        lines.append("")
        lines += [f"- `{op.name}` (`{op.esb_path}`): {op.unmapped}" for op in export.unmapped]
    else:
        lines.append("None: every channel forwards to its backend as a proxy, and its resource does the same.")
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
        raise EsbgenError(f"{output} is inside the ESB's {COMPONENTS}/; write the export elsewhere")
    if out == esb or out in esb.parents:
        raise EsbgenError(f"{output} holds the ESB root {root}; write the export elsewhere")
    if not out.exists():
        return False, {}
    if not out.is_dir():
        raise EsbgenError(f"{output} is not a folder")
    if not any(out.iterdir()):
        return False, {}
    manifest_path = out / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        listed = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise EsbgenError(f"{output} is not empty and holds no export of esbgen; choose an empty or new folder") from None
    if manifest.get("system") != system:
        raise EsbgenError(f"{output} holds the export of {manifest.get('system')!r}, not of {system!r}")
    edited = []
    for name, digest in sorted(listed.items()):
        path = out / name
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            edited.append(name)
    if edited:
        raise EsbgenError(f"{output}: {', '.join(edited)} changed since the last export; move the changes away "
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
        for name, data in export.files.items():
            path = stage / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
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

"""The rules the ESB enforces (often silently); ``clone``, ``new`` and ``check`` all use them."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esbgen.errors import EsbgenError, Refused, UsageError
from esbgen.esb.layout import APIDOCS, ESB_CONF, SYSTEM_CONFIGS
from esbgen.edit.python import source_segment

if TYPE_CHECKING:
    from pathlib import Path

    from esbgen.esb.model import Channel, ComponentClass, ComponentSet, EsbTree, PresetChannel

SYSTEM_FOLDER_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
APP_CODE_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
APP_PATH_RE = re.compile(r"^/o/([a-z][a-z0-9_-]*)(?:/|$)")
CHANNEL_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")

REQUIRED_FIELDS = ("path", "name", "label", "comp_codename", "dest_path", "dest_http_method")
CHOICES = {
    "method": ("GET", "POST", "PUT", "DELETE", "PATCH"),
    "suggest_method": ("GET", "POST"),
    "api_type": ("query", "operate"),
    "dest_http_method": ("GET", "POST", "PUT", "DELETE", "PATCH"),
}
DOC_LANGUAGES = ("en", "zh_hans")

# Systems the ESB ships; a clone must not take their names.
OFFICIAL_SYSTEMS = frozenset(
    {
        "BK_LOGIN", "BK_PAAS", "CC", "GSE", "JOB", "JOBV3", "CMSI", "SOPS", "MONITOR", "MONITOR_V3",
        "ESB", "FTA", "ITSM", "NODEMAN", "GSEKIT", "USERMANAGE", "BK_LOG", "BK_DOCS_CENTER",
        "BK_PAAS_V3", "CICDKIT", "DATA", "BSCP", "IAM", "AUTH", "HEARTBEAT", "QCLOUD_SMS",
        "QCLOUD_VOICE", "WEIXIN", "WEIXIN_MP", "WEIXIN_QY",
    }
)

# Settings of the platform's own entrance, shared by every app behind it: a clone of a system that
# reaches its app through one of them (``/o/<app>/...`` on PAAS_HOST) keeps it and moves the app prefix.
SHARED_SETTINGS = frozenset({"PAAS_HOST", "BK_PAAS_HOST", "BK_PAAS_INNER_HOST"})

# Names of settings a component reads for its backend's address: ``BK_SOPS_URL``, ``USERMGR_HOST``,
# ``HOST_CC_V3``, ``GSE_PROC_HOST`` with its ``GSE_PROC_PORT``, ``BK_BSCP_API_ADDR``.
HOST_SETTING_RE = re.compile(r"^(HOST_[A-Z0-9_]+|[A-Z0-9_]*_(URL|HOST|ADDR|PORT))$")

# The words (between underscores) that make any setting a host setting where wrongly taking a value
# costs more than wrongly keeping one (``ALLOWED_HOSTS``, ``BK_LOGIN_DOMAIN``, ``ESB_IP``), and the
# values that show one whatever its name: a URL, an IPv4 address, ``localhost``, ``name:port``.
HOST_WORDS = frozenset({"HOST", "HOSTS", "URL", "URLS", "URI", "DOMAIN", "ADDR", "ADDRESS", "IP", "PORT", "ENDPOINT"})
HOST_VALUE_RE = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://\S*"  # a URL
    r"|(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?"  # an IPv4 address, maybe with a port
    r"|localhost(?::\d{1,5})?"
    r"|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*:\d{1,5}"  # name:port
)

# A setting name a plugin may give: an upper-case Python identifier, as Django reads settings.
SETTING_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*")

NON_COMPONENT_DIRS = frozenset({"toolkit", "apidoc", APIDOCS})


def snake_case(class_name: str) -> str:
    """The ESB's component name of a class: an underscore before each capital, lower case."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", class_name).lower()


def component_codename(prefix: str, system_name: str, class_name: str) -> str:
    return f"{prefix}{system_name.lower()}.{snake_case(class_name)}"


V2_PREFIX = "/v2"


def standard_path(system_folder: str, name: str, *, v2: bool = True) -> str:
    """The path the ESB serves a channel at: ``/v2/<system>/<name>/`` (``/<system>/<name>/`` for v1)."""
    return f"{V2_PREFIX if v2 else ''}/{system_folder}/{name}/"


def standard_path_parts(system: Any, name: str, *, v2: bool = True, last_slash: bool = True) -> list[Any]:
    """``standard_path`` as parts with ``system`` standing alone (a template variable of a clone);
    ``last_slash`` False leaves off the slash a source left off (the ESB adds it itself)."""
    return [f"{V2_PREFIX if v2 else ''}/", system, f"/{name}/" if last_slash else f"/{name}"]


def is_v2_path(path: str) -> bool:
    """Whether a channel path is in the v2 form (``/v2/...``, or ``v2/...`` before the ESB adds its slash)."""
    return ("/" + path.lstrip("/")).startswith(V2_PREFIX + "/")


def path_below_system(esb_path: str, system: str) -> str:
    """The ESB path without ``/v2`` and the system: ``/v2/sops/get_template_list/`` -> ``/get_template_list/``."""
    parts = [p for p in esb_path.strip("/").split("/") if p]
    if parts[:1] == [V2_PREFIX.strip("/")]:
        parts = parts[1:]
    if parts[:1] and parts[0].lower() == system:
        parts = parts[1:]
    return "/" + "/".join(parts) + "/" if parts else "/"


def path_pattern(system_folder: str, name: str) -> re.Pattern[str]:
    return re.compile(rf"^({re.escape(V2_PREFIX)})?/{re.escape(system_folder)}/{re.escape(name)}/$")


def host_setting_reason(name: str, *value_codes: str, cautious: bool = False) -> str | None:
    """Why a setting is a host setting, or None: the one definition, in two strengths.

    By default (``clone``, ``new``, ``retarget``, ``export-apigw``): a name of the forms a
    component reads its backend's address by (``HOST_SETTING_RE``). Each such setting the
    source reads becomes one the clone reads and the operator must define, so the test is
    narrow: ``ALLOWED_HOSTS`` or ``ESB_IP`` are no backend of a component.

    ``cautious`` (``sync-edition``, which keeps the target's value of a host setting): also
    any name with a word of ``HOST_WORDS``, and any setting whose value (``value_codes``, the
    Python source of each side's value) holds a URL or host. Wrongly keeping a value costs a
    line of review; wrongly taking one points a production ESB at the CE's hosts.
    """
    if not cautious:
        return f"host setting: {name} names a backend's address" if HOST_SETTING_RE.match(name) else None
    # every name HOST_SETTING_RE takes has one of these words, so the cautious test takes it too
    for word in name.upper().split("_"):
        if word in HOST_WORDS:
            return f"host setting: {word} in its name"
    for code in value_codes:
        for value in _string_constants(code):
            if HOST_VALUE_RE.fullmatch(value.strip()):
                return f"host setting: {value.strip()!r} is a URL or host"
    return None


def _string_constants(code: str) -> list[str]:
    import ast

    try:
        tree = ast.parse("(\n" + code + "\n)", mode="eval")
    except SyntaxError:
        return []
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def is_host_setting(name: str) -> bool:
    """Whether a component reads ``name`` for its backend's address (``host_setting_reason``'s narrow test)."""
    return host_setting_reason(name) is not None


def validate_system_folder(name: str, what: str = "system name") -> str:
    if not name:
        raise UsageError(f"{what} is empty")
    if "\x00" in name or "\n" in name or "\r" in name:
        raise UsageError(f"{what} {name!r} contains a control character")
    if "/" in name or "\\" in name or ".." in name:
        raise UsageError(f"{what} {name!r} must be a folder name, not a path")
    if not SYSTEM_FOLDER_RE.fullmatch(name):
        raise UsageError(
            f"{what} {name!r} is not valid: use a lower-case letter, then letters, digits or '_' (at most 64)"
        )
    return name


def validate_new_system(name: str) -> str:
    validate_system_folder(name, "new system name")
    if name.upper() in OFFICIAL_SYSTEMS:
        raise UsageError(f"{name.upper()} is an official ESB system; choose another name")
    return name


def validate_app_code(code: str) -> str:
    if not code or not APP_CODE_RE.fullmatch(code):
        raise UsageError(
            f"app code {code!r} is not valid: use a lower-case letter, then letters, digits, '-' or '_' (at most 32)"
        )
    return code


# Column sizes of the ESB's tables a value must fit: esb_component_system's, and an app code's.
SYSTEM_COLUMNS = {"name": 64, "label": 128}
APP_CODE_MAX = 32
REMARK_MAX_BYTES = 65535  # the later ESB's comment column (MySQL text); the legacy remark is a longtext


def validate_one_line(value: str | None, option: str, *, blank_ok: bool = True) -> str | None:
    """Free text (a label, a remark) goes into conf.py and the database: one line, no control character."""
    if value is not None and (any(_is_control(c) for c in value) or (not blank_ok and not value.strip())):
        raise UsageError(f"{option} must be one line of text (no line break nor control character)")
    return value


def _is_control(character: str) -> bool:
    import unicodedata

    return unicodedata.category(character) in ("Cc", "Zl", "Zp")


def validate_label(value: str | None, option: str = "--label", *, blank_ok: bool = True) -> str | None:
    """A system's label: one line that fits esb_component_system.label (the later ESB's description)."""
    validate_one_line(value, option, blank_ok=blank_ok)
    validate_system_columns(label=value)
    return value


def validate_remark(value: str | None, option: str = "--remark") -> str | None:
    """A system's remark: one line that fits the remark (the later ESB's comment) column."""
    validate_one_line(value, option)
    if value is not None and len(value.encode("utf-8")) > REMARK_MAX_BYTES:
        raise UsageError(f"{option} is longer than the {REMARK_MAX_BYTES} bytes the ESB's remark column holds")
    return value


URL_MAX = 2000
_HOST_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def host_problem(host: str) -> str | None:
    """Why ``host`` is not a host name, an IPv4 address or an IPv6 address; None when it is one."""
    import ipaddress

    if not host:
        return "is empty"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "is not an IPv6 address"
        return None
    labels = host.split(".")
    if all(label.isdigit() for label in labels if label):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return "is not an IPv4 address"
        return None
    if len(host) > 253:
        return "is too long for a host name"
    if not all(label.isascii() and _HOST_LABEL_RE.fullmatch(label) for label in labels):
        return "is not a host name or IP address"
    return None


def port_problem(text: str) -> str | None:
    """Why ``text`` is not a TCP port (1-65535); None when it is one."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        return "is not a port from 1 to 65535"
    return None


def validate_url(value: str, option: str, *, path_ok: bool = True) -> str:
    """An address an operator gives for a service: http or https, a host, an optional port 1-65535,
    (``path_ok``) an optional path; no user info (a password would land in a file), query nor fragment."""
    from urllib.parse import urlsplit

    def refuse(why: str) -> UsageError:
        shown = re.sub(r"(?<=://)[^/?#]*@", "***@", value)  # user info may hold a password: never shown
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        return UsageError(f"{option} {shown!r} {why}")

    like = "http://host[:port]" + ("[/path]" if path_ok else "")
    if len(value) > URL_MAX:
        raise refuse(f"is longer than {URL_MAX} characters")
    if any(_is_control(c) or c.isspace() or c in "'\"\\" for c in value):
        raise refuse(f"holds a space, a quote, a backslash or a control character; give an address like {like}")
    scheme, found, rest = value.partition("://")
    if not found or scheme not in ("http", "https"):
        raise refuse(f"is not an http:// or https:// address like {like}")
    try:
        parts = urlsplit(value)
    except ValueError as error:
        raise refuse(f"is not an address: {error}") from None
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise refuse("has a query or a fragment; give the address alone")
    if not path_ok and parts.path not in ("", "/"):
        raise refuse(f"has a path; give a scheme, a host and a port only, like {like}")
    netloc = parts.netloc
    if "@" in netloc:
        raise refuse("holds user info (user@ or user:password@); esbgen writes no credentials into a file")
    if netloc.startswith("["):
        host, close, after = netloc[1:].partition("]")
        if not close or (after and not after.startswith(":")):
            raise refuse("has a broken [IPv6] host")
        if ":" not in host:
            raise refuse("has a [host] that is not an IPv6 address")
        port = after[1:] if after else None
    else:
        host, colon, port_text = netloc.partition(":")
        port = port_text if colon else None
    problem = host_problem(host)
    if problem is not None:
        raise refuse(f"has no host" if not host else f"has a host {host!r} that {problem}")
    if port is not None:
        problem = port_problem(port)
        if problem is not None:
            raise refuse(f"has a port {port!r} that {problem}")
    return value


def validate_system_columns(**values: str | None) -> None:
    """A system's name and label fit the ESB's columns, whether a database is given or the sync writes the row."""
    for column, value in values.items():
        limit = SYSTEM_COLUMNS[column]
        if value is not None and len(value) > limit:
            raise UsageError(f"{column} {value!r} is longer than the {limit} characters of esb_component_system.{column}")


def default_app_code(system_folder: str) -> str:
    code = system_folder.replace("_", "-")
    if len(code) > APP_CODE_MAX:
        raise UsageError(f"the app code {code!r} made from the name is longer than {APP_CODE_MAX} characters; give --app-code")
    return code


def default_host_setting(system_folder: str) -> str:
    core = system_folder.upper()
    if core.startswith("BK_"):
        core = core[3:]
    return f"BK_{core}_URL"


def renamed_setting(old: str, source_system: str, target_system: str) -> str:
    """The clone's own name for a host setting of its source, in the source's naming style.

    The source's SYSTEM_NAME (or that name without ``BK_``) inside the setting's name becomes
    the clone's: ``BK_SOPS_URL`` -> ``BK_SOPS_CE_URL``, ``HOST_CC_V3`` -> ``HOST_CC_CE_V3``,
    ``GSE_PROC_HOST`` -> ``GSE_CE_PROC_HOST``; a name without it is prefixed with the clone's:
    ``USERMGR_HOST`` -> ``USERMANAGE_CE_USERMGR_HOST``.
    """
    source, target = source_system.upper(), target_system.upper()
    candidates = [(source, target)]
    if source.startswith("BK_"):
        candidates.append((source[3:], target[3:] if target.startswith("BK_") else target))
    for old_part, new_part in candidates:
        match = re.search(rf"(?:^|(?<=_)){re.escape(old_part)}(?=_|$)", old)
        if match:
            replacement = new_part
            if old[: match.start()].endswith("BK_") and replacement.startswith("BK_"):
                replacement = replacement[3:]
            return old[: match.start()] + replacement + old[match.end():]
    return f"{target}_{old}"


@dataclass(frozen=True)
class Problem:
    """Something the ESB would do silently to a system, with what it does (``message`` says it)."""

    where: str
    message: str
    code: str = ""  # the kind: skipped-entry, malformed, no-doc, path, codename, duplicate, folder, collision,
    #                unreadable, python2

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def key(self, system: str, system_name: str | None = None) -> tuple[str, str]:
        """The problem with its system's names taken out: a clone's inherited problem has its source's key."""
        names = {system.lower(), (system_name or system).lower()}
        # an entry without a name is told apart by where it stands (a clone keeps its file's lines);
        # a duplicate by its path, wherever the two declarations stand
        text = str(self) if self.code in ("skipped-entry", "no-doc") else re.sub(r" \(first at [^)]*\)", "", self.message)
        for name in sorted(names, key=len, reverse=True):
            text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", "{system}", text, flags=re.I)
        return self.code, text


def check_channel_fields(channel: Channel) -> list[Problem]:
    """What makes the ESB log and skip an entry.

    Worked out once a channel (a clone asks it of each entry up to eight times: its edits, its
    check, the tree's served paths); a channel's fields never change once read.
    """
    known = channel.__dict__.get("_flaws")
    if known is None:
        known = channel.__dict__["_flaws"] = tuple(_channel_flaws(channel))
    return list(known)


def known_flawless(channel: Channel) -> None:
    """Record that an entry has nothing the ESB skips it for, without working it out: a clone's entry
    made by edits of a flawless source entry (its required fields stay filled, its choices and name
    unedited)."""
    channel.__dict__["_flaws"] = ()


def _channel_flaws(channel: Channel) -> list[Problem]:
    problems = []
    fields, nested = channel.fields, channel.nested
    for key in REQUIRED_FIELDS:
        value = fields.get(key)
        if key in nested:
            problems.append(Problem(channel.where, f"required field {key!r} holds a list or mapping, not text", "malformed"))
        elif value is None or (isinstance(value, str) and not value.strip()):
            problems.append(Problem(channel.where, f"entry lacks required field {key!r}{SKIPS}", "skipped-entry"))
    for key, choices in CHOICES.items():
        value = fields.get(key)
        if value is not None and value not in choices:
            problems.append(
                Problem(channel.where, f"{key} {value!r} is not one of {', '.join(choices)}{SKIPS}", "skipped-entry")
            )
    name = fields.get("name")
    if isinstance(name, str) and name and not CHANNEL_NAME_RE.fullmatch(name):
        problems.append(Problem(channel.where, f"name {name!r} is not a component name (no URL can reach it)", "path"))
    return problems


SKIPS = " (the ESB logs it and skips the entry)"


def normalised_path(path: str) -> str:
    """A confapis path as the ESB stores it: one slash each side.

    A path already so is given back itself, not an equal copy: the served channels of a system
    and of its clone, kept for the run, would otherwise hold 40,000 copies at 20,000 channels.
    """
    found = "/%s/" % path.strip("/")
    return path if found == path else found


@dataclass(slots=True)
class Served:
    """A channel the ESB's sync makes a row of: path and method, the component, where it is declared.

    Slots: a system's served channels are kept for the run (``_remembered``), 20,000 of them and as
    many of its clone's.
    """

    path: str
    method: str
    name: str
    codename: str
    component: ComponentClass | None
    where: str
    channel: Channel | None = None  # a confapis entry
    preset: PresetChannel | None = None  # an esb_conf.py preset or a conf.py CHANNELS entry


def preset_name(preset: PresetChannel, component: ComponentClass | None) -> str:
    """The ESB's name of a Python-declared channel: its comp_conf ``name``, else the component's own."""
    name = preset.comp_conf.get("name")
    if isinstance(name, str) and name:
        return name
    if component is not None:
        return component.alias or component.component_name
    return preset.codename.rsplit(".", 1)[-1]


def _legacy_row_of(preset: PresetChannel) -> bool:
    """Whether the legacy ESB's sync makes a row of a preset: not of a hidden or a deprecated one, nor of
    a ``/data/`` path (its router serves the esb_conf.py ones all the same: ``rowless_presets``)."""
    return not (preset.config.get("is_hidden") or preset.config.get("is_deprecated") or preset.path.startswith("/data/"))


def rowless_presets(tree: EsbTree, system: ComponentSet) -> list[PresetChannel]:
    """The esb_conf.py presets of a system its ESB serves without a row: the legacy router serves every
    preset of esb_conf.py's channel groups, row or not (hidden, deprecated and off-pattern ones have none);
    the later ESB serves rows only. ``conf.py`` CHANNELS are served through their rows alone."""
    if tree.generation != "legacy":
        return []
    rows = {(served.path, served.method) for served in served_channels(tree, system)[0]}
    found, seen = [], set()
    for preset in system.preset_channels:
        key = (preset.path, preset.method)
        if preset.source == str(ESB_CONF) and key not in rows and key not in seen \
                and importable(tree, system.component_by_codename(preset.codename)) is not None:
            seen.add(key)
            found.append(preset)
    return found


def served_calls(tree: EsbTree, system: ComponentSet) -> list[Served]:
    """Every channel a call reaches through the tree's ESB: the rows its sync makes, then the presets
    its router serves without a row (``rowless_presets``)."""
    calls = served_channels(tree, system)[0]
    for preset in rowless_presets(tree, system):
        component = system.component_by_codename(preset.codename)
        calls.append(Served(preset.path, preset.method, preset_name(preset, component), preset.codename, component,
                            preset.where, preset=preset))
    return calls


def _legacy_skips(system: ComponentSet, path: str, name: str) -> bool:
    """The legacy ESB's sync leaves out paths off the standard pattern (check says so)."""
    return not follows_path_pattern((system.system_name or system.name).lower(), name, path)


def importable(tree: EsbTree, component: ComponentClass | None) -> ComponentClass | None:
    """The component, if the tree's ESB can import its module (the later ESB runs Python 3 only)."""
    if component is not None and not component.python3 and tree.generation == "later":
        return None
    return component


def _state(tree: EsbTree, system: ComponentSet) -> tuple:
    """What a system's rules are worked out from, as identities and sizes: the tree and the system are
    filled in while read, then only read, so a memo made from the same state holds."""
    return (tree.generation, id(tree.preset_channels), len(tree.preset_channels), id(system.channels),
            len(system.channels), id(system.components), len(system.components), id(system.preset_channels),
            len(system.preset_channels), system.name, system.system_name, system.confapis_dir)


def _remembered(tree: EsbTree, system: ComponentSet, what: str, work):
    """``work(tree, system)``, done once for the same tree and system in their same state.

    A clone asks both of the source (its own check, the served paths of the tree) and of the
    rendered clone (its check, its served paths): at 20,000 channels each was worked out twice.
    The memo lives on the system and knows its tree by a weak reference: a strong one would make
    a cycle (tree, system, memo) that keeps the rendered clone's tree alive after its check.
    """
    import weakref

    memo = system.__dict__.setdefault("_esbgen_rules", {})
    state = _state(tree, system)
    known = memo.get(what)
    if known is not None and known[0]() is tree and known[1] == state:
        return known[2]
    found = work(tree, system)
    memo[what] = (weakref.ref(tree), state, found)
    return found


def served_channels(tree: EsbTree, system: ComponentSet) -> tuple[list[Served], list[Problem]]:
    """What the ESB's sync makes of a system's channels, in its order: esb_conf.py presets, conf.py
    CHANNELS, then confapis entries; and what it drops on the way, each as a Problem."""
    served, dropped = _remembered(tree, system, "served", _served_channels)
    return list(served), list(dropped)


def _served_channels(tree: EsbTree, system: ComponentSet) -> tuple[list[Served], list[Problem]]:
    served: list[Served] = []
    dropped: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    for preset in system.preset_channels:
        if tree.generation == "legacy" and not _legacy_row_of(preset):
            continue
        component = importable(tree, system.component_by_codename(preset.codename))
        if component is None:
            dropped.append(Problem(preset.where, f"channel {preset.path} points at {preset.codename!r}, which is no "
                                   f"component of {system.name} (the ESB logs it and skips the channel)", "codename"))
            continue
        name = preset_name(preset, component)
        if tree.generation == "legacy" and _legacy_skips(system, preset.path, name):
            continue
        key = (preset.path, preset.method)
        if key in seen:
            dropped.append(Problem(preset.where, f"channel {preset.path} is declared again (first at {seen[key]}); "
                                   "the ESB keeps one row for it", "duplicate"))
            continue
        seen[key] = preset.where
        served.append(Served(preset.path, preset.method, name, preset.codename, component,
                             preset.where, preset=preset))
    esb_conf_paths = {preset.path for preset in tree.preset_channels}
    for channel in system.default_channels():
        if any(p.code == "skipped-entry" for p in check_channel_fields(channel)):
            continue  # said by check_system
        path = normalised_path(channel.path)
        if tree.generation == "legacy" and channel.get("is_hidden") in ("true", "True", "yes"):
            continue
        if path in esb_conf_paths:
            dropped.append(Problem(channel.where, f"path {path} is a preset channel of {ESB_CONF.name} (the ESB ignores this entry)", "duplicate"))
            continue
        key = (path, (channel.get("method") or "").upper())
        where = channel.where
        if key in seen:
            dropped.append(Problem(where, f"duplicate path {channel.path!r} (first at {seen[key]}); the ESB ignores it", "duplicate"))
            continue
        seen[key] = where
        component = importable(tree, system.component_by_codename(channel.codename))
        if component is None:
            dropped.append(Problem(where, f"comp_codename {channel.codename!r} resolves to no component of "
                                   f"{system.name} (the ESB logs it and skips the entry)", "codename"))
            continue
        if tree.generation == "legacy" and _legacy_skips(system, path, channel.name):
            continue
        served.append(Served(path, key[1], channel.name, channel.codename, component, where, channel=channel))
    return served, dropped


def follows_path_pattern(system_folder: str, name: str, path: str) -> bool:
    """``path_pattern(...).match(path)``, without compiling a pattern for the usual two spellings."""
    if path == standard_path(system_folder, name) or path == standard_path(system_folder, name, v2=False):
        return True
    return path_pattern(system_folder, name).match(path) is not None


def _doc_files(tree: EsbTree, system: ComponentSet) -> dict[str, set[str]]:
    """Names of the regular files (links followed) in each apidocs/<language>/ folder: one listing, not a stat per doc."""
    planned = tree.planned_docs.get(system.name) if tree.planned_docs is not None else None
    if planned is not None:
        return {language: set(planned.get(language, ())) for language in DOC_LANGUAGES}
    found: dict[str, set[str]] = {}
    for language in DOC_LANGUAGES:
        names: set[str] = set()
        if system.confapis_dir is not None:
            try:
                with os.scandir(tree.root / system.confapis_dir / APIDOCS / language) as entries:
                    names = {entry.name for entry in entries if entry.is_file()}
            except OSError:
                pass
        found[language] = names
    return found


def check_system(tree: EsbTree, system: ComponentSet) -> list[Problem]:
    """Everything the ESB would do silently to this system's channels and docs."""
    return list(_remembered(tree, system, "check", _check_system))


def _check_system(tree: EsbTree, system: ComponentSet) -> list[Problem]:
    problems: list[Problem] = []
    for folder in system.python_dirs or ([system.python_dir] if system.python_dir else []):
        side_name = system.side_names.get(folder, system.system_name)
        if side_name is None:
            problems.append(Problem(str(folder), f"{SYSTEM_CONFIGS} has no SYSTEM_NAME (the ESB files its components under UNKNOWN)", "folder"))
        elif side_name.lower() != system.name:
            problems.append(
                Problem(
                    str(folder),
                    f"folder {system.name!r} does not equal SYSTEM_NAME.lower() {side_name.lower()!r}"
                    " (the ESB finds no docs for it)",
                    "folder",
                )
            )
    for where in system.unreadable:
        problems.append(Problem(where, "no Python parser reads this file (the ESB cannot import it)", "unreadable"))
    if tree.generation == "later":
        for component in system.components:
            if not component.python3:
                problems.append(Problem(f"{component.module}:{component.line}", f"{component.class_name} is written for "
                                        "Python 2 (the later ESB cannot import it; its channels are skipped)", "python2"))
    docs = _doc_files(tree, system)
    for channel in system.channels:
        flaws = check_channel_fields(channel)
        problems.extend(flaws)
        if channel.run_mode is not None or any(p.code == "skipped-entry" for p in flaws):
            continue  # an override counts only where RUN_MODE names its folder; a skipped entry serves nothing  # an override replaces a default entry only when RUN_MODE names its folder
        path, name = channel.path, channel.name
        if isinstance(path, str) and isinstance(name, str) and path and not follows_path_pattern(system.name, name, normalised_path(path)):
            problems.append(Problem(channel.where, f"path {path!r} is not {standard_path(system.name, name)}{MISPLACED}", "path"))
        if system.confapis_dir is not None and isinstance(name, str) and name:
            for language in DOC_LANGUAGES:
                if f"{name}.md" not in docs[language]:
                    problems.append(
                        Problem(channel.where, f"no {language} apidoc for {name!r} (the ESB shows an empty doc)", "no-doc")
                    )
    served, dropped = served_channels(tree, system)
    problems.extend(dropped)
    for channel in served:
        if channel.preset is None:
            continue
        if not follows_path_pattern(system.name, channel.name, channel.path):
            problems.append(Problem(channel.where, f"path {channel.path!r} is not {standard_path(system.name, channel.name)} "
                                    f"nor {standard_path(system.name, channel.name, v2=False)}{MISPLACED}", "path"))
    return problems


MISPLACED = " (the legacy ESB skips it, the later one serves it at that URL)"

# What the ESB lives with, as its public trees ship it: an entry it logs and skips (the others are
# served), a channel without apidoc (an empty doc), a path declared twice (kept once).
TOLERATED = frozenset({"skipped-entry", "no-doc", "duplicate"})


def tolerated(tree: EsbTree, problem: Problem) -> bool:
    """Whether the ESB of this tree's generation serves on despite ``problem``: ``check`` lists it as a note.

    A path off the standard pattern is served at that URL by the later ESB; the legacy one skips it."""
    if problem.code in TOLERATED:
        return True
    return problem.code == "path" and tree.generation == "later" and problem.message.endswith(MISPLACED)


def served_paths(tree: EsbTree, skip: set[str] = frozenset()) -> dict[tuple[str, str], list[str]]:
    """Every (path, method) the ESB serves, with the systems that serve it."""
    owners: dict[tuple[str, str], list[str]] = {}
    for name, system in tree.systems.items():
        if name in skip:
            continue
        for channel in served_channels(tree, system)[0]:
            owners.setdefault((channel.path, channel.method), []).append(name)
    return owners


def check_path_collisions(tree: EsbTree, systems: list[str] | None = None) -> list[Problem]:
    problems = []
    for (path, method), owners in sorted(served_paths(tree).items()):
        distinct = sorted(set(owners))
        if len(distinct) > 1 and (systems is None or set(distinct) & set(systems)):
            problems.append(Problem(path, f"channel path{' (' + method + ')' if method else ''} served by more than one system: "
                                    f"{', '.join(distinct)} (the ESB keeps one row, whose system depends on the order)", "collision"))
    return problems


CLONED_FROM = re.compile(r"^Cloned from ([A-Z][A-Z0-9_]*) by esbgen")


def clone_remark(source: ComponentSet) -> str:
    """The remark a clone is registered with; ``clone_source`` reads its source back from it."""
    return f"Cloned from {(source.system_name or source.name).upper()} by esbgen"


def clone_source(tree: EsbTree, system: ComponentSet, registered: dict | None = None) -> ComponentSet | None:
    """The system a clone was made from, as its registration's remark records it (``registered``:
    the registrations to read it from, when not the tree's)."""
    entry = (tree.registered if registered is None else registered).get((system.system_name or system.name).upper())
    remark = entry.fields.get("remark") if entry is not None else None
    match = CLONED_FROM.match(remark) if isinstance(remark, str) else None
    return tree.systems.get(match.group(1).lower()) if match else None


def check_tree(tree: EsbTree, systems: list[str] | None = None) -> tuple[list[Problem], list[tuple[str, Problem]]]:
    """Every problem of the systems (all by default) and their paths: (own, inherited).

    Problems a clone has because its source has them are inherited and kept apart.

    A clone is known by its registration's remark; its problem is inherited when the
    source has the same one (``Problem.key``, the systems' names taken out).
    """
    from esbgen import progress

    own: list[Problem] = []
    inherited: list[tuple[str, Problem]] = []
    names = systems or sorted(tree.systems)
    progress.phase("checking", len(names))
    for name in names:
        system = tree.systems.get(name)
        if system is None:
            raise Refused(f"no system {name!r} in {tree.root}")
        progress.tick()
        source = clone_source(tree, system)
        mine, theirs = own_and_inherited(tree, system, tree, source)
        own.extend(mine)
        inherited.extend((source.name, problem) for problem in theirs)
    own.extend(check_path_collisions(tree, systems))
    return own, inherited


def own_and_inherited(tree: EsbTree, system: ComponentSet, source_tree: EsbTree,
                      source: ComponentSet | None) -> tuple[list[Problem], list[Problem]]:
    """A system's problems, as its own and as those it inherits: the ones ``source`` (of
    ``source_tree``), the system it was cloned from, has too. ``esbgen check`` and the check
    before a clone is written both tell them so."""
    problems = check_system(tree, system)
    # a clean system needs no look at its source's problems
    known = ({p.key(source.name, source.system_name) for p in check_system(source_tree, source)}
             if source is not None and problems else set())
    own: list[Problem] = []
    inherited: list[Problem] = []
    for problem in problems:
        (inherited if problem.key(system.name, system.system_name) in known else own).append(problem)
    return own, inherited


# --- values plugins give, before they reach a file ----------------------------------------------------

def refuse_plugin_value(plugin: str, what: str, value: Any, why: str) -> EsbgenError:
    """The one line that names the plugin, the value it gave and what is wrong with it."""
    shown = repr(value) if len(repr(value)) <= 120 else repr(value)[:117] + "..."
    return EsbgenError(f"plugin {plugin!r} gave {what} {shown}, which {why}; nothing was written")


def is_setting_name(value: Any) -> bool:
    """An upper-case Python identifier, as a Django setting is named (a keyword never is)."""
    import keyword

    return isinstance(value, str) and SETTING_NAME_RE.fullmatch(value) is not None and not keyword.iskeyword(value)


def settings_assigned(root: Path) -> dict[str, str]:
    """The top-level names the tree's settings file assigns, with the source of each value; {} if unreadable."""
    import ast

    from esbgen.fsutil import read_input
    from esbgen.esb.layout import settings_file

    path = root / settings_file(root)
    try:
        text = read_input(path, settings_file(root)).decode("utf-8")
        module = ast.parse(text)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return {}
    found = {}
    for statement in module.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else (
            [statement.target] if isinstance(statement, ast.AnnAssign) and statement.value is not None else [])
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = source_segment(text, statement.value) or ""
    return found


def validate_host_setting_answer(plugin: str, value: Any, tree: EsbTree, target: str) -> str:
    """A plugin's ``esbgen_host_setting`` answer: a setting name, and not one the tree uses for something else.

    Something else is another system's host (the clone would call that system's app), or a
    setting of the settings file that is not a host (``DATABASES``, ``SECRET_KEY``, ``DEBUG``).
    """
    if not is_setting_name(value):
        raise refuse_plugin_value(plugin, "the host setting", value,
                                  "is not a setting name (an upper-case Python identifier: A-Z, 0-9, '_')")
    for name, system in sorted(tree.systems.items()):
        if name != target and value in system.settings_read and value not in SHARED_SETTINGS:
            raise refuse_plugin_value(plugin, "the host setting", value, f"system {name} reads for its own backend")
    assigned = settings_assigned(tree.root)
    if value in assigned and host_setting_reason(value, assigned[value], cautious=True) is None:
        from esbgen.esb.layout import settings_file

        raise refuse_plugin_value(plugin, "the host setting", value,
                                  f"{settings_file(tree.root)} uses for something else than a host")
    return value


def validate_host_settings_of_type(saas_type: Any, names: Any) -> list[str]:
    """``SaasType.host_settings``'s answer: setting names, each renamed for the clone and written into its code."""
    if not isinstance(names, (list, tuple)) or not all(is_setting_name(n) for n in names):
        raise Refused(f"SaaS type {saas_type.name!r} named the host settings {names!r}, which are not all setting "
                      "names (upper-case Python identifiers); nothing was written")
    return list(names)

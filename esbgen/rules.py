"""The rules the ESB enforces (often silently); ``clone``, ``new`` and ``check`` all use them."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from esbgen.errors import EsbgenError, UsageError

if TYPE_CHECKING:
    from esbgen.domain import Channel, ComponentSet, EsbTree

SYSTEM_FOLDER_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
APP_CODE_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
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

# Settings every system shares: a clone keeps them.
SHARED_SETTINGS = frozenset({"PAAS_HOST", "BK_PAAS_HOST", "BK_PAAS_INNER_HOST", "HOST_BK_LOGIN"})

NON_COMPONENT_DIRS = frozenset({"toolkit", "apidoc", "apidocs"})


def snake_case(class_name: str) -> str:
    """The ESB's component name of a class: an underscore before each capital, lower case."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", class_name).lower()


def component_codename(prefix: str, system_name: str, class_name: str) -> str:
    return f"{prefix}{system_name.lower()}.{snake_case(class_name)}"


def standard_path(system_folder: str, name: str) -> str:
    return f"/v2/{system_folder}/{name}/"


def path_pattern(system_folder: str, name: str) -> re.Pattern[str]:
    return re.compile(rf"^(/v2)?/{re.escape(system_folder)}/{re.escape(name)}/$")


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


def validate_one_line(value: str | None, option: str, *, blank_ok: bool = True) -> str | None:
    """Free text (a label, a remark) goes into conf.py and the database: one line, no NUL."""
    if value is not None and (any(c in value for c in "\x00\r\n") or (not blank_ok and not value.strip())):
        raise UsageError(f"{option} must be one line of text")
    return value


def default_app_code(system_folder: str) -> str:
    return system_folder.replace("_", "-")


def default_host_setting(system_folder: str) -> str:
    core = system_folder.upper()
    if core.startswith("BK_"):
        core = core[3:]
    return f"BK_{core}_URL"


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def check_channel_fields(channel: Channel) -> list[Problem]:
    """What makes the ESB log and skip an entry."""
    problems = []
    for key in REQUIRED_FIELDS:
        value = channel.get(key)
        if key in channel.nested:
            problems.append(Problem(channel.where, f"required field {key!r} holds a list or mapping, not text"))
        elif value is None or (isinstance(value, str) and not value.strip()):
            problems.append(Problem(channel.where, f"entry lacks required field {key!r}"))
    for key, choices in CHOICES.items():
        value = channel.get(key)
        if value is not None and value not in choices:
            problems.append(
                Problem(channel.where, f"{key} {value!r} is not one of {', '.join(choices)}")
            )
    name = channel.name
    if isinstance(name, str) and name and not CHANNEL_NAME_RE.fullmatch(name):
        problems.append(Problem(channel.where, f"name {name!r} is not a component name"))
    return problems


def follows_path_pattern(system_folder: str, name: str, path: str) -> bool:
    """``path_pattern(...).match(path)``, without compiling a pattern for the usual two spellings."""
    if path == f"/v2/{system_folder}/{name}/" or path == f"/{system_folder}/{name}/":
        return True
    return path_pattern(system_folder, name).match(path) is not None


def _doc_files(tree: EsbTree, system: ComponentSet) -> dict[str, set[str]]:
    """Names of the regular files (links followed) in each apidocs/<language>/ folder: one listing, not a stat per doc."""
    found: dict[str, set[str]] = {}
    for language in DOC_LANGUAGES:
        names: set[str] = set()
        if system.confapis_dir is not None:
            try:
                with os.scandir(tree.root / system.confapis_dir / "apidocs" / language) as entries:
                    names = {entry.name for entry in entries if entry.is_file()}
            except OSError:
                pass
        found[language] = names
    return found


def check_system(tree: EsbTree, system: ComponentSet) -> list[Problem]:
    problems: list[Problem] = []
    if system.python_dir is not None:
        if system.system_name is None:
            problems.append(Problem(str(system.python_dir), "toolkit/configs.py has no SYSTEM_NAME"))
        elif system.system_name.lower() != system.name:
            problems.append(
                Problem(
                    str(system.python_dir),
                    f"folder {system.name!r} does not equal SYSTEM_NAME.lower() {system.system_name.lower()!r}"
                    " (the ESB finds no docs for it)",
                )
            )
    seen: dict[tuple[str, str], Channel] = {}
    docs = _doc_files(tree, system)
    for channel in system.channels:
        problems.extend(check_channel_fields(channel))
        path, name, codename = channel.path, channel.name, channel.codename
        if isinstance(path, str) and isinstance(name, str) and not follows_path_pattern(system.name, name, path):
            problems.append(
                Problem(channel.where, f"path {path!r} is not /v2/{system.name}/{name}/ (the ESB skips or misplaces it)")
            )
        if isinstance(codename, str) and codename:
            if system.component_by_codename(codename) is None:
                problems.append(
                    Problem(channel.where, f"comp_codename {codename!r} resolves to no component of {system.name}")
                )
        key = (path or "", (channel.get("method") or "").upper())
        first = seen.get(key)
        if first is not None and first.run_mode == channel.run_mode and path:
            problems.append(Problem(channel.where, f"duplicate path {path!r} (first at {first.where}); the ESB ignores it"))
        else:
            seen.setdefault(key, channel)
        if system.confapis_dir is not None and isinstance(name, str) and name:
            for language in DOC_LANGUAGES:
                if f"{name}.md" not in docs[language]:
                    problems.append(
                        Problem(channel.where, f"no {language} apidoc for {name!r} (the ESB shows an empty doc)")
                    )
    for preset in system.preset_channels:
        if system.component_by_codename(preset.codename) is None:
            problems.append(
                Problem(preset.source, f"channel {preset.path} points at {preset.codename!r}, which is no component of {system.name}")
            )
    return problems


def check_path_collisions(tree: EsbTree, systems: list[str] | None = None) -> list[Problem]:
    problems = []
    for path, owners in sorted(tree.all_channel_paths().items()):
        distinct = sorted(set(owners))
        if len(distinct) > 1 and (systems is None or set(distinct) & set(systems)):
            problems.append(Problem(path, f"channel path declared by more than one place: {', '.join(distinct)}"))
    return problems


def check_tree(tree: EsbTree, systems: list[str] | None = None) -> list[Problem]:
    names = systems or sorted(tree.systems)
    problems: list[Problem] = []
    for name in names:
        system = tree.systems.get(name)
        if system is None:
            raise EsbgenError(f"no system {name!r} in {tree.root}")
        problems.extend(check_system(tree, system))
    problems.extend(check_path_collisions(tree, systems))
    return problems

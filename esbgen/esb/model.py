"""The ESB as esbgen sees it: plain data, read from files, never by importing ESB code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esbgen.esb.layout import APIS_GROUP, APISV2, APISV2_GROUP, TEMPLATES_GROUP

# Folders of ``components/`` that hold Python components, with the codename prefix the ESB gives them
# (the ``component_groups`` of its esb_conf.py). The v2 group comes first: it is a system's main side.
COMPONENT_GROUPS = {
    APISV2_GROUP: "generic.v2.",
    APIS_GROUP: "generic.",
    TEMPLATES_GROUP: "generic.",
}


@dataclass(slots=True)
class Span:
    """Where a YAML scalar's text stands in its file (character offsets, ruamel marks).

    Slots: a 20,000-channel system has 220,000 of them.
    """

    start: int
    end: int
    line: int  # 1-based
    style: str | None  # None for plain, '"' or "'" for quoted, '|' or '>' for block


@dataclass
class Channel:
    """One confapis entry: a path the ESB serves, mapped to a component."""

    file: Path  # relative to the ESB root
    line: int  # 1-based line of the entry
    fields: dict[str, Any]  # top-level scalar fields as text; nested values as None
    spans: dict[str, Span] = field(default_factory=dict)
    run_mode: str | None = None  # the RUN_MODE override folder it comes from, if any
    nested: frozenset[str] = frozenset()  # fields whose value is a list or mapping, not text

    def get(self, key: str) -> Any:
        return self.fields.get(key)

    @property
    def path(self) -> str | None:
        return self.fields.get("path")

    @property
    def name(self) -> str | None:
        return self.fields.get("name")

    @property
    def codename(self) -> str | None:
        return self.fields.get("comp_codename")

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class ComponentClass:
    """A component class found in a system's Python folder."""

    class_name: str
    module: Path  # relative to the ESB root
    line: int
    codename: str
    alias: str | None = None  # a class-level ``name = "..."``, which the ESB prefers to the class name
    python3: bool = True  # False: its module has Python 2 forms, which only the legacy ESB imports

    @property
    def component_name(self) -> str:
        """The last part of the codename: the class name in snake case."""
        return self.codename.rsplit(".", 1)[1]

    @property
    def prefix(self) -> str:
        """``generic.v2.`` or ``generic.``: the codename before the system part."""
        return "generic.v2." if self.codename.startswith("generic.v2.") else "generic."


@dataclass
class PresetChannel:
    """A channel declared in Python: a preset of esb_conf.py, or an entry of conf.py CHANNELS.

    ``form`` is ``"tuple"`` for ``(path, {config})``, whose whole config the ESB keeps,
    or ``"dict"`` for ``{"path": ..., "comp_codename": ...}``, of which it keeps those two keys.
    """

    path: str
    codename: str
    source: str  # the file it is declared in
    line: int = 0
    form: str = "tuple"
    config: dict[str, Any] = field(default_factory=dict)  # the config's values that are literals
    keys: tuple[str, ...] = ()  # every key of the config, literal or not
    code: str | None = None  # the config's source text (tuple form)
    codename_span: tuple[int, int] | None = None  # the codename literal, quotes included, inside ``code``
    names: frozenset[str] = frozenset()  # the names the config's code uses (validators built in code)
    group: str | None = None  # the esb_conf.py channel group it is listed in ("default", "esb" ...)

    @property
    def method(self) -> str:
        method = self.config.get("method")
        return method if isinstance(method, str) else ""

    @property
    def comp_conf(self) -> dict[str, Any]:
        conf = self.config.get("comp_conf")
        return conf if isinstance(conf, dict) else {}

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source

    @property
    def is_public(self) -> bool:
        return not (self.config.get("is_hidden") or self.config.get("is_deprecated"))


@dataclass
class ComponentSet:
    """A system's components: its Python folder and/or its confapis folder."""

    name: str  # folder name
    system_name: str | None  # SYSTEM_NAME of toolkit/configs.py
    python_dir: Path | None  # relative to the ESB root: the main Python side (bk/apisv2 if it has one)
    codename_prefix: str
    confapis_dir: Path | None
    components: list[ComponentClass] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    yaml_files: list[Path] = field(default_factory=list)
    settings_read: list[str] = field(default_factory=list)  # names read from django settings
    preset_channels: list[PresetChannel] = field(default_factory=list)
    python_dirs: list[Path] = field(default_factory=list)  # every Python side: bk/apisv2, bk/apis, generic/templates
    side_names: dict[Path, str | None] = field(default_factory=dict)  # SYSTEM_NAME of each side's toolkit/configs.py
    unreadable: list[str] = field(default_factory=list)  # Python files no parser reads (file:line)
    python2_files: list[str] = field(default_factory=list)  # Python files only the Python 2.7 grammar reads

    @property
    def kind(self) -> str:
        if self.confapis_dir is not None:
            return "confapis"
        return "python" if any(p.parent == APISV2 for p in self.python_dirs) else "python-v1"

    def component_by_codename(self, codename: str) -> ComponentClass | None:
        for component in self.components:
            if component.codename == codename:
                return component
        return None

    def default_channels(self) -> list[Channel]:
        """Channels of the default files (not RUN_MODE overrides)."""
        return [channel for channel in self.channels if channel.run_mode is None]


@dataclass
class RegisteredSystem:
    """An entry of SYSTEMS in components/generic/apis/conf.py."""

    name: str
    fields: dict[str, Any]


@dataclass
class EsbTree:
    """An ESB root and what esbgen read from it."""

    root: Path
    systems: dict[str, ComponentSet]
    registered: dict[str, RegisteredSystem]
    conf_channels: list[PresetChannel]
    preset_channels: list[PresetChannel]
    generation: str = "legacy"  # "legacy" (configs/default.py, Python 2.7) or "later" (conf/default.py, Python 3)
    unread_systems: list[str] = field(default_factory=list)  # SYSTEMS entries built in code ("file:line")
    # esb_conf.py's alias paths: (alias, the path it serves, channel group), e.g. /v2/cmsi/send_mail/ -> /cmsi/send_mail/
    rewrite_channels: list[tuple[str, str, str | None]] = field(default_factory=list)
    # system -> language -> apidoc file names: the docs a rendered clone holds once its copy is done,
    # known from its template while the copy is still under way (None: list them on disk)
    planned_docs: dict[str, dict[str, set[str]]] | None = None


@dataclass
class CloneTarget:
    """The system a clone creates."""

    name: str  # folder name, lower case
    app_code: str
    label: str
    host_setting: str  # the main one
    renamed_settings: dict[str, str] = field(default_factory=dict)  # each host setting of the source -> the clone's

    @property
    def system_name(self) -> str:
        return self.name.upper()



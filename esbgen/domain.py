"""The ESB as esbgen sees it: plain data, read from files, never by importing ESB code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Folders of ``components/`` that hold Python components, with the codename prefix the ESB gives them.
COMPONENT_GROUPS = {
    "bk/apisv2": "generic.v2.",
    "bk/apis": "generic.",
}


@dataclass
class Span:
    """Where a YAML scalar's text stands in its file (character offsets, ruamel marks)."""

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


@dataclass
class PresetChannel:
    """A channel declared in Python (esb_conf.py preset channels or conf.py CHANNELS)."""

    path: str
    codename: str
    source: str  # the file it is declared in


@dataclass
class ComponentSet:
    """A system's components: its Python folder and/or its confapis folder."""

    name: str  # folder name
    system_name: str | None  # SYSTEM_NAME of toolkit/configs.py
    python_dir: Path | None  # relative to the ESB root
    codename_prefix: str
    confapis_dir: Path | None
    components: list[ComponentClass] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    yaml_files: list[Path] = field(default_factory=list)
    settings_read: list[str] = field(default_factory=list)  # names read from django settings
    preset_channels: list[PresetChannel] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "confapis" if self.confapis_dir is not None else "python"

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

    @property
    def conf_path(self) -> Path:
        return self.root / CUSTOM_CONF

    def all_channel_paths(self) -> dict[str, list[str]]:
        """Every channel path served, with the systems (or files) that declare it."""
        owners: dict[str, list[str]] = {}
        for system in self.systems.values():
            for channel in system.default_channels():
                if channel.path:
                    owners.setdefault(channel.path, []).append(system.name)
        for preset in self.preset_channels + self.conf_channels:
            owners.setdefault(preset.path, []).append(preset.source)
        return owners


@dataclass
class CloneTarget:
    """The system a clone creates."""

    name: str  # folder name, lower case
    app_code: str
    label: str
    host_setting: str

    @property
    def system_name(self) -> str:
        return self.name.upper()


CUSTOM_CONF = Path("components/generic/apis/conf.py")

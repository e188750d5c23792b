"""What ``esb_conf.py`` says about its channels beyond their configs: the channel class of each group
(whose ``request_validators`` check every call that has none of its own) and the alias paths of
``rewrite_channels``.

Read with ``ast``; nothing of the ESB is imported.  A validator is known by the name of the class
the list calls (``AppAuthValidator()``), a channel class by its name in ``channel_classes["api"]``
and its ``request_validators`` in the module ``esb_conf.py`` imports it from.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from esbgen.esb.layout import ESB_CONF


@dataclass
class ChannelGroup:
    name: str
    channel_class: str | None  # channel_classes["api"]
    preset_lines: set[int] = field(default_factory=set)  # lines of its preset_channels entries
    rewrites: dict[str, str] = field(default_factory=dict)  # alias path -> the path it is served as


@dataclass
class EsbConf:
    groups: list[ChannelGroup]
    default_class: str | None  # the class of channels that come from rows alone (confapis, conf.py CHANNELS)
    class_validators: dict[str, tuple[str, ...] | None]  # channel class -> its validators (None: not readable)
    aliases: dict[str, str] = field(default_factory=dict)  # a name esb_conf.py imports a validator as -> its class

    def real(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.aliases.get(name, name) for name in names)

    def group_of(self, line: int) -> ChannelGroup | None:
        return next((g for g in self.groups if line in g.preset_lines), None)

    def validators_of_class(self, name: str | None) -> tuple[str, ...] | None:
        return self.class_validators.get(name) if name else None

    @property
    def rewrites(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for group in self.groups:
            found.update(group.rewrites)
        return found


def validator_names(node: ast.expr | None) -> tuple[str, ...] | None:
    """The classes a validators list calls (``[AppAuthValidator(), UserRequired()]``); None if it is no list."""
    if not isinstance(node, (ast.List, ast.Tuple)):
        return None
    names = []
    for element in node.elts:
        call = element.func if isinstance(element, ast.Call) else element
        names.append(call.attr if isinstance(call, ast.Attribute) else getattr(call, "id", "?"))
    return tuple(names)


def config_validators(code: str | None) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """A preset config's own ``request_validators`` (None: it sets none) and ``append_request_validators``."""
    if not code:
        return None, ()
    try:
        node = ast.parse(code.strip(), mode="eval").body
    except SyntaxError:
        return None, ()
    pairs = []
    if isinstance(node, ast.Dict):
        pairs = [(k.value if isinstance(k, ast.Constant) else None, v) for k, v in zip(node.keys, node.values)]
    elif isinstance(node, ast.Call):
        pairs = [(k.arg, k.value) for k in node.keywords]
    own = dict((k, v) for k, v in pairs if k)
    return validator_names(own.get("request_validators")), validator_names(own.get("append_request_validators")) or ()


def _string(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _dict_get(node: ast.Dict, key: str):
    return next((v for k, v in zip(node.keys, node.values) if _string(k) == key), None)


def _class_name(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def read_esb_conf(root: Path) -> EsbConf:
    path = root / ESB_CONF
    try:
        module = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return EsbConf([], None, {})
    groups: list[ChannelGroup] = []
    default_class = None
    for node in ast.walk(module):
        if not isinstance(node, ast.Dict):
            continue
        explicit = _dict_get(node, "default_channel_classes")
        if isinstance(explicit, ast.Dict):
            default_class = _class_name(_dict_get(explicit, "api"))
        groups_node = _dict_get(node, "channel_groups")
        if not isinstance(groups_node, ast.Dict):
            continue
        for key, value in zip(groups_node.keys, groups_node.values):
            if not isinstance(value, ast.Dict):
                continue
            classes = _dict_get(value, "channel_classes")
            group = ChannelGroup(_string(key) or "", _class_name(_dict_get(classes, "api")) if isinstance(classes, ast.Dict) else None)
            presets = _dict_get(value, "preset_channels")
            if isinstance(presets, (ast.List, ast.Tuple)):
                group.preset_lines = {element.lineno for element in presets.elts}
            rewrites = _dict_get(value, "rewrite_channels")
            if isinstance(rewrites, ast.Dict):
                group.rewrites = {_string(k): _string(v) for k, v in zip(rewrites.keys, rewrites.values)
                                  if _string(k) and _string(v)}
            groups.append(group)
    if default_class is None and groups:
        # the ESB's choice: the "default" group's class, else the first group's
        default_class = next((g.channel_class for g in groups if g.name == "default"), groups[0].channel_class)
    aliases = {a.asname: a.name for n in module.body if isinstance(n, ast.ImportFrom) for a in n.names if a.asname}
    return EsbConf(groups, default_class, _class_validators(root, module, {g.channel_class for g in groups} | {default_class}),
                   aliases)


def _class_validators(root: Path, module: ast.Module, names: set[str | None]) -> dict[str, tuple[str, ...] | None]:
    """``request_validators`` of each channel class, from the module esb_conf.py imports it from."""
    found: dict[str, tuple[str, ...] | None] = {}
    for node in module.body:
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        source = root.joinpath(*node.module.split(".")).with_suffix(".py")
        for alias in node.names:
            local = alias.asname or alias.name
            if local not in names:
                continue
            found[local] = None
            try:
                tree = ast.parse(source.read_bytes())
            except (OSError, SyntaxError, ValueError):
                continue
            cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == alias.name), None)
            for statement in cls.body if cls is not None else []:
                if isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "request_validators"
                                                             for t in statement.targets):
                    found[local] = validator_names(statement.value)
    return found

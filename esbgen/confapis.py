"""Reading confapis YAML files with the positions ruamel.yaml reports, for in-place edits."""

from __future__ import annotations

from pathlib import Path

from esbgen.domain import Channel, Span
from esbgen.errors import EsbgenError

MAX_YAML_BYTES = 64 * 1024 * 1024


def read_text(path: Path, label: str) -> str:
    data = path.read_bytes()
    if len(data) > MAX_YAML_BYTES:
        raise EsbgenError(f"{label}: file is larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB; refusing to read it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EsbgenError(f"{label}: not UTF-8 text (byte {error.start})") from None


def compose(text: str, label: str):
    """The node graph of a YAML document; aliases stay references (no expansion)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return YAML(typ="rt").compose(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = error.problem or error.context or "malformed YAML"
        context = error.context_mark
        if error.problem and error.context and context is not None and mark is not None and context.line != mark.line:
            problem += f" ({error.context} at line {context.line + 1})"
        raise EsbgenError(f"{label}{line}: malformed YAML: {problem}") from None
    except YAMLError as error:
        raise EsbgenError(f"{label}: malformed YAML: {error}") from None


def channels_of(root: Path, relpath: Path, run_mode: str | None = None) -> list[Channel]:
    """The entries of one confapis file, each with the spans of its scalar values."""
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    label = str(relpath)
    text = read_text(root / relpath, label)
    document = compose(text, label)
    if document is None:
        return []
    if not isinstance(document, SequenceNode):
        raise EsbgenError(f"{label}:{document.start_mark.line + 1}: the file is not a list of channels")
    channels = []
    for item in document.value:
        line = item.start_mark.line + 1
        if not isinstance(item, MappingNode):
            raise EsbgenError(f"{label}:{line}: a channel entry is not a mapping")
        fields: dict = {}
        spans: dict[str, Span] = {}
        for key_node, value_node in item.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = key_node.value
            if isinstance(value_node, ScalarNode):
                fields[key] = None if value_node.tag.endswith(":null") else value_node.value
                spans[key] = Span(
                    value_node.start_mark.index,
                    value_node.end_mark.index,
                    value_node.start_mark.line + 1,
                    value_node.style,
                )
            else:
                fields[key] = None
        channels.append(Channel(relpath, line, fields, spans, run_mode))
    return channels

"""Files consul-template renders: BlueKing 6 makes ``paas.conf`` from a template, so an edit of the file
itself lasts only until the next render. Such a file is refused, naming its template.

A file is rendered when the templates folder (``/etc/consul-template/templates``, or
``--consul-template-dir`` / ``$ESBGEN_CONSUL_TEMPLATE_DIR``) holds a template of the same name
(``paas.conf``, ``paas.conf.tpl``, ``paas.conf.ctmpl``), or when a consul-template configuration
(``*.hcl`` or ``*.json`` in the templates folder's parent or its ``conf.d/``) has a ``template``
block whose ``destination`` is that file. The configurations are read with python-hcl2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from esbgen.errors import EsbgenError

ENV = "ESBGEN_CONSUL_TEMPLATE_DIR"
DEFAULT_DIR = Path("/etc/consul-template/templates")
SUFFIXES = ("", ".tpl", ".ctmpl", ".tmpl", ".template")


def templates_dir(option: Path | None) -> Path:
    return Path(option or os.environ.get(ENV) or DEFAULT_DIR)


def template_of(file: Path, folder: Path) -> str | None:
    """What renders ``file`` (its template, or the configuration naming it), or None."""
    real = os.path.realpath(file)
    for suffix in SUFFIXES:
        candidate = folder / f"{Path(file).name}{suffix}"
        if candidate.is_file():
            return str(candidate)
    for config in _configs(folder):
        for block in _templates(config):
            destination = block.get("destination")
            if isinstance(destination, str) and os.path.realpath(destination) == real:
                source = block.get("source")
                return f"{source} (template block of {config})" if isinstance(source, str) else str(config)
    return None


def refuse_rendered(file: Path, folder: Path) -> None:
    template = template_of(file, folder)
    if template is not None:
        raise EsbgenError(
            f"{file} is rendered by consul-template from {template}: an edit of it is lost at the next render; "
            "point the service's registration in consul at the new backend instead (nothing was changed)"
        )


def _configs(folder: Path) -> list[Path]:
    found = []
    for where in (folder.parent, folder.parent / "conf.d", folder.parent / "config"):
        try:
            entries = sorted(where.iterdir())
        except OSError:
            continue
        found.extend(entry for entry in entries if entry.suffix in (".hcl", ".json") and entry.is_file())
    return found


def _templates(config: Path) -> list[dict[str, Any]]:
    try:
        text = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    try:
        if config.suffix == ".json":
            data = json.loads(text)
        else:
            import hcl2

            data = hcl2.loads(text)
    except Exception:  # a configuration consul-template itself could not read renders nothing
        return []
    blocks = data.get("template", []) if isinstance(data, dict) else []
    if isinstance(blocks, dict):
        blocks = [blocks]
    return [{key: _plain(value) for key, value in block.items()} for block in blocks if isinstance(block, dict)]


def _plain(value: Any) -> Any:
    """python-hcl2 keeps a string's quotes ('"/etc/nginx/paas.conf"'); the value without them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value[1:-1]
    return value

"""The cookiecutter template a careful person would write by hand for a clone of ``sops``.

What they would do, and what this module does:
- the top folder is ``{{cookiecutter.top}}`` (``components``), the system folders
  ``{{cookiecutter.system}}``, the YAML file ``{{cookiecutter.system}}.yaml``;
- the apidocs hold the ESB's own ``{{ common_args_desc }}`` and ``{% if %}``: they are listed
  in ``_copy_without_render`` (``confapis/*/apidocs``) and copied as they are;
- in the YAML, the values of ``path``, ``comp_codename`` and ``dest_path`` get the variables
  (a sed-like replacement on those lines only); any other line that holds Jinja-looking text
  (a label with ``{{ }}``) is wrapped in ``{% raw %}...{% endraw %}``;
- in the Python files, code lines get the variables (SYSTEM_NAME, the host setting, the
  ``/o/<app>`` literals); comments stay; docstring lines with ``{{ _("...") }}`` are wrapped
  in ``{% raw %}`` like the YAML lines.
The result renders to the same bytes as ``esbgen clone`` (the benchmark checks it).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

MARKERS = ("{{", "{%", "{#")
YAML_KEYS = re.compile(r"^(- |  )(path|comp_codename|dest_path):")


def _raw(line: str) -> str:
    body = line.rstrip("\r\n")
    return "{% raw %}" + body + "{% endraw %}" + line[len(body):]


def yaml_template(text: str, source: str, app: str) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        if YAML_KEYS.match(line):
            line = (line.replace(f"/v2/{source}/", "/v2/{{ cookiecutter.system }}/")
                    .replace(f"generic.v2.{source}.", "generic.v2.{{ cookiecutter.system }}.")
                    .replace(f"/o/{app}/", "/o/{{ cookiecutter.app_code }}/"))
        elif any(m in line for m in MARKERS):
            line = _raw(line)
        out.append(line)
    return "".join(out)


def python_template(text: str, system_name: str, setting: str, app: str) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        if any(m in line for m in MARKERS):
            line = _raw(line)
        elif not line.lstrip().startswith("#"):
            line = (line.replace(f'SYSTEM_NAME = "{system_name}"', 'SYSTEM_NAME = "{{ cookiecutter.SYSTEM_NAME }}"')
                    .replace(f'"{setting}"', '"{{ cookiecutter.host_setting }}"')
                    .replace(f"/o/{app}", "/o/{{ cookiecutter.app_code }}"))
        out.append(line)
    return "".join(out)


def write_template(root: Path, template: Path, new: str, source: str = "sops", app: str = "bk_sops",
                   system_name: str = "SOPS", setting: str = "BK_SOPS_URL") -> Path:
    """Write the hand-made template of a clone of ``source`` to ``template``."""
    top = template / "{{cookiecutter.top}}"
    parts = {
        Path("bk/apisv2") / source: Path("bk/apisv2/{{cookiecutter.system}}"),
        Path("confapis") / source: Path("confapis/{{cookiecutter.system}}"),
    }
    for src_rel, dst_rel in parts.items():
        src = root / "components" / src_rel
        for path in sorted(src.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(src)
            if relative.name == f"{source}.yaml":
                relative = relative.with_name("{{cookiecutter.system}}.yaml")
            out = top / dst_rel / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            if "apidocs" in relative.parts:
                shutil.copyfile(path, out)
            elif path.suffix == ".yaml":
                out.write_bytes(yaml_template(path.read_bytes().decode(), source, app).encode())
            elif path.suffix == ".py":
                out.write_bytes(python_template(path.read_bytes().decode(), system_name, setting, app).encode())
            else:
                shutil.copyfile(path, out)
            shutil.copymode(path, out)
    core = new.upper()[3:] if new.upper().startswith("BK_") else new.upper()
    context = {
        "top": "components",
        "system": new,
        "SYSTEM_NAME": "{{ cookiecutter.system|upper }}",
        "app_code": "{{ cookiecutter.system|replace('_', '-') }}",
        "host_setting": f"BK_{core}_URL",
        "_copy_without_render": ["confapis/*/apidocs"],
    }
    (template / "cookiecutter.json").write_text(json.dumps(context, indent=2) + "\n", encoding="utf-8")
    return template


if __name__ == "__main__":
    write_template(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])

"""``esbgen new``: a brand-new confapis system from a SaaS type's cookiecutter template."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esbgen.clone import add_rendered_folders, conf_changes, validate_rendered
from esbgen.domain import CloneTarget
from esbgen.errors import EsbgenError, UsageError
from esbgen.esbtree import load_tree
from esbgen.layout import APISV2, COMPONENTS, CONFAPIS, settings_file
from esbgen.plan import Plan
from esbgen.rules import validate_app_code, validate_host_setting_answer, validate_label, validate_new_system
from esbgen.saas import SaasType, all_saas_types, saas_type_named
from esbgen.template import render_with_defaults

DEFAULT_TYPE = "confapis"


@dataclass
class NewOutcome:
    plan: Plan
    target: CloneTarget
    saas_type: SaasType
    values: dict[str, Any]


def component_class_name(system: str) -> str:
    """A class whose snake case is ``<system>_component``: capitals only where words start."""
    return "".join(part[:1].upper() + part[1:] for part in system.split("_")) + "Component"


def template_of(type_name: str | None) -> tuple[SaasType, Path]:
    types = all_saas_types()
    name = type_name or DEFAULT_TYPE
    saas_type = saas_type_named(name, types)
    template = saas_type.template
    if template is None:
        with_templates = sorted(t.name for t in types if t.template is not None)
        raise UsageError(f"SaaS type {name!r} ships no template for esbgen new (types with one: {', '.join(with_templates)})")
    if not (Path(template) / "cookiecutter.json").is_file():
        raise EsbgenError(f"the template of SaaS type {name!r} is missing: {template}")
    return saas_type, Path(template)


def new_remark(saas_type) -> str:
    """The remark a new system is declared and registered with, unless --remark is given."""
    return f"Created by esbgen new (SaaS type {saas_type.name})"


def plan_new(root: Path, name: str, app_code: str, work: Path, *, type_name: str | None = None,
             label: str | None = None, force: bool = False) -> NewOutcome:
    from esbgen.plugins import answers, call_hook

    validate_new_system(name)
    validate_app_code(app_code)
    validate_label(label, blank_ok=False)
    saas_type, template = template_of(type_name)
    tree = load_tree(root, positions=set())  # no system's YAML is edited
    target = CloneTarget(name, app_code, label if label is not None else name.upper(), "")
    plugin, answer = answers("esbgen_host_setting", target=target, source=None, old=None)[0]
    target.host_setting = validate_host_setting_answer(plugin, answer, tree, name)
    values: dict[str, Any] = {
        "system": name,
        "SYSTEM_NAME": target.system_name,
        "app_code": app_code,
        "host_setting": target.host_setting,
        "component_class": component_class_name(name),
        "component_name": f"{name}_component",
        "_components": str(COMPONENTS),
    }
    call_hook("esbgen_clone_context", context=values, source=None, target=target)
    output = work / "output"
    output.mkdir(parents=True)
    rendered = render_with_defaults(template, values, output)
    conf_write, said, _ = conf_changes(tree, target, new_remark(saas_type))
    validate_rendered(tree, output, name, None, conf_write)
    plan = Plan(root, f"new system {name} (SaaS type {saas_type.name})")
    folders = [p for p in (APISV2 / name, CONFAPIS / name) if (output / p).is_dir()]
    add_rendered_folders(plan, output, folders, force)
    if conf_write is not None:
        plan.file_writes.append(conf_write)
    plan.unchanged.extend(said)
    if not plan.is_empty:
        plan.notes.append(f"define {target.host_setting} in {settings_file(root)} (the host of app {app_code})")
    return NewOutcome(plan, target, saas_type, rendered)

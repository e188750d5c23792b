"""``esbgen new``: a brand-new confapis system from a SaaS type's cookiecutter template."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esbgen.esb.routing import closing_notes
from esbgen.design import add_rendered_folders, conf_changes, validate_rendered
from esbgen.commands.register import plan_row_and_services
from esbgen.db import registration as _registration
from esbgen.edit.template import render_with_defaults
from esbgen.errors import Refused, UsageError
from esbgen.esb.layout import APISV2, COMPONENTS, CONFAPIS, settings_file
from esbgen.esb.model import CloneTarget
from esbgen.esb.rules import (
    validate_app_code,
    validate_host_setting_answer,
    validate_label,
    validate_new_system,
    validate_remark,
)
from esbgen.esb.tree import load_tree
from esbgen.plan import Plan
from esbgen.runner import Context, Operation
from esbgen.saas import SaasType, all_saas_types, saas_type_named

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
        raise Refused(f"the template of SaaS type {name!r} is missing: {template}")
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


@dataclass
class New(Operation):
    name: str
    app_code: str
    saas_type: str | None = None
    label: str | None = None
    force: bool = False
    remark: str | None = None
    command = "new"
    outcome: Any = None

    def check(self, ctx: Context) -> None:
        validate_remark(self.remark)

    def make_plan(self, ctx: Context, work: Path) -> Plan:
        outcome = self.outcome = plan_new(ctx.root, self.name, self.app_code, work, type_name=self.saas_type,
                                          label=self.label, force=self.force)
        plan_row_and_services(
            ctx, outcome.plan, outcome.target.system_name, label=outcome.target.label,
            remark=self.remark if self.remark is not None else new_remark(outcome.saas_type),
            label_given=self.label is not None, remark_given=self.remark is not None, verify=True,
        )
        return outcome.plan

    def nothing_to_do(self, plan: Plan) -> str:
        return f"{self.name} already exists as this template makes it, and is registered"

    def summary(self, plan: Plan) -> list[str]:
        outcome = self.outcome
        return [
            f"Created {self.name} (SYSTEM_NAME {outcome.target.system_name}, app {self.app_code}, SaaS type "
            f"{outcome.saas_type.name}): {plan.added_count} files written."
        ] + _registration.done_lines(plan) + closing_notes(plan.root, self.name)

    def plugin_values(self, plan: Plan) -> dict[str, Any]:
        return {"new": self.name, "system": self.outcome.target.system_name, "app_code": self.app_code,
                "saas_type": self.outcome.saas_type.name}

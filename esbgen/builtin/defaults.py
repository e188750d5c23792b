"""Answers every deployment gets unless a plugin gives its own."""

from __future__ import annotations

from esbgen import hookimpl


@hookimpl(trylast=True)
def esbgen_host_setting(target, source, old):
    from esbgen.esb.rules import default_host_setting, renamed_setting

    if source is None or old is None:
        return default_host_setting(target.name)
    return renamed_setting(old, source.system_name or source.name, target.system_name)


@hookimpl(trylast=True)
def esbgen_plan_steps(plan, command, options):
    if command not in ("clone", "new", "retarget", "sync-edition", "register", "apply-plan") or plan.is_empty:
        return None
    from esbgen.plan import PostStep

    steps = []
    if not options.get("sync"):
        steps.append(
            PostStep("update the ESB's data: python manage.py sync_data_at_deploy (in the ESB's virtualenv, from its root, on one ESB machine)")
        )
    if not options.get("restart"):
        steps.append(PostStep("restart the ESB: supervisorctl -c <supervisord.conf> restart esb"))
    return steps

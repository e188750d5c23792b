"""The esbgen plugin: its hook (``esbgen_swap_targets``), the swap targets of a BlueKing PaaS, and the
``esbgen swap`` group.

Registered through the entry point ``[project.entry-points.esbgen] nginx``.
Importing this module stays cheap: click and crossplane are imported when the
command line is built or a swap runs.
"""

from __future__ import annotations

from esbgen import hookimpl

from esbgen_nginx import hookspecs
from esbgen_nginx.hookspecs import SwapTarget

TARGETS = (
    SwapTarget("web", "paas", "OPEN_PAAS", "developer center (supervisor program paas, port 8001)"),
    SwapTarget("web", "login", "OPEN_PAAS_LOGIN", "login service (program login, port 8003)"),
    SwapTarget("web", "appengine", "OPEN_PAAS_APPENGINE", "app engine (program appengine, port 8000)"),
    SwapTarget("web", "esb", "OPEN_PAAS_ESB", "API gateway (program esb, port 8002)"),
    SwapTarget("paasagent", "test", "PAAS_AGENT_TEST", "paasagent of the test environment (location /t/)"),
    SwapTarget("paasagent", "prod", "PAAS_AGENT_PROD", "paasagent of the production environment (location /o/)"),
)


@hookimpl
def esbgen_addhooks(pluginmanager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def esbgen_swap_targets() -> list[SwapTarget]:
    return list(TARGETS)


@hookimpl
def esbgen_register_commands(cli) -> None:
    from esbgen_nginx.cli import swap_group

    cli.add_command(swap_group())


@hookimpl
def esbgen_step_kinds() -> list:
    from esbgen_nginx.steps import EngineServersKind, NginxConfigKind, SupervisorProgramKind

    return [NginxConfigKind(), EngineServersKind(), SupervisorProgramKind()]

"""``esbgen swap KIND NAME --to HOST:PORT``: the click group this plugin adds to esbgen.

The kinds (``web``, ``paasagent``, and any a plugin adds) and their names are
read from :func:`esbgen_nginx.hookspecs.swap_targets` when the group is used, so every
plugin's ``esbgen_swap_targets`` answer becomes a command.  ``paasagent`` also
gets ``--activate`` and its options (the agents' rows in ``engine_servers``).
"""

from __future__ import annotations

from pathlib import Path

import click

from esbgen.cli import json_output

from esbgen_nginx.backends import Backend, parse_backend
from esbgen_nginx.hookspecs import SwapTarget, swap_targets

_NOT_IN_NAME = set(" \t\r\n{};#'\"\\$")


class SwapGroup(click.Group):
    """A group whose sub-commands are the kinds of the swap targets plugins declare."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        static = super().list_commands(ctx)
        kinds = sorted({target.kind for target in swap_targets()} - set(static))
        return static + kinds

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        targets = [target for target in swap_targets() if target.kind == cmd_name]
        if not targets:
            return None
        return kind_command(cmd_name, targets)


def swap_group() -> click.Group:
    group = SwapGroup(
        name="swap",
        short_help="Point a PaaS nginx upstream (web service, paasagent) at new backends.",
        help=(
            "Point an nginx upstream of the PaaS at new backends: check them, edit the "
            "server lines in place, nginx -t, nginx -s reload, as one change in the journal of "
            "the host's state folder ($ESBGEN_STATE_DIR, default /var/lib/esbgen): anything that "
            "fails (or SIGINT, SIGTERM) puts it all back; `esbgen undo --swap` reverts it later."
        ),
    )
    group.add_command(list_targets)
    return group


@click.command("targets")
@click.option("--nginx-server-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also say where each upstream is in the nginx configuration of this directory, and its servers.")
def list_targets(nginx_server_root: Path | None) -> None:
    """List what `esbgen swap` can point nginx at, and the upstream of each."""
    from esbgen.errors import EsbgenError

    from esbgen_nginx.upstream import find_upstream

    main_conf = nginx_server_root / "nginx.conf" if nginx_server_root is not None else None
    for target in swap_targets():
        line = f"{target.kind} {target.name}: upstream {target.upstream}"
        if target.description:
            line += f"  ({target.description})"
        if main_conf is not None:
            try:
                found = find_upstream(main_conf, target.upstream)
                line += f"; {found.file}:{found.lineno}: {', '.join(s.address for s in found.servers) or 'no server'}"
            except EsbgenError as error:
                line += f"; {error}"
        click.echo(line)


def _parse_to(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Backend]:
    backends = []
    for value in values:
        try:
            backends.append(parse_backend(value))
        except ValueError as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    if len(set(backends)) != len(backends):
        raise click.BadParameter("the same HOST:PORT is given twice", ctx=ctx, param=param)
    return backends


def _check_upstream_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and (not value or set(value) & _NOT_IN_NAME or not value.isprintable()):
        raise click.BadParameter(f"{value!r} is not an nginx upstream name", ctx=ctx, param=param)
    return value


def _check_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and (not value.startswith("/") or any(c.isspace() for c in value)):
        raise click.BadParameter("must be a URL path starting with '/', e.g. /healthz", ctx=ctx, param=param)
    return value


ACTIVATE_KIND = "paasagent"


def _parse_uuid(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    import uuid

    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a UUID", ctx=ctx, param=param) from None


def activate_options() -> list[click.Option]:
    """``--activate`` and what it needs; added to the paasagent command only."""
    return [
        click.Option(["--activate"], is_flag=True,
                     help="Also mark the new agent active in engine_servers (adding its row when missing) and the "
                          "agents it replaces inactive, as the developer center's server list does; committed only "
                          "once nginx has reloaded."),
        click.Option(["--database"], metavar="URL",
                     help="Database of engine_servers (the PaaS's): sqlite:///ABS/PATH.db or "
                          "mysql://USER:PASSWORD@HOST:PORT/DB (default: $ESBGEN_DATABASE_URL; `manage.py esbgen` sets "
                          "it to the project's)."),
        click.Option(["--agent-port"], type=click.IntRange(1, 65535), metavar="PORT",
                     help="Port of the new agent's API (engine_servers.ip_port; default: the --agent-config port, "
                          "else 4245). --to is where its apps answer (app_port)."),
        click.Option(["--agent-config"], type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="PATH",
                     help="The new agent's paas_agent_config.yaml: its auth.sid, auth.token and port."),
        click.Option(["--sid"], metavar="UUID", callback=_parse_uuid, help="auth.sid of the new agent (with --token)."),
        click.Option(["--token"], metavar="UUID", callback=_parse_uuid, help="auth.token of the new agent (with --sid)."),
        click.Option(["--name", "row_name"], metavar="TEXT",
                     help="Name of a row esbgen adds (at most 20 characters; default: the agent's host)."),
        click.Option(["--category"], metavar="VALUE",
                     help="engine_servers.category of the environment (default: tapp for test, app for prod)."),
    ]


def activation_request(name: str | None, dry_run: bool, no_reload: bool, activate: bool = False,
                       database: str | None = None, agent_port: int | None = None, agent_config: Path | None = None,
                       sid=None, token=None, row_name: str | None = None, category: str | None = None):
    """The ``--activate`` options as an ActivationRequest (None without --activate); usage errors exit 2."""
    given = [option for option, value in (("--database", database), ("--agent-port", agent_port),
                                          ("--agent-config", agent_config), ("--sid", sid), ("--token", token),
                                          ("--name", row_name), ("--category", category)) if value is not None]
    from esbgen.cli import run_context
    from esbgen_nginx.agents import CATEGORIES, DEFAULT_AGENT_PORT, ActivationRequest, AgentAuth, read_agent_config

    if not activate:
        if given:
            raise click.UsageError(f"{given[0]} goes with --activate")
        return None
    if no_reload:
        raise click.UsageError("--activate commits the server list once nginx has reloaded: drop --no-reload")
    if (sid is None) != (token is None):
        raise click.UsageError("give --sid and --token together")
    if sid is not None and agent_config is not None:
        raise click.UsageError("give --sid/--token or --agent-config, not both")
    if category is None:
        category = CATEGORIES.get(name or "")
        if category is None:
            raise click.UsageError("--activate needs the environment: NAME test or prod (or --category VALUE)")
    elif not category.strip() or len(category) > 36:
        raise click.UsageError(f"--category {category!r} is not an engine_servers category")

    target = run_context(database=database).database
    auth = AgentAuth(sid, token, "--sid/--token") if sid is not None else None
    if agent_config is not None:
        auth, config_port = read_agent_config(agent_config)
        if agent_port is not None and config_port is not None and agent_port != config_port:
            raise click.UsageError(f"--agent-port {agent_port} differs from port {config_port} in {agent_config}")
        agent_port = agent_port or config_port
    return ActivationRequest(environment=name or category, category=category,
                             agent_port=agent_port or DEFAULT_AGENT_PORT, name=row_name, auth=auth, database=target)


def stop_old_request(stop_old: bool, program: str | None, grace: float, supervisorctl: str | None,
                     supervisor_conf: Path | None, skip_check: bool, no_reload: bool):
    """``--stop-old`` and its options as a StopOld (None without it); usage errors exit 2."""
    from esbgen.services import PROGRAM_RE
    from esbgen_nginx.swapper import StopOld

    if not stop_old:
        given = [option for option, value in (("--old-program", program), ("--grace", grace or None),
                                              ("--supervisorctl", supervisorctl),
                                              ("--supervisor-conf", supervisor_conf)) if value is not None]
        if given:
            raise click.UsageError(f"{given[0]} goes with --stop-old")
        return None
    if skip_check or no_reload:
        raise click.UsageError("--stop-old stops the old backend once nginx answers through the new one: "
                               f"drop {'--skip-check' if skip_check else '--no-reload'}")
    if program is not None and not PROGRAM_RE.match(program):
        raise click.UsageError(f"--old-program {program!r} is not a supervisor program name")
    return StopOld(supervisorctl, supervisor_conf, program, grace)


def apps_request(kind: str, name: str | None, activation, database: str | None) -> dict:
    """A paasagent swap names the apps left on the old agent: the environment's category, and the database."""
    from esbgen.cli import run_context
    from esbgen_nginx.agents import CATEGORIES

    if kind != ACTIVATE_KIND:
        return {}
    category = activation.category if activation is not None else CATEGORIES.get(name or "")
    if category is None:
        return {}
    target = activation.database if activation is not None else run_context(database=database).database
    return {"apps_category": category, "apps_database": target}


def kind_command(kind: str, targets: list[SwapTarget]) -> click.Command:
    by_name = {target.name: target for target in targets}
    listing = "\n".join(f"  {t.name:<10} upstream {t.upstream}" for t in targets)

    @click.command(
        kind,
        help=(
            f"Point the nginx upstream of a {kind} service at new backends.\n\n"
            f"\b\nNAME is one of:\n{listing}\n\n"
            "--upstream NAME picks any other upstream (with or without a NAME)."
            + (
                "\n\n--activate also updates the developer center's server list (engine_servers): "
                "the new agent active, the replaced ones inactive."
                if kind == ACTIVATE_KIND else ""
            )
        ),
    )
    @click.argument("name", required=False, type=click.Choice(sorted(by_name)))
    @click.option("--to", "backends", metavar="HOST:PORT", multiple=True, required=True, callback=_parse_to,
                  help="New backend; repeat to replace the server list by several.")
    @click.option("--upstream", "upstream", metavar="NAME", callback=_check_upstream_name,
                  help="Upstream to edit instead of the target's own.")
    @click.option("--nginx-server-root", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Directory of nginx's main file nginx.conf (default: /etc/nginx, or "
                       "/usr/local/openresty/nginx/conf where only OpenResty is installed).")
    @click.option("--nginx-ctl", default=None, metavar="PATH",
                  help="nginx binary used for -t and the reload (default: nginx; for an OpenResty server root "
                       "PREFIX/nginx/conf, PREFIX/bin/openresty).")
    @click.option("--nginx-prefix", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Prefix nginx runs with (-p), if it is not the built-in one (OpenResty: PREFIX/nginx).")
    @click.option("--reload-command", metavar="COMMAND",
                  help="How nginx is reloaded where a service manager runs it, e.g. 'systemctl reload openresty' "
                       "(default: nginx -s reload).")
    @click.option("--consul-template-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="consul-template's templates folder: a file rendered from it is refused "
                       "(default: $ESBGEN_CONSUL_TEMPLATE_DIR, else /etc/consul-template/templates).")
    @click.option("--dry-run", is_flag=True, help="Print the diff and the steps; change nothing, write nothing.")
    @click.option("--skip-check", is_flag=True, help="Do not check that the new backends accept connections.")
    @click.option("--no-reload", is_flag=True, help="Edit and nginx -t, but leave the reload to the operator.")
    @click.option("--check-path", metavar="PATH", callback=_check_path,
                  help="Check with an HTTP GET of PATH (status < 500) instead of a TCP connect.")
    @click.option("--connect-timeout", type=click.FloatRange(min=0, min_open=True), default=3.0,
                  show_default=True, metavar="SECONDS", help="Timeout of each backend check, and of the request "
                                                             "through nginx.")
    @click.option("--nginx-check-path", metavar="PATH", callback=_check_path,
                  help="Path asked through nginx before the swap and after the reload (default: the path of the "
                       "location that proxies to the upstream); an answer worse after (500 and above, or none, where "
                       "it answered before) rolls the swap back.")
    @click.option("--expect-status", type=click.IntRange(100, 599), metavar="CODE",
                  help="The status the answer through nginx must have after the reload, else the swap is rolled back.")
    @click.option("--stop-old", is_flag=True,
                  help="Then stop the old backend's supervisor program (found from the old server's port, or "
                       "--old-program); `esbgen undo --swap` starts it again before it points nginx back.")
    @click.option("--old-program", metavar="NAME", help="The supervisor program --stop-old stops.")
    @click.option("--grace", type=click.FloatRange(min=0, max=3600), default=0.0, metavar="SECONDS",
                  help="With --stop-old: how long to wait after the check before stopping the old program.")
    @click.option("--supervisorctl", metavar="PATH",
                  help="supervisorctl for --stop-old (default: the one beside esbgen's Python, else on PATH).")
    @click.option("--supervisor-conf", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
                  help="supervisord configuration supervisorctl reads (-c) for --stop-old.")
    @json_output
    def command(name, backends, upstream, nginx_server_root, nginx_ctl, nginx_prefix, reload_command,
                consul_template_dir, dry_run, skip_check, no_reload, check_path, connect_timeout, nginx_check_path,
                expect_status, stop_old, old_program, grace, supervisorctl, supervisor_conf, **activation):
        from esbgen.cli import run_context, run_operation

        from esbgen_nginx.nginxctl import default_server_root
        from esbgen_nginx.swapper import SwapOperation, SwapRequest

        if name is None and upstream is None:
            raise click.UsageError(f"give a NAME ({', '.join(sorted(by_name))}) or --upstream NAME")
        activation_wanted = activation_request(name, dry_run, no_reload, **activation)
        stop_wanted = stop_old_request(stop_old, old_program, grace, supervisorctl, supervisor_conf, skip_check,
                                       no_reload)
        if (nginx_check_path is not None or expect_status is not None) and (skip_check or no_reload):
            given = "--nginx-check-path" if nginx_check_path is not None else "--expect-status"
            raise click.UsageError(f"{given} asks nginx after the reload: it cannot go with "
                                   f"{'--skip-check' if skip_check else '--no-reload'}")
        if name is not None:
            target = by_name[name]
            label = f"{kind} {name}"
            upstream_name = upstream or target.upstream
        else:
            label = f"{kind} upstream {upstream}"
            upstream_name = upstream
        request = SwapRequest(
            label=label,
            upstream=upstream_name,
            backends=list(backends),
            server_root=nginx_server_root or default_server_root(),
            nginx_ctl=nginx_ctl,
            nginx_prefix=nginx_prefix,
            reload_command=reload_command,
            consul_template_dir=consul_template_dir,
            skip_check=skip_check,
            reload=not no_reload,
            check_path=check_path,
            connect_timeout=connect_timeout,
            activation=activation_wanted,
            nginx_check_path=nginx_check_path,
            expect_status=expect_status,
            stop_old=stop_wanted,
            **apps_request(kind, name, activation_wanted, activation.get("database")),
        )
        return run_operation(SwapOperation(request),
                             run_context(database=activation.get("database"), dry_run=dry_run))

    if kind == ACTIVATE_KIND:
        command.params.extend(activate_options())
    return command

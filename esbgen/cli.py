"""The ``esbgen`` command line; ``manage.py esbgen`` (plugins/esbgen-django) runs this command."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, Sequence

import click

from esbgen import VERSION_MESSAGE, __version__
from esbgen.errors import EsbgenError, Refused
from esbgen.esb.layout import CUSTOM_CONF, LATER_SETTINGS, LEGACY_SETTINGS

ESB_ROOT_HELP = "ESB root (default: $ESBGEN_ESB_ROOT, else the current directory)"
JSON_HELP = "Print the outcome as one JSON object (plan, diffs, notes, error)."
QUIET_HELP = "Show no progress (on a terminal, work over about a second shows its phase and count on stderr)."

# Where the root group keeps the global options given before the command (click's ``Context.meta``).
GLOBAL_JSON = "esbgen.json"
GLOBAL_FULL_DIFF = "esbgen.full_diff"
GLOBAL_ESB_ROOT = "esbgen.esb_root"


def esb_root_option(function):
    return click.option("--esb-root", "esb_root", metavar="DIR", help=ESB_ROOT_HELP)(function)


def dry_run_option(function):
    function = click.option("--full-diff", is_flag=True, expose_value=False, callback=_global(GLOBAL_FULL_DIFF),
                            help="Show every file's whole diff in the plan (a long one is summed up).")(function)
    return click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")(function)


def database_option(function):
    return click.option(
        "--database", metavar="URL",
        help="The ESB's database, to write the system's esb_component_system row: sqlite:///ABS/PATH.db or "
             "mysql://USER:PASSWORD@HOST:PORT/DB (default: $ESBGEN_DATABASE_URL; `manage.py esbgen` sets it to the project's).",
    )(function)


def service_options(function):
    """--sync, --restart and where their programs are; the command gets them as one ``services`` argument."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, sync, restart, esb_python, supervisor_conf, program, supervisorctl, **kwargs):
        from esbgen.services import ServiceOptions

        services = ServiceOptions(sync, restart, esb_python, supervisor_conf, program, supervisorctl)
        return function(*args, services=services, **kwargs)

    options = [
        click.option("--sync", is_flag=True, help="Then run the ESB's `manage.py sync_data_at_deploy` (from the ESB root)."),
        click.option("--restart", is_flag=True, help="Then run `supervisorctl [-c CONF] restart PROGRAM`."),
        click.option("--esb-python", metavar="PATH",
                     help="The ESB's Python for --sync (default: $ESBGEN_ESB_PYTHON, else a virtualenv found for "
                          "the ESB, else python)."),
        click.option("--supervisor-conf", metavar="CONF", help="supervisord.conf for --restart."),
        click.option("--program", default="esb", show_default=True, metavar="NAME", help="Supervisor program to restart."),
        click.option("--supervisorctl", metavar="PATH",
                     help="supervisorctl to use (default: the one beside esbgen's Python, else on PATH)."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def plan_out_option(function):
    return click.option(
        "--plan-out", metavar="FILE",
        help="Write the plan, with every byte it writes, to FILE and change nothing; "
             "`esbgen apply-plan FILE` applies exactly it (on each ESB host).",
    )(function)


def json_output(function):
    """--json: print one JSON object (esbgen.report) instead of the lines, errors included."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, json_output: bool, **kwargs):
        context = click.get_current_context()
        if not (json_output or context.find_root().meta.get(GLOBAL_JSON)):
            return function(*args, **kwargs)
        from esbgen import report
        from esbgen.errors import UsageError

        with report.collecting(context.info_name) as collected:
            try:
                result = function(*args, **kwargs)
                collected.exit_code = result if isinstance(result, int) else 0
            except (EsbgenError, click.UsageError) as error:
                if isinstance(error, click.UsageError):
                    error = UsageError(error.format_message())
                collected.error, collected.exit_code = error, error.exit_code
                click.echo(f"{context.find_root().info_name}: error: {_masked(error)}", err=True)
        echo_output(collected.to_json())
        if collected.exit_code:
            raise click.exceptions.Exit(collected.exit_code)
        return 0

    return click.option("--json", "json_output", is_flag=True, help=JSON_HELP)(wrapper)


def sync_rows_options(function):
    """--grant and --no-force-sync of clone and new; they ride on the ``services`` of service_options."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, grants, no_force_sync, services, **kwargs):
        services.grants = tuple(grants)
        services.no_force_sync = no_force_sync
        return function(*args, services=services, **kwargs)

    wrapper = click.option(
        "--no-force-sync", "no_force_sync", is_flag=True,
        help="With --sync: never run the ESB's sync with --force; esbgen then says which rows keep stale values.",
    )(wrapper)
    return click.option(
        "--grant", "grants", multiple=True, metavar="APP_CODE",
        help="With --sync and a database: give this app permission to the system's channels, as the ESB's "
             "add_compperm_for_app does; undone with the change (repeatable).",
    )(wrapper)


def say(text: str) -> None:
    from esbgen import progress, report

    progress.clear()  # the progress line goes before anything is said
    text = _masked(text)
    if not report.say(text):
        echo_output(text)


def echo_output(text: str) -> None:
    """A line on stdout; once a reader closed it (`esbgen ... | head -1`), the run goes on without it."""
    global stdout_closed
    if stdout_closed:
        return
    try:
        click.echo(text)
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_closed = True
        _drop_stdout()


stdout_closed = False  # the reader of stdout went away during this run (said on stderr at its end)


def _drop_stdout() -> None:
    """What is still buffered or written later goes nowhere, so neither a write nor the exit fails on it."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # a stdout without a descriptor (captured in tests)
        pass


def _quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        from esbgen import progress

        progress.set_quiet(True)


def _global(key: str):
    def keep(ctx: click.Context, param: click.Parameter, value) -> None:
        if ctx.get_parameter_source(param.name) is click.core.ParameterSource.COMMANDLINE:
            ctx.find_root().meta[key] = value  # given, not a default

    return keep


def quiet_option() -> click.Option:
    return click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_quiet, help=QUIET_HELP)


def _masked(text: object) -> str:
    from esbgen.redact import mask

    return mask(str(text))


class EsbgenGroup(click.Group):
    """The root group: plugins add their commands when a command is first looked up or listed.

    ``--version`` is answered before that (an eager option), so it loads no plugin at all.
    The global options (-q, --json, --esb-root) go before the command or after it: each command
    gets the ones it lacks of them.
    """

    plugins_added = False

    def add_plugin_commands(self) -> None:
        if self.plugins_added:
            return
        from esbgen.plugins import call_hook

        self.plugins_added = True  # first: a plugin's add_command must not look its commands up again
        try:
            call_hook("esbgen_register_commands", cli=self)
        except BaseException:
            self.plugins_added = False
            raise

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.add_plugin_commands()
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name == "swap":
            raise Refused("esbgen swap comes with the plugin esbgen-nginx, which is not loaded: install it "
                              "(pip install esbgen-nginx), or take nginx out of ESBGEN_DISABLE_PLUGINS")
        return with_quiet(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.add_plugin_commands()
        return super().list_commands(ctx)


def with_quiet(command: click.Command | None) -> click.Command | None:
    """``command`` taking -q after its name too, and so every command of a group (a plugin's ``swap web``)."""
    if command is None or any(param.name == "quiet" for param in command.params):
        return command
    command.params.append(quiet_option())
    if isinstance(command, click.Group):
        look_up = command.get_command
        command.get_command = lambda ctx, name: with_quiet(look_up(ctx, name))  # type: ignore[method-assign]
    return command


def run_context(esb_root: str | None = None, **fields):
    """The runner's context of this command line: its root option and database."""
    from esbgen.runner import Context

    context = click.get_current_context(silent=True)
    if context is not None:
        esb_root = _one_esb_root(context, esb_root)
        fields.setdefault("full_diff", bool(context.find_root().meta.get(GLOBAL_FULL_DIFF)))
    return Context.make(esb_root, say=say, **fields)


def _one_esb_root(context: click.Context, after: str | None) -> str | None:
    """--esb-root after the command or before it (that one over a default); both only when they agree."""
    before = context.find_root().meta.get(GLOBAL_ESB_ROOT)
    if before is None:
        return after
    if after is None or context.get_parameter_source("esb_root") is not click.core.ParameterSource.COMMANDLINE:
        return before
    if after != before:
        raise click.UsageError(f"--esb-root is given twice, as {before} and as {after}: give it once")
    return after


def run_operation(operation, ctx) -> int:
    from esbgen.runner import run as run_it

    return run_it(operation, ctx)


@click.group(cls=EsbgenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="esbgen", message=VERSION_MESSAGE)
@click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_quiet, help=QUIET_HELP)
@click.option("--json", is_flag=True, expose_value=False, callback=_global(GLOBAL_JSON),
              help=JSON_HELP + " Also after the command.")
@click.option("--esb-root", metavar="DIR", expose_value=False, callback=_global(GLOBAL_ESB_ROOT),
              help=ESB_ROOT_HELP + "; also after the command.")
def cli() -> None:
    """Clone, register and swap BlueKing ESB component systems, safely."""


@cli.command()
@click.argument("source")
@click.option("--as", "new", required=True, metavar="NEW", help="Folder name of the new system (SYSTEM_NAME is it in capitals).")
@click.option("--app-code", metavar="CODE", help="App the new system forwards to (default: NEW with '_' as '-').")
@click.option("--label", metavar="TEXT", help="Label of the registered system (default: its SYSTEM_NAME).")
@click.option("--type", "saas_type", metavar="TYPE", help="Force a SaaS type (see `esbgen plugins`).")
@click.option("--force", is_flag=True, help="Replace an existing, different target.")
@click.option("--remark", metavar="TEXT", help="Remark of the system's database row (default: where it was cloned from).")
@click.option("--empty", "empty_ok", is_flag=True,
              help="Clone a SOURCE that declares no channel in this tree: a system that serves nothing.")
@database_option
@service_options
@sync_rows_options
@esb_root_option
@dry_run_option
@plan_out_option
@json_output
def clone(source, new, app_code, label, saas_type, force, esb_root, dry_run, remark, empty_ok, database, services, plan_out):
    """Clone the component set SOURCE as a new system and register it."""
    from esbgen.commands.clone import Clone

    return run_operation(Clone(source, new, app_code, label, force, saas_type, remark, empty_ok),
                         run_context(esb_root, database=database, dry_run=dry_run, plan_out=plan_out, services=services))


@cli.command()
@click.argument("name")
@click.option("--label", metavar="TEXT", help="Label of the row (default: SYSTEM_NAME for a new row; kept for an existing one).")
@click.option("--remark", metavar="TEXT", help="Remark of the row (kept for an existing one unless given).")
@database_option
@service_options
@esb_root_option
@dry_run_option
@json_output
def register(name, label, remark, database, services, esb_root, dry_run):
    """Write the esb_component_system row of system NAME (exactly one row; only given fields change)."""
    from esbgen.commands.register import Register

    return run_operation(Register(name, label, remark),
                         run_context(esb_root, database=database, dry_run=dry_run, services=services))


@cli.command()
@click.argument("name")
@click.option("--app-code", required=True, metavar="CODE", help="App the new system forwards to.")
@click.option("--type", "saas_type", metavar="TYPE", help="SaaS type whose template to use (default: confapis).")
@click.option("--label", metavar="TEXT", help="Label of the registered system (default: its SYSTEM_NAME).")
@click.option("--force", is_flag=True, help="Replace an existing, different system of that name.")
@click.option("--remark", metavar="TEXT", help="Remark of the system's database row.")
@database_option
@service_options
@sync_rows_options
@esb_root_option
@dry_run_option
@plan_out_option
@json_output
def new(name, app_code, saas_type, label, force, remark, database, services, esb_root, dry_run, plan_out):
    """Create a brand-new confapis system NAME from a SaaS type's cookiecutter template."""
    from esbgen.commands.new import New

    return run_operation(New(name, app_code, saas_type, label, force, remark),
                         run_context(esb_root, database=database, dry_run=dry_run, plan_out=plan_out, services=services))


@cli.command()
@click.argument("source")
@click.option("-o", "--output", required=True, metavar="DIR", help="Empty or new folder for the template.")
@click.option("--as", "new", metavar="NEW", help="Default system name in cookiecutter.json (default: SOURCE_clone).")
@click.option("--app-code", metavar="CODE")
@click.option("--type", "saas_type", metavar="TYPE")
@esb_root_option
@json_output
def templatize(source, output, new, app_code, saas_type, esb_root):
    """Write the cookiecutter template a clone of SOURCE is rendered from."""
    from esbgen.commands.templatize import Templatize

    return run_operation(Templatize(source, output, new, app_code, saas_type), run_context(esb_root))


@cli.command()
@click.argument("system")
@click.option("--app-code", metavar="CODE", help="App the system's calls go to from now on.")
@click.option("--to-source", is_flag=True,
              help="Put back every file the recorded retargets of SYSTEM changed, as before the first one.")
@click.option("--app-url", metavar="URL",
              help="The new app's address: define its host setting with it in the settings file "
                   "(systems that call a host of their own only).")
@click.option("--type", "saas_type", metavar="TYPE", help="Force a SaaS type (see `esbgen plugins`).")
@service_options
@esb_root_option
@dry_run_option
@plan_out_option
@json_output
def retarget(system, app_code, to_source, app_url, saas_type, services, esb_root, dry_run, plan_out):
    """Make SYSTEM's calls reach another app; its paths and codenames stay."""
    from esbgen.commands.retarget import Retarget

    return run_operation(Retarget(system, app_code, saas_type, to_source, app_url),
                         run_context(esb_root, dry_run=dry_run, plan_out=plan_out, services=services))


@cli.command(name="apply-plan")
@click.argument("plan_file", metavar="FILE")
@service_options
@esb_root_option
@dry_run_option
@json_output
def apply_plan(plan_file, services, esb_root, dry_run):
    """Apply a plan made with --plan-out, byte for byte; refuse if this tree is not the one it was made for."""
    from esbgen.commands.apply_plan import ApplyPlan

    return run_operation(ApplyPlan(plan_file), run_context(esb_root, dry_run=dry_run, services=services))


@cli.command(name="sync-edition")
@click.option("--from", "ce_root", required=True, metavar="CE_ROOT", help="ESB root of the Community Edition to take from.")
@click.option("--take", multiple=True, metavar="NAME",
              help=f"Take the CE's value of this setting ({LEGACY_SETTINGS} or {LATER_SETTINGS}) even where the "
                   "target's is kept: secrets, database, hosts, values that need review (repeatable).")
@click.option("--take-file", "take_files", multiple=True, metavar="PATH",
              help=f"Take the CE's file even though esbgen changed it in this tree, or it is this ESB's {CUSTOM_CONF.name} (repeatable).")
@click.option("--skip", multiple=True, metavar="PATH",
              help="Leave this file or folder of the CE out, the settings file included (repeatable).")
@click.option("--across-generations", is_flag=True,
              help=f"Sync even from a CE of the other ESB generation (legacy: Python 2, {LEGACY_SETTINGS}; later: "
                   f"Python 3, {LATER_SETTINGS}): its components replace this ESB's; the plan counts them.")
@service_options
@esb_root_option
@dry_run_option
@json_output
def sync_edition(ce_root, take, take_files, skip, across_generations, services, esb_root, dry_run):
    """Bring the CE's components/, lib/gse/ and settings into this ESB (of the same ESB generation)."""
    from esbgen.commands.sync_edition import SyncEdition

    return run_operation(SyncEdition(ce_root, tuple(take), tuple(take_files), tuple(skip), across_generations),
                         run_context(esb_root, dry_run=dry_run, services=services))


@cli.command()
@click.argument("systems", nargs=-1)
@esb_root_option
@json_output
def check(systems, esb_root):
    """Check systems (default: all) against the rules the ESB enforces; exit 1 on any problem."""
    from esbgen.commands.check import Check

    return run_operation(Check(list(systems)), run_context(esb_root))


@cli.command(name="export-apigw")
@click.argument("system")
@click.option("-o", "--output", required=True, metavar="DIR", help="Folder for the gateway project (new, empty, or an earlier export of SYSTEM).")
@click.option("--gateway", metavar="NAME", help="Gateway name (default: bk-SYSTEM, '_' as '-').")
@click.option("--stage", metavar="NAME", help="Stage name (default: prod).")
@click.option("--backend-host", metavar="URL", help="The address of the system's main host setting (default: its value in the settings file).")
@click.option("--backend", "backends", multiple=True, metavar="SETTING=URL",
              help="The address of a host setting the components call (repeatable).")
@click.option("--channel-backend", "channel_backends", multiple=True, metavar="NAME='METHOD URL'",
              help="A channel's whole backend, where its code does not show it (repeatable).")
@click.option("--via-esb", metavar="URL", help="Send the channels whose backend is neither read nor named through the ESB at URL, as the gateway's converter does.")
@click.option("--grant-app", "grant_apps", multiple=True, metavar="CODE", help="Grant this app the whole gateway (repeatable).")
@click.option("--strict", is_flag=True, help="Refuse when a channel's backend can be neither read from the code nor was named.")
@esb_root_option
@dry_run_option
@json_output
def export_apigw(system, output, gateway, stage, backend_host, backends, channel_backends, via_esb, grant_apps, strict,
                 esb_root, dry_run):
    """Write SYSTEM's channels as an API gateway project for apigw-manager (the ESB is not changed)."""
    from esbgen.commands.export_apigw import ExportApigw

    return run_operation(ExportApigw(system, output, gateway, stage, backend_host, tuple(grant_apps), strict,
                                     tuple(backends), tuple(channel_backends), via_esb),
                         run_context(esb_root, dry_run=dry_run))


@cli.command()
@click.argument("system")
@click.option("--live", metavar="URL", help="Then call one read-only channel through the ESB at URL.")
@click.option("--app-code", metavar="CODE", help="With --live: the app that calls.")
@click.option("--app-secret-env", metavar="VAR", help="With --live: the environment variable holding the app's secret.")
@click.option("--channel", "channel_name", metavar="NAME", help="With --live: the read-only channel to call.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="With --live: a query parameter of the call (repeatable).")
@esb_root_option
@json_output
def verify(system, live, app_code, app_secret_env, channel_name, params, esb_root):
    """Show what serves each channel of SYSTEM and where its call goes; exit 1 on any problem."""
    from esbgen.commands.verify import Verify

    return run_operation(Verify(system, live, app_code, app_secret_env, channel_name, tuple(params)),
                         run_context(esb_root))


@cli.command(name="list")
@esb_root_option
@json_output
def list_(esb_root):
    """List the systems of an ESB tree, their kind, channels and registration."""
    from esbgen.commands.list_systems import ListSystems

    return run_operation(ListSystems(), run_context(esb_root))


@cli.command()
@json_output
def plugins():
    """List every plugin, where it comes from and the hooks it implements."""
    from esbgen.commands.plugins import plugins as list_plugins

    return list_plugins(say)


@cli.command()
@click.option("--list", "list_only", is_flag=True, help="Show the recorded changes.")
@click.option("--id", "journal_id", metavar="ID", help="Undo this change (default: the last one still applied).")
@click.option("--swap", "swap", is_flag=True,
              help="Undo a swap (or with --list, list them): the changes recorded in the host's state folder "
                   "($ESBGEN_STATE_DIR, default /var/lib/esbgen) instead of the ESB root's.")
@click.option("--database", metavar="URL",
              help="URL (with password) of the database a change wrote a row to; esbgen's journal keeps no password.")
@service_options
@esb_root_option
@click.option("--dry-run", is_flag=True, help="Say which change would be undone, after every check; change nothing.")
@json_output
def undo(list_only, journal_id, swap, database, esb_root, dry_run, services):
    """Revert the last change esbgen applied to this ESB root (then --sync/--restart, if asked).

    Each undo steps back one change: a second undo reverts the change before the one the first reverted.

    With --swap, revert the last swap instead (`esbgen undo --swap`, `--swap --id ID`, `--swap --list`):
    the nginx file goes back byte for byte, nginx is tested and reloaded, and the engine_servers rows of
    --activate go back; it refuses if the file or the rows changed since.
    """
    from esbgen.commands.undo import Undo, UndoList

    if swap and esb_root is not None:
        raise click.UsageError("--swap undoes a swap, which belongs to no ESB root: drop --esb-root")
    if swap and services is not None and (services.sync or services.restart):
        raise click.UsageError("--sync/--restart go with the undo of an ESB change, not with --swap")
    return run_operation(UndoList(swap=swap) if list_only else Undo(journal_id, swap=swap),
                         run_context(esb_root, database=database, dry_run=dry_run, services=services))


def build_cli() -> click.Group:
    """The root group with the commands plugins add."""
    cli.add_plugin_commands()
    return cli


def run(argv: Sequence[str] | None = None, prog_name: str = "esbgen") -> int:
    """Run the command line and return its exit status; errors are one line, never a traceback."""
    from esbgen import progress, redact, report

    redact.forget()  # each run masks the secrets of the trees it reads
    global stdout_closed
    stdout_closed = False
    report.forget_applied()
    with _sigterm_as_interrupt():
        status = _run(argv, prog_name, progress)
    applied = report.last_applied()
    if stdout_closed and (applied is not None or status != 0):
        outcome = f"change {applied} is applied and kept (`esbgen undo` reverts it)" if applied else "see above"
        click.echo(f"{prog_name}: stdout was closed before the output ended (broken pipe); the run went on to its "
                   f"end without it, exit status {status}: {outcome}", err=True)
    return status


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd, a fleet's timeout, kill) unwinds the run as Ctrl-C does: a change being applied is
    rolled back and the run says so, instead of dying between two steps."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        from esbgen.errors import Terminated

        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(argv, prog_name: str, progress) -> int:
    progress.set_quiet(False)  # -q holds for one run (tests run several in one process)
    arguments = list(argv) if argv is not None else sys.argv[1:]
    try:
        group = cli  # plugins add their commands when a command is looked up (EsbgenGroup)
        result = group.main(args=list(argv) if argv is not None else None, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as done:
        progress.end()  # the progress line goes before the message
        return done.exit_code
    except click.UsageError as error:
        progress.end()  # the progress line goes before the message
        return _usage_error(prog_name, error, arguments)
    except click.ClickException as error:
        progress.end()  # the progress line goes before the message
        click.echo(f"{prog_name}: error: {_one_line(error.format_message())}", err=True)
        return error.exit_code
    except click.exceptions.Abort as error:
        progress.end()  # the progress line goes before the message
        if isinstance(error.__cause__, KeyboardInterrupt):  # click's form of a Ctrl-C outside a prompt
            return _interrupted(prog_name, error.__cause__)
        click.echo("esbgen: aborted", err=True)
        return 1
    except EsbgenError as error:
        progress.end()  # the progress line goes before the message
        click.echo(f"{prog_name}: error: {_masked(error)}", err=True)
        _error_as_json(error, None, arguments)
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        progress.end()  # the progress line goes before the message
        # an interrupt while applying is turned into Interrupted by the journal, after its rollback
        return _interrupted(prog_name, interrupt)
    finally:
        progress.end()
    return result if isinstance(result, int) else 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _usage_error(prog_name: str, error: click.UsageError, arguments: list[str]) -> int:
    """A wrong command line in one line, with the command's usage; one JSON object too under --json."""
    from esbgen.errors import UsageError

    message = _one_line(error.format_message())
    line = message if message.endswith((".", "?", ")")) else message + "."
    if error.ctx is not None:
        command_path = error.ctx.command_path
        line += f" Usage: {command_path} {' '.join(error.ctx.command.collect_usage_pieces(error.ctx))}" \
                f" (`{command_path} -h` explains every option)"
    click.echo(f"{prog_name}: error: {line}", err=True)
    command = error.ctx.info_name if error.ctx is not None and error.ctx.parent is not None else None
    _error_as_json(UsageError(message), command, arguments)
    return error.exit_code


def _error_as_json(error: EsbgenError, command: str | None, arguments: list[str]) -> None:
    """Under --json, an error that came before the command ran (its words, the plugins) as the one JSON object."""
    from esbgen import report

    options = arguments[:arguments.index("--")] if "--" in arguments else arguments
    if "--json" in options:
        with report.collecting(command) as collected:
            collected.error, collected.exit_code = error, error.exit_code
        echo_output(collected.to_json())


def _interrupted(prog_name: str, interrupt: BaseException) -> int:
    """The line and status of a run interrupted before anything was applied."""
    from esbgen.errors import signal_name

    name = signal_name(interrupt)
    click.echo(f"{prog_name}: error: interrupted ({name}) before anything was applied: nothing was changed", err=True)
    return 143 if name == "SIGTERM" else 130

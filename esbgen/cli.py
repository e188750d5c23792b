"""The ``esbgen`` command line; ``manage.py esbgen`` runs the very same group."""

from __future__ import annotations

import sys
from typing import Sequence

import click

from esbgen import __version__
from esbgen.errors import EsbgenError

ESB_ROOT_HELP = "ESB root (default: $ESBGEN_ESB_ROOT, else the current directory)"


def esb_root_option(function):
    return click.option("--esb-root", "esb_root", metavar="DIR", help=ESB_ROOT_HELP)(function)


def dry_run_option(function):
    return click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")(function)


def say(text: str) -> None:
    click.echo(text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="esbgen")
def cli() -> None:
    """Clone, register and swap BlueKing ESB component systems, safely."""


@cli.command()
@click.argument("source")
@click.option("--as", "new", required=True, metavar="NEW", help="Folder name of the new system (SYSTEM_NAME is it in capitals).")
@click.option("--app-code", metavar="CODE", help="App the new system forwards to (default: NEW with '_' as '-').")
@click.option("--label", metavar="TEXT", help="Label of the registered system (default: its SYSTEM_NAME).")
@click.option("--type", "saas_type", metavar="TYPE", help="Force a SaaS type (see `esbgen plugins`).")
@click.option("--force", is_flag=True, help="Replace an existing, different target.")
@esb_root_option
@dry_run_option
def clone(source, new, app_code, label, saas_type, force, esb_root, dry_run):
    """Clone the component set SOURCE as a new system and register it."""
    from esbgen import commands

    return commands.clone(
        esb_root, source, new, say, app_code=app_code, label=label, dry_run=dry_run, force=force, saas_type=saas_type
    )


@cli.command()
@click.argument("source")
@click.option("-o", "--output", required=True, metavar="DIR", help="Empty or new folder for the template.")
@click.option("--as", "new", metavar="NEW", help="Default system name in cookiecutter.json (default: SOURCE_clone).")
@click.option("--app-code", metavar="CODE")
@click.option("--type", "saas_type", metavar="TYPE")
@esb_root_option
def templatize(source, output, new, app_code, saas_type, esb_root):
    """Write the cookiecutter template a clone of SOURCE is rendered from."""
    from esbgen import commands

    return commands.templatize(esb_root, source, output, say, new=new, app_code=app_code, saas_type=saas_type)


@cli.command()
@click.argument("systems", nargs=-1)
@esb_root_option
def check(systems, esb_root):
    """Check systems (default: all) against the rules the ESB enforces; exit 1 on any problem."""
    from esbgen import commands

    return commands.check(esb_root, list(systems), say)


@cli.command(name="list")
@esb_root_option
def list_(esb_root):
    """List the systems of an ESB tree, their kind, channels and registration."""
    from esbgen import commands

    return commands.list_systems(esb_root, say)


@cli.command()
def plugins():
    """List every plugin, where it comes from and the hooks it implements."""
    from esbgen import commands

    return commands.plugins(say)


@cli.command()
@click.option("--list", "list_only", is_flag=True, help="Show the recorded changes.")
@click.option("--id", "journal_id", metavar="ID", help="Undo this change (default: the last one).")
@esb_root_option
def undo(list_only, journal_id, esb_root):
    """Revert the last change esbgen applied to this ESB root."""
    from esbgen import commands

    return commands.undo(esb_root, say, list_only=list_only, journal_id=journal_id)


_plugins_added = False


def build_cli() -> click.Group:
    """The root group with the commands plugins add."""
    global _plugins_added
    if not _plugins_added:
        from esbgen.plugins import call_hook

        call_hook("esbgen_register_commands", cli=cli)
        _plugins_added = True
    return cli


def run(argv: Sequence[str] | None = None, prog_name: str = "esbgen") -> int:
    """Run the command line and return its exit status; errors are one line, never a traceback."""
    try:
        group = build_cli()
        result = group.main(args=list(argv) if argv is not None else None, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Abort:
        click.echo("esbgen: aborted", err=True)
        return 1
    except EsbgenError as error:
        click.echo(f"{prog_name}: error: {error}", err=True)
        return error.exit_code
    except KeyboardInterrupt:
        click.echo(f"{prog_name}: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run())

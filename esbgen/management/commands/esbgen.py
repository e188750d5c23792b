"""``python manage.py esbgen <subcommand>``: the esbgen command line, inside the ESB's Django project.

The raw argv goes to ``esbgen.cli.run``, the very parser and code of the
standalone ``esbgen`` command: same subcommands, options, output and exit
status.  Inside the project, the database is the project's (its own
``bkcore.ComponentSystem`` model), ``--sync`` runs with the project's Python,
and ``--esb-root`` defaults to ``settings.BASE_DIR`` unless given or set in
``$ESBGEN_ESB_ROOT``.
"""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError

ROOT_ENV = "ESBGEN_ESB_ROOT"


def esb_root_defaults(group) -> dict:
    """click default_map: ``--esb-root`` = settings.BASE_DIR for every (sub)command that has it."""
    from django.conf import settings

    base_dir = getattr(settings, "BASE_DIR", None)
    if not base_dir or os.environ.get(ROOT_ENV):
        return {}

    def defaults(command) -> dict:
        found = {}
        if any(param.name == "esb_root" for param in command.params):
            found["esb_root"] = str(base_dir)
        for name, sub in getattr(command, "commands", {}).items():
            sub_defaults = defaults(sub)
            if sub_defaults:
                found[name] = sub_defaults
        return found

    return defaults(group)


DJANGO_GLOBAL_OPTIONS = ("--settings", "--pythonpath")


def without_django_options(argv: list[str]) -> list[str]:
    """Drop --settings/--pythonpath: ManagementUtility has applied them already; esbgen's parser knows neither."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in DJANGO_GLOBAL_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(option + "=" for option in DJANGO_GLOBAL_OPTIONS)):
            kept.append(arg)
    return kept


def run_esbgen(argv: list[str], prog_name: str) -> int:
    from esbgen.cli import build_cli, run

    return run(argv, prog_name=prog_name, default_map=esb_root_defaults(build_cli()), in_django=True)


class Through:
    """A text stream that writes to a command's OutputWrapper as it is (no line end added)."""

    def __init__(self, wrapper):
        self.wrapper = wrapper

    def write(self, text: str) -> int:
        self.wrapper.write(text, ending="")
        return len(text)

    def flush(self) -> None:
        self.wrapper.flush()

    def isatty(self) -> bool:
        return self.wrapper.isatty()


class Command(BaseCommand):
    help = "Clone, register and swap ESB component systems (the esbgen command line; see `esbgen --help`)."

    def run_from_argv(self, argv: list[str]) -> None:
        prog_name = f"{os.path.basename(argv[0])} {argv[1]}"
        sys.exit(run_esbgen(without_django_options(list(argv[2:])), prog_name))

    def print_help(self, prog_name: str, subcommand: str) -> None:
        run_esbgen(["--help"], f"{prog_name} {subcommand}")

    def add_arguments(self, parser) -> None:
        import argparse

        parser.add_argument("args", nargs=argparse.REMAINDER, help="esbgen subcommand and its options")

    def handle(self, *args, **options) -> None:
        # call_command("esbgen", "clone", ..., stdout=buf): the same command line, in-process; what it
        # prints goes through self.stdout and self.stderr, where the caller asked for it.
        from contextlib import redirect_stderr, redirect_stdout

        with redirect_stdout(Through(self.stdout)), redirect_stderr(Through(self.stderr)):
            status = run_esbgen([str(a) for a in args], "manage.py esbgen")
        if status:
            raise CommandError(f"esbgen exited with status {status}", returncode=status)

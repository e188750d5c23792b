# -*- coding: utf-8 -*-
"""``python manage.py esbgen <subcommand> ...``: the esbgen command line, run from its own environment.

The arguments go to esbgen as they are (Django's --settings and --pythonpath
aside); see ``esbgen_django.runner`` for what is handed over and how.
"""

import argparse
import os
import sys

from django.core.management.base import BaseCommand, CommandError

from esbgen_django import runner


class Command(BaseCommand):
    help = "Clone, register and swap ESB component systems: runs the esbgen command (see `esbgen --help`)."

    def run_from_argv(self, argv):
        status = runner.run(runner.without_django_options(list(argv[2:])), manage_py=argv[0])
        sys.exit(status)

    def print_help(self, prog_name, subcommand):
        runner.run(["--help"], manage_py=prog_name if os.path.basename(prog_name) == "manage.py" else sys.argv[0])

    def add_arguments(self, parser):
        parser.add_argument("args", nargs=argparse.REMAINDER, help="esbgen subcommand and its options")

    def handle(self, *args, **options):
        # call_command("esbgen", "clone", ..., stdout=buf): the same command line, from code; its output
        # goes through self.stdout and self.stderr, where the caller asked for it.
        status = runner.run([str(a) for a in args], manage_py=sys.argv[0],
                            stdout=lambda text: self.stdout.write(text, ending=""),
                            stderr=lambda text: self.stderr.write(text, ending=""))
        if status:
            error = CommandError("esbgen exited with status %d" % status)
            error.returncode = status
            raise error

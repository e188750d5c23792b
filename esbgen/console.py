"""The ``esbgen`` console script, and ``python -m esbgen``.

A clone's helper process (esbgen/render_helper.py) is started before the command line and
its plugins are loaded: its import of cookiecutter runs beside esbgen's own imports instead of
after them (at 2,000 channels the helper's copies were what the clone waited for last).

``esbgen --version`` alone is answered before click is imported: click's import is most of what
it would cost (30 ms, three times Python's own start), for one line that click's
``version_option`` words with the same VERSION_MESSAGE.
"""

from __future__ import annotations

import sys

VERSION_MESSAGE = "%(prog)s, version %(version)s"


def main() -> None:
    import gc

    arguments = sys.argv[1:]
    if arguments == ["--version"]:
        from esbgen import __version__

        sys.stdout.write(VERSION_MESSAGE % {"prog": "esbgen", "version": __version__} + "\n")
        return
    # One command per process, building big graphs of small objects (YAML nodes, syntax trees):
    # collecting cycles every 700 allocations cost a quarter of a 2,000-channel clone (benchmarks/).
    gc.set_threshold(100_000, 50, 100)
    if renders_a_clone(arguments):
        from esbgen.render_helper import prestart

        prestart()
    from esbgen.cli import run

    status = run()
    # What the command built is freed by reference counts as the interpreter ends; its last cyclic
    # collection would walk all of it for nothing first (a twentieth of a 2,000-channel clone).
    gc.freeze()
    sys.exit(status)


def renders_a_clone(arguments: list[str]) -> bool:
    """Whether the command line is a clone, which renders (its helper is started first)."""
    words = [a for a in arguments if not a.startswith("-")]
    return bool(words) and words[0] == "clone" and not {"--help", "-h"} & set(arguments)

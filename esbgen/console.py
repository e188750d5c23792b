"""The ``esbgen`` console script, and ``python -m esbgen``.

A clone's helper process (esbgen/render_helper.py) is started before the command line and
its plugins are loaded: its import of cookiecutter runs beside esbgen's own imports instead of
after them (at 2,000 channels the helper's copies were what the clone waited for last).
"""

from __future__ import annotations

import sys


def main() -> None:
    import gc

    # One command per process, building big graphs of small objects (YAML nodes, syntax trees):
    # collecting cycles every 700 allocations cost a quarter of a 2,000-channel clone (benchmarks/).
    gc.set_threshold(100_000, 50, 100)
    if renders_a_clone(sys.argv[1:]):
        from esbgen.render_helper import prestart

        prestart()
    from esbgen.cli import run

    sys.exit(run())


def renders_a_clone(arguments: list[str]) -> bool:
    """Whether the command line is a clone, which renders (its helper is started first)."""
    words = [a for a in arguments if not a.startswith("-")]
    return bool(words) and words[0] == "clone" and not {"--help", "-h"} & set(arguments)

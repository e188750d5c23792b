"""The ``esbgen`` console script, and ``python -m esbgen``.

``esbgen --version`` alone is answered before click is imported: click's import is most of what
it would cost (30 ms, three times Python's own start), for one line that click's
``version_option`` words with the same VERSION_MESSAGE.
"""

from __future__ import annotations

import sys


def main() -> None:
    import gc

    if sys.argv[1:] == ["--version"]:
        from esbgen import VERSION_MESSAGE, __version__

        sys.stdout.write(VERSION_MESSAGE % {"prog": "esbgen", "version": __version__} + "\n")
        return
    # One command per process, building big graphs of small objects (YAML nodes, syntax trees):
    # collecting cycles every 700 allocations cost a quarter of a 2,000-channel clone (benchmarks/).
    gc.set_threshold(100_000, 50, 100)
    from esbgen.cli import run

    status = run()
    # What the command built is freed by reference counts as the interpreter ends; its last cyclic
    # collection would walk all of it for nothing first (a twentieth of a 2,000-channel clone).
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    main()

"""The ``esbgen`` console script, and ``python -m esbgen``.

A clone's helper process (esbgen/render_helper.py) is forked from this process before the
command line and its plugins are loaded: its import of cookiecutter runs beside esbgen's own
imports instead of after them, and it skips a Python start.

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
        # Imported before the fork, what both processes need is imported once: the helper's module,
        # and importlib.metadata (esbgen's plugins' entry points; cookiecutter's own version).
        import importlib.metadata  # noqa: F401

        from esbgen.render_helper import prestart

        prestart(fork_helper())
    from esbgen.cli import run

    status = run()
    # What the command built is freed by reference counts as the interpreter ends; its last cyclic
    # collection would walk all of it for nothing first (a twentieth of a 2,000-channel clone).
    gc.freeze()
    sys.exit(status)


def fork_helper() -> "tuple[int, int, int, int] | None":
    """A clone's helper, forked from this process before click and the plugins load: its pid and the
    file descriptors of its stdin, stdout and stderr (None where it cannot fork; esbgen then starts it
    as a new interpreter). The child skips a Python start and begins importing cookiecutter 30-50 ms
    sooner than a helper started as a new Python; it never returns from here."""
    import os

    try:
        pipes = [os.pipe() for _ in range(3)]  # (read, write) of its stdin, stdout, stderr
        parent = os.getpid()
        pid = os.fork()
    except (OSError, AttributeError):
        return None
    if pid == 0:  # the helper
        status = 1
        try:
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)  # esbgen stops it and words the interruption
            for number, (reading, writing) in enumerate(pipes):
                os.dup2(reading if number == 0 else writing, number)
            for pair in pipes:
                for descriptor in pair:
                    os.close(descriptor)
            from esbgen.render_helper import helper_main

            status = helper_main(parent)
        except BaseException:  # noqa: BLE001 - said on its stderr, which esbgen reads
            import traceback

            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(status)  # nothing of esbgen's may run again in the child: no atexit, no unwinding
    (stdin_read, stdin_write), (stdout_read, stdout_write), (stderr_read, stderr_write) = pipes
    for descriptor in (stdin_read, stdout_write, stderr_write):
        os.close(descriptor)
    return pid, stdin_write, stdout_read, stderr_read


def renders_a_clone(arguments: list[str]) -> bool:
    """Whether the command line is a clone, which renders (its helper is started first)."""
    words = [a for before, a in zip(["", *arguments], arguments) if not a.startswith("-") and before != "--esb-root"]
    return bool(words) and words[0] == "clone" and not {"--help", "-h"} & set(arguments)

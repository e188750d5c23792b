"""The tests' fault injection, an esbgen plugin: kill or interrupt a run at a named moment.

Loaded through its entry point when this folder is on PYTHONPATH (``faultkit.with_faults``):

- ``ESBGEN_CRASH_AT=MOMENT`` ends the process there with status 137, as kill -9 would;
- ``ESBGEN_INTERRUPT_AT=MOMENT`` sends it SIGINT there, as Ctrl-C would (SIGTERM with
  ``ESBGEN_INTERRUPT_SIGNAL=TERM``), once a run. ``phase:NAME:COUNT`` is the first moment
  of phase NAME with at least COUNT items done.

The moments are those of the ``esbgen_moment`` hook (esbgen/hookspecs.py).
"""

import os
import signal

from esbgen import hookimpl

_interrupted = False


def _reached(wanted: str, moment: str) -> bool:
    if wanted == moment:
        return True
    # phase:NAME:COUNT is reached by the first phase:NAME:DONE with DONE >= COUNT (items may be counted together)
    name, _, count = wanted.rpartition(":")
    at, _, done = moment.rpartition(":")
    return name.startswith("phase:") and name == at and count.isdigit() and done.isdigit() and int(done) >= int(count)


@hookimpl
def esbgen_moment(moment):
    global _interrupted
    if _reached(os.environ.get("ESBGEN_CRASH_AT", ""), moment):
        os._exit(137)
    if not _interrupted and _reached(os.environ.get("ESBGEN_INTERRUPT_AT", ""), moment):
        _interrupted = True
        which = os.environ.get("ESBGEN_INTERRUPT_SIGNAL", "").upper() in ("TERM", "SIGTERM")
        os.kill(os.getpid(), signal.SIGTERM if which else signal.SIGINT)

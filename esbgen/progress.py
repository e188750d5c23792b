"""A one-line progress display on stderr for long work: the phase and a count.

Shown only when stderr is a terminal, never with ``--quiet``, and only once a run has
taken about a second (a short run prints nothing extra). Redrawn at most ten times a
second; the line is erased when the run ends or prints anything else.

The code that works calls ``phase("reading", total)`` then ``tick()`` per item; both
cost a function call and a clock read when nothing is shown.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, TextIO

DELAY = 1.0  # seconds of work before anything is shown ($ESBGEN_PROGRESS_DELAY overrides it)
INTERVAL = 0.1  # seconds between redraws

_quiet = False
_started: float | None = None
_phase = ""
_done = 0
_total: int | None = None
_next_draw = 0.0
_show_from = 0.0
_shown = False
_stream: TextIO | None = None
# Set by esbgen.plugins when a plugin implements esbgen_moment: a phase's start and each tick are moments.
moment: Callable[[str], None] | None = None


def set_quiet(quiet: bool) -> None:
    """``--quiet``: never show progress in this process."""
    global _quiet
    _quiet = quiet
    if quiet:
        clear()


def _delay() -> float:
    try:
        return float(os.environ.get("ESBGEN_PROGRESS_DELAY", DELAY))
    except ValueError:
        return DELAY


def _enabled() -> TextIO | None:
    if _quiet:
        return None
    stream = sys.stderr
    try:
        return stream if stream is not None and stream.isatty() else None
    except (AttributeError, ValueError):
        return None


def phase(name: str, total: int | None = None) -> None:
    """Start (or switch to) a phase: ``reading``, ``rendering``, ``checking``, ``applying`` (and for an
    export, ``exporting`` and ``writing``)."""
    global _started, _phase, _done, _total, _next_draw, _show_from
    now = time.monotonic()
    if _started is None:
        _started = now
        _next_draw = _show_from = now + _delay()
    _phase, _done, _total = name, 0, total
    if moment is not None:
        moment(f"phase:{name}")
    if now >= _show_from and _next_draw != float("inf"):  # a new phase shows at once, once any would
        _draw(now)


def tick(count: int = 1) -> None:
    """``count`` more items of the current phase are done."""
    global _done
    _done += count
    if moment is not None:
        moment(f"phase:{_phase}:{_done}")
    if _started is not None:
        now = time.monotonic()
        if now >= _next_draw:
            _draw(now)


def _draw(now: float) -> None:
    global _next_draw, _shown, _stream
    _next_draw = now + INTERVAL
    stream = _stream or _enabled()
    if stream is None:
        _next_draw = float("inf")  # not a terminal, or quiet: never look again
        return
    _stream = stream
    if _total:
        width = 24
        filled = min(width, width * _done // _total)
        text = f"esbgen: {_phase} [{'#' * filled}{'.' * (width - filled)}] {_done:,}/{_total:,}"
    else:
        text = f"esbgen: {_phase} {_done:,}" if _done else f"esbgen: {_phase} ..."
    stream.write("\r\x1b[K" + text)
    stream.flush()
    _shown = True


def clear() -> None:
    """Erase the line (before other output, and when the run ends)."""
    global _shown
    if _shown and _stream is not None:
        try:
            _stream.write("\r\x1b[K")
            _stream.flush()
        except (OSError, ValueError):
            pass
    _shown = False


def end() -> None:
    """The run is over: erase the line and forget the phase."""
    global _started, _phase, _done, _total, _next_draw, _show_from, _stream
    clear()
    _started, _phase, _done, _total, _next_draw, _show_from, _stream = None, "", 0, None, 0.0, 0.0, None

"""Errors an operator sees as one line, never as a traceback, typed by what happened to the tree.

A caller (the CLI, ``manage.py esbgen``, the Ansible module, a script) tells the outcomes apart
by class, not by reading the message:

- ``Refused``: nothing was changed (bad input, a rule the plan breaks, a lock held, ...);
- ``RolledBack``: a change was started, failed, and everything it had done was put back;
- ``RollbackIncomplete``: a change failed and could not all be put back; the message names what
  is left, and the journal keeps it so that the next run (or ``esbgen undo``) finishes the job;
- ``StepFailed``: the change is applied and kept; a step after it (sync, restart) failed;
- ``Interrupted``: Ctrl-C or SIGTERM; ``tree_state`` says which of the above it amounts to.

``EsbgenError`` is their common base: ``except EsbgenError`` still catches every one of them.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

UNCHANGED = "unchanged"
ROLLED_BACK = "rolled back"
ROLLBACK_INCOMPLETE = "rollback incomplete"
APPLIED = "applied"


class EsbgenError(Exception):
    """Base of every error esbgen explains to the operator; exit status 1.

    Raised as such, it is a refusal: code that cannot tell yet raises the base class, and the
    runner, which knows whether anything was applied, reports the state.
    """

    exit_code = 1
    tree_state = UNCHANGED


class Refused(EsbgenError):
    """Refused before anything was changed: the tree, the database and nginx are as they were."""

    tree_state = UNCHANGED


class UsageError(Refused):
    """The command line itself is wrong; exit status 2."""

    exit_code = 2


class PluginError(EsbgenError):
    """A plugin raised inside a hook."""

    def __init__(self, plugin: str, hook: str, error: BaseException):
        self.plugin, self.hook, self.error = plugin, hook, error
        super().__init__(f"plugin {plugin!r} failed in hook {hook}: {type(error).__name__}: {error}")


class RolledBack(EsbgenError):
    """A change failed part-way and every step it had done was reverted."""

    tree_state = ROLLED_BACK


class RollbackIncomplete(EsbgenError):
    """A change failed and some of its steps could not be reverted; the journal keeps them."""

    tree_state = ROLLBACK_INCOMPLETE


class StepFailed(EsbgenError):
    """A step run after the change (sync, restart) failed; the change itself is applied and kept.

    ``tree_state`` is ``unchanged`` when the plan had nothing to change and only its steps ran.
    """

    tree_state = APPLIED

    def __init__(self, message: str, tree_state: str = APPLIED):
        super().__init__(message)
        self.tree_state = tree_state


class Interrupted(EsbgenError):
    """Ctrl-C (SIGINT) or SIGTERM: the message says what state the tree is in; exit status 130 (SIGINT)
    or 143 (SIGTERM), as a shell reports a command the signal ended."""

    exit_code = 130

    def __init__(self, message: str, tree_state: str = UNCHANGED, signal_name: str = "SIGINT"):
        super().__init__(message)
        self.tree_state = tree_state
        self.signal_name = signal_name
        self.exit_code = 143 if signal_name == "SIGTERM" else 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the run is, so that it unwinds (and rolls back) exactly as Ctrl-C does."""


def signal_name(interrupt: BaseException) -> str:
    return "SIGTERM" if isinstance(interrupt, Terminated) else "SIGINT"


@contextmanager
def signals_held() -> Iterator[list[BaseException]]:
    """Hold SIGINT and SIGTERM until the block is done (a revert is never left half-way by a signal);
    the block's list tells which came, as the exception each would have raised."""
    came: list[BaseException] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return

    def hold(signum, frame):
        came.append(Terminated() if signum == signal.SIGTERM else KeyboardInterrupt())

    previous = {signum: signal.signal(signum, hold) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield came
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

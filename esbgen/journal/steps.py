"""External step kinds: what a plugin implements so the journal can apply, revert and check a change
outside the file tree (database rows, a running nginx).

A kind comes from the ``esbgen_step_kinds`` hook (see ``esbgen.hookspecs``; looked up by
``esbgen.plugins.step_kind``); esbgen's own (``db_system``, ``db_synced_rows``) come from the
built-in plugin ``db``, exactly as a third-party plugin's do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol


class StepKind(Protocol):
    """One kind of external step.

    ``record`` is the step's JSON-serialisable record, as the plan made it and as the journal keeps
    it; ``apply`` may add to it (what it found, what it did) and call ``ctx.checkpoint`` to have the
    journal write it down before a point a kill must be able to come back from.
    """

    kind: str

    def apply(self, record: dict[str, Any], ctx: "StepContext") -> None:
        """Make the change; raise (an EsbgenError for a one-line reason) to have the whole change rolled back."""

    def revert(self, record: dict[str, Any], ctx: "StepContext") -> None:
        """Take the change back from whatever point ``apply`` reached, none included; idempotent.

        Another process may call it after a kill, from the journal's record alone. Raise when the
        change cannot be taken back (someone changed what it made since): the journal reports it.
        """

    def verify(self, record: dict[str, Any], ctx: "StepContext") -> bool:
        """Is the change applied and still as ``apply`` left it? ``esbgen undo`` refuses when it is not.

        A kind may also have ``describe_revert(record) -> list[str]``: what ``revert`` does, for
        ``esbgen undo --dry-run``.
        """


@dataclass
class StepContext:
    """What the journal tells a step kind about the change it belongs to."""

    root: Path  # where the change's relative paths start: the ESB root, or the host state folder
    journal_dir: Path  # the change's own folder in the journal
    journal_id: str
    save: Callable[[], None]  # write the journal (with every record) to disk now
    moment: Callable[[str], None]  # passes a named moment (the esbgen_moment hook, where tests kill the run)
    run: Any = None  # the run applying or reverting (esbgen.runner.Context): its database, never the journal's
    ops: list[dict[str, Any]] = field(default_factory=list)  # every step of the change, as the journal records them

    def checkpoint(self, name: str) -> None:
        """Record what the step did so far, then pass the moment ``name``."""
        self.save()
        self.moment(name)


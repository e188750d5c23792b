"""What the commands do, whichever shell calls them (the CLI or ``manage.py esbgen``).

Each function takes plain arguments and a ``say`` callable for output and
returns the exit status; refusals are raised as EsbgenError.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from esbgen.errors import EsbgenError

Say = Callable[[str], None]


@contextmanager
def writable_root(root_option: str | None, say: Say, dry_run: bool) -> Iterator[Path]:
    """The resolved root; for a real run, locked, with any interrupted change rolled back first."""
    from esbgen.esbtree import resolve_root
    from esbgen.journal import locked, recover, state_dir

    root = resolve_root(root_option)
    if dry_run:
        if state_dir(root).is_dir():
            with locked(root):
                recover(root, say)
        yield root
        return
    with locked(root):
        recover(root, say)
        yield root


@contextmanager
def scratch(root: Path, dry_run: bool) -> Iterator[Path]:
    """Where a plan is rendered: beside the tree for a real run (renames), else in /tmp."""
    from esbgen.journal import work_dir

    path = Path(tempfile.mkdtemp(prefix="esbgen-")) if dry_run else work_dir(root)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def add_plugin_steps(plan, command: str, options: dict[str, Any]) -> None:
    from esbgen.plugins import call_hook

    for steps in call_hook("esbgen_plan_steps", plan=plan, command=command, options=options):
        plan.post_steps.extend(steps or [])


def execute(plan, say: Say, dry_run: bool, summary: Callable[[], list[str]] | None = None) -> int:
    """Show a plan; apply it unless dry; run its post-steps; say honestly what happened."""
    from esbgen.journal import apply

    say(plan.describe())
    if dry_run:
        say("Dry run: nothing was changed.")
        return 0
    if plan.is_empty:
        say("Nothing to do: the tree is already as asked.")
        return 0
    journal = apply(plan)
    for line in summary() if summary else []:
        say(line)
    say(f"Applied as change {journal.id}; `esbgen undo` reverts it.")
    return run_post_steps(plan, say)


def run_post_steps(plan, say: Say) -> int:
    import subprocess

    for step in plan.post_steps:
        if not step.runnable:
            continue
        say(f"Running: {step.description}")
        try:
            if step.run is not None:
                output = step.run()
            else:
                done = subprocess.run(
                    step.command, cwd=step.cwd, env=step.env, capture_output=True, text=True, check=False
                )
                output = (done.stdout + done.stderr).strip()
                if done.returncode != 0:
                    raise EsbgenError(
                        f"{step.description} failed (exit {done.returncode}): {output.splitlines()[-1] if output else 'no output'}"
                    )
        except EsbgenError as error:
            say(f"The change itself is applied and kept; this step failed: {error}")
            raise
        if output:
            say(output)
    return 0


def clone(root_option: str | None, source: str, new: str, say: Say, *, app_code: str | None = None,
          label: str | None = None, dry_run: bool = False, force: bool = False, saas_type: str | None = None,
          options: dict[str, Any] | None = None) -> int:
    from esbgen.clone import CloneRequest, plan_clone

    request = CloneRequest(source, new, app_code, label, force, saas_type)
    with writable_root(root_option, say, dry_run) as root, scratch(root, dry_run) as work:
        outcome = plan_clone(root, request, work)
        plan = outcome.plan
        add_plugin_steps(plan, "clone", options or {})
        if plan.is_empty and not dry_run:
            say(f"Nothing to do: {new} is already this clone of {source}, and registered.")
            return 0

        def summary() -> list[str]:
            edits = ", ".join(f"{kind} x{count}" for kind, count in sorted(outcome.edits_by_kind.items()))
            return [
                f"Cloned {source} as {new} (SYSTEM_NAME {outcome.target.system_name}, app {outcome.target.app_code}, "
                f"SaaS type {outcome.saas_type.name}): {len(plan.added_files())} files written; edits: {edits or 'none'}."
            ]

        return execute(plan, say, dry_run, summary)


def templatize(root_option: str | None, source: str, output: str, say: Say, *, new: str | None = None,
               app_code: str | None = None, saas_type: str | None = None) -> int:
    from esbgen.clone import CloneRequest, design_clone
    from esbgen.esbtree import resolve_root

    root = resolve_root(root_option)
    destination = Path(output)
    if destination.exists() and any(destination.iterdir()):
        raise EsbgenError(f"{destination} exists and is not empty")
    design = design_clone(root, CloneRequest(source, new or f"{source}_clone", app_code, None, False, saas_type))
    design.spec.write(destination)
    say(f"Wrote a cookiecutter template of {source} to {destination} ({len(design.spec.files)} files,"
        f" {sum(design.counts.values())} identifiers as variables).")
    say(f"Render it into an ESB root with: cookiecutter --no-input -f {destination} -o {root}")
    return 0


def check(root_option: str | None, systems: list[str], say: Say) -> int:
    from esbgen.esbtree import load_tree, resolve_root
    from esbgen.plugins import call_hook
    from esbgen.rules import check_tree, validate_system_folder

    root = resolve_root(root_option)
    for name in systems:
        validate_system_folder(name)
    tree = load_tree(root)
    problems = [str(p) for p in check_tree(tree, systems or None)]
    for extra in call_hook("esbgen_check_tree", tree=tree):
        problems.extend(extra or [])
    for problem in problems:
        say(problem)
    checked = systems or sorted(tree.systems)
    if problems:
        say(f"{len(problems)} problem(s) in {len(checked)} system(s).")
        return 1
    say(f"OK: {len(checked)} system(s) follow the ESB's rules.")
    return 0


def list_systems(root_option: str | None, say: Say) -> int:
    from esbgen.esbtree import load_tree, resolve_root
    from esbgen.rules import OFFICIAL_SYSTEMS

    root = resolve_root(root_option)
    tree = load_tree(root)
    rows = [("SYSTEM", "KIND", "CHANNELS", "COMPONENTS", "REGISTERED")]
    for name, system in sorted(tree.systems.items()):
        upper = (system.system_name or name).upper()
        if upper in tree.registered:
            registered = "yes (conf.py)"
        elif upper in OFFICIAL_SYSTEMS:
            registered = "official"
        else:
            registered = "no"
        channels = len(system.default_channels()) if system.confapis_dir else len(system.preset_channels)
        rows.append((name, system.kind, str(channels), str(len(system.components)), registered))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        say("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def plugins(say: Say) -> int:
    from esbgen.plugins import describe_plugins

    for row in describe_plugins():
        hooks = ", ".join(row["hooks"]) or "-"
        say(f"{row['name']}  ({row['origin']})\n    hooks: {hooks}")
    return 0


def undo(root_option: str | None, say: Say, *, list_only: bool = False, journal_id: str | None = None) -> int:
    from esbgen.esbtree import resolve_root
    from esbgen.journal import journals, locked, recover
    from esbgen.journal import undo as undo_change

    root = resolve_root(root_option)
    if list_only:
        history = journals(root)
        if not history:
            say("No change recorded.")
        for journal in history:
            say(f"{journal.id}  {journal.data.get('created_at', '?')}  {journal.state:<11}  {journal.data.get('title')}")
        return 0
    with locked(root):
        recover(root, say)
        journal = undo_change(root, journal_id)
    say(f"Undid change {journal.id}: {journal.data.get('title')}.")
    return 0

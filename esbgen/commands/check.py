"""``esbgen check``: the ESB's rules, checked over every system or the ones named."""

from __future__ import annotations

from dataclasses import dataclass, field

from esbgen.runner import Context, Operation


@dataclass
class Check(Operation):
    systems: list[str] = field(default_factory=list)
    command = "check"
    writes = False

    def read(self, ctx: Context) -> int:
        from esbgen.esb.rules import check_tree, tolerated, validate_system_folder
        from esbgen.esb.tree import load_tree
        from esbgen.plugins import call_hook

        for name in self.systems:
            validate_system_folder(name)
        tree = load_tree(ctx.root, positions=set())  # no value's place: check edits nothing
        found, inherited = check_tree(tree, self.systems or None)
        problems = [str(p) for p in found if not tolerated(tree, p)]
        notes = [str(p) for p in found if tolerated(tree, p)]
        for extra in call_hook("esbgen_check_tree", tree=tree):
            problems.extend(extra or [])
        for problem in problems:
            ctx.say(problem)
        for note in notes:
            ctx.say(f"note: {note}; the ESB serves on")
        for source, problem in inherited:
            ctx.say(f"inherited from {source} (the clone serves what its source serves): {problem}")
        checked = self.systems or sorted(tree.systems)
        if problems:
            ctx.say(f"{len(problems)} problem(s) in {len(checked)} system(s).")
            return 1
        ctx.say(f"OK: {len(checked)} system(s) follow the ESB's rules"
                + (f" ({len(notes)} note(s): what the ESB tolerates)." if notes else "."))
        return 0

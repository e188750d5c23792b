"""``esbgen list``: the systems of an ESB root, with what serves them."""

from __future__ import annotations

from dataclasses import dataclass

from esbgen.esb.layout import CUSTOM_CONF
from esbgen.runner import Context, Operation


@dataclass
class ListSystems(Operation):
    command = "list"
    writes = False

    def read(self, ctx: Context) -> int:
        from esbgen import report
        from esbgen.esb.rules import OFFICIAL_SYSTEMS, rowless_presets, served_channels
        from esbgen.esb.tree import load_tree

        tree = load_tree(ctx.root, positions=set())  # no value's place: list edits nothing
        # ROWS: the channel rows the ESB's sync makes; WITHOUT ROW: esb_conf.py presets its router serves all the same
        rows = [("SYSTEM", "KIND", "ROWS", "COMPONENTS", "REGISTERED", "WITHOUT ROW")]
        for name, system in sorted(tree.systems.items()):
            upper = (system.system_name or name).upper()
            if upper in tree.registered:
                registered = f"yes ({CUSTOM_CONF.name})"
            elif upper in OFFICIAL_SYSTEMS:
                registered = "official"
            else:
                registered = "no"
            channels = len(served_channels(tree, system)[0])
            rows.append((name, system.kind, str(channels), str(len(system.components)), registered,
                         str(len(rowless_presets(tree, system)))))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            ctx.say("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        report.set(systems=[dict(zip((heading.lower() for heading in rows[0]), row)) for row in rows[1:]])
        return 0

"""``esbgen plugins``: the plugins loaded, with the hooks each implements."""

from __future__ import annotations


def plugins(say) -> int:
    """``esbgen plugins``: no ESB root, nothing to recover."""
    from esbgen import report
    from esbgen.plugins import describe_plugins

    rows = describe_plugins()
    for row in rows:
        hooks = ", ".join(row["hooks"]) or "-"
        say(f"{row['name']}  ({row['origin']})\n    hooks: {hooks}")
    report.set(plugins=rows)
    return 0

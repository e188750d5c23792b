"""The step kinds of esbgen's own database rows: a system's row (``db_system``) and the rows a
verified sync wrote (``db_synced_rows``), declared through the hook any plugin uses."""

from __future__ import annotations

from esbgen import hookimpl


@hookimpl(trylast=True)
def esbgen_step_kinds():
    from esbgen.db.registration import DbSystemKind
    from esbgen.db.sync import SyncedRowsKind

    return [DbSystemKind(), SyncedRowsKind()]

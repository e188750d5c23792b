"""Kill or interrupt an esbgen process at a named moment: the tests' fault plugin (tests/faults) on its path."""

from __future__ import annotations

import os
from pathlib import Path

FAULTS = str(Path(__file__).resolve().parent / "faults")


def with_faults(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the fault plugin on PYTHONPATH: its ESBGEN_CRASH_AT / ESBGEN_INTERRUPT_AT then take effect."""
    return {**env, "PYTHONPATH": os.pathsep.join([FAULTS, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}

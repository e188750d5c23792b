"""Where things are in an ESB root, for both ESB generations.

The legacy ESB (Python 2.7, Django 1.8) keeps its host settings in
``configs/default.py``; the later one (Python 3.6-3.7, Django 1.11) in
``conf/default.py``.  Everything else esbgen reads has the same place in both.
Every module that names a file of the tree takes the name from here.
"""

from __future__ import annotations

from pathlib import Path

COMPONENTS = Path("components")
CUSTOM_CONF = COMPONENTS / "generic/apis/conf.py"
ESB_CONF = COMPONENTS / "esb_conf.py"
CONFAPIS = COMPONENTS / "confapis"

LEGACY_SETTINGS = Path("configs/default.py")
LATER_SETTINGS = Path("conf/default.py")
SETTINGS_FILES = (LEGACY_SETTINGS, LATER_SETTINGS)


def settings_file(root: Path) -> Path:
    """The settings file (relative to ``root``) that holds this tree's host settings.

    The one that exists; with neither (a tree still being assembled), the
    legacy name, which is what the operator procedure names.  With both, the
    later ESB's: a legacy tree never has ``conf/default.py``.
    """
    if (root / LATER_SETTINGS).is_file():
        return LATER_SETTINGS
    return LEGACY_SETTINGS


def generation(root: Path) -> str:
    """``"later"`` for a tree with ``conf/default.py``, else ``"legacy"``."""
    return "later" if settings_file(root) == LATER_SETTINGS else "legacy"

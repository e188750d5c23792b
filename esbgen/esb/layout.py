"""Where things are in an ESB root, for both ESB generations.

The legacy ESB (Python 2.7, Django 1.8) keeps its host settings in
``configs/default.py``; the later one (Python 3.6-3.7, Django 1.11) in
``conf/default.py``.  Everything else esbgen reads has the same place in both.
Every module that names a file or folder of the tree takes the name from here
(``tests/test_layout_literals.py`` holds them to it).
"""

from __future__ import annotations

from pathlib import Path

COMPONENTS = Path("components")

# The folders of ``components/`` that hold one folder per system, as the ESB's esb_conf.py
# lists them; written relative to ``components/`` because that is how a template names them.
APISV2_GROUP = "bk/apisv2"  # Python side of a system, codename prefix ``generic.v2.``
APIS_GROUP = "bk/apis"  # the older v1 side, ``generic.``
TEMPLATES_GROUP = "generic/templates"  # built-in generic components, ``generic.``
CONFAPIS_GROUP = "confapis"  # channels declared in YAML
PYTHON_GROUPS = (APISV2_GROUP, APIS_GROUP, TEMPLATES_GROUP)  # the v2 group first: a system's main side

APISV2 = COMPONENTS / APISV2_GROUP
CONFAPIS = COMPONENTS / CONFAPIS_GROUP
CUSTOM_CONF = COMPONENTS / "generic/apis/conf.py"  # this ESB's own SYSTEMS and CHANNELS
ESB_CONF = COMPONENTS / "esb_conf.py"  # the ESB's preset channels; never edited
LIB_GSE = Path("lib/gse")

# Inside a system's Python folder.
SYSTEM_CONFIGS = Path("toolkit/configs.py")  # SYSTEM_NAME and the host it reads
APIDOCS = "apidocs"  # apidocs/<language>/<name>.md, in a Python folder as in a confapis folder

LEGACY_SETTINGS = Path("configs/default.py")
LATER_SETTINGS = Path("conf/default.py")
SETTINGS_FILES = (LEGACY_SETTINGS, LATER_SETTINGS)

# The folders whose presence makes a folder an ESB root, as refusals name them.
ROOT_MARKERS = (COMPONENTS / "bk", CONFAPIS)


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


def is_esb_root(root: Path) -> bool:
    """Whether ``root`` has the ``components/`` of an ESB (its ``bk/`` or ``confapis/`` folder)."""
    return (root / COMPONENTS).is_dir() and any((root / marker).is_dir() for marker in ROOT_MARKERS)


def not_a_root_reason(root: Path) -> str:
    """The words of a refusal of a folder that is no ESB root."""
    return f"{root} is not an ESB root (no {' or '.join(str(m) for m in ROOT_MARKERS)})"


def python_side(group: str, system: str) -> Path:
    """A system's folder in one of the Python groups: ``components/bk/apisv2/<system>``."""
    return COMPONENTS / group / system


def confapis_dir(system: str) -> Path:
    return CONFAPIS / system


def system_folders(system: str) -> list[Path]:
    """Every folder a system can have, Python sides first, then its confapis folder."""
    return [*(python_side(group, system) for group in PYTHON_GROUPS), confapis_dir(system)]


def is_confapis_yaml(relative: Path) -> bool:
    """Whether a path (relative to the root) is a YAML file under ``components/confapis/``."""
    return relative.suffix == ".yaml" and relative.parts[: len(CONFAPIS.parts)] == CONFAPIS.parts


def inside_components(root: Path, path: Path) -> bool:
    """Whether ``path`` is the root's ``components/`` or inside it (the ESB would read it as components)."""
    components = root / COMPONENTS
    return path == components or components in path.parents

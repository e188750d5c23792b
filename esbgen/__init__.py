"""esbgen: clone, register and swap BlueKing ESB component systems.

Importing the package stays cheap: pluggy (``hookimpl``), the database drivers, cookiecutter,
libcst and crossplane are imported only where they are used, so that
``esbgen --version`` and ``--help`` start in a few tens of milliseconds.
"""

__version__ = "0.2.0"
# click's version_option words the answer so, and ``esbgen --version`` alone does too, before click loads
VERSION_MESSAGE = "%(prog)s, version %(version)s"

__all__ = ["hookimpl", "__version__"]


def __getattr__(name: str):
    if name == "hookimpl":  # the plugins' marker: pluggy is imported by the first plugin module
        import pluggy

        marker = pluggy.HookimplMarker("esbgen")
        globals()["hookimpl"] = marker
        return marker
    raise AttributeError(f"module 'esbgen' has no attribute {name!r}")

"""esbgen: clone, register and swap BlueKing ESB component systems.

Importing the package stays cheap: Django, cookiecutter, libcst and crossplane
are imported only by the commands that need them.
"""

import pluggy

__version__ = "0.2.0"

hookimpl = pluggy.HookimplMarker("esbgen")

__all__ = ["hookimpl", "__version__"]

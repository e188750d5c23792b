"""``esbgen templatize``: a component set written out as a cookiecutter template."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from esbgen.errors import Refused
from esbgen.esb.layout import COMPONENTS, inside_components
from esbgen.runner import Context, Operation


@dataclass
class Templatize(Operation):
    source: str
    output: str
    new: str | None = None
    app_code: str | None = None
    saas_type: str | None = None
    command = "templatize"
    writes = False

    def read(self, ctx: Context) -> int:
        from esbgen.design import CloneRequest, design_clone

        root = ctx.root
        destination = Path(self.output).absolute()
        if destination.exists() and not destination.is_dir():
            raise Refused(f"{self.output} exists and is not a folder; -o takes a folder for the template")
        # where the template would really be written: symbolic links on the way followed
        real, real_root = Path(os.path.realpath(destination)), Path(os.path.realpath(root))
        if inside_components(root, destination) or inside_components(real_root, real):
            raise Refused(f"{self.output} is inside the ESB's {COMPONENTS}/; the ESB would read the template as "
                          "components. Write it elsewhere")
        if real_root == real or real_root in real.parents or root == destination or root in destination.parents:
            raise Refused(f"{self.output} is inside the ESB root {root}; esbgen writes nothing there but a change it "
                          "applies. Write the template elsewhere")
        if destination.exists() and any(destination.iterdir()):
            raise Refused(f"{destination} exists and is not empty")
        request = CloneRequest(self.source, self.new or f"{self.source}_clone", self.app_code, None, False, self.saas_type)
        design = design_clone(root, request)
        design.spec.write(destination)
        ctx.say(f"Wrote a cookiecutter template of {self.source} to {destination} ({design.spec.file_count} files,"
                f" {sum(design.counts.values())} identifiers as variables).")
        ctx.say(f"Render it into an ESB root with: cookiecutter --no-input -f {destination} -o {root}")
        return 0

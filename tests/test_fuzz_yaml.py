"""Property-based tests of the YAML round trip of a clone (hypothesis).

Each example is a confapis file for ``sops`` with random comments (Chinese,
Jinja-looking), quoting styles (plain, single, double), double spaces after
colons, trailing spaces, blank lines, LF, CRLF or mixed line ends, random key
order, extra fields (flow and block lists, nested mappings) and Jinja-looking
labels, plus apidocs with the ESB's own ``{{ }}`` and ``{% %}``.  The same
drawn structure is written twice: with the source's values, and with the
values the rules give the clone (path ``/v2/bk_sops_ce/<name>/``, comp_codename
``generic.v2.bk_sops_ce.sops_component``, ``/o/bk-sops-ce`` for ``/o/bk_sops``
dest_paths).  The clone, rendered through the real template and cookiecutter
(``plan_clone``; and the readable template of ``templatize``, rendered by
cookiecutter's generate_files), must give the second text byte for byte:
every byte outside those three values is unchanged, and each new value is
what the rules say.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from esbgen.design import CloneRequest, design_clone, plan_clone
from esbgen.esb.confapis import compose
from esbgen.edit.template import render

NEW = "bk_sops_ce"
CONFAPIS = Path("components/confapis")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PIECES = ["查询", "任务", "标准运维", "模板列表", "abc", "Query", "task", "x-y", "a.b", "100%", "{{ 7*7 }}",
          "{{ task.name }}", "{{cookiecutter.system}}", "{% if x %}", "{% endraw %}", "{# c #}", "${group_by}",
          "{bk_biz_id}", "sops", "/o/bk_sops/", "generic.v2.sops.sops_component", "(暂停/继续)"]
QUOTE_UNSAFE = ("'", '"', "\\")
# A plain scalar must not start with an indicator, nor hold ': ' or ' #', nor look like a null.
PLAIN_START = st.sampled_from(["查询", "任务", "abc", "Query", "task", "标准运维", "x"])


@dataclass
class Scalar:
    """A value as drawn: its text, the style it is written in, and how it is spaced."""

    value: str
    style: str  # "plain", "single", "double"
    space: str = " "  # after the colon
    trailing: str = ""
    comment: str = ""

    def raw(self, value: str | None = None) -> str:
        text = self.value if value is None else value
        if self.style == "single":
            return "'" + text.replace("'", "''") + "'"
        if self.style == "double":
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return text


@st.composite
def comments(draw) -> str:
    return "#" + draw(st.sampled_from(["", " "])) + " ".join(draw(st.lists(st.sampled_from(PIECES), max_size=4)))


@st.composite
def label_values(draw) -> Scalar:
    style = draw(st.sampled_from(["plain", "single", "double"]))
    words = draw(st.lists(st.sampled_from(PIECES + list(QUOTE_UNSAFE)), min_size=1, max_size=4))
    if style == "plain":
        words = [w for w in words if w not in QUOTE_UNSAFE and not w.startswith(("{", "%", "$", "/", "("))]
        value = " ".join([draw(PLAIN_START), *words])
    else:
        value = " ".join(words)
    return draw(decorated(value, style))


@st.composite
def decorated(draw, value: str, style: str) -> Scalar:
    return Scalar(
        value,
        style,
        space=draw(st.sampled_from([" ", " ", "  "])),
        trailing=draw(st.sampled_from(["", "", "   ", " "])),
        comment=draw(st.one_of(st.just(""), comments().map(lambda c: "  " + c))),
    )


@st.composite
def simple(draw, value: str) -> Scalar:
    return draw(decorated(value, draw(st.sampled_from(["plain", "single", "double"]))))


EXTRAS = {
    "extra_param_fields": ["[creator]", "[creator, operator]", "\n    - creator\n    - operator"],
    "dest_host_group": ["\n    name: group_a\n    timeout: 30"],
    "is_hidden": ["true", "false"],
    "x_custom_note": ["'自定义 {{ 7*7 }}'", "plain note", '"double \\u4e2d"'],
    "timeout": ["30"],
}


@st.composite
def channels(draw, name: str) -> dict:
    method = draw(st.sampled_from(["GET", "POST"]))
    dest_kind = draw(st.sampled_from(["app", "app", "app", "app-bare", "other"]))
    dest = {"app": f"/o/bk_sops/apigw/{name}/{{bk_biz_id}}/", "app-bare": "/o/bk_sops",
            "other": f"/api/c/self/{name}/"}[dest_kind]
    fields = {
        "path": draw(simple(draw(st.sampled_from([f"/v2/sops/{name}/", f"/sops/{name}/"])))),
        "name": draw(simple(name)),
        "label": draw(label_values()),
        "method": draw(simple(method)),
        "api_type": draw(simple("query" if method == "GET" else "operate")),
        "comp_codename": draw(simple("generic.v2.sops.sops_component")),
        "dest_path": draw(simple(dest)),
        "dest_http_method": draw(simple(method)),
    }
    if draw(st.booleans()):
        fields["label_en"] = draw(label_values())
    extras = {key: draw(st.sampled_from(values)) for key in draw(st.lists(st.sampled_from(sorted(EXTRAS)), unique=True, max_size=3))
              for values in [EXTRAS[key]]}
    order = draw(st.permutations(list(fields) + list(extras)))
    gaps = [draw(st.sampled_from(["", "", "", "blank", "comment", "indented comment"])) for _ in order]
    return {"fields": fields, "extras": extras, "order": order, "gaps": gaps}


@st.composite
def confapis_files(draw) -> dict:
    names = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), min_size=1, max_size=5, unique=True))
    return {
        "names": names,
        "channels": [draw(channels(name)) for name in names],
        "header": draw(st.lists(comments(), max_size=3)),
        "document_start": draw(st.booleans()),
        "between": [draw(st.sampled_from(["\n", "", "\n\n", "comment"])) for _ in names],
        "ends": draw(st.sampled_from(["lf", "crlf", "mixed"])),
        "mixed": draw(st.lists(st.booleans(), min_size=200, max_size=200)),
        "docs": {name: draw(st.lists(st.sampled_from(PIECES + ["\n", "\r\n", "{{ common_args_desc }}"]), max_size=12))
                 for name in names},
    }


def new_value(key: str, value: str) -> str:
    """What the rules make of a value in the clone."""
    if key == "path":  # the clone keeps the source's form, with or without /v2
        version = "/v2" if value.lstrip("/").startswith("v2/") else ""
        return f"{version}/{NEW}/{value.rstrip('/').rsplit('/', 1)[-1]}/"
    if key == "comp_codename":
        return f"generic.v2.{NEW}.sops_component"
    if key == "dest_path" and (value == "/o/bk_sops" or value.startswith("/o/bk_sops/")):
        return "/o/bk-sops-ce" + value[len("/o/bk_sops"):]
    return value


def write_text(drawn: dict, cloned: bool) -> str:
    lines: list[str] = [*drawn["header"]]
    if drawn["document_start"]:
        lines.append("---")
    for index, channel in enumerate(drawn["channels"]):
        for position, key in enumerate(channel["order"]):
            gap = channel["gaps"][position]
            if position and gap == "blank":
                lines.append("")
            elif position and gap == "comment":
                lines.append("# 注释 {{ not_a_template }}")
            elif position and gap == "indented comment":
                lines.append("  # indented {% raw %}")
            lead = "- " if position == 0 else "  "
            if key in channel["fields"]:
                scalar: Scalar = channel["fields"][key]
                raw = scalar.raw(new_value(key, scalar.value) if cloned else None)
                lines.append(f"{lead}{key}:{scalar.space}{raw}{scalar.trailing}{scalar.comment}")
            else:
                value = channel["extras"][key]
                lines.append(f"{lead}{key}:{'' if value.startswith(chr(10)) else ' '}{value}")
        between = drawn["between"][index]
        lines.append("# ---- 下一组 ----" if between == "comment" else between.rstrip("\n"))
    text = "\n".join(lines) + "\n"
    if drawn["ends"] == "crlf":
        return text.replace("\n", "\r\n")
    if drawn["ends"] == "mixed":
        out = []
        for number, line in enumerate(text.split("\n")[:-1]):
            out.append(line + ("\r\n" if drawn["mixed"][number % 200] else "\n"))
        return "".join(out)
    return text


def scalar_spans(document) -> list[tuple]:
    found = []

    def walk(node, seen):
        if id(node) in seen:
            return
        seen.add(id(node))
        if node.id == "scalar":
            if node.value:
                found.append((node.value, node.start_mark.index, node.end_mark.index, node.start_mark.line, node.style or None))
        elif node.id == "sequence":
            for item in node.value:
                walk(item, seen)
        else:
            for key, value in node.value:
                walk(key, seen)
                walk(value, seen)

    walk(document, set())
    return found


class Workspace:
    """A scratch copy of the sample ESB whose sops confapis folder each example replaces."""

    def __init__(self, base: Path):
        self.base = base
        self.root = base / "esb"
        shutil.copytree(FIXTURES / "esb", self.root, symlinks=True)
        self.count = 0

    def write(self, drawn: dict) -> Path:
        folder = self.root / CONFAPIS / "sops"
        shutil.rmtree(folder)
        (folder / "apidocs" / "en").mkdir(parents=True)
        (folder / "apidocs" / "zh_hans").mkdir(parents=True)
        (folder / "sops.yaml").write_bytes(write_text(drawn, cloned=False).encode("utf-8"))
        for name, pieces in drawn["docs"].items():
            for language in ("en", "zh_hans"):
                (folder / "apidocs" / language / f"{name}.md").write_bytes(("".join(pieces) + language).encode("utf-8"))
        self.count += 1
        work = self.base / f"work{self.count}"
        work.mkdir()
        return work


@given(confapis_files())
@SETTINGS
def test_a_clone_changes_exactly_path_codename_and_app_of_every_entry(drawn):
    with tempfile.TemporaryDirectory(prefix="esbgen-fuzz-") as tmp:
        space = Workspace(Path(tmp))
        work = space.write(drawn)
        source_text = write_text(drawn, cloned=False)
        expected = write_text(drawn, cloned=True).encode("utf-8")

        # The generated file is valid YAML whose values are the drawn ones (else the test itself is wrong).
        document = compose(source_text, "sops.yaml")
        assert [item.value[[k.value for k, _ in item.value].index("name")][1].value for item in document.value] == drawn["names"]

        outcome = plan_clone(space.root, CloneRequest("sops", NEW), work)
        output = work / "output"
        cloned = output / CONFAPIS / NEW
        assert (cloned / f"{NEW}.yaml").read_bytes() == expected
        for name in drawn["names"]:
            for language in ("en", "zh_hans"):
                doc = Path(CONFAPIS, "sops", "apidocs", language, f"{name}.md")
                assert (cloned / "apidocs" / language / f"{name}.md").read_bytes() == (space.root / doc).read_bytes()
        assert sorted(p.name for p in cloned.iterdir()) == ["apidocs", f"{NEW}.yaml"]
        assert outcome.plan.tree_adds

        # The readable template `esbgen templatize` writes renders, through cookiecutter, to the same bytes.
        design = design_clone(space.root, CloneRequest("sops", NEW))
        template = design.spec.write(work / "readable")
        readable_out = work / "readable-out"
        readable_out.mkdir()
        render(template, design.context, readable_out)
        assert (readable_out / CONFAPIS / NEW / f"{NEW}.yaml").read_bytes() == expected


@given(confapis_files())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_libyaml_and_ruamel_yaml_give_the_same_spans(drawn):
    """esbgen.esb.confapis composes with ruamel.yaml's libyaml parser for speed; its offsets must be the round trip's."""
    from ruamel.yaml import YAML
    from ruamel.yaml.clib._ruamel_yaml import CParser  # noqa: F401 - the fast path under test must exist

    from esbgen.esb.confapis import _compose_libyaml

    text = write_text(drawn, cloned=False)
    fast = compose(text, "sops.yaml")
    assert fast is not None and _compose_libyaml(text) is not None
    assert scalar_spans(fast) == scalar_spans(YAML(typ="rt").compose(text))

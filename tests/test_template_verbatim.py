"""The private template lists verbatim files a folder at a time; they land where the readable template puts them."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest

from esbgen.errors import EsbgenError
from esbgen.edit.template import Edit, TemplateFile, TemplateSpec, Var, render, render_with_defaults


def tree_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_renamed_nested_and_top_level_verbatim_files_render_as_the_readable_template_does(tmp_path):
    source = tmp_path / "source"
    (source / "apidocs" / "en").mkdir(parents=True)
    (source / "apidocs" / "zh_hans").mkdir(parents=True)
    files = {
        "sops.yaml": b"# no channels yet\n",  # renamed after the clone, as <source>.yaml is
        "apidocs/en/get_a.md": b"{{ common_args_desc }}\n",
        "apidocs/en/get_b.md": b"{% if x %}b{% endif %}\r\n",
        "apidocs/zh_hans/get_a.md": "查询 {{ a }}\n".encode(),
        "toolkit.py": b"X = 1\n",
        "configs.py": b'SYSTEM_NAME = "SOPS"\n',
        "extra.yaml": b"- path: /v2/sops/x/\n",
    }
    for name, data in files.items():
        (source / name).write_bytes(data)
    os.chmod(source / "toolkit.py", 0o755)
    spec = TemplateSpec([
        TemplateFile(str(source / "sops.yaml"), ["confapis/", Var("system"), "/", Var("system"), ".yaml"]),
        TemplateFile(str(source / "apidocs/en/get_a.md"), ["confapis/", Var("system"), "/", "apidocs/en/", "get_a.md"]),
        TemplateFile(source / "apidocs/en/get_b.md", ["confapis/", Var("system"), "/", "apidocs/en/", "get_b.md"]),
        TemplateFile(str(source / "apidocs/zh_hans/get_a.md"), ["confapis/", Var("system"), "/", "apidocs/zh_hans/", "get_a.md"]),
        TemplateFile(str(source / "toolkit.py"), ["bk/apisv2/", Var("system"), "/toolkit.py"]),
        # an edited file in each folder, as a clone always has (SYSTEM_NAME, the channels)
        TemplateFile(str(source / "configs.py"), ["bk/apisv2/", Var("system"), "/toolkit/configs.py"],
                     'SYSTEM_NAME = "SOPS"\n', [Edit(15, 19, [Var("SYSTEM_NAME")])]),
        TemplateFile(str(source / "extra.yaml"), ["confapis/", Var("system"), "/", "extra.yaml"],
                     "- path: /v2/sops/x/\n", [Edit(12, 16, [Var("system")])]),
    ], {"system": "bk_x", "SYSTEM_NAME": "BK_X", "_components": "components"})
    private = render(spec.write(tmp_path / "private", link=True), {"system": "bk_x", "SYSTEM_NAME": "BK_X",
                                                                   "_components": "components"}, tmp_path / "out-private")
    readable = tmp_path / "out-readable"
    render_with_defaults(spec.write(tmp_path / "readable"), {}, readable)
    assert tree_files(private) == tree_files(readable)
    assert set(tree_files(private)) == {
        "components/confapis/bk_x/bk_x.yaml", "components/confapis/bk_x/apidocs/en/get_a.md",
        "components/confapis/bk_x/apidocs/en/get_b.md", "components/confapis/bk_x/apidocs/zh_hans/get_a.md",
        "components/bk/apisv2/bk_x/toolkit.py", "components/bk/apisv2/bk_x/toolkit/configs.py",
        "components/confapis/bk_x/extra.yaml",
    }
    assert tree_files(private)["components/confapis/bk_x/extra.yaml"] == b"- path: /v2/bk_x/x/\n"
    assert os.stat(private / "components/bk/apisv2/bk_x/toolkit.py").st_mode & 0o777 == 0o755
    assert filecmp.cmp(private / "components/confapis/bk_x/apidocs/en/get_b.md", source / "apidocs/en/get_b.md", shallow=False)


def test_text_holding_the_first_mark_characters_renders_as_the_readable_template_does(tmp_path):
    # The compact template marks each variable between two private-use characters; a file that holds
    # them (and values that do) gets marks of others, and every byte of it comes back.
    text = "- path: /v2/sops/a/\n  label: \ue000sops\ue001 \ue002\n  dest_path: /o/bk_sops/\ue003sops/\r\n"
    source = tmp_path / "source"
    source.mkdir()
    (source / "sops.yaml").write_bytes(text.encode())
    start = text.index("/v2/sops/") + 4
    app = text.index("/o/bk_sops/") + 3
    spec = TemplateSpec([
        TemplateFile(str(source / "sops.yaml"), ["confapis/", Var("system"), "/", Var("system"), ".yaml"], text,
                     [Edit(start, start + 4, [Var("system")]), Edit(app, app + 7, [Var("app_code")])]),
    ], {"system": "sops", "app_code": "bk_sops", "_components": "components"})
    values = {"system": "bk_x", "app_code": "bk_x_app\ue004", "_components": "components"}
    private = render(spec.write(tmp_path / "private", link=True, values=values), values, tmp_path / "out-private")
    readable = tmp_path / "out-readable"
    render_with_defaults(spec.write(tmp_path / "readable"), values, readable)
    expected = text.replace("/v2/sops/", "/v2/bk_x/").replace("/o/bk_sops/", "/o/bk_x_app\ue004/").encode()
    assert tree_files(private)["components/confapis/bk_x/bk_x.yaml"] == expected
    assert tree_files(private) == tree_files(readable)


def test_a_value_holding_a_mark_character_is_refused_before_anything_renders(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "sops.yaml").write_bytes(b"- path: /v2/sops/a/\n")
    spec = TemplateSpec([
        TemplateFile(str(source / "sops.yaml"), ["confapis/", Var("system"), "/", Var("system"), ".yaml"],
                     "- path: /v2/sops/a/\n", [Edit(12, 16, [Var("system")])]),
    ], {"system": "sops", "_components": "components"})
    template = spec.write(tmp_path / "private", link=True, values={"system": "bk_x", "_components": "components"})
    with pytest.raises(EsbgenError, match="the value of 'system' holds a character the compact template marks"):
        render(template, {"system": "bk_\ue000x"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()

"""esbgen new: a brand-new confapis system from a cookiecutter template, validated like a clone."""

from __future__ import annotations

import ast

import pytest

from conftest import snapshot


def test_new_system_passes_check_and_is_registered(esb_root, run_esbgen):
    result = run_esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    assert "define BK_DEMO_URL" in result.output
    component = (esb_root / "components/bk/apisv2/bk_demo/bk_demo_component.py").read_text()
    assert "class BkDemoComponent(ConfComponent):" in component
    assert "{{ common_args_desc }}" in component and '{{ _("BK_DEMO") }}' in component
    assert 're.sub(r"^/o/bk-demo", "", path)' in component
    configs = (esb_root / "components/bk/apisv2/bk_demo/toolkit/configs.py").read_text()
    assert 'SYSTEM_NAME = "BK_DEMO"' in configs and '"BK_DEMO_URL"' in configs
    yaml_text = (esb_root / "components/confapis/bk_demo/bk_demo.yaml").read_text()
    assert "path: /v2/bk_demo/get_status/" in yaml_text
    assert "comp_codename: generic.v2.bk_demo.bk_demo_component" in yaml_text
    assert "dest_path: /o/bk-demo/api/get_status/" in yaml_text
    for language in ("en", "zh_hans"):
        doc = (esb_root / f"components/confapis/bk_demo/apidocs/{language}/get_status.md").read_text()
        assert "{{ common_args_desc }}" in doc and "bk-demo" in doc
    assert run_esbgen("check", "bk_demo", "--esb-root", esb_root).exit_code == 0
    conf = ast.parse((esb_root / "components/generic/apis/conf.py").read_text())
    systems = next(n.value for n in conf.body if isinstance(n, ast.Assign) and n.targets[0].id == "SYSTEMS")
    assert [ast.literal_eval(e)["name"] for e in systems.elts] == ["HELLO", "BK_DEMO"]


def test_new_then_again_is_a_no_op_and_dry_run_changes_nothing(esb_root, run_esbgen):
    before = snapshot(esb_root)
    dry = run_esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", esb_root, "--dry-run")
    assert dry.exit_code == 0 and "Dry run: nothing was changed." in dry.output
    assert snapshot(esb_root) == before
    assert run_esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", esb_root).exit_code == 0
    after = snapshot(esb_root)
    again = run_esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", esb_root)
    assert again.exit_code == 0 and "Nothing to do" in again.output
    assert snapshot(esb_root) == after
    other = run_esbgen("new", "bk_demo", "--app-code", "other-app", "--esb-root", esb_root)
    assert other.exit_code == 1 and "--force" in other.stderr
    assert snapshot(esb_root) == after


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["bk demo", "--app-code", "x"], 2, "not valid"),
        (["sops", "--app-code", "x"], 2, "official ESB system"),
        (["bk_demo", "--app-code", "X Y"], 2, "app code"),
        (["bk_demo", "--app-code", "x", "--type", "python"], 2, "ships no template"),
        (["bk_demo", "--app-code", "x", "--type", "nosuch"], 2, "unknown SaaS type"),
        (["bk_demo"], 2, "--app-code"),
    ],
)
def test_new_refuses_bad_input(esb_root, run_esbgen, args, code, message):
    before = snapshot(esb_root)
    result = run_esbgen("new", *args, "--esb-root", esb_root)
    assert result.exit_code == code
    assert message in result.stderr
    assert snapshot(esb_root) == before


def test_new_refuses_a_path_another_system_serves(esb_root, run_esbgen):
    # a hand-made channel of another system that already claims the path the template would add
    conf = esb_root / "components/generic/apis/conf.py"
    conf.write_text(conf.read_text().replace(
        "CHANNELS = [", "CHANNELS = [\n    ('/v2/bk_demo/get_status/', {'comp_codename': 'generic.hello.hello_world'}),", 1))
    before = snapshot(esb_root)
    result = run_esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", esb_root)
    assert result.exit_code == 1
    assert "path /v2/bk_demo/get_status/ is already served by components/generic/apis/conf.py" in result.stderr
    assert snapshot(esb_root) == before


def test_bytecode_beside_an_installed_template_does_not_reach_the_new_system(tmp_path):
    """pip compiles a wheel's template files too; what cookiecutter renders must not carry their __pycache__."""
    import shutil
    from importlib.resources import files
    from pathlib import Path

    from esbgen.edit.template import render_with_defaults

    template = tmp_path / "confapis-system"
    shutil.copytree(Path(str(files("esbgen.cookiecutters") / "confapis-system")), template)
    for init in template.rglob("__init__.py"):
        (init.parent / "__pycache__").mkdir(exist_ok=True)
        (init.parent / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\x00bytecode")
    values = {"system": "bk_demo", "app_code": "bk-demo"}
    with_bytecode, clean = tmp_path / "with", tmp_path / "clean"
    with_bytecode.mkdir()
    clean.mkdir()
    render_with_defaults(template, values, with_bytecode)
    for folder in list(template.rglob("__pycache__")):
        shutil.rmtree(folder)
    render_with_defaults(template, values, clean)
    rendered = {str(p.relative_to(with_bytecode)): p.read_bytes() for p in with_bytecode.rglob("*") if p.is_file()}
    assert rendered == {str(p.relative_to(clean)): p.read_bytes() for p in clean.rglob("*") if p.is_file()}
    assert rendered and not any("__pycache__" in name for name in rendered)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean", "confapis-system", "with"]  # no scratch left

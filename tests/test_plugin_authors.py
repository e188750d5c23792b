"""What a plugin author relies on: the documented template layout, a plugin that cannot load,
and the values a plugin returns, checked before they reach a file.

The third-party plugin here is written from docs/plugins.md alone: its files are the ones
the page shows, taken from the page, built and installed with pip into a folder of the test,
and found through its entry point by esbgen in a process of its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, assert_one_line_refusal
from esbgen import hookimpl
from test_no_trace import entries

DOC = REPO / "docs" / "plugins.md"
FILE_BLOCK = re.compile(r"^\*\*`([^`]+)`\*\*\n\n```[a-z]*\n(.*?)^```$", re.M | re.S)


def documented_files() -> dict[str, str]:
    """The files of the page's complete plugin: each bold `path` and the code block under it."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A complete plugin, step by step", 1)[1].split("\n## ", 1)[0]
    return {path: body for path, body in FILE_BLOCK.findall(section)}


def esbgen(*args, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "esbgen", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, check=False)


def environment(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ESBGEN_DISABLE_PLUGINS", "ESBGEN_DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def refused_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("esbgen: error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.fixture(scope="module")
def acme_site(tmp_path_factory) -> Path:
    """The documented plugin, built and installed (pip, offline) into a site folder of its own."""
    files = documented_files()
    assert "pyproject.toml" in files and "esbgen_acme/plugin.py" in files, sorted(files)
    source = tmp_path_factory.mktemp("esbgen-acme")
    for relative, body in files.items():
        path = source / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    site = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(site), str(source)],
        capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    assert list(site.glob("esbgen_acme-0.1.0.dist-info/entry_points.txt"))
    return site


def test_the_documented_plugin_renders_a_system_that_passes_check(acme_site, esb_root):
    env = environment(acme_site)
    listed = esbgen("plugins", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "acme  (entry point of esbgen-acme 0.1.0)" in listed.stdout

    made = esbgen("new", "bk_acme", "--app-code", "bk-acme", "--type", "acme", "--esb-root", esb_root, env=env)
    assert made.returncode == 0, made.stderr
    python = esb_root / "components/bk/apisv2/bk_acme"
    confapis = esb_root / "components/confapis/bk_acme"
    assert 'SYSTEM_NAME = "BK_ACME"' in (python / "toolkit/configs.py").read_text()
    assert 'getattr(settings, "BK_ACME_URL", "")' in (python / "toolkit/configs.py").read_text()
    component = (python / "bk_acme_component.py").read_text()
    assert "class BkAcmeComponent(ConfComponent):" in component
    assert "    {{ common_args_desc }}\n" in component and 'r"^/o/bk-acme"' in component
    assert "comp_codename: generic.v2.bk_acme.bk_acme_component" in (confapis / "bk_acme.yaml").read_text()
    doc = "esbgen_acme/templates/acme-system/{{cookiecutter._components}}/confapis/{{cookiecutter.system}}/apidocs/en/ping.md"
    assert (confapis / "apidocs/en/ping.md").read_text() == documented_files()[doc]  # never rendered
    assert "'name': 'BK_ACME'" in (esb_root / "components/generic/apis/conf.py").read_text()

    checked = esbgen("check", "bk_acme", "--esb-root", esb_root, env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK: 1 system(s) follow the ESB's rules." in checked.stdout


def test_the_layout_the_page_describes_is_the_one_its_plugin_uses():
    files = documented_files()
    text = DOC.read_text(encoding="utf-8")
    for name in ("{{cookiecutter._components}}/", "bk/apisv2/{{cookiecutter.system}}/", "confapis/{{cookiecutter.system}}/",
                 "{{cookiecutter.component_name}}.py", "{{cookiecutter.system}}.yaml"):
        assert name in text.split("## The template of a SaaS type", 1)[1], name
        assert any(name in path for path in files), name
    for key in ("system", "SYSTEM_NAME", "app_code", "host_setting", "component_class", "component_name", "_components"):
        assert f"`{key}`" in text, key


# --- a plugin that cannot load -------------------------------------------------------------------------

BROKEN = {
    "an ImportError": ("import esbgen_no_such_dependency\n", "ModuleNotFoundError: No module named 'esbgen_no_such_dependency'"),
    "a syntax error": ("def broken(:\n", "SyntaxError"),
    "any error": ("raise RuntimeError('the plugin needs /etc/acme.conf')\n", "RuntimeError: the plugin needs /etc/acme.conf"),
}


def install_broken(site: Path, body: str, value: str = "esbgen_broken") -> None:
    """A distribution as pip leaves it: the module, and a .dist-info with the entry point."""
    (site / "esbgen_broken.py").write_text(body)
    info = site / "esbgen_broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: esbgen-broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[esbgen]\nbroken = {value}\n")


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_plugin_that_fails_to_import_is_named_in_one_line_with_the_way_out(case, tmp_path, esb_root):
    body, error = BROKEN[case]
    site = tmp_path / "site"
    site.mkdir()
    install_broken(site, body)
    before = entries(esb_root)
    for args in (["list", "--esb-root", esb_root], ["clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root]):
        line = refused_line(esbgen(*args, env=environment(site)))
        assert line.startswith("esbgen: error: plugin 'broken' (entry point esbgen_broken of esbgen-broken 1.0) "
                               "failed to load: "), line
        assert error in line and line.endswith("; ESBGEN_DISABLE_PLUGINS=broken runs esbgen without it"), line
    assert entries(esb_root) == before

    without = esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root,
                     env=environment(site, ESBGEN_DISABLE_PLUGINS="broken"))
    assert without.returncode == 0, without.stderr
    assert (esb_root / "components/confapis/bk_sops_ce").is_dir()
    listed = esbgen("plugins", env=environment(site, ESBGEN_DISABLE_PLUGINS="broken"))
    assert "broken  (disabled by ESBGEN_DISABLE_PLUGINS)" in listed.stdout


def test_an_entry_point_naming_nothing_is_named_the_same_way(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_broken(site, "X = 1\n", "esbgen_broken:no_such_object")
    line = refused_line(esbgen("plugins", env=environment(site)))
    assert "plugin 'broken' (entry point esbgen_broken:no_such_object of esbgen-broken 1.0) failed to load: " \
           "AttributeError" in line and "ESBGEN_DISABLE_PLUGINS=broken" in line


# --- values plugins return -----------------------------------------------------------------------------


def host_setting_plugin(value):
    class Answer:
        @hookimpl
        def esbgen_host_setting(self, target):
            return value

    return Answer()


@pytest.mark.parametrize("value, why", [
    ("bk_acme_url", "is not a setting name"),
    ("BK-ACME-URL", "is not a setting name"),
    ("BK_ACME_URL\nDEBUG = True", "is not a setting name"),
    ("", "is not a setting name"),
    (42, "is not a setting name"),
    ("BK_SOPS_URL", "system sops reads for its own backend"),
    ("SECRET_KEY", "configs/default.py uses for something else than a host"),
    ("DEBUG", "configs/default.py uses for something else than a host"),
])
@pytest.mark.parametrize("command", [["new", "bk_acme", "--app-code", "bk-acme"], ["clone", "itsm", "--as", "bk_acme"]])
def test_a_bad_host_setting_is_refused_naming_the_plugin_and_the_value(value, why, command, esb_root, run_esbgen,
                                                                     register_plugin):
    register_plugin(host_setting_plugin(value), "corp")
    before = entries(esb_root)
    result = run_esbgen(*command, "--esb-root", esb_root)
    assert_one_line_refusal(result)
    assert f"plugin 'corp' gave the host setting {value!r}, which {why}" in result.stderr
    assert result.stderr.rstrip().endswith("; nothing was written")
    assert entries(esb_root) == before


def test_a_host_setting_the_settings_file_holds_as_a_host_is_taken(esb_root, run_esbgen, register_plugin):
    (esb_root / "configs/default.py").write_text((esb_root / "configs/default.py").read_text()
                                                 + "\nBK_ACME_URL = 'http://acme.service.consul'\n")
    register_plugin(host_setting_plugin("BK_ACME_URL"), "corp")
    result = run_esbgen("new", "bk_acme", "--app-code", "bk-acme", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr


def saas_type_plugin(**attributes):
    from esbgen.saas import KnownAppProxy

    class Acme(KnownAppProxy):
        name = "acme"
        app = "bk_acme"
        host_setting = "BK_ACME_URL"
        component_class = "AcmeComponent"

    for key, value in attributes.items():
        setattr(Acme, key, value)

    class Plugin:
        @hookimpl
        def esbgen_saas_types(self):
            return [Acme()]

    return Plugin()


@pytest.mark.parametrize("attribute, value, what", [
    ("name", "Acme Type", "the SaaS type name"),
    ("name", "acme\n", "the SaaS type name"),
    ("app", "bk acme", "SaaS type acme's app"),
    ("app", "/o/bk_acme", "SaaS type acme's app"),
    ("host_setting", "bk_acme_url", "SaaS type acme's host_setting"),
    ("host_setting", "BK_ACME_URL')\nimport os\n#", "SaaS type acme's host_setting"),
    ("component_class", "Acme-Component", "SaaS type acme's component_class"),
])
def test_a_saas_type_with_a_bad_name_or_literal_is_refused(attribute, value, what, esb_root, run_esbgen, register_plugin):
    register_plugin(saas_type_plugin(**{attribute: value}), "acme_plugin")
    before = entries(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert_one_line_refusal(result)
    assert f"plugin 'acme_plugin' gave {what} {value!r}, which is not" in result.stderr
    assert entries(esb_root) == before


def test_a_saas_type_naming_bad_host_settings_is_refused(esb_root, run_esbgen, register_plugin):
    from esbgen.saas import ConfapisProxy

    class Odd(ConfapisProxy):
        name = "odd"
        specificity = 99

        def host_settings(self, source):
            return ["BK_SOPS_URL", "not a setting"]

    class Plugin:
        @hookimpl
        def esbgen_saas_types(self):
            return [Odd()]

    register_plugin(Plugin(), "odd_plugin")
    before = entries(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert_one_line_refusal(result)
    assert "SaaS type 'odd' named the host settings ['BK_SOPS_URL', 'not a setting']" in result.stderr
    assert entries(esb_root) == before


# --- the hooks' own documentation ----------------------------------------------------------------------


def test_every_hookspec_documents_each_parameter_and_its_return():
    import ast

    import esbgen.hookspecs as hookspecs

    tree = ast.parse(Path(hookspecs.__file__).read_text(encoding="utf-8"))
    hooks = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("esbgen_")]
    assert len(hooks) >= 7
    for hook in hooks:
        doc = ast.get_docstring(hook) or ""
        for arg in hook.args.args:
            assert f":param {arg.arg}:" in doc, f"{hook.name} does not document {arg.arg}"
        assert ":returns:" in doc, f"{hook.name} does not document what it returns"

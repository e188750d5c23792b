"""esbgen clone on the sample ESB: what the operator would diff, check and repeat."""

from __future__ import annotations

import ast
import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, snapshot

SOPS_PY = Path("components/bk/apisv2/sops")
SOPS_CONF = Path("components/confapis/sops")
NEW_PY = Path("components/bk/apisv2/bk_sops_ce")
NEW_CONF = Path("components/confapis/bk_sops_ce")
CONF_PY = Path("components/generic/apis/conf.py")


def files_under(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def channels(path: Path) -> list[dict]:
    from ruamel.yaml import YAML

    return list(YAML(typ="safe").load(path.read_text(encoding="utf-8")))


def undo_identifiers(data: bytes) -> bytes:
    """The clone's bytes with its new identifiers put back: must give the source's bytes."""
    return (
        data.replace(b"/v2/bk_sops_ce/", b"/v2/sops/")
        .replace(b"generic.v2.bk_sops_ce.", b"generic.v2.sops.")
        .replace(b"/o/bk-sops-ce", b"/o/bk_sops")
        .replace(b"BK_SOPS_CE_URL", b"BK_SOPS_URL")
        .replace(b'"BK_SOPS_CE"', b'"SOPS"')
    )


@pytest.fixture
def cloned(esb_root, run_esbgen):
    before = snapshot(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    return esb_root, before, result


def test_clone_writes_both_folders_with_every_source_file(cloned):
    root, _, result = cloned
    source_py = files_under(root / SOPS_PY)
    assert files_under(root / NEW_PY) == source_py
    renamed = [Path(str(p).replace("sops.yaml", "bk_sops_ce.yaml")) for p in files_under(root / SOPS_CONF)]
    assert files_under(root / NEW_CONF) == sorted(renamed)
    assert "Cloned sops as bk_sops_ce" in result.output
    assert "BK_SOPS_CE_URL" in result.output  # the operator is told to define the new host setting


def test_only_the_clone_and_the_registration_change(cloned):
    root, before, _ = cloned
    after = snapshot(root)
    changed = {path for path in after if before.get(path) != after[path]}
    removed = set(before) - set(after)
    assert not removed
    assert {p for p in changed if not p.startswith((str(NEW_PY) + "/", str(NEW_CONF) + "/"))} == {str(CONF_PY)}


def test_every_channel_points_at_the_clone(cloned):
    root, _, _ = cloned
    for yaml_file in (NEW_CONF / "bk_sops_ce.yaml", NEW_CONF / "prod" / "bk_sops_ce.yaml"):
        entries = channels(root / yaml_file)
        assert entries
        for entry in entries:
            assert entry["path"] == f"/v2/bk_sops_ce/{entry['name']}/"
            assert entry["comp_codename"] == "generic.v2.bk_sops_ce.sops_component"
            assert entry["dest_path"].startswith("/o/bk-sops-ce/apigw/")


def test_yaml_bytes_outside_the_three_values_are_kept(cloned):
    root, _, _ = cloned
    for source, clone in (
        (SOPS_CONF / "sops.yaml", NEW_CONF / "bk_sops_ce.yaml"),
        (SOPS_CONF / "prod" / "sops.yaml", NEW_CONF / "prod" / "bk_sops_ce.yaml"),
    ):
        original = (root / source).read_bytes()
        copy = (root / clone).read_bytes()
        assert undo_identifiers(copy) == original
        assert copy.count(b"\r\n") == original.count(b"\r\n")  # CRLF file stays CRLF, LF stays LF
    text = (root / NEW_CONF / "bk_sops_ce.yaml").read_text(encoding="utf-8")
    assert text.splitlines()[5] == "---"
    assert "label_en: Query templates list   \n" in text  # trailing spaces
    assert '- path: "/v2/bk_sops_ce/get_template_info/"' in text  # quoting kept
    assert "comp_codename: 'generic.v2.bk_sops_ce.sops_component'" in text
    assert "method: POST  # create" in text
    assert "{{ 7*7 }}" in text  # labels are the ESB's text, never rendered


def test_docs_are_byte_identical(cloned):
    root, _, _ = cloned
    docs = files_under(root / SOPS_CONF / "apidocs")
    assert len(docs) == 26
    for doc in docs:
        assert (root / NEW_CONF / "apidocs" / doc).read_bytes() == (root / SOPS_CONF / "apidocs" / doc).read_bytes()


def test_python_side_gets_its_own_system_host_and_app(cloned):
    root, _, _ = cloned
    configs = (root / NEW_PY / "toolkit/configs.py").read_text(encoding="utf-8")
    assert 'SYSTEM_NAME = "BK_SOPS_CE"' in configs
    assert 'getattr(settings, "BK_SOPS_CE_URL", "")' in configs
    component = (root / NEW_PY / "sops_component.py").read_text(encoding="utf-8")
    assert 're.sub(r"^/o/bk-sops-ce", "", path)' in component
    assert '{{ _("' in component and "{{ common_args_desc }}" in component
    tools = (root / NEW_PY / "toolkit/tools.py").read_text(encoding="utf-8")
    assert 'getattr(settings, "PAAS_HOST", "")' in tools  # the shared platform host stays
    for relative in files_under(root / SOPS_PY):
        original = (root / SOPS_PY / relative).read_bytes()
        assert undo_identifiers((root / NEW_PY / relative).read_bytes()) == original, relative


def test_system_is_registered_in_conf_py_keeping_its_text(cloned):
    root, _, _ = cloned
    original = (FIXTURES / "esb" / CONF_PY).read_text(encoding="utf-8").splitlines(keepends=True)
    updated = (root / CONF_PY).read_text(encoding="utf-8").splitlines(keepends=True)
    added = [line for line in updated if line not in original]
    assert len(updated) == len(original) + 1
    assert [line for line in updated if line in original] == original
    assert "'name': 'BK_SOPS_CE'" in added[0]
    module = ast.parse("".join(updated))
    systems = next(n.value for n in module.body if isinstance(n, ast.Assign) and n.targets[0].id == "SYSTEMS")
    names = [ast.literal_eval(e)["name"] for e in systems.elts]
    assert names == ["HELLO", "BK_SOPS_CE"]


def test_clone_passes_check(cloned, run_esbgen):
    root, _, _ = cloned
    result = run_esbgen("check", "--esb-root", root)
    assert result.exit_code == 0, result.output
    listing = run_esbgen("list", "--esb-root", root)
    row = next(line for line in listing.output.splitlines() if line.startswith("bk_sops_ce"))
    # 13 entries; the legacy ESB (configs/default.py) leaves the hidden one out of its sync
    assert row.split()[1:4] == ["confapis", "12", "1"] and "yes" in row


def test_second_run_changes_nothing(cloned, run_esbgen):
    root, _, _ = cloned
    before = snapshot(root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root)
    assert result.exit_code == 0
    assert "Nothing to do" in result.output
    assert snapshot(root) == before


def test_different_clone_onto_existing_target_needs_force(cloned, run_esbgen):
    root, _, _ = cloned
    before = snapshot(root)
    refused = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--app-code", "sops-two", "--esb-root", root)
    assert refused.exit_code == 1
    assert "--force" in refused.stderr
    assert snapshot(root) == before
    forced = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--app-code", "sops-two", "--force", "--esb-root", root)
    assert forced.exit_code == 0, forced.stderr
    assert all(e["dest_path"].startswith("/o/sops-two/") for e in channels(root / NEW_CONF / "bk_sops_ce.yaml"))


def test_dry_run_prints_the_plan_and_changes_nothing(esb_root, run_esbgen):
    before = snapshot(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root, "--dry-run")
    assert result.exit_code == 0
    assert snapshot(esb_root) == before
    assert not (esb_root / ".esbgen").exists()
    assert f"+ {NEW_CONF}/bk_sops_ce.yaml" in result.output
    assert f"--- a/{CONF_PY}" in result.output and "+    {'name': 'BK_SOPS_CE'" in result.output
    assert "sync_data_at_deploy" in result.output
    assert "Dry run: nothing was changed." in result.output


def test_app_code_defaults_and_option(esb_root, run_esbgen):
    result = run_esbgen("clone", "sops", "--as", "my_sops", "--app-code", "ops-flow", "--label", "My flows",
                        "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    entries = channels(esb_root / "components/confapis/my_sops/my_sops.yaml")
    assert all(e["dest_path"].startswith("/o/ops-flow/") for e in entries)
    assert "'label': 'My flows'" in (esb_root / CONF_PY).read_text(encoding="utf-8")
    assert 'getattr(settings, "BK_MY_SOPS_URL", "")' in (
        esb_root / "components/bk/apisv2/my_sops/toolkit/configs.py"
    ).read_text(encoding="utf-8")


def test_root_from_environment_and_from_current_directory(esb_root, run_esbgen, monkeypatch, tmp_path):
    monkeypatch.setenv("ESBGEN_ESB_ROOT", str(esb_root))
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--dry-run", cwd=tmp_path).exit_code == 0
    monkeypatch.delenv("ESBGEN_ESB_ROOT")
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", cwd=esb_root)
    assert result.exit_code == 0, result.stderr
    assert (esb_root / NEW_CONF / "bk_sops_ce.yaml").is_file()


def test_python_per_api_system_gets_its_presets_beside_the_sources_in_esb_conf(esb_root, run_esbgen):
    """esb_conf.py is where both ESB generations read presets: the legacy router serves them with or
    without a row, the later ESB takes their validators from there. The source's text stays byte for byte."""
    from esbgen.esb.tree import channel_groups

    original = (FIXTURES / "esb/components/esb_conf.py").read_bytes()
    result = run_esbgen("clone", "cc", "--as", "cc_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    after = (esb_root / "components/esb_conf.py").read_bytes()
    matcher = difflib.SequenceMatcher(None, original, after, autojunk=False)
    assert {op for op, *_ in matcher.get_opcodes()} == {"equal", "insert"}  # only added
    presets, _ = channel_groups(ast.parse(after), after.decode("utf-8"), "esb_conf.py")
    ours = [p for p in presets if ".cc_ce." in p.codename]
    assert sorted(p.path for p in ours) == [
        "/v2/cc_ce/create_set/", "/v2/cc_ce/get_host_base_info/", "/v2/cc_ce/search_business/", "/v2/cc_ce/update_host/",
    ]
    assert all(p.codename == "generic.v2.cc_ce." + p.path.split("/")[3] and p.group == "default" for p in ours)
    module = ast.parse((esb_root / CONF_PY).read_text(encoding="utf-8"))
    lists = {n.targets[0].id: n.value for n in module.body if isinstance(n, ast.Assign)}
    assert lists["CHANNELS"].elts == []  # the source declares none there
    assert 'SYSTEM_NAME = "CC_CE"' in (esb_root / "components/bk/apisv2/cc_ce/toolkit/configs.py").read_text()
    assert run_esbgen("check", "cc_ce", "--esb-root", esb_root).exit_code == 0
    assert run_esbgen("undo", "--esb-root", esb_root).exit_code == 0
    assert (esb_root / "components/esb_conf.py").read_bytes() == original


def test_conf_py_is_created_when_missing(esb_root, run_esbgen):
    (esb_root / CONF_PY).unlink()
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    module = ast.parse((esb_root / CONF_PY).read_text(encoding="utf-8"))
    lists = {n.targets[0].id: n.value for n in module.body if isinstance(n, ast.Assign)}
    assert [ast.literal_eval(e)["name"] for e in lists["SYSTEMS"].elts] == ["BK_SOPS_CE"]


def test_templatize_gives_the_same_clone_through_plain_cookiecutter(esb_root, run_esbgen, tmp_path):
    template = tmp_path / "template"
    result = run_esbgen("templatize", "sops", "-o", template, "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    cookiecutter = Path(sys.executable).parent / "cookiecutter"
    subprocess.run([str(cookiecutter), "--no-input", str(template), "-o", str(rendered)], check=True,
                   env={**os.environ, "HOME": str(tmp_path)})
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root).exit_code == 0
    for folder in (NEW_PY, NEW_CONF):
        expected = files_under(esb_root / folder)
        assert files_under(rendered / folder) == expected
        for relative in expected:
            assert (rendered / folder / relative).read_bytes() == (esb_root / folder / relative).read_bytes(), relative


def test_failure_while_applying_leaves_the_tree_as_before(esb_root, run_esbgen, monkeypatch):
    import esbgen.journal.record

    before = snapshot(esb_root)
    real_write = esbgen.journal.record.atomic_write_bytes

    def disk_full(path, data, mode=None):
        if str(path).endswith("conf.py"):
            raise OSError(28, "No space left on device")
        return real_write(path, data, mode)

    monkeypatch.setattr(esbgen.journal.record, "atomic_write_bytes", disk_full)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(esb_root) == before


def _break_yaml(root: Path) -> None:
    path = root / SOPS_CONF / "sops.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  name: start_task", "  name: [start_task"), encoding="utf-8")


def _drop_dest_method(root: Path) -> None:
    path = root / SOPS_CONF / "sops.yaml"
    text = path.read_text(encoding="utf-8")
    head, tail = text.split("- path: /v2/sops/start_task/", 1)
    tail = tail.replace("  dest_http_method: POST\n", "", 1)
    path.write_text(head + "- path: /v2/sops/start_task/" + tail, encoding="utf-8")


def _occupy_target(root: Path) -> None:
    (root / "components/confapis/bk_sops_ce").write_text("not a folder\n")


@pytest.mark.parametrize(
    "args, prepare, code, message",
    [
        (["sops", "--as", ""], None, 2, "empty"),
        (["sops", "--as", "bk sops"], None, 2, "not valid"),
        (["sops", "--as", "a/b"], None, 2, "not a path"),
        (["sops", "--as", ".."], None, 2, "not a path"),
        (["sops", "--as", "1sops"], None, 2, "not valid"),
        (["sops", "--as", "Bk_Sops"], None, 2, "not valid"),
        (["sops", "--as", "cc"], None, 2, "official ESB system"),
        (["sops", "--as", "sops"], None, 2, "official"),
        (["nosuch", "--as", "bk_sops_ce"], None, 1, "unknown source system 'nosuch'"),
        (["sops", "--as", "bk_sops_ce", "--app-code", "Bad Code"], None, 2, "app code"),
        (["sops", "--as", "bk_sops_ce", "--app-code", "../x"], None, 2, "app code"),
        (["sops", "--as", "bk_sops_ce"], _break_yaml, 1, "components/confapis/sops/sops.yaml:45: malformed YAML: expected ',' or ']', but got ':' (while parsing a flow sequence at line 44)"),
        (["sops", "--as", "bk_sops_ce"], _occupy_target, 1, "is not a folder"),
        (["sops", "--as", "bk_sops_ce", "--type", "nosuch"], None, 2, "unknown SaaS type"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(esb_root, run_esbgen, args, prepare, code, message):
    if prepare:
        prepare(esb_root)
    before = snapshot(esb_root)
    result = run_esbgen("clone", *args, "--esb-root", esb_root)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("esbgen: error:")
    assert snapshot(esb_root) == before
    assert not (esb_root / "components/bk/apisv2/bk_sops_ce").exists()


def test_a_directory_that_is_no_esb_root_is_refused(tmp_path, run_esbgen):
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", tmp_path)
    assert result.exit_code == 1
    assert "is not an ESB root" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_check_reports_what_the_esb_would_drop_silently(esb_root, run_esbgen):
    yaml_file = esb_root / "components/confapis/itsm/itsm.yaml"
    text = yaml_file.read_text(encoding="utf-8")
    text = text.replace("/v2/itsm/get_services/", "/v2/sops/get_services/", 1)
    text = text.replace("generic.v2.itsm.itsm_component", "generic.v2.itsm.missing_component", 1)
    yaml_file.write_text(text, encoding="utf-8")
    (esb_root / "components/confapis/itsm/apidocs/zh_hans/get_tickets.md").unlink()
    result = run_esbgen("check", "itsm", "--esb-root", esb_root)
    assert result.exit_code == 1
    assert "path '/v2/sops/get_services/' is not /v2/itsm/get_services/" in result.output
    assert "resolves to no component of itsm" in result.output
    assert "no zh_hans apidoc for 'get_tickets'" in result.output
    assert run_esbgen("check", "sops", "--esb-root", esb_root).exit_code == 0


# --- encodings: a byte order mark, CRLF line ends and Latin-1 keep every edit at its bytes -------------------

BOM = b"\xef\xbb\xbf"
SOPS_FILES = ["components/bk/apisv2/sops/sops_component.py", "components/bk/apisv2/sops/toolkit/configs.py",
              "components/bk/apisv2/sops/toolkit/tools.py", "components/confapis/sops/sops.yaml"]


def _clone_files(root: Path, run_esbgen) -> dict[str, bytes]:
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", root)
    assert result.exit_code == 0, result.stderr
    renamed = [path.replace("/sops/", "/bk_sops_ce/").replace("/sops.yaml", "/bk_sops_ce.yaml") for path in SOPS_FILES]
    cloned = {path: (root / path).read_bytes() for path in renamed}
    cloned[str(CONF_PY)] = (root / CONF_PY).read_bytes()
    return cloned


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.parametrize("bom, crlf", [(True, False), (False, True), (True, True)])
def test_a_byte_order_mark_and_crlf_keep_every_edit_at_its_bytes(tmp_path, run_esbgen, bom, crlf):
    """The clone of a source whose files start with a BOM (and end lines with CRLF) is, byte for byte,
    the clone of the plain source with the same BOM and line ends: no edit moved by a byte."""
    plain, marked = tmp_path / "plain", tmp_path / "marked"
    import shutil

    shutil.copytree(FIXTURES / "esb", plain)
    shutil.copytree(FIXTURES / "esb", marked)
    for relative in [*SOPS_FILES, str(CONF_PY)]:
        data = (marked / relative).read_bytes()
        (marked / relative).write_bytes((BOM if bom else b"") + (_crlf(data) if crlf else data))
    expected = _clone_files(plain, run_esbgen)
    cloned = _clone_files(marked, run_esbgen)
    for relative, data in expected.items():
        want = (BOM if bom else b"") + (_crlf(data) if crlf else data)
        assert cloned[relative] == want, relative
        if relative.endswith(".py"):
            compile(cloned[relative], relative, "exec")  # Python reads the BOM, and what follows it
    assert run_esbgen("check", "--esb-root", marked).exit_code == 0


def test_latin1_files_are_copied_as_they_are_or_refused_when_an_edit_would_change_their_bytes(esb_root, run_esbgen):
    init = esb_root / "components/bk/apisv2/sops/__init__.py"
    init.write_bytes(b"# -*- coding: latin-1 -*-\n# r\xe9sum\xe9 of the package\n")  # no edit: copied byte for byte
    configs = esb_root / "components/bk/apisv2/sops/toolkit/configs.py"
    original = configs.read_bytes()
    ascii_latin1 = original.replace(b"utf-8", b"latin-1").replace("# 系统名，同时决定组件编码 generic.v2.sops.*".encode(),
                                                                   b"# system name")
    assert ascii_latin1.isascii() and b"latin-1" in ascii_latin1
    configs.write_bytes(ascii_latin1)  # declared Latin-1, ASCII bytes: edited, the same bytes in both encodings
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    assert (esb_root / NEW_PY / "__init__.py").read_bytes() == init.read_bytes()
    edited = (esb_root / NEW_PY / "toolkit/configs.py").read_bytes()
    assert edited == ascii_latin1.replace(b'"SOPS"', b'"BK_SOPS_CE"').replace(b'"BK_SOPS_URL"', b'"BK_SOPS_CE_URL"')
    compile(edited, "configs.py", "exec")
    assert run_esbgen("undo", "--esb-root", esb_root).exit_code == 0

    configs.write_bytes(ascii_latin1.replace(b"# system name", b"# nom du syst\xe8me"))  # an edit here would re-encode it
    before = snapshot(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "esbgen: error: components/bk/apisv2/sops/toolkit/configs.py: its coding line declares iso-8859-1 and it holds "
        "text that is not ASCII; esbgen writes an edited file as UTF-8, which would change those bytes: convert it to "
        "UTF-8 first"]
    assert snapshot(esb_root) == before


def test_a_python_file_python_cannot_read_for_its_coding_line_is_refused_in_one_line(esb_root, run_esbgen):
    configs = esb_root / "components/bk/apisv2/sops/toolkit/configs.py"
    configs.write_bytes(BOM + configs.read_bytes().replace(b"utf-8", b"latin-1"))
    before = snapshot(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("esbgen: error: components/bk/apisv2/sops/toolkit/configs.py")
    assert snapshot(esb_root) == before


def test_the_check_before_writing_refuses_what_esbgen_check_would_reject(esb_root, run_esbgen, tmp_path):
    """An edit three bytes off (what a byte order mark once did) breaks a file: the check before writing
    reads each edited file as `esbgen check` reads it, and refuses what check would then report."""
    from esbgen.design import CloneRequest, conf_changes, design_clone, validate_rendered
    from esbgen.errors import EsbgenError
    from esbgen.esb.rules import clone_remark
    from esbgen.edit.template import Edit, render

    design = design_clone(esb_root, CloneRequest("sops", "bk_sops_ce"))
    configs = next(item for item in design.spec.files if str(item.relative).endswith("toolkit/configs.py"))
    configs.edits = [Edit(e.start - 3, e.end - 3, e.parts, e.note) if e.note == "SYSTEM_NAME" else e for e in configs.edits]
    template = design.spec.write(tmp_path / "template", link=True)
    output = tmp_path / "output"
    output.mkdir()
    render(template, design.context, output)
    conf_write, _, _ = conf_changes(design.tree, design.target, clone_remark(design.source), design.source,
                                    (esb_root / "components/esb_conf.py").read_text())
    with pytest.raises(EsbgenError) as refused:
        validate_rendered(design.tree, output, "bk_sops_ce", design.source, conf_write, design)
    assert str(refused.value).startswith("components/bk/apisv2/bk_sops_ce/toolkit/configs.py:7: Python syntax error")
    # and check, on a tree holding that very clone, rejects it with the same line
    for folder in ("components/bk/apisv2/bk_sops_ce", "components/confapis/bk_sops_ce"):
        os.rename(output / folder, esb_root / folder)
    (esb_root / CONF_PY).write_bytes(conf_write.after)
    checked = run_esbgen("check", "bk_sops_ce", "--esb-root", esb_root)
    assert checked.exit_code == 1 and checked.stderr == f"esbgen: error: {refused.value}\n"

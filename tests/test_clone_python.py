"""Clones of Python-per-API systems, read back as the ESB reads them (fixtures/esb-later)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, snapshot
from esbgen.esb.tree import load_tree
from esbgen.esb.rules import served_channels


@pytest.fixture
def later_root(tmp_path: Path) -> Path:
    root = tmp_path / "esb-later"
    shutil.copytree(FIXTURES / "esb-later", root, symlinks=True)
    return root


def served(root: Path, system: str) -> dict[tuple[str, str], object]:
    tree = load_tree(root)
    return {(c.path, c.method): c for c in served_channels(tree, tree.systems[system])[0]}


def renamed(path: str, old: str, new: str) -> str:
    return path.replace(f"/{old}/", f"/{new}/", 1)


def test_every_channel_of_a_generic_proxy_comes_over_with_its_whole_config(later_root, run_esbgen):
    before = served(later_root, "umg")
    result = run_esbgen("clone", "umg", "--as", "umg_ce", "--esb-root", later_root)
    assert result.exit_code == 0, result.stderr
    after = served(later_root, "umg_ce")
    assert sorted(after) == sorted((renamed(p, "umg", "umg_ce"), m) for p, m in before)
    for (path, method), source in before.items():
        clone = after[(renamed(path, "umg", "umg_ce"), method)]
        assert clone.name == source.name
        assert clone.codename == source.codename.replace(".umg.", ".umg_ce.")
        expected = {k: v for k, v in source.preset.config.items() if k != "comp_codename"}
        assert {k: v for k, v in clone.preset.config.items() if k != "comp_codename"} == expected
        assert [k for k in clone.preset.keys if k != "path"] == [k for k in source.preset.keys if k != "path"]  # validators too
        assert clone.preset.is_public == source.preset.is_public
    # one generic proxy still serves the proxied channels
    proxies = {c.codename for c in after.values() if c.preset.comp_conf.get("dest_path")}
    assert proxies == {"generic.v2.umg_ce.umg_component"}
    # the presets sit beside the source's in esb_conf.py, where the later ESB reads a channel's validators
    # at request time; the source's text stays byte for byte (only lines are added)
    esb_conf = (later_root / "components/esb_conf.py").read_text(encoding="utf-8")
    original = (FIXTURES / "esb-later/components/esb_conf.py").read_text(encoding="utf-8")
    added = only_added(original, esb_conf)
    assert "generic.v2.umg_ce.umg_component" in added and "AppCodeWhiteListValidator([" in added
    compile(esb_conf, "esb_conf.py", "exec")
    conf = (later_root / "components/generic/apis/conf.py").read_text(encoding="utf-8")
    # what the source declares in conf.py CHANNELS stays there for the clone too, and nothing more
    assert "'/v2/umg_ce/get_status/'" in conf and "Validator" not in conf


def only_added(before: str, after: str) -> str:
    """The text ``after`` adds to ``before``; fails if anything of ``before`` changed."""
    import difflib

    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    added = []
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        assert op in ("equal", "insert"), (op, before[a1:a2], after[b1:b2])
        if op == "insert":
            added.append(after[b1:b2])
    return "".join(added)


def test_host_settings_of_each_style_become_the_clones_own(later_root, run_esbgen):
    result = run_esbgen("clone", "umg", "--as", "umg_ce", "--esb-root", later_root)
    assert result.exit_code == 0, result.stderr
    v2 = (later_root / "components/bk/apisv2/umg_ce/toolkit/configs.py").read_text()
    v1 = (later_root / "components/bk/apis/umg_ce/toolkit/configs.py").read_text()
    assert 'getattr(settings, "UMG_CE_USERMGR_HOST", "")' in v2 and 'SYSTEM_NAME = "UMG_CE"' in v2
    assert "settings.HOST_UMG_CE" in v1 and 'SYSTEM_NAME = "UMG_CE"' in v1
    assert "define in conf/default.py: UMG_CE_USERMGR_HOST (where umg reads USERMGR_HOST), HOST_UMG_CE" in result.output
    # the source's files are untouched and the docs are byte for byte the source's
    for language in ("en", "zh_hans"):
        doc = f"components/bk/apisv2/%s/apidocs/{language}/list_profiles.md"
        assert (later_root / (doc % "umg_ce")).read_bytes() == (later_root / (doc % "umg")).read_bytes()


def test_a_v1_only_system_with_python2_code_and_odd_paths_clones(later_root, run_esbgen):
    result = run_esbgen("clone", "alarm", "--as", "alarm_ce", "--esb-root", later_root)
    assert result.exit_code == 0, result.stderr
    channels = served(later_root, "alarm_ce")
    # the later ESB cannot import Python 2 code: the source serves nothing, and so does the clone
    assert channels == {} == served(later_root, "alarm")
    esb_conf = (later_root / "components/esb_conf.py").read_text(encoding="utf-8")
    assert "/alarm_ce/callback/{instance_id}/" in only_added(
        (FIXTURES / "esb-later/components/esb_conf.py").read_text(encoding="utf-8"), esb_conf)
    assert "except KeyError, e:" in (later_root / "components/bk/apis/alarm_ce/alarm_component.py").read_text()
    assert "inherited from alarm" in result.output
    assert run_esbgen("check", "alarm_ce", "--esb-root", later_root).exit_code == 0


def test_the_clone_passes_check_and_a_repeat_changes_nothing(later_root, run_esbgen):
    assert run_esbgen("clone", "umg", "--as", "umg_ce", "--esb-root", later_root).exit_code == 0
    check = run_esbgen("check", "umg_ce", "--esb-root", later_root)
    assert check.exit_code == 0, check.output
    assert "inherited" in check.output  # the duplicate and the dict-form path the source has too
    before = snapshot(later_root)
    again = run_esbgen("clone", "umg", "--as", "umg_ce", "--esb-root", later_root)
    assert again.exit_code == 0 and "Nothing to do" in again.output
    assert snapshot(later_root) == before


def test_list_counts_channels_as_the_esb_does(later_root, run_esbgen):
    listing = run_esbgen("list", "--esb-root", later_root).output
    rows = {line.split()[0]: line.split() for line in listing.splitlines()[1:]}
    assert rows["umg"][2] == "5"  # 3 + the v1 channel + the dict-form entry; the duplicate counts once
    assert rows["alarm"][2] == "0"


def test_what_the_esbs_yaml_loader_accepts_is_read_and_cloned_as_it_reads_it(esb_root, run_esbgen):
    """Merge keys and anchors (PyYAML's safe_load takes them) and a path without its slash."""
    yaml_file = esb_root / "components/confapis/sops/sops.yaml"
    extra = (
        "\n- &shared\n  path: /v2/sops/get_alpha/\n  name: get_alpha\n  label: Alpha\n"
        "  comp_codename: generic.v2.sops.sops_component\n  dest_path: /o/bk_sops/apigw/get_alpha/\n"
        "  dest_http_method: GET\n"
        "- <<: *shared\n  path: /v2/sops/get_beta\n  name: get_beta\n  dest_path: /o/bk_sops/apigw/get_beta/\n"
    )
    yaml_file.write_bytes(yaml_file.read_bytes() + extra.encode("utf-8"))
    for name in ("get_alpha", "get_beta"):
        for language in ("en", "zh_hans"):
            (esb_root / f"components/confapis/sops/apidocs/{language}/{name}.md").write_text(f"# {name}\n")
    assert run_esbgen("check", "sops", "--esb-root", esb_root).exit_code == 0
    source = served(esb_root, "sops")
    assert ("/v2/sops/get_beta/", "") in source  # normalised, and its fields merged from the anchor
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    clone = served(esb_root, "bk_sops_ce")
    assert sorted(clone) == sorted((renamed(p, "sops", "bk_sops_ce"), m) for p, m in source)
    beta = clone[("/v2/bk_sops_ce/get_beta/", "")]
    assert beta.codename == "generic.v2.bk_sops_ce.sops_component" and beta.channel.get("label") == "Alpha"
    text = (esb_root / "components/confapis/bk_sops_ce/bk_sops_ce.yaml").read_text(encoding="utf-8")
    assert "  path: /v2/bk_sops_ce/get_beta\n" in text  # the source's spelling, renamed
    assert text.count("comp_codename: generic.v2.bk_sops_ce.sops_component\n  dest_path: /o/bk-sops-ce/apigw/get_alpha/") == 1
    assert run_esbgen("check", "bk_sops_ce", "--esb-root", esb_root).exit_code == 0


@pytest.mark.parametrize("fixture, source", [("esb", "sops"), ("esb", "cc"), ("esb-later", "umg"), ("esb-later", "alarm")])
def test_the_clone_checked_before_writing_is_the_one_read_back(tmp_path, fixture, source):
    """The pre-apply check works on the clone computed from the source; it must be what a reader finds."""
    from esbgen.design import CloneRequest, derived_clone, design_clone, conf_changes, esb_conf_changes, validate_rendered
    from esbgen.esb.rules import check_system, clone_remark
    from esbgen.edit.template import render

    root = tmp_path / "esb"
    shutil.copytree(FIXTURES / fixture, root)
    design = design_clone(root, CloneRequest(source, f"{source}_ce"))
    work = tmp_path / "work"
    template = design.spec.write(work / "template", link=True)
    output = work / "output"
    output.mkdir()
    render(template, design.context, output)
    # registered with the remark a clone gets: `esbgen check` finds the source it inherits from by it
    conf_write, _, _ = conf_changes(design.tree, design.target, clone_remark(design.source), design.source,
                                    (root / "components/esb_conf.py").read_text())
    preset_write, _, _ = esb_conf_changes(design.tree, design.target, design.source)
    validate_rendered(design.tree, output, f"{source}_ce", design.source, conf_write, design, preset_write=preset_write)
    derived = derived_clone(design.tree, output, f"{source}_ce", design)
    assert derived is not None
    loaded = load_tree(output, only={f"{source}_ce"})
    loaded.generation = derived.generation = design.tree.generation
    loaded.preset_channels = derived.preset_channels = design.tree.preset_channels
    a, b = derived.systems[f"{source}_ce"], loaded.systems[f"{source}_ce"]
    assert [str(p) for p in check_system(derived, a)] == [str(p) for p in check_system(loaded, b)]
    served_a = [(c.path, c.method, c.name, c.codename, c.where) for c in served_channels(derived, a)[0]]
    served_b = [(c.path, c.method, c.name, c.codename, c.where) for c in served_channels(loaded, b)[0]]
    assert served_a == served_b
    assert a.preset_channels or a.channels
    assert [c.fields for c in a.channels] == [c.fields for c in b.channels]
    assert sorted((c.codename, str(c.module)) for c in a.components) == sorted((c.codename, str(c.module)) for c in b.components)
    assert sorted(a.settings_read) == sorted(b.settings_read) and a.side_names == b.side_names


def test_a_rendered_file_other_than_computed_is_seen(tmp_path):
    """The clone is checked as computed from its edits; a rendered file that is not what the edits
    give (a template or plugin rendering otherwise) is told apart, byte for byte."""
    from esbgen.design import CloneRequest, design_clone, rendered_as_derived
    from esbgen.edit.template import render

    root = tmp_path / "esb"
    shutil.copytree(FIXTURES / "esb", root)
    design = design_clone(root, CloneRequest("sops", "sops_ce"))
    output = tmp_path / "work" / "output"
    output.mkdir(parents=True)
    render(design.spec.write(tmp_path / "work" / "template", link=True), design.context, output)
    assert rendered_as_derived(design, output)
    rendered = output / "components/confapis/sops_ce/sops_ce.yaml"
    data = rendered.read_bytes()
    rendered.write_bytes(data.replace(b"/v2/sops_ce/", b"/v2/sops_cf/", 1))
    assert not rendered_as_derived(design, output)
    rendered.write_bytes(data + b"\n")
    assert not rendered_as_derived(design, output)


def test_a_clone_rendered_otherwise_than_computed_is_read_back_and_checked(esb_root, run_esbgen, monkeypatch, tmp_path):
    """Where the rendered files are not the computed ones, the clone on disk is what is held to the rules."""
    from esbgen import design as clone

    reference = tmp_path / "reference"
    shutil.copytree(esb_root, reference, symlinks=True)
    assert run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", reference).exit_code == 0
    read_back = []

    def load_tree(root, *args, **kwargs):
        read_back.append(root)
        return real_load_tree(root, *args, **kwargs)

    real_load_tree = clone.load_tree
    monkeypatch.setattr(clone, "rendered_as_derived", lambda design, output: False)
    monkeypatch.setattr(clone, "load_tree", load_tree)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    assert any(root.name == "output" for root in read_back)  # the staged clone was read from disk
    for folder in ("components/bk/apisv2/bk_sops_ce", "components/confapis/bk_sops_ce"):
        assert snapshot(esb_root / folder) == snapshot(reference / folder)


def test_flaws_the_esb_tolerates_are_carried_over_and_reported_as_inherited(esb_root, run_esbgen):
    """An entry without dest_http_method, one without name, a channel without its zh_hans doc (cc.yaml's and job's shapes)."""
    yaml_file = esb_root / "components/confapis/sops/sops.yaml"
    text = yaml_file.read_text(encoding="utf-8")
    head, tail = text.split("- path: /v2/sops/start_task/", 1)
    tail = tail.replace("  dest_http_method: POST\n", "", 1)
    text = head + "- path: /v2/sops/start_task/" + tail
    head, tail = text.split("- path: /v2/sops/operate_task/", 1)
    tail = tail.replace("  name: operate_task\n", "", 1)
    yaml_file.write_text(head + "- path: /v2/sops/operate_task/" + tail, encoding="utf-8")
    (esb_root / "components/confapis/sops/apidocs/zh_hans/get_task_status.md").unlink()
    source = served(esb_root, "sops")
    assert ("/v2/sops/start_task/", "POST") not in source and not any("operate_task" in p for p, _ in source)

    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    inherited = [line for line in result.output.splitlines() if "inherited from sops" in line]
    assert any("lacks required field 'dest_http_method'" in line for line in inherited)
    assert any("lacks required field 'name'" in line for line in inherited)
    assert any("no zh_hans apidoc for 'get_task_status'" in line for line in inherited)
    clone = served(esb_root, "bk_sops_ce")
    assert sorted(clone) == sorted((renamed(p, "sops", "bk_sops_ce"), m) for p, m in source)
    # the skipped entries stand in the clone as they stand in the source
    cloned_text = (esb_root / "components/confapis/bk_sops_ce/bk_sops_ce.yaml").read_text(encoding="utf-8")
    assert "- path: /v2/sops/start_task/" in cloned_text and "- path: /v2/sops/operate_task/" in cloned_text
    check = run_esbgen("check", "bk_sops_ce", "--esb-root", esb_root)
    assert check.exit_code == 0, check.output
    assert check.output.count("inherited from sops") == 3
    # the source's own problems are what the ESB tolerates (it skips those entries, shows an empty doc): notes
    source_check = run_esbgen("check", "sops", "--esb-root", esb_root)
    assert source_check.exit_code == 0 and source_check.output.count("note: ") == 3, source_check.output

"""esbgen export-apigw: each fixture system as an API gateway project, read back with apigw-manager's own code.

apigw-manager runs in a virtualenv of its own (``make test`` builds ``.venv-apigw`` and sets
``ESBGEN_APIGW_PYTHON``); ``tests/apigw_check.py`` prints what its commands make of a project.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import OpenAPIV2SpecValidator, validate

from conftest import FIXTURES, REPO, snapshot

CHECKER = Path(__file__).with_name("apigw_check.py")
METHODS = ("get", "post", "put", "delete", "patch", "x-bk-apigateway-method-any")


def apigw_python() -> str:
    python = os.environ.get("ESBGEN_APIGW_PYTHON") or str(REPO / ".venv-apigw" / "bin" / "python")
    if not Path(python).is_file():
        pytest.fail(f"no apigw-manager virtualenv at {python}: run `make test`, which builds it")
    return python


def read_with_apigw_manager(project: Path, scratch: Path) -> dict:
    """What apigw-manager's commands load from the project (run in a copy: its migrate writes a database)."""
    copy = scratch / f"check-{project.name}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(project, copy)
    done = subprocess.run([apigw_python(), str(CHECKER), str(copy)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def operations(resources: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in resources["paths"].items() for method, op in item.items() if method in METHODS]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict:
    """Every fixture system exported once, with what apigw-manager reads of it and the tree's state before."""
    from esbgen.cli import run

    base = tmp_path_factory.mktemp("apigw")
    roots = {"esb": base / "esb", "esb-later": base / "esb-later"}
    for name, root in roots.items():
        shutil.copytree(FIXTURES / name, root, symlinks=True)
    found = {}
    for system, tree in [("sops", "esb"), ("cc", "esb"), ("itsm", "esb"), ("umg", "esb-later")]:
        before = snapshot(roots[tree])
        out = base / f"out-{system}"
        code = run(["export-apigw", system, "-o", str(out), "--esb-root", str(roots[tree])])
        assert code == 0
        assert snapshot(roots[tree]) == before, "the export wrote into the ESB tree"
        found[system] = {
            "root": roots[tree], "out": out, "apigw": read_with_apigw_manager(out, base),
            "resources": yaml.safe_load((out / "resources.yaml").read_text()),
        }
    return found


def served(root: Path, system: str):
    from esbgen.esbtree import load_tree
    from esbgen.rules import served_channels

    tree = load_tree(root)
    return served_channels(tree, tree.systems[system])[0]


@pytest.mark.parametrize("system", ["sops", "cc", "itsm", "umg"])
def test_apigw_manager_reads_the_project(exports, system):
    apigw = exports[system]["apigw"]
    assert apigw["spec_version"] == 2
    assert apigw["sync_apigw_config"]["maintainers"] == ["admin"]
    assert apigw["sync_apigw_config"]["description"] and apigw["sync_apigw_config"]["description_en"]
    assert apigw["create_version_and_release_apigw"]["version"] == "1.0.0"
    stages = apigw["sync_apigw_stage"]
    assert [s["name"] for s in stages] == ["prod"]
    assert stages[0]["backends"][0]["name"] == "default"
    assert apigw["docs_dir_exists"]
    # the command gets the very resources the file holds, Django's template rendering notwithstanding
    assert apigw["sync_apigw_resources"] == exports[system]["resources"]


@pytest.mark.parametrize("system", ["sops", "cc", "itsm", "umg"])
def test_resources_are_valid_swagger_2(exports, system):
    resources = exports[system]["resources"]
    validate(resources, cls=OpenAPIV2SpecValidator)
    assert resources["swagger"] == "2.0"


@pytest.mark.parametrize("system", ["sops", "cc", "itsm", "umg"])
def test_one_operation_per_served_channel(exports, system):
    ops = operations(exports[system]["resources"])
    channels = served(exports[system]["root"], system)
    assert len(ops) == len(channels) > 0
    names = [op["operationId"] for _, _, op in ops]
    assert len(set(n.lower() for n in names)) == len(names)
    assert all(re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]{0,255}", n) for n in names)
    assert {c.name for c in channels} == set(names)
    for path, method, op in ops:
        assert op["tags"] == [system.upper()]
        resource = op["x-bk-apigateway-resource"]
        assert resource["authConfig"]["appVerifiedRequired"] is True
        for var in re.findall(r"\{([^}]+)\}", path):
            assert {"name": var, "in": "path"}.items() <= next(p for p in op["parameters"] if p["name"] == var).items()


def test_sops_operations_follow_the_channels(exports):
    ops = {op["operationId"]: (path, method, op) for path, method, op in operations(exports["sops"]["resources"])}
    channels = {c.name: c for c in served(exports["sops"]["root"], "sops")}
    assert "import_common_template" not in ops  # hidden: the legacy ESB serves it not
    for name, channel in channels.items():
        path, method, op = ops[name]
        fields = channel.channel.fields
        resource = op["x-bk-apigateway-resource"]
        assert method == fields["method"].lower()
        assert op["description"] == fields["label"]
        assert resource["descriptionEn"] == fields["label_en"]
        assert resource["isPublic"] is True and resource["allowApplyPermission"] is True
        backend = resource["backend"]
        # the component takes ^/o/bk_sops off the dest_path; its {vars} become the resource's path variables
        assert backend["path"] == fields["dest_path"].replace("/o/bk_sops", "", 1)
        assert backend["method"] == fields["dest_http_method"].lower()
        assert backend["timeout"] == 0 and backend["name"] == "default"
        assert path == f"/{name}/" + "".join(f"{{{v}}}/" for v in re.findall(r"\{(\w+)\}", fields["dest_path"]))
        assert resource["authConfig"] == {"appVerifiedRequired": True, "resourcePermissionRequired": False,
                                          "userVerifiedRequired": True}
        assert "disabledStages" not in resource
    # a label that looks like a template comes through apigw-manager's Django rendering as written
    assert ops["get_task_detail"][2]["description"] == "查询任务执行详情 {{ 7*7 }}"
    stage = exports["sops"]["apigw"]["sync_apigw_stage"][0]
    assert stage["backends"][0]["config"]["hosts"] == [{"host": "http://paas.service.consul:80", "weight": 100}]


def test_umg_presets_with_their_configs(exports):
    ops = {op["operationId"]: (path, method, op) for path, method, op in operations(exports["umg"]["resources"])}
    assert set(ops) == {"list_departments", "update_department", "list_profiles", "get_user", "umg_component"}
    path, method, op = ops["update_department"]
    resource = op["x-bk-apigateway-resource"]
    assert (path, method) == ("/update_department/{id}/", "x-bk-apigateway-method-any")  # the ESB: no method, any
    assert resource["backend"] == {"name": "default", "method": "put", "path": "/api/v2/departments/{id}/",
                                   "matchSubpath": False, "timeout": 30}
    assert resource["authConfig"]["resourcePermissionRequired"] is True  # permission_level: sensitive
    assert resource["authConfig"]["userVerifiedRequired"] is True
    path, method, op = ops["list_departments"]
    resource = op["x-bk-apigateway-resource"]
    assert resource["backend"]["path"] == "/api/v2/departments/" and resource["backend"]["method"] == "get"
    assert resource["isPublic"] is False  # is_hidden
    assert resource["authConfig"] == {"appVerifiedRequired": True, "resourcePermissionRequired": False,
                                      "userVerifiedRequired": False}
    assert ops["list_profiles"][2]["x-bk-apigateway-resource"]["isPublic"] is False  # is_deprecated
    assert ops["list_profiles"][2]["description"] == "查询用户"  # the component's apiLabel
    path, method, op = ops["get_user"]  # the v1 side
    assert (path, method) == ("/get_user/", "get")
    for name in ("list_profiles", "get_user", "umg_component"):
        assert ops[name][2]["x-bk-apigateway-resource"]["disabledStages"] == ["prod"]
    stage = exports["umg"]["apigw"]["sync_apigw_stage"][0]
    assert stage["backends"][0]["config"]["hosts"][0]["host"] == "http://usermgr.example.test"
    migration = (exports["umg"]["out"] / "MIGRATION.md").read_text()
    assert "components/esb_conf.py:60" in migration.split("## Not exported")[1]  # the duplicate list_profiles


def test_cc_components_with_own_logic_are_marked(exports, run_esbgen, esb_root, tmp_path):
    ops = operations(exports["cc"]["resources"])
    assert len(ops) == 4
    for _, method, op in ops:
        assert method == "x-bk-apigateway-method-any"
        assert op["x-bk-apigateway-resource"]["disabledStages"] == ["prod"]
    migration = (exports["cc"]["out"] / "MIGRATION.md").read_text()
    hand = migration.split("## Needing a hand")[1].split("##")[0]
    for name in ("search_business", "get_host_base_info", "update_host", "create_set"):
        assert f"`{name}` (`/v2/cc/{name}/`): a Python component with its own logic" in hand
    assert exports["cc"]["apigw"]["sync_apigw_stage"][0]["backends"][0]["config"]["hosts"][0]["host"] == \
        "http://cmdb.service.consul:80"  # HOST_CC, read by the system's toolkit
    ops = {op["operationId"]: op for _, _, op in ops}
    assert ops["search_business"]["description"] == "查询业务"
    before = snapshot(esb_root)
    result = run_esbgen("export-apigw", "cc", "-o", tmp_path / "strict", "--strict", "--esb-root", esb_root)
    assert result.exit_code == 1 and "--strict: 4 channel(s) of cc cannot be mapped" in result.stderr
    assert not (tmp_path / "strict").exists()
    assert snapshot(esb_root) == before


@pytest.mark.parametrize("system", ["sops", "cc", "itsm", "umg"])
def test_docs_are_the_esbs_byte_for_byte(exports, system):
    out, root = exports[system]["out"], exports[system]["root"]
    written = sorted(str(p.relative_to(out / "docs")) for p in (out / "docs").rglob("*.md"))
    assert exports[system]["apigw"]["archive"] == written
    compared = 0
    for channel in served(root, system):
        folder = (root / "components/confapis" / system / "apidocs") if channel.channel is not None \
            else (root / channel.component.module.parent / "apidocs")
        for esb_language, language in (("zh_hans", "zh"), ("en", "en")):
            source = folder / esb_language / f"{channel.name}.md"
            target = out / "docs" / language / f"{channel.name}.md"
            assert source.is_file() == target.is_file()
            if source.is_file():
                expected = source.read_bytes().replace(b"{{ common_args_desc }}", b"{{ bkapi_authorization_description }}")
                assert target.read_bytes() == expected
                compared += 1
    assert compared == len(written)


def test_doc_quirks_survive(exports):
    docs = exports["sops"]["out"] / "docs"
    assert b"\r\n" in (docs / "zh/start_task.md").read_bytes()
    assert not (docs / "en/set_periodic_task_enabled.md").read_bytes().endswith(b"\n")
    assert b"{% raw %}" in (docs / "zh/get_task_detail.md").read_bytes()
    migration = (exports["sops"]["out"] / "MIGRATION.md").read_text()
    assert "`docs/zh/get_task_detail.md`: ESB template text the gateway shows as written" in migration


@pytest.mark.parametrize("system", ["sops", "cc", "itsm", "umg"])
def test_migration_table_lists_every_url(exports, system):
    out = exports[system]["out"]
    migration = (out / "MIGRATION.md").read_text()
    rows = list(csv.DictReader((out / "migration.csv").open()))
    ops = operations(exports[system]["resources"])
    assert len(rows) == len(ops)
    by_name = {row["resource"]: row for row in rows}
    for path, method, op in ops:
        row = by_name[op["operationId"]]
        channel = next(c for c in served(exports[system]["root"], system) if c.name == op["operationId"])
        assert row["esb_url"] == f"/api/c/compapi{channel.path}"
        assert row["gateway_url"] == f"/api/bk-{system}/prod{path}"
        assert row["gateway_method"] == ("ANY" if method == "x-bk-apigateway-method-any" else method.upper())
        assert f"| `{row['esb_url']}` |" in migration and f"`{row['gateway_url']}`" in migration
    steps = [line.split()[2] for line in migration.splitlines() if line.startswith(".venv/bin/python manage.py sync")
             or line.startswith(".venv/bin/python manage.py create")]
    assert f"create_version_and_release_apigw --gateway-name bk-{system} -f definition.yaml -s prod" in migration
    assert steps == ["sync_apigw_config", "sync_apigw_stage", "sync_apigw_resources", "sync_resource_docs_by_archive",
                     "create_version_and_release_apigw"]


def test_a_repeat_export_is_byte_identical(exports, run_esbgen):
    out, root = exports["sops"]["out"], exports["sops"]["root"]
    before = snapshot(out)
    (out / ".apigw-manager.sqlite3").write_bytes(b"apigw-manager's own")  # what its migrate leaves
    result = run_esbgen("export-apigw", "sops", "-o", out, "--esb-root", root)
    assert result.exit_code == 0, result.stderr
    assert "Replaced the export" in result.output and ".apigw-manager.sqlite3" in result.output
    after = snapshot(out)
    assert after.pop(".apigw-manager.sqlite3")
    assert after == before


def test_refusals_leave_everything_alone(run_esbgen, esb_root, tmp_path):
    before = snapshot(esb_root)
    inside = esb_root / "components" / "gw"
    result = run_esbgen("export-apigw", "sops", "-o", inside, "--esb-root", esb_root)
    assert result.exit_code == 1 and "inside the ESB's components/" in result.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    result = run_esbgen("export-apigw", "sops", "-o", other, "--esb-root", esb_root)
    assert result.exit_code == 1 and "holds no export of esbgen" in result.stderr
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    first = tmp_path / "first"
    assert run_esbgen("export-apigw", "sops", "-o", first, "--esb-root", esb_root).exit_code == 0
    result = run_esbgen("export-apigw", "itsm", "-o", first, "--esb-root", esb_root)
    assert result.exit_code == 1 and "holds the export of 'sops'" in result.stderr
    (first / "definition.yaml").write_text((first / "definition.yaml").read_text().replace("admin", "alice"))
    result = run_esbgen("export-apigw", "sops", "-o", first, "--esb-root", esb_root)
    assert result.exit_code == 1 and "definition.yaml changed since the last export" in result.stderr
    assert "alice" in (first / "definition.yaml").read_text()
    result = run_esbgen("export-apigw", "sops", "-o", tmp_path / "gw", "--gateway", "Bad_Name", "--esb-root", esb_root)
    assert result.exit_code == 2 and not (tmp_path / "gw").exists()
    assert snapshot(esb_root) == before


def test_dry_run_lists_and_writes_nothing(run_esbgen, esb_root, tmp_path):
    result = run_esbgen("export-apigw", "sops", "-o", tmp_path / "gw", "--dry-run", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    for name in ("definition.yaml", "resources.yaml", "MIGRATION.md", "migration.csv", "docs/zh/create_task.md"):
        assert f"  {name}  (" in result.output
    assert "Dry run: nothing was written." in result.output
    assert not (tmp_path / "gw").exists()


def test_backend_host_placeholder_and_option(run_esbgen, esb_root, tmp_path):
    settings = esb_root / "configs/default.py"
    settings.write_text(settings.read_text().replace("BK_SOPS_URL = 'http://paas.service.consul:80'\n", ""))
    result = run_esbgen("export-apigw", "sops", "-o", tmp_path / "gw", "--esb-root", esb_root)
    assert result.exit_code == 0
    assert "warning: backend default: BK_SOPS_URL is not defined in configs/default.py" in result.output
    definition = (tmp_path / "gw/definition.yaml").read_text()
    assert "host: http://bk-sops-url.not-set.invalid" in definition and "# backend default: PLACEHOLDER" in definition
    result = run_esbgen("export-apigw", "sops", "-o", tmp_path / "gw2", "--backend-host", "http://10.0.0.5:8000",
                        "--gateway", "my-sops", "--stage", "stag", "--grant-app", "bk_monitor", "--esb-root", esb_root)
    assert result.exit_code == 0 and "warning" not in result.output
    data = yaml.safe_load((tmp_path / "gw2/definition.yaml").read_text())
    assert data["stages"][0]["name"] == "stag"
    assert data["stages"][0]["backends"][0]["config"]["hosts"][0]["host"] == "http://10.0.0.5:8000"
    assert data["grant_permissions"] == [{"bk_app_code": "bk_monitor", "grant_dimension": "gateway"}]
    assert "`/api/my-sops/stag/get_template_list/{bk_biz_id}/`" in (tmp_path / "gw2/MIGRATION.md").read_text()


def test_a_system_the_esb_serves_nothing_of_is_refused(run_esbgen, tmp_path):
    root = tmp_path / "later"
    shutil.copytree(FIXTURES / "esb-later", root)
    result = run_esbgen("export-apigw", "alarm", "-o", tmp_path / "gw", "--esb-root", root)
    assert result.exit_code == 1
    assert "the ESB serves no channel of alarm" in result.stderr
    assert "alarm_component.py is written for Python 2" in result.stderr
    assert not (tmp_path / "gw").exists()


def test_the_command_line_shows_the_command(run_esbgen):
    result = run_esbgen("export-apigw", "--help")
    assert result.exit_code == 0 and "--backend-host URL" in result.output and "--strict" in result.output

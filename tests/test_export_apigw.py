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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


EXPORTED = {  # system: (fixture tree, options)
    "itsm": ("esb", ()),
    "umg": ("esb-later", ()),
    "notice": ("export-legacy", ()),
    "tickets": ("export-legacy", ()),
    "alert": ("export-legacy", ("--backend", "HOST_ALERT=http://alert.example.test",
                                "--channel-backend", "status=GET http://alert.example.test:8080/status/")),
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict:
    """Every fixture system exported once, with what apigw-manager reads of it and the tree's state before."""
    from esbgen.cli import run

    base = tmp_path_factory.mktemp("apigw")
    roots = {name: base / name for name in {tree for tree, _ in EXPORTED.values()}}
    for name, root in roots.items():
        shutil.copytree(FIXTURES / name, root, symlinks=True)
    found = {}
    for system, (tree, options) in EXPORTED.items():
        before = snapshot(roots[tree])
        out = base / f"out-{system}"
        code = run(["export-apigw", system, "-o", str(out), "--esb-root", str(roots[tree]), *options])
        assert code == 0
        assert snapshot(roots[tree]) == before, "the export wrote into the ESB tree"
        found[system] = {
            "root": roots[tree], "out": out, "apigw": read_with_apigw_manager(out, base),
            "resources": yaml.safe_load((out / "resources.yaml").read_text()),
        }
    return found


def served(root: Path, system: str):
    from esbgen.esb.tree import load_tree
    from esbgen.esb.rules import served_channels

    tree = load_tree(root)
    return served_channels(tree, tree.systems[system])[0]


def by_name(resources: dict) -> dict:
    return {op["operationId"]: (path, method, op) for path, method, op in operations(resources)}


@pytest.mark.parametrize("system", sorted(EXPORTED))
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


@pytest.mark.parametrize("system", sorted(EXPORTED))
def test_resources_are_valid_swagger_2(exports, system):
    resources = exports[system]["resources"]
    validate(resources, cls=OpenAPIV2SpecValidator)
    assert resources["swagger"] == "2.0"


@pytest.mark.parametrize("system", sorted(EXPORTED))
def test_resources_as_the_gateways_converter_makes_them(exports, system):
    """At the ESB's own path, named {system}_{name}, the system as tag; nothing disabled, nothing guessed."""
    for path, method, op in operations(exports[system]["resources"]):
        resource = op["x-bk-apigateway-resource"]
        assert op["operationId"].startswith(f"{system}_") and op["tags"] == [system.upper()]
        assert path.startswith((f"/v2/{system}/", f"/{system}/"))
        assert "disabledStages" not in resource
        assert resource["isPublic"] == resource["allowApplyPermission"]
        for var in re.findall(r"\{([^}]+)\}", path):
            assert {"name": var, "in": "path"}.items() <= next(p for p in op["parameters"] if p["name"] == var).items()
        # a backend path takes only the resource's own path variables
        assert set(re.findall(r"\{([^}]+)\}", resource["backend"]["path"])) <= set(re.findall(r"\{([^}]+)\}", path))


def test_confapis_channels_keep_their_path_and_method(exports):
    ops = by_name(exports["tickets"]["resources"])
    assert set(ops) == {"tickets_list_tickets", "tickets_create_ticket"}
    path, method, op = ops["tickets_list_tickets"]
    resource = op["x-bk-apigateway-resource"]
    assert (path, method) == ("/v2/tickets/list_tickets/", "x-bk-apigateway-method-any")  # no method: the ESB took any
    assert resource["backend"] == {"name": "default", "method": "get", "path": "/api/tickets/", "matchSubpath": False,
                                   "timeout": 0}  # the component takes ^/o/bk_tickets off
    assert op["description"] == "查询单据" and resource["descriptionEn"] == "List tickets"
    # rows of the default channel class: app, user and permission, at permission level unlimited
    assert resource["authConfig"] == {"appVerifiedRequired": True, "resourcePermissionRequired": False,
                                      "userVerifiedRequired": True}
    # the legacy ESB answers a confapis channel with GET and POST, whatever its entry's method says
    assert ops["tickets_create_ticket"][:2] == ("/v2/tickets/create_ticket/", "x-bk-apigateway-method-any")
    stage = exports["tickets"]["apigw"]["sync_apigw_stage"][0]
    assert stage["backends"][0]["config"]["hosts"] == [{"host": "http://tickets.example.test", "weight": 100}]
    migration = (exports["tickets"]["out"] / "MIGRATION.md").read_text()
    hand = migration.split("## Needing a hand")[1].split("\n## ")[0]
    assert "`/v2/tickets/get_ticket/`" in hand and "fills {ticket_id} of its dest_path from the request" in hand


def test_legacy_presets_rowless_ones_and_aliases(exports):
    ops = by_name(exports["notice"]["resources"])
    assert set(ops) == {"notice_send_mail", "notice_get_token", "notice_list_channels", "notice_flush",
                        "notice_send_mail_rewrite"}
    path, method, op = ops["notice_send_mail"]
    resource = op["x-bk-apigateway-resource"]
    assert (path, method) == ("/notice/send_mail/", "x-bk-apigateway-method-any")
    # the legacy component sends the whole dest_path to PAAS_HOST (a positional host, a Python 2 except clause)
    assert resource["backend"]["path"] == "/o/bk_notice/api/send_mail/" and resource["backend"]["method"] == "post"
    assert resource["authConfig"] == {"appVerifiedRequired": True, "resourcePermissionRequired": False,
                                      "userVerifiedRequired": True}
    # its own request_validators: the app only
    assert ops["notice_get_token"][2]["x-bk-apigateway-resource"]["authConfig"] == {
        "appVerifiedRequired": True, "resourcePermissionRequired": False, "userVerifiedRequired": False}
    # hidden: the legacy sync makes no row, its router answers anyway
    path, method, op = ops["notice_list_channels"]
    assert (path, method) == ("/v2/notice/list_channels/", "get")
    assert op["x-bk-apigateway-resource"]["isPublic"] is False
    # another group's channel class: the app, from a list of apps
    flush = ops["notice_flush"][2]
    assert flush["x-bk-apigateway-resource"]["authConfig"]["userVerifiedRequired"] is False
    assert "grant just those apps" in (exports["notice"]["out"] / "MIGRATION.md").read_text()
    path, method, op = ops["notice_send_mail_rewrite"]
    assert (path, method) == ("/v2/notice/send_mail/", "x-bk-apigateway-method-any")
    assert op["x-bk-apigateway-resource"]["isPublic"] is False
    assert op["x-bk-apigateway-resource"]["backend"] == ops["notice_send_mail"][2]["x-bk-apigateway-resource"]["backend"]
    stage = exports["notice"]["apigw"]["sync_apigw_stage"][0]
    assert stage["backends"][0]["config"]["hosts"] == [{"host": "http://paas.example.test:80", "weight": 100}]


def test_named_backends_and_channels_without_checks(exports):
    ops = by_name(exports["alert"]["resources"])
    path, method, op = ops["alert_event_alert_app_id"]
    resource = op["x-bk-apigateway-resource"]
    assert (path, method) == ("/alert/event/{alert_app_id}/", "post")
    assert resource["backend"]["path"] == "/event/{alert_app_id}/"
    # a channel class without validators: the ESB checked nothing
    assert resource["authConfig"] == {"appVerifiedRequired": False, "resourcePermissionRequired": False,
                                      "userVerifiedRequired": False}
    status = ops["alert_status"][2]["x-bk-apigateway-resource"]
    assert status["backend"]["method"] == "get" and status["backend"]["path"] == "/status/"
    hosts = {b["name"]: b["config"]["hosts"][0]["host"] for b in exports["alert"]["apigw"]["sync_apigw_stage"][0]["backends"]}
    assert sorted(hosts.values()) == ["http://alert.example.test", "http://alert.example.test:8080"]
    assert hosts[resource["backend"]["name"]] == "http://alert.example.test"
    assert hosts[status["backend"]["name"]] == "http://alert.example.test:8080"


def test_umg_presets_with_their_configs(exports):
    ops = by_name(exports["umg"]["resources"])
    assert set(ops) == {"umg_list_departments", "umg_list_profiles", "umg_get_user"}
    # components with their own code and one plain call: that call is the backend, and MIGRATION.md says so
    path, method, op = ops["umg_list_profiles"]
    assert (path, method) == ("/v2/umg/list_profiles/", "x-bk-apigateway-method-any")
    assert op["x-bk-apigateway-resource"]["backend"]["path"] == "/api/v2/profiles/"
    assert op["x-bk-apigateway-resource"]["backend"]["method"] == "get"
    assert op["x-bk-apigateway-resource"]["isPublic"] is False  # is_deprecated
    assert op["description"] == "查询用户"  # the component's apiLabel
    path, method, op = ops["umg_get_user"]  # the v1 side, on its own host
    assert (path, method) == ("/umg/get_user/", "get")
    assert op["x-bk-apigateway-resource"]["backend"]["path"] == "/user/"
    path, method, op = ops["umg_list_departments"]
    resource = op["x-bk-apigateway-resource"]
    assert (path, method) == ("/v2/umg/list_departments/", "x-bk-apigateway-method-any")
    assert resource["backend"]["path"] == "/api/v2/departments/" and resource["backend"]["method"] == "get"
    assert resource["isPublic"] is False  # is_hidden
    # its request_validators: the app and a user (imported under another name)
    assert resource["authConfig"] == {"appVerifiedRequired": True, "resourcePermissionRequired": False,
                                      "userVerifiedRequired": True}
    stage = exports["umg"]["apigw"]["sync_apigw_stage"][0]
    assert stage["backends"][0]["config"]["hosts"][0]["host"] == "http://usermgr.example.test"
    migration = (exports["umg"]["out"] / "MIGRATION.md").read_text()
    assert "components/esb_conf.py:60" in migration.split("## Not exported")[1]  # the duplicate list_profiles
    hand = migration.split("## Needing a hand")[1].split("\n## ")[0]
    assert "`/v2/umg/update_department/`" in hand and "`/v2/umg/get_status/`" in hand
    assert "the component's own code calls GET /api/v2/profiles/ on USERMGR_HOST" in migration


def test_channels_without_a_backend_are_refused(run_esbgen, esb_root, tmp_path):
    before = snapshot(esb_root)
    # cc's components build their calls in their own code
    result = run_esbgen("export-apigw", "cc", "-o", tmp_path / "cc", "--esb-root", esb_root)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("esbgen: error: no channel of cc has a backend")
    assert "its component builds the backend call in its own code" in result.stderr
    # sops fills its dest_paths from request parameters, which a gateway backend path cannot take
    result = run_esbgen("export-apigw", "sops", "-o", tmp_path / "sops", "--esb-root", esb_root)
    assert result.exit_code == 1 and "from the request's parameters" in result.stderr
    assert not (tmp_path / "cc").exists() and not (tmp_path / "sops").exists()
    assert snapshot(esb_root) == before


def test_strict_refuses_what_the_default_leaves_out(run_esbgen, tmp_path):
    root = tmp_path / "legacy"
    shutil.copytree(FIXTURES / "export-legacy", root)
    result = run_esbgen("export-apigw", "tickets", "-o", tmp_path / "gw", "--strict", "--esb-root", root)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "--strict: 1 channel(s) of tickets have no backend" in result.stderr and "/v2/tickets/get_ticket/" in result.stderr
    assert not (tmp_path / "gw").exists()
    result = run_esbgen("export-apigw", "tickets", "-o", tmp_path / "gw", "--esb-root", root)
    assert result.exit_code == 0 and "warning: /v2/tickets/get_ticket/: not exported:" in result.output
    # a setting without an address is named, not guessed
    result = run_esbgen("export-apigw", "alert", "-o", tmp_path / "alert", "--esb-root", root)
    assert result.exit_code == 1 and "give --backend HOST_ALERT=URL" in result.stderr
    assert not (tmp_path / "alert").exists()
    result = run_esbgen("export-apigw", "alert", "-o", tmp_path / "alert", "--channel-backend", "nosuch=GET http://h/x/",
                        "--backend", "HOST_ALERT=http://alert.example.test", "--esb-root", root)
    assert result.exit_code == 2 and "serves no channel of that name" in result.stderr
    result = run_esbgen("export-apigw", "alert", "-o", tmp_path / "alert", "--channel-backend", "status=http://h/x/",
                        "--esb-root", root)
    assert result.exit_code == 2 and "is not 'METHOD http://host/path/'" in result.stderr
    result = run_esbgen("export-apigw", "alert", "-o", tmp_path / "alert", "--backend", "HOST_ALERT=alert", "--esb-root", root)
    assert result.exit_code == 2 and "--backend HOST_ALERT 'alert' is not an http:// or https:// address" in result.stderr
    assert not (tmp_path / "alert").exists()


def test_docstring_docs_in_both_languages(exports):
    docs = exports["notice"]["out"] / "docs"
    zh = (docs / "zh/notice_list_channels.md").read_text()
    en = (docs / "en/notice_list_channels.md").read_text()
    # the ESB renders the docstring with its gettext catalog: no catalog here, so both read as written
    assert zh == en and zh.startswith("### 功能描述\n\n转发请求到通知中心\n")
    assert "apiLabel" not in zh and "{{ bkapi_authorization_description }}" in zh and "| 字段 | 类型 |" in zh
    # apidocs beside the module win over the docstring, and an alias has its channel's
    assert (docs / "en/notice_send_mail.md").read_bytes() == (docs / "en/notice_send_mail_rewrite.md").read_bytes()
    assert (docs / "en/notice_send_mail.md").read_text().startswith("### Description")
    assert (exports["alert"]["out"] / "docs/zh/alert_status.md").read_text().startswith("### 功能描述")


def test_a_system_without_docs_names_no_docs_folder(run_esbgen, tmp_path):
    """The gateway refuses an archive without docs, and apigw-manager a docs folder that is not there."""
    root = tmp_path / "legacy"
    shutil.copytree(FIXTURES / "export-legacy", root)
    status = root / "components/bk/apis/alert/status.py"
    status.write_text(re.sub(r'    """.*?"""\n', "", status.read_text(), flags=re.S))
    result = run_esbgen("export-apigw", "alert", "-o", tmp_path / "gw", "--backend", "HOST_ALERT=http://alert.example.test",
                        "--channel-backend", "status=GET http://alert.example.test/status/", "--esb-root", root)
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "gw/docs").exists()
    assert "resource_docs" not in yaml.safe_load((tmp_path / "gw/definition.yaml").read_text())
    migration = (tmp_path / "gw/MIGRATION.md").read_text()
    assert "sync_resource_docs_by_archive" not in migration and "no docs folder and no docs step" in migration
    apigw = read_with_apigw_manager(tmp_path / "gw", tmp_path)
    assert apigw["sync_resource_docs_by_archive"] == {} and apigw["archive"] is None


def test_docs_follow_a_gettext_catalog(run_esbgen, tmp_path):
    import subprocess as sp

    root = tmp_path / "legacy"
    shutil.copytree(FIXTURES / "export-legacy", root)
    catalog = root / "locale/en/LC_MESSAGES"
    catalog.mkdir(parents=True)
    (catalog / "django.po").write_text('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                                       'msgid "功能描述"\nmsgstr "Description"\n', encoding="utf-8")
    sp.run(["msgfmt", "-o", str(catalog / "django.mo"), str(catalog / "django.po")], check=True)
    assert run_esbgen("export-apigw", "notice", "-o", tmp_path / "gw", "--esb-root", root).exit_code == 0
    assert (tmp_path / "gw/docs/en/notice_list_channels.md").read_text().startswith("### Description\n")
    assert (tmp_path / "gw/docs/zh/notice_list_channels.md").read_text().startswith("### 功能描述\n")


@pytest.mark.parametrize("system", ["itsm", "tickets", "notice"])
def test_docs_are_the_esbs_byte_for_byte(exports, system):
    out, root = exports[system]["out"], exports[system]["root"]
    written = sorted(str(p.relative_to(out / "docs")) for p in (out / "docs").rglob("*.md"))
    assert exports[system]["apigw"]["archive"] == written
    compared = 0
    exported = by_name(exports[system]["resources"])
    for channel in served(root, system):
        if f"{system}_{channel.name}" not in exported:
            continue  # not exported (MIGRATION.md says why)
        folder = (root / "components/confapis" / system / "apidocs") if channel.channel is not None \
            else (root / channel.component.module.parent / "apidocs")
        for esb_language, language in (("zh_hans", "zh"), ("en", "en")):
            source = folder / esb_language / f"{channel.name}.md"
            target = out / "docs" / language / f"{system}_{channel.name}.md"
            if source.is_file():
                expected = source.read_bytes().replace(b"{{ common_args_desc }}", b"{{ bkapi_authorization_description }}")
                assert target.read_bytes() == expected
                compared += 1
    assert compared > 0


def test_doc_quirks_survive(run_esbgen, esb_root, tmp_path):
    # sops fills its dest_paths from request parameters: the operator names these backends
    named = ["start_task=POST http://sops.example.test/apigw/start_task/",
             "set_periodic_task_enabled=POST http://sops.example.test/apigw/set_periodic_task_enabled/",
             "get_task_detail=GET http://sops.example.test/apigw/get_task_detail/"]
    options = [part for value in named for part in ("--channel-backend", value)]
    result = run_esbgen("export-apigw", "sops", "-o", tmp_path / "gw", "--esb-root", esb_root, *options)
    assert result.exit_code == 0, result.stderr
    docs = tmp_path / "gw/docs"
    assert b"\r\n" in (docs / "zh/sops_start_task.md").read_bytes()
    assert not (docs / "en/sops_set_periodic_task_enabled.md").read_bytes().endswith(b"\n")
    assert b"{% raw %}" in (docs / "zh/sops_get_task_detail.md").read_bytes()
    migration = (tmp_path / "gw/MIGRATION.md").read_text()
    assert "`docs/zh/sops_get_task_detail.md`: ESB template text the gateway shows as written" in migration
    resources = yaml.safe_load((tmp_path / "gw/resources.yaml").read_text())
    path, method, op = by_name(resources)["sops_start_task"]
    assert (path, method) == ("/v2/sops/start_task/", "x-bk-apigateway-method-any")  # the legacy ESB: GET and POST
    assert op["x-bk-apigateway-resource"]["backend"]["path"] == "/apigw/start_task/"


@pytest.mark.parametrize("system", sorted(EXPORTED))
def test_migration_table_lists_every_url(exports, system):
    out = exports[system]["out"]
    migration = (out / "MIGRATION.md").read_text()
    rows = list(csv.DictReader((out / "migration.csv").open()))
    ops = operations(exports[system]["resources"])
    assert len(rows) == len(ops)
    rows_by_name = {row["resource"]: row for row in rows}
    for path, method, op in ops:
        row = rows_by_name[op["operationId"]]
        assert row["esb_url"] == f"/api/c/compapi{path}"  # callers keep their path
        assert row["gateway_url"] == f"/api/bk-{system}/prod{path}"
        assert row["gateway_method"] == ("ANY" if method == "x-bk-apigateway-method-any" else method.upper())
        assert f"| `{row['esb_url']}` |" in migration and f"`{row['gateway_url']}`" in migration
    steps = [line.split()[2] for line in migration.splitlines() if line.startswith(".venv/bin/python manage.py sync")
             or line.startswith(".venv/bin/python manage.py create")]
    assert f"create_version_and_release_apigw --gateway-name bk-{system} -f definition.yaml -s prod" in migration
    assert steps == ["sync_apigw_config", "sync_apigw_stage", "sync_apigw_resources", "sync_resource_docs_by_archive",
                     "create_version_and_release_apigw"]


def test_a_repeat_export_is_byte_identical(exports, run_esbgen):
    out, root = exports["itsm"]["out"], exports["itsm"]["root"]
    before = snapshot(out)
    (out / ".apigw-manager.sqlite3").write_bytes(b"apigw-manager's own")  # what its migrate leaves
    result = run_esbgen("export-apigw", "itsm", "-o", out, "--esb-root", root)
    assert result.exit_code == 0, result.stderr
    assert "Replaced the export" in result.output and ".apigw-manager.sqlite3" in result.output
    after = snapshot(out)
    assert after.pop(".apigw-manager.sqlite3")
    assert after == before


def test_refusals_leave_everything_alone(run_esbgen, esb_root, tmp_path):
    before = snapshot(esb_root)
    inside = esb_root / "components" / "gw"
    result = run_esbgen("export-apigw", "itsm", "-o", inside, "--esb-root", esb_root)
    assert result.exit_code == 1 and "inside the ESB's components/" in result.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    result = run_esbgen("export-apigw", "itsm", "-o", other, "--esb-root", esb_root)
    assert result.exit_code == 1 and "holds no export of esbgen" in result.stderr
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    first = tmp_path / "first"
    assert run_esbgen("export-apigw", "itsm", "-o", first, "--esb-root", esb_root).exit_code == 0
    result = run_esbgen("export-apigw", "sops", "-o", first, "--esb-root", esb_root,
                        "--channel-backend", "start_task=POST http://sops.example.test/apigw/start_task/")
    assert result.exit_code == 1 and "holds the export of 'itsm'" in result.stderr
    (first / "definition.yaml").write_text((first / "definition.yaml").read_text().replace("admin", "alice"))
    result = run_esbgen("export-apigw", "itsm", "-o", first, "--esb-root", esb_root)
    assert result.exit_code == 1 and "definition.yaml changed since the last export" in result.stderr
    assert "alice" in (first / "definition.yaml").read_text()
    result = run_esbgen("export-apigw", "itsm", "-o", tmp_path / "gw", "--gateway", "Bad_Name", "--esb-root", esb_root)
    assert result.exit_code == 2 and not (tmp_path / "gw").exists()
    assert snapshot(esb_root) == before


def test_dry_run_lists_and_writes_nothing(run_esbgen, esb_root, tmp_path):
    result = run_esbgen("export-apigw", "itsm", "-o", tmp_path / "gw", "--dry-run", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    for name in ("definition.yaml", "resources.yaml", "MIGRATION.md", "migration.csv", "docs/zh/itsm_create_ticket.md"):
        assert f"  {name}  (" in result.output
    assert "Dry run: nothing was written." in result.output
    assert not (tmp_path / "gw").exists()


def test_backend_host_is_named_not_guessed(run_esbgen, esb_root, tmp_path):
    settings = esb_root / "configs/default.py"
    settings.write_text(settings.read_text().replace("BK_ITSM_URL = 'http://paas.service.consul:80'\n", ""))
    result = run_esbgen("export-apigw", "itsm", "-o", tmp_path / "gw", "--esb-root", esb_root)
    assert result.exit_code == 1 and "BK_ITSM_URL has no address in the settings file (not defined there): " \
        "give --backend BK_ITSM_URL=URL" in result.stderr
    assert not (tmp_path / "gw").exists()
    result = run_esbgen("export-apigw", "itsm", "-o", tmp_path / "gw1", "--backend", "BK_ITSM_URL=http://10.0.0.6:8000",
                        "--esb-root", esb_root)
    assert result.exit_code == 0 and "warning" not in result.output
    data = yaml.safe_load((tmp_path / "gw1/definition.yaml").read_text())
    assert data["stages"][0]["backends"][0]["config"]["hosts"][0]["host"] == "http://10.0.0.6:8000"
    result = run_esbgen("export-apigw", "itsm", "-o", tmp_path / "gw2", "--backend-host", "http://10.0.0.5:8000",
                        "--gateway", "my-itsm", "--stage", "stag", "--grant-app", "bk_monitor", "--esb-root", esb_root)
    assert result.exit_code == 0 and "warning" not in result.output
    data = yaml.safe_load((tmp_path / "gw2/definition.yaml").read_text())
    assert data["stages"][0]["name"] == "stag"
    assert data["stages"][0]["backends"][0]["config"]["hosts"][0]["host"] == "http://10.0.0.5:8000"
    assert data["grant_permissions"] == [{"bk_app_code": "bk_monitor", "grant_dimension": "gateway"}]
    assert "`/api/my-itsm/stag/v2/itsm/get_services/`" in (tmp_path / "gw2/MIGRATION.md").read_text()


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
    assert "--backend SETTING=URL" in result.output and "--channel-backend" in result.output and "--via-esb URL" in result.output


def test_a_host_chosen_while_handling_is_not_read_as_the_class_one(run_esbgen, tmp_path):
    root = tmp_path / "legacy"
    shutil.copytree(FIXTURES / "export-legacy", root)
    component = root / "components/bk/apis/alert/alert_component.py"
    text = component.read_text()
    component.write_text(text.replace("    sys_name = configs.SYSTEM_NAME\n", "    sys_name = configs.SYSTEM_NAME\n    host = configs.host\n")
                         .replace("            configs.host,\n", "            self.host,\n")
                         .replace("    def handle(self):\n", "    def handle(self):\n        self.host = self.pick_host()\n"))
    result = run_esbgen("export-apigw", "alert", "-o", tmp_path / "gw", "--backend", "HOST_ALERT=http://alert.example.test",
                        "--channel-backend", "status=GET http://alert.example.test/status/", "--esb-root", root)
    assert result.exit_code == 0, result.stderr
    assert "/alert/event/{alert_app_id}/: not exported: the component's code does not show which host it calls" in result.output


def test_via_esb_sends_what_the_code_does_not_show_through_the_esb(run_esbgen, esb_root, tmp_path):
    before = snapshot(esb_root)
    result = run_esbgen("export-apigw", "cc", "-o", tmp_path / "gw", "--via-esb", "http://paas.example.com",
                        "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    resources = yaml.safe_load((tmp_path / "gw/resources.yaml").read_text())
    validate(resources, cls=OpenAPIV2SpecValidator)
    ops = by_name(resources)
    assert set(ops) == {"cc_search_business", "cc_get_host_base_info", "cc_update_host", "cc_create_set"}
    for name, (path, method, op) in ops.items():
        backend = op["x-bk-apigateway-resource"]["backend"]
        # as the gateway's converter maps a component: the ESB's full path, the method it was called with
        assert backend["path"] == f"/api/c/compapi{path}" and path == f"/v2/cc/{name[3:]}/"
        assert (method, backend["method"]) == ("x-bk-apigateway-method-any", "any")
    definition = yaml.safe_load((tmp_path / "gw/definition.yaml").read_text())
    assert definition["stages"][0]["backends"][0]["config"]["hosts"] == [{"host": "http://paas.example.com", "weight": 100}]
    assert "through the ESB (--via-esb), which still runs its component" in (tmp_path / "gw/MIGRATION.md").read_text()
    apigw = read_with_apigw_manager(tmp_path / "gw", tmp_path)
    assert apigw["sync_apigw_resources"] == resources
    result = run_esbgen("export-apigw", "cc", "-o", tmp_path / "gw2", "--via-esb", "paas", "--esb-root", esb_root)
    assert result.exit_code == 2 and "--via-esb 'paas' is not an http:// or https:// address" in result.stderr
    assert snapshot(esb_root) == before


TEXTS = st.one_of(st.text(max_size=12), st.sampled_from([
    "", "1.0", "2.0", "1.0.0", "yes", "null", "~", "<<", "=", "0x1f", "2020-01-01", "a: b", "a #b", "- x", "x ", " x",
    "a\nb", "a\n\nb", "'q'", "x'y", "(a)", "/v2/x/{id}/", "接口 1 (x)", "a" * 130, "é" * 70, "\u2028", "\ufeff"]))
YAML_DATA = st.recursive(st.one_of(TEXTS, st.booleans(), st.integers(), st.none()),
                         lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                 st.dictionaries(st.one_of(TEXTS, st.integers()), inner, max_size=4)),
                         max_leaves=20)


@settings(max_examples=500, suppress_health_check=list(HealthCheck), deadline=None)
@given(st.dictionaries(TEXTS, YAML_DATA, max_size=5))
def test_the_quick_yaml_writer_writes_the_bytes_of_libyaml(data):
    from esbgen.commands.export_apigw import _yaml_text

    assert _yaml_text(data) == yaml.dump(data, Dumper=yaml.CSafeDumper, default_flow_style=False, allow_unicode=True,
                                         sort_keys=False, width=4096)

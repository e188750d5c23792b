"""``esbgen retarget``: a system's channels and app literals move to another app, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES, assert_one_line_refusal, changed_paths, snapshot
from routing_kit import call

SOPS_YAML = "components/confapis/sops/sops.yaml"
SOPS_PROD = "components/confapis/sops/prod/sops.yaml"
SOPS_COMPONENT = "components/bk/apisv2/sops/sops_component.py"
SOPS_TOOLS = "components/bk/apisv2/sops/toolkit/tools.py"
SOPS_CONFIGS = "components/bk/apisv2/sops/toolkit/configs.py"
ITSM_YAML = "components/confapis/itsm/itsm.yaml"
ITSM_COMPONENT = "components/bk/apisv2/itsm/itsm_component.py"
NEW_APP = "bk-sops-ce"


def test_retarget_sops_moves_the_app_and_its_host_setting(esb_root: Path, run_esbgen) -> None:
    original = {rel: (esb_root / rel).read_bytes() for rel in (SOPS_YAML, SOPS_PROD, SOPS_COMPONENT, SOPS_TOOLS, SOPS_CONFIGS)}
    before = snapshot(esb_root)

    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", esb_root)

    assert result.exit_code == 0, result.stderr
    assert changed_paths(before, snapshot(esb_root)) == set(original)
    for rel, old in original.items():
        new = (esb_root / rel).read_bytes()
        # Putting the old app code and host setting back gives the original file byte for byte (CRLF file
        # included): every other byte, comment, quote and line end stayed.
        assert new.replace(NEW_APP.encode(), b"bk_sops").replace(b"BK_SOPS_CE_URL", b"BK_SOPS_URL") == old, rel
        assert NEW_APP.encode() not in old
    sops_yaml = (esb_root / SOPS_YAML).read_bytes()
    prod_yaml = (esb_root / SOPS_PROD).read_bytes()
    # Every dest_path moved (13 default channels, 3 in the RUN_MODE folder), and only dest_paths.
    assert sops_yaml.count(f"/o/{NEW_APP}/".encode()) == 13
    assert prod_yaml.count(f"/o/{NEW_APP}/".encode()) == 3
    assert b"# Every dest_path points at the app's apigw under /o/bk_sops/" in sops_yaml  # comments stay
    for data in (sops_yaml, prod_yaml):
        for line in data.splitlines():
            assert not (line.lstrip().startswith(b"dest_path:") and b"/o/bk_sops" in line), line
            if NEW_APP.encode() in line:
                assert line.lstrip().startswith(b"dest_path:"), line
    assert prod_yaml.count(b"\r\n") == prod_yaml.count(b"\n")  # still CRLF on every line
    # Paths and codenames stay: callers keep working.
    assert sops_yaml.count(b"/v2/sops/") == 13 and b"generic.v2.sops.sops_component" in sops_yaml
    component = (esb_root / SOPS_COMPONENT).read_text(encoding="utf-8")
    assert f're.sub(r"^/o/{NEW_APP}", "", path)' in component
    assert "# the app server already routes /o/bk_sops/" in component  # a comment, not a literal: kept
    tools = (esb_root / SOPS_TOOLS).read_text(encoding="utf-8")
    assert f"/o/{NEW_APP}/taskflow/execute/" in tools and 'getattr(settings, "PAAS_HOST", "")' in tools
    # The component takes the prefix off and calls the app's own host: that host is now the new app's.
    assert 'getattr(settings, "BK_SOPS_CE_URL", "")' in (esb_root / SOPS_CONFIGS).read_text(encoding="utf-8")
    where = call(esb_root, "sops", "get_template_list", bk_biz_id="2")
    assert (where.host_setting, where.method, where.path) == ("BK_SOPS_CE_URL", "GET", "/apigw/get_template_list/2/")
    assert where.setting is None  # not defined yet: the plan says so
    assert (esb_root / "configs/default.py").read_bytes() == (FIXTURES / "esb/configs/default.py").read_bytes()
    assert "define BK_SOPS_CE_URL in configs/default.py (the address of app bk-sops-ce) before restarting the ESB" in result.output
    assert "Retargeted sops from app bk_sops to bk-sops-ce" in result.output

    check = run_esbgen("check", "--esb-root", esb_root)
    assert check.exit_code == 0, check.output


def test_dry_run_shows_the_diff_and_changes_nothing(esb_root: Path, run_esbgen) -> None:
    before = snapshot(esb_root)

    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", esb_root, "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert snapshot(esb_root) == before
    assert not (esb_root / ".esbgen" / "journal").exists()
    out = result.output
    assert f"modify {SOPS_YAML}" in out and f"modify {SOPS_PROD}" in out
    assert "-  dest_path: /o/bk_sops/apigw/import_common_template/" in out
    assert f"+  dest_path: /o/{NEW_APP}/apigw/import_common_template/" in out
    assert f"+  dest_path: /o/{NEW_APP}/apigw/v2/get_template_list/{{bk_biz_id}}/\\r" in out  # CRLF shown
    assert f'+        return re.sub(r"^/o/{NEW_APP}", "", path)' in out
    assert "Dry run: nothing was changed." in out


def test_repeat_is_a_noop_and_undo_restores_bytes(esb_root: Path, run_esbgen) -> None:
    pristine = snapshot(esb_root)
    assert run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", esb_root).exit_code == 0
    applied = snapshot(esb_root)
    journals = sorted((esb_root / ".esbgen" / "journal").iterdir())

    again = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", esb_root)

    assert again.exit_code == 0, again.stderr
    assert "Nothing to do: sops already forwards to app bk-sops-ce." in again.output
    assert snapshot(esb_root) == applied
    assert sorted((esb_root / ".esbgen" / "journal").iterdir()) == journals  # no new change recorded

    undo = run_esbgen("undo", "--esb-root", esb_root)
    assert undo.exit_code == 0, undo.stderr
    assert snapshot(esb_root) == pristine


def test_retarget_back_gives_the_original_tree(esb_root: Path, run_esbgen) -> None:
    pristine = snapshot(esb_root)
    assert run_esbgen("retarget", "sops", "--app-code", "bk_sops_ce", "--esb-root", esb_root).exit_code == 0
    assert run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", esb_root).exit_code == 0
    back = run_esbgen("retarget", "sops", "--app-code", "bk_sops", "--esb-root", esb_root)
    assert back.exit_code == 0, back.stderr
    assert "from app bk-sops-ce to bk_sops" in back.output
    assert snapshot(esb_root) == pristine


def test_retarget_itsm_moves_its_prefix_and_its_host_setting(esb_root: Path, run_esbgen) -> None:
    itsm_configs = "components/bk/apisv2/itsm/toolkit/configs.py"
    old = {rel: (esb_root / rel).read_bytes() for rel in (ITSM_YAML, ITSM_COMPONENT, itsm_configs)}
    before = snapshot(esb_root)

    result = run_esbgen("retarget", "itsm", "--app-code", "itsm-next", "--esb-root", esb_root)

    assert result.exit_code == 0, result.stderr
    assert changed_paths(before, snapshot(esb_root)) == set(old)
    for rel, data in old.items():
        new = (esb_root / rel).read_bytes()
        assert new.replace(b"itsm-next", b"bk_itsm").replace(b"BK_ITSM_NEXT_URL", b"BK_ITSM_URL") == data, rel
    assert (esb_root / ITSM_YAML).read_bytes().count(b"/o/itsm-next/") == 5
    assert b'r"^/o/itsm-next"' in (esb_root / ITSM_COMPONENT).read_bytes()
    where = call(esb_root, "itsm", "get_services")
    assert (where.host_setting, where.path) == ("BK_ITSM_NEXT_URL", "/openapi/service/get_services/")
    assert "define BK_ITSM_NEXT_URL in configs/default.py" in result.output


def test_dest_path_on_another_app_is_kept_and_noted(esb_root: Path, run_esbgen) -> None:
    path = esb_root / SOPS_YAML
    data = path.read_bytes()
    odd = b"dest_path: /o/bk_sops/apigw/import_common_template/"
    assert data.count(odd) == 1
    path.write_bytes(data.replace(odd, b"dest_path: /o/other_app/apigw/import_common_template/"))
    edited = path.read_bytes()

    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", esb_root)

    assert result.exit_code == 0, result.stderr
    after = path.read_bytes()
    assert b"/o/other_app/apigw/import_common_template/" in after
    assert after.replace(NEW_APP.encode(), b"bk_sops") == edited
    assert "is not on app bk_sops; kept" in result.output


def test_refusals_leave_the_tree_untouched(esb_root: Path, run_esbgen) -> None:
    before = snapshot(esb_root)

    assert_one_line_refusal(run_esbgen("retarget", "nosuch", "--app-code", "x", "--esb-root", esb_root))
    assert_one_line_refusal(run_esbgen("retarget", "sops", "--app-code", "Bad App", "--esb-root", esb_root), 2)
    assert_one_line_refusal(run_esbgen("retarget", "../sops", "--app-code", "x", "--esb-root", esb_root), 2)
    # cc is Python-per-API: no dest_path on any app to move.
    cc = run_esbgen("retarget", "cc", "--app-code", "x", "--esb-root", esb_root)
    assert_one_line_refusal(cc)
    assert "no dest_path of cc is on an app" in cc.stderr
    assert run_esbgen("retarget", "sops", "--esb-root", esb_root).exit_code == 2  # --app-code is required

    assert snapshot(esb_root) == before


def test_system_without_app_dest_paths_is_refused(esb_root: Path, run_esbgen) -> None:
    path = esb_root / ITSM_YAML
    path.write_bytes(path.read_bytes().replace(b"dest_path: /o/bk_itsm/", b"dest_path: /api/"))
    before = snapshot(esb_root)

    result = run_esbgen("retarget", "itsm", "--app-code", "x", "--esb-root", esb_root)

    assert_one_line_refusal(result)
    assert "no dest_path of itsm is on an app" in result.stderr
    assert snapshot(esb_root) == before


def test_malformed_yaml_is_refused_with_file_and_line(esb_root: Path, run_esbgen) -> None:
    path = esb_root / SOPS_PROD
    lines = path.read_bytes().split(b"\r\n")
    lines[9] = b"  dest_path: [unclosed"
    path.write_bytes(b"\r\n".join(lines))
    before = snapshot(esb_root)

    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", esb_root)

    assert_one_line_refusal(result)
    assert f"{SOPS_PROD}:" in result.stderr and "malformed YAML" in result.stderr
    assert snapshot(esb_root) == before


def test_a_host_setting_naming_the_old_app_is_pointed_out(esb_root: Path, run_esbgen) -> None:
    configs = esb_root / "configs/default.py"
    old = b"BK_SOPS_URL = 'http://paas.service.consul:80'\n"
    data = configs.read_bytes()
    assert data.count(old) == 1
    configs.write_bytes(data.replace(old, b"BK_SOPS_URL = 'http://paas.service.consul:80/o/bk_sops'\n"))
    edited = configs.read_bytes()

    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--esb-root", esb_root)

    assert result.exit_code == 0, result.stderr
    assert configs.read_bytes() == edited  # settings are the operator's: pointed out, not edited (no --app-url)
    assert (
        "BK_SOPS_URL = 'http://paas.service.consul:80/o/bk_sops' names app bk_sops, "
        "so BK_SOPS_CE_URL = 'http://paas.service.consul:80/o/bk-sops-ce' would name app bk-sops-ce"
    ) in result.output


BAD_APP_URLS = [
    ("http://sops-ce.example.com:99999", "has a port '99999' that is not a port from 1 to 65535"),
    ("http://sops-ce.example.com:0", "has a port '0' that is not a port from 1 to 65535"),
    ("ftp://sops-ce.example.com", "is not an http:// or https:// address like http://host[:port][/path]"),
    ("file:///etc/passwd", "is not an http:// or https:// address"),
    ("//sops-ce.example.com", "is not an http:// or https:// address"),
    ("http://", "has no host"),
    ("http://sops ce.example.com", "holds a space, a quote, a backslash or a control character"),
    ("http://sops-ce.example.com/\r\nX = 1", "holds a space, a quote, a backslash or a control character"),
    ("http://sops-ce.example.com/?next=1", "has a query or a fragment"),
    ("http://-sops.example.com", "has a host '-sops.example.com' that is not a host name or IP address"),
    ("http://10.0.0.256:80", "has a host '10.0.0.256' that is not an IPv4 address"),
    ("http://ops:s3cret@sops-ce.example.com", "holds user info"),
]


@pytest.mark.parametrize("url, message", BAD_APP_URLS)
def test_an_app_url_that_is_no_http_address_is_refused_before_anything_is_read(esb_root: Path, run_esbgen, url, message):
    before = snapshot(esb_root)
    result = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--app-url", url, "--esb-root", esb_root)
    assert_one_line_refusal(result, 2)
    assert "--app-url '" in result.stderr and message in result.stderr
    assert "s3cret" not in result.stderr + result.output
    assert snapshot(esb_root) == before
    assert not (esb_root / ".esbgen").exists()


@pytest.mark.parametrize("url", ["http://sops-ce.example.com:65535", "https://10.0.0.5", "http://[::1]:8080/sops/",
                                 "https://sops-ce.example.com/"])
def test_an_http_address_with_a_port_in_range_is_taken(esb_root: Path, run_esbgen, url):
    from esbgen.esb.rules import validate_url

    assert validate_url(url, "--app-url") == url


def test_a_long_diff_is_summed_up_and_shown_whole_on_request(esb_root: Path, run_esbgen) -> None:
    """A retarget of hundreds of channels prints its first hunk and one line for the rest; --full-diff all of it."""
    yaml = esb_root / SOPS_YAML
    entries = "".join(f"- path: /v2/sops/op_{n:04d}/\n  name: op_{n:04d}\n  label: op {n}\n  method: GET\n"
                      f"  comp_codename: generic.v2.sops.sops_component\n"
                      f"  dest_path: /o/bk_sops/apigw/op_{n:04d}/\n  dest_http_method: GET\n\n" for n in range(300))
    yaml.write_bytes(yaml.read_bytes() + b"\n" + entries.encode())
    before = snapshot(esb_root)

    short = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--dry-run", "--esb-root", esb_root)
    whole = run_esbgen("retarget", "sops", "--app-code", NEW_APP, "--dry-run", "--full-diff", "--esb-root", esb_root)

    assert short.exit_code == 0 and whole.exit_code == 0, (short.stderr, whole.stderr)
    assert snapshot(esb_root) == before
    summary = [line for line in short.output.splitlines() if "(the whole diff: --full-diff)" in line]
    assert len(summary) == 1 and "313 lines added and 313 removed" in summary[0], summary
    assert short.output.count(f"+  dest_path: /o/{NEW_APP}/") < 10
    assert whole.output.count(f"/o/{NEW_APP}/apigw/op_") == 300
    assert "--full-diff)" not in whole.output

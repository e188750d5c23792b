"""``esbgen verify SYSTEM``: what serves each channel and where its call goes; ``--live`` through a running ESB.

The live ESB is a small HTTP server on loopback that answers as the ESB's API does
(``{"result": ..., "code": ..., "message": ..., "data": ...}``) and checks the app's credentials.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import FIXTURES, snapshot

CLONE = ("clone", "sops", "--as", "bk_sops_ce")


def define(root: Path, line: str) -> None:
    path = root / "configs/default.py"
    path.write_text(path.read_text() + line + "\n")


def test_an_undefined_host_setting_comes_first_and_fails(esb_root, run_esbgen):
    assert run_esbgen(*CLONE, "--esb-root", esb_root).exit_code == 0
    before = snapshot(esb_root)
    result = run_esbgen("verify", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == "BK_SOPS_CE (bk_sops_ce): 12 channel(s) served; host settings from configs/default.py"
    assert ("  GET /v2/bk_sops_ce/get_template_list/: served by generic.v2.bk_sops_ce.sops_component "
            "(components/bk/apisv2/bk_sops_ce/sops_component.py:SopsComponent); reads BK_SOPS_CE_URL, NOT DEFINED; "
            "a call goes to GET $BK_SOPS_CE_URL/apigw/get_template_list/{bk_biz_id}/") in result.output
    problems = [line for line in lines if line.startswith("problem: ")]
    assert problems[0].startswith("problem: BK_SOPS_CE_URL is not defined in configs/default.py: 12 channel(s) of "
                                  "BK_SOPS_CE read it")
    assert lines[-1] == "1 problem(s) in BK_SOPS_CE."
    assert snapshot(esb_root) == before

    define(esb_root, "BK_SOPS_CE_URL = 'http://sops-ce.service.consul:8080'")
    fixed = run_esbgen("verify", "bk_sops_ce", "--esb-root", esb_root)
    assert fixed.exit_code == 0, fixed.output
    assert "a call goes to GET http://sops-ce.service.consul:8080/apigw/get_template_list/{bk_biz_id}/ " \
           "(BK_SOPS_CE_URL)" in fixed.output
    assert fixed.output.splitlines()[-1].startswith("OK: every channel of BK_SOPS_CE")


def test_a_clone_whose_host_has_its_sources_value_calls_the_source(esb_root, run_esbgen):
    assert run_esbgen(*CLONE, "--esb-root", esb_root).exit_code == 0
    define(esb_root, "BK_SOPS_CE_URL = 'http://paas.service.consul:80'")  # BK_SOPS_URL's value
    result = run_esbgen("verify", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 1
    assert "BK_SOPS_CE_URL = 'http://paas.service.consul:80' in configs/default.py is the value of BK_SOPS_URL, " \
           "the host of its source sops: the clone's calls reach the source's backend" in result.output


def test_a_channel_served_by_another_systems_component(esb_root, run_esbgen):
    assert run_esbgen(*CLONE, "--esb-root", esb_root).exit_code == 0
    define(esb_root, "BK_SOPS_CE_URL = 'http://sops-ce.service.consul:8080'")
    yaml = esb_root / "components/confapis/bk_sops_ce/bk_sops_ce.yaml"
    text = yaml.read_text()
    edited = text.replace("comp_codename: generic.v2.bk_sops_ce.sops_component", "comp_codename: generic.v2.sops.sops_component", 1)
    assert edited != text
    yaml.write_text(edited)
    result = run_esbgen("verify", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 1, result.output
    problems = [line for line in result.output.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 1, result.output
    assert "channel /v2/bk_sops_ce/get_template_list/ is served by generic.v2.sops.sops_component, a component of " \
           "SOPS (components/bk/apisv2/sops/sops_component.py), not of BK_SOPS_CE: the ESB files it under SOPS and " \
           "its calls go to that system's host" in problems[0]
    assert "11 channel(s) served" in result.output


def test_python_declared_channels_route_by_their_comp_conf(tmp_path, run_esbgen):
    root = tmp_path / "esb-later"
    import shutil

    shutil.copytree(FIXTURES / "esb-later", root)
    result = run_esbgen("verify", "umg", "--esb-root", root)
    assert "served by generic.v2.umg.umg_component" in result.output, result.output
    assert "reads USERMGR_HOST" in result.output
    assert "/api/v2/" in result.output  # a comp_conf dest_path, forwarded as it is


class FakeEsb(BaseHTTPRequestHandler):
    calls: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        FakeEsb.calls.append({"path": parts.path, "query": query,
                              "auth": self.headers.get("X-Bkapi-Authorization")})
        if query.get("bk_app_code") != "bk-monitor" or query.get("bk_app_secret") != "s3cret-value":
            body = {"result": False, "code": 1306401, "message": "app authentication failed", "data": None}
        else:
            body = {"result": True, "code": 0, "message": "", "data": [{"id": 1, "name": "a template"}]}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_esb():
    FakeEsb.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEsb)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_live_calls_one_read_only_channel_through_the_esb(esb_root, run_esbgen, fake_esb, monkeypatch):
    assert run_esbgen(*CLONE, "--esb-root", esb_root).exit_code == 0
    define(esb_root, "BK_SOPS_CE_URL = 'http://sops-ce.service.consul:8080'")
    monkeypatch.setenv("MONITOR_SECRET", "s3cret-value")
    result = run_esbgen("verify", "bk_sops_ce", "--esb-root", esb_root, "--live", fake_esb, "--app-code", "bk-monitor",
                        "--app-secret-env", "MONITOR_SECRET", "--param", "bk_biz_id=2")
    assert result.exit_code == 0, result.output + result.stderr
    assert f"Live: GET {fake_esb}/api/c/compapi/v2/bk_sops_ce/get_template_list/ as app bk-monitor with bk_biz_id" \
           in result.output
    assert "Live: HTTP 200; result true, code 0, message ''" in result.output
    assert "s3cret-value" not in result.output + result.stderr
    assert FakeEsb.calls[0]["path"] == "/api/c/compapi/v2/bk_sops_ce/get_template_list/"
    assert FakeEsb.calls[0]["query"]["bk_biz_id"] == "2"
    assert json.loads(FakeEsb.calls[0]["auth"]) == {"bk_app_code": "bk-monitor", "bk_app_secret": "s3cret-value"}

    monkeypatch.setenv("MONITOR_SECRET", "wrong")
    refused = run_esbgen("verify", "bk_sops_ce", "--esb-root", esb_root, "--live", fake_esb, "--app-code",
                         "bk-monitor", "--app-secret-env", "MONITOR_SECRET", "--channel", "get_task_status")
    assert refused.exit_code == 1
    assert "result false, code 1306401, message 'app authentication failed'" in refused.output
    assert FakeEsb.calls[-1]["path"] == "/api/c/compapi/v2/bk_sops_ce/get_task_status/"


def test_live_refuses_without_its_options_or_a_reachable_esb(esb_root, run_esbgen, monkeypatch):
    assert run_esbgen("verify", "sops", "--esb-root", esb_root, "--live", "http://127.0.0.1:9").exit_code == 2
    assert run_esbgen("verify", "sops", "--esb-root", esb_root, "--app-code", "x").exit_code == 2
    monkeypatch.setenv("S", "x")
    down = run_esbgen("verify", "sops", "--esb-root", esb_root, "--live", "http://127.0.0.1:9", "--app-code", "bk-x",
                      "--app-secret-env", "S")
    assert down.exit_code == 1
    assert down.stderr.startswith("esbgen: error: --live: cannot reach http://127.0.0.1:9/api/c/compapi/v2/sops/")


def test_the_clones_closing_notes_point_to_verify(esb_root, run_esbgen):
    result = run_esbgen(*CLONE, "--esb-root", esb_root)
    assert result.exit_code == 0
    assert "`esbgen verify bk_sops_ce` shows where each channel's call goes, and fails while BK_SOPS_CE_URL is " \
           "undefined" in result.output
    new = run_esbgen("new", "bk_demo", "--app-code", "bk-demo", "--esb-root", esb_root)
    assert "`esbgen verify bk_demo` shows where each channel's call goes, and fails while BK_DEMO_URL is " \
           "undefined" in new.output


def test_json_gives_the_channels_and_the_problems_with_the_same_exit_status(esb_root, run_esbgen, fake_esb,
                                                                             monkeypatch):
    assert run_esbgen(*CLONE, "--esb-root", esb_root).exit_code == 0
    result = run_esbgen("verify", "bk_sops_ce", "--esb-root", esb_root, "--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert (data["command"], data["ok"], data["exit_code"], data["changed"], data["error"]) == \
        ("verify", False, 1, False, None)
    assert data["system"] == "bk_sops_ce"
    assert len(data["problems"]) == 1 and data["problems"][0].startswith(
        "BK_SOPS_CE_URL is not defined in configs/default.py: 12 channel(s) of BK_SOPS_CE read it")
    assert data["messages"][-1] == "1 problem(s) in BK_SOPS_CE."
    assert len(data["channels"]) == 12
    channel = next(c for c in data["channels"] if c["path"] == "/v2/bk_sops_ce/get_template_list/")
    assert channel == {"method": "GET", "path": "/v2/bk_sops_ce/get_template_list/",
                       "codename": "generic.v2.bk_sops_ce.sops_component",
                       "module": "components/bk/apisv2/bk_sops_ce/sops_component.py", "class": "SopsComponent",
                       "host_setting": "BK_SOPS_CE_URL", "defined": False,
                       "destination": "GET $BK_SOPS_CE_URL/apigw/get_template_list/{bk_biz_id}/ "
                                      "(BK_SOPS_CE_URL is not defined in configs/default.py)"}

    define(esb_root, "BK_SOPS_CE_URL = 'http://sops-ce.service.consul:8080'")
    fixed = json.loads(run_esbgen("verify", "bk_sops_ce", "--esb-root", esb_root, "--json").output)
    assert (fixed["ok"], fixed["exit_code"], fixed["problems"]) == (True, 0, [])
    assert all(channel["defined"] for channel in fixed["channels"])

    monkeypatch.setenv("MONITOR_SECRET", "wrong")  # a live call the ESB refuses is a problem too
    refused = run_esbgen("verify", "bk_sops_ce", "--esb-root", esb_root, "--json", "--live", fake_esb, "--app-code",
                         "bk-monitor", "--app-secret-env", "MONITOR_SECRET", "--channel", "get_task_status")
    assert refused.exit_code == 1
    assert json.loads(refused.output)["problems"] == [
        "the ESB answered /v2/bk_sops_ce/get_task_status/ with HTTP 200, result false: app authentication failed"]

    missing = run_esbgen("verify", "nope", "--esb-root", esb_root, "--json")
    assert missing.exit_code == 1
    assert json.loads(missing.output)["error"]["class"] == "Refused"

"""`esbgen swap` on nginx trees of its own, run through click, with the real `nginx -t`.

No nginx is running for these trees, so `nginx -s reload` fails here unless
--no-reload is given; tests/test_nginx_live.py covers a running nginx.
"""

from __future__ import annotations

import os
import re
import stat

import pytest

from nginx_harness import HttpBackend, NginxTree, free_port, run_esbgen, one_error_line

PORTS = {"paas": 8001, "appengine": 8000, "esb": 8002, "login": 8003, "agent_test": 4245, "agent_prod": 4246}
PAAS_LINE = b"    server 127.0.0.1:8001 max_fails=1  fail_timeout=30s;  # paas (gunicorn), CE"


@pytest.fixture(scope="module")
def alive():
    server = HttpBackend("new-paas")
    yield server
    server.stop()


@pytest.fixture
def tree(tmp_path):
    return NginxTree(tmp_path / "nginx", PORTS, listen=free_port())


def swap(tree, nginx_bin, *args):
    return run_esbgen(["swap", *args, *tree.options(nginx_bin)])


def test_missing_upstream_is_refused_with_one_line(tree, nginx_bin, alive):
    before = tree.snapshot()
    result = swap(tree, nginx_bin, "web", "--upstream", "OPEN_PAAS_V3", "--to", alive.address)
    assert result.exit_code == 1
    assert "upstream OPEN_PAAS_V3 is not defined" in one_error_line(result)
    assert tree.snapshot() == before


def test_duplicated_upstream_is_refused_with_one_line(tree, nginx_bin, alive):
    (tree.root / "conf.d" / "legacy.conf").write_text("upstream OPEN_PAAS {\n    server 127.0.0.1:7001;\n}\n")
    before = tree.snapshot()
    result = swap(tree, nginx_bin, "web", "paas", "--to", alive.address)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "upstream OPEN_PAAS is defined 2 times" in line and "legacy.conf:1" in line
    assert tree.snapshot() == before


@pytest.mark.parametrize("bad", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "host name:80", "[::1:80", ":80"])
def test_malformed_to_is_a_usage_error(tree, nginx_bin, bad):
    before = tree.snapshot()
    result = swap(tree, nginx_bin, "web", "paas", "--to", bad)
    assert result.exit_code == 2
    assert "Invalid value for '--to'" in result.stderr
    assert tree.snapshot() == before


@pytest.mark.parametrize(
    "args",
    [["web", "nosuch"], ["web"], ["paasagent", "prod"], ["web", "paas", "--upstream", "A B"],
     ["web", "paas", "--check-path", "healthz"]],
    ids=["unknown-name", "no-name-no-upstream", "no-to", "bad-upstream-name", "bad-check-path"],
)
def test_other_command_line_mistakes_are_usage_errors(tree, nginx_bin, alive, args):
    if "--to" not in args and args != ["paasagent", "prod"]:
        args = [*args, "--to", alive.address]
    result = swap(tree, nginx_bin, *args)
    assert result.exit_code == 2, result.output


def test_dry_run_prints_the_diff_and_changes_nothing(tree, nginx_bin, alive):
    before = tree.snapshot()
    result = swap(tree, nginx_bin, "web", "paas", "--to", alive.address, "--dry-run")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "--- a/conf.d/paas.conf\n+++ b/conf.d/paas.conf\n" in out
    assert "\n-" + PAAS_LINE.decode() + "\n" in out
    assert "\n+" + PAAS_LINE.decode().replace("127.0.0.1:8001", alive.address) + "\n" in out
    assert "dry run: nothing written" in out
    steps = out.split("steps, as one change (any failure puts back what was done):\n", 1)[1].splitlines()[:3]
    assert steps[0] == f"  1. write {tree.paas}"
    assert steps[1].startswith("  2. test: ") and steps[1].endswith(f"-c {tree.main} -t")
    assert steps[2].startswith("  3. reload: ") and steps[2].endswith(f"-c {tree.main} -s reload")
    assert tree.snapshot() == before


def test_crlf_file_keeps_every_other_byte(tmp_path, nginx_bin, alive):
    tree = NginxTree(tmp_path / "nginx", PORTS, listen=free_port(), crlf=True)
    os.chmod(tree.paas, 0o640)
    before = tree.snapshot()
    result = swap(tree, nginx_bin, "web", "paas", "--to", alive.address, "--no-reload")
    assert result.exit_code == 0, result.stderr
    after = tree.snapshot()
    assert set(after) == set(before)  # no backup or temp file left behind
    assert after["nginx.conf"] == before["nginx.conf"]
    new_line = PAAS_LINE.replace(b"127.0.0.1:8001", alive.address.encode())
    assert after["conf.d/paas.conf"] == before["conf.d/paas.conf"].replace(PAAS_LINE + b"\r\n", new_line + b"\r\n")
    assert stat.S_IMODE(tree.paas.stat().st_mode) == 0o640
    out = result.stdout
    assert f"upstream OPEN_PAAS in {tree.paas}, line 2" in out
    assert f"servers: 127.0.0.1:8001 -> {alive.address}" in out
    assert "accepts TCP connections" in out and "nginx -t: ok" in out and "--no-reload" in out


def test_several_to_replace_the_server_list(tree, nginx_bin, alive):
    spare = f"127.0.0.1:{free_port()}"
    before = tree.paas.read_bytes()
    result = swap(tree, nginx_bin, "paasagent", "prod", "--to", alive.address, "--to", spare,
                  "--skip-check", "--no-reload")
    assert result.exit_code == 0, result.stderr
    old = b"    server 127.0.0.1:4246 max_fails=1  fail_timeout=30s;\n"
    new = (f"    server {alive.address} max_fails=1  fail_timeout=30s;\n"
           f"    server {spare} max_fails=1  fail_timeout=30s;\n").encode()
    assert tree.paas.read_bytes() == before.replace(old, new)
    assert "check: skipped (--skip-check)" in result.stdout
    assert "(added)" in result.stdout


def test_a_repeated_swap_is_a_no_op(tree, nginx_bin, alive):
    first = swap(tree, nginx_bin, "web", "login", "--to", alive.address, "--no-reload")
    assert first.exit_code == 0, first.stderr
    edited = tree.snapshot()
    # The second run must not even need nginx: nothing to test, nothing to reload.
    again = run_esbgen(["swap", "web", "login", "--to", alive.address,
                        "--nginx-server-root", str(tree.root), "--nginx-ctl", "/nonexistent/nginx"])
    assert again.exit_code == 0, again.stderr
    assert "already points at" in again.stdout and "Nothing to do" in again.stdout
    assert tree.snapshot() == edited


def test_upstream_option_picks_any_upstream(tree, nginx_bin, alive):
    result = swap(tree, nginx_bin, "web", "--upstream", "open_paas_appengine", "--to", alive.address, "--no-reload")
    assert result.exit_code == 0, result.stderr
    assert "swap web upstream open_paas_appengine: upstream OPEN_PAAS_APPENGINE" in result.stdout
    assert f"server {alive.address} max_fails=1  fail_timeout=30s;".encode() in tree.paas.read_bytes()


def test_reload_failure_restores_the_file(tree, nginx_bin, alive):
    before = tree.snapshot()  # no nginx runs for this tree: the reload cannot find its pid file
    result = swap(tree, nginx_bin, "web", "paas", "--to", alive.address)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "nginx -s reload failed" in line and "restored byte for byte" in line and "nginx.pid" in line
    assert tree.snapshot() == before


def test_nginx_t_failure_restores_the_file(tree, nginx_bin, alive):
    (tree.root / "conf.d" / "zz-other.conf").write_text("upstream OTHER {\n    server 127.0.0.1:9 max_fails=many;\n}\n")
    before = tree.snapshot()
    result = swap(tree, nginx_bin, "web", "paas", "--to", alive.address)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "nginx -t rejected" in line and "restored byte for byte" in line and "max_fails=many" in line
    assert tree.snapshot() == before


def test_missing_nginx_binary_is_refused_before_any_write(tree, alive):
    before = tree.snapshot()
    result = run_esbgen(["swap", "web", "paas", "--to", alive.address,
                         "--nginx-server-root", str(tree.root), "--nginx-ctl", "/nonexistent/nginx"])
    assert result.exit_code == 1
    assert "cannot find the nginx binary" in one_error_line(result)
    assert tree.snapshot() == before


def test_a_left_over_backup_stops_the_swap(tree, nginx_bin, alive):
    left = tree.root / "conf.d" / ".paas.conf.esbgen-backup"
    left.write_bytes(b"an interrupted swap's original\n")
    before = tree.snapshot()
    result = swap(tree, nginx_bin, "web", "paas", "--to", alive.address, "--no-reload")
    assert result.exit_code == 1
    assert "interrupted" in one_error_line(result)
    assert tree.snapshot() == before


def test_http_check_refuses_a_backend_answering_5xx(tree, nginx_bin, alive):
    before = tree.snapshot()
    result = swap(tree, nginx_bin, "web", "paas", "--to", alive.address, "--check-path", "/status/502")
    assert result.exit_code == 1
    assert "GET /status/502 answered HTTP 502" in one_error_line(result)
    assert tree.snapshot() == before


def test_a_symlinked_file_is_edited_through_its_link(tmp_path, nginx_bin, alive):
    tree = NginxTree(tmp_path / "nginx", PORTS, listen=free_port())
    available = tree.root / "sites-available"
    available.mkdir()
    real = available / "paas.conf"
    tree.paas.rename(real)
    tree.paas.symlink_to(os.path.relpath(real, tree.paas.parent))
    before = real.read_bytes()
    result = swap(tree, nginx_bin, "web", "paas", "--to", alive.address, "--no-reload")
    assert result.exit_code == 0, result.stderr
    assert tree.paas.is_symlink()
    assert f"written to {real} (the included path leads there through a symlink)" in result.stdout
    assert real.read_bytes() == before.replace(b"127.0.0.1:8001", alive.address.encode())
    assert sorted(p.name for p in available.iterdir()) == ["paas.conf"]


def test_targets_lists_every_target_with_its_upstream():
    result = run_esbgen(["swap", "targets"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:2] == [
        "paasagent prod: upstream PAAS_AGENT_PROD  (paasagent of the production environment (location /o/))",
        "paasagent test: upstream PAAS_AGENT_TEST  (paasagent of the test environment (location /t/))",
    ]
    assert "web paas: upstream OPEN_PAAS" in result.stdout


def test_targets_with_a_server_root_say_where_each_upstream_is_and_its_servers(tree):
    before = tree.snapshot()
    result = run_esbgen(["swap", "targets", "--nginx-server-root", str(tree.root)])
    assert result.exit_code == 0, result.stderr
    paas = next(line for line in result.stdout.splitlines() if line.startswith("web paas:"))
    assert paas.startswith("web paas: upstream OPEN_PAAS")
    assert re.fullmatch(rf".*; {re.escape(str(tree.paas))}:\d+: 127\.0\.0\.1:8001", paas), paas
    assert tree.snapshot() == before
    elsewhere = run_esbgen(["swap", "targets", "--nginx-server-root", str(tree.prefix)])
    assert elsewhere.exit_code == 0
    assert f"web paas: upstream OPEN_PAAS" in elsewhere.stdout and f"nginx main file {tree.prefix / 'nginx.conf'} not found" in elsewhere.stdout


def test_json_says_whether_a_swap_would_change_did_change_or_is_as_asked(tree, nginx_bin, alive):
    import json

    before = tree.snapshot()
    dry = swap(tree, nginx_bin, "web", "login", "--to", alive.address, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert (report["changed"], report["would_change"], report["dry_run"]) == (False, True, True)
    assert any(line.startswith("+++ b/conf.d/paas.conf") for line in report["messages"])
    assert tree.snapshot() == before

    done = json.loads(swap(tree, nginx_bin, "web", "login", "--to", alive.address, "--no-reload", "--json").stdout)
    assert done["changed"] is True and done["ok"] is True
    again = json.loads(swap(tree, nginx_bin, "web", "login", "--to", alive.address, "--no-reload", "--json").stdout)
    assert again["changed"] is False and again["would_change"] is False

    refused = swap(tree, nginx_bin, "web", "--upstream", "NO_SUCH", "--to", alive.address, "--json")
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["error"]["class"] == "Refused"

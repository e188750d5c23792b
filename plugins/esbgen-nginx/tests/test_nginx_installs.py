"""Real installs: OpenResty's layout, consul-template's rendered paas.conf, and configurations with Lua blocks.

OpenResty is the real nginx binary laid out as an OpenResty prefix (``PREFIX/bin/openresty`` a
symlink to it, ``PREFIX/nginx/conf``); the Lua tests load Debian's Lua module (nginx-extras) into
a real nginx and ask it through HTTP.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nginx_harness import HttpBackend, NginxProcess, NginxTree, free_port, run_esbgen, served_by, http_get

PORTS = {"paas": 8001, "appengine": 8000, "esb": 8002, "login": 8003, "agent_test": 8085, "agent_prod": 8086}
LUA_MODULES = ("/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so")


def one_error_line(result) -> str:
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("esbgen: error: ")
    return lines[0]


@pytest.fixture
def backends():
    made = {name: HttpBackend(name) for name in ("paas", "paas_new", "paas_newer")}
    yield made
    for backend in made.values():
        backend.stop()


def routed_tree(prefix: Path, backends) -> NginxTree:
    return NginxTree(prefix, {**PORTS, "paas": backends["paas"].port}, listen=free_port())


# ---------------------------------------------------------------- OpenResty


def test_an_openresty_layout_is_tested_and_reloaded_by_its_own_binary(tmp_path, nginx_bin, backends):
    openresty = tmp_path / "usr/local/openresty"
    (openresty / "bin").mkdir(parents=True)
    (openresty / "bin" / "openresty").symlink_to(nginx_bin)
    tree = routed_tree(openresty / "nginx", backends)
    process = NginxProcess(str(openresty / "bin" / "openresty"), tree)
    try:
        assert served_by(tree.listen) == "paas"
        workers = process.workers()
        result = run_esbgen(["swap", "web", "paas", "--to", backends["paas_new"].address,
                             "--nginx-server-root", str(tree.root)])
        assert result.exit_code == 0, result.stderr
        assert (f"nginx: {openresty / 'bin' / 'openresty'} -p {openresty / 'nginx'} -c {tree.main}"
                in result.stdout)
        assert "nginx -s reload: ok" in result.stdout
        assert not process.wait_workers_replaced(workers) & workers
        assert served_by(tree.listen) == "paas_new"

        # Where a service manager runs it, --reload-command reloads it (here: the binary's own signal, spelled out).
        command = f"{openresty / 'bin' / 'openresty'} -p {openresty / 'nginx'} -c {tree.main} -s reload"
        again = run_esbgen(["swap", "web", "paas", "--to", backends["paas_newer"].address,
                            "--nginx-server-root", str(tree.root), "--reload-command", command])
        assert again.exit_code == 0, again.stderr
        assert f"reload: {command}: ok" in again.stdout
        assert _eventually(lambda: served_by(tree.listen), "paas_newer") == "paas_newer"
    finally:
        process.stop()


def test_a_reload_command_that_fails_puts_the_file_back(tmp_path, nginx_bin, backends):
    tree = routed_tree(tmp_path / "nginx", backends)
    before = tree.snapshot()
    result = run_esbgen(["swap", "web", "paas", "--to", backends["paas_new"].address, *tree.options(nginx_bin),
                         "--reload-command", "false"])
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "false failed, so" in line and "restored byte for byte" in line
    assert tree.snapshot() == before


def _eventually(read, wanted="paas_new", seconds=10.0):
    import time

    deadline = time.monotonic() + seconds
    value = read()
    while value != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


# ---------------------------------------------------------------- consul-template


@pytest.mark.parametrize("how", ["template", "config-hcl", "config-json"])
def test_a_file_consul_template_renders_is_refused_naming_its_template(tmp_path, nginx_bin, backends, how,
                                                                        host_state_dir):
    tree = routed_tree(tmp_path / "nginx", backends)
    consul = tmp_path / "etc" / "consul-template"
    templates = consul / "templates"
    templates.mkdir(parents=True)
    if how == "template":
        named = templates / "paas.conf.tpl"
        named.write_text("upstream OPEN_PAAS {\n{{ range service \"paas\" }}    server {{ .Address }}:{{ .Port }};\n"
                         "{{ end }}}\n")
    elif how == "config-hcl":
        named = templates / "nginx-paas.ctmpl"
        named.write_text("{{ range service \"paas\" }}{{ end }}\n")
        (consul / "consul-template.hcl").write_text(
            'consul {\n  address = "127.0.0.1:8500"\n}\n\n'
            f'template {{\n  source      = "{named}"\n  destination = "{tree.paas}"\n'
            '  command     = "nginx -s reload"\n}\n')
    else:
        named = templates / "nginx-paas.ctmpl"
        named.write_text("{{ range service \"paas\" }}{{ end }}\n")
        (consul / "conf.d").mkdir()
        (consul / "conf.d" / "paas.json").write_text(
            '{"template": [{"source": "%s", "destination": "%s"}]}' % (named, tree.paas))
    before = tree.snapshot()
    result = run_esbgen(["swap", "web", "paas", "--to", backends["paas_new"].address, *tree.options(nginx_bin),
                         "--consul-template-dir", str(templates)])
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"{tree.paas} is rendered by consul-template from {named}" in line
    assert "lost at the next render" in line and "registration in consul" in line
    assert tree.snapshot() == before and not host_state_dir.exists()

    other = run_esbgen(["swap", "web", "paas", "--to", backends["paas_new"].address, *tree.options(nginx_bin),
                        "--consul-template-dir", str(tmp_path / "elsewhere"), "--no-reload"])
    assert other.exit_code == 0, other.stderr  # a file no template renders is edited as usual


# ---------------------------------------------------------------- Lua blocks

LUA_SITE = """
server {
    listen 127.0.0.1:@lua@;
    location /lua {
        default_type text/plain;
        content_by_lua_block {
            local braces = "} { ; }"  -- a comment with a } brace
            ngx.say("lua says " .. braces)
        }
    }
    location /guarded {
        access_by_lua_block { if ngx.var.arg_no then return ngx.exit(403) end }
        proxy_pass http://OPEN_PAAS;
    }
}
"""


def lua_tree(tmp_path: Path, backends, extra: str = "") -> NginxTree:
    for module in LUA_MODULES:
        if not os.path.exists(module):
            pytest.fail(f"{module} is missing: run `bash scripts/ensure-system-packages.sh` (nginx-extras)")
    tree = routed_tree(tmp_path / "nginx", backends)
    loads = "".join(f"load_module {module};\n" for module in LUA_MODULES)
    tree.main.write_bytes(loads.encode() + tree.main.read_bytes())
    tree.lua_port = free_port()
    with tree.paas.open("ab") as handle:
        handle.write((LUA_SITE.replace("@lua@", str(tree.lua_port)) + extra).encode())
    return tree


def test_lua_blocks_pass_through_byte_for_byte_on_a_live_nginx(tmp_path, nginx_bin, backends):
    tree = lua_tree(tmp_path, backends)
    process = NginxProcess(nginx_bin, tree)
    try:
        assert http_get(tree.lua_port, "/lua") == (200, "lua says } { ; }\n")
        before, workers = tree.paas.read_bytes(), process.workers()
        result = run_esbgen(["swap", "web", "paas", "--to", backends["paas_new"].address, *tree.options(nginx_bin)])
        assert result.exit_code == 0, result.stderr
        old, new = backends["paas"].address, backends["paas_new"].address
        assert tree.paas.read_bytes() == before.replace(f"server {old} ".encode(), f"server {new} ".encode())
        assert not process.wait_workers_replaced(workers) & workers  # only the new configuration answers now
        assert served_by(tree.listen) == "paas_new"
        assert http_get(tree.lua_port, "/lua") == (200, "lua says } { ; }\n")
        assert http_get(tree.lua_port, "/guarded?no=1")[0] == 403
        assert served_by(tree.lua_port, "/guarded") == "paas_new"
    finally:
        process.stop()


@pytest.mark.parametrize("lua, reason", [
    ("init_worker_by_lua_block { local t = [[ } upstream OPEN_PAAS { ]] }\n", "long bracket"),
    ('init_worker_by_lua_block { local s = "a \\" }" }\n', "escaped quote"),
    ("exit_worker_by_lua_block { ngx.log(ngx.ERR, '}') }\n", "exit_worker_by_lua_block is a Lua block"),
], ids=["long-bracket", "escaped-quote", "unknown-block"])
def test_lua_the_parser_cannot_follow_is_refused_never_mangled(tmp_path, nginx_bin, backends, lua, reason,
                                                                host_state_dir):
    tree = lua_tree(tmp_path, backends, extra=lua)
    before = tree.snapshot()
    result = run_esbgen(["swap", "web", "paas", "--to", backends["paas_new"].address, *tree.options(nginx_bin)])
    assert result.exit_code == 1
    line = one_error_line(result)
    assert reason in line and "edit the upstream by hand" in line, line
    assert tree.snapshot() == before and not host_state_dir.exists()


def test_without_an_nginx_on_path_the_openresty_binary_on_path_serves(tmp_path, nginx_bin, backends, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "openresty").symlink_to(nginx_bin)
    tree = routed_tree(tmp_path / "nginx", backends)
    monkeypatch.setenv("PATH", str(bindir))
    result = run_esbgen(["swap", "web", "paas", "--to", backends["paas_new"].address, "--no-reload",
                         "--nginx-server-root", str(tree.root), "--nginx-prefix", str(tree.prefix)])
    assert result.exit_code == 0, result.stderr
    assert f"nginx: {bindir / 'openresty'} -p {tree.prefix} -c {tree.main}" in result.stdout
    assert "nginx -t: ok" in result.stdout

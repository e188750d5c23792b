"""Finding an upstream with crossplane and rewriting its server lines byte for byte (no nginx run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esbgen.errors import EsbgenError
from esbgen_nginx.backends import parse_backend
from esbgen_nginx.upstream import find_upstream, plan_edit
from nginx_harness import NginxTree

PORTS = {"paas": 8001, "appengine": 8000, "esb": 8002, "login": 8003, "agent_test": 4245, "agent_prod": 4246}


def tree_with(tmp_path: Path, files: dict[str, str | bytes], main: str | None = None) -> Path:
    """A server root whose nginx.conf includes conf.d/*.conf inside http; returns nginx.conf."""
    root = tmp_path / "nginx"
    (root / "conf.d").mkdir(parents=True)
    (root / "nginx.conf").write_text(main or "events {}\nhttp {\n    include conf.d/*.conf;\n}\n")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root / "nginx.conf"


def swap_bytes(main: Path, upstream: str, *to: str) -> tuple[bytes, bytes]:
    edit = plan_edit(find_upstream(main, upstream), [parse_backend(t) for t in to])
    return edit.before, edit.after


def refusal(main: Path, upstream: str = "OPEN_PAAS") -> str:
    with pytest.raises(EsbgenError) as caught:
        plan_edit(find_upstream(main, upstream), [parse_backend("127.0.0.1:8010")])
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_only_the_address_changes(tmp_path, crlf):
    tree = NginxTree(tmp_path, PORTS, listen=8080, crlf=crlf)
    upstream = find_upstream(tree.main, "OPEN_PAAS")
    assert upstream.file == tree.paas and upstream.lineno == 2
    [server] = upstream.servers
    assert (server.lineno, server.address, server.options) == (4, "127.0.0.1:8001", " max_fails=1  fail_timeout=30s")

    before, after = swap_bytes(tree.main, "OPEN_PAAS", "127.0.0.1:8010")
    eol = b"\r\n" if crlf else b"\n"
    old = b"    server 127.0.0.1:8001 max_fails=1  fail_timeout=30s;  # paas (gunicorn), CE" + eol
    new = b"    server 127.0.0.1:8010 max_fails=1  fail_timeout=30s;  # paas (gunicorn), CE" + eol
    assert before == tree.paas.read_bytes() and before.count(old) == 1
    assert after == before.replace(old, new)  # every other byte, ip_hash and other upstreams included


def test_upstream_names_match_without_case_like_nginx(tmp_path):
    tree = NginxTree(tmp_path, PORTS, listen=8080)
    assert find_upstream(tree.main, "open_paas_login").name == "OPEN_PAAS_LOGIN"


def test_several_new_servers_carry_the_first_servers_options(tmp_path):
    tree = NginxTree(tmp_path, PORTS, listen=8080)
    before, after = swap_bytes(tree.main, "PAAS_AGENT_PROD", "10.0.0.7:4245", "10.0.0.8:4245", "[::1]:4245")
    old = b"    server 127.0.0.1:4246 max_fails=1  fail_timeout=30s;\n    keepalive 8;\n"
    new = (b"    server 10.0.0.7:4245 max_fails=1  fail_timeout=30s;\n"
           b"    server 10.0.0.8:4245 max_fails=1  fail_timeout=30s;\n"
           b"    server [::1]:4245 max_fails=1  fail_timeout=30s;\n"
           b"    keepalive 8;\n")
    assert after == before.replace(old, new)


def test_fewer_new_servers_drop_the_extra_lines_and_keep_other_directives(tmp_path):
    conf = ("upstream OPEN_PAAS {\r\n"
            "\tip_hash;\r\n"
            "\tserver 10.0.0.1:8001 weight=2 max_fails=1  fail_timeout=30s; # node 1\r\n"
            "\tserver 10.0.0.2:8001 max_fails=3; # node 2\r\n"
            "\tkeepalive 16;\r\n"
            "}\r\n")
    main = tree_with(tmp_path, {"conf.d/paas.conf": conf})
    _, one = swap_bytes(main, "OPEN_PAAS", "10.0.0.9:8010")
    assert one == (b"upstream OPEN_PAAS {\r\n\tip_hash;\r\n"
                   b"\tserver 10.0.0.9:8010 weight=2 max_fails=1  fail_timeout=30s; # node 1\r\n"
                   b"\tkeepalive 16;\r\n}\r\n")
    _, two = swap_bytes(main, "OPEN_PAAS", "10.0.0.9:8010", "10.0.0.10:8010")
    assert two == (b"upstream OPEN_PAAS {\r\n\tip_hash;\r\n"
                   b"\tserver 10.0.0.9:8010 weight=2 max_fails=1  fail_timeout=30s; # node 1\r\n"
                   b"\tserver 10.0.0.10:8010 weight=2 max_fails=1  fail_timeout=30s; # node 2\r\n"
                   b"\tkeepalive 16;\r\n}\r\n")


def test_a_non_ascii_comment_and_other_bytes_survive(tmp_path):
    conf = "# 开发者中心\nupstream OPEN_PAAS {\n    server 127.0.0.1:8001 max_fails=1  fail_timeout=30s;  # 旧版 paas\n}\n"
    main = tree_with(tmp_path, {"conf.d/paas.conf": conf})
    before, after = swap_bytes(main, "OPEN_PAAS", "127.0.0.1:8010")
    assert after == before.replace(b"127.0.0.1:8001", b"127.0.0.1:8010")


def test_commented_out_servers_are_left_alone_and_reported(tmp_path):
    tree = NginxTree(tmp_path, PORTS, listen=8080)
    upstream = find_upstream(tree.main, "OPEN_PAAS_ESB")
    assert upstream.commented_servers == [13]
    before, after = swap_bytes(tree.main, "OPEN_PAAS_ESB", "127.0.0.1:8012")
    assert after == before.replace(b"server 127.0.0.1:8002 ", b"server 127.0.0.1:8012 ")
    assert b"    # server 127.0.0.1:8012 max_fails=1  fail_timeout=30s;\n" in after


def test_an_upstream_of_the_stream_context_is_not_the_http_one(tmp_path):
    main = tree_with(
        tmp_path,
        {"conf.d/paas.conf": "upstream OPEN_PAAS {\n    server 127.0.0.1:8001;\n}\n"},
        main=("events {}\nstream {\n    upstream OPEN_PAAS {\n        server 127.0.0.1:9001;\n    }\n}\n"
              "http {\n    include conf.d/*.conf;\n}\n"),
    )
    upstream = find_upstream(main, "OPEN_PAAS")
    assert upstream.file.name == "paas.conf" and upstream.servers[0].address == "127.0.0.1:8001"


def test_an_upstream_in_the_main_file_itself(tmp_path):
    main = tree_with(tmp_path, {}, main=(
        "events {}\nhttp {\n    upstream OPEN_PAAS_LOGIN {\n        server unix:/run/login.sock;\n    }\n"
        "    include conf.d/*.conf;\n}\n"))
    before, after = swap_bytes(main, "OPEN_PAAS_LOGIN", "127.0.0.1:8013")
    assert after == before.replace(b"unix:/run/login.sock", b"127.0.0.1:8013")


def test_missing_upstream(tmp_path):
    tree = NginxTree(tmp_path, PORTS, listen=8080)
    assert "upstream OPEN_PAAS_V3 is not defined in" in refusal(tree.main, "OPEN_PAAS_V3")


def test_missing_main_file(tmp_path):
    with pytest.raises(EsbgenError, match="nginx main file .* not found"):
        find_upstream(tmp_path / "nginx.conf", "OPEN_PAAS")


def test_upstream_defined_in_two_included_files(tmp_path):
    tree = NginxTree(tmp_path, PORTS, listen=8080)
    (tree.root / "conf.d" / "zz-old.conf").write_text("upstream open_paas {\n    server 127.0.0.1:7001;\n}\n")
    message = refusal(tree.main)
    assert "defined 2 times" in message
    assert f"{tree.paas}:2" in message and "zz-old.conf:1" in message


def test_a_file_included_twice_defines_its_upstream_twice(tmp_path):
    main = tree_with(
        tmp_path,
        {"paas.inc": "upstream OPEN_PAAS {\n    server 127.0.0.1:8001;\n}\n"},
        main="events {}\nhttp {\n    include paas.inc;\n    include paas.inc;\n}\n",
    )
    assert "defined 2 times" in refusal(main)


@pytest.mark.parametrize(
    "conf, reason",
    [
        ("upstream OPEN_PAAS { server 127.0.0.1:8001; }\n", "shares its line"),
        ("upstream OPEN_PAAS {\n    server 127.0.0.1:8001; server 127.0.0.1:8002;\n}\n", "shares its line"),
        ("upstream OPEN_PAAS {\n    ip_hash; server 127.0.0.1:8001;\n}\n", "shares its line"),
        ("upstream OPEN_PAAS {\n    server 127.0.0.1:8001\n        max_fails=1;\n}\n", "spans several lines"),
        ("upstream OPEN_PAAS {\n    server 127.0.0.1:8001 # old\n        max_fails=1;\n}\n", "spans several lines"),
        ("upstream OPEN_PAAS {\n    server 127.0.0.1:8001;\n    server 127.0.0.1:8002 backup;\n}\n",
         "marked 'backup'"),
        ("upstream OPEN_PAAS {\n    server 127.0.0.1:8001 down;\n}\n", "marked 'down'"),
        ("upstream OPEN_PAAS {\n    include servers.inc;\n}\n", "includes another file"),
        ('upstream OPEN_PAAS {\n    server "127.0.0.1:8001";\n}\n', "quotes or escapes"),
        ("upstream OPEN_PAAS {\n    ip_hash;\n    # server 127.0.0.1:8001;\n}\n", "no server line"),
        ("upstream OPEN_PAAS {\n    server 127.0.0.1:8001;\n", "cannot read the nginx configuration"),
    ],
    ids=["one-line-upstream", "two-servers-one-line", "ip_hash-same-line", "spanning", "spanning-comment",
         "backup", "down", "include", "quoted", "only-comments", "syntax-error"],
)
def test_unsafe_upstreams_are_refused(tmp_path, conf, reason):
    main = tree_with(tmp_path, {"conf.d/paas.conf": conf, "servers.inc": "server 127.0.0.1:8001;\n"})
    message = refusal(main)
    assert reason in message
    assert message.startswith(("upstream OPEN_PAAS", "cannot read"))

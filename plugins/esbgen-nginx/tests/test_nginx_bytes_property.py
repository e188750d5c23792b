"""Property: whatever the spacing, comments, options and line ends, a swap changes the address only."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")  # part of esbgen's [test] extra
from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from esbgen.errors import EsbgenError  # noqa: E402
from esbgen_nginx.backends import parse_backend  # noqa: E402
from esbgen_nginx.upstream import find_upstream, plan_edit  # noqa: E402

space = st.text(alphabet=" \t", min_size=1, max_size=4)
indent = st.text(alphabet=" \t", max_size=8)
eol = st.sampled_from(["\n", "\r\n"])
option = st.sampled_from(["max_fails=1", "fail_timeout=30s", "weight=5", "max_conns=100", "slow_start=10s"])
comment = st.one_of(
    st.just(""),
    st.builds(lambda pad, text: f"{pad}#{text}", st.text(alphabet=" \t", max_size=3),
              st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=20)),
)
other_line = st.sampled_from(["ip_hash;", "keepalive 16;", "# a note", "least_conn;", "zone paas 64k;", ""])
port = st.integers(min_value=1, max_value=65535)


@st.composite
def upstream_file(draw):
    e = draw(eol)
    old = f"10.0.0.{draw(st.integers(1, 254))}:{draw(port)}"
    opts = "".join(draw(space) + o for o in draw(st.lists(option, max_size=3)))
    server = f"{draw(indent)}server{draw(space)}{old}{opts}{draw(st.sampled_from(['', ' ', chr(9)]))};{draw(comment)}"
    before = [f"{draw(indent)}{line}" if line else "" for line in draw(st.lists(other_line, max_size=3))]
    after = [f"{draw(indent)}{line}" if line else "" for line in draw(st.lists(other_line, max_size=3))]
    lines = [
        "# PaaS upstreams",
        "upstream OPEN_PAAS_LOGIN {",
        "    server 127.0.0.1:8003 max_fails=1  fail_timeout=30s;",
        "}",
        f"upstream{draw(space)}OPEN_PAAS{draw(space)}{{",
        *before,
        server,
        *after,
        "}",
    ]
    text = e.join(lines) + draw(st.sampled_from([e, ""]))
    return text, server, old


BACKSLASH_COMMENT = (
    "upstream OPEN_PAAS {\nserver 10.0.0.1:1;#\\\n}\n",
    "server 10.0.0.1:1;#\\",
    "10.0.0.1:1",
)


@settings(max_examples=150, deadline=None)
@given(upstream_file(), port)
@example(BACKSLASH_COMMENT, 80)
def test_only_the_address_changes(case, new_port):
    text, server, old = case
    new = f"192.168.7.9:{new_port}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "nginx.conf").write_text("events {}\nhttp {\n    include paas.conf;\n}\n")
        (root / "paas.conf").write_bytes(text.encode())
        if server.endswith("\\"):
            # crossplane reads a backslash before a line end as joining the next line, where nginx
            # sees a comment that simply ends: what it parsed is not the file, so no edit is offered
            with pytest.raises(EsbgenError, match="cannot be mapped; edit it by hand"):
                plan_edit(find_upstream(root / "nginx.conf", "OPEN_PAAS"), [parse_backend(new)])
            return
        edit = plan_edit(find_upstream(root / "nginx.conf", "OPEN_PAAS"), [parse_backend(new)])
        expected = text.replace(server, server.replace(old, new, 1), 1)
        assert edit.after == expected.encode()
        (root / "paas.conf").write_bytes(edit.after)
        again = find_upstream(root / "nginx.conf", "OPEN_PAAS")
        assert [s.address for s in again.servers] == [new]
        assert plan_edit(again, [parse_backend(new)]).is_noop

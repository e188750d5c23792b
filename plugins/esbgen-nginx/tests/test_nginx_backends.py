"""--to HOST:PORT parsing and the backend checks, against real sockets on 127.0.0.1."""

from __future__ import annotations

import pytest

from esbgen_nginx.backends import Backend, check_backend, parse_backend
from nginx_harness import HttpBackend, free_port


@pytest.mark.parametrize(
    "text, host, port, address",
    [
        ("127.0.0.1:8010", "127.0.0.1", 8010, "127.0.0.1:8010"),
        ("10.0.0.5:4245", "10.0.0.5", 4245, "10.0.0.5:4245"),
        ("paas-2.bk.example:8001", "paas-2.bk.example", 8001, "paas-2.bk.example:8001"),
        ("localhost:1", "localhost", 1, "localhost:1"),
        ("[::1]:65535", "::1", 65535, "[::1]:65535"),
    ],
)
def test_parse_backend_accepts(text, host, port, address):
    backend = parse_backend(text)
    assert backend == Backend(host, port)
    assert backend.address == address


@pytest.mark.parametrize(
    "text",
    ["", "127.0.0.1", "127.0.0.1:", ":8010", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:80a",
     "127.0.0.1:-1", "999.1.1.1:80", "1.2.3:80", "::1:80", "[::1]80", "[nothost]:80", "a b:80",
     "-bad.example:80", "bad_.example:80", " 127.0.0.1:80", "127.0.0.1:８０", "host..x:80", "x;y:80"],
)
def test_parse_backend_refuses(text):
    with pytest.raises(ValueError):
        parse_backend(text)


@pytest.fixture(scope="module")
def backend():
    server = HttpBackend("checked")
    yield server
    server.stop()


def test_tcp_check_of_a_listening_backend(backend):
    result = check_backend(parse_backend(backend.address), timeout=3)
    assert result.ok and "accepts TCP connections" in result.detail


def test_tcp_check_of_a_dead_backend():
    result = check_backend(parse_backend(f"127.0.0.1:{free_port()}"), timeout=3)
    assert not result.ok and "refused" in result.detail


def test_http_check_wants_a_status_below_500(backend):
    target = parse_backend(backend.address)
    assert check_backend(target, 3, "/healthz").ok
    assert check_backend(target, 3, "/status/404").ok  # the app answers: good enough
    failed = check_backend(target, 3, "/status/503")
    assert not failed.ok and "HTTP 503" in failed.detail

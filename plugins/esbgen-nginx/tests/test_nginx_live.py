"""`esbgen swap` against a running nginx on 127.0.0.1, proxying to real HTTP backends."""

from __future__ import annotations

import threading
import time

import pytest

from nginx_harness import LiveSite, free_port, http_get

ORIGINAL = {"/": "paas", "/login/": "login", "/api/c/compapi/": "esb", "/v1/apps/": "appengine",
            "/t/demo/": "agent_test", "/o/demo/": "agent_prod"}


@pytest.fixture(scope="module")
def live(tmp_path_factory, nginx_bin):
    with LiveSite(tmp_path_factory.mktemp("live-nginx"), nginx_bin,
                        spares={"paas_new": "127.0.0.1", "agent_prod_new": "127.0.0.1"}, probes=list(ORIGINAL)) as site:
        yield site


@pytest.fixture
def site(live):
    assert live.nginx.process.poll() is None, live.nginx.error_log()
    assert live.routes() == ORIGINAL
    yield live
    live.restore()


def test_swap_moves_the_traffic_to_the_new_backend(site):
    new = site.backends["paas_new"]
    result = site.swap("web", "paas", "--to", new.address)
    assert result.exit_code == 0, result.stderr
    old = site.backends["paas"].address
    out = result.stdout
    assert f"upstream OPEN_PAAS in {site.tree.paas}, line 2" in out
    assert f"  line 4: server {old} max_fails=1  fail_timeout=30s;" in out
    assert f"-> server {new.address} max_fails=1  fail_timeout=30s;" in out
    assert f"servers: {old} -> {new.address}" in out
    assert f"check: {new.address}: accepts TCP connections" in out
    assert "nginx -t: ok" in out and "nginx -s reload: ok" in out

    assert site.routes() == {**ORIGINAL, "/": "paas_new"}
    assert set(site.tree.snapshot()) == set(site.pristine)  # nothing left behind


def test_paasagent_swap_moves_only_its_location(site):
    new = site.backends["agent_prod_new"]
    result = site.swap("paasagent", "prod", "--to", new.address, "--check-path", "/healthz")
    assert result.exit_code == 0, result.stderr
    assert "GET /healthz answered HTTP 200" in result.stdout
    assert site.routes() == {**ORIGINAL, "/o/demo/": "agent_prod_new"}
    after = site.tree.paas.read_bytes()
    old = site.backends["agent_prod"].address
    assert after == site.pristine["conf.d/paas.conf"].replace(
        f"server {old} max_fails".encode(), f"server {new.address} max_fails".encode())


def test_no_request_fails_while_the_swap_happens(site):
    """A few client threads keep asking nginx through the swap; every answer must be a 200."""
    stop = threading.Event()
    lock = threading.Lock()
    seen: list[str] = []
    failures: list[str] = []
    deadline = time.monotonic() + 20  # bound in time, whatever happens
    per_thread_cap = 1500  # and in count

    def client() -> None:
        for _ in range(per_thread_cap):
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                status, body = http_get(site.port, "/")
                outcome = body.split()[0] if status == 200 else f"HTTP {status}: {body[:80]!r}"
            except OSError as error:
                status, outcome = 0, f"{type(error).__name__}: {error}"
            with lock:
                (seen if status == 200 else failures).append(outcome)

    def wait_for(count: int) -> None:
        while time.monotonic() < deadline and not stop.is_set():
            with lock:
                if len(seen) + len(failures) >= count:
                    return
            time.sleep(0.01)

    threads = [threading.Thread(target=client, name=f"client-{i}", daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(50)
        with lock:
            before_swap = len(seen) + len(failures)
        result = site.swap("web", "paas", "--to", site.backends["paas_new"].address)  # old workers gone
        with lock:
            after_swap = len(seen) + len(failures)
        wait_for(after_swap + 200)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert result.exit_code == 0, result.stderr
    assert failures == []
    assert 50 <= before_swap <= after_swap < len(seen)  # requests ran before, during and after
    assert set(seen[:before_swap]) == {"backend=paas"}
    # Once nginx's old workers are gone, every answer comes from the new backend (a request
    # or two per client thread may have been answered just before and appended just after).
    assert set(seen[after_swap + len(threads):]) == {"backend=paas_new"}


def test_a_dead_backend_is_refused_and_nothing_moves(site):
    dead = f"127.0.0.1:{free_port()}"
    result = site.swap("web", "paas", "--to", dead)
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("esbgen: error: refusing to swap web paas: new backend")
    assert dead in line and "refused the connection" in line
    assert site.tree.snapshot() == site.pristine
    assert site.routes() == ORIGINAL


def test_a_configuration_nginx_rejects_is_put_back_and_nothing_moves(site):
    broken = site.tree.root / "conf.d" / "zz-broken.conf"
    broken.write_text("upstream LEGACY {\n    server 127.0.0.1:9 max_fails=banana;\n}\n")
    before = site.tree.snapshot()
    result = site.swap("web", "paas", "--to", site.backends["paas_new"].address)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "nginx -t rejected the edited configuration" in line
    assert 'invalid parameter "max_fails=banana"' in line and "zz-broken.conf:2" in line
    assert site.tree.snapshot() == before  # paas.conf byte for byte, no backup left
    assert site.routes() == ORIGINAL


def test_the_same_swap_twice_is_a_no_op_the_second_time(site):
    new = site.backends["paas_new"].address
    assert site.swap("web", "paas", "--to", new).exit_code == 0
    edited = site.tree.snapshot()
    again = site.swap("web", "paas", "--to", new)
    assert again.exit_code == 0
    assert "already points at" in again.stdout and "nginx not reloaded" in again.stdout
    assert site.tree.snapshot() == edited
    assert site.routes() == {**ORIGINAL, "/": "paas_new"}

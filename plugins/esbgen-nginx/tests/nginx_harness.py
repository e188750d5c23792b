"""Real parts for the esbgen-nginx tests: HTTP backends, a PaaS-like nginx tree, an nginx process.

Everything listens on loopback only (127.0.0.1, and 127.0.0.2... for "other machines"),
on ports the kernel hands out.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click
from click.testing import CliRunner

from esbgen.errors import EsbgenError

LOOPBACK = "127.0.0.1"
UPSTREAMS = {
    "OPEN_PAAS": "paas",
    "OPEN_PAAS_APPENGINE": "appengine",
    "OPEN_PAAS_ESB": "esb",
    "OPEN_PAAS_LOGIN": "login",
    "PAAS_AGENT_TEST": "agent_test",
    "PAAS_AGENT_PROD": "agent_prod",
}
# What the test site routes where: path prefix -> upstream.
ROUTES = {"/": "OPEN_PAAS", "/login/": "OPEN_PAAS_LOGIN", "/api/": "OPEN_PAAS_ESB",
          "/v1/": "OPEN_PAAS_APPENGINE", "/t/": "PAAS_AGENT_TEST", "/o/": "PAAS_AGENT_PROD"}


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def free_port() -> int:
    """A port nothing listens on right now (also what a dead backend looks like)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = f"backend={self.server.backend_name} path={self.path}\n".encode()
        status = 200
        if self.path.startswith("/status/"):  # /status/503 answers 503
            status = int(self.path.split("/")[2])
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # keep the test output clean
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class HttpBackend:
    """A small HTTP server in a thread whose every answer names it: ``backend=<name>``."""

    def __init__(self, name: str, host: str = LOOPBACK):
        self.name = name
        self.host = host
        self.server = _Server((host, 0), _Handler)
        self.server.backend_name = name
        self.port = self.server.server_address[1]
        self.address = f"{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"backend-{name}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


NGINX_CONF = """\
# esbgen-nginx test nginx: loopback only, every path under its own prefix.
daemon off;
master_process on;
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log warn;

events {
    worker_connections 512;
}

http {
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;

    include conf.d/*.conf;
}
"""

PAAS_CONF = """\
# BlueKing PaaS behind nginx (test copy: ports point at the test's own backends).
upstream OPEN_PAAS {
    ip_hash;
    server 127.0.0.1:@paas@ max_fails=1  fail_timeout=30s;  # paas (gunicorn), CE
}

upstream OPEN_PAAS_APPENGINE {
    server 127.0.0.1:@appengine@ max_fails=1  fail_timeout=30s;
}

upstream OPEN_PAAS_ESB {
    server 127.0.0.1:@esb@ max_fails=1  fail_timeout=30s;
    # server 127.0.0.1:8012 max_fails=1  fail_timeout=30s;
}

upstream OPEN_PAAS_LOGIN {
    server 127.0.0.1:@login@ max_fails=1  fail_timeout=30s;
}

upstream PAAS_AGENT_TEST {
    server 127.0.0.1:@agent_test@ max_fails=1  fail_timeout=30s;
}

upstream PAAS_AGENT_PROD {
    server 127.0.0.1:@agent_prod@ max_fails=1  fail_timeout=30s;
    keepalive 8;
}

server {
    listen 127.0.0.1:@listen@;
    server_name paas.bk.test;

    proxy_set_header Host $http_host;
    proxy_connect_timeout 2s;
    proxy_next_upstream off;

    location / {
        proxy_pass http://OPEN_PAAS;
    }
    location ^~ /login/ {
        proxy_pass http://OPEN_PAAS_LOGIN;
    }
    location ^~ /api/ {
        proxy_pass http://OPEN_PAAS_ESB;
    }
    location ^~ /v1/ {
        proxy_pass http://OPEN_PAAS_APPENGINE;
    }
    location ^~ /t/ {
        proxy_pass http://PAAS_AGENT_TEST;
    }
    location ^~ /o/ {
        proxy_pass http://PAAS_AGENT_PROD;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
}
"""


class NginxTree:
    """``PREFIX/conf/nginx.conf`` including ``conf.d/*.conf``; logs and temp files under PREFIX."""

    def __init__(self, prefix: Path, ports: dict[str, int], listen: int, crlf: bool = False):
        self.prefix = Path(prefix)
        self.root = self.prefix / "conf"
        self.main = self.root / "nginx.conf"
        self.paas = self.root / "conf.d" / "paas.conf"
        self.listen = listen
        (self.root / "conf.d").mkdir(parents=True, exist_ok=True)
        (self.prefix / "logs").mkdir(exist_ok=True)
        (self.prefix / "tmp").mkdir(exist_ok=True)
        text = PAAS_CONF.replace("@listen@", str(listen))
        for key, port in ports.items():
            text = text.replace(f"@{key}@", str(port))
        assert "@" not in text
        data = text.encode()
        if crlf:
            data = data.replace(b"\n", b"\r\n")
        self.main.write_bytes(NGINX_CONF.encode())
        self.paas.write_bytes(data)

    def snapshot(self) -> dict[str, bytes]:
        """Every file of the configuration directory, by relative path, as bytes."""
        return {str(p.relative_to(self.root)): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}

    def options(self, ctl: str) -> list[str]:
        return ["--nginx-server-root", str(self.root), "--nginx-prefix", str(self.prefix), "--nginx-ctl", ctl]


class NginxProcess:
    """A real nginx master (``daemon off``) run as our child, so it always goes away."""

    def __init__(self, binary: str, tree: NginxTree):
        self.binary, self.tree = binary, tree
        self.argv = [binary, "-p", str(tree.prefix), "-c", str(tree.main)]
        self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited at start: {self.process.stderr.read().decode()} {self.error_log()}")
            try:
                with socket.create_connection((LOOPBACK, tree.listen), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"nginx did not listen on {tree.listen}: {self.error_log()}")
                time.sleep(0.05)

    def error_log(self) -> str:
        log = self.tree.prefix / "logs" / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def workers(self) -> set[int]:
        """Process ids of the master's children (its workers), read from /proc."""
        children = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == str(self.process.pid):
                children.add(int(stat.parent.name))
        return children

    def wait_workers_replaced(self, old: set[int], seconds: float = 10.0) -> set[int]:
        """After a reload nginx briefly runs old and new workers side by side; wait (bounded)
        until every worker of ``old`` has exited, so only the new configuration answers."""
        deadline = time.monotonic() + seconds
        now = self.workers()
        while (now & old or not now) and time.monotonic() < deadline:
            time.sleep(0.02)
            now = self.workers()
        return now

    def reload(self) -> None:
        old = self.workers()
        subprocess.run(self.argv + ["-s", "reload"], check=True, capture_output=True, timeout=30)
        self.wait_workers_replaced(old)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful, like `nginx -s quit`
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stderr:
            self.process.stderr.close()


class LiveSite:
    """A running nginx over the PaaS tree, one HttpBackend per upstream plus ``spares`` (name -> host).

    ``probes`` are the paths :meth:`routes` asks through nginx.
    """

    def __init__(self, prefix: Path, nginx_bin: str, spares: dict[str, str], probes: list[str]):
        self.probes = list(probes)
        self.backends = {name: HttpBackend(name) for name in UPSTREAMS.values()}
        try:
            self.backends.update({name: HttpBackend(name, host) for name, host in spares.items()})
            ports = {key: self.backends[key].port for key in UPSTREAMS.values()}
            self.tree = NginxTree(prefix, ports, listen=free_port())
            self.nginx = NginxProcess(nginx_bin, self.tree)
        except BaseException:
            self.close_backends()
            raise
        self.bin = nginx_bin
        self.port = self.tree.listen
        self.pristine = self.tree.snapshot()

    def swap(self, *args):
        """Run the command; when it reloads nginx, wait until the old workers are gone."""
        old = self.nginx.workers()
        result = run_esbgen(["swap", *args, *self.tree.options(self.bin)])
        if "nginx -s reload: ok" in result.stdout:
            assert not self.nginx.wait_workers_replaced(old) & old, "nginx kept its old workers"
        return result

    def routes(self) -> dict[str, str | None]:
        return {path: served_by(self.port, path) for path in self.probes}

    def restore(self) -> None:
        """Put the configuration back as it started, and nginx with it."""
        now = self.tree.snapshot()
        if now == self.pristine:
            return
        for name in set(now) - set(self.pristine):
            (self.tree.root / name).unlink()
        for name, data in self.pristine.items():
            if now.get(name) != data:
                (self.tree.root / name).write_bytes(data)
        self.nginx.reload()

    def close_backends(self) -> None:
        for backend in self.backends.values():
            backend.stop()

    def close(self) -> None:
        try:
            self.nginx.stop()
        finally:
            self.close_backends()

    def __enter__(self) -> "LiveSite":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def http_get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    """One request on a fresh connection through nginx."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": "paas.bk.test", "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def served_by(port: int, path: str = "/") -> str | None:
    """Name of the backend that answered ``path`` through nginx, or None."""
    try:
        status, body = http_get(port, path)
    except OSError:
        return None
    if status != 200 or not body.startswith("backend="):
        return None
    return body.split()[0].split("=", 1)[1]


class _CoreLikeRoot(click.Group):
    """The root group as the core CLI promises it: EsbgenError -> ``esbgen: error: <msg>``, exit 1/2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EsbgenError as error:
            click.echo(f"esbgen: error: {error}", err=True)
            ctx.exit(error.exit_code)


def root_group() -> click.Group:
    from esbgen_nginx import plugin

    root = _CoreLikeRoot(name="esbgen")
    plugin.esbgen_register_commands(cli=root)
    return root


def make_runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # click 8.1
    except TypeError:
        return CliRunner()  # click >= 8.2 keeps stderr apart already


def run_esbgen(args: list[str], root: click.Group | None = None):
    result = make_runner().invoke(root or root_group(), args, catch_exceptions=False)
    return result


def one_error_line(result) -> str:
    """The refusal of a CLI run: nothing on stdout, one ``esbgen: error:`` line on stderr."""
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("esbgen: error: ")
    return lines[0]

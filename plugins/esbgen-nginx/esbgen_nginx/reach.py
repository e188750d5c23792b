"""The service as users reach it: through nginx's own listen address, on the location that proxies to the upstream.

Before a swap, :func:`find_route` reads nginx's configuration with crossplane for the ``location`` whose
``proxy_pass`` names the upstream, and the ``listen`` and ``server_name`` of its ``server``; :func:`ask`
requests that path there. After the reload, the nginx step waits until nginx's old workers have stopped
taking connections (:func:`wait_for_new_workers`: their title says ``is shutting down``, or they are gone),
asks again, and the swap is rolled back when the service got worse (:func:`verdict`).

A failing answer is no answer at all (refused, reset, closed, a timeout) or a status of 500 and above;
with ``--expect-status`` the answer after must be that status.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from esbgen_nginx.nginxctl import Nginx

TURNOVER_SECONDS = 10.0  # how long the old workers of a reload get to stop taking connections
USER_AGENT = "esbgen swap (through nginx)"


@dataclass(frozen=True)
class Route:
    """Where the service is asked: ``http://HOST:PORT/PATH`` with ``Host: NAME``, and the location it is."""

    scheme: str
    address: str  # what to connect to: "127.0.0.1", "::1"
    port: int
    host_header: str
    path: str
    location: str  # "location ^~ /o/ (/etc/nginx/conf.d/paas.conf:52)", or how the path was given

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Route":
        return cls(**record)


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer
    detail: str  # "HTTP 200 (3 ms)", "no answer: refused the connection"

    @property
    def failing(self) -> bool:
        return self.status is None or self.status >= 500

    def __str__(self) -> str:
        return self.detail

    def to_record(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Answer":
        return cls(record.get("status"), record["detail"])


def find_route(main_conf: Path, upstream: str, path: str | None) -> Route | None:
    """The first prefix or exact location that proxies to ``upstream``, else the first regex one, with its path
    (or ``path``) and its server's address; None when no location does."""
    import crossplane

    payload = crossplane.parse(str(main_conf), comments=False, catch_errors=True, check_ctx=False, check_args=False)
    configs = payload["config"]
    wanted = upstream.lower()

    def flatten(block: list[dict], file: str) -> list[tuple[str, dict]]:
        """The block's directives, with the ones of the files it includes in their place."""
        out = []
        for stmt in block:
            if stmt["directive"] != "include":
                out.append((file, stmt))
            for index in stmt.get("includes", ()):
                out.extend(flatten(configs[index]["parsed"], configs[index]["file"]))
        return out

    def locations(block: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        """The locations (nested ones too) whose own proxy_pass names the upstream."""
        found = []
        for file, stmt in block:
            if stmt["directive"] not in ("location", "if"):
                continue
            inner = flatten(stmt.get("block", []), file)
            if stmt["directive"] == "location" and any(
                    child["directive"] == "proxy_pass" and _proxied_upstream(child["args"]) == wanted
                    for _, child in inner):
                found.append((file, stmt))
            found.extend(locations(inner))
        return found

    candidates = []  # (regex, server's directives, file, location, its path)
    top = flatten(configs[0]["parsed"], configs[0]["file"]) if configs else []
    for http_file, http in [(f, s) for f, s in top if s["directive"] == "http"]:
        for file, server in flatten(http.get("block", []), http_file):
            if server["directive"] != "server":
                continue
            body = flatten(server.get("block", []), file)
            for where, location in locations(body):
                prefix = _location_path(location["args"])
                if prefix is not None or path is not None:
                    candidates.append((location["args"][0] in ("~", "~*"), body, where, location, prefix))
    if not candidates:
        return None
    # a prefix or exact location serves its path as written; a regex one only a path derived from it
    _, body, where, location, prefix = min(candidates, key=lambda candidate: candidate[0])
    scheme, address, port = _listen(body)
    shown = f"location {' '.join(location['args'])} ({where}:{location['line']})"
    return Route(scheme, address, port, _host_header(body, address, port), path or prefix,
                 shown if path is None else f"{path} (--nginx-check-path), served by {shown}")


_PROXY_PASS = re.compile(r"^https?://([^/:$]+)(?:/.*)?$", re.IGNORECASE)


def _proxied_upstream(args: list[str]) -> str | None:
    """The upstream (lower case) of ``proxy_pass http://NAME[/URI]``; None for an address or a variable."""
    match = _PROXY_PASS.match(args[0]) if args else None
    return match.group(1).lower() if match else None


_REGEX_LITERAL = re.compile(r"\^(/[^\\.*+?()\[\]{}|^$]*)")


def _location_path(args: list[str]) -> str | None:
    """The path a location serves: a prefix or exact one's own, an anchored regex's literal start (``~ ^/o/``
    and ``~ ^/api/(.*)`` give /o/ and /api/, as BlueKing's paas.conf writes its locations); None for a named
    location or a regex that starts with no literal path."""
    if len(args) == 1 and args[0].startswith("/"):
        return args[0]
    if len(args) == 2 and args[0] in ("^~", "=") and args[1].startswith("/"):
        return args[1]
    if len(args) == 2 and args[0] in ("~", "~*"):
        match = _REGEX_LITERAL.match(args[1])
        if match and len(match.group(1)) > 1:
            return match.group(1)
    return None


def _listen(body: list[tuple[str, dict]]) -> tuple[str, str, int]:
    """(scheme, address, port) of the server's first plain-HTTP listen (nginx's default: *:80)."""
    listens = [stmt["args"] for _, stmt in body if stmt["directive"] == "listen" and stmt["args"]]
    listens = [args for args in listens if not args[0].startswith("unix:")]
    if not listens:
        return "http", "127.0.0.1", 80
    plain = [args for args in listens if "ssl" not in args[1:]]
    args = (plain or listens)[0]
    scheme = "http" if plain else "https"
    text = args[0]
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.lstrip(":") or "80"
        return scheme, "::1" if host == "::" else host, int(port)
    if text.isdigit():
        return scheme, "127.0.0.1", int(text)
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "80")
    return scheme, "127.0.0.1" if host in ("*", "0.0.0.0", "") else host, int(port)


def _host_header(body: list[tuple[str, dict]], address: str, port: int) -> str:
    for _, stmt in body:
        if stmt["directive"] == "server_name":
            for name in stmt["args"]:
                if name and name != "_" and not name.startswith(("~", "*", ".")) and "*" not in name:
                    return name
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{port}"


def ask(route: Route, timeout: float) -> Answer:
    """One GET of the route, on a fresh connection."""
    import http.client
    import socket
    import ssl

    started = time.monotonic()
    if route.scheme == "https":  # nginx's own address, not the name its certificate is for
        connection = http.client.HTTPSConnection(route.address, route.port, timeout=timeout,
                                                 context=ssl._create_unverified_context())
    else:
        connection = http.client.HTTPConnection(route.address, route.port, timeout=timeout)
    try:
        connection.request("GET", route.path, headers={"Host": route.host_header, "User-Agent": USER_AGENT,
                                                       "Connection": "close"})
        response = connection.getresponse()
        response.read(65536)
        status = response.status
    except (socket.timeout, TimeoutError):
        return Answer(None, f"no answer within {timeout:g} s")
    except ConnectionRefusedError:
        return Answer(None, "no answer: nginx refused the connection")
    except (OSError, http.client.HTTPException) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        return Answer(None, f"no answer ({reason})")
    finally:
        connection.close()
    took = (time.monotonic() - started) * 1000
    return Answer(status, f"HTTP {status} ({took:.0f} ms)")


def verdict(before: Answer, after: Answer, expect: int | None) -> str | None:
    """Why the service got worse, or None when it did not."""
    if expect is not None and after.status != expect:
        return f"expected HTTP {expect} (--expect-status)"
    if after.failing and not before.failing:
        return "the service answered before the swap and fails after it"
    return None


# ---------------------------------------------------------------- nginx's master and its workers


def master_pid_file(nginx: Nginx) -> Path | None:
    """The ``pid`` file of the main configuration (relative to the prefix), else nginx's built-in one."""
    import crossplane

    payload = crossplane.parse(str(nginx.main_conf), single=True, catch_errors=True, check_ctx=False,
                               check_args=False)
    configured = next((stmt["args"][0] for config in payload["config"][:1] for stmt in config["parsed"]
                       if stmt["directive"] == "pid" and stmt["args"]), None)
    built_in = _built_in(nginx)
    if configured is None:
        configured = built_in.get("pid-path")
    if not configured:
        return None
    path = Path(configured)
    if not path.is_absolute():
        prefix = nginx.prefix or (Path(built_in["prefix"]) if built_in.get("prefix") else None)
        if prefix is None:
            return None
        path = prefix / path
    return path


def _built_in(nginx: Nginx) -> dict[str, str]:
    try:
        done = subprocess.run([nginx.ctl, "-V"], capture_output=True, text=True, errors="replace", timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(re.findall(r"--(prefix|pid-path)=(\S+)", done.stderr + done.stdout))


def master_pid(pid_file: str | None) -> int | None:
    if not pid_file:
        return None
    try:
        text = Path(pid_file).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and Path(f"/proc/{text}").exists() else None


def workers(master: int) -> dict[int, str]:
    """The master's children and their titles (``nginx: worker process``, ``... is shutting down``)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] != str(master):
                continue
            title = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        found[int(stat.parent.name)] = title
    return found


def serving(master: int) -> set[int]:
    """Workers that take new connections: not the ones a reload told to finish."""
    return {pid for pid, title in workers(master).items() if "shutting down" not in title}


def wait_for_new_workers(master: int | None, old: set[int], seconds: float | None = None) -> tuple[bool, str]:
    """Wait (bounded) until none of ``old`` takes connections any more: whether they stopped, and how it went.

    A worker stops taking connections as soon as it handles the reload's signal, however long the requests
    it holds; old workers still taking them after ``seconds`` mean the master did not load the new
    configuration."""
    if master is None:
        time.sleep(1.0)
        return True, "asked 1 s after the reload (nginx's master not found from its pid file)"
    seconds = TURNOVER_SECONDS if seconds is None else seconds
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        now = serving(master)
        if now and not now & old:
            return True, f"asked once nginx's new workers took over ({(time.monotonic() - started) * 1000:.0f} ms)"
        time.sleep(0.02)
    return False, f"nginx's old workers still took connections {seconds:g} s after the reload"


def wait_for_old_workers_to_finish(master: int | None, seconds: float) -> bool:
    """Wait (bounded) until workers a reload told to finish have finished their requests and exited."""
    if master is None:
        return True
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all("shutting down" not in title for title in workers(master).values()):
            return True
        time.sleep(0.05)
    return False

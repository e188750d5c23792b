"""The ``--to HOST:PORT`` values: parsing them and checking that they answer."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from esbgen.esb.rules import host_problem, port_problem


@dataclass(frozen=True)
class Backend:
    """One new upstream server, as written in nginx (``10.0.0.5:8010``, ``[::1]:8010``)."""

    host: str  # without brackets: "10.0.0.5", "::1", "paas-2.example"
    port: int

    @property
    def address(self) -> str:
        """The text nginx gets after ``server``."""
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.address


def parse_backend(text: str) -> Backend:
    """``HOST:PORT`` -> Backend; ValueError with the reason when it is not one."""
    raw = text.strip()
    if raw != text or not raw:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if raw.startswith("["):
        close = raw.find("]")
        if close < 0 or raw[close + 1 : close + 2] != ":":
            raise ValueError(f"{text!r} is not [IPV6]:PORT")
        host, port_text = raw[1:close], raw[close + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in {text!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = raw.rpartition(":")
        if not sep:
            raise ValueError(f"{text!r} has no port: write HOST:PORT")
        if ":" in host:
            raise ValueError(f"{text!r}: write an IPv6 address as [ADDRESS]:PORT")
        _check_host(host, text)
    if port_problem(port_text) is not None:
        raise ValueError(f"the port of {text!r} is not a number from 1 to 65535")
    return Backend(host=host, port=int(port_text))


def _check_host(host: str, text: str) -> None:
    if not host:
        raise ValueError(f"{text!r} has no host")
    problem = host_problem(host)
    if problem is not None:
        raise ValueError(f"{host!r} in {text!r} {problem}")


@dataclass(frozen=True)
class CheckResult:
    backend: Backend
    ok: bool
    detail: str  # "accepts TCP connections (3 ms)", "refused the connection", ...

    def __str__(self) -> str:
        return f"{self.backend}: {self.detail}"


def check_backend(backend: Backend, timeout: float, path: str | None = None) -> CheckResult:
    """TCP connect, or an HTTP GET of ``path`` that must answer with a status below 500."""
    import http.client  # here: the command line is built on every esbgen run, a check is rare
    import socket

    started = time.monotonic()
    if path is None:
        try:
            with socket.create_connection((backend.host, backend.port), timeout=timeout):
                pass
        except OSError as error:
            return CheckResult(backend, False, _describe(error, timeout))
        took = (time.monotonic() - started) * 1000
        return CheckResult(backend, True, f"accepts TCP connections ({took:.0f} ms)")
    connection = http.client.HTTPConnection(backend.host, backend.port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": "esbgen-nginx health check"})
        response = connection.getresponse()
        response.read(65536)
        status = response.status
    except (OSError, http.client.HTTPException) as error:
        return CheckResult(backend, False, f"GET {path}: {_describe(error, timeout)}")
    finally:
        connection.close()
    took = (time.monotonic() - started) * 1000
    if status >= 500:
        return CheckResult(backend, False, f"GET {path} answered HTTP {status}")
    return CheckResult(backend, True, f"GET {path} answered HTTP {status} ({took:.0f} ms)")


def _describe(error: BaseException, timeout: float) -> str:
    import http.client
    import socket

    if isinstance(error, ConnectionRefusedError):
        return "refused the connection (nothing listens there)"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"did not answer within {timeout:g} s"
    if isinstance(error, socket.gaierror):
        return f"host name does not resolve ({error.strerror or error})"
    if isinstance(error, http.client.HTTPException):
        return f"no valid HTTP answer ({type(error).__name__}: {error})"
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return f"cannot connect ({text})"

"""One swap from start to end: plan, check, write, ``nginx -t``, reload, or put it all back.

Backup policy: before the edited file is written, its exact bytes are saved
beside it as ``.<name>.esbgen-backup`` (created exclusively, so it doubles as
a lock against a second swap of the same file).  The leading dot keeps it out
of ``include conf.d/*`` and ``*.conf`` globs, for nginx and crossplane alike.
After success, and after a failed swap has been put back, it is removed:
nothing is left behind.  It survives only if esbgen itself is killed mid-way;
then it is the original file, and the next swap refuses until the operator
has looked at it.  The summary prints the old servers, so swapping back is
one command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from esbgen.errors import EsbgenError
from esbgen.fsutil import atomic_write_bytes, fsync_dir, unified_diff

from esbgen_nginx.backends import Backend, CheckResult, check_backend
from esbgen_nginx.nginxctl import Nginx
from esbgen_nginx.upstream import Edit, find_upstream, plan_edit, real_path

BACKUP_SUFFIX = ".esbgen-backup"


@dataclass
class SwapRequest:
    label: str  # "web paas", "upstream MY_UPSTREAM": how the summary names the service
    upstream: str
    backends: list[Backend]
    server_root: Path = Path("/etc/nginx")
    nginx_ctl: str = "nginx"
    nginx_prefix: Path | None = None
    dry_run: bool = False
    skip_check: bool = False
    reload: bool = True
    check_path: str | None = None
    connect_timeout: float = 3.0

    @property
    def main_conf(self) -> Path:
        return Path(os.path.abspath(self.server_root)) / "nginx.conf"


@dataclass
class SwapReport:
    lines: list[str] = field(default_factory=list)
    changed: bool = False

    def add(self, line: str) -> None:
        self.lines.append(line)


def backup_path(target: Path) -> Path:
    return target.with_name(f".{target.name}{BACKUP_SUFFIX}")


def swap(request: SwapRequest) -> SwapReport:
    """Carry out ``request``; raise EsbgenError (one line) on any refusal or failure."""
    if len(set(request.backends)) != len(request.backends):
        raise EsbgenError("the same backend is given twice in --to")
    upstream = find_upstream(request.main_conf, request.upstream)
    edit = plan_edit(upstream, request.backends)
    report = SwapReport()
    where = f"upstream {upstream.name} in {upstream.file}, line {upstream.lineno}"

    if edit.is_noop:
        report.add(
            f"swap {request.label}: {where} already points at {', '.join(edit.new_servers)}; "
            "nothing to do (file untouched, nginx not reloaded)"
        )
        return report

    prefix = Path(os.path.abspath(request.nginx_prefix)) if request.nginx_prefix is not None else None
    nginx = Nginx(request.nginx_ctl, request.main_conf, prefix)
    if not request.dry_run:
        nginx = nginx.resolve()

    checks = _check_backends(request)

    report.add(f"swap {request.label}: {where}")
    _describe_edit(report, edit)
    if upstream.commented_servers:
        lines = ", ".join(str(n) for n in upstream.commented_servers)
        report.add(f"  note: commented-out server line(s) {lines} left as they are")
    if checks is None:
        report.add("  check: skipped (--skip-check)")
    for result in checks or []:
        report.add(f"  check: {result}")

    if request.dry_run:
        label = _diff_label(upstream.file, request.server_root)
        report.add(unified_diff(edit.before, edit.after, label))
        report.add("dry run: nothing written; nginx neither tested nor reloaded")
        return report

    _apply(request, edit, nginx, report)
    return report


def _check_backends(request: SwapRequest) -> list[CheckResult] | None:
    if request.skip_check:
        return None
    results = [check_backend(b, request.connect_timeout, request.check_path) for b in request.backends]
    dead = [result for result in results if not result.ok]
    if dead:
        what = "; ".join(str(result) for result in dead)
        raise EsbgenError(
            f"refusing to swap {request.label}: new backend {what}; "
            "nothing was changed (start it first, or --skip-check)"
        )
    return results


def _describe_edit(report: SwapReport, edit: Edit) -> None:
    for kind, lineno, old, new in edit.changes:
        if kind == "changed":
            report.add(f"  line {lineno}: {old}")
            report.add(f"  {'':>{len(str(lineno)) + 5}} -> {new}")
        elif kind == "removed":
            report.add(f"  line {lineno}: {old}  (removed)")
        else:
            report.add(f"  after line {lineno}: {new}  (added)")
    report.add(f"  servers: {', '.join(edit.old_servers)} -> {', '.join(edit.new_servers)}")


def _diff_label(file: Path, server_root: Path) -> str:
    try:
        return str(Path(os.path.abspath(file)).relative_to(os.path.abspath(server_root)))
    except ValueError:
        return str(file).lstrip("/")


def _apply(request: SwapRequest, edit: Edit, nginx: Nginx, report: SwapReport) -> None:
    target = real_path(edit.upstream.file)
    backup = backup_path(target)
    status = target.stat()
    _take_backup(target, backup, edit.before, status.st_mode & 0o7777)
    reloaded = False
    try:
        if target.read_bytes() != edit.before:
            _remove(backup)  # someone else's edit: leave it alone
            raise EsbgenError(f"{target} changed while esbgen was working; nothing was changed, try again")
        try:
            _write(target, edit.after, status)
        except EsbgenError:
            _remove(backup)  # the atomic write failed: the file is as it was
            raise
        report.changed = True
        if target != Path(os.path.abspath(edit.upstream.file)):
            report.add(f"  written to {target} (the included path leads there through a symlink)")

        tested = nginx.test()
        if not tested.ok:
            _restore(target, backup, edit.before, status)
            raise EsbgenError(
                f"nginx -t rejected the edited configuration, so {target} was restored byte for byte "
                f"and nginx was not reloaded: {tested.output or f'exit status {tested.returncode}'}"
            )
        report.add(f"  nginx: {' '.join(nginx.command())}")
        report.add("  nginx -t: ok")

        if not request.reload:
            command = " ".join(nginx.command("-s", "reload"))
            report.add(f"  reload: not done (--no-reload); nginx serves the old servers until `{command}`")
        else:
            reloaded_outcome = nginx.reload()
            if not reloaded_outcome.ok:
                _restore(target, backup, edit.before, status)
                raise EsbgenError(
                    f"nginx -s reload failed, so {target} was restored byte for byte "
                    f"(nginx keeps its previous configuration): "
                    f"{reloaded_outcome.output or f'exit status {reloaded_outcome.returncode}'}"
                )
            reloaded = True
            report.add(
                "  nginx -s reload: ok (signal sent; new connections go to the new servers "
                "as nginx replaces its workers, open ones finish on the old)"
            )
    except EsbgenError:
        raise
    except BaseException:
        if not reloaded and report.changed:
            _restore(target, backup, edit.before, status)
        raise
    _remove(backup)
    report.add(f"  backup: none kept; to swap back: --to {' --to '.join(edit.old_servers)}")


def _take_backup(target: Path, backup: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise EsbgenError(
            f"{backup} exists: another swap is running, or one was interrupted "
            f"(it holds {target.name} as it was before that swap); compare and remove it first"
        ) from None
    except OSError as error:
        raise EsbgenError(f"cannot write a backup beside {target}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        _remove(backup)
        raise EsbgenError(f"cannot write the backup {backup}: {error.strerror}") from None
    fsync_dir(backup.parent)


def _write(target: Path, data: bytes, status: os.stat_result) -> None:
    try:
        atomic_write_bytes(target, data, mode=status.st_mode & 0o7777)
    except OSError as error:
        raise EsbgenError(f"cannot write {target}: {error.strerror or error}") from None
    _keep_owner(target, status)


def _keep_owner(target: Path, status: os.stat_result) -> None:
    """A rename gives the file esbgen's owner; give it back its own when we can."""
    now = target.stat()
    if (now.st_uid, now.st_gid) != (status.st_uid, status.st_gid):
        try:
            os.chown(target, status.st_uid, status.st_gid)
        except OSError:
            pass


def _restore(target: Path, backup: Path, data: bytes, status: os.stat_result) -> None:
    try:
        atomic_write_bytes(target, data, mode=status.st_mode & 0o7777)
        _keep_owner(target, status)
        if target.read_bytes() != data:
            raise OSError("the restored file differs from the original")
    except OSError as error:
        raise EsbgenError(
            f"could not restore {target} ({error}); its original bytes are in {backup}"
        ) from None
    _remove(backup)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    fsync_dir(path.parent)

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

With ``activation`` (``esbgen swap paasagent ... --activate``) the rows of
``engine_servers`` are planned with the edit (a dry run shows them), written
in a database transaction before the file is touched (so a database that
refuses the write refuses the swap, with nginx untouched), and committed only
after ``nginx -s reload`` succeeded; every failure before rolls the rows back
and restores the file.  If the commit itself fails, the file is restored and
nginx reloaded again, so nginx and the server list never disagree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from esbgen.errors import EsbgenError, UsageError
from esbgen.fsutil import atomic_write_bytes, fsync_dir, unified_diff

from esbgen_nginx.backends import Backend, CheckResult, check_backend
from esbgen_nginx.nginxctl import Nginx
from esbgen_nginx.upstream import Edit, find_upstream, plan_edit, real_path

if TYPE_CHECKING:  # Django stays unimported until --activate needs it
    from esbgen_nginx.agents import ActivationPlan, ActivationRequest, PendingActivation

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
    activation: "ActivationRequest | None" = None  # --activate: the agents' rows in engine_servers

    @property
    def main_conf(self) -> Path:
        return Path(os.path.abspath(self.server_root)) / "nginx.conf"


@dataclass
class SwapReport:
    lines: list[str] = field(default_factory=list)
    changed: bool = False
    would_change: bool = False  # a dry run found something to do

    def add(self, line: str) -> None:
        self.lines.append(line)


def backup_path(target: Path) -> Path:
    return target.with_name(f".{target.name}{BACKUP_SUFFIX}")


def swap(request: SwapRequest) -> SwapReport:
    """Carry out ``request``; raise EsbgenError (one line) on any refusal or failure."""
    if len(set(request.backends)) != len(request.backends):
        raise EsbgenError("the same backend is given twice in --to")
    if request.activation is not None and not request.reload:
        raise UsageError("--activate commits the server list once nginx has reloaded: it cannot go with --no-reload")
    upstream = find_upstream(request.main_conf, request.upstream)
    edit = plan_edit(upstream, request.backends)
    report = SwapReport()
    where = f"upstream {upstream.name} in {upstream.file}, line {upstream.lineno}"
    activation = None
    if request.activation is not None:
        from esbgen_nginx.agents import plan_activation

        activation = plan_activation(request.activation, request.backends, edit.old_servers, request.dry_run)

    if edit.is_noop:
        if activation is None or activation.is_noop:
            rows = ", engine_servers already as asked" if activation is not None else ""
            report.add(
                f"swap {request.label}: {where} already points at {', '.join(edit.new_servers)}; "
                f"nothing to do (file untouched, nginx not reloaded{rows})"
            )
            return report
        return _rows_only(request, activation, where, edit, report)

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
    if activation is not None:
        report.lines.extend(activation.describe(request.dry_run))

    if request.dry_run:
        label = _diff_label(upstream.file, request.server_root)
        report.add(unified_diff(edit.before, edit.after, label))
        rows = "; engine_servers not changed" if activation is not None else ""
        report.add(f"dry run: nothing written; nginx neither tested nor reloaded{rows}")
        report.would_change = True
        return report

    pending = None
    if activation is not None and not activation.is_noop:
        from esbgen_nginx.agents import PendingActivation

        pending = PendingActivation(activation, request.backends, edit.old_servers)
    _apply(request, edit, nginx, report, pending)
    if pending is not None:
        report.lines.extend(activation.done_lines())
    return report


def _rows_only(request: SwapRequest, activation: "ActivationPlan", where: str, edit: Edit,
               report: SwapReport) -> SwapReport:
    """nginx already points at the new servers; only the server list is not as asked."""
    from esbgen_nginx.agents import PendingActivation

    checks = _check_backends(request)
    report.add(
        f"swap {request.label}: {where} already points at {', '.join(edit.new_servers)} "
        "(file untouched, nginx not reloaded); the server list is not as asked"
    )
    if checks is None:
        report.add("  check: skipped (--skip-check)")
    for result in checks or []:
        report.add(f"  check: {result}")
    report.lines.extend(activation.describe(request.dry_run))
    if request.dry_run:
        report.add("dry run: engine_servers not changed")
        report.would_change = True
        return report
    pending = PendingActivation(activation, request.backends, edit.old_servers)
    pending.begin()
    try:
        pending.commit()
    except EsbgenError as error:
        if not pending.landed():
            raise
        report.add(f"  note: {error}; read back, engine_servers is as asked: the commit went through")
    report.changed = True
    report.lines.extend(activation.done_lines())
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


def _apply(request: SwapRequest, edit: Edit, nginx: Nginx, report: SwapReport,
           pending: "PendingActivation | None" = None) -> None:
    target = real_path(edit.upstream.file)
    status = target.stat()
    if pending is None:
        _apply_file(request, edit, nginx, report, target, status, None)
        return
    pending.begin()  # the rows are written, uncommitted; a refusal here has changed nothing
    try:
        _apply_file(request, edit, nginx, report, target, status, pending)
    except EsbgenError as error:
        if not pending.open:
            raise  # the commit failed, and the message says what became of nginx and the rows
        pending.rollback()
        raise EsbgenError(f"{error}; the engine_servers change was rolled back") from None
    finally:
        pending.rollback()  # unless committed: nothing of the rows stays


def _apply_file(request: SwapRequest, edit: Edit, nginx: Nginx, report: SwapReport, target: Path,
                status: os.stat_result, pending: "PendingActivation | None") -> None:
    backup = backup_path(target)
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
        if pending is not None:
            _commit_or_undo(pending, target, backup, edit, status, nginx, report)
    except EsbgenError:
        raise
    except BaseException:
        uncommitted = pending is not None and not pending.committed
        if report.changed and (not reloaded or uncommitted):
            _restore(target, backup, edit.before, status)
            if reloaded:
                nginx.reload()
        raise
    _remove(backup)
    report.add(f"  backup: none kept; to swap back: --to {' --to '.join(edit.old_servers)}")


def _commit_or_undo(pending: "PendingActivation", target: Path, backup: Path, edit: Edit,
                    status: os.stat_result, nginx: Nginx, report: SwapReport) -> None:
    """Commit the rows; if the database refuses, nginx goes back to the old servers too."""
    try:
        pending.commit()
        return
    except EsbgenError as error:
        failed = str(error)
    landed = pending.landed()
    if landed:
        pending.committed = True
        report.add(f"  note: {failed}; read back, engine_servers is as asked: the commit went through")
        return
    rows = "engine_servers is unchanged"
    if landed is None:
        rows = "engine_servers could not be read back to see whether the commit went through: check its rows"
    try:
        _restore(target, backup, edit.before, status)
    except EsbgenError as restore_error:
        raise EsbgenError(
            f"{failed}; and {restore_error}: nginx serves the new servers; {rows}"
        ) from None
    again = nginx.reload()
    if again.ok:
        raise EsbgenError(
            f"{failed}; so {target} was restored byte for byte and nginx reloaded again: "
            f"the old servers serve as before; {rows}"
        )
    raise EsbgenError(
        f"{failed}; {target} was restored byte for byte, but nginx -s reload failed the second time "
        f"({again.output or f'exit status {again.returncode}'}): nginx serves the new servers until it reloads, "
        f"while {rows}"
    )


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

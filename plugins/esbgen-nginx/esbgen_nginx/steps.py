"""The journal's step kinds of a swap: ``nginx_config`` (the file, ``nginx -t``, the reload, the answer
through nginx), ``engine_servers`` (the agents' rows of ``--activate``) and ``supervisor_program`` (the
old backend's program of ``--stop-old``), declared through ``esbgen_step_kinds``. A swap's steps come in
that order, so an undo starts the old program again before it points nginx back.

``nginx_config`` keeps the file's bytes before and after in its record (base64), so whichever
process reverts it, after a failure, a kill or for ``esbgen undo --swap``, needs nothing else:

* apply: the file must still be as planned; it is written atomically (owner and mode kept, through a
  symlink to its target), then ``nginx -t``, then the reload. The record notes each stage
  (``written``, ``reloading``, ``reloaded``) before the next one starts. When the record has ``reach``,
  the service is then asked through nginx (``esbgen_nginx.reach``), and an answer worse than the one
  before the swap fails the step: the whole swap is rolled back.
* revert: the half-written temporary file of a killed write goes; the file goes back to its earlier
  bytes if it has the swap's (a third content is someone else's edit: left alone, and said); nginx
  is tested, and reloaded again if the swap's reload may have reached it.
* verify: the file has the swap's bytes.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from esbgen.errors import EsbgenError
from esbgen.fsutil import atomic_write_bytes, remove_stray_temps

from esbgen_nginx.nginxctl import Nginx

NGINX_KIND = "nginx_config"
ROWS_KIND = "engine_servers"
PROGRAM_KIND = "supervisor_program"
OLD_WORKERS_SECONDS = 30.0  # how long requests nginx's old workers still hold get before the old backend stops

# A swap's checkpoints are moments (esbgen_moment, where the tests kill or interrupt it): before the write,
# after it, after nginx -t, after the reload, after the rows' commit, after the old program stopped (--stop-old).


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_bytes())
    except FileNotFoundError:
        return None


def nginx_record(target: Path, before: bytes, after: bytes, status: os.stat_result, nginx: Nginx,
                 reload: bool) -> dict[str, Any]:
    return {
        "file": str(target),
        "before": base64.b64encode(before).decode("ascii"),
        "after": base64.b64encode(after).decode("ascii"),
        "before_sha": _sha(before),
        "after_sha": _sha(after),
        "mode": status.st_mode & 0o7777,
        "uid": status.st_uid,
        "gid": status.st_gid,
        "nginx": nginx.to_record(),
        "reload": reload,
        "stage": "planned",
    }


class NginxConfigKind:
    kind = NGINX_KIND

    def apply(self, record: dict[str, Any], ctx: Any) -> None:
        target = Path(record["file"])
        nginx = Nginx.from_record(record["nginx"])
        ctx.checkpoint("swap-before-write")
        if _file_sha(target) != record["before_sha"]:
            raise EsbgenError(f"{target} changed while esbgen was working; nothing was changed, try again")
        _write(target, base64.b64decode(record["after"]), record)
        record["stage"] = "written"
        ctx.checkpoint("swap-written")
        tested = nginx.test()
        if not tested.ok:
            raise EsbgenError(
                f"nginx -t rejected the edited configuration, so {target} was restored byte for byte "
                f"and nginx was not reloaded: {tested.output or f'exit status {tested.returncode}'}"
            )
        ctx.checkpoint("swap-tested")
        if not record["reload"]:
            return
        record["stage"] = "reloading"
        ctx.save()
        reach = record.get("reach")
        if reach is not None:
            from esbgen_nginx.reach import master_pid, serving

            master = master_pid(reach.get("pid_file"))
            old_workers = serving(master) if master else set()
        reloaded = nginx.reload()
        if not reloaded.ok:
            record["stage"] = "reload-failed"  # nginx kept its configuration: the revert needs no reload
            ctx.save()
            how = " ".join(nginx.reload_command) if nginx.reload_command else "nginx -s reload"
            raise EsbgenError(
                f"{how} failed, so {target} was restored byte for byte (nginx keeps its previous configuration): "
                f"{reloaded.output or f'exit status {reloaded.returncode}'}"
            )
        record["stage"] = "reloaded"
        ctx.checkpoint("swap-reloaded")
        if reach is not None:
            _ask_through_nginx(reach, master, old_workers)
            ctx.save()

    def revert(self, record: dict[str, Any], ctx: Any) -> None:
        target = Path(record["file"])
        remove_stray_temps(target)
        current = _file_sha(target)
        if current == record["after_sha"]:
            _write(target, base64.b64decode(record["before"]), record)
        elif current != record["before_sha"]:
            raise EsbgenError(f"{target} changed since the swap wrote it (someone else's edit); left as it is")
        if record["reload"] and record.get("stage") in ("reloading", "reloaded"):
            nginx = Nginx.from_record(record["nginx"])
            tested = nginx.test()
            if not tested.ok:
                raise EsbgenError(f"{target} is back as it was, but nginx -t rejects the configuration now, so nginx "
                                  f"was not reloaded: {tested.output}")
            again = nginx.reload()
            if not again.ok:
                raise EsbgenError(f"{target} is back as it was, but the reload failed ({again.output}): nginx serves "
                                  "the swap's servers until it reloads")
            record["stage"] = "reverted"

    def verify(self, record: dict[str, Any], ctx: Any) -> bool:
        return _file_sha(Path(record["file"])) == record["after_sha"]

    def describe_revert(self, record: dict[str, Any]) -> list[str]:
        nginx = Nginx.from_record(record["nginx"])
        steps = [f"put back the earlier bytes of {record['file']}"]
        if record["reload"]:
            steps += [f"run {' '.join(nginx.command('-t'))}", f"run {' '.join(nginx.reload_argv())}"]
        return steps


def _ask_through_nginx(reach: dict[str, Any], master: int | None, old_workers: set[int]) -> None:
    """Ask the service through nginx once its new workers serve; raise (the swap is rolled back) when it got worse."""
    from esbgen_nginx.reach import Answer, Route, ask, serving, verdict, wait_for_new_workers

    route = Route.from_record(reach["route"])
    switched, reach["waited"] = wait_for_new_workers(master, old_workers)
    if not switched:
        reach["worse"] = "nginx did not load the new configuration"
        raise EsbgenError(f"{reach['waited']}: nginx did not load the new configuration (see its error log)")
    reach["workers"] = sorted(serving(master)) if master else []
    before, after = Answer.from_record(reach["before"]), ask(route, reach["timeout"])
    reach["after"] = after.to_record()
    why = verdict(before, after, reach.get("expect"))
    if why is not None:
        reach["worse"] = why
        raise EsbgenError(f"through nginx, GET {route.url} ({route.location}) got {after} after the reload, "
                          f"{before} before: {why}")


def _write(target: Path, data: bytes, record: dict[str, Any]) -> None:
    try:
        atomic_write_bytes(target, data, mode=record["mode"])
    except OSError as error:
        raise EsbgenError(f"cannot write {target}: {error.strerror or error}") from None
    now = target.stat()
    if (now.st_uid, now.st_gid) != (record["uid"], record["gid"]):
        try:
            os.chown(target, record["uid"], record["gid"])
        except OSError:
            pass


class EngineServersKind:
    kind = ROWS_KIND

    def apply(self, record: dict[str, Any], ctx: Any) -> None:
        from esbgen.db.registration import run_target
        from esbgen_nginx.agents import apply_rows

        note = apply_rows(record, run_target(ctx))
        if note:
            record["note"] = note
        record["outcome"] = "committed"
        ctx.checkpoint("swap-rows")

    def revert(self, record: dict[str, Any], ctx: Any) -> None:
        from esbgen.db.registration import run_target
        from esbgen_nginx.agents import revert_rows

        revert_rows(record, run_target(ctx))

    def verify(self, record: dict[str, Any], ctx: Any) -> bool:
        from esbgen.db.registration import run_target
        from esbgen_nginx.agents import rows_applied

        return rows_applied(record, run_target(ctx))

    def describe_revert(self, record: dict[str, Any]) -> list[str]:
        from esbgen_nginx.agents import describe_revert

        return describe_revert(record)


class SupervisorProgramKind:
    """``--stop-old``: the old backend's supervisor program, stopped once the new backends serve through nginx.

    apply: wait (bounded) until the workers nginx's reload told to finish have finished their requests, then
    the grace period, then ``supervisorctl stop``. revert: ``supervisorctl start`` and wait until the old
    backend accepts connections again, so that an undo points nginx back (the step before) at a service
    that answers; a program already running again is left as it is. verify: supervisor still has the program.
    """

    kind = PROGRAM_KIND

    def apply(self, record: dict[str, Any], ctx: Any) -> None:
        import time

        from esbgen_nginx.reach import master_pid, wait_for_old_workers_to_finish
        from esbgen_nginx.supervisor import Supervisorctl

        record["old_workers_finished"] = wait_for_old_workers_to_finish(master_pid(record.get("pid_file")),
                                                                        OLD_WORKERS_SECONDS)
        time.sleep(record.get("grace") or 0)
        record["stage"] = "stopping"
        ctx.save()
        Supervisorctl(tuple(record["supervisorctl"])).stop(record["program"])
        record["stage"] = "stopped"
        ctx.checkpoint("swap-stopped")

    def revert(self, record: dict[str, Any], ctx: Any) -> None:
        from esbgen_nginx.supervisor import Supervisorctl, wait_accepting

        if record.get("stage") not in ("stopping", "stopped"):
            return
        ctl = Supervisorctl(tuple(record["supervisorctl"]))
        if ctl.state(record["program"]) != "RUNNING":
            ctl.start(record["program"])
        silent = wait_accepting(record.get("addresses", []))
        if silent:
            raise EsbgenError(f"supervisor program {record['program']} is running again, but {', '.join(silent)} "
                              "does not accept connections: nginx was left pointing at the new backends")
        record["stage"] = "started"

    def verify(self, record: dict[str, Any], ctx: Any) -> bool:
        from esbgen_nginx.supervisor import Supervisorctl

        if Supervisorctl(tuple(record["supervisorctl"])).state(record["program"]) is None:
            raise EsbgenError(f"supervisor has no program {record['program']} any more")
        return True

    def describe_revert(self, record: dict[str, Any]) -> list[str]:
        addresses = ", ".join(record.get("addresses", [])) or "it"
        return [f"run {' '.join(record['supervisorctl'])} start {record['program']}, and wait until "
                f"{addresses} accepts connections"]

"""The journal's step kinds of a swap: ``nginx_config`` (the file, ``nginx -t``, the reload) and
``engine_servers`` (the agents' rows of ``--activate``), declared through ``esbgen_step_kinds``.

``nginx_config`` keeps the file's bytes before and after in its record (base64), so whichever
process reverts it, after a failure, a kill or for ``esbgen undo --swap``, needs nothing else:

* apply: the file must still be as planned; it is written atomically (owner and mode kept, through a
  symlink to its target), then ``nginx -t``, then the reload. The record notes each stage
  (``written``, ``reloading``, ``reloaded``) before the next one starts.
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

# Where ESBGEN_CRASH_AT / ESBGEN_INTERRUPT_AT stop a swap (tests): before the write, after it, after
# nginx -t, after the reload, after the rows' commit.
POINTS = ("swap-before-write", "swap-written", "swap-tested", "swap-reloaded", "swap-rows")


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
        from esbgen.registration import run_target
        from esbgen_nginx.agents import apply_rows

        note = apply_rows(record, run_target(ctx))
        if note:
            record["note"] = note
        record["outcome"] = "committed"
        ctx.checkpoint("swap-rows")

    def revert(self, record: dict[str, Any], ctx: Any) -> None:
        from esbgen.registration import run_target
        from esbgen_nginx.agents import revert_rows

        revert_rows(record, run_target(ctx))

    def verify(self, record: dict[str, Any], ctx: Any) -> bool:
        from esbgen.registration import run_target
        from esbgen_nginx.agents import rows_applied

        return rows_applied(record, run_target(ctx))

    def describe_revert(self, record: dict[str, Any]) -> list[str]:
        from esbgen_nginx.agents import describe_revert

        return describe_revert(record)

"""``esbgen verify SYSTEM``: for each channel, what serves it and where its call goes, from the files.

For every channel the ESB serves of the system (``rules.served_channels``, the model ``check``
uses), and every confapis entry whose codename names another system's component, it reports:

* the component that serves it (codename, module and class);
* the host setting the component reads, whether the tree's settings file defines it, and, for a
  clone, whether it has the very value of the setting its source reads (then the clone's calls
  reach the source's backend);
* the method and path a call is forwarded to (``routing.destination``; Python-declared channels
  through their ``comp_conf``).

It exits 1 with one line per problem, undefined host settings first: a clone's calls fail while
its host setting is undefined (its module cannot import it, or the host is empty).

``--live URL --app-code CODE --app-secret-env VAR`` then calls one read-only channel (GET) through
a running ESB (``URL/api/c/compapi/<path>``) with that app's credentials (the secret is read from
the environment variable and never shown) and reports the answer.

With ``--json`` the outcome object (esbgen.report) also has ``system``, ``channels`` (one object per
channel served: method, path, codename, module, class, host_setting, defined, destination) and
``problems`` (the problem lines, in the order they are printed); the exit status is the same.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from esbgen.errors import EsbgenError, Refused, UsageError
from esbgen.esb.routing import backend_settings
from esbgen.runner import Context, Operation

LIVE_TIMEOUT = 15.0


def _component_of_other_system(tree, system, codename: str):
    for other in tree.systems.values():
        if other is system:
            continue
        component = other.component_by_codename(codename)
        if component is not None:
            return other, component
    return None, None


def check_arguments(name: str, live: str | None, app_code: str | None, app_secret_env: str | None,
                    channel_name: str | None, params: tuple[str, ...]) -> None:
    """Refuse a wrong command line before the tree is read."""
    from esbgen.esb.rules import validate_system_folder

    validate_system_folder(name, "system")
    if live is None and (app_code or app_secret_env or channel_name or params):
        raise UsageError("--app-code, --app-secret-env, --channel and --param go with --live URL")
    if live is not None and not (app_code and app_secret_env):
        raise UsageError("--live needs --app-code CODE and --app-secret-env VAR (the variable holding the app's secret)")


def verify(root: Path, name: str, say, *, live: str | None = None, app_code: str | None = None,
           app_secret_env: str | None = None, channel_name: str | None = None, params: tuple[str, ...] = ()) -> int:
    """``esbgen verify`` on a resolved root (esbgen.commands.verify.Verify checks the arguments and recovers first)."""
    from esbgen import report
    from esbgen.esb.layout import settings_file
    from esbgen.esb.routing import ComponentRouting, destination, preset_destination, settings_values
    from esbgen.esb.rules import check_channel_fields, clone_source, served_calls, served_channels
    from esbgen.esb.tree import load_tree

    tree = load_tree(root, positions=set())  # nothing is edited: no value's place is needed
    system = tree.systems.get(name)
    if system is None:
        raise Refused(f"no system {name!r} in {root} (systems: {', '.join(sorted(tree.systems)) or 'none'})")
    system_name = (system.system_name or system.name).upper()
    settings = settings_values(root)
    where = settings_file(root)
    routings: dict[str, ComponentRouting] = {}
    source = clone_source(tree, system)
    source_hosts = _host_values(root, source, settings) if source is not None else {}

    problems: list[str] = []
    channels: list[dict] = []
    dropped = served_channels(tree, system)[1]
    served = served_calls(tree, system)  # with the presets the legacy router serves without a row
    say(f"{system_name} ({system.name}): {len(served)} channel(s) served; host settings from {where}")
    for item in served:
        component = item.component
        if item.channel is not None:
            dest = destination(root, system, item.channel, settings=settings, routings=routings, where=where)
        else:
            dest = preset_destination(root, system, item.preset, settings=settings, routings=routings, where=where)
        head = f"{item.method + ' ' if item.method else ''}{item.path}"
        serves = f"{item.codename} ({component.module}:{component.class_name})"
        setting = dest.host_setting
        if setting is None:
            host = "its host is not readable from the component"
        elif dest.setting is None:
            host = f"reads {setting}, NOT DEFINED"
        else:
            host = f"reads {setting}"
            same = [theirs for theirs, value in source_hosts.items()
                    if theirs != setting and value is not None and value == dest.setting.value]
            if same:
                host += f" (the same value as {source.name}'s {same[0]})"
                problems.append(f"{head}: {setting} = {dest.setting.value!r} in {where} is the value of "
                                f"{same[0]}, the host of its source {source.name}: the clone's calls reach the "
                                "source's backend")
        forwarded = dest.describe() if dest.path is not None else \
            f"{dest.method or '?'} (the component builds the path in its code)"
        say(f"  {head}: served by {serves}; {host}; a call goes to {forwarded}")
        channels.append({"method": item.method, "path": item.path, "codename": item.codename,
                         "module": Path(component.module).as_posix() if component.module else None, "class": component.class_name, "host_setting": setting,
                         "defined": setting is not None and dest.setting is not None, "destination": forwarded})
    for entry in system.default_channels():
        if any(p.code == "skipped-entry" for p in check_channel_fields(entry)) or not entry.codename:
            continue
        if system.component_by_codename(entry.codename) is not None:
            continue
        other, component = _component_of_other_system(tree, system, entry.codename)
        if other is not None:
            problems.append(f"{entry.where}: channel {entry.path} is served by {entry.codename}, a component of "
                            f"{(other.system_name or other.name).upper()} ({component.module}), not of {system_name}: "
                            f"the ESB files it under {(other.system_name or other.name).upper()} and its calls go "
                            "to that system's host")
    # Channels the ESB drops for want of a component (duplicates and the like are `check`'s to report).
    problems.extend(str(problem) for problem in dropped
                    if problem.code == "codename" and not _names_other_system(tree, system, problem))
    needs = backend_settings(root, tree, system, served, routings)
    lines = [f"{setting} is not defined in {where}: "
             + (f"{len(paths)} channel(s) of {system_name} read it ({', '.join(paths[:3])}{', ...' if len(paths) > 3 else ''})"
                if paths else f"the code of {system_name} reads it")
             + f"; define {setting} = 'http://...' there "
             "(the address of the system's backend), then restart the ESB"
             for setting, paths in needs.items() if setting not in settings]
    if not served:
        lines.append(f"{system_name} serves no channel: no call reaches it through the ESB")
    lines.extend(problems)
    report.set(system=system.name, channels=channels, problems=list(lines))
    status = 0
    if lines:
        for line in lines:
            say(f"problem: {line}")
        say(f"{len(lines)} problem(s) in {system_name}.")
        status = 1
    else:
        say(f"OK: every channel of {system_name} is served by its own component and its host setting is defined.")
    if live is not None:
        status = max(status, _live(live, served, system_name, app_code, app_secret_env, channel_name, params, say))
    return status


def _names_other_system(tree, system, problem) -> bool:
    """A dropped channel whose codename is another system's component: reported once, as such."""
    for entry in system.default_channels():
        if entry.where == problem.where and entry.codename:
            return _component_of_other_system(tree, system, entry.codename)[0] is not None
    return False


def _host_values(root: Path, system, settings) -> dict[str, str | None]:
    """The host settings a system's components read, with their plain values in the settings file."""
    from esbgen.esb.routing import component_routing

    found: dict[str, str | None] = {}
    for component in system.components:
        try:
            routing = component_routing(root, component)
        except EsbgenError:
            continue
        for setting in routing.host_settings:
            value = settings.get(setting)
            found.setdefault(setting, value.value if value else None)
    return found


def _live(url: str, served, system_name: str, app_code: str, secret_env: str, channel_name: str | None,
          params: tuple[str, ...], say) -> int:
    secret = os.environ.get(secret_env)
    if not secret:
        raise UsageError(f"--app-secret-env {secret_env}: the environment has no such variable, or it is empty")
    query: dict[str, str] = {}
    for pair in params:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {pair!r} is not NAME=VALUE")
        query[key] = value
    readable = [s for s in served if (s.method or "GET") == "GET"]
    if channel_name is not None:
        chosen = next((s for s in readable if s.name == channel_name), None)
        if chosen is None:
            raise UsageError(f"{system_name} has no read-only (GET) channel {channel_name!r}; read-only channels: "
                             f"{', '.join(s.name for s in readable) or 'none'}")
    else:
        def needs_vars(item) -> bool:
            dest = item.channel.get("dest_path") if item.channel is not None else item.preset.comp_conf.get("dest_path")
            return isinstance(dest, str) and "{" in dest and not all(f"{{{k}}}" in dest for k in query)

        chosen = next((s for s in readable if not needs_vars(s)), readable[0] if readable else None)
        if chosen is None:
            raise EsbgenError(f"{system_name} has no read-only (GET) channel to call; give --channel NAME of one")
    import urllib.error
    import urllib.request  # with http.client and ssl: 10 ms that every clone's closing notes would pay

    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"--live {url!r} is not an http(s) URL of the ESB")
    shown = f"{url.rstrip('/')}/api/c/compapi/{chosen.path.strip('/')}/"
    full = shown + "?" + urllib.parse.urlencode({**query, "bk_app_code": app_code, "bk_app_secret": secret})
    request = urllib.request.Request(full, method="GET", headers={
        "Accept": "application/json",
        "X-Bkapi-Authorization": json.dumps({"bk_app_code": app_code, "bk_app_secret": secret}),
    })
    say(f"Live: GET {shown} as app {app_code}{' with ' + ', '.join(sorted(query)) if query else ''}")
    try:
        with urllib.request.urlopen(request, timeout=LIVE_TIMEOUT) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise EsbgenError(f"--live: cannot reach {shown}: {reason}") from None
    text = body.decode("utf-8", "replace")
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        say(f"Live: HTTP {status}, not a JSON object: {text[:200]!r}")
        _add_problem(f"the ESB answered {chosen.path} with HTTP {status}, not a JSON object")
        return 1
    result, code, message = answer.get("result"), answer.get("code"), answer.get("message") or ""
    say(f"Live: HTTP {status}; result {json.dumps(result)}, code {code}, message {message!r}")
    if status == 200 and result is True:
        say(f"Live: {chosen.name} answered through the ESB.")
        return 0
    line = f"the ESB answered {chosen.path} with HTTP {status}, result {json.dumps(result)}: {message}"
    _add_problem(line)
    say(f"problem: {line}")
    return 1


def _add_problem(line: str) -> None:
    """A problem found by the live call joins the ``--json`` problems."""
    from esbgen import report

    current = report.active()
    if current is not None:
        current.extra.setdefault("problems", []).append(line)


@dataclass
class Verify(Operation):
    """``esbgen verify`` (esbgen.commands.verify): what serves each channel and where its call goes; --live calls one."""

    system: str
    live: str | None = None
    app_code: str | None = None
    app_secret_env: str | None = None
    channel_name: str | None = None
    params: tuple[str, ...] = ()
    command = "verify"
    writes = False

    def check(self, ctx: Context) -> None:
        check_arguments(self.system, self.live, self.app_code, self.app_secret_env, self.channel_name, self.params)

    def read(self, ctx: Context) -> int:
        return verify(ctx.root, self.system, ctx.say, live=self.live, app_code=self.app_code,
                      app_secret_env=self.app_secret_env, channel_name=self.channel_name, params=self.params)

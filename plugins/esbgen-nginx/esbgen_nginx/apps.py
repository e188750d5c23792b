"""The apps a paasagent swap leaves on the old agent: step B.6 of the procedure, redeploy them on the new one.

The PaaS keeps which agent hosts an app in its own database (the app engine's tables, beside
``engine_servers``): ``engine_hosting_ships`` links an app of ``engine_apps`` (``app_code``) to the
``engine_servers`` row of the agent it was deployed on. A deployment reuses that link while the agent's
row is active, and links the environment's active agent otherwise; so every app linked to an old agent
of the environment (``ip_address:app_port`` a server the swap takes out of the upstream) still runs there
and answers through nginx only once it is deployed again. The developer center's ``paas_app`` says
whether the app is deployed in that environment now (``is_already_test``, ``is_already_online``); an app
it says is offline there has nothing to redeploy.

Reading only; a database without these tables gets a note, never a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from esbgen.db import connection as db

DEPLOYED_FLAG = {"tapp": "is_already_test", "app": "is_already_online"}  # paas_app's column per category
URL_PREFIX = {"tapp": "/t/", "app": "/o/"}  # where nginx serves an environment's apps


@dataclass(frozen=True)
class HostedApp:
    code: str
    name: str
    agent: str  # "HOST:APP_PORT" of the old agent
    deployed: bool | None  # what paas_app says for the environment; None: no paas_app row

    def to_record(self) -> dict:
        return {"app_code": self.code, "name": self.name, "agent": self.agent, "deployed": self.deployed}


def hosted_apps(target: db.Target, category: str, old_servers: list[str]) -> tuple[list[HostedApp], str]:
    """The apps hosted on the old agents of ``category``, and where they were read (without password)."""
    from esbgen_nginx.agents import _old_address

    old = {f"{host}:{port}" for host, port in filter(None, map(_old_address, old_servers))}
    with target.open(readonly=True) as database:
        cursor = database.execute(
            "SELECT a.app_code, a.name, s.ip_address, s.app_port FROM engine_hosting_ships h "
            "JOIN engine_apps a ON a.id = h.bk_app_id JOIN engine_servers s ON s.id = h.bk_server_id "
            "WHERE s.category = %s ORDER BY a.app_code", [category])
        linked = [(code, name, f"{str(ip).strip()}:{str(port).strip()}") for code, name, ip, port in cursor.fetchall()]
        linked = [row for row in linked if row[2] in old]
        deployed = _deployed(database, category, sorted({code for code, _, _ in linked}))
        apps = [HostedApp(code, name or "", agent, deployed.get(code)) for code, name, agent in linked]
        return apps, database.shown


def _deployed(database: db.Database, category: str, codes: list[str]) -> dict[str, bool]:
    if not codes:
        return {}
    flag = DEPLOYED_FLAG.get(category)
    if flag is None:
        return {}
    marks = ", ".join(["%s"] * len(codes))
    try:
        cursor = database.execute(f"SELECT code, {flag} FROM paas_app WHERE code IN ({marks})", codes)
    except Exception as error:
        if db.is_database_error(error):  # no developer center tables here: every linked app counts
            return {}
        raise
    return {code: bool(value) for code, value in cursor.fetchall()}


def describe(apps: list[HostedApp], category: str, old_servers: list[str], shown: str) -> list[str]:
    redeploy = [app for app in apps if app.deployed is not False]
    offline = [app for app in apps if app.deployed is False]
    where = f"engine_hosting_ships in {shown}"
    if not apps:
        return [f"  apps on the old agent ({', '.join(old_servers)}): none ({where})"]
    prefix = URL_PREFIX.get(category, "/")
    lines = [f"  apps on the old agent ({where}): {len(redeploy)} to redeploy on the new agent"
             + (f", {len(offline)} offline there" if offline else "")]
    for app in redeploy:
        lines.append(f"    redeploy: {app.code} ({app.name}) from {app.agent}; then check {prefix}{app.code}/ answers")
    for app in offline:
        lines.append(f"    offline in this environment, nothing to redeploy: {app.code} ({app.name})")
    if redeploy:
        environment = "test" if category == "tapp" else "production"
        lines.append(f"  ACTION NEEDED: deploy each app above again ({environment} deployment in the developer "
                     "center) so it runs on the new agent: nginx now sends its requests there")
    return lines

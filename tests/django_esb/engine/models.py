"""The developer center's server list, as the PaaS keeps it beside the ESB's tables (same database).

``engine_servers`` holds one row per paasagent: where its API listens (``ip_address``,
``ip_port``), where the apps it hosts answer (``app_port``, the port nginx's
``PAAS_AGENT_TEST``/``PAAS_AGENT_PROD`` upstream points at), the environment
(``category``: ``tapp`` test, ``app`` production), the ``s_id``/``token`` pair the agent
authenticates with (UUIDs, stored as 32 hex digits), and whether it is active.
"""

import uuid

from django.db import models


class EngineServer(models.Model):
    name = models.CharField(max_length=20, default="", blank=True)
    s_id = models.UUIDField(default=uuid.uuid4, editable=False)
    token = models.UUIDField(default=uuid.uuid4, editable=False)
    ip_address = models.CharField(max_length=36)
    ip_port = models.CharField(max_length=36, default="4245")
    app_port = models.CharField(max_length=36, default="8085")
    category = models.CharField(max_length=36, choices=[("tapp", "test"), ("app", "production")], default="tapp")
    info = models.CharField(max_length=200, default="", blank=True)
    is_active = models.BooleanField(default=False)
    mac = models.CharField(max_length=36, default="", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "engine_servers"
        ordering = ["created_at"]

"""esbgen as a Django app: ``INSTALLED_APPS += ["esbgen"]`` gives ``manage.py esbgen``.

The app has no models: the system table is read through the project's own
``bkcore.ComponentSystem`` (or esbgen's private, unmanaged mapping of it).
"""

from django.apps import AppConfig


class EsbgenConfig(AppConfig):
    name = "esbgen"
    verbose_name = "esbgen"
    default_auto_field = "django.db.models.AutoField"

"""Settings of the test ESB project; the database is chosen by the environment.

``DJANGO_ESB_DB=sqlite`` (the default): ``default`` is the SQLite file
``$DJANGO_ESB_SQLITE``.  ``DJANGO_ESB_DB=mariadb``: ``default`` is the MariaDB
database ``$DJANGO_ESB_MYSQL_NAME`` at ``$DJANGO_ESB_MYSQL_HOST:$DJANGO_ESB_MYSQL_PORT``
as ``$DJANGO_ESB_MYSQL_USER``/``$DJANGO_ESB_MYSQL_PASSWORD``.  The alias
``mariadb`` is always declared: pytest-django creates its test database on the
server the tests start (see tests/conftest_services.py).
"""

import os
import tempfile
from pathlib import Path

import pymysql

# The ESB on Python 3 reaches MySQL through PyMySQL in the role of MySQLdb, as here.
pymysql.install_as_MySQLdb()

SECRET_KEY = "esbgen-tests-only"
DEBUG = False
USE_TZ = False
ALLOWED_HOSTS = []
INSTALLED_APPS = ["django_esb.bkcore", "django_esb.engine"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"


def _sqlite():
    tmp = Path(tempfile.gettempdir())
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_ESB_SQLITE") or str(tmp / "django-esb.sqlite3"),
        # A file, not memory: esbgen's own connection opens the same database by URL.
        "TEST": {"NAME": os.environ.get("DJANGO_ESB_SQLITE_TEST") or str(tmp / f"django-esb-test-{os.getpid()}.sqlite3")},
    }


def _mariadb():
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": os.environ.get("DJANGO_ESB_MYSQL_NAME", "esb"),
        "USER": os.environ.get("DJANGO_ESB_MYSQL_USER", "root"),
        "PASSWORD": os.environ.get("DJANGO_ESB_MYSQL_PASSWORD", ""),
        "HOST": os.environ.get("DJANGO_ESB_MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DJANGO_ESB_MYSQL_PORT", "3306"),
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {"NAME": "test_esb", "CHARSET": "utf8mb4", "DEPENDENCIES": []},
    }


DATABASES = {
    "default": _mariadb() if os.environ.get("DJANGO_ESB_DB") == "mariadb" else _sqlite(),
    "mariadb": _mariadb(),
}

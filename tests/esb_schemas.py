"""The two shapes of ``esb_component_system`` as the ESB's own models create them, in SQL, for tests.

Legacy ESB (``ComponentSystem``): ``label``, ``remark``, timeouts ...  Later ESB
(``System``): ``description``, ``comment``, ``board`` (unique with ``name``),
``maintainers``, timestamps, ``created_by``/``updated_by``, and no ``label``.
The NOT NULL columns have no database default, as Django creates them: a
writer that leaves one out fails.
"""

from __future__ import annotations

LATER_SQLITE = """
CREATE TABLE esb_component_system (
    id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    name varchar(64) NOT NULL,
    description varchar(128) NOT NULL,
    description_en varchar(128) NULL,
    comment text NOT NULL,
    comment_en text NULL,
    timeout integer NULL,
    data_type smallint NOT NULL,
    maintainers varchar(1024) NOT NULL,
    board varchar(64) NOT NULL,
    created_time datetime NOT NULL,
    updated_time datetime NOT NULL,
    created_by varchar(32) NOT NULL,
    updated_by varchar(32) NOT NULL,
    UNIQUE (board, name)
)
"""

LATER_MYSQL = """
CREATE TABLE esb_component_system (
    id integer AUTO_INCREMENT NOT NULL PRIMARY KEY,
    name varchar(64) NOT NULL,
    description varchar(128) NOT NULL,
    description_en varchar(128) NULL,
    comment longtext NOT NULL,
    comment_en longtext NULL,
    timeout integer NULL,
    data_type smallint NOT NULL,
    maintainers varchar(1024) NOT NULL,
    board varchar(64) NOT NULL,
    created_time datetime(6) NOT NULL,
    updated_time datetime(6) NOT NULL,
    created_by varchar(32) NOT NULL,
    updated_by varchar(32) NOT NULL,
    UNIQUE KEY esb_component_system_board_name (board, name)
) DEFAULT CHARSET=utf8mb4
"""

LATER_COLUMNS = ("name", "description", "description_en", "comment", "comment_en", "timeout", "data_type",
                 "maintainers", "board", "created_time", "updated_time", "created_by", "updated_by")

UNKNOWN_SQLITE = "CREATE TABLE esb_component_system (id integer PRIMARY KEY, name varchar(64), title varchar(128))"
UNKNOWN_MYSQL = "CREATE TABLE esb_component_system (id integer AUTO_INCREMENT PRIMARY KEY, name varchar(64), title varchar(128))"

LEGACY_MYSQL = """
CREATE TABLE esb_component_system (
    id integer AUTO_INCREMENT NOT NULL PRIMARY KEY,
    name varchar(64) NOT NULL,
    label varchar(128) NOT NULL,
    component_admin varchar(128) NOT NULL,
    interface_admin varchar(128) NOT NULL,
    system_link varchar(1024) NOT NULL,
    belong_to varchar(128) NOT NULL,
    remark longtext NOT NULL,
    execute_timeout integer NULL,
    query_timeout integer NULL,
    doc_category_id integer NULL
) DEFAULT CHARSET=utf8mb4
"""

# The ESB's models of the table, as an ESB-shaped Django project declares them (Django 1.8 through current).
LEGACY_MODELS = '''\
from django.db import models


class ComponentSystem(models.Model):
    name = models.CharField(max_length=64)
    label = models.CharField(max_length=128)
    component_admin = models.CharField(max_length=128, default="", blank=True)
    interface_admin = models.CharField(max_length=128, default="", blank=True)
    system_link = models.CharField(max_length=1024, default="", blank=True)
    belong_to = models.CharField(max_length=128, default="", blank=True)
    remark = models.TextField(default="", blank=True)
    execute_timeout = models.IntegerField(null=True, blank=True)
    query_timeout = models.IntegerField(null=True, blank=True)
    doc_category_id = models.IntegerField(null=True, blank=True)

    class Meta:
        db_table = "esb_component_system"
'''

LATER_MODELS = '''\
from django.db import models


class System(models.Model):
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=128)
    description_en = models.CharField(max_length=128, default=None, null=True, blank=True)
    comment = models.TextField(default="", blank=True)
    comment_en = models.TextField(default=None, null=True, blank=True)
    timeout = models.IntegerField(null=True, blank=True)
    data_type = models.SmallIntegerField(default=3)
    maintainers = models.CharField(max_length=1024, default="", blank=True)
    board = models.CharField(max_length=64, default="default")
    created_time = models.DateTimeField(auto_now_add=True)
    updated_time = models.DateTimeField(auto_now=True)
    created_by = models.CharField(max_length=32, default="", blank=True)
    updated_by = models.CharField(max_length=32, default="", blank=True)

    class Meta:
        db_table = "esb_component_system"
        unique_together = ("board", "name")
'''

# The legacy table as SQLite holds it, for tests that need a database beside a scratch ESB.
LEGACY_SQLITE = (
    "CREATE TABLE esb_component_system (id integer PRIMARY KEY AUTOINCREMENT, name varchar(64) NOT NULL, "
    "label varchar(128) NOT NULL, component_admin varchar(128) NOT NULL DEFAULT '', "
    "interface_admin varchar(128) NOT NULL DEFAULT '', system_link varchar(1024) NOT NULL DEFAULT '', "
    "belong_to varchar(128) NOT NULL DEFAULT '', remark text NOT NULL DEFAULT '', execute_timeout integer NULL, "
    "query_timeout integer NULL, doc_category_id integer NULL)"
)

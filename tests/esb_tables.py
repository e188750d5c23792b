"""Every table a sync, its verification, undo and grants touch, in both ESB generations, as SQL for tests.

Written after the ESB's own models (``esb/bkcore/models.py`` of each generation) as Django
creates their tables: NOT NULL columns without database defaults, the unique keys, and on
MariaDB the foreign keys, so that rows deleted in the wrong order are refused as they would be.
"""

from __future__ import annotations

from esb_schemas import LATER_MYSQL, LATER_SQLITE, LEGACY_MYSQL

LEGACY_SYSTEM_SQLITE = """
CREATE TABLE esb_component_system (
    id integer NOT NULL PRIMARY KEY AUTOINCREMENT, name varchar(64) NOT NULL, label varchar(128) NOT NULL,
    component_admin varchar(128) NOT NULL, interface_admin varchar(128) NOT NULL, system_link varchar(1024) NOT NULL,
    belong_to varchar(128) NOT NULL, remark text NOT NULL, execute_timeout integer NULL, query_timeout integer NULL,
    doc_category_id integer NULL)
"""

LEGACY_CHANNEL = """
CREATE TABLE esb_channel (
    id integer NOT NULL PRIMARY KEY {auto}, name varchar(64) NOT NULL, path varchar(255) NOT NULL UNIQUE,
    method varchar(32) NULL, component_system_id integer NULL {fk_system}, component_codename varchar(255) NOT NULL,
    component_name varchar(64) NULL, is_active bool NOT NULL, last_modified_time datetime{prec} NOT NULL,
    created_time datetime{prec} NOT NULL, timeout_time integer NULL, type integer NOT NULL, comp_conf {text} NULL,
    perm_level integer NOT NULL, is_hidden bool NOT NULL, rate_limit_required bool NOT NULL,
    rate_limit_conf {text} NULL, extra_info {text} NOT NULL)
"""

LEGACY_OTHERS = (
    """CREATE TABLE esb_api_doc (
    id integer NOT NULL PRIMARY KEY {auto}, board varchar(64) NULL, component_id integer NOT NULL UNIQUE,
    doc_md {text} NULL, doc_html {text} NULL, doc_md_md5 varchar(128) NOT NULL, created_time datetime{prec} NOT NULL,
    updated_time datetime{prec} NOT NULL)""",
    """CREATE TABLE esb_app_component_perm (
    id integer NOT NULL PRIMARY KEY {auto}, app_code varchar(64) NOT NULL, component_id integer NOT NULL,
    expires datetime{prec} NOT NULL, created_time datetime{prec} NOT NULL, last_accessed_time datetime{prec} NOT NULL,
    UNIQUE (app_code, component_id))""",
)

LATER_CHANNEL = """
CREATE TABLE esb_channel (
    id integer NOT NULL PRIMARY KEY {auto}, created_time datetime{prec} NOT NULL, updated_time datetime{prec} NOT NULL,
    created_by varchar(32) NOT NULL, updated_by varchar(32) NOT NULL, board varchar(64) NOT NULL,
    system_id integer NOT NULL {fk_system}, name varchar(128) NOT NULL, description varchar(128) NOT NULL,
    description_en varchar(128) NULL, method varchar(32) NOT NULL, path varchar(255) NOT NULL,
    component_codename varchar(255) NOT NULL, permission_level varchar(32) NOT NULL,
    verified_user_required bool NOT NULL, timeout integer NULL, config {text} NOT NULL, is_active bool NOT NULL,
    is_public bool NOT NULL, data_type integer NOT NULL, UNIQUE (board, method, path))
"""

LATER_OTHERS = (
    """CREATE TABLE esb_channel_extend (
    id integer NOT NULL PRIMARY KEY {auto}, board varchar(64) NOT NULL, component_id integer NOT NULL UNIQUE
    {fk_channel}, config_fields {text} NULL)""",
    """CREATE TABLE esb_component_doc (
    id integer NOT NULL PRIMARY KEY {auto}, created_time datetime{prec} NOT NULL, updated_time datetime{prec} NOT NULL,
    board varchar(64) NOT NULL, component_id integer NOT NULL {fk_channel}, language varchar(32) NOT NULL,
    content {text} NOT NULL, content_md5 varchar(128) NOT NULL, UNIQUE (board, component_id, language))""",
    """CREATE TABLE esb_app_component_permission (
    id integer NOT NULL PRIMARY KEY {auto}, created_time datetime{prec} NOT NULL, updated_time datetime{prec} NOT NULL,
    board varchar(64) NOT NULL, bk_app_code varchar(64) NOT NULL, component_id integer NOT NULL,
    expires datetime{prec} NOT NULL, UNIQUE (board, bk_app_code, component_id))""",
)

SQLITE = {"auto": "AUTOINCREMENT", "prec": "", "text": "text", "fk_system": "REFERENCES esb_component_system (id)",
          "fk_channel": "REFERENCES esb_channel (id)"}
MYSQL = {"auto": "AUTO_INCREMENT", "prec": "(6)", "text": "longtext",
         "fk_system": "REFERENCES esb_component_system (id)", "fk_channel": "REFERENCES esb_channel (id)"}


def statements(generation: str, engine: str) -> list[str]:
    """The CREATE TABLE statements of one generation on ``sqlite`` or ``mysql``."""
    words = SQLITE if engine == "sqlite" else MYSQL
    if generation == "legacy":
        system = LEGACY_SYSTEM_SQLITE if engine == "sqlite" else LEGACY_MYSQL
        rest = (LEGACY_CHANNEL, *LEGACY_OTHERS)
    else:
        system = LATER_SQLITE if engine == "sqlite" else LATER_MYSQL
        rest = (LATER_CHANNEL, *LATER_OTHERS)
    suffix = "" if engine == "sqlite" else " DEFAULT CHARSET=utf8mb4"
    return [system] + [sql.format(**words) + suffix for sql in rest]

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

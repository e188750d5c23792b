"""Registrations in conf.py written as ``dict(...)``.

The ESB imports ``components/generic/apis/conf.py`` as Python, so ``dict(name="X", ...)``
is as good a SYSTEMS entry (and CHANNELS config) as ``{"name": "X", ...}``. esbgen reads both
alike wherever it reads conf.py; an entry built by other code, which it cannot read, makes
it refuse an edit of SYSTEMS in one line naming the file and line, the tree untouched.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from conftest import assert_one_line_refusal, edit_once
from test_no_trace import entries

CONF = Path("components/generic/apis/conf.py")
HELLO_LITERAL = b"""    {
        'name': 'HELLO',
        'label': 'Hello world',
        'remark': u'\xe7\xa4\xba\xe4\xbe\x8b\xe7\xb3\xbb\xe7\xbb\x9f: a sample custom system',
    },
"""
HELLO_DICT = """    dict(
        name='HELLO',
        label='Hello world',
        remark=u'示例系统: a sample custom system',
    ),
""".encode()


def as_dict_form(root: Path) -> None:
    edit_once(root / CONF, HELLO_LITERAL, HELLO_DICT)


def imported(root: Path) -> dict:
    """What the ESB gets: the module's names, by running it as Python."""
    return runpy.run_path(str(root / CONF))


def test_a_dict_form_entry_is_read_as_the_literal_one_is(esb_root):
    from esbgen.esb.tree import load_tree

    as_dict_form(esb_root)

    tree = load_tree(esb_root)
    assert tree.registered["HELLO"].fields == imported(esb_root)["SYSTEMS"][0]
    assert tree.unread_systems == []


def test_a_clone_appends_after_dict_entries_and_keeps_every_other_byte(esb_root, run_esbgen):
    as_dict_form(esb_root)
    (esb_root / CONF).write_bytes((esb_root / CONF).read_bytes().replace(
        HELLO_DICT, HELLO_DICT + b"    dict(name='BK_OTHER', label='Other', **{'remark': 'by hand'}),\n"))
    before = (esb_root / CONF).read_bytes()
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    after = (esb_root / CONF).read_bytes()
    added = b"    {'name': 'BK_SOPS_CE', 'label': 'BK_SOPS_CE', 'remark': 'Cloned from SOPS by esbgen'},\n"
    assert after == before.replace(b"'by hand'}),\n", b"'by hand'}),\n" + added)
    systems = imported(esb_root)["SYSTEMS"]
    assert [s["name"] for s in systems] == ["HELLO", "BK_OTHER", "BK_SOPS_CE"]
    assert systems[1] == {"name": "BK_OTHER", "label": "Other", "remark": "by hand"}


def test_a_system_already_registered_in_dict_form_is_not_registered_twice(esb_root, run_esbgen):
    edit_once(esb_root / CONF, HELLO_LITERAL, HELLO_LITERAL + b"    dict(name='BK_SOPS_CE', label='SOPS CE'),\n")
    before = (esb_root / CONF).read_bytes()
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    assert f"BK_SOPS_CE is already registered in {CONF}" in result.output
    assert (esb_root / CONF).read_bytes() == before
    assert [s["name"] for s in imported(esb_root)["SYSTEMS"]].count("BK_SOPS_CE") == 1


def test_register_takes_the_label_of_a_dict_form_entry(esb_root, run_esbgen, tmp_path, unblocked_db):
    import sqlite3

    from esb_schemas import LEGACY_SQLITE

    as_dict_form(esb_root)
    database = tmp_path / "esb.sqlite3"
    connection = sqlite3.connect(database)
    connection.execute(LEGACY_SQLITE)
    connection.commit()
    result = run_esbgen("register", "HELLO", "--esb-root", esb_root, "--database", database)
    assert result.exit_code == 0, result.stderr
    rows = connection.execute("SELECT name, label, remark FROM esb_component_system").fetchall()
    connection.close()
    assert rows == [("HELLO", "Hello world", "示例系统: a sample custom system")]


def test_channels_in_dict_form_are_read_as_the_esb_reads_them(esb_root):
    from esbgen.esb.tree import load_tree

    edit_once(esb_root / CONF, b"CHANNELS = [\n", b"CHANNELS = [\n"
              b"    dict(path='/hello/hello_dict/', comp_codename='generic.hello.hello_world'),\n"
              b"    ('/hello/hello_tuple/', dict(comp_codename='generic.hello.hello_world', is_hidden=True)),\n")
    tree = load_tree(esb_root)
    read = {(p.path, p.form, p.codename, p.config.get("is_hidden")) for p in tree.conf_channels}
    assert read == {("/hello/hello_dict/", "dict", "generic.hello.hello_world", None),
                    ("/hello/hello_tuple/", "tuple", "generic.hello.hello_world", True)}
    channels = imported(esb_root)["CHANNELS"]
    assert channels[1][1] == {"comp_codename": "generic.hello.hello_world", "is_hidden": True}


def test_sync_edition_reads_the_ces_dict_form_entries(esb_root, ce_root, run_esbgen):
    edit_once(ce_root / CONF, b"    {\n        'name': 'HELLO',",
              b"    dict(name='CE_EXTRA', label='CE extra'),\n    {\n        'name': 'HELLO',")
    as_dict_form(esb_root)
    original = (esb_root / CONF).read_bytes()
    result = run_esbgen("sync-edition", "--from", ce_root, "--esb-root", esb_root, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "the CE's SYSTEMS CE_EXTRA are not in it" in result.output  # HELLO is in both, in either form
    assert (esb_root / CONF).read_bytes() == original


@pytest.mark.parametrize("entry", [
    b"    dict(BASE, name='BK_SOPS_CE'),\n",
    b"    make_system('BK_SOPS_CE'),\n",
    b"    dict(name=NAME_FROM_ELSEWHERE),\n",
])
def test_an_entry_built_by_code_refuses_the_edit_in_one_line(esb_root, run_esbgen, entry):
    edit_once(esb_root / CONF, HELLO_LITERAL, HELLO_LITERAL + entry)
    where = (esb_root / CONF).read_bytes().split(b"\n").index(entry.rstrip(b"\n")) + 1
    before = entries(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert_one_line_refusal(result)
    assert f"{CONF}:{where}: esbgen cannot read this part of SYSTEMS" in result.stderr
    assert entries(esb_root) == before
    assert run_esbgen("list", "--esb-root", esb_root).exit_code == 0  # reading the tree still works


@pytest.mark.parametrize("change", [
    (b"SYSTEMS = [\n", b"SYSTEMS = tuple([\n", b"\n]\n\n# Custom channels", b"\n])\n\n# Custom channels"),
    (b"\n]\n\n# Custom channels", b"\n]\nSYSTEMS += [dict(name='LATE')]\n\n# Custom channels", None, None),
])
def test_systems_built_or_changed_by_code_refuses_the_edit_in_one_line(esb_root, run_esbgen, change):
    old, new, old2, new2 = change
    edit_once(esb_root / CONF, old, new)
    if old2:
        edit_once(esb_root / CONF, old2, new2)
    before = entries(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert_one_line_refusal(result)
    assert f"{CONF}:" in result.stderr and "cannot read this part of SYSTEMS" in result.stderr
    assert entries(esb_root) == before

"""Python 3's ast and tokenize place every edit where libcst does, and a clone of Python 3 code never imports libcst."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from esbgen.edit import python as pyedit
from esbgen.errors import EsbgenError
from esbgen.edit.python import PythonRewrites, Rewrite

REPO = Path(__file__).resolve().parents[1]
PYTHON_FILES = sorted(p for p in (REPO / "fixtures").rglob("*.py"))
CLONE_REWRITES = PythonRewrites(
    assignments={"SYSTEM_NAME": "SYSTEM_NAME"},
    strings=[
        Rewrite(re.compile(r"/o/(?P<old>bk_sops)(?=/|$)"), "app_code", "app path /o/bk_sops"),
        Rewrite(re.compile(r"(?P<old>e)"), "letter", "every e"),  # many hits, some inside non-ASCII text
        Rewrite(re.compile(r"(?P<old>de)"), "pair", "overlaps the e"),
    ],
    settings={"BK_SOPS_URL": "host_setting", "PAAS_HOST": "host_setting_2", "DEBUG": "debug"},
    package=(("components", "bk", "apisv2", "sops"), "system"),
)


def both(data: bytes, label: str, rewrites: PythonRewrites):
    """What each reader makes of a file (the edits, or the refusal); None where the fast one declines."""
    read = pyedit._read_tokens(data)
    if read is None:
        return None
    results = []
    for reader in (lambda: (read.text, pyedit._token_edits(read, label, rewrites)),
                   lambda: pyedit._libcst_edits(data, label, rewrites)):
        try:
            results.append(reader())
        except EsbgenError as error:
            results.append(str(error))
    return results


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_fixture_file_gets_the_same_edits_from_both_readers(path):
    found = both(path.read_bytes(), str(path), CLONE_REWRITES)
    if found is not None:
        assert found[0] == found[1]


CASES = [
    b'SYSTEM_NAME = "SOPS"\nURL = "/o/bk_sops/x"  # /o/bk_sops\n',
    b"SYSTEM_NAME = u'SOPS'\r\nX = settings.BK_SOPS_URL + '/o/bk_sops/'\r\n",
    b'SYSTEM_NAME = "SO" "PS"\n',  # refused by both: not one plain literal
    b'SYSTEM_NAME = "SO\\x50S"\n',  # refused by both: escapes
    b"SYSTEM_NAME = get_name()\n",
    b'SYSTEM_NAME = ("SOPS")\n',
    b'def f():\n    SYSTEM_NAME = """SOPS"""\n    return settings . DEBUG\n',
    "NAME = '标准运维 de /o/bk_sops/é'\nSYSTEM_NAME = 'SOPS'\nx = settings.PAAS_HOST\n".encode(),
    b"from components.bk.apisv2.sops.toolkit import configs\nimport components.bk.apisv2.sops.tools as t, os\n",
    b"from components.bk.apisv2 import sops\nfrom .toolkit import x\nimport components.bk.apisv2.sops\n",
    b"from components.bk.apisv2.sops.toolkit import (\n    a,\n    b,\n)\nx = (settings\n     .BK_SOPS_URL)\n",
    b"x = {'de': rb'/o/bk_sops/\\d', b'e': '''\nde\n'''}\n",
    b"print 'python 2'\n",  # the fast reader declines: libcst's grammar reads it
    b"x = f'/o/bk_sops/{y}'\n",  # declines: libcst reads inside f-strings
]


@pytest.mark.parametrize("data", CASES)
def test_edge_cases_get_the_same_edits_or_the_same_refusal(data):
    found = both(data, "case.py", CLONE_REWRITES)
    if found is not None:
        assert found[0] == found[1]


def test_a_utf8_coding_line_is_read_by_the_fast_reader():
    assert pyedit._read_tokens(b"# -*- coding: utf-8 -*-\nx = '\xc3\xa9'\n") is not None


def test_the_fast_reader_declines_what_it_could_place_differently():
    for data in (b"print 'x'\n", b"x = f'{a}'\n", b"\xef\xbb\xbfx = 1\n", b"x = 1\ry = 2\n", b"x = 1\x0c\n",
                 b"# -*- coding: latin-1 -*-\nx = '\xc3\xa9'\n"):
        assert pyedit._read_tokens(data) is None


LISTS = [
    "SYSTEMS = []\n", "SYSTEMS = [\n]\n", "SYSTEMS = [1]\n", "SYSTEMS = [1,]\n", "SYSTEMS = [\n  1,\n  2  # c\n]\n",
    "SYSTEMS = [\n  {'a': 1}\n  ,\n]  # x\n", "SYSTEMS = ([1])\n", "SYSTEMS = [1] ; X=1\n", "X = 1\n", "",
    "SYSTEMS = (1,)\n", "SYSTEMS = []\nSYSTEMS = []\n", "SYSTEMS = [u'\u00e9',\n (2)\n]\r\n",
    "# c\r\nSYSTEMS = [\r\n    1\r\n]\r\n", "if x:\n    SYSTEMS = []\n", "SYSTEMS = [ (1) ]\n",
    "SYSTEMS = [x for x in y]\n", "SYSTEMS = [\n    1,  # a\n    # b\n]",
]


@pytest.mark.parametrize("text", LISTS + [p.read_text(encoding="utf-8") for p in PYTHON_FILES if p.name == "conf.py"])
def test_both_readers_append_to_a_list_at_the_same_place(text):
    for name in ("SYSTEMS", "CHANNELS"):
        results = []
        for reader in (pyedit._list_by_tokens, pyedit._list_by_libcst):
            try:
                results.append(reader(text.encode("utf-8"), name, "conf.py"))
            except EsbgenError as error:
                results.append(str(error))
        if results[0] is not None:
            assert results[0] == results[1]


def test_a_parenthesised_last_element_keeps_its_parentheses():
    text = "SYSTEMS = [\n    (2)\n]\n"
    assert pyedit.append_to_list(text, "SYSTEMS", ["3"], "conf.py") == "SYSTEMS = [\n    (2),\n    3,\n]\n"
    assert pyedit.append_to_list(text.replace("\n", " ", 1), "SYSTEMS", ["3"], "conf.py") == "SYSTEMS = [     (2),\n    3,\n]\n"


def test_a_clone_of_python_3_code_does_not_import_libcst(esb_root):
    code = (
        "import sys\nfrom esbgen.cli import run\n"
        f"sys.argv = ['esbgen', '-q', 'clone', 'sops', '--as', 'bk_sops_ce', '--esb-root', {str(esb_root)!r}]\n"
        "status = run()\nprint(status, 'libcst' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["0", "False"]
    assert (esb_root / "components/bk/apisv2/bk_sops_ce/toolkit/configs.py").read_text(encoding="utf-8").count("BK_SOPS_CE") >= 1


TRICKY_SOURCES = [
    "x = 1\r\ny = 'é\\r'\rz = (1,\n  2)\n",  # CRLF, a lone CR, an escaped CR in a string, a multi-line node
    "a = {'k': '查询',\n     'v': [1,\r\n           2]}  # 注释\n",  # non-ASCII before and inside nodes (byte offsets)
    "s = '''one\ntwo\r\nthree'''\nt = f(\n    s)\n",  # a string spanning lines of both kinds
    "x = 1\x0cy = 2\n",  # a form feed is no line end for Python
]


def _with_nodes(text: str) -> bool:
    """Whether Python 3's parser reads the text into at least one node with a position."""
    try:
        return any(hasattr(node, "end_lineno") for node in ast.walk(ast.parse(text)))
    except SyntaxError:  # a Python 2 fixture
        return False


SEGMENT_SOURCES = [(str(p.relative_to(REPO)), p.read_text(encoding="utf-8")) for p in PYTHON_FILES] + [
    (f"tricky-{number}", text) for number, text in enumerate(TRICKY_SOURCES)]
SEGMENT_SOURCES = [(name, text) for name, text in SEGMENT_SOURCES if _with_nodes(text)]


def test_there_are_sources_to_compare_segments_of():
    assert len(SEGMENT_SOURCES) >= 40


@pytest.mark.parametrize("text", [text for _, text in SEGMENT_SOURCES], ids=[name for name, _ in SEGMENT_SOURCES])
def test_source_segments_are_the_standard_ones(text):
    """pyedit.source_segment gives what ast.get_source_segment gives, for every node of every fixture file."""
    nodes = [node for node in ast.walk(ast.parse(text)) if hasattr(node, "end_lineno")]
    assert [pyedit.source_segment(text, node) for node in nodes] == [ast.get_source_segment(text, node) for node in nodes]

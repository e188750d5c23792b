"""The two readings of a confapis file give the same entries, field by field, span by span.

esbgen reads confapis files with PyYAML's C loader (with the spans a clone's edits land at, or,
for a system a command only reads, without them); ruamel.yaml reads what that one hands on, and
is the reference here. Whatever the ESB would see (merge keys, anchors, duplicate keys, tags, odd
bytes), both must read the same: the same entries at the same lines with the same values and
the same spans, or the same one-line refusal.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from esbgen.esb import confapis
from esbgen.esb.confapis import channels_of, precise_channels, read_text
from esbgen.errors import EsbgenError

FIXTURE_FILES = sorted(p.relative_to(FIXTURES) for p in FIXTURES.rglob("*") if p.suffix in (".yaml", ".yml"))


def reading(root: Path, relpath: Path, positions: bool, precise: bool = False):
    """The entries as comparable data (with their spans), or the refusal's line.

    ``precise``: ruamel.yaml's reading, the reference; else esbgen's own.
    """
    try:
        if precise:
            text = read_text(root / relpath, str(relpath))
            channels = precise_channels(text, relpath, "prod", positions)
        else:
            channels = channels_of(root, relpath, "prod", positions)
    except EsbgenError as error:
        return ("refused", str(error))
    return [
        (str(c.file), c.line, c.run_mode, sorted(c.nested), [(k, type(v).__name__, v) for k, v in sorted(c.fields.items())],
         sorted(c.spans.items()))
        for c in channels
    ]


def read_fast(text: str) -> bool:
    """Whether the fast reader reads the text itself (rather than handing it to the precise one)."""
    return confapis._compose_fast(text) is not confapis._UNREAD


def test_there_are_fixture_files_to_compare():
    assert len(FIXTURE_FILES) >= 9


@pytest.mark.parametrize("relpath", FIXTURE_FILES, ids=str)
def test_fixture_files_read_the_same_both_ways(relpath):
    precise = reading(FIXTURES, relpath, True, precise=True)
    assert reading(FIXTURES, relpath, True) == precise
    without_spans = [entry[:-1] + ([],) for entry in precise]
    assert reading(FIXTURES, relpath, False) == without_spans
    assert precise and precise[0] != "refused"
    assert read_fast((FIXTURES / relpath).read_text(encoding="utf-8"))


def test_the_fast_reading_has_no_positions_and_the_precise_one_has():
    relpath = Path("esb/components/confapis/sops/sops.yaml")
    assert all(not c.spans for c in channels_of(FIXTURES, relpath, None, False))
    assert all(c.spans for c in channels_of(FIXTURES, relpath, None, True))


ENTRY = "  path: /v2/sops/{name}/\n  name: {name}\n  label: x\n  comp_codename: generic.v2.sops.sops_component\n"

# (id, text, whether the fast reader reads it itself)
HOSTILE = [
    ("merge-key", "- &base\n  method: GET\n  dest_http_method: GET\n  label: base\n- <<: *base\n  name: b\n  label: own\n", True),
    ("merge-list-first-wins", "- &a {method: GET, label: A}\n- &b {method: POST, label: B, x: 1}\n- <<: [*a, *b]\n  name: c\n", True),
    ("merge-nested", "- &a {method: GET}\n- &b {<<: *a, label: B}\n- <<: *b\n  name: n\n", True),
    ("merge-of-a-scalar", "- &a x\n- <<: *a\n  name: n\n", True),
    ("merge-list-with-a-scalar", "- &a {label: A}\n- <<: [*a, 5]\n  name: n\n", True),
    ("merge-tag", "- &a {label: A}\n- !!merge <<: *a\n  name: n\n", True),
    ("quoted-merge-is-a-key", "- &a {label: A}\n- '<<': *a\n  name: n\n", True),
    ("anchored-scalars", "- name: &n shared\n  label: *n\n  path: &p /v2/sops/shared/\n- name: other\n  path: *p\n", True),
    ("anchored-entry-twice", "- &e\n" + ENTRY.format(name="twice") + "- *e\n", True),
    ("duplicate-keys", "- name: first\n  name: second\n  path: /a/\n  path: /b/\n", True),
    ("duplicate-key-over-merge", "- &a {name: base}\n- <<: *a\n  name: own\n  name: last\n", True),
    ("nulls", "- a: ~\n  b: null\n  c: Null\n  d: NULL\n  e:\n  f: ''\n  g: 'null'\n  h: \"~\"\n  i: nULL\n", True),
    ("tags", "- a: !!str null\n  b: !!null ''\n  c: !custom value\n  d: !!int 12\n  e: !!binary aGVsbG8=\n"
              "  f: !!str\n  g: !<tag:example.com,2000:x> v\n  h: ! plain\n", True),
    ("yaml-11-and-12-values", "- a: yes\n  b: on\n  c: 0o17\n  d: 017\n  e: 1_000\n  f: 2001-12-14\n  g: .inf\n  h: 0x1F\n  i: 1:20\n", True),
    ("key-kinds", "- ~: null-key\n  1: int-key\n  true: bool-key\n  '': empty-key\n  ? explicit\n  : value\n", True),
    ("collection-keys", "- ? [a, b]\n  : list-key\n  ? {c: d}\n  : map-key\n  name: n\n", True),
    ("nested-values", "- name: n\n  comp_conf: {a: 1}\n  tags: [x, y]\n  dest_path:\n    - /o/a/\n", True),
    ("block-scalars", "- name: n\n  label: |\n    two\n    lines\n  description: >-\n    folded\n    text\n", True),
    ("flow-entries", "[{name: a, path: /v2/sops/a/}, {name: b, 'path': \"/v2/sops/b/\"}]\n", True),
    ("crlf-and-comments", "# head\r\n- name: a  # c\r\n  label: \"x  y\"   \r\n\r\n- name: b\r\n", True),
    ("yaml-directive", "%YAML 1.1\n---\n- name: a\n  is_hidden: yes\n", True),
    ("tag-directive", "%TAG !e! tag:example.com,2000:\n---\n- name: !e!x a\n", True),
    ("document-markers", "---\n- name: a\n...\n", True),
    ("byte-order-mark", "\ufeff- name: a\n  label: b\n", True),
    ("unicode", "- name: 查询\n  label: \"标准运维 \\u4e2d\"\n  x: '\u00e9'\n", True),
    ("escapes", "- name: \"a\\tb\\n\"\n  label: 'it''s'\n", True),
    ("empty-file", "", True),
    ("comments-only", "# nothing\n\n", True),
    ("empty-list", "[]\n", True),
    ("not-a-list", "name: a\n", True),
    ("entry-not-a-mapping", "- name: a\n- just text\n", True),
    ("tabs-indent", "- name: a\n\tlabel: b\n", False),
    ("tab-after-colon", "- name:\ta\n  label:\tb\n", True),
    ("two-documents", "- name: a\n---\n- name: b\n", False),
    ("unclosed-quote", "- name: \"a\n", False),
    ("bad-indent", "- name: a\n   label: b\n  x: c\n", False),
    ("undefined-alias", "- name: *nowhere\n", False),
    ("control-character", "- name: a\x07\n", False),
    ("deep-nesting", "- name: a\n  x: " + "[" * 300 + "]" * 300 + "\n", False),
    ("recursive-merge-alias", "- &a\n  name: a\n  <<: *a\n", True),
]


@pytest.mark.parametrize("text, fast_reads", [pytest.param(t, f, id=i) for i, t, f in HOSTILE])
def test_hostile_yaml_reads_the_same_both_ways(tmp_path, text, fast_reads):
    relpath = Path("components/confapis/sops/sops.yaml")
    (tmp_path / relpath).parent.mkdir(parents=True)
    (tmp_path / relpath).write_bytes(text.encode("utf-8"))
    precise = reading(tmp_path, relpath, True, precise=True)
    assert reading(tmp_path, relpath, True) == precise
    assert reading(tmp_path, relpath, False) == reading(tmp_path, relpath, False, precise=True)
    assert read_fast(text) is fast_reads  # each case above tests the reader it is meant to


@pytest.mark.parametrize("data", [b"- name: \xff\xfe\n", b"- name: caf\xe9\n", "- name: 查询\n".encode("gb18030")], ids=["ff", "latin-1", "gb18030"])
def test_non_utf8_is_refused_the_same_both_ways(tmp_path, data):
    relpath = Path("components/confapis/sops/sops.yaml")
    (tmp_path / relpath).parent.mkdir(parents=True)
    (tmp_path / relpath).write_bytes(data)
    fast = reading(tmp_path, relpath, True)
    assert fast == reading(tmp_path, relpath, False)
    assert fast[0] == "refused" and "not UTF-8" in fast[1]


def test_a_merge_reads_as_the_esb_reads_it(tmp_path):
    """The entries agree with what yaml.safe_load, the ESB's reader, makes of the file: a merged
    mapping fills in the keys an entry does not set, and of a key set twice the last one counts.
    (Of a list of merged mappings, PyYAML releases differ on which one wins; esbgen takes the
    first, as the merge key's definition says, and both readings do the same: see above.)"""
    import yaml

    text = HOSTILE[0][1] + "- &d {label: D, name: d}\n- <<: *d\n  name: own\n  name: last\n"
    relpath = Path("components/confapis/sops/sops.yaml")
    (tmp_path / relpath).parent.mkdir(parents=True)
    (tmp_path / relpath).write_text(text, encoding="utf-8")
    esb = yaml.safe_load(text)
    for channel, entry in zip(channels_of(tmp_path, relpath, None, False), esb, strict=True):
        assert channel.fields == {k: (None if v is None else str(v)) for k, v in entry.items()}


def nesting_by_definition(text: str) -> bool:
    """What _deeply_nested answers, spelled as plainly as it can be: more than 200 brackets open at
    once (a closing one with none open is ignored), or a line that starts with 400 of ' ', tab, '-'."""
    depth = 0
    for char in text:
        if char in "[{":
            depth += 1
            if depth > confapis.MAX_C_NESTING:
                return True
        elif char in "]}":
            depth = max(depth - 1, 0)
    return any(len(line) - len(line.lstrip(" \t-")) >= 2 * confapis.MAX_C_NESTING for line in text.split("\n"))


@pytest.mark.parametrize("text", [
    "[" * 201, "[" * 200, "{" * 150 + "x" + "[" * 51, "é" + "{" * 201 + "}", "]" * 50 + "[" * 200,
    "- " * 200 + "x", "- " * 199 + "x", "a:\n" + " " * 400 + "b", "a:\r\n" + "\t" * 399 + "b",
    "{bk_biz_id}\n" * 1000, "中文 [" * 201,
], ids=lambda text: f"{len(text)} chars")
def test_the_nesting_check_answers_as_its_definition(text):
    assert confapis._deeply_nested(text) == nesting_by_definition(text)


@given(st.text(alphabet=st.sampled_from(list("[]{} \t-\nxé中\r")), max_size=3000))
@settings(max_examples=300, deadline=None)
def test_the_nesting_check_answers_as_its_definition_on_any_text(text):
    assert confapis._deeply_nested(text) == nesting_by_definition(text)


MARKERS = ["- a\n---\n- b\n", "- a\r---\r- b\r", "- a\u2028---\u2028- b\n", "# c\n  # d\n%YAML 1.1\n--- # e\n- a\n",
           "\ufeff---\n- a\n---\n- b\n", "- |\n  ---\n  a\n", "- |\n a\n---\n", "- a\n--- \n- b\n", "- a ---\n- ...\n",
           "- 'a\n---\n b'\n", "- a: &x 1\n  b: &x 2\n", "- a\n...\n", "- a\n...\n---\n- b\n", "a: b\n%TAG ! x\n---\n- b\n"]


@pytest.mark.parametrize("text", [t for _, t, _ in HOSTILE] + MARKERS)
def test_the_parse_check_answers_as_the_composer(text):
    assert confapis.composes(text) is (confapis._compose_fast(text) is not confapis._UNREAD)


@given(st.lists(st.sampled_from(["- ", "a", ": ", "\n", "  ", "---", "...", "&a ", "*a", "[", "]", "{", "}", ", ", "'",
                                 "#", "|", ">", "%YAML 1.1", "\r", "\u2028", "? ", "\t", "\ufeff"]), max_size=24).map("".join))
@settings(max_examples=1000, deadline=None)
def test_the_parse_check_answers_as_the_composer_on_any_text(text):
    assert confapis.composes(text) is (confapis._compose_fast(text) is not confapis._UNREAD)

"""The diffs plans show: the same text GNU diff and difflib would give, in time linear in the file."""

from __future__ import annotations

import difflib

from hypothesis import given, settings
from hypothesis import strategies as st

from esbgen.fsutil import _lines, unified_diff


def difflib_diff(before: bytes | None, after: bytes | None, label: str) -> str:
    old, new = _lines(before), _lines(after)
    lines = difflib.unified_diff(old, new, fromfile=f"a/{label}" if before is not None else "/dev/null",
                                 tofile=f"b/{label}" if after is not None else "/dev/null", lineterm="")
    return "\n".join(line.rstrip("\n") for line in lines)


def test_a_retarget_of_every_channel_reads_as_difflib_writes_it():
    entries = [f"- path: /v2/sops/op_{n}/\n  name: op_{n}\n  dest_path: /o/bk_sops/op_{n}/\n" for n in range(300)]
    before = "".join(entries).encode()
    after = before.replace(b"/o/bk_sops/", b"/o/bk_sops_ce/")
    diff = unified_diff(before, after, "components/confapis/sops/sops.yaml")
    assert diff == difflib_diff(before, after, "components/confapis/sops/sops.yaml")
    assert diff.count("\n-  dest_path: /o/bk_sops/") == 300 and diff.count("\n+  dest_path: /o/bk_sops_ce/") == 300


def test_new_emptied_and_line_end_changes_have_gnu_headers():
    assert unified_diff(None, b"a\nb\n", "f").splitlines()[:3] == ["--- /dev/null", "+++ b/f", "@@ -0,0 +1,2 @@"]
    assert unified_diff(b"x\n", b"", "f").splitlines()[2] == "@@ -1 +0,0 @@"
    assert "-a\\r" in unified_diff(b"a\r\nb", b"a\nb", "f")
    assert unified_diff(b"same\n", b"same\n", "f") == ""


LINES = st.lists(st.sampled_from(["a\n", "b\n", "c\n", "d\r\n"]), max_size=12)


@settings(max_examples=200, deadline=None)
@given(LINES, LINES)
def test_the_hunks_rebuild_the_new_file_from_the_old(old, new):
    """Whatever the lines, applying the diff's hunks to the old file gives the new one, as patch would."""
    diff = unified_diff("".join(old).encode(), "".join(new).encode(), "f").splitlines()
    shown_old = [line.replace("\r\n", "\\r") .rstrip("\n") for line in old]
    shown_new = [line.replace("\r\n", "\\r").rstrip("\n") for line in new]
    rebuilt, position = [], 0
    for line in diff[2:]:
        if line.startswith("@@"):
            start, _, length = line.split()[1][1:].partition(",")
            start = int(start) - (1 if length != "0" else 0)
            rebuilt.extend(shown_old[position:start])
            position = start
        elif line[0] in " -":
            assert shown_old[position] == line[1:]
            position += 1
            if line[0] == " ":
                rebuilt.append(line[1:])
        else:
            assert line[0] == "+"
            rebuilt.append(line[1:])
    rebuilt.extend(shown_old[position:])
    assert rebuilt == shown_new

"""A clone with many verbatim files has them copied by a helper process (esbgen/copier.py) while it
is checked: the same bytes and modes, hashes the journal can trust, nothing left behind when the
run fails, is interrupted or is killed."""

from __future__ import annotations

import filecmp
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import snapshot
from esbgen import journal
from esbgen.copier import BackgroundCopy
from esbgen.errors import EsbgenError
from esbgen.template import HELPER_FROM

CLONE = ["clone", "sops", "--as", "bk_sops_ce"]
DOCS = Path("components/confapis/sops/apidocs/zh_hans")
EXTRA = HELPER_FROM + 100  # docs beyond the fixture's, so that the helper copies them


def esbgen(root: Path, *args: str, interrupt: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ESBGEN_LOCK_TIMEOUT": "30"}
    env.pop("ESBGEN_INTERRUPT_AT", None)
    if interrupt:
        env["ESBGEN_INTERRUPT_AT"] = interrupt
    return subprocess.run([sys.executable, "-m", "esbgen", *args, "--esb-root", str(root)], env=env,
                          capture_output=True, text=True, timeout=120)


def add_docs(root: Path, count: int) -> None:
    """Docs no channel names (the ESB shows them to nobody, and a clone copies them all the same)."""
    for number in range(count):
        path = root / DOCS / f"extra_{number:05d}.md"
        path.write_bytes(f"# 文档 {number}\r\n{{{{ common_args_desc }}}}\n".encode())
        if number % 7 == 0:
            os.chmod(path, 0o600)


def helpers_of(pid: int) -> list[int]:
    """The copier helpers whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if b"copier.py" in cmdline and (pid == 0 or parent == pid):
            found.append(int(entry))
    return found


def running(pid: int) -> bool:
    """Whether a process is alive (a zombie, dead and not yet reaped, has an empty command line)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def test_the_helper_copies_every_file_with_its_bytes_and_mode_and_undo_trusts_its_hashes(esb_root):
    add_docs(esb_root, EXTRA)
    done = esbgen(esb_root, *CLONE)
    assert done.returncode == 0, done.stderr
    source, clone = esb_root / "components/confapis/sops/apidocs", esb_root / "components/confapis/bk_sops_ce/apidocs"
    compared = filecmp.dircmp(source, clone)
    assert not compared.left_only and not compared.right_only
    for language in ("en", "zh_hans"):
        for name in os.listdir(source / language):
            assert filecmp.cmp(source / language / name, clone / language / name, shallow=False)
            assert os.stat(source / language / name).st_mode == os.stat(clone / language / name).st_mode
    assert esbgen(esb_root, "check", "bk_sops_ce").returncode == 0
    assert not any(p.name == "copied.txt" for p in esb_root.rglob("*"))
    # undo compares the tree with the fingerprint the journal took from the helper's hashes
    undone = esbgen(esb_root, "undo")
    assert undone.returncode == 0, undone.stderr
    assert not clone.exists()


def test_a_doc_changed_after_the_clone_is_seen_by_undo(esb_root):
    add_docs(esb_root, EXTRA)
    assert esbgen(esb_root, *CLONE).returncode == 0
    changed = esb_root / "components/confapis/bk_sops_ce/apidocs/zh_hans/extra_00003.md"
    changed.write_bytes(changed.read_bytes() + b"an operator's line\n")
    undone = esbgen(esb_root, "undo")
    assert undone.returncode != 0
    assert "changed" in undone.stderr and changed.exists()


@pytest.mark.parametrize("point", ["phase:rendering:300", "phase:checking"])
def test_ctrl_c_while_the_helper_copies_changes_nothing_and_leaves_no_helper(esb_root, point):
    add_docs(esb_root, EXTRA)
    before = snapshot(esb_root)
    done = esbgen(esb_root, *CLONE, interrupt=point)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == [
        "esbgen: error: interrupted (SIGINT) before anything was applied: nothing was changed"]
    assert snapshot(esb_root) == before
    assert helpers_of(0) == []


def test_a_killed_esbgen_takes_its_helper_with_it(esb_root):
    add_docs(esb_root, 6 * HELPER_FROM)
    env = {**os.environ, "ESBGEN_LOCK_TIMEOUT": "30"}
    env.pop("ESBGEN_INTERRUPT_AT", None)
    process = subprocess.Popen([sys.executable, "-m", "esbgen", *CLONE, "--esb-root", str(esb_root)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not helpers_of(process.pid) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    helpers = helpers_of(process.pid)
    if not helpers:
        process.wait()
        pytest.fail("the clone finished before its helper was seen; make the tree bigger")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 5
    while any(running(pid) for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(running(pid) for pid in helpers)
    again = esbgen(esb_root, *CLONE)  # the killed run's scratch is cleared and the clone goes through
    assert again.returncode == 0, again.stderr


def test_a_file_the_helper_cannot_read_fails_in_one_line(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.md").write_bytes(b"a")
    with BackgroundCopy([[str(tmp_path / "in"), str(tmp_path / "out"), ["a.md", "gone.md"]]],
                        str(tmp_path / "copied.txt"), 2) as copying:
        with pytest.raises(EsbgenError) as raised:
            copying.wait()
    assert str(raised.value) == f"copying {tmp_path / 'in' / 'gone.md'} failed: No such file or directory"


def test_the_helper_reports_what_remember_written_would_have_noted(tmp_path):
    (tmp_path / "in").mkdir()
    names = ["a.md", "b.md", "名字.md"]
    for name in names:
        (tmp_path / "in" / name).write_bytes(name.encode() * 100)
    with BackgroundCopy([[str(tmp_path / "in"), str(tmp_path / "out" / "x"), [names[0], [names[1], "b2.md"], names[2]]]],
                        str(tmp_path / "copied.txt"), 3) as copying:
        written = copying.wait()
    for source, target in zip(names, ["a.md", "b2.md", "名字.md"]):
        info = os.stat(tmp_path / "out" / "x" / target)
        key = journal._stat_key(info)
        assert written[key] == hashlib.sha256((tmp_path / "in" / source).read_bytes()).hexdigest().encode()


def test_a_path_that_is_not_utf8_reaches_the_helper_as_it_is(tmp_path):
    folder = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9")
    os.mkdir(folder)
    Path(folder, "a.md").write_bytes(b"a")
    with BackgroundCopy([[folder, folder + "/out", ["a.md"]]], str(tmp_path / "copied.txt"), 1) as copying:
        copying.wait()
    assert Path(folder, "out", "a.md").read_bytes() == b"a"

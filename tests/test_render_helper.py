"""A clone renders and copies in its helper process (esbgen/render_helper.py) while it is read and
checked: the same bytes and modes as cookiecutter's own rendering, hashes the journal can trust,
the same clone where no helper can work, and nothing left behind when the run is refused, fails,
is interrupted or is killed."""

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

from conftest import esbgen_process as esbgen, snapshot
from faultkit import with_faults
from esbgen import journal
from esbgen import render_helper
from esbgen.errors import EsbgenError
from esbgen.render_helper import RenderHelper

CLONE = ["clone", "sops", "--as", "bk_sops_ce"]
DOCS = Path("components/confapis/sops/apidocs/zh_hans")
EXTRA = 1100  # docs beyond the fixture's: a copy that takes the helper a while


def add_docs(root: Path, count: int) -> None:
    """Docs no channel names (the ESB shows them to nobody, and a clone copies them all the same)."""
    for number in range(count):
        path = root / DOCS / f"extra_{number:05d}.md"
        path.write_bytes(f"# 文档 {number}\r\n{{{{ common_args_desc }}}}\n".encode())
        if number % 7 == 0:
            os.chmod(path, 0o600)


def helpers_of(pid: int) -> list[int]:
    """The render helpers whose parent is ``pid`` (any parent: 0)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            name = Path(f"/proc/{entry}/comm").read_bytes().rstrip(b"\n")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if name == render_helper.PROCESS_NAME and (pid == 0 or parent == pid):
            found.append(int(entry))
    return found


def alive_in_session(session: int) -> list[int]:
    """The live processes (not zombies) of session ``session``: what a run started there and left running.

    Another run's helpers (a second suite beside this one) are in sessions of their own, and are not counted."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":  # fields after the name: state, ppid, pgrp, session
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
    (change,) = journal.journals(esb_root)
    folders = [op for op in change.data["ops"] if op["op"] == "tree"]
    assert len(folders) == 2  # the helper fingerprinted both, as the journal reads them from disk
    for op in folders:
        assert op["fingerprint"] == journal.tree_fingerprint(esb_root / op["path"])
    # undo compares the tree with the fingerprint the helper took
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
    env = with_faults({**os.environ, "ESBGEN_LOCK_TIMEOUT": "30", "ESBGEN_INTERRUPT_AT": point})
    # a session of its own: what this run leaves running is told apart from any other run's on the machine
    run = subprocess.Popen([sys.executable, "-m", "esbgen", *CLONE, "--esb-root", str(esb_root)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert err.strip().splitlines() == [
        "esbgen: error: interrupted (SIGINT) before anything was applied: nothing was changed"]
    assert snapshot(esb_root) == before
    assert alive_in_session(run.pid) == []  # esbgen waits for its helper to be gone before it exits


def test_a_killed_esbgen_takes_its_helper_with_it(esb_root):
    add_docs(esb_root, 6000)
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
    with RenderHelper() as helper:
        helper.copy([[str(tmp_path / "in"), str(tmp_path / "out"), ["a.md", "gone.md"]]], str(tmp_path))
        with pytest.raises(EsbgenError) as raised:
            helper.finish()
    assert str(raised.value) == f"copying {tmp_path / 'in' / 'gone.md'} failed: No such file or directory"


def test_a_template_the_helper_cannot_render_fails_in_one_line(tmp_path):
    with RenderHelper() as helper:
        helper.render(str(tmp_path / "no-template"), {}, str(tmp_path / "out"))
        with pytest.raises(EsbgenError) as raised:
            helper.wait_rendered()
    assert str(raised.value) == f"rendering the template failed: No such file or directory: {tmp_path / 'no-template' / 'cookiecutter.json'}"


def test_the_helper_reports_what_remember_written_would_have_noted(tmp_path):
    (tmp_path / "in").mkdir()
    names = ["a.md", "b.md", "名字.md"]
    for name in names:
        (tmp_path / "in" / name).write_bytes(name.encode() * 100)
    with RenderHelper() as helper:
        helper.copy([[str(tmp_path / "in"), str(tmp_path / "out" / "x"), [names[0], [names[1], "b2.md"], names[2]]]],
                    str(tmp_path))
        assert helper.finish() == {}  # no fingerprint asked for
        written = helper.written()
    assert len(written) == 3
    for source, target in zip(names, ["a.md", "b2.md", "名字.md"]):
        key = journal._stat_key(os.stat(tmp_path / "out" / "x" / target))
        assert written[key] == hashlib.sha256((tmp_path / "in" / source).read_bytes()).hexdigest().encode()


def test_the_helpers_fingerprints_are_the_journals_of_what_is_on_disk(tmp_path, monkeypatch):
    real_send = RenderHelper._send

    def send(self, message):  # as from an editable install: esbgen is found by a finder, not on the path
        if message["kind"] == "path":
            message = {**message, "path": [p for p in message["path"] if p and not os.path.isdir(os.path.join(p, "esbgen"))]}
        real_send(self, message)

    monkeypatch.setattr(RenderHelper, "_send", send)
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name, mode in (("a.md", 0o644), ("b.md", 0o600), ("sub/c.md", 0o755)):
        (tmp_path / "in" / name).write_bytes(name.encode() * 300)
        os.chmod(tmp_path / "in" / name, mode)
    out = tmp_path / "out"
    with RenderHelper() as helper:
        helper.copy([[str(tmp_path / "in"), str(out / "x"), ["a.md", ["b.md", "b2.md"]]],
                     [str(tmp_path / "in" / "sub"), str(out / "x" / "deeper"), ["c.md"]]], str(tmp_path))
        (out / "x" / "empty").mkdir(parents=True)  # a folder with nothing copied into it counts too
        (out / "x" / "rendered.txt").write_bytes(b"a file the helper did not copy")
        helper.fingerprint([str(out / "x"), str(out / "missing")], str(tmp_path))
        found = helper.finish()
    monkeypatch.setattr(journal, "_WRITTEN", {})
    monkeypatch.setattr(journal, "_COPIED", [])
    assert found == {str(out / "x"): journal.tree_fingerprint(out / "x"), str(out / "missing"): None}


def test_a_copied_file_the_render_writes_again_is_fingerprinted_as_it_is_on_disk(tmp_path, monkeypatch):
    # The helper fingerprints its copies from what it noted when it wrote them, but for the files
    # esbgen says the render writes: one written over after its copy is looked at again.
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.md").write_bytes(b"as copied\n")
    (tmp_path / "in" / "b.md").write_bytes(b"copied only\n")
    template = tmp_path / "template"
    (template / "{{cookiecutter.name}}").mkdir(parents=True)
    (template / "cookiecutter.json").write_text('{"name": "x"}', encoding="utf-8")
    (template / "{{cookiecutter.name}}" / "a.md").write_text("rendered {{ cookiecutter.name }}\n", encoding="utf-8")
    out = tmp_path / "out"
    with RenderHelper() as helper:
        helper.copy([[str(tmp_path / "in"), str(out / "x"), ["a.md", "b.md"]]], str(tmp_path))  # done before the render
        helper.render(str(template), {"name": "x"}, str(out))
        helper.wait_rendered()
        helper.fingerprint([str(out / "x")], str(tmp_path), [str(out / "x" / "a.md")])
        found = helper.finish()
    assert (out / "x" / "a.md").read_bytes() == b"rendered x\n"
    monkeypatch.setattr(journal, "_WRITTEN", {})
    monkeypatch.setattr(journal, "_COPIED", [])
    assert found == {str(out / "x"): journal.tree_fingerprint(out / "x")}


def test_a_path_that_is_not_utf8_reaches_the_helper_as_it_is(tmp_path):
    folder = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9")
    os.mkdir(folder)
    Path(folder, "a.md").write_bytes(b"a")
    with RenderHelper() as helper:
        helper.copy([[folder, folder + "/out", ["a.md"]]], str(tmp_path))
        helper.finish()
    assert Path(folder, "out", "a.md").read_bytes() == b"a"


def clone_files(root: Path) -> dict[str, tuple[bytes, int]]:
    clone = {}
    for folder in ("components/bk/apisv2/bk_sops_ce", "components/confapis/bk_sops_ce"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                clone[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_mode)
    return clone


@pytest.mark.parametrize("how", ["helper-cannot-import-cookiecutter", "no-helper-process", "helper-ends-at-once"])
def test_where_no_helper_can_work_the_clone_is_rendered_here_and_the_same(tmp_path, esb_root, run_esbgen, monkeypatch, how):
    add_docs(esb_root, 30)
    reference = tmp_path / "reference"
    import shutil

    shutil.copytree(esb_root, reference, symlinks=True)
    assert run_esbgen(*CLONE, "--esb-root", reference).exit_code == 0
    if how == "no-helper-process":
        monkeypatch.setattr(render_helper.sys, "executable", str(tmp_path / "no-python"))
    elif how == "helper-ends-at-once":  # a Python that starts and cannot run the helper
        broken = tmp_path / "broken-python"
        broken.write_text("#!/bin/sh\necho 'no such option: -I' >&2\nexit 2\n")
        broken.chmod(0o755)
        monkeypatch.setattr(render_helper.sys, "executable", str(broken))
    else:
        real_send = RenderHelper._send

        def send(self, message):
            if message["kind"] == "path":
                message = {**message, "path": [str(tmp_path / "nowhere")]}
            real_send(self, message)

        monkeypatch.setattr(RenderHelper, "_send", send)
    result = run_esbgen(*CLONE, "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    assert clone_files(esb_root) == clone_files(reference)
    assert helpers_of(os.getpid()) == []


def test_a_refused_clone_leaves_no_helper(esb_root, run_esbgen):
    result = run_esbgen("clone", "nosuch", "--as", "bk_x", "--esb-root", esb_root)
    assert result.exit_code != 0
    assert helpers_of(os.getpid()) == []


def test_a_path_entry_that_is_not_text_does_not_stop_the_helper(tmp_path, monkeypatch):
    """A tool may put a Path (or bytes) into sys.path; the helper gets it as text and still renders."""
    monkeypatch.setattr(sys, "path", [*sys.path, tmp_path / "a-path-object", os.fsencode(str(tmp_path / "bytes"))])
    with RenderHelper() as helper:
        helper.render(str(tmp_path / "no-template"), {}, str(tmp_path / "out"))
        with pytest.raises(EsbgenError, match="^rendering the template failed"):
            helper.wait_rendered()  # cookiecutter was imported: the failure is the missing template's


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
def test_a_copy_has_the_source_bytes_and_mode_whatever_the_umask(tmp_path, monkeypatch, umask):
    """copy_bytes creates a file with its mode where the umask lets it, and sets it where not."""
    modes = [0o644, 0o600, 0o755, 0o666, 0o640, 0o444, 0o1755]
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    for number, mode in enumerate(modes):
        path = tmp_path / "in" / f"{number}.md"
        path.write_bytes(b"x" * (number * 1500))  # empty, and one read's size and more
        os.chmod(path, mode)
    monkeypatch.setattr(render_helper, "_UMASK", None)
    previous = os.umask(umask)
    try:
        for number in range(len(modes)):
            info, data = render_helper.copy_bytes(str(tmp_path / "in" / f"{number}.md"), str(tmp_path / "out" / f"{number}.md"))
            assert info == os.stat(tmp_path / "out" / f"{number}.md")
            assert data == (tmp_path / "in" / f"{number}.md").read_bytes()
    finally:
        os.umask(previous)
    for number, mode in enumerate(modes):
        copy = tmp_path / "out" / f"{number}.md"
        assert copy.read_bytes() == (tmp_path / "in" / f"{number}.md").read_bytes()
        assert copy.stat().st_mode & 0o7777 == mode, (oct(mode), oct(umask))


def test_a_copy_over_a_file_there_replaces_its_bytes_and_mode(tmp_path):
    source, destination = tmp_path / "a.md", tmp_path / "b.md"
    source.write_bytes(b"new")
    os.chmod(source, 0o640)
    destination.write_bytes(b"an older and longer text")
    os.chmod(destination, 0o600)
    render_helper.copy_bytes(str(source), str(destination))
    assert destination.read_bytes() == b"new" and destination.stat().st_mode & 0o7777 == 0o640

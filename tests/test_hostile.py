"""Hostile input: each is refused in one clear line (exit 1, or 2 for the command line) with the tree untouched,
or, where it is harmless data (a Jinja-looking label, a YAML bomb in an extra field), kept literally."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from conftest import snapshot
from esbgen.esb.confapis import compose

SOPS_YAML = Path("components/confapis/sops/sops.yaml")
CONF = Path("components/generic/apis/conf.py")


def refused(result, code: int, message: str) -> None:
    assert result.exit_code == code, (result.output, result.stderr)
    assert result.stderr.startswith("esbgen: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.output


BAD_NAMES = ["..", "../x", "a/b", "/etc", "x\x00y", "x\ny", "x\r", "{{ 7*7 }}", "{% raw %}", "bk_{{cookiecutter.system}}", ""]


@pytest.mark.parametrize("bad", BAD_NAMES)
@pytest.mark.parametrize("where", ["--as", "source", "--app-code"])
def test_bad_names_and_app_codes_are_refused_and_change_nothing(esb_root, run_esbgen, bad, where):
    before = snapshot(esb_root)
    args = {"--as": ["sops", "--as", bad], "source": [bad, "--as", "bk_sops_ce"],
            "--app-code": ["sops", "--as", "bk_sops_ce", "--app-code", bad]}[where]
    result = run_esbgen("clone", *args, "--esb-root", esb_root)
    refused(result, 2, "esbgen: error: ")
    assert snapshot(esb_root) == before
    assert not (esb_root / ".esbgen" / "journal").exists()


@pytest.mark.parametrize("label", ["{{ 7*7 }}", "{{ cookiecutter.system }} {% raw %}{% endraw %}{# x #}",
                                   "it's \"quoted\" \\n and \\", "标准运维 ${x} {x}"])
def test_a_label_is_stored_literally_never_rendered(esb_root, run_esbgen, label):
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--label", label, "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    text = (esb_root / CONF).read_text(encoding="utf-8")
    module = ast.parse(text)
    systems = next(n.value for n in module.body if isinstance(n, ast.Assign) and n.targets[0].id == "SYSTEMS")
    entry = ast.literal_eval(systems.elts[-1])
    assert entry["name"] == "BK_SOPS_CE" and entry["label"] == label
    if label == "{{ 7*7 }}":
        assert "'label': '{{ 7*7 }}'" in text and "49" not in text


@pytest.mark.parametrize("label", ["two\nlines", "nul\x00", "cr\r", "   "])
def test_a_label_that_is_not_one_line_of_text_is_refused(esb_root, run_esbgen, label):
    before = snapshot(esb_root)
    refused(run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--label", label, "--esb-root", esb_root), 2, "--label")
    assert snapshot(esb_root) == before


@pytest.fixture
def outside(tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.md").write_text("SECRET of another tree\n")
    (folder / "broken.py").write_text("def (:\n")  # parsed only if a link were followed
    (folder / "evil.yaml").write_text("- path: /v2/sops/evil/\n  name: evil\n")
    return folder


@pytest.mark.parametrize(
    "link, points_to",
    [
        ("components/confapis/sops/apidocs/en/evil.md", "secret.md"),
        ("components/bk/apisv2/sops/linked", "."),
        ("components/bk/apisv2/sops/toolkit/linked.py", "broken.py"),
        ("components/confapis/sops/extra.yaml", "evil.yaml"),
    ],
)
def test_a_link_in_the_source_pointing_outside_is_never_followed(esb_root, run_esbgen, outside, link, points_to):
    os.symlink(outside / points_to, esb_root / link)
    before = snapshot_without_following(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    refused(result, 1, f"{link} is a symbolic link; esbgen does not clone links")
    assert snapshot_without_following(esb_root) == before
    assert "SECRET" not in result.output + result.stderr
    checked = run_esbgen("check", "sops", "--esb-root", esb_root)  # reading the tree does not follow it either
    assert "broken.py" not in checked.output + checked.stderr and "evil" not in checked.output


def snapshot_without_following(root: Path) -> dict[str, str]:
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".esbgen"]
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            state[str(path.relative_to(root))] = os.readlink(path) if path.is_symlink() else (
                "dir" if path.is_dir() else path.read_bytes().hex() if path.is_file() else oct(path.lstat().st_mode))
    return state


def test_a_source_system_that_is_a_link_is_not_a_system(esb_root, run_esbgen, outside):
    os.symlink(outside, esb_root / "components/confapis/evil")
    refused(run_esbgen("clone", "evil", "--as", "bk_evil", "--esb-root", esb_root), 1, "unknown source system 'evil'")


@pytest.mark.parametrize("group", ["bk/apisv2", "confapis"])
def test_a_target_that_is_a_link_is_never_replaced(esb_root, run_esbgen, outside, group):
    os.symlink(outside, esb_root / "components" / group / "bk_sops_ce")
    listing = sorted(p.name for p in outside.iterdir())
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--force", "--esb-root", esb_root)
    refused(result, 1, f"components/{group}/bk_sops_ce is a symbolic link")
    assert sorted(p.name for p in outside.iterdir()) == listing


def test_a_state_folder_that_is_a_link_is_refused(esb_root, run_esbgen, outside):
    os.symlink(outside, esb_root / ".esbgen")
    before = snapshot(esb_root)
    refused(run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root), 1, ".esbgen is not a folder")
    assert snapshot(esb_root) == before
    assert sorted(p.name for p in outside.iterdir()) == ["broken.py", "evil.yaml", "secret.md"]


def billion_laughs(levels: int = 10) -> str:
    """Nine aliases a level: expanded, the last one would be 9**levels strings."""
    lines = ['  lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"  lol{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_a_yaml_bomb_is_never_expanded_and_is_cloned_byte_for_byte(esb_root, run_esbgen):
    path = esb_root / SOPS_YAML
    text = path.read_text(encoding="utf-8")
    anchor = "  dest_http_method: GET\n"
    bombed = text.replace(anchor, anchor + billion_laughs(), 1)
    path.write_text(bombed, encoding="utf-8")
    assert run_esbgen("check", "sops", "--esb-root", esb_root).exit_code == 0
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    assert result.exit_code == 0, result.stderr
    cloned = (esb_root / "components/confapis/bk_sops_ce/bk_sops_ce.yaml").read_text(encoding="utf-8")
    assert billion_laughs() in cloned
    assert cloned.replace("bk_sops_ce", "sops").replace("bk-sops-ce", "bk_sops") == bombed


def test_both_yaml_readers_keep_aliases_as_references():
    for bom in ("", "\ufeff"):  # libyaml, and ruamel.yaml (which reads files starting with a BOM)
        document = compose(bom + "- name: x\n" + billion_laughs(12), "bomb.yaml")
        last = document.value[0].value[-1][1]
        assert last.value[0] is last.value[8]  # one node, referenced nine times


def test_a_file_above_the_size_limit_is_refused_without_reading_it_all(esb_root, run_esbgen, monkeypatch):
    monkeypatch.setenv("ESBGEN_MAX_YAML_BYTES", "1048576")
    huge = esb_root / "components/confapis/itsm/huge.yaml"
    with open(huge, "wb") as handle:
        handle.truncate(8 * 1024**3)  # 8 GiB, sparse
    before = snapshot_sizes(esb_root)
    result = run_esbgen("check", "--esb-root", esb_root)
    refused(result, 1, "components/confapis/itsm/huge.yaml: file is larger than 1 MiB; refusing to read it")
    refused(run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root), 1, "larger than 1 MiB")
    assert snapshot_sizes(esb_root) == before


def snapshot_sizes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file() and ".esbgen" not in p.parts}


def test_the_size_limit_is_the_same_for_the_source_itself(esb_root, run_esbgen, monkeypatch):
    monkeypatch.setenv("ESBGEN_MAX_YAML_BYTES", "2048")
    before = snapshot(esb_root)
    refused(run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root), 1,
            f"{SOPS_YAML}: file is larger than 2048 bytes; refusing to read it")
    assert snapshot(esb_root) == before


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda t: t.replace("  name: start_task", "  name: " + "[" * 1200 + "]" * 1200, 1), "malformed YAML: nested too deeply"),
        # deep enough to overflow a C parser's stack: must be an error, never a crash
        (lambda t: t.replace("  name: start_task", "  name: " + "[" * 200_000 + "]" * 200_000, 1), "malformed YAML: nested too deeply"),
        (lambda t: t.replace("查询模板列表", "查询\x00模板", 1), "sops.yaml:11: malformed YAML: unacceptable character #x0000"),
        (lambda t: t.replace("  name: start_task", "  name: *nowhere", 1), "malformed YAML"),
        (lambda t: t.replace("  name: start_task", "  name: &a [*a]", 1), "required field 'name' holds a list or mapping, not text"),
    ],
    ids=["deep nesting", "very deep nesting", "NUL byte", "unknown alias", "recursive alias"],
)
def test_malformed_yaml_is_one_clear_line(esb_root, run_esbgen, damage, message):
    path = esb_root / SOPS_YAML
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    before = snapshot(esb_root)
    result = run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root)
    refused(result, 1, message)
    assert snapshot(esb_root) == before


def test_a_yaml_file_that_is_not_utf8_is_refused(esb_root, run_esbgen):
    path = esb_root / SOPS_YAML
    path.write_bytes(path.read_bytes().replace("查询模板列表".encode(), "查询模板列表".encode("gbk"), 1))
    refused(run_esbgen("clone", "sops", "--as", "bk_sops_ce", "--esb-root", esb_root), 1, f"{SOPS_YAML}: not UTF-8 text")


def _non_utf8_doc(root: Path) -> None:
    os.close(os.open(os.fsencode(root / SOPS_YAML.parent / "apidocs/en") + b"/\xff.md", os.O_CREAT | os.O_WRONLY))


def _linked_source(root: Path) -> None:
    real = root.parent / "itsm-elsewhere"
    (root / "components/confapis/itsm").rename(real)
    (root / "components/confapis/itsm").symlink_to(real)


@pytest.mark.parametrize(
    "args, prepare, code, message",
    [
        (["clone", "sops", "--as", "bk_sops_ce"], _non_utf8_doc, 1, "the file name is not UTF-8"),
        (["clone", "itsm", "--as", "itsm_ce"], _linked_source, 1, "components/confapis/itsm is a symbolic link"),
        (["clone", "sops", "--as", "bk_sops_ce_" + "x" * 30], None, 2, "longer than 32 characters; give --app-code"),
        (["clone", "sops", "--as", "bk_sops_ce", "--label", "x" * 129], None, 2, "longer than the 128 characters of esb_component_system.label"),
        (["templatize", "sops", "-o", "components/tpl"], None, 1, "inside the ESB's components/"),
        (["templatize", "sops", "-o", "manage.py"], None, 1, "is not a folder"),
    ],
    ids=["non-UTF-8 name", "linked source folder", "defaulted app code too long", "label too long",
         "template into components", "template onto a file"],
)
def test_hostile_inputs_are_one_line_and_leave_the_tree_as_it_was(esb_root, run_esbgen, monkeypatch, args, prepare, code, message):
    if prepare:
        prepare(esb_root)
    monkeypatch.chdir(esb_root)
    before = snapshot(esb_root)
    result = run_esbgen(*args, "--esb-root", esb_root)
    assert result.exit_code == code, result.output
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(esb_root) == before


# --- special files: refused by name, never opened --------------------------------------------------------

def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path):
    """A real unix socket bound at ``path`` (bound from its folder: a socket's path has at most 107 bytes)."""
    import socket

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.getcwd()
    os.chdir(path.parent)
    try:
        server.bind(path.name)
    finally:
        os.chdir(old)
    server.listen(1)
    return server


def _device(path: Path) -> None:
    import stat

    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero's numbers: endless if read
    except PermissionError as error:
        pytest.fail(f"making a device file needs root, as `make test` runs: {error}")


SPECIAL_PLACES = [
    "components/confapis/sops/extra.yaml",
    "components/confapis/sops/apidocs/en/extra.md",
    "components/bk/apisv2/sops/extra.py",
    "components/bk/apisv2/sops/toolkit/data.txt",
]


@pytest.mark.parametrize("place", SPECIAL_PLACES)
@pytest.mark.parametrize("kind, make, said", [("fifo", _fifo, "is a FIFO"), ("socket", _socket, "is a socket"),
                                              ("device", _device, "is a character device")])
def test_a_special_file_in_a_source_is_refused_by_name_never_opened(esb_root, kind, make, said, place):
    made = make(esb_root / place)
    try:
        before = snapshot_without_following(esb_root)
        for args in (["check"], ["check", "sops"], ["clone", "sops", "--as", "bk_sops_ce"],
                     ["clone", "sops", "--as", "bk_sops_ce", "--dry-run"]):
            # its own process, with a timeout: a run that opened a FIFO would block, and fail here
            result = esbgen_child(esb_root, *args)
            assert result.returncode == 1, (args, result.stdout, result.stderr)
            assert result.stderr.splitlines() == [f"esbgen: error: {place} {said}, not a regular file; "
                                                  "esbgen reads regular files only (remove it first)"], args
            assert snapshot_without_following(esb_root) == before
            assert not (esb_root / ".esbgen").exists()
    finally:
        if made is not None:
            made.close()


CLONE = ("clone", "sops", "--as", "bk_sops_ce")


@pytest.mark.parametrize("place, commands", [
    ("components/generic/apis/conf.py", [("check",), CLONE]),
    ("components/esb_conf.py", [("check",), CLONE]),
    ("configs/default.py", [CLONE, ("retarget", "sops", "--app-code", "bk-sops-ce")]),  # check reads no settings
])
def test_a_fifo_where_esbgen_reads_a_settings_or_conf_module_is_refused(esb_root, place, commands):
    target = esb_root / place
    if target.exists():
        target.unlink()
    os.mkfifo(target)
    for args in commands:
        result = esbgen_child(esb_root, *args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.splitlines() == [f"esbgen: error: {place} is a FIFO, not a regular file; "
                                              "esbgen reads regular files only (remove it first)"]
        assert not (esb_root / ".esbgen").exists()


def esbgen_child(root: Path, *args: str, env: dict | None = None, timeout: float = 60):
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if not k.startswith("ESBGEN_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "esbgen", *args, "--esb-root", str(root)], capture_output=True,
                          text=True, timeout=timeout, env=environment)


# --- templatize never writes into the ESB root, links followed ----------------------------------------

@pytest.mark.parametrize("link_to, under, message", [
    ("components/confapis", "tpl", "inside the ESB's components/"),
    ("components", "confapis/tpl", "inside the ESB's components/"),
    (".", "tpl", "inside the ESB root"),
    ("configs", "tpl", "inside the ESB root"),
])
def test_templatize_through_a_link_into_the_root_is_refused(esb_root, run_esbgen, tmp_path, link_to, under, message):
    link = tmp_path / "link"
    link.symlink_to(esb_root / link_to)
    before = snapshot_without_following(esb_root)
    result = run_esbgen("templatize", "sops", "-o", link / under, "--esb-root", esb_root)
    refused(result, 1, message)
    assert snapshot_without_following(esb_root) == before


def test_templatize_into_the_root_itself_is_refused(esb_root, run_esbgen):
    before = snapshot_without_following(esb_root)
    refused(run_esbgen("templatize", "sops", "-o", esb_root / "tpl", "--esb-root", esb_root), 1, "inside the ESB root")
    assert snapshot_without_following(esb_root) == before


# --- bounded resources -----------------------------------------------------------------------------------

MEASURE = """
import resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.monotonic() - started)
sys.stderr.write(done.stderr)
"""


def test_an_oversized_yaml_file_is_refused_before_it_is_parsed(esb_root):
    """20 MB of real channels (no sparse file): refused at the default limit, quickly, in little memory."""
    import subprocess
    import sys

    entry = SOPS_YAML.parent / "huge.yaml"
    one = ("- path: /v2/sops/c{0}/\n  name: c{0}\n  label: channel {0}\n  comp_codename: generic.v2.sops.sops_component\n"
           "  dest_path: /o/bk_sops/apigw/c{0}/\n  dest_http_method: GET\n")
    with open(esb_root / entry, "w", encoding="utf-8") as handle:
        index = 0
        while handle.tell() < 20 * 1024 * 1024:
            handle.write("".join(one.format(index + i) for i in range(1000)))
            index += 1000
    before = snapshot(esb_root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESBGEN_")}
    for args in (["check"], ["clone", "sops", "--as", "bk_sops_ce"]):
        # measured in a process of its own: RUSAGE_CHILDREN is the largest child that process waited for
        measured = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "esbgen", *args,
                                   "--esb-root", str(esb_root)], capture_output=True, text=True, timeout=120, env=env)
        status, peak_kib, seconds = measured.stdout.split()
        assert status == "1", measured.stderr
        assert measured.stderr.splitlines() == [f"esbgen: error: {entry}: file is larger than 8 MiB; refusing to read it "
                                                "($ESBGEN_MAX_FILE_BYTES sets the limit)"]
        assert int(peak_kib) < 150 * 1024, peak_kib  # the file alone is 20 MiB; parsed, it took 848 MB
        assert float(seconds) < 30
    assert snapshot(esb_root) == before
    assert not (esb_root / ".esbgen").exists()


def test_the_size_limit_covers_python_files_and_is_set_by_its_variable(esb_root):
    configs = "components/bk/apisv2/sops/toolkit/configs.py"
    with open(esb_root / configs, "a", encoding="utf-8") as handle:  # the one file above 1 MiB
        handle.write(("# " + "x" * 98 + "\n") * 12000)
    result = esbgen_child(esb_root, "check", env={"ESBGEN_MAX_FILE_BYTES": "1048576"})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"esbgen: error: {configs}: file is larger than 1 MiB; refusing "
                                          "to read it ($ESBGEN_MAX_FILE_BYTES sets the limit)"]
    assert esbgen_child(esb_root, "check").returncode == 0  # the default limit is far above it
    for bad in ("lots", "0", "-5"):
        result = esbgen_child(esb_root, "check", env={"ESBGEN_MAX_FILE_BYTES": bad})
        assert result.returncode == 1 and result.stderr.splitlines() == [
            f"esbgen: error: $ESBGEN_MAX_FILE_BYTES is {bad!r}: give the largest file esbgen may read, in bytes"]


# --- operator values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("label", ["tab\there", "line\u2028separator", "bell\x07", "del\x7f", "next\x85line"])
@pytest.mark.parametrize("command", ["clone", "new", "register"])
def test_a_label_with_a_control_character_is_refused_by_every_command(esb_root, run_esbgen, tmp_path, command, label):
    args = {"clone": ["clone", "sops", "--as", "bk_sops_ce"], "new": ["new", "bk_demo", "--app-code", "bk-demo"],
            "register": ["register", "BK_DEMO", "--database", f"sqlite:///{tmp_path}/esb.db"]}[command]
    before = snapshot(esb_root)
    refused(run_esbgen(*args, "--label", label, "--esb-root", esb_root), 2, "--label must be one line of text")
    assert snapshot(esb_root) == before


@pytest.mark.parametrize("command", ["clone", "new", "register"])
def test_a_remark_longer_than_its_column_is_refused(esb_root, run_esbgen, tmp_path, command):
    args = {"clone": ["clone", "sops", "--as", "bk_sops_ce"], "new": ["new", "bk_demo", "--app-code", "bk-demo"],
            "register": ["register", "BK_DEMO", "--database", f"sqlite:///{tmp_path}/esb.db"]}[command]
    before = snapshot(esb_root)
    refused(run_esbgen(*args, "--remark", "备" * 21846, "--esb-root", esb_root), 2,
            "--remark is longer than the 65535 bytes the ESB's remark column holds")
    assert snapshot(esb_root) == before


BAD_URLS = [
    ("http://sops-ce.example.com:99999", "has a port '99999' that is not a port from 1 to 65535"),
    ("http://sops-ce.example.com:0", "has a port '0' that is not a port from 1 to 65535"),
    ("http://sops-ce.example.com:80x", "has a port '80x' that is not a port from 1 to 65535"),
    ("ftp://sops-ce.example.com", "is not an http:// or https:// address"),
    ("javascript://x", "is not an http:// or https:// address"),
    ("sops-ce.example.com:8080", "is not an http:// or https:// address"),
    ("http://", "has no host"),
    ("http://:8080", "has no host"),
    ("http://bad_host!:8080", "has a host 'bad_host!' that is not a host name or IP address"),
    ("http://300.1.1.1", "has a host '300.1.1.1' that is not an IPv4 address"),
    ("http://[::g]:80", "is not an address"),
    ("http://a.example/x?y=1", "has a query or a fragment"),
    ("http://a.example\n/x", "holds a space, a quote, a backslash or a control character"),
    ("http://a.example/x'+__import__('os')+'", "holds a space, a quote, a backslash or a control character"),
]


@pytest.mark.parametrize("url, message", BAD_URLS)
def test_a_backend_host_that_is_no_http_address_is_refused(esb_root, run_esbgen, tmp_path, url, message):
    result = run_esbgen("export-apigw", "sops", "-o", tmp_path / "gw", "--backend-host", url, "--esb-root", esb_root)
    refused(result, 2, f"--backend-host {url!r} {message}")
    assert not (tmp_path / "gw").exists()


def test_a_backend_host_with_a_path_or_a_password_is_refused_and_the_password_never_shown(esb_root, run_esbgen, tmp_path):
    refused(run_esbgen("export-apigw", "sops", "-o", tmp_path / "gw", "--backend-host", "http://10.0.0.5:8000/base",
                       "--esb-root", esb_root), 2, "has a path")
    result = run_esbgen("export-apigw", "sops", "-o", tmp_path / "gw", "--backend-host", "http://ops:hunter2@10.0.0.5:8000",
                        "--esb-root", esb_root)
    refused(result, 2, "--backend-host 'http://***@10.0.0.5:8000' holds user info")
    assert "hunter2" not in result.stderr + result.output

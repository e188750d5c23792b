"""``make bench``: esbgen clone against plain cookiecutter and cp -r, at 200, 2,000 and 20,000 channels.

For each size, one generated ESB root (benchmarks/gen_tree.py: the sample ESB
with a ``sops`` system of N channels and two apidocs each) and one hand-made
cookiecutter template of the same clone (benchmarks/handmade.py).  Then,
repeated and paired in one run (the order of the three rotates each round):

1. ``esbgen clone sops --as bk_sops_bench --esb-root <fresh copy>``: the CLI in a
   subprocess, a real apply (journal, lock, registration in conf.py);
2. ``cookiecutter --no-input <hand-made template> -o <empty folder>``;
3. ``cp -r`` of the two source folders.

Nothing is deleted between timed runs (a big ``rm -rf`` makes the next file
creations on this kind of disk several times slower); ``sync`` runs before each.
Also ``esbgen --help`` start-up, best of N, and every command against ``cp -r``
(benchmarks/commands.py).  Prints a table, writes benchmarks/out/results.json,
benchmarks/out/bench.png and benchmarks/out/commands.png, and puts all of it
into docs/benchmarks.md and the table of clone times into README.md (between
their markers).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from commands import bench_commands, commands_table, commands_targets, plot_commands  # noqa: E402
from gen_tree import REAL_CHANNELS, REAL_SYSTEMS, SOURCE, make_real_root, make_root  # noqa: E402
from handmade import write_template  # noqa: E402
from interrupt import measure as measure_interrupts  # noqa: E402
from interrupt import show as show_interrupts  # noqa: E402

OUT = HERE / "out"
NEW = "bk_sops_bench"
FOLDERS = (Path("components/bk/apisv2"), Path("components/confapis"))
TOOLS = ("esbgen", "cookiecutter", "cp")
START, END = "<!-- esbgen-bench:start -->", "<!-- esbgen-bench:end -->"
DEFAULT_REPS = {200: 5, 2000: 7, 20000: 2}


BIN = Path(sys.executable).parent  # the virtualenv timed: `make bench` gives one with esbgen installed from its wheels


def bin_path(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else name


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, float]:
    """Wall seconds, peak memory (MiB), user CPU and system CPU seconds of one command; fails loudly."""
    os.sync()
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"benchmark command failed ({process.returncode}): {' '.join(argv)}\n{error}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime, usage.ru_stime


def same_output(left: Path, right: Path) -> bool:
    """Whether two clones hold the same files with the same bytes."""
    for group in FOLDERS:
        a, b = left / group / NEW, right / group / NEW
        files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
        if files_a != files_b:
            return False
        for relative in files_a:
            if not filecmp.cmp(a / relative, b / relative, shallow=False):
                return False
    return True


def bench_size(base: Path, channels: int, reps: int, warmup: int = 1) -> dict:
    work = base / f"n{channels}"
    work.mkdir()
    print(f"\n{channels} channels: generating the ESB root and the hand-made template ...", flush=True)
    source = make_root(work / "source", channels)
    template = write_template(source, work / "template", NEW)
    env = {**os.environ, "HOME": str(work), "ESBGEN_LOCK_TIMEOUT": "60"}
    env.pop("ESBGEN_ESB_ROOT", None)
    runs: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    memory: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    cpu: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    system: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    outputs: dict[str, Path] = {}
    # Every destination is made before the first timed run: heavy writes right before a run slow it down.
    rounds = ["warm-up"] * warmup + list(range(reps))
    for rep in rounds:
        if not (work / f"esbgen-{rep}").exists():
            shutil.copytree(source, work / f"esbgen-{rep}", symlinks=True)
            (work / f"cookiecutter-{rep}").mkdir()
            (work / f"cp-{rep}").mkdir()
    os.sync()
    time.sleep(3 + channels / 2000)  # the disk settles after the copies (longer for more files)
    for number, rep in enumerate(rounds):
        order = TOOLS[number % 3:] + TOOLS[:number % 3]
        for tool in order:
            dest = work / f"{tool}-{rep}"
            if tool == "esbgen":
                argv = [bin_path("esbgen"), "clone", SOURCE, "--as", NEW, "--esb-root", str(dest)]
            elif tool == "cookiecutter":
                argv = [bin_path("cookiecutter"), "--no-input", str(template), "-o", str(dest)]
            else:
                argv = ["cp", "-r", str(source / FOLDERS[0] / SOURCE), str(source / FOLDERS[1] / SOURCE), str(dest)]
            seconds, mib, user_seconds, system_seconds = timed(argv, env)
            if rep == "warm-up":  # not counted: the first runs after a big write are slower for every tool
                print(f"  warm-up      {tool:<12} {seconds:8.3f} s", flush=True)
                continue
            runs[tool].append(seconds)
            memory[tool].append(mib)
            cpu[tool].append(user_seconds)
            system[tool].append(system_seconds)
            outputs.setdefault(tool, dest)
            print(f"  round {rep + 1}/{reps}  {tool:<12} {seconds:8.3f} s  {mib:7.1f} MiB", flush=True)
    identical = same_output(outputs["esbgen"], outputs["cookiecutter"])
    print(f"  esbgen's clone and cookiecutter's output are byte-identical: {identical}")
    shutil.rmtree(work, ignore_errors=True)
    os.sync()
    time.sleep(2)  # let the file system settle after freeing the folders
    row = {"channels": channels, "files": 2 * channels + 4, "rounds": reps, "identical_output": identical}
    for tool in TOOLS:
        row[tool] = {
            "best": min(runs[tool]),
            "median": statistics.median(runs[tool]),
            "runs": runs[tool],
            "peak_mib": max(memory[tool]),
            "cpu_median": statistics.median(cpu[tool]),  # user CPU: the tool's own work
            "cpu_runs": cpu[tool],
            "system_median": statistics.median(system[tool]),  # kernel time: mostly creating files
            "system_runs": system[tool],
        }
    row["ratio_median"] = row["esbgen"]["median"] / row["cookiecutter"]["median"]
    # The same round's two runs saw the same state of the disk: their ratio is the fairest comparison.
    row["ratio_paired_median"] = statistics.median(e / c for e, c in zip(runs["esbgen"], runs["cookiecutter"]))
    row["ratio_best"] = row["esbgen"]["best"] / row["cookiecutter"]["best"]
    row["ratio_cp_paired_median"] = statistics.median(e / c for e, c in zip(runs["esbgen"], runs["cp"]))
    return row


def paired(argvs: dict[str, list[str]], rounds: int, env: dict[str, str] | None = None,
           prepare=None) -> dict[str, list[float]]:
    """Wall seconds of each command, the order rotating each round; ``prepare(name, round)`` gives argv extras."""
    names = list(argvs)
    times: dict[str, list[float]] = {name: [] for name in names}
    memory: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        order = names[number % len(names):] + names[:number % len(names)]
        for name in order:
            argv = argvs[name] + (prepare(name, number) if prepare else [])
            seconds, mib, _, _ = timed(argv, env)
            times[name].append(seconds)
            memory[name].append(mib)
    times.update({f"{name}:mib": memory[name] for name in names})
    return times


def bench_real(base: Path, rounds: int) -> dict:
    """A real-sized clone (sops, 19 channels, in a tree of 28 systems) against ``esbgen --help``, paired."""
    work = base / "real"
    work.mkdir()
    print(f"\nreal-sized: sops ({REAL_CHANNELS} channels) in a tree of {REAL_SYSTEMS} systems ...", flush=True)
    source = make_real_root(work / "source")
    env = {**os.environ, "HOME": str(work), "ESBGEN_LOCK_TIMEOUT": "60"}
    env.pop("ESBGEN_ESB_ROOT", None)
    for number in range(rounds + 1):
        shutil.copytree(source, work / f"esbgen-{number}", symlinks=True)
    os.sync()
    time.sleep(1)
    timed([bin_path("esbgen"), "clone", SOURCE, "--as", NEW, "--esb-root", str(work / f"esbgen-{rounds}")], env)  # warm-up
    argvs = {"clone": [bin_path("esbgen"), "clone", SOURCE, "--as", NEW, "--esb-root"], "help": [bin_path("esbgen"), "--help"]}
    times = paired(argvs, rounds, env, lambda name, number: [str(work / f"esbgen-{number}")] if name == "clone" else [])
    shutil.rmtree(work, ignore_errors=True)
    ratio = statistics.median(c / h for c, h in zip(times["clone"], times["help"]))
    print(f"  clone {statistics.median(times['clone']):.3f} s, --help {statistics.median(times['help']):.3f} s, "
          f"paired ratio {ratio:.2f}", flush=True)
    return {
        "channels": REAL_CHANNELS, "systems": REAL_SYSTEMS, "rounds": rounds,
        "clone_median": statistics.median(times["clone"]), "help_median": statistics.median(times["help"]),
        "clone_peak_mib": max(times["clone:mib"]), "ratio_paired_median": ratio,
    }


CLICK_HELP = ("import click\n@click.group()\ndef group():\n    'A group.'\n@group.command()\ndef one():\n    'A command.'\n"
              "try:\n    group(['--help'])\nexcept SystemExit:\n    pass")


def bench_startup(rounds: int) -> dict:
    """``esbgen --help`` and ``--version`` against a bare ``python -c pass`` (esbgen's own Python), paired."""
    argvs = {"pass": [bin_path("python"), "-c", "pass"], "help": [bin_path("esbgen"), "--help"],
             "version": [bin_path("esbgen"), "--version"],
             # what --help cannot do without: a click group's help, then with the plugins' entry points read
             "click_help": [bin_path("python"), "-c", CLICK_HELP],
             "click_entry_points": [bin_path("python"), "-c", CLICK_HELP + "\nimport importlib.metadata as m\n"
                                                                   "m.entry_points(group='esbgen')"]}
    times = paired(argvs, rounds)
    result = {"rounds": rounds}
    for name in argvs:
        result[f"{name}_median_ms"] = statistics.median(times[name]) * 1000
        result[f"{name}_best_ms"] = min(times[name]) * 1000
    for name in ("help", "version", "click_help", "click_entry_points"):
        result[f"{name}_ratio"] = statistics.median(x / p for x, p in zip(times[name], times["pass"]))
    return result


def install_of(bin_dir: Path) -> str:
    """How the timed esbgen is installed, as its direct_url.json says (PEP 610): from its wheel, or
    editable (whose finder every start of that virtualenv's Python imports, `python -c pass` included)."""
    program = ("import importlib.metadata as m, json\n"
               "print(json.loads(m.distribution('esbgen').read_text('direct_url.json') or '{}')"
               ".get('dir_info', {}).get('editable', False))")
    editable = subprocess.run([str(bin_dir / "python"), "-I", "-c", program], capture_output=True, text=True,
                              check=True).stdout.strip()
    return "as an editable install" if editable == "True" else "installed from its wheel"


def disk_of(path: Path) -> str:
    """The file system a path is on, as ``df`` names it (tmpfs is a RAM disk)."""
    try:
        out = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True, check=True).stdout.splitlines()
        device, kind = out[-1].split()[:2]
        return f"{kind} ({device})" + (", a RAM disk" if kind in ("tmpfs", "ramfs") else "")
    except (OSError, subprocess.CalledProcessError, IndexError, ValueError):
        return "unknown"


def per_channel(row: dict, what: str) -> float:
    if what == "cpu":
        return row["esbgen"]["cpu_median"] / row["channels"]
    return max(row["esbgen"]["median"] - row["cp"]["median"], 0.0) / row["channels"]


def bench_help(runs: int) -> dict:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([bin_path("esbgen"), "--help"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return {"best_ms": min(times) * 1000, "median_ms": statistics.median(times) * 1000, "runs": runs}


def table(results: dict) -> str:
    lines = [
        "| channels (files) | esbgen clone | plain cookiecutter | cp -r | esbgen / cookiecutter, paired "
        "| esbgen / cp -r, paired | user CPU esbgen / cookiecutter | esbgen per channel | peak RSS esbgen |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["sizes"]:
        cells = [f"{row['channels']:,} ({row['files']:,})"]
        for tool in TOOLS:
            cells.append(f"{row[tool]['median']:.2f} s (best {row[tool]['best']:.2f})")
        cells.append(f"{row['ratio_paired_median']:.2f} (best/best {row['ratio_best']:.2f})")
        cells.append(f"{row['ratio_cp_paired_median']:.1f}")
        cells.append(f"{row['esbgen']['cpu_median']:.2f} s / {row['cookiecutter']['cpu_median']:.2f} s")
        cells.append(f"{row['esbgen']['median'] / row['channels'] * 1000:.2f} ms")
        cells.append(f"{row['esbgen']['peak_mib']:.0f} MiB")
        lines.append("| " + " | ".join(cells) + " |")
    startup, real = results["startup"], results.get("real")
    lines.append("")
    lines.append(
        f"Start-up, medians of {startup['rounds']} paired rounds: `python -c pass` {startup['pass_median_ms']:.0f} ms, "
        f"`esbgen --help` {startup['help_median_ms']:.0f} ms ({startup['help_ratio']:.1f}x), "
        f"`esbgen --version` {startup['version_median_ms']:.0f} ms ({startup['version_ratio']:.1f}x); "
        f"for comparison, a two-command click group's `--help` {startup['click_help_median_ms']:.0f} ms "
        f"({startup['click_help_ratio']:.1f}x), and with the plugins' entry points read by `importlib.metadata` "
        f"{startup['click_entry_points_median_ms']:.0f} ms ({startup['click_entry_points_ratio']:.1f}x)."
    )
    if real:
        lines.append(
            f"Real-sized clone (sops, {real['channels']} channels, in a tree of {real['systems']} systems), medians of "
            f"{real['rounds']} paired rounds: {real['clone_median']:.2f} s, {real['ratio_paired_median']:.1f}x `esbgen --help` "
            f"({real['help_median']:.2f} s); peak RSS {real['clone_peak_mib']:.0f} MiB."
        )
    lines.append(
        f"Medians (best) of {', '.join(str(r['rounds']) for r in results['sizes'])} paired rounds; "
        f"disk: {results['machine']['disk']}; {results['machine']['cpus']} CPUs, Python {results['machine']['python']}, "
        f"esbgen {results['install']}; {results['date']}."
    )
    lines.append("")
    lines.append("| target | measured | met |")
    lines.append("| --- | --- | --- |")
    for name, measured, met in results["targets"]:
        lines.append(f"| {name} | {measured} | {'yes' if met else ('n/a' if met is None else 'no')} |")
    lines.append(f"\nSame bytes as cookiecutter's output at every size: {results['checks']['identical_output']}.")
    if results.get("commands"):
        lines.append("")
        lines.append("Every command against `cp -r` of the system's two folders, medians of paired rounds "
                     "(seconds, the paired ratio, peak RSS in MiB):")
        lines.append("")
        lines.append(commands_table(results["commands"]))
    interrupts = results.get("interrupts")
    if interrupts:
        lines.append("")
        lines.append(f"Ctrl-C at {interrupts['channels']:,} channels, sent on a pseudo-terminal once the progress line names "
                     "the phase (clone: 0.2 s into it, but at once into applying), timed until esbgen has exited; in brackets, until its last line:")
        lines.append("")
        lines.append(show_interrupts(interrupts["runs"]))
    return "\n".join(lines)


def targets(by_size: dict[int, dict], results: dict) -> list[tuple[str, str, bool | None]]:
    """Each target of the benchmark: what it asks, what was measured, whether it is met (None: not measured)."""
    rows = []

    def size(n: int, what: str, measure, limit) -> None:
        row = by_size.get(n)
        if row is None:
            rows.append((what, "not measured", None))
            return
        value, text = measure(row)
        rows.append((what, text, limit(value)))

    size(2000, "clone at 2,000 channels: at most 5x `cp -r`",
         lambda r: (r["ratio_cp_paired_median"], f"{r['ratio_cp_paired_median']:.1f}x"), lambda v: v <= 5)
    size(2000, "clone at 2,000 channels: faster than plain cookiecutter",
         lambda r: (r["ratio_paired_median"], f"{r['ratio_paired_median']:.2f}x"), lambda v: v < 1)
    size(20000, "clone at 20,000 channels: at most 3x `cp -r`",
         lambda r: (r["ratio_cp_paired_median"], f"{r['ratio_cp_paired_median']:.1f}x"), lambda v: v <= 3)
    linear = results["checks"]["linear"]
    rows.append(("linear in between (per-channel user CPU and wall time beyond `cp -r`'s within 1.5x of 2,000's)",
                 "see the table", linear))
    size(20000, "peak RSS under 300 MiB at 20,000 channels",
         lambda r: (r["esbgen"]["peak_mib"], f"{r['esbgen']['peak_mib']:.0f} MiB"), lambda v: v < 300)
    if 2000 in by_size and 20000 in by_size and 200 in by_size:
        low, mid, high = (by_size[n]["esbgen"]["peak_mib"] for n in (200, 2000, 20000))
        slope_low, slope_high = (mid - low) / 1800, (high - mid) / 18000
        rows.append(("peak RSS linear in channels (MiB per 1,000 channels, 200-2,000 vs 2,000-20,000)",
                     f"{slope_low * 1000:.1f} vs {slope_high * 1000:.1f}", slope_high <= 1.5 * max(slope_low, 1e-9)))
    real = results.get("real")
    rows.append(("real-sized clone (sops in 28 systems): at most 3x `esbgen --help`",
                 f"{real['ratio_paired_median']:.1f}x" if real else "not measured",
                 real["ratio_paired_median"] <= 3 if real else None))
    interrupts = results.get("interrupts")
    if interrupts:
        runs = interrupts["runs"]
        worst = max((r["latency_ms"] for r in runs if r["latency_ms"] is not None), default=None)
        told = all(r["status"] == 130 and r["message"].startswith("esbgen: error: interrupted") for r in runs)
        rows.append((f"Ctrl-C acted on within a second in every phase at {interrupts['channels']:,} channels, "
                     "the message saying the tree's state",
                     f"slowest {worst:.0f} ms; every run exit 130 with the state: {told}" if worst is not None else "not seen",
                     worst is not None and worst <= 1000 and told and all(r["interrupted"] for r in runs)))
    startup = results["startup"]
    rows.append(("`esbgen --help`: at most 4x `python -c pass`", f"{startup['help_ratio']:.1f}x", startup["help_ratio"] <= 4))
    rows.append(("`esbgen --version`: at most 4x `python -c pass`", f"{startup['version_ratio']:.1f}x",
                 startup["version_ratio"] <= 4))
    return rows


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [row["channels"] for row in results["sizes"]]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for tool, marker in zip(TOOLS, "osd"):
        medians = [row[tool]["median"] for row in results["sizes"]]
        lows = [row[tool]["median"] - row[tool]["best"] for row in results["sizes"]]
        highs = [max(row[tool]["runs"]) - row[tool]["median"] for row in results["sizes"]]
        label = {"esbgen": "esbgen clone", "cookiecutter": "plain cookiecutter", "cp": "cp -r"}[tool]
        left.errorbar(sizes, medians, yerr=[lows, highs], marker=marker, capsize=3, label=label)
        right.plot(sizes, [m / n * 1000 for m, n in zip(medians, sizes)], marker=marker, label=label)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("channels (two apidocs each)")
    left.set_ylabel("wall time, s (median, bars: best to worst)")
    left.set_title("Clone of a confapis system")
    right.set_xscale("log")
    right.set_xlabel("channels")
    right.set_ylabel("ms per channel (median)")
    right.set_title("Cost per channel (flat = linear)")
    for axes in (left, right):
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def readme_part(text: str) -> str:
    """The README's part of the results: the clone times, the conditions they were measured in (the disk
    among them), and every command against ``cp -r``."""
    paragraphs = text.split("\n\n")
    part = [paragraphs[0], *(p for p in paragraphs if p.startswith("Medians (best)"))]
    for index, paragraph in enumerate(paragraphs[:-1]):
        if paragraph.startswith("Every command against"):
            part += [paragraph, paragraphs[index + 1]]
    return "\n\n".join(part)


def update_docs(text: str) -> list[Path]:
    """All of the results into docs/benchmarks.md, the clone times and every command's into README.md, each between its markers."""
    written = []
    for path, part in ((REPO / "docs" / "benchmarks.md", text), (REPO / "README.md", readme_part(text))):
        content = path.read_text(encoding="utf-8") if path.is_file() else ""
        if START in content and END in content:
            head, rest = content.split(START, 1)
            _, tail = rest.split(END, 1)
            path.write_text(f"{head}{START}\n{part}\n{END}{tail}", encoding="utf-8")
            written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,2000,20000", help="channel counts, comma-separated")
    parser.add_argument("--rounds", type=int, help="rounds for every size (default: 5, 7 and 2)")
    parser.add_argument("--warmup", type=int, default=1, choices=(0, 1), help="an uncounted first round (default: 1)")
    parser.add_argument("--dir", help="where to generate the trees (default: a new folder in the temp dir)")
    parser.add_argument("--help-runs", type=int, default=15, help="paired rounds of python -c pass, --help and --version")
    parser.add_argument("--real-rounds", type=int, default=9, help="paired rounds of the real-sized clone and --help")
    parser.add_argument("--no-readme", action="store_true",
                        help="do not update the results in docs/benchmarks.md and README.md")
    parser.add_argument("--no-interrupts", action="store_true", help="do not time Ctrl-C in each phase")
    parser.add_argument("--command-rounds", type=int, default=2,
                        help="paired rounds of every command against cp -r at each size (0: not timed; default: 2)")
    parser.add_argument("--venv", help="the virtualenv whose esbgen, cookiecutter and python are timed "
                                       "(default: this Python's; `make bench` installs esbgen's wheels into .venv-bench)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    global BIN
    if args.venv:
        BIN = Path(args.venv).resolve() / "bin"
        if not (BIN / "esbgen").exists():
            raise SystemExit(f"{args.venv}: no esbgen installed there")
    else:
        # A checkout run with PYTHONDONTWRITEBYTECODE would compile every module on every run, which
        # no operator pays: pip compiles a wheel it installs (template files named {{...}} are not Python).
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-x", "[{][{]", str(REPO / "esbgen"), str(REPO / "plugins")],
                       check=True, stdout=subprocess.DEVNULL)
    base = Path(tempfile.mkdtemp(prefix="esbgen-bench-", dir=args.dir))
    OUT.mkdir(exist_ok=True)
    disk = disk_of(base)
    try:
        # First, while this process is small: a child's ru_maxrss starts from its parent's size at the fork.
        real = bench_real(base, args.real_rounds) if args.real_rounds else None
        rows = [bench_size(base, n, args.rounds or DEFAULT_REPS.get(n, 2), args.warmup) for n in sizes]
        interrupts = None
        if not args.no_interrupts:
            largest = max(sizes)
            print(f"\nCtrl-C in each phase at {largest:,} channels ...", flush=True)
            (base / "interrupts").mkdir()
            tree = make_root(base / "interrupts" / "source", largest)
            interrupts = {"channels": largest, "runs": measure_interrupts(tree, base / "interrupts", bin_path("esbgen"))}
            print(show_interrupts(interrupts["runs"]), flush=True)
        commands = bench_commands(bin_path("esbgen"), base, sizes, args.command_rounds) if args.command_rounds else None
    finally:
        shutil.rmtree(base, ignore_errors=True)
    help_ = bench_help(args.help_runs)
    startup = bench_startup(args.help_runs)
    results = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "disk": disk},
        "install": install_of(BIN),
        "sizes": rows,
        "help": help_,
        "startup": startup,
        "real": real,
        "interrupts": interrupts,
        "commands": commands,
    }
    by_size = {row["channels"]: row for row in rows}
    largest = max(by_size)
    results["checks"] = {
        "at_most_cookiecutter_at_2000": (
            by_size[2000]["ratio_paired_median"] <= 1.0 and by_size[2000]["ratio_best"] <= 1.0
        ) if 2000 in by_size else None,
        # Disk stalls hit every tool (cp -r too): linear is judged on esbgen's own work, its CPU time and
        # its wall time beyond cp's, per channel.
        "linear": (
            per_channel(by_size[largest], "cpu") <= 1.5 * per_channel(by_size[2000], "cpu")
            and per_channel(by_size[largest], "beyond_cp") <= 1.5 * per_channel(by_size[2000], "beyond_cp")
            if 2000 in by_size and largest > 2000 else None
        ),
        "help_under_150ms": help_["best_ms"] < 150,
        "identical_output": all(row["identical_output"] for row in rows),
    }
    results["targets"] = targets(by_size, results) + (commands_targets(commands) if commands else [])
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    text = table(results)
    print("\n" + text)
    try:
        plot(results, OUT / "bench.png")
        if commands:
            plot_commands(commands, OUT / "commands.png")
        print(f"\nWrote {OUT / 'results.json'} and {OUT / 'bench.png'}")
    except ImportError:
        print(f"\nWrote {OUT / 'results.json'} (no plot: matplotlib is missing; `pip install -e '.[bench]'`)")
    if not args.no_readme:
        for path in update_docs(text):
            print(f"Updated the results in {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

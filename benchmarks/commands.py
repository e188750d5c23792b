"""Every esbgen command against ``cp -r`` of the system's folders, at each size, paired in one run.

For each size, one generated ESB root (gen_tree.make_root) and, per round, a fresh copy of it for
each command that writes (made before the round's timed runs). Each round times ``cp -r`` of the
``sops`` folders and then every command once, in a rotating order; the ratio of a command is the
median of its paired ratios to that round's ``cp -r``.

The commands, as an operator runs them on that tree:

* ``clone sops --as bk_sops_bench``, ``new bk_new_bench --app-code bk_new``;
* ``retarget sops --app-code bk_sops_x`` (every channel's ``dest_path``), then on that tree
  ``retarget sops --to-source``;
* ``sync-edition --from <the tree>`` into a copy whose ``sops`` channels reach another app;
* ``templatize sops -o DIR``, ``export-apigw sops -o DIR --via-esb URL``;
* ``check``, ``list``, ``verify sops``;
* ``undo`` of a clone, ``apply-plan`` of a clone's ``--plan-out`` file.

``python benchmarks/commands.py --sizes 200,2000`` runs it alone (this Python's esbgen, or ``--venv``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_tree import SOURCE, make_root  # noqa: E402

FOLDERS = (Path("components/bk/apisv2"), Path("components/confapis"))
CLONE = "bk_sops_bench"
# command name -> (needs a fresh tree of its own, how its tree is prepared before the round)
COMMANDS = ("clone", "new", "retarget", "retarget --to-source", "sync-edition", "templatize", "export-apigw",
            "check", "list", "verify", "undo", "apply-plan")
WRITES = {"clone", "new", "retarget", "retarget --to-source", "sync-edition", "undo", "apply-plan"}


# A child's peak RSS counts the pages of the process it was forked from: each command is started by this
# small launcher (a bare Python, a few MiB), not by the bench, whose own size would be counted in.
LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stdout.write("%f %f %d" % (time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)))
"""


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command; stops the bench if it fails."""
    os.sync()
    done = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, *argv], capture_output=True, text=True, env=env)
    elapsed, mib, status = done.stdout.split()
    if int(status) != 0 or done.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}\n{done.stderr}")
    return float(elapsed), float(mib)


class Round:
    """The trees and arguments of one round's commands, prepared before anything is timed."""

    def __init__(self, esbgen: str, source: Path, folder: Path, env: dict[str, str], commands: tuple[str, ...]) -> None:
        self.esbgen, self.source, self.folder, self.env = esbgen, source, folder, env
        folder.mkdir()
        self.read_tree = folder / "read"
        shutil.copytree(source, self.read_tree, symlinks=True)
        self.argv: dict[str, list[str]] = {}
        for name in commands:
            tree = self.read_tree
            if name in WRITES:
                tree = folder / name.replace(" ", "").replace("-", "")
                shutil.copytree(source, tree, symlinks=True)
            self.argv[name] = self._prepare(name, tree)
        (folder / "cp").mkdir()

    def _untimed(self, *arguments: str, tree: Path) -> None:
        _run([self.esbgen, *arguments, "--esb-root", str(tree)], self.env)

    def _prepare(self, name: str, tree: Path) -> list[str]:
        out = self.folder / f"out-{name.replace(' ', '')}"
        root = ["--esb-root", str(tree)]
        esbgen = self.esbgen
        if name == "clone":
            return [esbgen, "clone", SOURCE, "--as", CLONE, *root]
        if name == "new":
            return [esbgen, "new", "bk_new_bench", "--app-code", "bk_new", *root]
        if name == "retarget":
            return [esbgen, "retarget", SOURCE, "--app-code", "bk_sops_x", *root]
        if name == "retarget --to-source":
            self._untimed("retarget", SOURCE, "--app-code", "bk_sops_x", tree=tree)
            return [esbgen, "retarget", SOURCE, "--to-source", *root]
        if name == "sync-edition":
            # this tree's sops channels reach another app; the CE's (the generated tree) come over
            self._untimed("retarget", SOURCE, "--app-code", "bk_sops_x", tree=tree)
            shutil.rmtree(tree / ".esbgen", ignore_errors=True)
            return [esbgen, "sync-edition", "--from", str(self.source), *root]
        if name == "templatize":
            return [esbgen, "templatize", SOURCE, "-o", str(out), *root]
        if name == "export-apigw":
            # the generated channels fill {bk_biz_id} from the request: their backend is the ESB's own
            return [esbgen, "export-apigw", SOURCE, "-o", str(out), "--via-esb", "http://paas.example.com", *root]
        if name == "check":
            return [esbgen, "check", *root]
        if name == "list":
            return [esbgen, "list", *root]
        if name == "verify":
            return [esbgen, "verify", SOURCE, *root]
        if name == "undo":
            self._untimed("clone", SOURCE, "--as", CLONE, tree=tree)
            return [esbgen, "undo", *root]
        if name == "apply-plan":
            plan = self.folder / "clone.plan.json"
            self._untimed("clone", SOURCE, "--as", CLONE, "--dry-run", "--plan-out", str(plan), tree=tree)
            return [esbgen, "apply-plan", str(plan), *root]
        raise AssertionError(name)

    def cp(self) -> list[str]:
        return ["cp", "-r", *(str(self.source / group / SOURCE) for group in FOLDERS), str(self.folder / "cp")]


def bench_commands(esbgen: str, base: Path, sizes: list[int], rounds: int,
                   commands: tuple[str, ...] = COMMANDS) -> list[dict]:
    """One row per size: for each of ``commands``, median seconds, median paired ratio to cp -r, peak MiB."""
    rows = []
    for channels in sizes:
        work = base / f"commands-{channels}"
        work.mkdir()
        print(f"\nevery command at {channels:,} channels ({rounds} rounds) ...", flush=True)
        source = make_root(work / "source", channels)
        env = {**os.environ, "HOME": str(work), "ESBGEN_LOCK_TIMEOUT": "60"}
        env.pop("ESBGEN_ESB_ROOT", None)
        prepared = [Round(esbgen, source, work / f"round-{number}", env, commands) for number in range(rounds)]
        os.sync()
        time.sleep(2 + channels / 4000)  # the disk settles after the copies
        seconds: dict[str, list[float]] = {name: [] for name in ("cp", *commands)}
        ratios: dict[str, list[float]] = {name: [] for name in commands}
        memory: dict[str, list[float]] = {name: [] for name in commands}
        for number, current in enumerate(prepared):
            copy_time, _ = _run(current.cp(), env)
            seconds["cp"].append(copy_time)
            order = commands[number % len(commands):] + commands[:number % len(commands)]
            for name in order:
                elapsed, mib = _run(current.argv[name], env)
                seconds[name].append(elapsed)
                ratios[name].append(elapsed / copy_time)
                memory[name].append(mib)
            print(f"  round {number + 1}/{rounds}: cp -r {copy_time:.3f} s; "
                  + ", ".join(f"{name} {seconds[name][-1]:.2f}" for name in commands), flush=True)
        shutil.rmtree(work, ignore_errors=True)
        row = {"channels": channels, "rounds": rounds, "cp_median": statistics.median(seconds["cp"]), "commands": {}}
        for name in commands:
            row["commands"][name] = {"median": statistics.median(seconds[name]), "runs": seconds[name],
                                     "ratio_cp": statistics.median(ratios[name]), "peak_mib": max(memory[name])}
        rows.append(row)
    return rows


def commands_table(rows: list[dict]) -> str:
    sizes = [row["channels"] for row in rows]
    header = "| command | " + " | ".join(f"{n:,} channels: s (x `cp -r`), MiB" for n in sizes) + " |"
    lines = [header, "| --- |" + " --- |" * len(sizes)]
    lines.append("| `cp -r` of the folders | " + " | ".join(f"{row['cp_median']:.3f} s" for row in rows) + " |")
    for name in rows[0]["commands"]:
        cells = [f"{row['commands'][name]['median']:.2f} s ({row['commands'][name]['ratio_cp']:.1f}x), "
                 f"{row['commands'][name]['peak_mib']:.0f}" for row in rows]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def commands_targets(rows: list[dict]) -> list[tuple[str, str, bool | None]]:
    """Per command: at most 5x cp -r at 2,000, 3x at 20,000, time at 20,000 at most 12 times 2,000's, RSS < 300 MiB."""
    by_size = {row["channels"]: row for row in rows}
    targets = []
    for name in rows[0]["commands"] if rows else ():
        def at(n: int) -> dict | None:
            row = by_size.get(n)
            return row["commands"][name] if row else None

        small, large = at(2000), at(20000)
        checks, measured = [], []
        if small:
            checks.append(small["ratio_cp"] <= 5)
            measured.append(f"{small['ratio_cp']:.1f}x at 2,000")
        if large:
            checks.append(large["ratio_cp"] <= 3)
            checks.append(large["peak_mib"] < 300)
            measured.append(f"{large['ratio_cp']:.1f}x and {large['peak_mib']:.0f} MiB at 20,000")
        if small and large:
            growth = large["median"] / small["median"]
            checks.append(growth <= 12)
            measured.append(f"20,000 / 2,000: {growth:.1f}")
        targets.append((f"`{name}`: at most 5x `cp -r` at 2,000 channels, 3x at 20,000, at most 12x from 2,000 to "
                        "20,000, under 300 MiB", "; ".join(measured) or "not measured",
                        all(checks) if checks else None))
    return targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,2000,20000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", help="where to generate the trees (default: the temp dir)")
    parser.add_argument("--venv", help="the virtualenv whose esbgen is timed (default: this Python's)")
    parser.add_argument("--commands", help="a comma-separated few of: " + ", ".join(COMMANDS) + " (default: all)")
    args = parser.parse_args()
    commands = tuple(args.commands.split(",")) if args.commands else COMMANDS
    unknown = sorted(set(commands) - set(COMMANDS))
    if unknown:
        parser.error(f"unknown command(s): {', '.join(unknown)}")
    esbgen = str(Path(args.venv).resolve() / "bin" / "esbgen") if args.venv else str(Path(sys.executable).parent / "esbgen")
    base = Path(tempfile.mkdtemp(prefix="esbgen-commands-", dir=args.dir))
    try:
        rows = bench_commands(esbgen, base, [int(s) for s in args.sizes.split(",")], args.rounds, commands)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("\n" + commands_table(rows))
    for name, measured, met in commands_targets(rows):
        print(f"{'yes' if met else ('n/a' if met is None else 'NO '):4} {name}: {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def plot_commands(rows: list[dict], path: Path) -> None:
    """Seconds per channel of every command and of cp -r against the channels: a flat line is linear."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [row["channels"] for row in rows]
    figure, axes = plt.subplots(figsize=(9, 5))
    axes.plot(sizes, [row["cp_median"] / row["channels"] * 1000 for row in rows], "k--", label="cp -r")
    for name in COMMANDS:
        axes.plot(sizes, [row["commands"][name]["median"] / row["channels"] * 1000 for row in rows], marker="o",
                  label=name)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("channels")
    axes.set_ylabel("ms per channel (median)")
    axes.set_title("Every command: cost per channel (flat = linear)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

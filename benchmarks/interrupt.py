"""How long a Ctrl-C takes to be acted on, in each phase of a big clone and of its undo.

esbgen runs on a pseudo-terminal with its progress shown from the start
(``ESBGEN_PROGRESS_DELAY=0``), as an operator sees it. When the progress line names
the phase, we wait ``into`` seconds more (to be inside it, not at its first
instruction), send SIGINT as the terminal's Ctrl-C would, and time until the
process has exited. The last line it printed says what state the tree is in.

``python benchmarks/interrupt.py ROOT`` measures on a copy of the ESB root ``ROOT``.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

CLONE_PHASES = ("reading", "rendering", "checking", "applying")
UNDO_PHASES = ("checking", "applying")


def _default_sigint() -> None:
    # a bench started in the background of a shell without job control ignores SIGINT, and an
    # ignored signal stays ignored across exec: esbgen would never see the Ctrl-C it is timed on
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_in(argv: list[str], phase: str, into: float, env: dict[str, str]) -> dict:
    """Run ``argv`` on a pty; Ctrl-C ``into`` seconds after ``phase`` shows. Latency, status and last line."""
    main, secondary = pty.openpty()
    process = subprocess.Popen(argv, stdin=secondary, stdout=secondary, stderr=secondary, env=env, start_new_session=True,
                               preexec_fn=_default_sigint)
    os.close(secondary)
    seen = b""
    sent = said = None
    marker = f"esbgen: {phase}".encode()
    try:
        while True:
            if sent is None and marker in seen and time.perf_counter() >= shown + into:
                os.kill(process.pid, signal.SIGINT)
                sent = time.perf_counter()
            ready, _, _ = select.select([main], [], [], 0.005)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                if sent is None and marker not in seen and marker in seen + chunk:
                    shown = time.perf_counter()
                seen += chunk
                if sent is not None:
                    said = time.perf_counter()
            elif process.poll() is not None:
                break
    finally:
        os.close(main)
    process.wait()
    ended = time.perf_counter()
    text = seen.decode("utf-8", "replace").replace("\r", "\n")
    lines = [line.replace("\x1b[K", "").strip() for line in text.split("\n")]
    lines = [line for line in lines if line and not line.startswith("esbgen: " + phase)]
    return {
        "phase": phase,
        "interrupted": sent is not None,
        "latency_ms": (ended - sent) * 1000 if sent is not None else None,
        "message_ms": (said - sent) * 1000 if sent is not None and said is not None else None,
        "status": process.returncode,
        "message": lines[-1] if lines else "",
    }


def measure(source: Path, work: Path, esbgen: str, into: float = 0.2) -> list[dict]:
    """Ctrl-C in each phase of ``esbgen clone sops`` and of ``esbgen undo`` of it, each on a fresh copy."""
    env = {**os.environ, "ESBGEN_PROGRESS_DELAY": "0", "HOME": str(work), "ESBGEN_LOCK_TIMEOUT": "60"}
    env.pop("ESBGEN_ESB_ROOT", None)
    results = []
    for phase in CLONE_PHASES:
        root = work / f"interrupt-clone-{phase}"
        shutil.copytree(source, root, symlinks=True)
        # applying is over in under 0.2 s: Ctrl-C as it shows
        found = interrupt_in([esbgen, "clone", "sops", "--as", "bk_sops_bench", "--esb-root", str(root)], phase,
                             into if phase != "applying" else 0.0, env)
        found["command"] = "clone"
        found["target_left"] = (root / "components/confapis/bk_sops_bench").exists()
        results.append(found)
        shutil.rmtree(root, ignore_errors=True)
    root = work / "interrupt-undo"
    shutil.copytree(source, root, symlinks=True)
    subprocess.run([esbgen, "-q", "clone", "sops", "--as", "bk_sops_bench", "--esb-root", str(root)], env=env,
                   stdout=subprocess.DEVNULL, check=True)
    for phase in UNDO_PHASES:
        found = interrupt_in([esbgen, "undo", "--esb-root", str(root)], phase, into if phase == "checking" else 0.0, env)
        found["command"] = "undo"
        found["target_left"] = (root / "components/confapis/bk_sops_bench").exists()
        results.append(found)
        if not found["target_left"]:  # the undo went through: clone again for the next phase
            subprocess.run([esbgen, "-q", "clone", "sops", "--as", "bk_sops_bench", "--esb-root", str(root)], env=env,
                           stdout=subprocess.DEVNULL, check=True)
    shutil.rmtree(root, ignore_errors=True)
    return results


def show(results: list[dict]) -> str:
    lines = ["| command | phase | Ctrl-C acted on after (message shown after) | exit | clone left in the tree | message |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        latency = f"{r['latency_ms']:.0f} ms" if r["latency_ms"] is not None else "(phase not seen)"
        if r.get("message_ms") is not None:
            latency += f" ({r['message_ms']:.0f} ms)"
        lines.append(f"| {r['command']} | {r['phase']} | {latency} | {r['status']} | {'yes' if r['target_left'] else 'no'} "
                     f"| {r['message']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    source = Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory(dir=source.parent) as scratch:
        esbgen = str(Path(sys.executable).parent / "esbgen")
        print(show(measure(source, Path(scratch), esbgen)))

"""Start-up cost of the command line: ``interp --help`` and every subcommand's ``--help`` vs a bare Python.

    python benchmarks/bench_startup.py            # 11 runs each, medians

Each command runs in a fresh process (``sys.executable -m interp ...``), interleaved
with ``python -c pass``; prints median wall seconds, the ratio to bare Python, and
whether pandas, plotly, matplotlib or torch were imported (they must not be for help).
The target is ``interp --help`` under 0.3 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import positive_int  # noqa: E402

COMMANDS = [[], ["trace"], ["show"], ["ablate"], ["demo"], ["report"], ["guess-scale"], ["stability"]]
HEAVY = ("pandas", "plotly", "matplotlib", "torch")
PROBE = ("import runpy, sys; sys.argv = ['interp', *sys.argv[1:]]\n"
         "try:\n    runpy.run_module('interp', run_name='__main__')\nexcept SystemExit:\n    pass\n"
         "print('HEAVY:' + ','.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)")


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, cwd=REPO)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=positive_int, default=11)
    args = ap.parse_cli(argv)
    env_note = f"load avg {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}"
    print(f"# {env_note}, {args.runs} runs each, median wall seconds")
    print("| command | median s | bare python s | ratio | heavy modules imported |")
    print("|---|---|---|---|---|")
    for sub in COMMANDS:
        cmd = [sys.executable, "-m", "interp", *sub, "--help"]
        t, base = [], []
        for _ in range(args.runs):
            base.append(_time([sys.executable, "-c", "pass"]))
            t.append(_time(cmd))
        probe = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *sub, "--help"], capture_output=True,
                               text=True, cwd=REPO)
        heavy = next((ln[6:] for ln in probe.stderr.splitlines() if ln.startswith("HEAVY:")), "?") or "none"
        m, b = statistics.median(t), statistics.median(base)
        print(f"| interp {' '.join(sub + ['--help'])} | {m:.3f} | {b:.3f} | {m / b:.2f}x | {heavy} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

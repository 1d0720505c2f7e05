"""Sudoku solver and generator throughput, compiled vs the old pure-Python code (one core).

For every collection shipped in ``data/sudoku/*.sdm`` (or ``--file``) the
solver labels every puzzle, proving uniqueness (``max_solutions=2``), ``--repeats``
times; the old pure-Python solver (kept in ``tests/helpers`` as the reference)
labels the first ``--old-limit`` puzzles of each file, and both are compared on
that same sample. Puzzles/s are CPU time, medians over the repeats (solutions are
checked in a separate, untimed pass). The slowest puzzle (CPU time) and the number
of puzzles over 1 s are reported, also for a set of
pathological grids (no solution or several, found by fuzzing; Norvig's
"impossible" grid took the old solver 4.6 million guesses). Then the generator:
unique 9x9 puzzles with 40..50 blanks, new vs old (the same code with the old
solver's per-digit uniqueness test patched in), and the process pool.

    python benchmarks/bench_solver.py
    python benchmarks/bench_solver.py --file path/to/puzzles.sdm --old-limit 0 --generate 500
    python benchmarks/bench_solver.py --singles-only --generate 0   # without locked candidates
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import nonneg_int, path_str, positive_int  # noqa: E402
sys.path.insert(0, str(REPO / "tests"))

from helpers import old_sudoku_solver as old  # noqa: E402
from tasks.sudoku import generate as gen  # noqa: E402
from tasks.sudoku.grid import grid_to_line, is_valid_solution, parse_puzzle, read_puzzle_file  # noqa: E402
from tasks.sudoku.solver import solve  # noqa: E402

SHARED = REPO / "data" / "sudoku"
PATHOLOGICAL = [  # no clash among the givens; no solution or several
    ".....5.8....6.1.43..........1.5........1.6...3.......553.....61........4.........",  # Norvig, none
    "86........2165.........8.......27.867....1.........7..2..1....8.8.......6.....4..",  # none
    "..5...........3...1..........87........3.8...6.......2...........7....4.58.....2.",
    ".9.........7...6......6...4.6....15........2..51..........8........53.......4...6",
    ".......8.9...........2......19..3....439.1........6......8..37....3..6.5....6..4.",
    "..5..7..4...1................49..6..6..2.......9........2....93...........3.14...",
]


def timed_pass(solver, puzzles) -> tuple[float, list[float]]:
    """CPU seconds for one pass and the CPU seconds of each puzzle."""
    per = []
    clock = time.process_time
    cpu0 = clock()
    for grid in puzzles:
        t0 = clock()
        solver(grid)
        per.append(clock() - t0)
    return clock() - cpu0, per


def check_all(solver, puzzles) -> None:
    """Untimed: every solution the solver returns is valid."""
    for grid in puzzles:
        result = solver(grid)
        if result.n_solutions and not is_valid_solution(result.solution, grid):
            raise SystemExit("solver returned an invalid solution")


def bench_collection(name: str, puzzles: list, repeats: int, old_limit: int, locked: bool = True) -> list:
    def new_solve(grid):
        return solve(grid, locked_candidates=locked)

    def old_solve(grid):
        return old.solve(grid, locked_candidates=locked)

    check_all(new_solve, puzzles)
    cpus, worst = [], 0.0
    over = 0
    for _ in range(repeats):
        cpu, per = timed_pass(new_solve, puzzles)
        cpus.append(cpu)
        worst = max(worst, max(per))
        over = max(over, sum(t > 1.0 for t in per))
    n = len(puzzles)
    row = [name, n, f"{n / statistics.median(cpus):,.0f}"]
    sample = puzzles[:old_limit]
    if sample:
        new_s = statistics.median(timed_pass(new_solve, sample)[0] for _ in range(repeats))
        old_s = statistics.median(timed_pass(old_solve, sample)[0] for _ in range(max(1, repeats // 2)))
        row += [f"{len(sample) / old_s:,.0f} ({len(sample)})", f"{len(sample) / new_s:,.0f}", f"{old_s / new_s:.1f}x"]
    else:
        row += ["-", "-", "-"]
    row += [f"{1000 * worst:.2f}", over]
    return row


def legacy_generator() -> SimpleNamespace:
    """Patches that make ``sudoku_generate`` run on the old solver, as it did before."""

    def search_flat(flat, n, max_solutions, order=None, locked=True, max_guesses=0, exclude=(-1, 0)):
        s = old._search_flat([int(v) for v in flat], n, max_solutions, order, locked)
        sol = None if s.solution is None else np.asarray(old._to_digits(s.solution), dtype=np.int8)
        return SimpleNamespace(status=0, count=s.count, guesses=s.guesses, backtracks=s.backtracks, solution=sol)

    def try_blank(flat, cell, n):
        value = int(flat[cell])
        flat[cell] = 0
        if old._has_other_solution([int(v) for v in flat], n, cell, value):
            flat[cell] = value
            return False
        return True

    return SimpleNamespace(_search_flat=search_flat, _try_blank=try_blank)


def bench_generator(n: int, n_old: int, seed: int, repeats: int) -> list[list]:
    rows = []

    def rate(count: int, workers: int = 1, wall: bool = False) -> float:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        gen.generate(count, size=9, min_blanks=40, max_blanks=50, seed=seed, workers=workers)
        return count / (time.perf_counter() - wall0 if wall else time.process_time() - cpu0)

    new = statistics.median(rate(n) for _ in range(repeats))
    saved = {k: getattr(gen, k) for k in ("_search_flat", "_try_blank")}
    try:
        for k, v in vars(legacy_generator()).items():
            setattr(gen, k, v)
        old_lines = [grid_to_line(r.puzzle) for r in gen.generate(n_old, seed=seed)]
        old_rate = statistics.median(rate(n_old) for _ in range(max(1, repeats // 2)))
    finally:
        for k, v in saved.items():
            setattr(gen, k, v)
    same = old_lines == [grid_to_line(r.puzzle) for r in gen.generate(n_old, seed=seed)]
    rows.append(["generator 9x9, 40..50 blanks, 1 process (CPU)", f"{old_rate:,.0f} ({n_old})", f"{new:,.0f} ({n})",
                 f"{new / old_rate:.1f}x", "identical" if same else "DIFFERENT"])
    cores = os.cpu_count() or 1
    if cores > 1:
        pool = rate(n * cores, workers=0, wall=True)
        single = rate(n * cores, workers=1, wall=True)
        rows.append([f"generator, {cores} processes (wall, incl. start-up)", "-", f"{pool:,.0f} ({n * cores})",
                     f"{pool / single:.1f}x vs 1 process", "identical by construction"])
    return rows


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=path_str, action="append", help="puzzle file (repeatable; default: data/sudoku/*.sdm)")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N puzzles of each file")
    parser.add_argument("--old-limit", type=nonneg_int, default=300, help="puzzles per file for the old solver (0: skip)")
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--generate", type=nonneg_int, default=2000, help="puzzles to generate (0 skips)")
    parser.add_argument("--generate-old", type=positive_int, default=200, help="puzzles for the old generator")
    parser.add_argument("--seed", type=nonneg_int, default=0)
    parser.add_argument("--singles-only", action="store_true", help="solver without locked candidates")
    args = parser.parse_cli()

    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t0 = time.perf_counter()
    solve(np.zeros((9, 9), dtype=np.int8))  # load the compiled kernels
    print(f"first solve (loads or compiles the numba kernels): {time.perf_counter() - t0:.2f} s")
    files = [Path(f) for f in args.file] if args.file else sorted(SHARED.glob("*.sdm"))
    rows = []
    for path in files:
        puzzles = [r.puzzle for r in read_puzzle_file(path, limit=args.limit)]
        rows.append(bench_collection(path.name, puzzles, args.repeats, args.old_limit, not args.singles_only))
        print(f"  {rows[-1]}", flush=True)
    patho = [parse_puzzle(line) for line in PATHOLOGICAL]
    rows.append(bench_collection("pathological (fuzzed, see source)", patho, args.repeats, 0, not args.singles_only))
    header = ["collection", "puzzles", "new puzzles/s", "old puzzles/s (sample)", "new on sample", "speed-up",
              "slowest CPU ms", "> 1 s"]
    print(table(header, rows))
    if args.generate:
        print()
        print(table(["generator", "old puzzles/s", "new puzzles/s", "ratio", "output"],
                    bench_generator(args.generate, args.generate_old, args.seed, args.repeats)))
    print(f"\nload average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

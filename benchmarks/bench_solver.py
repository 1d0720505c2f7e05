"""Sudoku solver and generator throughput (pure Python, one core).

Labels every puzzle of a collection (default: ``data/sudoku/top1465.sdm``, shipped in the repository,
1465 hard puzzles; generated puzzles when that file is absent), proving uniqueness
(``max_solutions=2``), then times the generator. Prints throughput, guess
statistics and the ratio to the targets (top1465 within 60 s; 1000 moderate 9x9
puzzles within 60 s). Ratios below 1 meet the target.

    python benchmarks/bench_solver.py
    python benchmarks/bench_solver.py --file path/to/puzzles.sdm --limit 500 --generate 500
    python benchmarks/bench_solver.py --singles-only --generate 0   # without locked candidates
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tasks.sudoku.grid import is_valid_solution, read_puzzle_file  # noqa: E402
from tasks.sudoku.generate import generate  # noqa: E402
from tasks.sudoku.solver import solve  # noqa: E402

DEFAULT_FILE = REPO / "data" / "sudoku" / "top1465.sdm"
SOLVE_TARGET_S = 60.0  # whole top1465 set
GENERATE_TARGET_S = 60.0  # per 1000 puzzles with 40..50 blanks


def bench_solver(puzzles, name: str, locked: bool = True) -> None:
    guesses = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for grid in puzzles:
        result = solve(grid, locked_candidates=locked)
        if not (result.unique and is_valid_solution(result.solution, grid)):
            raise SystemExit(f"solver failure on {name}: n_solutions={result.n_solutions}")
        guesses.append(result.guesses)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    n = len(puzzles)
    rules = "singles + locked candidates" if locked else "singles only"
    print(f"solver ({rules}) {name}: {n} puzzles, all unique and valid")
    print(f"  wall {wall:.2f} s, cpu {cpu:.2f} s -> {n / cpu:.1f} puzzles/s (cpu), {1000 * cpu / n:.2f} ms/puzzle")
    print(f"  guesses: mean {statistics.mean(guesses):.1f}, median {statistics.median(guesses):.0f}, "
          f"max {max(guesses)}, solved without guessing {sum(g == 0 for g in guesses)}/{n}")
    projected = cpu * 1465 / n
    print(f"  projected 1465 puzzles: {projected:.1f} s cpu; ratio to the {SOLVE_TARGET_S:.0f} s target: "
          f"{projected / SOLVE_TARGET_S:.2f}")


def bench_generator(n: int, seed: int) -> None:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    records = generate(n, size=9, min_blanks=40, max_blanks=50, seed=seed)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    blanks = [int((r.puzzle == 0).sum()) for r in records]
    print(f"generator 9x9, 40..50 blanks: {n} unique puzzles (mean blanks {statistics.mean(blanks):.1f})")
    print(f"  wall {wall:.2f} s, cpu {cpu:.2f} s -> {1000 * cpu / n:.2f} ms/puzzle, {n / cpu:.0f} puzzles/s (cpu)")
    print(f"  projected 1000 puzzles: {cpu * 1000 / n:.1f} s cpu; ratio to the {GENERATE_TARGET_S:.0f} s target: "
          f"{cpu * 1000 / n / GENERATE_TARGET_S:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=None, help="puzzle file (default: data/sudoku/top1465.sdm)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N puzzles")
    parser.add_argument("--generate", type=int, default=1000, help="puzzles to generate (0 skips)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--singles-only", action="store_true", help="propagate naked/hidden singles only")
    args = parser.parse_args()

    path = args.file or (DEFAULT_FILE if DEFAULT_FILE.is_file() else None)
    if path is not None:
        puzzles = [r.puzzle for r in read_puzzle_file(path, limit=args.limit)]
        name = path.name
    else:
        n = args.limit or 300
        print(f"({DEFAULT_FILE} not found: timing {n} generated puzzles with 50..58 blanks instead)")
        puzzles = [r.puzzle for r in generate(n, min_blanks=50, max_blanks=58, seed=args.seed)]
        name = "generated"
    bench_solver(puzzles, name, locked=not args.singles_only)
    if args.generate:
        bench_generator(args.generate, args.seed)


if __name__ == "__main__":
    main()

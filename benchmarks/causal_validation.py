"""Attribution (AtP, integrated gradients) against exhaustive activation patching on every zoo model.

For each model: ``--pairs`` clean/corrupted pairs (Sudoku: one given changed, the puzzle kept solvable;
mazes: another maze; HRM-LM: one byte of a corpus window substituted), metric = logit difference of the
last segment (correct minus the source run's best wrong token) over the blank cells / path / next byte,
every unit (state written at a step x position) of the first ``segments`` segments scored by each
method. Prints and writes (``--out``, default benchmarks/causal_validation.md) per model: Spearman's rho
with patching over all units and over the units that matter (top 10% by |patch effect|), top-10% overlap,
the mean over pairs with its range, and seconds per pair of each method.

    python benchmarks/causal_validation.py                      # every zoo model, 2 pairs each
    python benchmarks/causal_validation.py --models trm-sudoku9 --pairs 4
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import nonempty_str, nonneg_int, path_str, positive_int  # noqa: E402

from common.cli_options import add_threads_option, set_threads  # noqa: E402

# model: (task, segments, states or None for all) -- sized so exhaustive patching fits a 2-core CPU
SETTINGS = {
    "trm-sudoku9": ("sudoku", 2, None),
    "hrm-sudoku9": ("sudoku", 2, None),
    "hrm-attn-sudoku9": ("sudoku", 2, None),
    "trm-maze9": ("maze", 2, None),
    "hrm-sudoku9-hard": ("sudoku", 2, None),
    "trm-sudoku9-hard": ("sudoku", 2, ["y"]),
    "hrm-lm-pydoc": ("text", None, None),
}


def main(argv: list[str] | None = None) -> int:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=nonempty_str, default=",".join(SETTINGS), help="comma list of zoo models")
    ap.add_argument("--pairs", type=positive_int, default=2)
    ap.add_argument("--ig-steps", type=positive_int, default=5)
    add_threads_option(ap)
    ap.add_argument("--seed", type=nonneg_int, default=0)
    ap.add_argument("--out", type=path_str, default=str(REPO / "benchmarks" / "causal_validation.md"))
    args = ap.parse_cli(argv)
    import pandas as pd

    from interp.causal.validation import validate_checkpoint, zoo_pairs
    from interp.report.tables import markdown_table
    from models.load import load_any

    set_threads(args)
    rows = []
    for name in args.models.split(","):
        task, segments, states = SETTINGS[name]
        model, _ = load_any(str(REPO / "zoo" / name))
        t0 = time.time()
        cmp, _ = validate_checkpoint(model, zoo_pairs(model, task, args.pairs, seed=args.seed), n_segments=segments,
                                     states=states, ig_steps=args.ig_steps)
        for method, g in cmp.groupby("method"):
            rows.append({
                "model": name, "segments": segments or "all", "states": ",".join(states) if states else "all",
                "method": method, "pairs": len(g), "units": int(g["n_units"].iloc[0]),
                "rho_all": _mean_range(g["spearman_all"]), "rho_top10": _mean_range(g["spearman_top"]),
                "overlap_top10": _mean_range(g["topk_overlap"]),
                "s_method": f"{g['seconds'].mean():.2f}", "s_patch": f"{g['patch_seconds'].mean():.1f}",
            })
        print(f"{name}: {time.time() - t0:.0f} s", flush=True)
        print(pd.DataFrame([r for r in rows if r["model"] == name]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    text = ("# Attribution against exhaustive patching (zoo models)\n\n"
            f"`python benchmarks/causal_validation.py --pairs {args.pairs} --threads {args.threads}`; "
            "rho = Spearman with exact patching (mean over pairs, [min, max]); top10 = the units with the 10% "
            "largest |patch effect|; s = seconds per pair.\n\n" + markdown_table(table.astype(str)) + "\n")
    Path(args.out).write_text(text)
    print(f"written to {args.out}")
    return 0


def _mean_range(s) -> str:
    return f"{s.mean():.3f} [{s.min():.3f}, {s.max():.3f}]"


if __name__ == "__main__":
    sys.exit(main())

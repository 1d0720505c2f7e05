"""The steering experiment on the hard zoo and its page, ``docs/steering.md``, in one command.

    python scripts/steering_report.py            # run what is missing (resumable per model), write the page
    python scripts/steering_report.py --page     # only rewrite the page from out/steering/*/steering.csv

Each model runs ``interp steer`` with its defaults (the standard experiment) on the first ``--limit`` puzzles of
the shipped ``data/sudoku/top1465.sdm``, one thread, into ``out/steering/<model>``; a model whose
``steering.csv`` exists is not run again (``--rerun`` forces it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.atomic import atomic_write_text  # noqa: E402
from common.cli_types import positive_int  # noqa: E402
from common.markdown import markdown_table  # noqa: E402

MODELS = ("trm-sudoku9-hard", "hrm-sudoku9-hard")
PUZZLES = "data/sudoku/top1465.sdm"
# per model: puzzles (the first ones), the start step and the scale, sized to run in minutes of one CPU thread.
# The start step is the first update of the answer state in segment 4 (HRM) or 8 (TRM: only half the segments
# are recomputed, which halves the cost); both are default start steps of `interp steer`.
SETTINGS = {"trm-sudoku9-hard": (80, 174, 0.25), "hrm-sudoku9-hard": (120, 26, 0.25)}


def command(model: str, limit: int | None, out: Path) -> list[str]:
    n, step, scale = SETTINGS.get(model, (200, None, None))
    extra = (["--steps", str(step)] if step is not None else []) + (["--scale", str(scale)] if scale else [])
    return [sys.executable, "-m", "interp", "steer", "--ckpt", f"zoo/{model}", "--puzzle-file", PUZZLES,
            "--limit", str(limit or n), *extra, "--threads", "1", "-q", "--out", str(out)]


def run(model: str, limit: int, out: Path, rerun: bool) -> None:
    if (out / "steering.csv").exists() and not rerun:
        print(f"{model}: {out / 'steering.csv'} exists (--rerun to run it again)")
        return
    cmd = command(model, limit, out)
    print("running:", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def model_section(model: str, out: Path) -> list[str]:
    table = pd.read_csv(out / "steering.csv")
    info = json.loads((out / "settings.json").read_text())
    lines = [f"## {model}", "",
             f"{info['n_puzzles']} puzzles of `{PUZZLES}` (the first ones), {info['unsteered_solved']} solved unsteered "
             f"(all {info['n_segments']} segments, no halting). Directions fitted on the first {info['n_fit']} "
             f"({info['fit_solved']} solved); evaluated on the {info['n_evaluated']} puzzles of the other "
             f"{info['n_puzzles'] - info['n_fit']} that the model fails (disjoint from the fit set). Steered state "
             f"`{info['state']}`, at the blank cells, at every update from the start step to the end. Command:", "",
             "```bash", " ".join(["interp", *command(model, info["n_puzzles"], Path("out/steering") / model)[3:-3],
                                  "--out", f"out/steering/{model}"]), "```", ""]
    fits = info.get("fits", {})
    notes = []
    for step, f in fits.items():
        bits = [f"reference norm {f['ref_norm']:.2f}"]
        if "sae" in f:
            bits.append(f"SAE fit: variance explained {f['sae']['fve']:.3f}, L0 {f['sae']['l0']:.1f}")
        if "sae_feature" in f:
            bits.append(f"feature {f['sae_feature']} (AUC for 'puzzle solved' {f.get('sae_feature_auc_solved', float('nan')):.3f})")
        notes.append(f"step {step}: " + "; ".join(bits))
    if notes:
        lines += ["Fitted at each start step: " + " | ".join(notes) + ".", ""]
    rows = []
    for _, r in table.iterrows():
        rows.append([r["direction"], "yes" if r["control"] else "", int(r["segment"]), int(r["step"]),
                     "" if pd.isna(r["scale"]) else f"{r['scale']:g}", int(r["n"]), int(r["solved_after"]),
                     f"{r['rate_after']:.2f} [{r['after_lo']:.2f}, {r['after_hi']:.2f}]", int(r["broken"]),
                     _fmt(r["metric_before"]), _fmt(r["metric_after"]), _fmt(r["cells_changed"])])
    cols = ["direction", "control", "segment", "step", "scale", "n failed", "solved after",
            "solve rate [Wilson 95%]", "broken", "metric before", "metric after", "cells changed"]
    lines.append(markdown_table(pd.DataFrame(rows, columns=cols)))
    steered = table[table["control"] == 0]
    control = table[table["control"] == 1]
    lines += ["", f"All steered settings together: {int(steered['solved_after'].sum())} of "
              f"{int(steered['n'].sum())} failed runs solved; their controls: {int(control['solved_after'].sum())} of "
              f"{int(control['n'].sum())}.", ""]
    return lines


def page(outs: dict[str, Path]) -> str:
    lines = ["# Steering out of failures (hard zoo)", "",
             "*Regenerated by `python scripts/steering_report.py`: `interp steer` on each model with the number of "
             "puzzles, start step and scale of the script's `SETTINGS` (sized to one CPU thread) and every other "
             "option at its default; see [Feature interventions and steering](feature-interventions.md) for the "
             "API and the command.*", "",
             "Question (issue 23, item 4): on hard puzzles the hard-zoo models fail by wandering, not by settling on "
             "a wrong fixed point. Can adding a direction at chosen steps - the solved-minus-failed mean difference, "
             "an SAE feature, a probe weight - or clamping the decided cells turn failures into solves? Every "
             "setting is run beside its matched control at equal budget (same failed puzzles, same segments, same "
             "cells): a Gaussian random direction of the same norm, or for the clamp as many random blank cells. "
             "Intervals are Wilson 95% intervals of the solve rate over the failed puzzles. *Metric* is "
             "`logit_diff_max` (correct minus best wrong digit, mean over blank cells) of the last segment; "
             "*cells changed* the fraction of blank cells whose final answer differs from the unsteered run.", ""]
    for model, out in outs.items():
        if (out / "steering.csv").exists():
            lines += model_section(model, out)
        else:
            lines += [f"## {model}", "", "Not run yet.", ""]
    lines += ["## Reading the result", ""]
    for model, out in outs.items():
        if (out / "steering.csv").exists():
            lines += verdicts(model, pd.read_csv(out / "steering.csv"))
    lines += ["A direction helps only where its solve rate is above its own control's; where the intervals overlap, "
              "this run has no evidence that the direction does more than a random push of the same size. The "
              "fit and evaluated puzzles are disjoint, N is small (tens of failures per model: the experiment is "
              "sized to one CPU thread), and one random direction per setting is the control.", ""]
    return "\n".join(lines)


def verdicts(model: str, table: pd.DataFrame) -> list[str]:
    """One line per steered setting: its solves against its control's, with Wilson intervals, and a verdict."""
    from common.stats import wilson_interval

    out = [f"**{model}**:", ""]
    rows = table.to_dict("records")
    for i in range(0, len(rows) - 1, 2):
        a, c = rows[i], rows[i + 1]
        if a["control"] or not c["control"]:
            continue
        la, ha = wilson_interval(int(a["solved_after"]), int(a["n"]))
        lc, hc = wilson_interval(int(c["solved_after"]), int(c["n"]))
        verdict = ("above its control (intervals disjoint)" if la > hc else
                   "below its control (intervals disjoint)" if ha < lc else "not distinguishable from its control")
        scale = "" if pd.isna(a["scale"]) else f", scale {a['scale']:g}"
        out.append(f"- {a['direction']} (step {int(a['step'])}{scale}): {int(a['solved_after'])}/{int(a['n'])} "
                   f"failures solved [{la:.2f}, {ha:.2f}] vs {c['direction']} {int(c['solved_after'])}/{int(c['n'])} "
                   f"[{lc:.2f}, {hc:.2f}]: {verdict}.")
    return out + [""]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=positive_int, help="puzzles per model (default: the model's entry of SETTINGS)")
    p.add_argument("--models", default=",".join(MODELS), help="comma list of zoo models")
    p.add_argument("--out", default="out/steering", help="where the runs go")
    p.add_argument("--page", action="store_true", help="only rewrite the page from existing runs")
    p.add_argument("--rerun", action="store_true", help="run models whose steering.csv exists again")
    p.add_argument("--doc", default="docs/steering.md", help="the page to write")
    args = p.parse_args(argv)
    outs = {m: ROOT / args.out / m for m in args.models.split(",") if m}
    if not args.page:
        for m, out in outs.items():
            run(m, args.limit, out, args.rerun)
    text = page(outs)
    atomic_write_text(ROOT / args.doc, text + "\n")
    print(f"written {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

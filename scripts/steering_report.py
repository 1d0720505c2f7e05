"""The steering experiment on the hard zoo and its page, ``docs/steering.md``, in one command.

    python scripts/steering_report.py            # run what is missing (resumable per model), write the page
    python scripts/steering_report.py --page     # only rewrite the page from out/steering/*/steering.csv

Each model runs ``interp steer`` with its defaults (the standard experiment) on the first ``--limit`` puzzles of
the shipped ``data/sudoku/top1465.sdm``, one thread, into ``out/steering/<model>``; a model whose
``steering.csv`` exists is not run again (``--rerun`` forces it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.atomic import atomic_write_text  # noqa: E402
from common.cli_format import Parser  # noqa: E402
from common.cli_types import nonempty_str, path_str, positive_int  # noqa: E402
from common.markdown import markdown_table  # noqa: E402

MODELS = ("trm-sudoku9-hard", "hrm-sudoku9-hard")
PUZZLES = "data/sudoku/top1465.sdm"
# per model: puzzles (the first ones), the start step and the scale, sized to run in minutes of one CPU thread.
# The start step is the first update of the answer state in segment 4 (HRM) or 8 (TRM: only half the segments
# are recomputed, which halves the cost); both are default start steps of `interp steer`.
SETTINGS = {"trm-sudoku9-hard": (80, 174, 0.25), "hrm-sudoku9-hard": (120, 26, 0.25)}
# a second run per model with several random controls per setting (the clamp left out: see the page)
CONTROLS = {"trm-sudoku9-hard": ["--direction", "mean_diff", "--controls", "3"],
            "hrm-sudoku9-hard": ["--direction", "mean_diff,sae", "--controls", "3"]}


def command(model: str, limit: int | None, out: Path, extra: list[str] = ()) -> list[str]:
    n, step, scale = SETTINGS.get(model, (200, None, None))
    where = (["--steps", str(step)] if step is not None else []) + (["--scale", str(scale)] if scale else [])
    return [sys.executable, "-m", "interp", "steer", "--ckpt", f"zoo/{model}", "--puzzle-file", PUZZLES,
            "--limit", str(limit or n), *where, *extra, "--threads", "1", "-q", "--out", str(out)]


def run(model: str, limit: int | None, out: Path, rerun: bool, extra: list[str] = ()) -> None:
    if (out / "steering.csv").exists() and not rerun:
        print(f"{model}: {out / 'steering.csv'} exists (--rerun to run it again)")
        return
    cmd = command(model, limit, out, extra)
    print("running:", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def model_section(model: str, out: Path, rel: str, title: str, extra: list[str] = ()) -> list[str]:
    table = pd.read_csv(out / "steering.csv")
    info = json.loads((out / "settings.json").read_text())
    lines = [f"## {title}", "",
             f"{info['n_puzzles']} puzzles of `{PUZZLES}` (the first ones), {info['unsteered_solved']} solved unsteered "
             f"(all {info['n_segments']} segments, no halting). Directions fitted on the first {info['n_fit']} "
             f"({info['fit_solved']} solved); evaluated on the {info['n_evaluated']} puzzles of the other "
             f"{info['n_puzzles'] - info['n_fit']} that the model fails (disjoint from the fit set). Steered state "
             f"`{info['state']}`, at the blank cells, at every update from the start step to the end. Command:", "",
             "```bash", " ".join(["interp", *command(model, info["n_puzzles"], Path(rel), extra)[3:-3],
                                  "--out", rel]), "```", ""]
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
        rows.append([f"`{r['direction']}`", "yes" if r["control"] else "", int(r["segment"]), int(r["step"]),
                     "" if pd.isna(r["scale"]) else f"{r['scale']:g}", int(r["n"]), int(r["solved_after"]),
                     f"{r['rate_after']:.2f} [{r['after_lo']:.2f}, {r['after_hi']:.2f}]", int(r["broken"]),
                     _fmt(r["metric_before"]), _fmt(r["metric_after"]), _fmt(r["cells_changed"]),
                     f"{r['cells_steered']:.1f}"])
    cols = ["direction", "control", "segment", "step", "scale", "n failed", "solved after",
            "solve rate [Wilson 95%]", "broken", "metric before", "metric after", "cells changed", "cells steered"]
    lines.append(markdown_table(pd.DataFrame(rows, columns=cols)))
    steered = table[table["control"] == 0]
    control = table[table["control"] == 1]
    lines += ["", f"All steered settings together: {int(steered['solved_after'].sum())} of "
              f"{int(steered['n'].sum())} failed runs solved; their controls: {int(control['solved_after'].sum())} of "
              f"{int(control['n'].sum())}.", ""]
    clamp = table[table["direction"] == "clamp_decided"]
    pushed = table[table["mode"] != "hold"] if "mode" in table else table[table["kind"] != "clamp"]
    if len(clamp) and len(pushed):
        lines += [f"Clamp: on average {clamp['cells_steered'].mean():.1f} of the {pushed['cells_steered'].mean():.1f} "
                  f"blank cells per failed puzzle were already decoded with probability >= {info.get('threshold', 0.9)} "
                  "at the start step, so clamping the decided cells nearly freezes the answer there, and its "
                  "random-cell control (as many random blank cells) picks nearly the same cells: at that step the model "
                  "is already confident about nearly every cell of a puzzle it will fail, right or wrong.", ""]
    return lines


def page(sections: list[tuple[str, Path, str, str, list[str]]]) -> str:
    """The page from ``(model, run folder, folder as shown, title, extra options)`` per run."""
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
    for model, out, rel, title, extra in sections:
        if (out / "steering.csv").exists():
            lines += model_section(model, out, rel, title, extra)
        else:
            lines += [f"## {title}", "", "Not run yet.", ""]
    lines += ["## Reading the result", ""]
    body = []
    for model, out, rel, title, extra in sections:
        if (out / "steering.csv").exists():
            body += verdicts(title, pd.read_csv(out / "steering.csv"))
    above = sum("above its control" in b for b in body)
    higher = sum(_solves(b)[0] > _solves(b)[1] for b in body if b.startswith("- "))
    settings = sum(b.startswith("- ") for b in body)
    lines += [f"Summary: {above} of {settings} steered settings solved more failures than their control with disjoint "
              f"Wilson intervals; {higher} of {settings} solved a larger fraction than their control (a setting "
              "rerun with more controls counts twice). With this many comparisons and no correction for them, a "
              "single disjoint interval is a lead to replicate on more puzzles, not an established effect.", "",
              *body]
    lines += ["A direction helps only where its solve rate is above its own control's; where the intervals overlap, "
              "this run has no evidence that the direction does more than a random push of the same size. The "
              "fit and evaluated puzzles are disjoint, N is small (tens of failures per model: the experiment is "
              "sized to one CPU thread), and the controls are one random direction per setting (three in the second "
              "run of each model, pooled in its verdicts).", ""]
    return "\n".join(lines)


def _solves(line: str) -> tuple[float, float]:
    """The steered and control solve fractions of a verdict line."""
    import re

    found = [int(a) / int(b) for a, b in re.findall(r" (\d+)/(\d+) ", line)]
    return (found[0], found[1]) if len(found) >= 2 else (0.0, 0.0)


def verdicts(model: str, table: pd.DataFrame) -> list[str]:
    """One line per steered setting: its solves against its control's, with Wilson intervals, and a verdict."""
    from common.stats import wilson_interval

    out = [f"**{model}**:", ""]
    rows = table.to_dict("records")
    for i, a in enumerate(rows):
        if a["control"]:
            continue
        group = []
        for c in rows[i + 1:]:
            if not c["control"]:
                break
            group.append(c)
        if not group:
            continue
        sc, nc = sum(int(c["solved_after"]) for c in group), sum(int(c["n"]) for c in group)
        la, ha = wilson_interval(int(a["solved_after"]), int(a["n"]))
        lc, hc = wilson_interval(sc, nc)
        verdict = ("above its control (intervals disjoint)" if la > hc else
                   "below its control (intervals disjoint)" if ha < lc else "not distinguishable from its control")
        scale = "" if pd.isna(a["scale"]) else f", scale {a['scale']:g}"
        what = f"`{group[0]['direction'].split('#')[0]}`" + (f" x{len(group)} pooled" if len(group) > 1 else "")
        mc = sum(float(c["metric_after"]) for c in group) / len(group)
        out.append(f"- `{a['direction']}` (step {int(a['step'])}{scale}): {int(a['solved_after'])}/{int(a['n'])} "
                   f"failures solved [{la:.2f}, {ha:.2f}] vs {what} {sc}/{nc} [{lc:.2f}, {hc:.2f}]: {verdict}; "
                   f"metric after {float(a['metric_after']):.2f} vs {mc:.2f} (before {float(a['metric_before']):.2f}).")
    return out + [""]


def main(argv=None) -> int:
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=positive_int, help="puzzles per model (default: the model's entry of SETTINGS)")
    p.add_argument("--models", type=nonempty_str, default=",".join(MODELS), help="comma list of zoo models")
    p.add_argument("--out", type=path_str, default="out/steering", help="where the runs go")
    p.add_argument("--page", action="store_true", help="only rewrite the page from existing runs")
    p.add_argument("--rerun", action="store_true", help="run models whose steering.csv exists again")
    p.add_argument("--doc", type=path_str, default="docs/steering.md", help="the page to write")
    args = p.parse_cli(argv)
    sections = []
    for m in [m for m in args.models.split(",") if m]:
        sections.append((m, ROOT / args.out / m, f"{args.out}/{m}", m, []))
        if m in CONTROLS:
            rel = f"{args.out}-controls/{m}"
            sections.append((m, ROOT / rel, rel, f"{m}, several random controls per setting", CONTROLS[m]))
    if not args.page:
        for m, out, _, _, extra in sections:
            run(m, args.limit, out, args.rerun, extra)
    text = page(sections)
    atomic_write_text(ROOT / args.doc, text + "\n")
    print(f"written {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

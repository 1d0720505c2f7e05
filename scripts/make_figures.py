#!/usr/bin/env python
"""Regenerate the README figures into figures/ (matplotlib PNGs), one per family of view.

    python scripts/make_figures.py                  # zoo checkpoints when present, else tiny untrained models
    python scripts/make_figures.py --puzzles 64 --out figures

Figures: step_trajectory.png (answer grid per step), jump_histogram.png,
hl_cosine.png, gate_stats.png, guess_scaling.png, probe_curves.png.
Models come from ``zoo/trm-sudoku9``, ``zoo/hrm-sudoku9`` and
``zoo/hrm-lm-pydoc`` (``$RECURSE_ZOO`` overrides the folder); a missing one
is replaced by a tiny untrained model and every figure title says which was
used. ``figures/provenance.json`` records the models (with SHA-256 of their
weights), inputs, versions and this command.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import bounded_int, path_str, seed_int  # noqa: E402


def _sha(path: Path | None) -> str | None:
    """SHA-256 of a checkpoint directory's ``model.safetensors`` (None for an untrained model)."""
    from common.hashing import file_sha256

    return None if path is None else file_sha256(path / "model.safetensors")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=path_str, default=str(REPO / "figures"), help="output folder (default: figures/)")
    ap.add_argument("--puzzles", type=bounded_int(1, 10_000), default=24, help="Sudoku puzzles per analysis (default 24)")
    ap.add_argument("--seed", type=seed_int, default=0)
    return ap.parse_cli(argv)


def _demo_models(seed: int) -> tuple[dict[str, tuple[Any, Any]], dict[str, dict[str, Any]]]:
    """The three demo models (zoo checkpoints or tiny untrained ones) and their provenance records."""
    from interp.examples import demo_model

    demo = {name: demo_model(name, seed=seed) for name in ("trm-sudoku9", "hrm-sudoku9", "hrm-lm-pydoc")}
    models = {}
    for _, info in demo.values():
        print(info.describe())
        models[info.name] = {"trained": info.trained, "path": str(info.path) if info.path else None,
                             "model.safetensors_sha256": _sha(info.path), "family": info.family}
    return demo, models


def _trace_figures(demo: dict[str, tuple[Any, Any]], args: argparse.Namespace, save: Callable[[str, Any], None]):
    """Step trajectory, jump histogram, slow/fast alignment and gate figures; returns the TRM and HRM traces."""
    import numpy as np

    import interp
    from interp.analyses import critical_steps, gate_statistics, hl_alignment
    from interp.examples import sudoku_puzzles, task_of, text_windows
    from interp.report.figures import gate_stats_plot, hl_cosine_plot, jump_histogram_plot, step_strip_plot

    (trm, trm_info), (hrm, hrm_info), (lm, lm_info) = demo["trm-sudoku9"], demo["hrm-sudoku9"], demo["hrm-lm-pydoc"]
    x, y = sudoku_puzzles(args.puzzles, cells=int(trm.cfg.seq_len), seed=args.seed)
    tr = interp.trace(trm, x, y, states=["answer"], state_puzzles=[0], task=task_of(trm))
    exact = tr.metric("exact")[:, -1].astype(bool)
    show = int(np.flatnonzero(exact)[0]) if exact.any() else 0
    save("step_trajectory", step_strip_plot(tr, show, n_frames=6, model=trm,
                                            title=f"{trm_info.tag}: answer after each step, puzzle {show} "
                                                  "[green right, red wrong, grey given; darker = more confident]"))
    save("jump_histogram", jump_histogram_plot(critical_steps(tr), tr.n_steps,
                                               title=f"Critical steps and jumps, {trm_info.tag} ({len(x)} puzzles)"))

    if int(hrm.cfg.seq_len) == int(trm.cfg.seq_len):
        xh, yh = x, y
    else:
        xh, yh = sudoku_puzzles(args.puzzles, cells=int(hrm.cfg.seq_len), seed=args.seed)
    tr_h = interp.trace(hrm, xh, yh, states=["answer"], task=task_of(hrm))
    save("hl_cosine", hl_cosine_plot({f"HRM cos(z_H, z_L) [{hrm_info.tag}]": hl_alignment(tr_h),
                                      f"TRM cos(y, z) [{trm_info.tag}]": hl_alignment(tr)},
                                     title="Slow/fast state alignment per step"))

    tx, ty = text_windows(8, int(lm.cfg.seq_len), seed=args.seed)
    tr_lm = interp.trace(lm, tx, ty, states="summary")
    save("gate_stats", gate_stats_plot(gate_statistics(tr_lm), title=f"HRM-LM gates, {lm_info.tag} (8 windows of pydoc)"))
    return x, y, tr_h


def _scaling_and_probe_figures(demo: dict[str, tuple[Any, Any]], x, y, tr_h, args: argparse.Namespace,
                               save: Callable[[str, Any], None]) -> None:
    """Guess-scaling curves (TRM) and linear probes on the HRM answer state at segment ends."""
    from interp.guess_scaling.curves import guess_scaling_curve
    from interp.report.figures import guess_scaling_plot, probe_curve_plot
    from probes.linear import probes_from_trace

    (trm, trm_info), (_, hrm_info) = demo["trm-sudoku9"], demo["hrm-sudoku9"]
    k = min(len(x), 16)
    gs = guess_scaling_curve(trm, x[:k], y[:k], strategies=("perturb",), ks=(1, 2, 4, 8),
                             rules=("majority", "confidence", "cell_majority", "oracle_any"),
                             perturbations="random", task="sudoku", n_boot=200, seed=args.seed)
    save("guess_scaling", guess_scaling_plot(gs, title=f"Guess scaling, {trm_info.tag} ({k} puzzles)"))

    seg_ends = tr_h.steps.index[tr_h.steps["segment_end"].astype(bool)].tolist()
    pr = probes_from_trace(tr_h, state=tr_h.answer_state, steps=seg_ends, max_cells=1500, n_splits=3,
                           seed=args.seed)
    save("probe_curves", probe_curve_plot(pr, title=f"Linear probes on {tr_h.answer_state} at segment ends, "
                                                     f"{hrm_info.tag}"))


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.puzzles < 4:
        print("error: --puzzles must be at least 4", file=sys.stderr)
        return 2

    import torch

    torch.set_num_threads(2)
    from common.atomic import atomic_write_text
    from interp.report.figures import save_figure
    from interp.report.run import package_versions

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    made: dict[str, str] = {}

    def save(name: str, fig) -> None:
        save_figure(fig, out / name, formats=("png",))
        made[name] = f"{name}.png"
        print(f"  {name}.png  ({time.time() - t0:.0f}s)")

    demo, models = _demo_models(args.seed)
    x, y, tr_h = _trace_figures(demo, args, save)
    _scaling_and_probe_figures(demo, x, y, tr_h, args, save)

    prov = {
        "command": "python " + " ".join(shlex.quote(a) for a in [f"scripts/{Path(__file__).name}",
                                                                 *(sys.argv[1:] if argv is None else argv)]),
        "models": models,
        "inputs": {"sudoku": f"{args.puzzles} puzzles from tasks.sudoku.generate.generate(seed={args.seed})",
                   "text": f"8 windows of the pydoc corpus (interp.examples.text_windows, seed={args.seed})"},
        "figures": made,
        "versions": package_versions(),
        "seconds": round(time.time() - t0, 1),
    }
    atomic_write_text(out / "provenance.json", json.dumps(prov, indent=1) + "\n")
    print(f"wrote {len(made)} figures to {out} in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

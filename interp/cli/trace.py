"""``interp trace``, ``interp show``, ``interp ablate``: trace a checkpoint on puzzles, show a saved trace, ablate a module.

    interp trace --ckpt zoo/trm-sudoku9 --puzzle "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"
    interp trace --ckpt zoo/trm-sudoku9 --puzzle-file puzzles.sdm --limit 100 --out traces/run1
    interp show traces/run1 --puzzle 1          # puzzles are numbered from 1, as lines in a file
    interp ablate --ckpt zoo/hrm-sudoku9 --puzzle-file puzzles.sdm --target slow --mode freeze_init

pandas, torch and the tracer are imported inside the commands, so ``interp --help`` stays fast.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


from common.labels import IGNORE_LABEL
from common.cli_format import examples
from common.cli_types import (batch_int, bounded_int, cap_note, nonempty_str, nonneg_int, path_str,
                              positive_int)
from common.cli_options import add_device_option, add_plotly, add_quiet, show_progress
from interp.cli.looped_trace import add_looped_options
from interp.cli.common import (add_puzzle_inputs, checkpoint_task, lens_options, load_model, use_color,
                               write_trace_viewer)


def _default_out(ckpt: str, inputs: np.ndarray | str, segments: int | None) -> Path:
    import numpy as np

    data = inputs.encode() if isinstance(inputs, str) else np.ascontiguousarray(inputs).tobytes()
    h = hashlib.sha256(data + str(segments).encode()).hexdigest()[:8]
    return Path("traces") / f"{Path(ckpt).resolve().name}-{h}"


def _yes(v: Any) -> str:
    return "yes" if bool(v) else "no"


def _halting_lines(tr, i: int) -> list[str]:
    """The model's own halting rule per segment: TRM's ``q_halt > 0`` (its q_continue head is never trained,
    so it is not shown), HRM's ``q_halt > q_continue``. Segments are numbered from 1."""
    import numpy as np

    if "seg/q_halt" not in tr.arrays:
        return []
    qh = tr.arrays["seg/q_halt"][i]
    qc = tr.arrays["seg/q_continue"][i] if "seg/q_continue" in tr.arrays else None
    if tr.family == "trm" or qc is None:
        cells = [f"{s + 1}: {h:+.2f}" for s, h in enumerate(qh)]
        fire, rule = np.flatnonzero(qh > 0), "q_halt > 0"
        head = "halting logit per segment (q_halt; TRM halts when q_halt > 0):"
    else:
        cells = [f"{s + 1}: {h:+.2f}/{c:+.2f}" for s, (h, c) in enumerate(zip(qh, qc))]
        fire, rule = np.flatnonzero(qh > qc), "q_halt > q_continue"
        head = "halting logits per segment (q_halt/q_continue; HRM halts when q_halt > q_continue):"
    out = [head]
    for a in range(0, len(cells), 6):
        out.append("  " + "   ".join(cells[a:a + 6]))
    out.append(f"  would halt after segment {int(fire[0]) + 1 if len(fire) else 'never'} of {len(qh)} ({rule}); "
               f"evaluation runs all {len(qh)}")
    return out


def _print_puzzle(tr, i: int, task, name: str, color: bool, all_steps: bool) -> None:
    import numpy as np

    from tasks.puzzles import render_grid, view_box

    x, y = tr.inputs[i], tr.labels[i]
    pred = tr.predictions[i]
    steps = tr.steps
    labelled = tr.labelled and (y != IGNORE_LABEL).any()
    given = (x == y) if labelled else None
    box = view_box(task, x, np.where(y > 0, y, 0))
    print(f"\n=== {name} ===")
    print("input" + (" (cropped to the input/label area of the canvas)" if task.name == "arc" else "") + ":")
    print(render_grid(x, task, given=given, color=color, box=box))
    ans = tr.answer_state
    upd = [k for k, u in enumerate(steps["updated"]) if ans in str(u).split("+")]
    exact = tr.metric("exact")[i].astype(bool) if labelled else None
    crit = -1
    if exact is not None and exact[-1]:
        bad = np.flatnonzero(~exact)
        crit = int(bad[-1]) + 1 if len(bad) else 0
    # per-step table over the steps that write the answer state
    print(f"\nsteps writing the answer state {ans!r} ({len(upd)} of {tr.n_steps})"
          + ("" if all_steps else "; rows without a change are skipped (--all-steps shows them)") + ":")
    header = f"{'step':>5} {'seg':>4} {'changed':>7}"
    if labelled:
        header += f" {'acc':>6} {'wrong':>5} {'exact':>5} {'ce':>7}"
    if "q_halt" in tr.metric_names:
        header += f" {'q_halt':>7}"
    print(header)
    prev = x
    for k in upd:
        changed = int((pred[k] != prev).sum())
        prev = pred[k]
        end = bool(steps["segment_end"][k])
        if not all_steps and changed == 0 and k != upd[-1] and k != crit:
            continue
        row = f"{k:>5} {int(steps['segment'][k]):>4} {changed:>7}"
        if labelled:
            row += (f" {tr.metric('token_acc')[i, k]:>6.3f} {int(tr.metric('n_wrong')[i, k]):>5}"
                    f" {_yes(exact[k]):>5} {tr.metric('ce')[i, k]:>7.4f}")
        if "q_halt" in tr.metric_names:
            row += f" {tr.metric('q_halt')[i, k]:>+7.2f}"
        if k == crit:
            row += "  <- becomes correct and stays correct"
        elif end and k != upd[-1]:
            row += "  (segment end)"
        print(row)
    # grids at a few steps: the first answer, the critical step, the final answer
    show = [upd[0]]
    if crit > 0 and crit not in show:
        show.append(crit)
    if tr.n_steps - 1 not in show:
        show.append(tr.n_steps - 1)
    prev, prev_name = x, "the input"
    for k in show:
        wrong = (pred[k] != y) & (y != IGNORE_LABEL) if labelled else None
        title = f"\nanswer after step {k} (segment {int(steps['segment'][k])}); [cells] changed since {prev_name}"
        if k == crit:
            title += "; correct from here on"
        print(title + ":")
        print(render_grid(pred[k], task, changed=pred[k] != prev, wrong=wrong, given=given, color=color, box=box))
        prev, prev_name = pred[k], f"step {k}"
    if labelled:
        if crit >= 0:
            print(f"\nresult: solved; correct from step {crit} (segment {int(steps['segment'][crit])}) to the end")
        else:
            first = np.flatnonzero(exact)
            extra = f" (it was correct at step {int(first[0])} but changed again)" if len(first) else ""
            print(f"\nresult: not solved; {int(tr.metric('n_wrong')[i, -1])} wrong cells at the end{extra}")
    for line in _halting_lines(tr, i):
        print(line)


# ----------------------------------------------------------------------------- commands
def cmd_trace(args: argparse.Namespace) -> int:
    if getattr(args, "loop_module", None) is not None:  # any transformers LM, per call of its loop module(s)
        from interp.cli.looped_trace import cmd_trace_looped

        return cmd_trace_looped(args)
    if getattr(args, "text", None) is not None or getattr(args, "tokens", None) is not None:
        from interp.cli.text_trace import cmd_trace_text  # language models: --text / --tokens

        return cmd_trace_text(args)
    import numpy as np

    from tasks.puzzles import SudokuFileStream, read_puzzles

    task = checkpoint_task(args.ckpt, args.task)
    streamed = task.name == "sudoku" and args.puzzle_file is not None and args.limit is None
    if streamed:  # a whole file: read and solved chunk by chunk inside the tracer, memory bounded by a chunk
        source = SudokuFileStream(args.puzzle_file, size=task.grid[0])
        n, names, notes, data, key = len(source), source.names, source.notes, source, source.digest()
    else:
        batch = read_puzzles(task, args.puzzle, args.puzzle_file, args.limit)
        n, names, notes, data, key = len(batch.inputs), batch.names, batch.notes, (batch.inputs, batch.labels), batch.inputs
    from interp.tracing.stream import trace_to_disk  # torch is imported only once the input is known to be good

    model, _ = load_model(args.ckpt)
    from interp.tracing.memory import check_run_cost

    check_run_cost(model, n, args.segments or int(getattr(model.cfg, "halt_max_steps", 1)), rows=min(n, args.batch_size),
                   where="trace", hint="trace fewer puzzles (--limit) or segments (--segments), or use a smaller "
                   "--batch-size")
    out = Path(args.out) if args.out else _default_out(args.ckpt, key, args.segments)
    n_keep = min(n, max(0, args.state_puzzles))
    states = args.states if n_keep else "summary"
    if states not in ("all", "summary"):
        states = [s.strip() for s in states.split(",") if s.strip()]
    if _world_size() > 1:  # torchrun: every rank traces its chunks, rank 0 writes the manifest and prints
        return _trace_sharded(args, model, data, out, n, names, notes, states, n_keep, task,
                              source if streamed else None)
    for note in notes[:5]:
        print(f"note: {note}", file=sys.stderr)
    trace_to_disk(model, data, out, chunk_size=args.chunk_size, batch_size=args.batch_size,
                  states=states, state_puzzles=np.arange(n_keep), n_segments=args.segments,
                  task={"name": task.name, "grid": list(task.grid)}, checkpoint=args.ckpt,
                  overwrite=args.overwrite, progress=show_progress(args) and n > 1,
                  attention=bool(getattr(args, "attention", False)), **lens_options(args))
    return _report_trace(args, out, n, names, notes, task, source if streamed else None)


def _world_size() -> int:
    import os

    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _trace_sharded(args: argparse.Namespace, model, data, out: Path, n: int, names, notes, states, n_keep: int, task,
                   source) -> int:
    """``torchrun --nproc_per_node=N -m interp trace ...``: chunk i on rank i % N (one device per rank on GPUs:
    cuda:LOCAL_RANK with nccl, else gloo on CPU), rank 0 writes the manifest and alone prints the report."""
    import os

    import numpy as np

    from interp.tracing.stream import PeerError, trace_to_disk
    from training.distributed import init_distributed, pick_device, shutdown

    device = pick_device(args.device, int(os.environ.get("LOCAL_RANK", "0")))
    info = init_distributed(device)
    try:
        model.to(device)
        kwargs = dict(chunk_size=args.chunk_size, batch_size=args.batch_size, states=states,
                      state_puzzles=np.arange(n_keep), n_segments=args.segments,
                      task={"name": task.name, "grid": list(task.grid)}, checkpoint=args.ckpt,
                      overwrite=args.overwrite, attention=bool(getattr(args, "attention", False)), distributed=True,
                      **lens_options(args))
        if not info.is_main:  # the other ranks print nothing but their own errors
            try:
                trace_to_disk(model, data, out, progress=False, **kwargs)
            except PeerError:
                return 1  # rank 0 or the failing rank reports it
            return 0
        for note in notes[:5]:
            print(f"note: {note}", file=sys.stderr)
        trace_to_disk(model, data, out, progress=show_progress(args) and n > 1, **kwargs)
    finally:
        shutdown()
    print(f"note: traced on {info.world_size} ranks ({device.type}); chunk i by rank i % {info.world_size}",
          file=sys.stderr)
    model.to("cpu")
    return _report_trace(args, out, n, names, notes, task, source)


def _report_trace(args: argparse.Namespace, out: Path, n: int, names, notes, task, source) -> int:
    from interp.tracing.store import load_trace, record_trace_files

    if source is not None:
        for note in source.notes[len(notes[:5]):][:5]:
            print(f"note: {note}", file=sys.stderr)
    # a big trace is not loaded whole: the story, the per-puzzle list and the viewer use its first chunk
    head = args.chunk_size if n > args.chunk_size else None
    tr = load_trace(out, head=head)
    if head is not None:
        print(f"note: {n} puzzles traced; the summaries below cover the first {tr.n_puzzles} "
              f"(interp.tracing.store.load_trace reads the whole trace)", file=sys.stderr)
    ck = tr.meta.get("checkpoint") or {}
    print(f"model: {tr.family} from {args.ckpt} (weights sha256 {str(ck.get('sha256'))[:12]}); "
          f"task: {task.name} {task.grid[0]}x{task.grid[1]} ({task.source})")
    seg_steps = tr.n_steps // max(1, int(tr.meta["n_segments"]))
    print(f"traced {tr.n_puzzles} puzzle(s): {tr.meta['n_segments']} segments x {seg_steps} steps = {tr.n_steps} steps; "
          f"states {', '.join(tr.state_names)} (answer: {tr.answer_state})")
    color = use_color(args)
    for i in range(min(args.show, tr.n_puzzles)):
        _print_puzzle(tr, i, task, names[i] if i < len(names) else f"puzzle {i + 1}", color, args.all_steps)
    if tr.n_puzzles > 1:
        _print_many(tr, names)
    print(f"\ntrace written to {out}")
    if getattr(args, "attention", False):
        _attention_summary(tr, task, out)
    write_trace_viewer(tr, out, names=names, n=args.viewer_puzzles, plotly_js=args.plotly)
    record_trace_files(out)  # the viewer and attention files join the folder's record (name + SHA-256)
    return 0


def _attention_summary(tr, task, out: Path) -> None:
    """Sudoku: per-head row/column/box attention mass (CSV + PNG next to the trace)."""
    stored = [s for s in tr.stored_states if s.startswith("pattern.")]
    if not stored:
        print("attention: no patterns kept (name them in --states, e.g. --states pattern, or use all)")
        return
    if task.name != "sudoku":
        print(f"attention: {', '.join(stored)} stored; the row/column/box analysis is for Sudoku only")
        return
    from interp.analyses.attention import sudoku_attention_mass
    from interp.report.figures import plot_head_masses

    df = sudoku_attention_mass(tr)
    df.to_csv(out / "attention_mass.csv", index=False)
    png = plot_head_masses(df, out / "attention_heads.png")
    best = df.loc[df[["row", "col", "box"]].max(axis=1).idxmax()]
    kind = max(("row", "col", "box"), key=lambda c: best[c])
    print(f"attention: {len(stored)} layer(s) x {df['head'].nunique()} heads; most structured: layer "
          f"{int(best['layer'])} head {int(best['head'])} at step {int(best['step'])} ({kind} mass {best[kind]:.2f}); "
          f"{out / 'attention_mass.csv'}, {png}")


def _print_many(tr, names: list[str]) -> None:
    from interp.analyses.jumps import critical_steps, jump_distribution

    df = critical_steps(tr)
    print("\nper puzzle:")
    labels = [names[i] if i < len(names) else f"puzzle {i + 1}" for i in range(min(len(df), 50))]
    width = max([24, *map(len, labels)])  # one column for every name: the table stays aligned past puzzle 9
    for i, r in df.head(50).iterrows():
        line = f"  {labels[i]:<{width}}"
        if "critical_step" in df:
            line += f" {'solved' if r['critical_step'] >= 0 else 'wrong ':<6}"
            line += f" critical step {int(r['critical_step']):>4}"
        line += f"  final wrong cells {int(r['final_error']):>3}  jump {r['jump']:.2f}"
        print(line)
    if len(df) > 50:
        print(f"  ... {len(df) - 50} more")
    d = jump_distribution(df)
    print("summary: " + ", ".join(f"{k} {v:.3g}" for k, v in d.items()))


def cmd_show(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from interp.tracing.store import load_trace

    tr = load_trace(args.dir, allow_incomplete=args.allow_incomplete, verify=not args.no_verify)
    print(repr(tr))
    if not tr.meta.get("complete", True):
        print("note: the trace is incomplete; showing its finished chunks")
    if args.viewer:  # e.g. a trace written from Python (trace_to_disk), which writes no viewer.html
        write_trace_viewer(tr, Path(args.dir), n=args.viewer_puzzles, plotly_js=args.plotly)
    if args.puzzle is not None:
        if not 1 <= args.puzzle <= tr.n_puzzles:
            raise ValueError(f"--puzzle counts from 1 (the first puzzle) to {tr.n_puzzles}, got {args.puzzle}")
        task = _task_from_meta(tr)
        if task is None:
            raise ValueError("the trace does not say which puzzle task it holds, so its grids cannot be drawn")
        _print_puzzle(tr, args.puzzle - 1, task, f"puzzle {args.puzzle} of {tr.n_puzzles}", use_color(args),
                      args.all_steps)
        return 0
    df = tr.summary("step")
    cols = [c for c in ("step", "segment", "updated", "token_acc", "exact", "ce", "q_halt") if c in df]
    cols += [c for c in df.columns if c.startswith(("delta.", "cos.")) and c not in cols]
    # a relative change with no previous state (step 0 of a model starting from zeros: x/0) is shown as a dash
    fmt = {c: (lambda v: f"{v:.4g}" if np.isfinite(v) else "-") for c in cols if c.startswith("delta.")}
    with pd.option_context("display.max_rows", args.max_rows, "display.width", 160, "display.precision", 4):
        print(df[cols].to_string(index=False, max_rows=args.max_rows, formatters=fmt))
        if tr.labelled:
            from interp.analyses.jumps import critical_steps, jump_distribution

            d = jump_distribution(critical_steps(tr))
            print("jumps: " + ", ".join(f"{k} {v:.3g}" for k, v in d.items()))
    return 0


def _task_from_meta(tr):
    """The puzzle task of a saved trace (for drawing grids), from its metadata."""
    from tasks.puzzles import TaskInfo, infer_task

    t = tr.meta.get("task")
    if isinstance(t, dict) and t.get("grid"):
        return TaskInfo(t["name"], tuple(t["grid"]), "trace")
    found = infer_task(tr.meta.get("model_config", {}), t)
    return found if found is not None and found.grid else None


def cmd_ablate(args: argparse.Namespace) -> int:
    import pandas as pd

    from interp.interventions.ablation import slow_ablation_table
    from tasks.puzzles import read_puzzles

    task = checkpoint_task(args.ckpt, args.task, command="ablate")
    batch = read_puzzles(task, args.puzzle, args.puzzle_file, args.limit)
    model, _ = load_model(args.ckpt)
    modes = [m.strip() for m in args.mode.split(",")]
    for note in batch.notes[:5]:
        print(f"note: {note}", file=sys.stderr)
    progress = show_progress(args)
    if progress:
        print(f"ablate: {len(batch.inputs)} puzzle(s), clean run + {len(modes)} ablated run(s) ({', '.join(modes)})",
              file=sys.stderr)
    table = slow_ablation_table(model, batch.inputs, batch.labels, modes=modes, target=args.target,
                                n_segments=args.segments, batch_size=args.batch_size, progress=progress)
    with pd.option_context("display.width", 160, "display.precision", 4):
        print(table.drop(columns=["target"]).to_string(index=False))
    return 0


# ----------------------------------------------------------------------------- parsers
CHUNK = bounded_int(1, 1 << 20, "puzzles per chunk in [1, 1048576]")
VIEWER = bounded_int(1, 1024, "puzzles in the viewer, in [1, 1024]")


def _common(p: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    src = add_puzzle_inputs(p)
    p.add_argument("--batch-size", type=batch_int, default=64, help="puzzles per forward pass")
    add_quiet(p)
    return src


def add_trace_parsers(sub: argparse._SubParsersAction) -> None:
    """``trace``, ``show`` and ``ablate``."""
    p = sub.add_parser("trace", help="trace a checkpoint on puzzles and print the per-step story",
                       description="Trace a checkpoint on puzzles: per-step states, decoded answers and metrics "
                                   "go to a trace directory; the story of the first puzzles is printed.",
                       epilog=examples(
                           'interp trace --ckpt zoo/trm-sudoku9 --puzzle "4.....8.5.3..........7......2.....6.....8.4'
                           '......1.......6.3.7.5..2.....1.4......"',
                           "interp trace --ckpt zoo/trm-sudoku9 --puzzle-file data/sudoku/generated_moderate.sdm "
                           "--limit 32 --out traces/run32",
                           "interp trace --ckpt zoo/trm-maze9 --puzzle-file data/maze/maze9.txt --show 2 --out traces/maze",
                           "interp trace --ckpt zoo/hrm-lm-pydoc --text 'def main():' --out traces/lm"))
    src = _common(p)
    src.add_argument("--text", type=nonempty_str, help="language models: one text, tokenised with the checkpoint's tokenizer")
    src.add_argument("--tokens", type=nonempty_str, help="language models: token ids separated by commas or spaces")
    add_device_option(p, help="auto (cuda when available, else cpu), cpu or cuda: with --text/--tokens, where a "
                      "transformers model is loaded (cpu: float32, cuda: bfloat16); under torchrun, gloo on cpu or "
                      "nccl on cuda (cuda:LOCAL_RANK per rank)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="override the weights' dtype (transformers)")
    add_looped_options(p)
    p.add_argument("--out", type=path_str, help="trace directory (default traces/<checkpoint>-<hash>)")
    p.add_argument("--states", type=nonempty_str, default="all", help="full states to keep: all, summary, or names (z_H,z_L)")
    p.add_argument("--state-puzzles", type=nonneg_int, default=16, help="keep full states for the first K puzzles")
    p.add_argument("--chunk-size", type=CHUNK, default=1024, help="puzzles per chunk file (a killed run resumes by chunk)")
    p.add_argument("--show", type=nonneg_int, default=1, help="print the step-by-step story of the first K puzzles")
    p.add_argument("--all-steps", action="store_true", help="list every answer step, also those without a change")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto", help="coloured grids (auto: on a terminal)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a different trace already in --out (only files this tool wrote; others are kept)")
    p.add_argument("--attention", action="store_true", help="also record every layer's attention pattern at every "
                   "step (pattern.layer{k}, kept like states; Sudoku: row/column/box mass per head, CSV + PNG)")
    p.add_argument("--viewer-puzzles", type=VIEWER, default=8,
                   help=f"puzzles in viewer.html (a picker switches){cap_note(VIEWER)}")
    p.add_argument("--lens", choices=["all", "answer"], default=None,
                   help="decode every state at every step (logit lens), or the answer state only (default: all for "
                        "puzzle models, answer for --text/--tokens: each decode of a language model is one pass of its "
                        "output layer over the vocabulary; on a 32000-word HRM-Text at hidden 256, --lens all costs "
                        "4.8x the plain forward, answer 2.6x; benchmarks/RESULTS.md)")
    p.add_argument("--no-confidence", action="store_true",
                   help="skip the per-cell confidence arrays (the largest summaries; a little faster)")
    add_plotly(p)
    p.set_defaults(func=cmd_trace)
    p = sub.add_parser("show", help="print a saved trace's per-step summary",
                       epilog=examples("interp show traces/run1", "interp show traces/run1 --puzzle 1   # the first puzzle",
                                       "interp show traces/run1 --viewer   # (re)write viewer.html, e.g. of a trace made in Python"))
    p.add_argument("dir", type=path_str, help="trace directory written by interp trace")
    p.add_argument("--max-rows", type=positive_int, default=60, help="rows of the per-step table to print")
    p.add_argument("--allow-incomplete", action="store_true", help="show the finished chunks of an interrupted trace")
    p.add_argument("--no-verify", action="store_true", help="skip the chunk checksums (faster; sizes and order still checked)")
    p.add_argument("--viewer", action="store_true", help="(re)write viewer.html in the trace directory")
    p.add_argument("--viewer-puzzles", type=VIEWER, default=8,
                   help=f"puzzles in viewer.html (a picker switches){cap_note(VIEWER)}")
    p.add_argument("--puzzle", type=positive_int, metavar="K",
                   help="print the step-by-step story of puzzle K (1 = the first) instead of the table")
    p.add_argument("--all-steps", action="store_true", help="list every answer step, also those without a change")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto", help="coloured grids (auto: on a terminal)")
    add_plotly(p)
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("ablate", help="Slow/H-module ablation table on puzzles",
                       epilog=examples("interp ablate --ckpt zoo/hrm-sudoku9 --puzzle-file data/sudoku/generated_moderate.sdm "
                                       "--limit 16",
                                       "interp ablate --ckpt zoo/trm-sudoku9 --puzzle-file data/sudoku/qqwing_expert.sdm "
                                       "--limit 16 --target y --mode zero"))
    _common(p)
    p.add_argument("--target", type=nonempty_str, default="slow", help="state to ablate (slow, fast, z_H, y, gate_slow, ...)")
    p.add_argument("--mode", type=nonempty_str, default="freeze_init,zero,mean", help="comma-separated: freeze_init, zero, mean, skip")
    p.set_defaults(func=cmd_ablate)

"""Step-trajectory viewer: puzzles' answers at every step, as one Plotly HTML page.

    from interp.views.trace_viewer import write_viewer
    write_viewer(trace, "viewer.html", puzzle=[0, 1, 2])  # opens offline in any browser

Left: the answer grid after the chosen step (Sudoku, maze, cropped ARC
output), cells coloured by correctness against the label and by confidence
(``interp.views.grid``), given cells grey, tokens as text. A slider (and
play button) moves through the steps. Right: linked per-step panels for the
same puzzle (state norms, relative step changes, halting logits, answer
accuracy) with a marker at the current step, thin lines at every slow-state
update (HRM ``z_H``, TRM ``y``, HRM-LM ``slow``) and dashed lines at segment
ends. HRM-LM traces show gate values and next-byte predictions per position
instead of a grid, and fusion weights per pass.

A picker switches between the page's puzzles (numbered from 1, as files count
lines); the left/right arrow keys step, Home/End jump to the first/last step.
Each puzzle opens at its step of interest (``step_of_interest``: where the
answer becomes right and stays right, else the last step). The page is
self-contained except plotly.js, which by default is ``plotly-cartesian.gz.js``
beside it (``plotly_js="file"``: plotly.js's 0.66 MB cartesian partial bundle, gzip +
base64, works offline from ``file://``; ``"cdn"``/``"inline"``: the full bundle). The
figures are stored gzip-compressed too; the page unpacks both with the browser's
``DecompressionStream`` (a 16-puzzle viewer folder is about 0.8 MB).
A small script exposes ``window.__viewer`` (``gotoStep(k)``, ``showPuzzle(i)``,
used by the tests); ``viewer.html#puzzle=2&step=5`` opens the second puzzle at step 5.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from common.atomic import atomic_write_text
from common.labels import IGNORE_LABEL
from common.plotly_html import compact_plotly_tag, plotly_js_tag
from interp.tracing.trace import Trace, TraceError
from interp.views.grid import (
    CLASS_NAMES,
    COLORSCALE,
    Z_GIVEN,
    ZMAX,
    ZMIN,
    GridSpec,
    cell_classes,
    cell_text,
    cell_z,
    grid_spec,
    step_confidence,
    to_grid,
    with_crop,
)
from interp.views.page_head import page_head

ANIMATE_OPTS = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
PLAY_OPTS = {"mode": "immediate", "fromcurrent": True, "frame": {"duration": 250, "redraw": True},
             "transition": {"duration": 0}}
SLOW_LINE = {"color": "rgba(120,120,120,0.35)", "width": 1}
SEGMENT_LINE = {"color": "rgba(60,60,60,0.7)", "width": 1, "dash": "dash"}
MARKER_LINE = {"color": "#d62728", "width": 2}


# ----------------------------------------------------------------------------- line panels
@dataclass
class Panel:
    """One per-step line panel on the right of the viewer."""

    title: str
    lines: list[dict[str, Any]] = field(default_factory=list)  # go.Scatter kwargs
    log: bool = False

    def add(self, name: str, x: np.ndarray, y: np.ndarray, **kw: Any) -> None:
        y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y).any():
            return
        mode = kw.pop("mode", "lines+markers" if len(x) <= 60 else "lines")
        self.lines.append({"name": name, "x": np.asarray(x).tolist(), "y": _nan_to_none(y), "mode": mode,
                           "marker": {"size": 4}, **kw})

    def y_range(self) -> list[float]:
        vals = np.array([v for ln in self.lines for v in ln["y"] if v is not None], dtype=np.float64)
        if self.log:
            vals = vals[vals > 0]
        if not vals.size:
            return [1e-6, 1.0] if self.log else [0.0, 1.0]
        lo, hi = float(vals.min()), float(vals.max())
        if self.log:
            return [lo / 1.5, hi * 1.5]
        pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
        return [lo - pad, hi + pad]


def _nan_to_none(y: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in y]


def _nan_to_none_2d(z: np.ndarray) -> list[list[float | None]]:
    return [_nan_to_none(row) for row in np.asarray(z, dtype=np.float64)]


def _updates(trace: Trace, state: str) -> np.ndarray:
    return np.array([state in str(u).split("+") for u in trace.steps["updated"]], dtype=bool)


def _metric(trace: Trace, name: str, puzzle: int) -> np.ndarray | None:
    if name not in trace.metric_names:
        return None
    return trace.metric(name)[puzzle].astype(np.float64)


def step_panels(trace: Trace, puzzle: int) -> list[Panel]:
    """The per-step panels of one puzzle: norms, step changes, halting (or gates, fusion), answer quality."""
    x = trace.steps["step"].to_numpy()
    lm = trace.meta.get("gate_states") or trace.meta.get("segment_unit") == "pass"
    panels: list[Panel] = []
    if lm:
        p = Panel("input mean" if trace.family == "looped" else "gate mean")  # a looped model's per-step values: inputs
        for g in trace.meta.get("gate_states", []):
            v = _metric(trace, f"mean.{g}", puzzle)
            if v is not None:
                p.add(g, x, v, connectgaps=True)
        if "seg/fusion" in trace.arrays:
            seg_end = trace.steps.index[trace.steps["segment_end"].astype(bool)].to_numpy()
            w = trace.arrays["seg/fusion"][puzzle]  # [passes, K]
            for j, src in enumerate(trace.meta.get("fusion_sources") or range(w.shape[-1])):
                p.add(f"fusion:{src}", seg_end, w[: len(seg_end), j], mode="markers",
                      marker={"size": 9, "symbol": "diamond"})
        panels.append(p)
    p = Panel("state norm")
    for s in trace.state_names:
        v = _metric(trace, f"norm.{s}", puzzle)
        if v is not None:
            p.add(s, x, v)
    panels.append(p)
    p = Panel("relative change", log=True)
    for s in trace.state_names:
        v = _metric(trace, f"delta.{s}", puzzle)
        if v is not None:
            v = np.where(_updates(trace, s) & (v > 0), v, np.nan)
            p.add(s, x, v, mode="markers", marker={"size": 5})
    panels.append(p)
    if not lm:
        p = Panel("halting logits")
        for m in ("q_halt", "q_continue"):
            v = _metric(trace, m, puzzle)
            if v is not None:
                p.add(m, x, v)
        if p.lines:
            panels.append(p)
    elif len(trace.state_names) >= 2:
        a, b = trace.state_names[:2]
        v = _metric(trace, f"cos.{a}.{b}", puzzle)
        if v is not None:
            p = Panel(f"cos({a}, {b})")
            p.add(f"cos({a},{b})", x, v)
            panels.append(p)
    p = Panel("answer")
    if trace.labelled:
        for m in ("token_acc", "exact"):
            v = _metric(trace, m, puzzle)
            if v is not None:
                p.add(m, x, v)
    else:
        v = _metric(trace, "ce", puzzle)
        if v is not None:
            p.add("ce", x, v)
    if p.lines:
        panels.append(p)
    return [p for p in panels if p.lines] or [Panel("state norm", [{"name": "none", "x": [0], "y": [0]}])]


# ----------------------------------------------------------------------------- frames
def frame_steps(trace: Trace, state: str, max_frames: int) -> list[int]:
    """Steps shown as frames: all of them, or (for long traces) those that write ``state`` or end a segment."""
    T = trace.n_steps
    if T <= max_frames:
        return list(range(T))
    keep = np.flatnonzero(_updates(trace, state) | trace.steps["segment_end"].astype(bool).to_numpy())
    if len(keep) > max_frames:
        keep = keep[np.unique(np.linspace(0, len(keep) - 1, max_frames).round().astype(int))]
    return sorted(set(keep.tolist()) | {0, T - 1})


@dataclass
class GridFrames:
    """Heatmap content for every shown step: colour values, cell text and hover text."""

    z: np.ndarray  # [F, R, C]
    text: np.ndarray  # [F, R, C] object
    hover: np.ndarray  # [F, R, C] object
    y_labels: list[str] | None = None


def puzzle_frames(trace: Trace, puzzle: int, steps: list[int], spec: GridSpec, state: str,
                  conf: np.ndarray | None) -> tuple[GridFrames, GridSpec]:
    """Grid frames of a puzzle model: the decoded ``state`` after each step."""
    pred = (trace.predictions if state == trace.answer_state else trace.latent_predictions(state))[puzzle]
    x, y = trace.inputs[puzzle], trace.labels[puzzle]
    labels = y if trace.labelled else None
    spec = with_crop(spec, x, y, pred[steps])
    p = pred[steps]
    cls = cell_classes(p, x, labels, spec)
    c = conf[steps] if conf is not None else None
    z = to_grid(cell_z(cls, c), spec)
    text = to_grid(cell_text(p, spec), spec)
    lab_txt = to_grid(cell_text(np.where(y == IGNORE_LABEL, 0, y), spec), spec)
    cls_g = to_grid(cls, spec)
    conf_g = to_grid(c, spec) if c is not None else None
    R, C = z.shape[1:]
    rr, cc = np.meshgrid(np.arange(R), np.arange(C), indexing="ij")
    hover = np.empty(z.shape, dtype=object)
    for f in range(len(steps)):
        for r in range(R):
            for k in range(C):
                h = f"row {rr[r, k] + 1}, col {cc[r, k] + 1}<br>predicted {text[f, r, k] or '·'}"
                if labels is not None and cls_g[f, r, k] != 3:
                    h += f", label {lab_txt[r, k] or '·'}"
                h += f"<br>{CLASS_NAMES[int(cls_g[f, r, k])]}"
                if conf_g is not None:
                    h += f", confidence {conf_g[f, r, k]:.3f}"
                hover[f, r, k] = h
    return GridFrames(z, text, hover), spec


def lm_frames(trace: Trace, puzzle: int, steps: list[int], spec: GridSpec) -> GridFrames:
    """HRM-LM frames: rows input / next-byte prediction of the fast state / mean gate values per position."""
    x, y = trace.inputs[puzzle], trace.labels[puzzle]
    V = int(trace.meta.get("vocab_size") or 256)
    pred = trace.predictions[puzzle][steps]  # [F, L]
    F, L = pred.shape
    rows_z, rows_t, names = [], [], []
    names.append("input")
    rows_z.append(np.full((F, L), Z_GIVEN))
    rows_t.append(np.broadcast_to(cell_text(x, spec, V), (F, L)))
    names.append(f"prediction ({trace.answer_state})")
    cls = np.where(y[None] == IGNORE_LABEL, 3, np.where(pred == y[None], 1, 0)).astype(np.int8)
    rows_z.append(cell_z(cls, None))
    rows_t.append(cell_text(pred, spec, V))
    for g in trace.meta.get("gate_states", []) if trace.family != "looped" else []:  # gate bands (not inputs)
        if g in trace.stored_states and puzzle in set(trace.state_index.tolist()):
            gv = trace.states(g, puzzles=[puzzle])[0][steps]  # [F, P, D], NaN where the gate did not fire
            gv = np.asarray(gv, np.float64)
            fired = np.isfinite(gv).sum(-1)
            m = np.where(fired > 0, np.nansum(gv, axis=-1) / np.maximum(fired, 1), np.nan)
            m = m[:, -L:]
            names.append(g)
            rows_z.append(3.0 + np.clip(m, 0.0, 0.999))  # the blue band: darker = gate more open
            rows_t.append(np.full((F, L), "", dtype=object))
    z = np.stack(rows_z, axis=1)
    text = np.stack([np.asarray(t, dtype=object) for t in rows_t], axis=1)
    hover = np.empty(z.shape, dtype=object)
    in_txt = cell_text(x, spec, V)
    lab_txt = cell_text(np.where(y == IGNORE_LABEL, 0, y), spec, V)
    for f in range(F):
        for r, name in enumerate(names):
            for k in range(L):
                h = f"{name}, position {k} (input {in_txt[k]})"
                if name.startswith("prediction"):
                    h += f"<br>predicted {text[f, r, k]}, next {lab_txt[k] if y[k] != IGNORE_LABEL else '-'}"
                elif r >= 2:
                    v = z[f, r, k] - 3.0
                    h += f"<br>mean gate {v:.3f}" if np.isfinite(v) else "<br>gate did not fire"
                hover[f, r, k] = h
    return GridFrames(z, text, hover, names)


def _frame_title(trace: Trace, puzzle: int, k: int, name: str) -> str:
    row = trace.steps.iloc[k]
    unit = trace.meta.get("segment_unit", "segment")
    t = (f"{name} · step {k}/{trace.n_steps - 1} · {unit} {int(row['segment'])} · writes {row['updated']}"
         + (" (slow update)" if bool(row["is_slow"]) else ""))
    if trace.labelled and "token_acc" in trace.metric_names:
        acc = trace.metric("token_acc")[puzzle, k]
        t += f" · token acc {acc:.2f}"
        if "n_wrong" in trace.metric_names and trace.meta.get("segment_unit") != "pass":
            t += f", {int(trace.metric('n_wrong')[puzzle, k])} wrong"
        if "exact" in trace.metric_names and bool(trace.metric("exact")[puzzle, k]):
            t += ", solved"
    return t


def step_of_interest(trace: Trace, puzzle: int) -> int:
    """The step a viewer opens at: where the answer becomes right and stays right (the jump), else the last step.

    A puzzle solved from the first step opens at step 0; an unsolved puzzle, an
    unlabelled trace or a language model opens at the last step.
    """
    last = trace.n_steps - 1
    if not (trace.labelled and "exact" in trace.metric_names) or trace.meta.get("segment_unit") == "pass":
        return last
    exact = trace.metric("exact")[puzzle].astype(bool)
    if not exact[-1]:
        return last
    bad = np.flatnonzero(~exact)
    return int(bad[-1]) + 1 if len(bad) else 0


def _puzzle_number(trace: Trace, puzzle: int) -> int:
    """The 1-based number of a puzzle (as files count lines)."""
    return int(trace.puzzle_index[puzzle]) + 1


# ----------------------------------------------------------------------------- the figure
def step_figure(trace: Trace, puzzle: int = 0, state: str | None = None, model: Any = None,
                max_frames: int = 400, title: str | None = None, initial_step: int | None = None):
    """The step-trajectory viewer of one puzzle as a ``plotly.graph_objects.Figure`` with frames and a slider.

    ``state``: which decoded state the grid shows (default the answer state;
    e.g. ``"z"`` for TRM's latent through the logit lens). ``model``: used
    only to recompute confidences from stored full states (see
    ``interp.views.grid.step_confidence``). Long traces show at most
    ``max_frames`` steps (those that write ``state`` or end a segment).
    The figure opens at ``initial_step`` (default :func:`step_of_interest`; the
    nearest shown step at or after it).
    """
    import plotly.graph_objects as go

    puzzle, state = _check_step_args(trace, puzzle, state, max_frames)
    spec = grid_spec(trace)
    steps = frame_steps(trace, state, max_frames)
    lm = spec.task == "text"
    if lm:
        frames_data = lm_frames(trace, puzzle, steps, spec)
    else:
        conf = step_confidence(trace, puzzle, state, model)
        frames_data, spec = puzzle_frames(trace, puzzle, steps, spec, state, conf)
    panels = step_panels(trace, puzzle)
    name = title or f"{trace.family or 'model'} · puzzle {_puzzle_number(trace, puzzle)}"
    want = step_of_interest(trace, puzzle) if initial_step is None else int(initial_step)
    fi = int(np.searchsorted(np.asarray(steps), min(max(want, 0), steps[-1])))
    k0 = steps[fi]
    fig, grid_pos, panel_pos, height = _subplots(lm, state, panels)
    R, C = frames_data.z.shape[1:]
    _add_grid(fig, frames_data, fi, grid_pos)
    marker_idx, ranges = _add_panels(fig, panels, panel_pos, k0, trace.n_steps)
    shapes = _step_structure_lines(trace, fig, panel_pos)
    fig.update_xaxes(title_text="step", **panel_pos[-1])
    shapes += _grid_axes(fig, lm, spec, grid_pos, R, C)
    legend = _legend(lm)
    frames = []
    for f, k in enumerate(steps):
        data = [_heat(frames_data, f)] + [{"type": "scatter", "x": [k, k], "y": [lo, hi]} for lo, hi in ranges]
        frames.append({"data": data, "traces": [0, *marker_idx], "name": str(k),
                       "layout": {"title": {"text": _frame_title(trace, puzzle, k, name) + "<br>" + legend}}})
    _step_layout(fig, _frame_title(trace, puzzle, k0, name) + "<br>" + legend, height, steps, fi)
    fig.layout.meta = {"viewer": "step", "steps": steps, "puzzle": puzzle, "number": _puzzle_number(trace, puzzle),
                       "state": state, "grid": [R, C], "initial_step": k0, "initial_index": fi, "height": height}
    out = fig.to_dict()
    out["layout"]["shapes"] = shapes
    out["frames"] = frames
    return go.Figure(out, _validate=False)


def _check_step_args(trace: Trace, puzzle: Any, state: str | None, max_frames: int) -> tuple[int, str]:
    """The puzzle index and the decoded state to show; one-line errors for anything else."""
    if not isinstance(trace, Trace):
        raise TraceError(f"write_viewer needs a Trace, got {type(trace).__name__}")
    if isinstance(puzzle, bool) or not isinstance(puzzle, (int, np.integer)) or not 0 <= int(puzzle) < trace.n_puzzles:
        raise TraceError(f"puzzle must be an index in [0, {trace.n_puzzles}), got {puzzle!r}")
    if max_frames < 2:
        raise TraceError(f"max_frames must be >= 2, got {max_frames}")
    state = trace.resolve_state(state) if state else trace.answer_state
    if state not in trace.decoded_states:
        raise TraceError(f"state {state!r} was not decoded in this trace (decoded: {trace.decoded_states})")
    return int(puzzle), state


def _subplots(lm: bool, state: str, panels: list) -> tuple[Any, dict[str, int], list[dict[str, int]], int]:
    """The figure's subplots: (figure, grid position, panel positions, height).

    Text: the position grid on top, the panels below it; puzzles: the grid left, the panels stacked right.
    """
    from plotly.subplots import make_subplots

    n = len(panels)
    if lm:
        fig = make_subplots(rows=n + 1, cols=1, row_heights=[1.4] + [1.0] * n, vertical_spacing=0.1,
                            subplot_titles=["gates and predictions per position"] + [p.title for p in panels])
        panel_pos = [{"row": i + 2, "col": 1} for i in range(n)]
        height = min(760, 250 + 120 * n)  # the slider stays above the fold of an 800 px window
    else:
        specs = [[{"rowspan": n}, {}]] + [[None, {}] for _ in range(n - 1)]
        fig = make_subplots(rows=n, cols=2, column_widths=[0.52, 0.48], specs=specs, horizontal_spacing=0.08,
                            vertical_spacing=0.11, subplot_titles=[f"decoded {state}"] + [p.title for p in panels])
        panel_pos = [{"row": i + 1, "col": 2} for i in range(n)]
        height = max(600, 170 * n + 120)
    return fig, {"row": 1, "col": 1}, panel_pos, height


def _heat(frames_data: Any, f: int) -> dict[str, Any]:
    """The grid heatmap of frame ``f``."""
    # plain dicts, not go.Heatmap: plotly's validation of hundreds of frames takes seconds
    return {"type": "heatmap", "z": _nan_to_none_2d(frames_data.z[f]), "text": frames_data.text[f].tolist(),
            "customdata": frames_data.hover[f].tolist()}


def _add_grid(fig: Any, frames_data: Any, fi: int, grid_pos: dict[str, int]) -> None:
    """The grid panel: frame ``fi``'s heatmap with the pinned colour scale and cell texts."""
    import plotly.graph_objects as go

    R, C = frames_data.z.shape[1:]
    y_vals = frames_data.y_labels if frames_data.y_labels else list(range(R))
    font = {"size": 16 if max(R, C) <= 9 else 11 if max(R, C) <= 16 else 8}
    fig.add_trace(go.Heatmap(**_heat(frames_data, fi), texttemplate="%{text}",
                             hovertemplate="%{customdata}<extra></extra>",
                             x=list(range(C)), y=y_vals, zmin=ZMIN, zmax=ZMAX, colorscale=COLORSCALE,
                             showscale=False, xgap=1, ygap=1, textfont=font, name="grid"), **grid_pos)


def _add_panels(fig: Any, panels: list, panel_pos: list[dict[str, int]], k0: int,
                n_steps: int) -> tuple[list[int], list[tuple[float, float]]]:
    """The per-step panels, each with its own current-step marker trace: (marker trace indices, y ranges)."""
    import plotly.graph_objects as go

    marker_idx, ranges = [], []
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for p, pos in zip(panels, panel_pos):
        for j, ln in enumerate(p.lines):
            ln = dict(ln)
            ln.setdefault("line", {"color": colors[j % len(colors)], "width": 1.5})
            if "marker" in ln and "color" not in ln["marker"]:
                ln["marker"] = {**ln["marker"], "color": colors[j % len(colors)]}
            fig.add_trace(go.Scatter(legendgroup=p.title, legendgrouptitle_text=p.title, **ln), **pos)
        lo, hi = p.y_range()
        ranges.append((lo, hi))
        fig.add_trace(go.Scatter(x=[k0, k0], y=[lo, hi], mode="lines", line=MARKER_LINE,
                                 showlegend=False, hoverinfo="skip", name="current step"), **pos)
        marker_idx.append(len(fig.data) - 1)
        if p.log:
            fig.update_yaxes(type="log", range=[np.log10(lo), np.log10(hi)], dtick=log_dtick(lo, hi),
                             exponentformat="power", tickfont={"size": 10}, **pos)
        else:
            fig.update_yaxes(range=[lo, hi], **pos)
        fig.update_xaxes(range=[-0.5, n_steps - 0.5], **pos)
    return marker_idx, ranges


def log_dtick(lo: float, hi: float, max_ticks: int = 4) -> int:
    """Decades between ticks of a log axis from ``lo`` to ``hi``: at most ``max_ticks`` labels, so they never overlap."""
    decades = max(np.log10(hi) - np.log10(lo), 1.0)
    return max(1, int(np.ceil(decades / max_ticks)))


def _step_structure_lines(trace: Trace, fig: Any, panel_pos: list[dict[str, int]]) -> list[dict[str, Any]]:
    """Step structure on every panel: thin lines at slow updates, dashed at segment ends."""
    slow = trace.steps.index[trace.steps["is_slow"].astype(bool)].tolist()
    ends = trace.steps.index[trace.steps["segment_end"].astype(bool)].tolist()[:-1]
    shapes = []
    for pos in panel_pos:
        refs = _axis_refs(pos, fig)
        span = {"xref": refs["xref"], "yref": f"{refs['yref']} domain", "y0": 0, "y1": 1, "layer": "below"}
        shapes += [{"type": "line", "x0": k, "x1": k, "line": SLOW_LINE, **span} for k in slow]
        shapes += [{"type": "line", "x0": k + 0.5, "x1": k + 0.5, "line": SEGMENT_LINE, **span} for k in ends]
    return shapes


def _grid_axes(fig: Any, lm: bool, spec: Any, grid_pos: dict[str, int], R: int, C: int) -> list[dict[str, Any]]:
    """Grid axes: square cells, row 0 on top; returns the Sudoku box lines to draw."""
    shapes = []
    if lm:
        fig.update_yaxes(autorange="reversed", type="category", **grid_pos)
        fig.update_xaxes(showgrid=False, title_text="position", **grid_pos)
    else:
        fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", showticklabels=False,
                         showgrid=False, zeroline=False, **grid_pos)
        fig.update_xaxes(constrain="domain", showticklabels=False, showgrid=False, zeroline=False, **grid_pos)
        if spec.box:
            refs = _axis_refs(grid_pos, fig)
            edge = {"type": "line", "line": {"color": "black", "width": 2.5}, **refs}
            for b in range(1, spec.rows // spec.box):
                v = b * spec.box - 0.5
                shapes.append({"x0": v, "x1": v, "y0": -0.5, "y1": R - 0.5, **edge})
                shapes.append({"x0": -0.5, "x1": C - 0.5, "y0": v, "y1": v, **edge})
    return shapes


def _legend(lm: bool) -> str:
    """The colour key shown under every frame's title."""
    return ("<span style='font-size:11px'>cells: <span style='color:#1a7837'>■</span> correct  <span style='color:#b2182b'>■</span> wrong "
            "(darker = more confident)  <span style='color:#999'>■</span> given"
            + ("  <span style='color:#2166ac'>■</span> gate value" if lm else "")
            + "  ·  grey lines: slow updates, dashed: segment ends</span>")


def _step_layout(fig: Any, title: str, height: int, steps: list[int], fi: int) -> None:
    """Title, size, the step slider (opening at frame ``fi``), play/pause buttons and the legend."""
    slider = {
        "active": fi, "pad": {"t": 50}, "len": 0.84, "x": 0.16, "currentvalue": {"prefix": "step ", "visible": True},
        "steps": [{"label": str(k), "method": "animate", "args": [[str(k)], ANIMATE_OPTS]} for k in steps],
    }
    buttons = [{"label": "▶ play", "method": "animate", "args": [None, PLAY_OPTS]},
               {"label": "❚❚ pause", "method": "animate", "args": [[None], ANIMATE_OPTS]}]
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 14}},
        height=height, template="plotly_white", sliders=[slider], margin={"t": 90, "b": 40, "l": 40, "r": 20},
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0.0, "y": 0, "xanchor": "left",
                      "yanchor": "top", "pad": {"t": 68, "r": 10}, "showactive": False, "buttons": buttons}],
        legend={"groupclick": "toggleitem", "font": {"size": 10}},
    )


def _axis_refs(pos: dict[str, int], fig: Any) -> dict[str, str]:
    sp = fig.get_subplot(pos["row"], pos["col"])
    return {"xref": sp.xaxis.plotly_name.replace("axis", ""), "yref": sp.yaxis.plotly_name.replace("axis", "")}


_CSS = """  #viewer-bar { padding: 4px 10px; font-size: 13px; display: flex; gap: 14px; align-items: center; }
  #viewer-bar .hint { color: #777; }
"""

_PAGE = page_head(_CSS) + """<body>
__PLOTLY__
<div id="viewer-bar">
  <label>puzzle <select id="viewer-puzzle">__OPTIONS__</select></label>
  <span class="hint">&larr; / &rarr; step &middot; Home / End: first / last step &middot; the viewer opens at the step of interest (where the answer becomes right, else the last step)</span>
</div>
<div id="viewer" class="plotly-graph-div" style="width:100%;"></div>
<script type="text/plain" id="viewer-data">
__DATA__
</script>
<script type="text/javascript">
__JS__
</script>
</body>
</html>
"""

_VIEWER_JS = """
(function () {
  // the figures travel gzip-compressed (base64), and so may plotly.js (plotly-cartesian.gz.js beside the page):
  // both are unpacked here with the browser's DecompressionStream, which also works from file://
  function inflate(b64) {
    if (typeof DecompressionStream === 'undefined') {
      return Promise.reject(new Error('this browser cannot unpack the viewer (it needs DecompressionStream: ' +
                                      'Chrome 80, Firefox 113, Safari 16.4 or later)'));
    }
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
  }
  var plotlyReady = window.Plotly ? Promise.resolve() : inflate(window.__plotlyPacked || '').then(function (src) {
    var s = document.createElement('script');
    s.text = src;
    document.head.appendChild(s);
  });
  var figs = [];
  var dataReady = inflate(document.getElementById('viewer-data').textContent.trim()).then(function (t) { figs = JSON.parse(t); });
  var gd = document.getElementById('viewer');
  var picker = document.getElementById('viewer-puzzle');
  var config = {responsive: true, displaylogo: false};
  var cur = {puzzle: -1, index: 0, names: [], frames: []};
  var featuresHref = __FEATURES__;  // feature pages: a clicked cell opens its top features there
  function featureLink(row, col) {
    var m = gd.layout.meta;
    return featuresHref + '#puzzle=' + m.puzzle + '&step=' + cur.names[cur.index] + '&cell=' + (row * m.grid[1] + col);
  }
  function shown() {
    var t = (gd.data && gd.data[0] && gd.data[0].text) || [];
    return t.map(function (r) { return r.map(function (c) { return c === '' ? '.' : c; }).join(' '); }).join('/');
  }
  function mark(k) {
    var i = cur.names.indexOf(String(k));
    if (i >= 0) { cur.index = i; }
    gd.setAttribute('data-step', String(k));
    gd.setAttribute('data-puzzle', String(cur.puzzle + 1));
    gd.setAttribute('data-grid', shown());
    document.body.setAttribute('data-viewer-step', String(k));
    document.body.setAttribute('data-viewer-puzzle', String(cur.puzzle + 1));
  }
  function gotoIndex(i) {
    // apply frame i with one Plotly.update (traces, title, slider position); the slider's own
    // steps animate the same frames, and repeated Plotly.animate calls can stall in headless browsers
    i = Math.max(0, Math.min(cur.names.length - 1, i));
    cur.index = i;
    var fr = cur.frames[i], upd = {};
    fr.data.forEach(function (d, j) {
      Object.keys(d).forEach(function (key) {
        if (key === 'type') { return; }
        if (!upd[key]) { upd[key] = fr.traces.map(function () { return undefined; }); }
        upd[key][j] = d[key];
      });
    });
    var lay = {'sliders[0].active': i};
    if (fr.layout && fr.layout.title) { lay['title.text'] = fr.layout.title.text; }
    return Plotly.update(gd, upd, lay, fr.traces).then(function () { mark(cur.names[i]); return shown(); });
  }
  function gotoStep(k) {
    var i = cur.names.indexOf(String(k));
    if (i < 0) { return Promise.reject(new Error('step ' + k + ' is not a frame of this viewer')); }
    return gotoIndex(i);
  }
  function showPuzzle(p) {
    p = Math.max(0, Math.min(figs.length - 1, p));
    var f = JSON.parse(JSON.stringify(figs[p]));  // plotly mutates what it is given; keep the originals clean
    cur.puzzle = p;
    cur.names = f.layout.meta.steps.map(String);
    cur.index = f.layout.meta.initial_index;
    cur.frames = JSON.parse(JSON.stringify(f.frames));
    picker.value = String(p);
    gd.style.height = f.layout.meta.height + 'px';
    return Plotly.newPlot(gd, {data: f.data, layout: f.layout, frames: f.frames, config: config}).then(function () {
      gd.on('plotly_sliderchange', function (e) { setTimeout(function () { mark(e.step.label); }, 0); });
      gd.on('plotly_animatingframe', function (e) { if (e && e.name !== undefined) { mark(e.name); } });
      if (featuresHref) {
        gd.on('plotly_click', function (e) {
          var pt = e && e.points && e.points[0];
          if (pt && pt.data && pt.data.name === 'grid') { window.location.href = featureLink(pt.y, pt.x); }
        });
      }
      mark(cur.names[cur.index]);
      return shown();
    });
  }
  picker.addEventListener('change', function () { showPuzzle(parseInt(picker.value, 10)); });
  document.addEventListener('keydown', function (e) {
    if (e.target && /^(SELECT|INPUT|TEXTAREA)$/.test(e.target.tagName) && e.target !== picker) { return; }
    if (e.altKey || e.ctrlKey || e.metaKey) { return; }
    var moves = {ArrowLeft: cur.index - 1, ArrowRight: cur.index + 1, Home: 0, End: cur.names.length - 1};
    if (!(e.key in moves)) { return; }
    if (e.target === picker && (e.key === 'Home' || e.key === 'End')) { return; }
    e.preventDefault();
    if (e.target === picker) { picker.blur(); }
    gotoIndex(moves[e.key]);
  });
  window.__viewer = {div: gd, gotoStep: gotoStep, gotoIndex: gotoIndex, showPuzzle: showPuzzle, shownGrid: shown,
                     featureLink: featureLink, state: cur, get steps() { return cur.names; }};
  var hash = window.location.hash || '';
  var mp = hash.match(/puzzle=(\\d+)/), ms = hash.match(/step=(\\d+)/);
  window.__viewer.ready = Promise.all([plotlyReady, dataReady]).then(function () {
    return showPuzzle(mp ? parseInt(mp[1], 10) - 1 : 0);
  }).then(function () {
    if (ms) { return gotoStep(parseInt(ms[1], 10)); }
  });
  window.__viewer.ready.catch(function (e) {
    var bar = document.getElementById('viewer-bar');
    bar.insertAdjacentHTML('afterend', '<p id="viewer-error" style="color:#b2182b;padding:0 10px"></p>');
    document.getElementById('viewer-error').textContent = 'The viewer could not start: ' + e.message;
  });
})();
"""


def viewer_html(figures: list[Any], labels: list[str], plotly_tag: str, title: str = "step viewer",
                features_href: str | None = None) -> str:
    """The viewer page: a puzzle picker over ``figures`` (from ``step_figure``), keyboard stepping, plotly.js by ``plotly_tag``;
    with ``features_href`` (``interp.views.feature_pages``), clicking a grid cell opens its top features there."""
    import base64
    import gzip
    import html as html_lib
    import json

    import plotly.io as pio

    data = "[" + ",".join(pio.to_json(f, validate=False) for f in figures) + "]"
    # gzip + base64 (about 30x smaller: frames repeat most of their text); the page unpacks it
    data = base64.b64encode(gzip.compress(data.encode("utf-8"), 9, mtime=0)).decode("ascii")
    data = "\n".join(data[i:i + 4096] for i in range(0, len(data), 4096))
    options = "".join(f'<option value="{i}">{html_lib.escape(lab)}</option>' for i, lab in enumerate(labels))
    return (_PAGE.replace("__TITLE__", html_lib.escape(title)).replace("__PLOTLY__", plotly_tag)
            .replace("__OPTIONS__", options).replace("__JS__", _VIEWER_JS.replace("__FEATURES__", json.dumps(features_href)))
            .replace("__DATA__", data))


def write_viewer(trace: Trace, path: str | os.PathLike, puzzle: int | Sequence[int] = 0, state: str | None = None,
                 model: Any = None, max_frames: int = 400, title: str | None = None,
                 names: Sequence[str] | None = None, plotly_js: str = "file",
                 assets_dir: str | os.PathLike | None = None, features_href: str | None = None) -> Path:
    """Write the step-trajectory viewer of ``trace``'s puzzle(s) ``puzzle`` to ``path`` (one HTML page).

    ``puzzle``: one index or several (a picker switches between them; ``viewer.html#puzzle=2&step=5``
    opens the second at step 5). ``names``: the picker's label for each of them
    (default ``puzzle N``, numbered from 1). ``plotly_js``: ``file`` (the compact
    ``plotly-cartesian.gz.js`` beside the page, or in ``assets_dir``: works offline), ``cdn`` or ``inline``
    (see ``common.plotly_html.plotly_js_tag``). ``features_href``: feature pages (``interp features``) that a
    clicked grid cell opens at ``#puzzle=P&step=K&cell=C``. Returns the path written. See ``step_figure``
    for the other arguments.
    """
    puzzles = [puzzle] if isinstance(puzzle, (int, np.integer)) and not isinstance(puzzle, bool) else list(puzzle)
    if not puzzles:
        raise TraceError("write_viewer needs at least one puzzle")
    if names is not None and len(names) != len(puzzles):
        raise TraceError(f"names must have one entry per puzzle ({len(puzzles)}), got {len(names)}")
    figs = [step_figure(trace, puzzle=p, state=state, model=model, max_frames=max_frames, title=title)
            for p in puzzles]
    labels = []
    for j, f in enumerate(figs):
        num = f.layout.meta["number"]
        labels.append(f"puzzle {num}" + (f" ({names[j]})" if names is not None and names[j] != f"puzzle {num}" else ""))
    tag = compact_plotly_tag(path, assets_dir) if plotly_js == "file" else plotly_js_tag(path, plotly_js, assets_dir)
    page = viewer_html(figs, labels, tag, title=f"{trace.family or 'model'} step viewer", features_href=features_href)
    return atomic_write_text(path, page)


__all__ = ["write_viewer", "step_figure", "step_panels", "frame_steps", "step_of_interest", "viewer_html", "Panel", "log_dtick",
           "ANIMATE_OPTS"]

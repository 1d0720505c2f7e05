"""What the step viewer draws in each cell: layout of the answer grid, cell classes and confidence.

A puzzle answer is a flat token sequence; the viewer shows it as a grid
(Sudoku 9x9 / 4x4, an N x N maze, the cropped ARC output) and colours every
cell by one number ``z`` so a single heatmap with a fixed colour scale
(``ZMIN``..``ZMAX``, pinned across frames) can show both *correctness* and
*confidence*::

    z in [0, 1]   wrong cell,     darker red   = more confident
    z in [1, 2]   correct cell,   darker green = more confident
    z = 2.5       given cell (the input already holds the label)
    z in [3, 4]   unscored cell (no label), darker blue = more confident

Confidence is the maximum softmax probability of the decoded state. Traces do
not store it (only the argmax), so it comes from a ``conf/<state>`` array when
a trace has one, or is recomputed from stored full states with the model's
``decode``; without either, every cell gets a neutral 0.75.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.labels import IGNORE_LABEL
from interp.tracing.trace import Trace, TraceError
from tasks.arc.grid import content_box
from tasks.task_info import sudoku_box, trace_task

ZMIN, ZMAX = 0.0, 4.0
Z_GIVEN = 2.5
NEUTRAL_CONFIDENCE = 0.75
CLASS_NAMES = {0: "wrong", 1: "correct", 2: "given", 3: "unscored"}


def _scale(points: list[tuple[float, str]]) -> list[list[Any]]:
    return [[(z - ZMIN) / (ZMAX - ZMIN), c] for z, c in points]


# piecewise colour scale over z (see module docstring); the tiny offsets make hard band edges
COLORSCALE = _scale([
    (0.0, "#fbe3e0"), (0.999, "#b2182b"),
    (1.0, "#e3f4dd"), (1.999, "#1a7837"),
    (2.0, "#d9d9d9"), (2.999, "#d9d9d9"),
    (3.0, "#e1ecf7"), (4.0, "#2166ac"),
])


@dataclass(frozen=True)
class GridSpec:
    """How a flat answer of ``seq_len`` tokens is laid out for display."""

    task: str  # sudoku | maze | arc | tokens | text
    rows: int
    cols: int
    box: int = 0  # Sudoku box side (3 for 9x9), 0 otherwise
    crop: tuple[int, int, int, int] | None = None  # ARC: (r0, r1, c0, c1) of the canvas to show

    @property
    def shown_shape(self) -> tuple[int, int]:
        if self.crop is None:
            return self.rows, self.cols
        r0, r1, c0, c1 = self.crop
        return r1 - r0, c1 - c0


def grid_spec(trace: Trace) -> GridSpec:
    """The grid layout of a trace's answers, from its task metadata or (failing that) vocab and length."""
    L = int(trace.inputs.shape[1])
    fam = trace.family
    cfg = dict(trace.meta.get("model_config") or {})
    if fam == "hrm_lm" or trace.meta.get("segment_unit") == "pass" or cfg.get("causal"):
        return GridSpec("text", 1, L)
    info = trace_task(cfg, trace.meta.get("task"), L)
    if info is not None:
        r, c = info.grid
        return GridSpec(info.name, r, c, sudoku_box(r) if info.name == "sudoku" else 0)
    side = math.isqrt(L)
    if side * side == L:
        return GridSpec("tokens", side, side)
    return GridSpec("tokens", 1, L)


def with_crop(spec: GridSpec, inputs: np.ndarray, labels: np.ndarray, preds: np.ndarray) -> GridSpec:
    """For ARC, crop the canvas to the label (or, without one, to everything predicted or given)."""
    if spec.task != "arc":
        return spec
    lab = labels[labels != IGNORE_LABEL]
    src = labels[None] if lab.size else np.concatenate([inputs[None], preds])
    box = content_box(src, spec.rows, spec.cols)
    return GridSpec(spec.task, spec.rows, spec.cols, 0, box)


def cell_text(tokens: np.ndarray, spec: GridSpec, vocab_size: int | None = None) -> np.ndarray:
    """Display strings for tokens (digits for Sudoku, maze symbols, ARC colours, bytes for text)."""
    t = np.asarray(tokens).astype(np.int64)
    if spec.task in ("sudoku", "maze", "arc"):
        from tasks.puzzles import cell_chars

        chars = cell_chars(spec.task, spec.rows)
        if spec.task == "sudoku":
            chars = {**chars, 0: "", 1: ""}
        elif spec.task == "maze":
            chars = {**chars, 2: "", 0: ""}
        else:
            chars = {**chars, 0: "", 1: "·"}
        table = np.array([chars.get(i, "?") for i in range(int(max(t.max(initial=0), max(chars))) + 1)], dtype=object)
        return table[np.clip(t, 0, len(table) - 1)]
    if spec.task == "text" and (vocab_size or 256) <= 256:
        return np.vectorize(_byte_char, otypes=[object])(t) if t.size else t.astype(object)
    return t.astype(str).astype(object)


def _byte_char(b: int) -> str:
    if b == 32:
        return "␣"
    if b == 10:
        return "⏎"
    if 33 <= b < 127:
        return chr(b)
    return f"\\x{b:02x}" if 0 <= b < 256 else "?"


def cell_classes(pred: np.ndarray, inputs: np.ndarray, labels: np.ndarray | None, spec: GridSpec) -> np.ndarray:
    """Per cell of [..., L] predictions: 0 wrong, 1 correct, 2 given, 3 unscored.

    *Given* cells are labelled cells whose input already equals the label (the
    cells ``interp.tracing.metrics.eval_mask`` leaves out: Sudoku clues, maze walls) and
    that the model reproduces; a given it overwrites counts as wrong (exact
    accuracy counts it). Without labels, Sudoku digits in the input count as given.
    """
    pred = np.asarray(pred)
    out = np.full(pred.shape, 3, dtype=np.int8)
    if labels is not None and (np.asarray(labels) != IGNORE_LABEL).any():
        y = np.broadcast_to(labels, pred.shape)
        x = np.broadcast_to(inputs, pred.shape)
        scored = y != IGNORE_LABEL
        out = np.where(scored, np.where(pred == y, 1, 0), 3).astype(np.int8)
        out[scored & (x == y) & (pred == y)] = 2  # a clue the model reproduces; a clue it overwrites stays red
        return out
    if spec.task == "sudoku":
        x = np.broadcast_to(inputs, pred.shape)
        out[x >= 2] = 2
    return out


def cell_z(classes: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
    """Colour value of each cell (module docstring); confidence in [0, 1] or None (neutral)."""
    c = np.asarray(classes)
    if confidence is None:
        conf = np.full(c.shape, NEUTRAL_CONFIDENCE)
    else:
        conf = np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=NEUTRAL_CONFIDENCE)
    # stay strictly inside a class's band [k, k + 1) so a confident cell never takes the next band's colour
    conf = np.clip(conf, 0.0, 0.999)
    base = np.select([c == 0, c == 1, c == 3], [0.0, 1.0, 3.0], default=np.nan)
    return np.where(c == 2, Z_GIVEN, base + conf)


def to_grid(flat: np.ndarray, spec: GridSpec) -> np.ndarray:
    """[..., L] -> [..., rows, cols] (cropped for ARC)."""
    a = np.asarray(flat)
    g = a.reshape(*a.shape[:-1], spec.rows, spec.cols)
    if spec.crop is not None:
        r0, r1, c0, c1 = spec.crop
        g = g[..., r0:r1, c0:c1]
    return g


def step_confidence(trace: Trace, puzzle: int, state: str | None = None, model: Any = None) -> np.ndarray | None:
    """[T, L] max softmax probability of the decoded ``state`` for one puzzle, or None if unknown.

    Read from a ``conf/<state>`` array when the trace holds one; otherwise,
    with ``model`` given and the puzzle's full states stored, recomputed with
    ``model.decode`` (the same lens the tracer used for the argmax).
    """
    s = trace.resolve_state(state or trace.answer_state)
    key = f"conf/{s}"
    if key in trace.arrays:
        return np.asarray(trace.arrays[key][puzzle], dtype=np.float32)
    if model is None or s not in trace.stored_states or puzzle not in set(trace.state_index.tolist()):
        return None
    import torch

    st = trace.states(s, puzzles=[puzzle])[0]  # [T, P, D]
    dev = next(iter(model.parameters())).device
    with torch.no_grad():
        logits = model.decode(torch.as_tensor(np.asarray(st, dtype=np.float32), device=dev))
        conf = torch.softmax(logits.float(), dim=-1).amax(-1)
    conf = conf.cpu().numpy()
    if conf.shape != (trace.n_steps, trace.inputs.shape[1]):
        raise TraceError(f"decoded confidence has shape {conf.shape}, expected {(trace.n_steps, trace.inputs.shape[1])}")
    return conf


__all__ = ["GridSpec", "grid_spec", "with_crop", "cell_text", "cell_classes", "cell_z", "to_grid",
           "step_confidence", "COLORSCALE", "ZMIN", "ZMAX", "Z_GIVEN", "CLASS_NAMES"]

"""Attribution viewer: where (cell) and when (step) each unit moves the metric, as one offline Plotly page.

    from interp.views.attribution_viewer import write_attribution_viewer
    write_attribution_viewer(result.scores, pairs, "attribution.html", task=task)

Input: the score table of ``interp.causal.attribute`` (one row per puzzle,
method and unit = (step hook, position)) and the :class:`PairSet` it explains.
Pickers choose the puzzle, the method (atp / ig / patch) and the state; a
slider (and the arrow keys) choose the step. Left: the puzzle grid (a strip of
tokens for text models) with each cell coloured by its score at that step,
the clean puzzle's digits drawn in it, the corrupted cell(s) outlined in
orange and the cell(s) the metric reads in dotted green. Right: the step x
position heatmap of the same scores with the chosen step marked and segment
ends dashed. Negative positions are the puzzle-embedding prefix (heatmap only).

"all states" sums, at each step, the scores of every state written at that
step (for attribution patching, to first order the effect of patching them
together; for exact patching only an approximation of it, since effects need
not add). Colours are a diverging scale centred at 0 with a symmetric range
per method and state choice, shared by all puzzles and steps so they compare;
"scale per step" rescales the grid to the chosen step instead.

Compact encoding: the scores of one (puzzle, method, state, step) row are
integers ``q`` in ``[-Q, Q]`` (``Q`` = ``QUANT``) with ``score = q * unit``,
``unit`` = the row's largest |score| over ``Q`` (one unit per row keeps early
steps, often orders of magnitude below the last, readable); a missing unit
is null.
``read_viewer_data`` returns the embedded payload (tests use it).
"""

from __future__ import annotations

import html as html_lib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from interp.causal.errors import CausalError
from interp.views.page_head import page_head

QUANT = 999
REQUIRED = ("puzzle", "method", "step", "segment", "state", "position", "score")
ALL_STATES = "all"


def _check(scores: Any, pairs: Any) -> pd.DataFrame:
    """The usable part of ``scores`` after one-line checks against ``pairs``."""
    if not isinstance(scores, pd.DataFrame):
        raise CausalError(f"the attribution viewer needs a score table (DataFrame), got {type(scores).__name__}")
    missing = [c for c in REQUIRED if c not in scores.columns]
    if missing:
        raise CausalError(f"the score table lacks columns {', '.join(missing)}")
    if scores.empty:
        raise CausalError("the score table is empty: nothing to show")
    dup = scores.duplicated(["puzzle", "method", "step", "state", "position"])
    if dup.any():
        r = scores[dup].iloc[0]
        raise CausalError(f"the score table has several rows for one unit (puzzle {r['puzzle']}, method "
                          f"{r['method']}, step {r['step']}, state {r['state']}, position {r['position']})")
    n, L = pairs.clean.shape
    bad = sorted({int(p) for p in scores["puzzle"].unique()} - set(range(n)))
    if bad:
        raise CausalError(f"the score table has puzzle {bad[0]}, but the pairs hold {n} (0..{n - 1})")
    if int(scores["position"].max()) >= L:
        raise CausalError(f"the score table has position {int(scores['position'].max())}, "
                          f"but the inputs have {L} positions")
    return scores


def _layout(task: Any, pairs: Any) -> dict[str, Any]:
    """How positions 0..L-1 are drawn: a grid (with an ARC crop) or, for text, a one-row strip of tokens."""
    from interp.views.grid import GridSpec, cell_text
    from tasks.arc.grid import content_box

    L = int(pairs.clean.shape[1])
    name = getattr(task, "name", None)
    grid = getattr(task, "grid", None)
    if task is None or grid is None or name == "text":
        vocab = int(max(pairs.clean.max(initial=0), pairs.corrupt.max(initial=0))) + 1
        spec = GridSpec("text", 1, L)
        crop = None
    else:
        rows, cols = int(grid[0]), int(grid[1])
        if rows * cols != L:
            raise CausalError(f"the {name} grid is {rows}x{cols} = {rows * cols} cells, but the inputs have {L}")
        box = math.isqrt(rows) if name == "sudoku" and math.isqrt(rows) ** 2 == rows else 0
        spec = GridSpec(name, rows, cols, box)
        vocab = None
        crop = content_box(np.concatenate([pairs.clean, np.where(pairs.labels < 0, 0, pairs.labels)]), rows, cols) \
            if name == "arc" else None
    r0, r1, c0, c1 = crop or (0, spec.rows, 0, spec.cols)
    shown = [r * spec.cols + c for r in range(r0, r1) for c in range(c0, c1)]

    def text(tokens: np.ndarray) -> list[str]:
        return [str(s) for s in cell_text(tokens, spec, max(vocab or 256, 256) if vocab else None)]

    return {"kind": "strip" if spec.task == "text" else "grid", "task": spec.task, "rows": r1 - r0,
            "cols": c1 - c0, "full_cols": spec.cols, "origin": [r0, c0], "box": spec.box, "shown": shown,
            "_text": text}


def _quantize(values: np.ndarray) -> tuple[float, list[Any]]:
    """(unit, integers in [-QUANT, QUANT]) with values ~ q * unit; NaN -> None."""
    ok = np.isfinite(values)
    top = float(np.abs(values[ok]).max()) if ok.any() else 0.0
    unit = _round_sig(top / QUANT, 8) if top > 0 else 0.0
    q = np.round(values / unit) if unit > 0 else np.zeros_like(values)
    return unit, [int(v) if f else None for v, f in zip(q, ok)]


def viewer_data(scores: pd.DataFrame, pairs: Any, task: Any = None) -> dict[str, Any]:
    """The JSON payload of the page: layout, step axis, per-puzzle quantized scores and colour ranges."""
    df = _check(scores, pairs)
    lay = _layout(task, pairs)
    text = lay.pop("_text")
    if len(lay["shown"]) < pairs.clean.shape[1]:  # ARC: only the cropped cells (and the prefix) are plotted
        df = df[(df["position"] < 0) | df["position"].isin(lay["shown"])]
    methods = list(dict.fromkeys(df["method"].astype(str)))
    states = list(dict.fromkeys(df.sort_values("step", kind="stable")["state"].astype(str)))
    steps_df = df[["step", "segment"]].drop_duplicates("step").sort_values("step")
    steps = [int(s) for s in steps_df["step"]]
    step_at = {s: i for i, s in enumerate(steps)}
    positions = sorted(int(p) for p in df["position"].unique())
    pos_at = {p: i for i, p in enumerate(positions)}
    state_steps = {s: [step_at[int(k)] for k in sorted(df.loc[df["state"] == s, "step"].unique())] for s in states}
    # colour range per (method, state choice): the largest |score| over all puzzles (and summed states for "all")
    rng: dict[str, dict[str, float]] = {}
    for m in methods:
        dm = df[df["method"] == m]
        rng[m] = {s: _finite_max(dm.loc[dm["state"] == s, "score"].abs()) for s in states}
        summed = dm.groupby(["puzzle", "step", "position"])["score"].sum(min_count=1)
        rng[m][ALL_STATES] = _finite_max(summed.abs())
    changed = pairs.changed_positions()
    puzzles = []
    for p in sorted(int(v) for v in df["puzzle"].unique()):
        dp = df[df["puzzle"] == p]
        units: dict[str, dict[str, list[float]]] = {}
        q: dict[str, dict[str, list[list[Any]]]] = {}
        for m in methods:
            dm = dp[dp["method"] == m]
            units[m], q[m] = {}, {}
            for s in states:
                ds = dm[dm["state"] == s]
                if ds.empty:
                    continue
                mat = np.full((len(state_steps[s]), len(positions)), np.nan)
                row = {k: j for j, k in enumerate(state_steps[s])}
                mat[[row[step_at[int(k)]] for k in ds["step"]], [pos_at[int(v)] for v in ds["position"]]] = \
                    ds["score"].to_numpy(dtype=np.float64)
                rows = [_quantize(r) for r in mat]
                units[m][s] = [u for u, _ in rows]
                q[m][s] = [r for _, r in rows]
        labels = pairs.labels[p]
        puzzles.append({
            "puzzle": p,
            "note": pairs.notes[p] if p < len(pairs.notes) else "",
            "clean": text(pairs.clean[p]),
            "corrupt": text(pairs.corrupt[p]),
            "label": text(np.where(labels < 0, 0, labels)),
            "changed": [int(c) for c in changed[p]],
            "targets": [int(t) for t in np.flatnonzero(pairs.targets[p])],
            "unit": units,
            "q": q,
        })
    return {"viewer": "attribution", "quant": QUANT, "layout": lay, "methods": methods, "states": states,
            "steps": steps, "segments": [int(s) for s in steps_df["segment"]], "state_steps": state_steps,
            "positions": positions, "range": rng, "puzzles": puzzles}


def _finite_max(values: pd.Series) -> float:
    v = values.to_numpy(dtype=np.float64)
    v = v[np.isfinite(v)]
    return _round_sig(float(v.max())) if v.size else 0.0


def _round_sig(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


_CSS = """  #attr-bar { padding: 6px 10px; display: flex; flex-wrap: wrap; gap: 14px; align-items: center; }
  #attr-bar input[type=range] { width: 260px; vertical-align: middle; }
  #attr-bar .hint { color: #777; }
  #attr-title { padding: 0 10px; font-size: 14px; }
  #attr-legend { padding: 2px 10px; color: #444; font-size: 12px; }
"""

_PAGE = page_head(_CSS, font_size=13) + """<body>
__PLOTLY__
<div id="attr-bar">
  <label>puzzle <select id="attr-puzzle">__PUZZLES__</select></label>
  <label>method <select id="attr-method">__METHODS__</select></label>
  <label>state <select id="attr-state">__STATES__</select></label>
  <label>step <input type="range" id="attr-step" min="0" max="0" value="0" /> <span id="attr-step-label"></span></label>
  <label title="colour each step by its own largest |score| (grid and heatmap columns)">
    <input type="checkbox" id="attr-local" /> scale per step</label>
  <span class="hint">&larr; / &rarr; step &middot; Home / End</span>
</div>
<div id="attr-title"></div>
<div id="attr-legend">red: patching the unit raises the metric, blue: lowers it &middot;
 <b>&#9633;</b> corrupted cell (and heatmap row) &middot;
 <span style="color:#1b7837">&#9633;</span> dotted: read by the metric
 &middot; heatmap: red box = step shown, dashed = segment ends__PREFIX__</div>
<div id="attr-plot" style="width:100%;height:__HEIGHT__px;"></div>
<script type="application/json" id="attr-data">__DATA__</script>
<script type="text/javascript">
__JS__
</script>
</body>
</html>
"""

_JS = r"""
(function () {
  var D = JSON.parse(document.getElementById('attr-data').textContent);
  var L = D.layout, gd = document.getElementById('attr-plot');
  var el = function (id) { return document.getElementById(id); };
  var pick = {puzzle: el('attr-puzzle'), method: el('attr-method'), state: el('attr-state')};
  var slider = el('attr-step'), local = el('attr-local');
  var SCALE = [[0, '#2166ac'], [0.25, '#92c5de'], [0.5, '#f7f7f7'], [0.75, '#f4a582'], [1, '#b2182b']];
  var cur = {puzzle: 0, method: D.methods[0], state: D.states.length > 1 ? 'all' : D.states[0], index: 0};
  function esc(t) {  // plotly draws text as pseudo-HTML: a token '<' must not open a tag
    return t === undefined ? '' : String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }
  function fmt(v) { return v === null ? 'n/a' : Number(v.toPrecision(3)).toString(); }
  function stepIndexes(state) {  // indexes into D.steps of the steps a state choice shows
    if (state !== 'all') { return D.state_steps[state]; }
    return D.steps.map(function (_, i) { return i; });
  }
  function matrix(p, m, state) {  // [steps of the choice][positions] decoded scores (null: no unit)
    var P = D.puzzles[p], out;
    function dec(row, unit) { return row.map(function (q) { return q === null ? null : q * unit; }); }
    if (state !== 'all') {
      return (P.q[m][state] || []).map(function (row, j) { return dec(row, P.unit[m][state][j]); });
    }
    out = D.steps.map(function () { return D.positions.map(function () { return null; }); });
    D.states.forEach(function (s) {
      var rows = P.q[m][s];
      if (!rows) { return; }
      D.state_steps[s].forEach(function (k, j) {
        var unit = P.unit[m][s][j];
        rows[j].forEach(function (q, i) { if (q !== null) { out[k][i] = (out[k][i] || 0) + q * unit; } });
      });
    });
    return out;
  }
  function cellName(pos) {
    if (pos < 0) { return 'prefix ' + pos; }
    if (L.kind === 'strip') { return 'token ' + pos; }
    var r = Math.floor(pos / L.full_cols), c = pos % L.full_cols;
    return 'r' + (r + 1) + 'c' + (c + 1);
  }
  function outline(pos, color, width, dash, inset) {
    var k = L.shown.indexOf(pos);
    if (k < 0) { return null; }
    var r = Math.floor(k / L.cols), c = k % L.cols;
    return {type: 'rect', xref: 'x', yref: 'y', x0: c - 0.5 + inset, x1: c + 0.5 - inset, y0: r - 0.5 + inset,
            y1: r + 0.5 - inset, line: {color: color, width: width, dash: dash}, layer: 'above'};
  }
  function render() {
    var P = D.puzzles[cur.puzzle], idx = stepIndexes(cur.state), M = matrix(cur.puzzle, cur.method, cur.state);
    var strip = L.kind === 'strip';
    cur.index = Math.max(0, Math.min(idx.length - 1, cur.index));
    slider.max = String(idx.length - 1); slider.value = String(cur.index);
    var k = idx[cur.index], step = D.steps[k], seg = D.segments[k], row = M[cur.index] || [];
    var range = D.range[cur.method][cur.state] || 1e-12;
    var posAt = {}; D.positions.forEach(function (p, i) { posAt[p] = i; });
    var z = [], text = [], hover = [], r, c, gridMax = 0;
    for (r = 0; r < L.rows; r++) {
      z.push([]); text.push([]); hover.push([]);
      for (c = 0; c < L.cols; c++) {
        var pos = L.shown[r * L.cols + c], i = posAt[pos], v = i === undefined ? null : row[i];
        if (v !== null && v !== undefined) { gridMax = Math.max(gridMax, Math.abs(v)); }
        z[r].push(v === undefined ? null : v);
        text[r].push(esc(P.clean[pos]));
        var h = cellName(pos) + ' (position ' + pos + ')<br>score ' + fmt(v === undefined ? null : v) +
                '<br>clean ' + (esc(P.clean[pos]) || '·') + ', corrupted ' + (esc(P.corrupt[pos]) || '·') +
                ', answer ' + (esc(P.label[pos]) || '·');
        if (P.changed.indexOf(pos) >= 0) { h += '<br>corrupted cell'; }
        if (P.targets.indexOf(pos) >= 0) { h += '<br>the metric reads this cell'; }
        hover[r].push(h);
      }
    }
    var gridRange = local.checked && gridMax > 0 ? gridMax : range;
    // per-step scale: each heatmap column divided by its own largest |score| (shows where, at every step)
    var colMax = M.map(function (rw) {
      return rw.reduce(function (a, v) { return v === null ? a : Math.max(a, Math.abs(v)); }, 0) || 1;
    });
    var hz = D.positions.map(function (_, i) {
      return M.map(function (rw, j) { var v = rw[i]; return v === null ? null : local.checked ? v / colMax[j] : v; });
    });
    var hr = local.checked ? 1 : range;
    var hx = idx.map(function (j) { return D.steps[j]; });
    // positions with gaps (ARC crop) go on a category axis named by cell; a heatmap row is then its index
    var cat = D.positions.some(function (p, i) { return i > 0 && p !== D.positions[i - 1] + 1; });
    var hy = cat ? D.positions.map(cellName) : D.positions;
    var rowY = function (pos) { return cat ? posAt[pos] : pos; };
    var hText = D.positions.map(function (p) { return idx.map(function () { return cellName(p); }); });
    var grid = {type: 'heatmap', z: z, text: text, customdata: hover, texttemplate: '%{text}',
                hovertemplate: '%{customdata}<extra></extra>', zmin: -gridRange, zmax: gridRange,
                colorscale: SCALE, showscale: false, xgap: 1, ygap: 1, xaxis: 'x', yaxis: 'y',
                textfont: {size: strip ? (L.cols > 40 ? 9 : 13) : (L.rows <= 9 ? 17 : L.rows <= 16 ? 11 : 8)}};
    var what = local.checked ? 'score / step max' : 'score';
    var heat = {type: 'heatmap', z: hz, x: hx, y: hy, text: hText, zmin: -hr, zmax: hr, colorscale: SCALE,
                xaxis: 'x2', yaxis: 'y2', hovertemplate: 'step %{x} · %{text}' + (cat ? '' : ' (position %{y})') +
                '<br>' + what + ' %{z:.3g}<extra></extra>',
                colorbar: {thickness: 12, len: 0.9, title: {text: what, side: 'right'}}};
    var shapes = [];
    P.targets.forEach(function (t) { var s = outline(t, '#1b7837', 1.5, 'dot', 0.1); if (s) { shapes.push(s); } });
    P.changed.forEach(function (t) {
      var s = outline(t, '#000', 3.5, 'solid', 0.05); if (s) { shapes.push(s); }
      if (posAt[t] !== undefined) {  // the corrupted position's row of the heatmap
        shapes.push({type: 'rect', xref: 'x2 domain', yref: 'y2', x0: 0, x1: 1, y0: rowY(t) - 0.5, y1: rowY(t) + 0.5,
                     line: {color: '#000', width: 1.5}});
      }
    });
    if (L.box) {
      for (var b = 1; b < L.rows / L.box; b++) {
        var e = b * L.box - 0.5, line = {color: '#333', width: 2};
        shapes.push({type: 'line', xref: 'x', yref: 'y', x0: e, x1: e, y0: -0.5, y1: L.rows - 0.5, line: line});
        shapes.push({type: 'line', xref: 'x', yref: 'y', x0: -0.5, x1: L.cols - 0.5, y0: e, y1: e, line: line});
      }
    }
    for (var j = 1; j < idx.length; j++) {
      if (D.segments[idx[j]] !== D.segments[idx[j - 1]]) {
        var xe = (D.steps[idx[j]] + D.steps[idx[j - 1]]) / 2;
        shapes.push({type: 'line', xref: 'x2', yref: 'y2 domain', x0: xe, x1: xe, y0: 0, y1: 1,
                     line: {color: 'rgba(40,40,40,0.7)', width: 1, dash: 'dash'}});
      }
    }
    // the step shown: an outline around its heatmap column (the cells stay visible)
    var lo = cur.index > 0 ? (step + D.steps[idx[cur.index - 1]]) / 2 : step - 0.5;
    var hi = cur.index < idx.length - 1 ? (step + D.steps[idx[cur.index + 1]]) / 2 : step + 0.5;
    shapes.push({type: 'rect', xref: 'x2', yref: 'y2 domain', x0: lo, x1: hi, y0: 0, y1: 1,
                 line: {color: '#d62728', width: 2}});
    var layout = {
      margin: {t: 30, b: 50, l: 50, r: 20}, template: 'plotly_white', showlegend: false, shapes: shapes,
      xaxis: {domain: strip ? [0, 1] : [0, 0.42], showticklabels: strip, ticks: '', showgrid: false, zeroline: false,
              constrain: 'domain', title: strip ? {text: 'token position'} : undefined},
      yaxis: {domain: strip ? [0.8, 1] : [0, 1], autorange: 'reversed', scaleanchor: strip ? undefined : 'x',
              constrain: 'domain', showticklabels: false, ticks: '', showgrid: false, zeroline: false},
      xaxis2: {domain: strip ? [0, 0.95] : [0.5, 0.95], anchor: 'y2', title: {text: 'step'}, showgrid: false},
      yaxis2: {domain: strip ? [0, 0.6] : [0, 1], anchor: 'x2', autorange: 'reversed', showgrid: false,
               type: cat ? 'category' : 'linear',
               title: {text: strip ? 'token position' : cat ? 'cell' : 'position (cell index)'}},
      annotations: [{text: (strip ? 'tokens' : 'grid') + ' at step ' + step +
                             (local.checked ? ' (scaled to this step)' : ''),
                     xref: 'paper', yref: 'paper', x: 0, y: 1.0, yanchor: 'bottom', showarrow: false},
                    {text: 'step × position', xref: 'paper', yref: 'paper', x: strip ? 0 : 0.5,
                     y: strip ? 0.61 : 1.0, yanchor: 'bottom', showarrow: false}]
    };
    var stateName = cur.state === 'all' ? 'all states (summed per step)' : cur.state;
    el('attr-step-label').textContent = step + ' (segment ' + seg + ')';
    el('attr-title').textContent = 'puzzle ' + (P.puzzle + 1) + (P.note ? ' (' + P.note + ')' : '') + ' \u00b7 ' +
      cur.method + ' \u00b7 ' + stateName + ' \u00b7 step ' + step + ', segment ' + seg +
      ' \u00b7 colour range \u00b1' + fmt(gridRange) +
      (!local.checked ? ' (method-wide)' : gridMax > 0 ? ' (this step)' : ' (method-wide: every score here is 0)');
    document.body.setAttribute('data-attr-step', String(step));
    document.body.setAttribute('data-attr-puzzle', String(P.puzzle));
    document.body.setAttribute('data-attr-method', cur.method);
    document.body.setAttribute('data-attr-state', cur.state);
    return Plotly.react(gd, [grid, heat], layout, {responsive: true, displaylogo: false}).then(function () {
      document.body.setAttribute('data-attr-grid', text.map(function (t) { return t.join(','); }).join('/'));
      document.body.setAttribute('data-attr-z', JSON.stringify(z));
    });
  }
  function show(opts) {  // {puzzle: index in the page, method, state, index: of the step slider, step}
    opts = opts || {};
    if (opts.puzzle !== undefined && !D.puzzles[opts.puzzle]) { delete opts.puzzle; }
    if (D.methods.indexOf(opts.method) < 0) { delete opts.method; }
    if (opts.state !== 'all' && D.states.indexOf(opts.state) < 0) { delete opts.state; }
    if (opts.puzzle !== undefined) { cur.puzzle = opts.puzzle; pick.puzzle.value = String(opts.puzzle); }
    if (opts.method !== undefined) { cur.method = opts.method; pick.method.value = opts.method; }
    if (opts.state !== undefined) {
      var old = D.steps[stepIndexes(cur.state)[cur.index]];
      cur.state = opts.state; pick.state.value = opts.state;
      var idx = stepIndexes(cur.state), best = 0;
      idx.forEach(function (k, j) { if (D.steps[k] <= old) { best = j; } });
      cur.index = best;
    }
    if (opts.index !== undefined) { cur.index = opts.index; }
    if (opts.step !== undefined) {
      // the shown step at or before opts.step (a state is not written at every step), else the first
      cur.index = 0;
      stepIndexes(cur.state).forEach(function (k, j) { if (D.steps[k] <= opts.step) { cur.index = j; } });
    }
    return render();
  }
  pick.puzzle.addEventListener('change', function () { show({puzzle: parseInt(pick.puzzle.value, 10)}); });
  pick.method.addEventListener('change', function () { show({method: pick.method.value}); });
  pick.state.addEventListener('change', function () { show({state: pick.state.value}); });
  slider.addEventListener('input', function () { show({index: parseInt(slider.value, 10)}); });
  local.addEventListener('change', function () { show({}); });
  document.addEventListener('keydown', function (e) {
    if (e.target && /^(SELECT|TEXTAREA)$/.test(e.target.tagName)) { return; }
    if (e.target === slider || e.altKey || e.ctrlKey || e.metaKey) { return; }
    var n = stepIndexes(cur.state).length;
    var moves = {ArrowLeft: cur.index - 1, ArrowRight: cur.index + 1, Home: 0, End: n - 1};
    if (!(e.key in moves)) { return; }
    e.preventDefault();
    show({index: moves[e.key]});
  });
  pick.state.value = cur.state;
  cur.index = stepIndexes(cur.state).length - 1;
  // attribution.html#puzzle=2&method=ig&state=z&step=3&scale=step opens there (puzzle numbered from 1)
  var h = {}, opts = {};
  (window.location.hash || '').replace(/^#/, '').split('&').forEach(function (kv) {
    var a = kv.split('='); if (a.length === 2) { h[a[0]] = decodeURIComponent(a[1]); }
  });
  if (h.scale === 'step') { local.checked = true; }
  if (h.puzzle) {
    var pi = D.puzzles.map(function (p) { return p.puzzle + 1; }).indexOf(parseInt(h.puzzle, 10));
    if (pi >= 0) { opts.puzzle = pi; }
  }
  if (h.method) { opts.method = h.method; }
  if (h.state) { opts.state = h.state; }
  if (h.step) { opts.step = parseInt(h.step, 10); }
  window.__attr = {data: D, state: cur, show: show, matrix: matrix};
  window.__attr.ready = show(opts);
})();
"""


def attribution_html(data: dict[str, Any], plotly_tag: str, title: str = "attribution viewer") -> str:
    """The page for a ``viewer_data`` payload, loading plotly.js with ``plotly_tag``."""
    esc = html_lib.escape
    lay = data["layout"]
    puzzles = "".join(f'<option value="{i}">puzzle {p["puzzle"] + 1}{" (" + esc(p["note"]) + ")" if p["note"] else ""}'
                      "</option>" for i, p in enumerate(data["puzzles"]))
    methods = "".join(f'<option value="{esc(m)}">{esc(m)}</option>' for m in data["methods"])
    states = ([f'<option value="{ALL_STATES}">all states (sum)</option>'] if len(data["states"]) > 1 else [])
    states += [f'<option value="{esc(s)}">{esc(s)}</option>' for s in data["states"]]
    height = 560 if lay["kind"] == "grid" else 620
    prefix = ", negative positions = puzzle-embedding prefix" if min(data["positions"]) < 0 else ""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (_PAGE.replace("__TITLE__", esc(title)).replace("__PLOTLY__", plotly_tag)
            .replace("__PUZZLES__", puzzles).replace("__METHODS__", methods).replace("__STATES__", "".join(states))
            .replace("__HEIGHT__", str(height))
            .replace("__PREFIX__", prefix).replace("__JS__", _JS).replace("__DATA__", payload))


def write_attribution_viewer(scores: pd.DataFrame, pairs: Any, path: str | os.PathLike, task: Any = None,
                             plotly_js: str = "file") -> Path:
    """Write the attribution viewer of ``scores`` (the ``interp attribute`` table) for ``pairs`` to ``path``.

    ``task``: a ``tasks.task_info.TaskInfo`` (grid layout) or None for text (a strip of tokens). ``plotly_js``:
    ``file`` (one plotly.min.js beside the page: works offline), ``cdn`` or ``inline`` (``common.plotly_html.plotly_js_tag``).
    Raises ``CausalError`` (a ValueError) with a one-line message on an empty or mismatched table.
    """
    from common.io import atomic_write_text, plotly_js_tag

    data = viewer_data(scores, pairs, task)
    tag = plotly_js_tag(path, plotly_js)
    name = getattr(task, "name", None) or "text"
    return atomic_write_text(path, attribution_html(data, tag, title=f"{name} attribution viewer"))


def read_viewer_data(path: str | os.PathLike) -> dict[str, Any]:
    """The payload embedded in a page written by :func:`write_attribution_viewer`."""
    text = Path(path).read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="attr-data">(.*?)</script>', text, re.DOTALL)
    if m is None:
        raise CausalError(f"{path} is no attribution viewer page (no embedded data)")
    return json.loads(m.group(1))


__all__ = ["ALL_STATES", "QUANT", "attribution_html", "read_viewer_data", "viewer_data", "write_attribution_viewer"]

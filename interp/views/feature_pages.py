"""Feature pages: one offline HTML page with a page per dictionary feature, and the top features of any cell.

    from interp.views.feature_pages import write_feature_pages
    write_feature_pages("features.html", acts, steps, inputs, predictions, labels=labels, push=push)

``acts`` is [N puzzles, T steps, L cells, F features] (an SAE's activations, or a crosscoder's per-step
strengths), ``steps`` the trace step of each of the T entries, ``predictions`` [N, T, L] the decoded tokens
there. A feature's page (``features.html#feature=12``) shows its automatic label (``labels``: from
``probes.sae_features.label_features``), its step profile (``profiles``: crosscoder kinds), its mean
activation and firing rate by step, the digits its decoder direction pushes through the answer head
(``push`` [F, S]: logits of digits 1..S) and its top-activating examples (:func:`top_examples`), each drawn
as the decoded grid at that step with the cell outlined. ``features.html#puzzle=P&step=K&cell=C`` (P the
0-based trace puzzle, K a trace step, C a cell index) shows that cell's grid and its strongest features at
the last dictionary step at or before K, for the puzzles in ``lookup_puzzles``; the step viewer links
there when a cell is clicked (``interp.views.trace_viewer.write_viewer(features_href=...)``).
``window.__features`` (``showFeature``, ``showCell``, ``ready``) is used by the browser tests.
"""

from __future__ import annotations

import html as html_lib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from common.atomic import atomic_write_text
from common.plotly_html import plotly_js_tag
from interp.views.page_head import page_head


def top_examples(acts: np.ndarray, feature: int, n: int = 8) -> list[tuple[int, int, int, float]]:
    """The ``n`` strongest (puzzle, step index, cell, activation) of ``feature``, at most one per (puzzle, cell)
    (its strongest step; ties: the earliest step), activation > 0 only, strongest first."""
    a = np.asarray(acts)[..., feature]  # [N, T, L]
    best_t = a.argmax(1)  # [N, L]
    best = np.take_along_axis(a, best_t[:, None], 1)[:, 0]  # [N, L]
    flat = best.reshape(-1)
    order = np.argsort(-flat, kind="stable")[:n]
    L = a.shape[2]
    return [(int(i // L), int(best_t.reshape(-1)[i]), int(i % L), float(flat[i])) for i in order if flat[i] > 0]


def cell_top_features(acts: np.ndarray, puzzle: int, k: int = 5) -> list[list[list[list[float]]]]:
    """[T][L] lists of the ``k`` strongest active features ``[feature, activation]`` of one puzzle."""
    a = np.asarray(acts)[puzzle]  # [T, L, F]
    idx = np.argsort(-a, axis=-1, kind="stable")[..., :k]
    vals = np.take_along_axis(a, idx, -1)
    return [[[[int(f), round(float(v), 4)] for f, v in zip(idx[t, c], vals[t, c]) if v > 0]
             for c in range(a.shape[1])] for t in range(a.shape[0])]


def select_features(features: Sequence[int] | None, n_features: int) -> list[int]:
    """The feature ids to draw (all ``n_features`` when ``features`` is None); ValueError on one out of range."""
    feats = list(range(n_features)) if features is None else [int(f) for f in features]
    bad = [f for f in feats if not 0 <= f < n_features]
    if bad:
        raise ValueError(f"feature {bad[0]} is out of range (the dictionary has {n_features} features: "
                         f"0..{n_features - 1})")
    return feats


def step_profile(a: np.ndarray) -> dict[str, list[float]]:
    """``mean_by_step`` and ``rate_by_step`` (firing rate) of one feature's activations ``a`` [N, T, L]."""
    return {"mean_by_step": np.round(a.mean((0, 2)), 5).tolist(),
            "rate_by_step": np.round((a > 0).mean((0, 2)), 4).tolist()}


def _check(acts: np.ndarray, steps: np.ndarray, inputs: np.ndarray, predictions: np.ndarray) -> None:
    if acts.ndim != 4:
        raise ValueError(f"acts must be [N, T, L, F], got shape {acts.shape}")
    N, T, L, _ = acts.shape
    if steps.shape != (T,):
        raise ValueError(f"steps must have one trace step per activation step ({T}), got {steps.shape}")
    if inputs.shape != (N, L) or predictions.shape != (N, T, L):
        raise ValueError(f"inputs must be [{N}, {L}] and predictions [{N}, {T}, {L}], got {inputs.shape} and "
                         f"{predictions.shape}")
    if math.isqrt(L) ** 2 != L:
        raise ValueError(f"{L} cells is not a square grid")


def feature_page_data(acts: np.ndarray, steps: Sequence[int], inputs: np.ndarray, predictions: np.ndarray,
                      features: Sequence[int] | None = None, labels: pd.DataFrame | None = None,
                      profiles: pd.DataFrame | None = None, push: np.ndarray | None = None, n_top: int = 8,
                      lookup_puzzles: Sequence[int] = (), title: str = "features",
                      puzzle_numbers: Sequence[int] | None = None) -> dict:
    """The JSON the page draws (see module docstring)."""
    acts = np.asarray(acts, dtype=np.float32)
    steps_a = np.asarray(steps, dtype=np.int64)
    inputs, predictions = np.asarray(inputs), np.asarray(predictions)
    _check(acts, steps_a, inputs, predictions)
    N, T, L, F = acts.shape
    feats = select_features(features, F)
    lab = labels.set_index("feature") if labels is not None else None
    prof = profiles.set_index("feature") if profiles is not None else None
    out_feats, used = [], set(int(p) for p in lookup_puzzles)
    for f in feats:
        a = acts[..., f]
        top = top_examples(acts, f, n_top)
        used.update(p for p, *_ in top)
        rec = {"id": f, **step_profile(a), "top": [list(t) for t in top], "label": "", "auc": None, "kind": None}
        if lab is not None and f in lab.index:
            rec["label"] = str(lab.loc[f, "label"] or "")
            auc = lab.loc[f, "auc"]
            rec["auc"] = None if pd.isna(auc) else round(float(auc), 3)
            rec["best_target"] = str(lab.loc[f].get("best_target", "") or "")
        if prof is not None and f in prof.index:
            rec["kind"] = str(prof.loc[f, "kind"])
            rec["onset"], rec["offset"] = int(prof.loc[f, "onset"]), int(prof.loc[f, "offset"])
        if push is not None:
            rec["push"] = np.round(np.asarray(push)[f], 4).tolist()
        out_feats.append(rec)
    side = math.isqrt(L)
    box = math.isqrt(side) if math.isqrt(side) ** 2 == side else 0
    nums = list(range(1, N + 1)) if puzzle_numbers is None else [int(v) for v in puzzle_numbers]
    puzzles = {str(p): {"inputs": inputs[p].astype(int).tolist(), "preds": predictions[p].astype(int).tolist(),
                        "number": nums[p]} for p in sorted(used) if 0 <= p < N}
    lookup = {str(p): cell_top_features(acts, p) for p in lookup_puzzles if 0 <= p < N}
    return {"title": title, "steps": steps_a.tolist(), "side": side, "box": box, "features": out_feats,
            "puzzles": puzzles, "lookup": lookup}


# the end of every feature page: the data, the script, the close (write_page fills __DATA__ and __JS__)
PAGE_TAIL = """<script type="application/json" id="feature-data">__DATA__</script>
<script type="text/javascript">
__JS__
</script>
</body>
</html>
"""

# the start of every feature page's script: the data D, features by id, the picker, an HTML escape
JS_PROLOGUE = """
(function () {
  var D = JSON.parse(document.getElementById('feature-data').textContent);
  var byId = {}; D.features.forEach(function (f) { byId[f.id] = f; });
  var pick = document.getElementById('pick');
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]; }); }
  function drawProfile(f) {  // the feature's mean activation and firing rate by step (both page kinds)
    if (!window.Plotly) { return Promise.resolve(); }
    return Plotly.react('chart', [
      {x: D.steps, y: f.mean_by_step, name: 'mean activation', mode: 'lines+markers'},
      {x: D.steps, y: f.rate_by_step, name: 'firing rate', mode: 'lines', yaxis: 'y2', line: {dash: 'dot'}}],
      {margin: {t: 20, b: 40, l: 60, r: 20}, xaxis: {title: {text: 'step'}, anchor: 'y2'},
       yaxis: {title: {text: 'mean'}, domain: [0.45, 1]}, yaxis2: {title: {text: 'firing'}, domain: [0, 0.35], range: [0, 1]},
       showlegend: false},
      {displaylogo: false, responsive: true});
  }
"""

_CSS = """  #bar { padding: 6px 10px; display: flex; gap: 14px; align-items: center; border-bottom: 1px solid #ddd; }
  #main { padding: 8px 14px; }
  .grids { display: flex; flex-wrap: wrap; gap: 14px; }
  .ex { font-size: 12px; text-align: center; }
  .sgrid { display: grid; gap: 0; border: 2px solid #000; margin-bottom: 3px; }
  .sgrid div { width: 18px; height: 18px; line-height: 18px; text-align: center; font-size: 12px;
               border: 1px solid #ccc; box-sizing: border-box; }
  .sgrid div.given { background: #e6e6e6; font-weight: bold; }
  .sgrid div.hit { outline: 3px solid #d62728; outline-offset: -2px; background: #ffe0b3; }
  .sgrid div.bR { border-right: 2px solid #000; } .sgrid div.bB { border-bottom: 2px solid #000; }
  table.push td { padding: 1px 6px; text-align: right; }
  .muted { color: #777; }
"""

_PAGE = page_head(_CSS, font_size=14) + """<body>
__PLOTLY__
<div id="bar"><label>feature <select id="pick">__OPTIONS__</select></label>
<span class="muted">open <code>#feature=F</code>, or <code>#puzzle=P&amp;step=K&amp;cell=C</code> for a cell's top features</span></div>
<div id="main"><h3 id="head"></h3><div id="info"></div><div id="chart" style="width:640px;height:260px"></div>
<div id="push"></div><h4 id="exhead"></h4><div id="examples" class="grids"></div></div>
""" + PAGE_TAIL

_JS = JS_PROLOGUE + """  function rc(c) { return 'r' + (Math.floor(c / D.side) + 1) + 'c' + (c % D.side + 1); }
  function grid(p, t, cell) {
    var P = D.puzzles[String(p)], h = '<div class="sgrid" style="grid-template-columns: repeat(' + D.side + ', 18px)">';
    for (var c = 0; c < D.side * D.side; c++) {
      var tok = P.preds[t][c], cls = [], r = Math.floor(c / D.side), k = c % D.side;
      if (P.inputs[c] >= 2) { cls.push('given'); }
      if (c === cell) { cls.push('hit'); }
      if (D.box && (k + 1) % D.box === 0 && k + 1 < D.side) { cls.push('bR'); }
      if (D.box && (r + 1) % D.box === 0 && r + 1 < D.side) { cls.push('bB'); }
      h += '<div class="' + cls.join(' ') + '" data-cell="' + c + '">' + (tok >= 2 ? tok - 1 : '') + '</div>';
    }
    return h + '</div>';
  }
  function title(f) {
    return 'feature ' + f.id + (f.label ? ' \\u00b7 ' + f.label : '') + (f.kind ? ' \\u00b7 ' + f.kind : '');
  }
  function showFeature(id) {
    var f = byId[id];
    if (!f) { return Promise.reject(new Error('feature ' + id + ' is not on this page')); }
    pick.value = String(id);
    document.getElementById('head').textContent = title(f);
    var info = f.auc === null || f.auc === undefined ? 'no target selects it' :
      'best target ' + esc(f.best_target || f.label) + ' (AUC ' + f.auc + ')' + (f.label ? '' : ': below the labelling threshold');
    if (f.kind) { info += ' \\u00b7 step profile: ' + esc(f.kind) + (f.onset >= 0 ? ' (present at steps ' + f.onset + '..' + f.offset + ')' : ''); }
    document.getElementById('info').innerHTML = info;
    var ph = '';
    if (f.push) {
      var order = f.push.map(function (v, i) { return i; }).sort(function (a, b) { return f.push[b] - f.push[a]; });
      ph = '<p>digits its decoder direction pushes through the answer head (logit change per unit):</p><table class="push"><tr><td>digit</td>' +
        order.map(function (i) { return '<td>' + (i + 1) + '</td>'; }).join('') + '</tr><tr><td>logit</td>' +
        order.map(function (i) { return '<td>' + f.push[i].toFixed(2) + '</td>'; }).join('') + '</tr></table>';
    }
    document.getElementById('push').innerHTML = ph;
    document.getElementById('exhead').textContent = 'top-activating examples (' + f.top.length + ')';
    document.getElementById('examples').innerHTML = f.top.map(function (e) {
      var P = D.puzzles[String(e[0])];
      return '<div class="ex" data-example="' + e.slice(0, 3).join(',') + '">' + grid(e[0], e[1], e[2]) + 'puzzle ' + P.number +
        ' \\u00b7 step ' + D.steps[e[1]] + ' \\u00b7 ' + rc(e[2]) + '<br>activation ' + e[3].toFixed(3) + '</div>';
    }).join('');
    document.getElementById('chart').style.display = '';
    document.body.setAttribute('data-feature', String(id));
    document.body.setAttribute('data-top', JSON.stringify(f.top.map(function (e) { return e.slice(0, 3); })));
    return drawProfile(f);
  }
  function showCell(p, step, cell) {
    var L = D.lookup[String(p)];
    if (!L) { return Promise.reject(new Error('puzzle ' + p + ' has no cell lookup on this page')); }
    var t = -1;
    D.steps.forEach(function (s, i) { if (s <= step) { t = i; } });
    document.getElementById('chart').style.display = 'none';
    document.getElementById('push').innerHTML = '';
    document.getElementById('info').innerHTML = '';
    if (t < 0) {
      document.getElementById('head').textContent = 'the state is not written yet at step ' + step;
      document.getElementById('examples').innerHTML = '';
      document.body.setAttribute('data-cell-features', '[]');
      return Promise.resolve();
    }
    var top = L[t][cell] || [], P = D.puzzles[String(p)];
    document.getElementById('head').textContent = 'puzzle ' + P.number + ', ' + rc(cell) + ' at step ' + D.steps[t] +
      (D.steps[t] !== step ? ' (the last write at or before step ' + step + ')' : '');
    document.getElementById('exhead').textContent = 'strongest features of this cell';
    document.getElementById('examples').innerHTML = '<div class="ex">' + grid(p, t, cell) + '</div><div><ol>' +
      top.map(function (e) { var f = byId[e[0]];
        return '<li><a href="#feature=' + e[0] + '">feature ' + e[0] + (f && f.label ? ' (' + esc(f.label) + ')' : '') +
          '</a>: ' + e[1].toFixed(3) + '</li>'; }).join('') + '</ol>' + (top.length ? '' : 'no active feature') + '</div>';
    document.body.setAttribute('data-cell-features', JSON.stringify(top.map(function (e) { return e[0]; })));
    return Promise.resolve();
  }
  function route() {
    var h = window.location.hash || '';
    var mf = h.match(/feature=(\\d+)/), mp = h.match(/puzzle=(\\d+)/), ms = h.match(/step=(\\d+)/), mc = h.match(/cell=(\\d+)/);
    if (mp && ms && mc) { return showCell(parseInt(mp[1], 10), parseInt(ms[1], 10), parseInt(mc[1], 10)); }
    return showFeature(mf ? parseInt(mf[1], 10) : D.features[0].id);
  }
  pick.addEventListener('change', function () { window.location.hash = 'feature=' + pick.value; });
  window.addEventListener('hashchange', route);
  window.__features = {data: D, showFeature: showFeature, showCell: showCell};
  window.__features.ready = route();
})();
"""


def write_feature_pages(path: str | os.PathLike, acts: np.ndarray, steps: Sequence[int], inputs: np.ndarray,
                        predictions: np.ndarray, plotly_js: str = "file", **kwargs) -> Path:
    """Write the feature pages (one HTML file; plotly.min.js beside it by default). ``kwargs``: those of
    :func:`feature_page_data` (features, labels, profiles, push, n_top, lookup_puzzles, title, puzzle_numbers)."""
    data = feature_page_data(acts, steps, inputs, predictions, **kwargs)
    return write_page(path, _PAGE, _JS, data, plotly_js)


def write_page(path: str | os.PathLike, template: str, js: str, data: dict, plotly_js: str = "file") -> Path:
    """Fill a feature-page ``template`` (``__TITLE__``, ``__PLOTLY__``, ``__OPTIONS__``: one option per feature,
    ``__JS__``, ``__DATA__``: ``data`` as JSON) and write it atomically."""
    if not data["features"]:
        raise ValueError("no feature to draw")
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    options = "".join(f'<option value="{f["id"]}">{f["id"]}' + (f' {html_lib.escape(f["label"])}' if f["label"] else "")
                      + "</option>" for f in data["features"])
    page = (template.replace("__TITLE__", html_lib.escape(data["title"])).replace("__PLOTLY__", plotly_js_tag(path, plotly_js))
            .replace("__OPTIONS__", options).replace("__JS__", js).replace("__DATA__", blob))
    return atomic_write_text(path, page)


__all__ = ["PAGE_TAIL", "JS_PROLOGUE", "top_examples", "cell_top_features", "select_features", "step_profile", "feature_page_data", "write_page",
           "write_feature_pages"]

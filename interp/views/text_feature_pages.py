"""Feature pages for language models: top (text, position, step) examples as tokens in context.

    from interp.views.text_feature_pages import lm_push, write_text_feature_pages
    push = lm_push(model.decode, directions)                 # [F, V] logit change per unit of each direction
    write_text_feature_pages("features.html", acts, steps, tokens, decode, push=push)

``acts`` is [N texts, T steps, L positions, F features] (a crosscoder's per-step strengths or an SAE's
activations), ``steps`` the trace step of each of the T entries, ``tokens`` [N, L] the input token ids,
``decode(ids) -> str`` the checkpoint's tokenizer. A feature's page (``features.html#feature=12``) shows its
automatic label (:func:`auto_label`), its mean activation and firing rate by step, the ``k`` tokens its decoder
direction pushes most through the LM head (``push``) and its top-activating examples
(``interp.views.feature_pages.top_examples``: at most one per (text, position), at its strongest step), each
drawn as the tokens ``context`` either side with the position highlighted. ``window.__features``
(``showFeature``, ``ready``) is there for browser tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from interp.views.feature_pages import (
    JS_PROLOGUE,
    PAGE_TAIL,
    select_features,
    step_profile,
    top_examples,
    write_page,
)
from interp.views.page_head import page_head


def lm_push(decode: Callable[[torch.Tensor], torch.Tensor], directions: np.ndarray) -> np.ndarray:
    """[F, V]: the logits the readout ``decode`` (the model's logit lens: ``model.decode``) gives each unit
    direction of ``directions`` [F, D], centred over the vocabulary (a constant shift moves no token)."""
    d = torch.as_tensor(np.asarray(directions, dtype=np.float32))
    with torch.no_grad():
        logits = decode(d).float().cpu().numpy()
    return logits - logits.mean(-1, keepdims=True)


def top_pushed(push: np.ndarray, k: int = 10, among: Sequence[int] | None = None) -> np.ndarray:
    """[F, k] token ids with the largest push, strongest first; ``among``: rank only these token ids (e.g. the
    tokens of the texts, so that bytes a byte-level model never saw do not fill the list)."""
    p = np.asarray(push)
    if among is None:
        return np.argsort(-p, axis=-1, kind="stable")[:, :k]
    ids = np.unique(np.asarray(among, dtype=np.int64))
    return ids[np.argsort(-p[:, ids], axis=-1, kind="stable")[:, :k]]


def auto_label(top_tokens: Sequence[int], pushed: int, render: Callable[[int], str], share: float = 0.75) -> str:
    """``on 'x'`` when at least ``share`` of the top examples sit on the same input token ``x``; else
    ``pushes 'y'`` with ``y`` the most-pushed token (``pushed``; -1: no push known, no label)."""
    toks = list(top_tokens)
    if toks:
        vals, counts = np.unique(np.asarray(toks), return_counts=True)
        if counts.max() >= share * len(toks) and len(toks) >= 2:
            return f"on {render(int(vals[counts.argmax()]))!r}"
    return f"pushes {render(int(pushed))!r}" if pushed >= 0 else ""


def text_feature_page_data(acts: np.ndarray, steps: Sequence[int], tokens: np.ndarray, decode: Callable[[list[int]], str],
                           features: Sequence[int] | None = None, push: np.ndarray | None = None, k: int = 10,
                           n_top: int = 8, context: int = 6, profiles: dict[int, dict] | None = None,
                           title: str = "features", among: Sequence[int] | None = None) -> dict:
    """The JSON the page draws (see the module docstring); ``profiles``: per feature ``kind``/``onset``/``offset``;
    ``among``: the token ids the pushed list ranks (:func:`top_pushed`)."""
    acts = np.asarray(acts, dtype=np.float32)
    tokens = np.asarray(tokens)
    if acts.ndim != 4:
        raise ValueError(f"acts must be [N, T, L, F], got shape {acts.shape}")
    N, T, L, F = acts.shape
    if len(steps) != T or tokens.shape != (N, L):
        raise ValueError(f"steps must have {T} entries and tokens be [{N}, {L}], got {len(steps)} and {tokens.shape}")
    feats = select_features(features, F)
    render = lambda t: decode([int(t)])  # noqa: E731
    top_ids = top_pushed(push, k, among) if push is not None else None
    out = []
    for f in feats:
        a = acts[..., f]
        top = top_examples(acts, f, n_top)
        ex = []
        for n, t, pos, v in top:
            lo, hi = max(0, pos - context), min(L, pos + context + 1)
            ex.append({"text": n, "step": int(steps[t]), "pos": pos, "act": round(v, 5),
                       "before": [render(x) for x in tokens[n, lo:pos]], "token": render(tokens[n, pos]),
                       "after": [render(x) for x in tokens[n, pos + 1:hi]]})
        rec = {"id": f, **step_profile(a), "top": ex, "top_keys": [[n, t, pos] for n, t, pos, _ in top]}
        pushed = -1
        if top_ids is not None:
            rec["pushed"] = [{"token": render(i), "id": int(i), "logit": round(float(push[f, i]), 4)} for i in top_ids[f]]
            pushed = int(top_ids[f][0])
        rec["label"] = auto_label([int(tokens[n, pos]) for n, _, pos, _ in top], pushed, render)
        rec.update((profiles or {}).get(f, {}))
        out.append(rec)
    return {"title": title, "steps": [int(s) for s in steps], "features": out}


_CSS = """  #bar { padding: 6px 10px; border-bottom: 1px solid #ddd; } #main { padding: 8px 14px; }
  .ex { font-family: monospace; white-space: pre; margin: 3px 0; }
  .tok { border-right: 1px dotted #ccc; } .hit { background: #ffd08a; outline: 2px solid #d62728; }
  table.push td { padding: 1px 6px; font-family: monospace; } .muted { color: #777; }
"""

_PAGE = page_head(_CSS, font_size=14) + """<body>
__PLOTLY__
<div id="bar"><label>feature <select id="pick">__OPTIONS__</select></label>
<span class="muted">open <code>#feature=F</code></span></div>
<div id="main"><h3 id="head"></h3><div id="info"></div><div id="chart" style="width:640px;height:240px"></div>
<div id="push"></div><h4 id="exhead"></h4><div id="examples"></div></div>
""" + PAGE_TAIL

_JS = JS_PROLOGUE + """  function toks(a) { return a.map(function (t) { return '<span class="tok">' + esc(t) + '</span>'; }).join(''); }
  function showFeature(id) {
    var f = byId[id];
    if (!f) { return Promise.reject(new Error('feature ' + id + ' is not on this page')); }
    pick.value = String(id);
    document.getElementById('head').textContent = 'feature ' + f.id + (f.label ? ' \\u00b7 ' + f.label : '') + (f.kind ? ' \\u00b7 ' + f.kind : '');
    document.getElementById('info').textContent = f.kind ? 'step profile: ' + f.kind + (f.onset >= 0 ? ' (present at steps ' + f.onset + '..' + f.offset + ')' : '') : '';
    document.getElementById('push').innerHTML = f.pushed ? '<p>tokens its decoder direction pushes through the LM head (centred logit per unit):</p><table class="push"><tr>' +
      f.pushed.map(function (p) { return '<td>' + esc(JSON.stringify(p.token)) + '</td>'; }).join('') + '</tr><tr>' +
      f.pushed.map(function (p) { return '<td>' + p.logit.toFixed(2) + '</td>'; }).join('') + '</tr></table>' : '';
    document.getElementById('exhead').textContent = 'top-activating examples (' + f.top.length + ')';
    document.getElementById('examples').innerHTML = f.top.map(function (e) {
      return '<div class="ex" data-example="' + [e.text, e.step, e.pos].join(',') + '">text ' + (e.text + 1) + ' pos ' + e.pos +
        ' step ' + e.step + ' (' + e.act.toFixed(3) + '): ' + toks(e.before) + '<span class="tok hit">' + esc(e.token) + '</span>' + toks(e.after) + '</div>';
    }).join('');
    document.body.setAttribute('data-feature', String(id));
    return drawProfile(f);
  }
  function route() { var m = (window.location.hash || '').match(/feature=(\\d+)/); return showFeature(m ? parseInt(m[1], 10) : D.features[0].id); }
  pick.addEventListener('change', function () { window.location.hash = 'feature=' + pick.value; });
  window.addEventListener('hashchange', route);
  window.__features = {data: D, showFeature: showFeature};
  window.__features.ready = route();
})();
"""


def write_text_feature_pages(path: str | os.PathLike, acts: np.ndarray, steps: Sequence[int], tokens: np.ndarray,
                             decode: Callable[[list[int]], str], plotly_js: str = "file", **kwargs) -> Path:
    """Write the pages (one HTML file; plotly.min.js beside it by default); ``kwargs``: those of
    :func:`text_feature_page_data`."""
    data = text_feature_page_data(acts, steps, tokens, decode, **kwargs)
    return write_page(path, _PAGE, _JS, data, plotly_js)


__all__ = ["lm_push", "top_pushed", "auto_label", "text_feature_page_data", "write_text_feature_pages"]

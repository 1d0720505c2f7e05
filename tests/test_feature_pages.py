"""Feature pages: the right top examples for a planted feature, offline HTML, cell lookup, and the step viewer link."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from helpers.browser import CHROMIUM, drive_page
from interp.tracing.synthetic import synthetic_trace
from interp.views.feature_pages import feature_page_data, top_examples, write_feature_pages
from interp.views.trace_viewer import write_viewer

N, T, L, F = 3, 4, 81, 6
STEPS = [2, 5, 8, 11]
PLANTED = 3
# (puzzle, step index, cell, activation): the planted feature's strongest examples, strongest first
HITS = [(1, 2, 40, 5.0), (0, 3, 7, 4.0), (2, 0, 80, 3.0)]


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    acts = np.where(rng.random((N, T, L, F)) < 0.1, rng.uniform(0, 1, (N, T, L, F)), 0).astype(np.float32)
    acts[..., PLANTED] = 0
    for p, t, c, v in HITS:
        acts[p, t, c, PLANTED] = v
    acts[1, 1, 40, PLANTED] = 2.5  # the same (puzzle, cell) at a weaker step: not a second example
    labels = rng.integers(2, 11, (N, L))
    inputs = np.where(rng.random((N, L)) < 0.4, labels, 1)
    preds = np.repeat(labels[:, None], T, 1)
    return acts, inputs, preds


def test_top_examples_of_a_planted_feature():
    acts, _, _ = _data()
    assert top_examples(acts, PLANTED, 8) == [(p, t, c, v) for p, t, c, v in HITS]
    assert top_examples(acts, PLANTED, 2) == [tuple(h) for h in HITS[:2]]


def test_page_data_and_offline_html(tmp_path):
    acts, inputs, preds = _data()
    push = np.tile(np.arange(9, dtype=float), (F, 1))
    path = write_feature_pages(tmp_path / "features.html", acts, STEPS, inputs, preds, push=push, lookup_puzzles=[0],
                               title="t <b>")
    html = path.read_text()
    assert (tmp_path / "plotly.min.js").exists() and not re.search(r'src="https?:', html)
    data = json.loads(re.search(r'id="feature-data">(.*?)</script>', html, re.S).group(1))
    f = data["features"][PLANTED]
    assert [e[:3] for e in f["top"]] == [list(h[:3]) for h in HITS]
    assert f["mean_by_step"] == pytest.approx(acts[..., PLANTED].mean((0, 2)), abs=1e-4)
    assert data["puzzles"]["1"]["preds"][2] == preds[1, 2].tolist()
    assert data["lookup"]["0"][3][7][0] == [PLANTED, 4.0]  # puzzle 0, step index 3, cell 7: the planted feature first
    assert "t &lt;b&gt;" in html
    with pytest.raises(ValueError, match="out of range"):
        feature_page_data(acts, STEPS, inputs, preds, features=[F])
    with pytest.raises(ValueError, match="one trace step"):
        feature_page_data(acts, STEPS[:2], inputs, preds)


_DRIVER = """<script>
(function () {
  var log = {};
  window.addEventListener('error', function (e) { log.error = String(e.message); });
  var b = document.body;
  window.__features.ready.then(function () {
    log.first = {feature: b.getAttribute('data-feature'), top: JSON.parse(b.getAttribute('data-top')),
                 hits: document.querySelectorAll('.sgrid div.hit').length, svg: !!document.querySelector('.main-svg')};
    return window.__features.showCell(0, 12, 7);
  }).then(function () {
    log.cell = JSON.parse(b.getAttribute('data-cell-features'));
    return window.__features.showCell(0, 1, 7);
  }).then(function () {
    log.early = JSON.parse(b.getAttribute('data-cell-features'));
    b.setAttribute('data-test', JSON.stringify(log));
  }).catch(function (e) { b.setAttribute('data-test', JSON.stringify({error: String(e)})); });
})();
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_chromium_feature_page_and_cell_lookup(tmp_path):
    acts, inputs, preds = _data()
    path = write_feature_pages(tmp_path / "features.html", acts, STEPS, inputs, preds, lookup_puzzles=[0])
    log = drive_page(path, _DRIVER, tmp_path, f"#feature={PLANTED}")
    assert log["first"]["feature"] == str(PLANTED) and log["first"]["svg"]
    assert log["first"]["top"] == [list(h[:3]) for h in HITS] and log["first"]["hits"] == len(HITS)
    assert log["cell"][0] == PLANTED  # trace step 12 -> the last dictionary step at or before it (11, index 3)
    assert log["early"] == []  # step 1: before the first dictionary step


_VIEWER_DRIVER = """<script>
(function () {
  window.__viewer.ready.then(function () {
    document.body.setAttribute('data-test', JSON.stringify({link: window.__viewer.featureLink(1, 2),
                                                            step: window.__viewer.state.names[window.__viewer.state.index]}));
  }).catch(function (e) { document.body.setAttribute('data-test', JSON.stringify({error: String(e)})); });
})();
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_chromium_step_viewer_links_a_cell_to_its_features(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(2, 11, (2, 81))
    tr = synthetic_trace({"y": rng.normal(size=(2, 4, 81, 8)).astype(np.float32)}, updated=["y"] * 4,
                         segments=[0, 0, 1, 1], predictions=np.repeat(labels[:, None], 4, 1), labels=labels,
                         inputs=labels, answer_state="y", family="trm")
    tr.meta["task"] = {"name": "sudoku", "grid": [9, 9]}
    path = write_viewer(tr, tmp_path / "viewer.html", puzzle=[0, 1], features_href="features.html")
    assert "features.html" in path.read_text()
    log = drive_page(path, _VIEWER_DRIVER, tmp_path, "#puzzle=2&step=1")
    assert log["link"] == "features.html#puzzle=1&step=1&cell=11"
    plain = write_viewer(tr, tmp_path / "plain.html", puzzle=0).read_text()
    assert "var featuresHref = null;" in plain

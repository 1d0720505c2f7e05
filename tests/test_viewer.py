"""Step viewer and dataset views: self-contained HTML, correct cells per frame, and (with Chromium) the slider."""

from __future__ import annotations

import base64
import gzip
import html as html_lib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from interp.tracing.synthetic import synthetic_trace
from interp.tracing.trace import TraceError
from interp.views.trace_viewer import frame_steps, step_figure, write_viewer
from helpers.browser import CHROMIUM, drive_page, run_chromium
from interp.views.grid import ZMAX, ZMIN, Z_GIVEN, cell_classes, cell_z, grid_spec, step_confidence

DIGITS = np.array(list(".123456789"))  # token t -> digit t-1 (1 = blank shown as '.')


def _planted_trace(T: int = 6, seed: int = 0):
    """A 9x9 Sudoku trace with known predictions: step t fixes t wrong cells of puzzle 0, slow every 3rd step."""
    rng = np.random.default_rng(seed)
    N, L = 2, 81
    labels = rng.integers(2, 11, size=(N, L))
    inputs = np.where(rng.random((N, L)) < 0.4, labels, 1)
    blanks = np.flatnonzero(inputs[0] == 1)
    preds = np.repeat(labels[:, None], T, axis=1).copy()
    wrong = blanks[: T - 1]
    for t in range(T):
        for j, cell in enumerate(wrong):
            if j >= t:  # cell j is wrong until step j+1
                preds[0, t, cell] = 2 + (labels[0, cell] - 2 + 1) % 9
    states = {"z_H": rng.normal(size=(N, T, L, 8)).astype(np.float32),
              "z_L": rng.normal(size=(N, T, L, 8)).astype(np.float32)}
    updated = ["z_H" if t % 3 == 2 else "z_L" for t in range(T)]
    segments = [t // 3 for t in range(T)]
    tr = synthetic_trace(states, updated=updated, segments=segments, predictions=preds, labels=labels,
                         inputs=inputs, answer_state="z_H", slow_state="z_H", family="hrm")
    tr.meta["task"] = {"name": "sudoku", "grid": [9, 9]}
    return tr


def _grid_string(tokens: np.ndarray) -> str:
    g = DIGITS[np.clip(tokens, 1, 10) - 1].reshape(9, 9)
    return "/".join(" ".join(r) for r in g)


# ----------------------------------------------------------------------------- cells
def test_cell_classes_and_colour_bands():
    x = np.array([2, 1, 1, 3, 1])
    y = np.array([2, 4, 5, 3, -100])
    pred = np.array([2, 4, 6, 9, 7])
    cls = cell_classes(pred, x, y, grid_spec(_planted_trace()))
    # given+reproduced, correct, wrong, given but overwritten (counts as wrong), unscored
    assert cls.tolist() == [2, 1, 0, 0, 3]
    z = cell_z(cls, np.array([0.9, 0.2, 0.8, 1.0, 0.5]))
    assert z[0] == Z_GIVEN
    assert 1.0 <= z[1] < 2.0 and 0.0 <= z[2] < 1.0 and 0.0 <= z[3] < 1.0 and 3.0 <= z[4] < 4.0
    # more confidence -> further into the band (darker); never into the next band
    lo, hi = cell_z(np.array([1, 1]), np.array([0.1, 1.0]))
    assert lo < hi < 2.0


def test_grid_spec_from_task_and_fallbacks():
    tr = _planted_trace()
    s = grid_spec(tr)
    assert (s.task, s.rows, s.cols, s.box) == ("sudoku", 9, 9, 3)
    tr.meta["task"] = None
    assert grid_spec(tr).task == "tokens"  # no model config, no task: a plain 9x9 token grid


# ----------------------------------------------------------------------------- figure content
def test_frames_show_each_steps_prediction_with_pinned_colour_scale():
    tr = _planted_trace()
    fig = step_figure(tr, puzzle=0)
    assert [f.name for f in fig.frames] == [str(k) for k in range(tr.n_steps)]
    heat = fig.data[0]
    assert heat.type == "heatmap" and heat.zmin == ZMIN and heat.zmax == ZMAX
    for k, fr in enumerate(fig.frames):
        h = fr.data[0]
        assert h.zmin is None and h.zmax is None and h.zauto is None  # frames never re-scale the colours
        text = np.array(h.text)
        shown = "/".join(" ".join(c if c else "." for c in row) for row in text)
        assert shown == _grid_string(tr.predictions[0, k])
        z = np.array(h.z, dtype=float).reshape(-1)
        right = tr.predictions[0, k] == tr.labels[0]
        given = (tr.inputs[0] == tr.labels[0]) & right
        assert np.all(z[given] == Z_GIVEN)
        assert np.all((z[right & ~given] >= 1) & (z[right & ~given] < 2))
        assert int((z < 1).sum()) == int(tr.metric("n_wrong")[0, k]) == tr.n_steps - 1 - k
    # slider steps animate the frames with the agreed options
    steps = fig.layout.sliders[0].steps
    assert [list(s.args[0]) for s in steps] == [[str(k)] for k in range(tr.n_steps)]
    opts = steps[0].args[1]
    assert opts["mode"] == "immediate" and opts["frame"] == {"duration": 0, "redraw": True}
    # step structure: one thin line per slow update per panel, dashed at segment ends
    n_panels = sum(1 for a in fig.layout.annotations if a.text != "decoded z_H")
    slow = int(tr.steps["is_slow"].sum())
    lines = [s for s in fig.layout.shapes if s.yref and s.yref.endswith("domain")]
    assert len(lines) == n_panels * (slow + int(tr.steps["segment_end"].sum()) - 1)


def test_frame_steps_thin_long_traces_keeping_answer_updates():
    tr = _planted_trace(T=12)
    keep = frame_steps(tr, "z_H", max_frames=6)
    assert keep[0] == 0 and keep[-1] == tr.n_steps - 1
    assert set(np.flatnonzero(tr.steps["is_slow"])) <= set(keep)
    assert frame_steps(tr, "z_H", max_frames=100) == list(range(12))


def test_bad_arguments_raise_one_line_errors():
    tr = _planted_trace()
    with pytest.raises(TraceError, match="puzzle must be an index"):
        step_figure(tr, puzzle=5)
    with pytest.raises(TraceError, match="was not decoded"):
        step_figure(tr, state="z_L")
    with pytest.raises(TraceError, match="needs a Trace"):
        step_figure({"not": "a trace"})


def _tiny_trm():
    from models.registry import build_model

    return build_model({"family": "trm", "vocab_size": 11, "seq_len": 81, "hidden_size": 32, "num_heads": 2,
                        "H_cycles": 2, "L_cycles": 2, "num_layers": 1, "halt_max_steps": 2}).eval()


def test_confidence_from_trace_or_recomputed_from_stored_states():
    import interp

    m = _tiny_trm()
    x = torch.randint(1, 11, (2, 81))
    y = torch.randint(2, 11, (2, 81))
    tr = interp.trace(m, x, y, states=["y"], task={"name": "sudoku", "grid": [9, 9]})
    with torch.no_grad():
        want = torch.softmax(m.decode(torch.as_tensor(tr.states("y", puzzles=[1])[0])), -1).amax(-1).numpy()
    if "conf/y" in tr.arrays:  # the tracer records max-softmax confidence (float16)
        np.testing.assert_allclose(step_confidence(tr, 1), want, atol=2e-3)
        for k in [k for k in tr.arrays if k.startswith("conf/")]:
            del tr.arrays[k]
    assert step_confidence(tr, 1) is None  # no model, no conf/ array: unknown
    conf = step_confidence(tr, 1, model=m)  # recomputed from the stored states with the model's decode
    np.testing.assert_allclose(conf, want, rtol=1e-5)
    fig = step_figure(tr, puzzle=1, model=m)
    hover = fig.frames[-1].data[0].customdata[0][0]
    assert f"confidence {want[-1, 0]:.3f}" in hover


def test_hrm_lm_viewer_shows_gates_and_predictions():
    import interp
    from models.registry import build_model

    m = build_model({"family": "hrm_lm", "vocab_size": 256, "seq_len": 16, "hidden_size": 32, "num_heads": 2}).eval()
    tr = interp.trace(m, torch.randint(32, 127, (2, 16)))
    fig = step_figure(tr, puzzle=0)
    assert list(fig.data[0].y) == ["input", "prediction (fast)", "gate_fast", "gate_slow"]
    titles = [a.text for a in fig.layout.annotations]
    assert "gate mean" in titles
    k = int(np.flatnonzero(tr.steps["is_slow"])[0])
    z = np.array(fig.frames[k].data[0].z, dtype=float)
    g = tr.states("gate_slow", puzzles=[0])[0, k].mean(-1)
    np.testing.assert_allclose(z[3] - 3.0, np.clip(g, 0, 0.999), atol=1e-6)
    # the slow gate does not fire on the step before a slow update: blank cells there
    assert np.isnan(np.array(fig.frames[k - 1].data[0].z, dtype=float)[3]).all()


# ----------------------------------------------------------------------------- HTML
def _assert_offline(path: Path, mode: str = "file") -> None:
    """The page loads plotly.js from the plotly.min.js beside it (or inline) and nothing from elsewhere.

    (The bundle itself mentions URLs in strings, e.g. plotly's server default; only the page's own tags matter.)
    """
    text = path.read_text()
    srcs = [m.group(1) for m in re.finditer(r"""<script\b[^>]*\bsrc\s*=\s*["']([^"']+)["']""", text, flags=re.I)]
    outside = re.sub(r"<script\b[^>]*>.*?</script>", "<script></script>", text, flags=re.S | re.I)
    remote = re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", outside, flags=re.I)
    assert remote is None, f"page references a remote file: {remote.group(0) if remote else ''}"
    if mode == "inline":
        assert not srcs and re.search(r"plotly\.js v\d", text) and len(text) > 1_000_000
        return
    if mode == "compact":  # the step viewer: plotly.js's cartesian partial bundle, gzip + base64, beside the page
        assert srcs == ["plotly-cartesian.gz.js"], srcs
        js = path.parent / "plotly-cartesian.gz.js"
        head = js.read_text()[:100]
        packed = base64.b64decode(js.read_text().split('"')[1])
        assert head.startswith('window.__plotlyPacked="') and re.search(r"plotly\.js \(cartesian", gzip.decompress(packed)[:300].decode())
        assert len(text) < 1_000_000 and "__plotlyPacked=" not in text  # the bundle is not embedded
        return
    assert srcs == ["plotly.min.js"], srcs
    js = path.parent / "plotly.min.js"
    assert js.is_file() and js.stat().st_size > 1_000_000 and re.search(r"plotly\.js v\d", js.read_text()[:2000])
    assert len(text) < 1_000_000 and "plotly.js v" not in text  # the bundle is not embedded


def test_write_viewer_html_loads_plotly_js_from_beside_it(tmp_path):
    tr = _planted_trace()
    out = write_viewer(tr, tmp_path / "sub" / "viewer.html", puzzle=0)
    assert out == tmp_path / "sub" / "viewer.html"
    _assert_offline(out, "compact")
    text = out.read_text()
    assert "window.__viewer" in text and 'id="viewer-puzzle"' in text
    assert not list(out.parent.glob(".*tmp*"))  # atomic write leaves no temp file
    inline = write_viewer(tr, tmp_path / "inline" / "viewer.html", puzzle=[0, 1], plotly_js="inline")
    _assert_offline(inline, "inline")
    assert not (inline.parent / "plotly.min.js").exists()
    cdn = write_viewer(tr, tmp_path / "cdn" / "viewer.html", puzzle=0, plotly_js="cdn").read_text()
    assert re.search(r'<script[^>]+src="https://cdn\.plot\.ly/plotly-[\d.]+\.min\.js"', cdn)
    with pytest.raises(ValueError, match="plotly.js mode"):
        write_viewer(tr, tmp_path / "x.html", plotly_js="web")


def test_viewer_opens_at_step_of_interest_with_one_based_titles():
    from interp.views.trace_viewer import step_of_interest

    tr = _planted_trace()
    # puzzle 0 becomes right (and stays right) at the last step; puzzle 1 is right from step 0
    assert step_of_interest(tr, 0) == tr.n_steps - 1 and step_of_interest(tr, 1) == 0
    fig = step_figure(tr, puzzle=0)
    k = tr.n_steps - 1
    assert fig.layout.sliders[0].active == k and fig.layout.meta["initial_step"] == k
    assert _grid_string(tr.predictions[0, k]) == "/".join(
        " ".join(c if c else "." for c in row) for row in np.array(fig.data[0].text))
    assert "puzzle 1 " in fig.layout.title.text and "puzzle 2 " in step_figure(tr, puzzle=1).layout.title.text
    assert step_figure(tr, puzzle=0, initial_step=2).layout.sliders[0].active == 2


def test_one_plotly_js_per_folder(tmp_path):
    """Every HTML writer puts one plotly.min.js in its folder; files stay small."""
    import plotly.graph_objects as go

    from common.io import write_html

    tr = _planted_trace()
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    for name in ("a.html", "b.html"):
        write_html(fig, tmp_path / name)
    write_viewer(tr, tmp_path / "viewer.html", puzzle=[0, 1])
    write_html(fig, tmp_path / "nested" / "c.html", assets_dir=tmp_path)  # a shared copy one folder up
    write_viewer(tr, tmp_path / "nested" / "viewer.html", puzzle=[0], assets_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("plotly.min.js")) == ["plotly.min.js"]
    assert sorted(p.name for p in tmp_path.rglob("plotly-cartesian.gz.js")) == ["plotly-cartesian.gz.js"]
    assert 'src="../plotly.min.js"' in (tmp_path / "nested" / "c.html").read_text()
    assert 'src="../plotly-cartesian.gz.js"' in (tmp_path / "nested" / "viewer.html").read_text()
    for p in tmp_path.rglob("*.html"):
        assert p.stat().st_size < 500_000, p
    for name in ("a.html", "b.html"):
        _assert_offline(tmp_path / name)
    _assert_offline(tmp_path / "viewer.html", "compact")


def test_cli_viewer_call_site_writes_viewer(tmp_path, capsys):
    from interp.cli.common import write_trace_viewer

    write_trace_viewer(_planted_trace(), tmp_path)
    assert (tmp_path / "viewer.html").exists()
    assert "viewer written to" in capsys.readouterr().out


def test_dataset_views_build_from_analysis_tables(tmp_path):
    from interp.analyses import critical_steps, hl_alignment
    from common.io import write_html
    from interp.views.dataset_figures import (
        hl_cosine_figure,
        jump_histogram_figure,
        probe_accuracy_figure,
        residual_figure,
    )

    tr = _planted_trace()
    cs = critical_steps(tr)
    fig = jump_histogram_figure(cs, tr.n_steps)
    bar = fig.data[0]
    solved = cs["critical_step"][cs["critical_step"] >= 0]
    assert list(bar.y) == np.bincount(solved, minlength=tr.n_steps).tolist()
    al = hl_alignment(tr)
    fig = hl_cosine_figure({"a": al})
    line = [d for d in fig.data if d.name == "a"][0]
    np.testing.assert_allclose(line.y, al["cos_mean"])
    res = pd.DataFrame({"puzzle": [0, 1, 2], "residual.z_H": [1e-3, 1e-2, 0.0], "exact": [True, False, True]})
    fig = residual_figure(res)
    solved_hist = [d for d in fig.data if d.name == "solved"][0]
    np.testing.assert_allclose(solved_hist.x, [-3.0])  # the exact zero is counted apart, not plotted
    pr = pd.DataFrame({"step": [0, 1, 0, 1], "target": ["v", "v", "c", "c"], "accuracy": [.2, .5, .6, .7],
                       "control_accuracy": [.1, .1, .5, .5], "chance": [.1, .1, .5, .5]})
    fig = probe_accuracy_figure(pr)
    assert {d.name for d in fig.data} == {"v", "v control", "v chance", "c", "c control", "c chance"}
    path = write_html(fig, tmp_path / "probes.html")
    _assert_offline(path)
    with pytest.raises(TraceError, match="lacks columns"):
        probe_accuracy_figure(pr.drop(columns=["accuracy"]))


# ----------------------------------------------------------------------------- real browser
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_chromium_renders_offline_and_hash_step_changes_grid(tmp_path):
    tr = _planted_trace()
    path = write_viewer(tr, tmp_path / "viewer.html", puzzle=0)
    k = 2
    doms = {}
    for step in (None, k):
        url = path.as_uri() + (f"#step={step}" if step is not None else "")
        r = run_chromium(["--dump-dom", url], tmp_path)
        assert r.returncode == 0, r.stderr[-500:]
        doms[step] = r.stdout
    # without a hash the viewer opens at the step of interest: puzzle 0 becomes right at the last step
    for step, want in ((None, tr.n_steps - 1), (k, k)):
        dom = doms[step]
        m = re.search(r'data-step="(\d+)"', dom)
        g = re.search(r'data-grid="([^"]*)"', dom)
        assert m and g, "viewer hook did not run (plotly.min.js not loaded?)"
        assert int(m.group(1)) == want
        assert html_lib.unescape(g.group(1)) == _grid_string(tr.predictions[0, want])
        assert "main-svg" in dom  # plotly drew its SVG
    assert _grid_string(tr.predictions[0, 0]) != _grid_string(tr.predictions[0, k])


_DRIVER = """<script>
(function () {
  var log = {};
  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function key(k) { document.body.dispatchEvent(new KeyboardEvent('keydown', {key: k, bubbles: true})); return wait(400); }
  function snap(name) {
    var gd = window.__viewer.div;
    log[name] = {step: gd.getAttribute('data-step'), puzzle: gd.getAttribute('data-puzzle'),
                 grid: gd.getAttribute('data-grid'), slider: gd._fullLayout.sliders[0].active};
  }
  function bottom() { var s = document.querySelector('.slider-container'); return s ? s.getBoundingClientRect().bottom : null; }
  window.__viewer.ready.then(function () { snap('initial'); log.slider_bottom = bottom(); return key('ArrowLeft'); })
    .then(function () { snap('left'); return key('ArrowLeft'); })
    .then(function () { snap('left2'); return key('ArrowRight'); })
    .then(function () { snap('right'); return key('Home'); })
    .then(function () { snap('home'); return key('End'); })
    .then(function () {
      snap('end');
      var p = document.getElementById('viewer-puzzle');
      p.value = '1';
      p.dispatchEvent(new Event('change'));
      return wait(800);
    })
    .then(function () { snap('picked'); document.body.setAttribute('data-test', JSON.stringify(log)); })
    .catch(function (e) { document.body.setAttribute('data-test', JSON.stringify({error: String(e)})); });
})();
</script>"""


def _drive(path: Path, tmp_path: Path) -> dict:
    """Open ``path`` in headless Chromium (1280x800) with a script that presses keys and uses the picker."""
    return drive_page(path, _DRIVER, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_chromium_picker_and_arrow_keys(tmp_path):
    tr = _planted_trace()
    path = write_viewer(tr, tmp_path / "viewer.html", puzzle=[0, 1])
    log = _drive(path, tmp_path)
    last = tr.n_steps - 1
    want = {"initial": (0, last), "left": (0, last - 1), "left2": (0, last - 2), "right": (0, last - 1),
            "home": (0, 0), "end": (0, last), "picked": (1, 0)}  # puzzle 2 is right from step 0: opens there
    for name, (p, k) in want.items():
        got = log[name]
        assert (int(got["puzzle"]), int(got["step"]), int(got["slider"])) == (p + 1, k, k), (name, got)
        assert got["grid"] == _grid_string(tr.predictions[p, k]), name


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_chromium_hrm_lm_slider_above_the_fold(tmp_path):
    import interp
    from models.registry import build_model

    m = build_model({"family": "hrm_lm", "vocab_size": 256, "seq_len": 16, "hidden_size": 32, "num_heads": 2}).eval()
    tr = interp.trace(m, torch.randint(32, 127, (2, 16)))
    log = _drive(write_viewer(tr, tmp_path / "lm.html", puzzle=[0, 1]), tmp_path)
    assert log["slider_bottom"] is not None and log["slider_bottom"] <= 800
    assert int(log["initial"]["step"]) == tr.n_steps - 1  # a language model opens at the last step
    assert int(log["picked"]["puzzle"]) == 2


def test_sixteen_puzzle_viewer_folder_is_small(tmp_path):
    """The zoo TRM's viewer of 16 real puzzles (48 steps each, confidences): the folder is <= 1.5 MB in all."""
    import interp
    from interp.puzzle_inputs import load_puzzle_inputs
    from models.load import load_any

    model, meta = load_any("zoo/trm-sudoku9")
    got = load_puzzle_inputs(meta, puzzle_file="data/sudoku/generated_moderate.sdm", limit=16)
    tr = interp.trace(model, got.inputs, got.labels)
    tr.meta["task"] = got.task
    folder = tmp_path / "viewer"
    write_viewer(tr, folder / "viewer.html", puzzle=list(range(16)))
    files = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert sorted(files) == ["plotly-cartesian.gz.js", "viewer.html"]
    assert sum(files.values()) <= 1_500_000, files
    assert files["viewer.html"] <= 600_000, files  # 3.7 MB for 8 puzzles before the figures were gzipped
    _assert_offline(folder / "viewer.html", "compact")


def test_log_panel_ticks_never_crowd():
    from interp.views.trace_viewer import log_dtick

    for lo, hi in ((1e-1, 1.0), (1e-6, 1e-1), (1e-9, 10.0), (3e-3, 2e-3 * 1.01 + 3e-3)):
        d = log_dtick(lo, hi)
        assert d >= 1 and (np.log10(hi) - np.log10(lo)) / d <= 4
    assert log_dtick(1e-6, 1e-1) == 2 and log_dtick(1e-2, 1.0) == 1
    fig = step_figure(_planted_trace(), puzzle=0)
    log_axes = [ax for name, ax in fig.layout.to_plotly_json().items() if name.startswith("yaxis") and ax.get("type") == "log"]
    assert log_axes and all(ax["dtick"] >= 1 for ax in log_axes)

"""The attribution viewer (interp.views.attribution_viewer): offline page, embedded data, size, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from interp.causal.pairs import PairSet
from interp.views.attribution_viewer import (
    ALL_STATES,
    QUANT,
    read_viewer_data,
    write_attribution_viewer,
)
from helpers.browser import CHROMIUM, drive_page
from tasks.puzzles import TaskInfo

SUDOKU = TaskInfo("sudoku", (9, 9), "argument")
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


def _sudoku_pairs(n: int) -> PairSet:
    """``n`` copies of one Sudoku (tokens: blank 1, digit d -> d + 1), each with a different given changed."""
    clean = np.array([1 if ch == "." else int(ch) + 1 for ch in PUZZLE], dtype=np.int64)
    clean = np.tile(clean, (n, 1))
    corrupt = clean.copy()
    givens = np.flatnonzero(clean[0] > 1)
    for i in range(n):
        c = givens[i]
        corrupt[i, c] = 2 + (clean[i, c] - 1) % 9
    labels = np.where(clean > 1, clean, 5)
    targets = clean == 1
    return PairSet(clean, corrupt, labels, targets, "change_given", [f"cell {givens[i]}" for i in range(n)])


def _table(n_puzzles: int, methods: list[str], n_segments: int, n_positions: int, prefix: int = 0,
           seed: int = 0) -> pd.DataFrame:
    """A TRM-shaped score table: per segment 2 H-cycles of (3 z writes, 1 y write), heavy-tailed scores."""
    rng = np.random.default_rng(seed)
    hooks = []
    step = 0
    for seg in range(n_segments):
        for t in range(2):
            for n in range(3):
                hooks.append((f"seg{seg}.t{t}.n{n}.hook_z", seg, step, "z"))
                step += 1
            hooks.append((f"seg{seg}.t{t}.hook_y", seg, step, "y"))
            step += 1
    rows = []
    for p in range(n_puzzles):
        for m in methods:
            for hook, seg, k, state in hooks:
                for pos in range(-prefix, n_positions):
                    rows.append((p, m, seg, k, state, pos, hook))
    df = pd.DataFrame(rows, columns=["puzzle", "method", "segment", "step", "state", "position", "hook"])
    df["score"] = rng.standard_t(2, len(df)) * 10.0 ** rng.uniform(-3, 0, len(df))
    return df[["puzzle", "method", "segment", "step", "state", "position", "score", "hook"]]


def _decoded(data: dict) -> pd.DataFrame:
    """The embedded payload back as (puzzle, method, step, state, position, score) rows."""
    rows = []
    for P in data["puzzles"]:
        for m, per_state in P["q"].items():
            for s, mat in per_state.items():
                for j, row, unit in zip(data["state_steps"][s], mat, P["unit"][m][s]):
                    for pos, q in zip(data["positions"], row):
                        rows.append((P["puzzle"], m, data["steps"][j], s, pos,
                                     np.nan if q is None else q * unit, unit))
    return pd.DataFrame(rows, columns=["puzzle", "method", "step", "state", "position", "score", "unit"])


def _assert_offline(path: Path) -> None:
    text = path.read_text()
    srcs = re.findall(r'<script[^>]*\bsrc="([^"]+)"', text)
    assert srcs == ["plotly.min.js"]
    assert (path.parent / "plotly.min.js").is_file()
    assert not re.search(r"(src|href)=\"https?://", text)


def test_page_is_offline_and_data_round_trips(tmp_path):
    scores = _table(2, ["atp", "ig", "patch"], 2, 81)
    scores.loc[5, "score"] = np.nan  # a patching chunk never computed
    pairs = _sudoku_pairs(2)
    path = write_attribution_viewer(scores, pairs, tmp_path / "attribution.html", task=SUDOKU)
    assert path == tmp_path / "attribution.html"
    _assert_offline(path)
    data = read_viewer_data(path)
    assert data["methods"] == ["atp", "ig", "patch"] and data["states"] == ["z", "y"]
    assert data["layout"]["kind"] == "grid" and (data["layout"]["rows"], data["layout"]["cols"]) == (9, 9)
    back = _decoded(data)
    keys = ["puzzle", "method", "step", "state", "position"]
    got = scores.merge(back, on=keys, suffixes=("", "_page"), how="outer", validate="one_to_one")
    assert len(got) == len(scores) and got["score_page"].notna().sum() == scores["score"].notna().sum()
    assert got.loc[5, "score_page"] != got.loc[5, "score_page"]  # NaN stays missing
    # one unit per (puzzle, method, state, step) row: the row's largest |score| / QUANT
    unit = got.groupby(["puzzle", "method", "state", "step"])["score"].transform(lambda s: s.abs().max()) / QUANT
    assert np.allclose(got["unit"], unit, rtol=1e-6)
    ok = got["score"].notna()
    assert (np.abs(got["score"] - got["score_page"])[ok] <= 0.5 * unit[ok] * (1 + 1e-3)).all()
    # the clean puzzle's digits, the corrupted cell and the cells the metric reads
    P = data["puzzles"][1]
    assert "".join(c or "." for c in P["clean"]) == PUZZLE
    assert P["changed"] == np.flatnonzero(pairs.clean[1] != pairs.corrupt[1]).tolist()
    assert P["targets"] == np.flatnonzero(pairs.targets[1]).tolist()
    # colour ranges: symmetric per method and state choice, over every puzzle; "all" sums the states of a step
    for m in data["methods"]:
        dm = scores[scores["method"] == m]
        assert data["range"][m]["z"] == pytest.approx(dm.loc[dm["state"] == "z", "score"].abs().max(), rel=1e-5)
        summed = dm.groupby(["puzzle", "step", "position"])["score"].sum(min_count=1).abs().max()
        assert data["range"][m][ALL_STATES] == pytest.approx(summed, rel=1e-5)
    page = path.read_text()
    assert "all states (sum)" in page and "puzzle 2 (cell 1)" in page


def test_size_four_puzzles_three_methods_six_segments(tmp_path):
    """A 4-puzzle, 3-method page of a 6-segment TRM (Sudoku 9x9, with a 16-position prefix) stays small."""
    scores = _table(4, ["atp", "ig", "patch"], 6, 81, prefix=16)
    path = write_attribution_viewer(scores, _sudoku_pairs(4), tmp_path / "a.html", task=SUDOKU)
    size = path.stat().st_size
    assert size < 1_500_000, size
    assert min(read_viewer_data(path)["positions"]) == -16


def test_text_pairs_show_a_strip_of_tokens(tmp_path):
    clean = np.frombuffer(b"def main():", dtype=np.uint8).astype(np.int64)[None]
    corrupt = clean.copy()
    corrupt[0, 4] = ord("x")
    labels = np.full_like(clean, -100)
    labels[0, -1] = ord("\n")
    targets = labels != -100
    pairs = PairSet(clean, corrupt, labels, targets, "user", ["user-supplied"])
    scores = _table(1, ["atp"], 1, clean.shape[1])
    data = read_viewer_data(write_attribution_viewer(scores, pairs, tmp_path / "t.html", task=None))
    assert data["layout"]["kind"] == "strip" and data["layout"]["cols"] == clean.shape[1]
    assert "".join(data["puzzles"][0]["clean"]) == "def␣main():"
    assert data["puzzles"][0]["changed"] == [4]


def test_arc_page_holds_only_the_cropped_cells_and_the_prefix(tmp_path):
    clean = np.zeros((1, 900), dtype=np.int64)
    clean[0].reshape(30, 30)[:2, :3] = [[2, 3, 4], [5, 6, 7]]
    corrupt = clean.copy()
    corrupt[0, 1] = 9
    labels = np.where(clean > 0, clean, -100)
    pairs = PairSet(clean, corrupt, labels, labels > 0, "user", ["user-supplied"])
    data = read_viewer_data(write_attribution_viewer(_table(1, ["atp"], 1, 900, prefix=2), pairs, tmp_path / "a.html",
                                                     task=TaskInfo("arc", (30, 30), "argument")))
    lay = data["layout"]
    assert (lay["rows"], lay["cols"], lay["shown"]) == (2, 3, [0, 1, 2, 30, 31, 32])
    assert data["positions"] == [-2, -1, 0, 1, 2, 30, 31, 32]
    assert [data["puzzles"][0]["clean"][p] for p in lay["shown"]] == ["0", "1", "2", "3", "4", "5"]


@pytest.mark.parametrize("change, message", [
    (lambda s: s.iloc[0:0], "score table is empty"),
    (lambda s: s.assign(puzzle=s["puzzle"] + 3), "has puzzle 3, but the pairs hold 2"),
    (lambda s: s.drop(columns=["state"]), "lacks columns state"),
    (lambda s: s.assign(position=s["position"] + 5), "position 85, but the inputs have 81"),
    (lambda s: pd.concat([s, s.iloc[:1]]), "several rows for one unit"),
])
def test_bad_input_is_one_line_value_error(tmp_path, change, message):
    scores = change(_table(2, ["atp"], 1, 81))
    with pytest.raises(ValueError, match=message) as err:
        write_attribution_viewer(scores, _sudoku_pairs(2), tmp_path / "x.html", task=SUDOKU)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "x.html").exists()


def test_grid_that_does_not_fit_the_inputs_is_refused(tmp_path):
    with pytest.raises(ValueError, match="4x4 = 16 cells, but the inputs have 81"):
        write_attribution_viewer(_table(1, ["atp"], 1, 81), _sudoku_pairs(1), tmp_path / "x.html",
                                 task=TaskInfo("sudoku", (4, 4), "argument"))


# ----------------------------------------------------------------------------- real browser
_DRIVER = """<script>
(function () {
  var log = {};
  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function snap(name) {
    var b = document.body;
    log[name] = {step: b.getAttribute('data-attr-step'), puzzle: b.getAttribute('data-attr-puzzle'),
                 method: b.getAttribute('data-attr-method'), state: b.getAttribute('data-attr-state'),
                 grid: b.getAttribute('data-attr-grid'), z: JSON.parse(b.getAttribute('data-attr-z')),
                 svg: !!document.querySelector('.main-svg')};
  }
  function key(k) {
    document.body.dispatchEvent(new KeyboardEvent('keydown', {key: k, bubbles: true}));
    return wait(300);
  }
  window.addEventListener('error', function (e) { log.error = String(e.message); });
  window.__attr.ready.then(function () { snap('initial'); return key('Home'); })
    .then(function () { snap('home'); return key('ArrowRight'); })
    .then(function () { snap('right'); var ms = window.__attr.data.methods;
      return window.__attr.show({puzzle: 1, method: ms[ms.length - 1], state: 'y'}); })
    .then(function () { snap('picked'); document.body.setAttribute('data-test', JSON.stringify(log)); })
    .catch(function (e) { document.body.setAttribute('data-test', JSON.stringify({error: String(e)})); });
})();
</script>"""


def _drive(path: Path, tmp_path: Path, fragment: str = "") -> dict:
    """Open ``path`` in headless Chromium with the driver script; its log of what the page showed."""
    return drive_page(path, _DRIVER, tmp_path, fragment)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_chromium_draws_the_page_and_steps(tmp_path):
    scores = _table(2, ["atp", "ig"], 2, 81)
    path = write_attribution_viewer(scores, _sudoku_pairs(2), tmp_path / "attribution.html", task=SUDOKU)
    log = _drive(path, tmp_path)
    last = int(scores["step"].max())
    assert (log["initial"]["step"], log["initial"]["state"]) == (str(last), ALL_STATES)
    assert log["home"]["step"] == "0" and log["right"]["step"] == "1" and log["initial"]["svg"]
    assert log["initial"]["grid"].split("/")[0] == ",".join(c if c != "." else "" for c in PUZZLE[:9])
    # the grid shows the table's scores at that step (state z at step 1 of puzzle 0, method atp)
    want = scores[(scores["puzzle"] == 0) & (scores["method"] == "atp") & (scores["step"] == 1)]
    want = want.sort_values("position")["score"].to_numpy().reshape(9, 9)
    assert np.allclose(np.array(log["right"]["z"], dtype=float), want, atol=np.abs(want).max() / QUANT)
    # picking puzzle 2, ig, state y keeps the step when y is written there, else the last y step before it
    assert (log["picked"]["puzzle"], log["picked"]["method"], log["picked"]["state"]) == ("1", "ig", "y")
    assert log["picked"]["step"] == "3"  # no y write at or before step 1: the first one (step 3)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_chromium_text_strip_with_markup_and_link_fragment(tmp_path):
    clean = np.frombuffer(b"a<b>c&d", dtype=np.uint8).astype(np.int64)[None].repeat(2, 0)
    corrupt = clean.copy()
    corrupt[:, 0] = ord("z")
    labels = np.full_like(clean, -100)
    labels[:, -1] = ord("e")
    pairs = PairSet(clean, corrupt, labels, labels != -100, "user", ["<script>x</script>", "second"])
    scores = _table(2, ["atp", "patch"], 2, clean.shape[1])
    path = write_attribution_viewer(scores, pairs, tmp_path / "t.html")
    log = _drive(path, tmp_path, "#puzzle=2&method=patch&state=z&step=7")
    assert (log["initial"]["puzzle"], log["initial"]["method"], log["initial"]["state"]) == ("1", "patch", "z")
    assert log["initial"]["step"] == "6"  # z is not written at step 7 (a y step): the z step before it
    assert log["initial"]["grid"] == "a,&lt;,b,&gt;,c,&amp;,d" and log["initial"]["svg"]

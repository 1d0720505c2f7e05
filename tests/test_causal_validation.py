"""Attribution against exhaustive patching on every zoo model (small settings; the full table is
``benchmarks/causal_validation.py``): AtP must rank the units far better than chance on each."""

from __future__ import annotations

from pathlib import Path

import pytest

from interp.causal.validation import validate_checkpoint, zoo_pairs
from models.load import load_any

ZOO = Path(__file__).resolve().parents[1] / "zoo"

# model, task, states, segments, least Spearman rho over all units for AtP (chance: 0)
CASES = [
    ("trm-sudoku9", "sudoku", ["y"], 1, 0.6),
    ("hrm-sudoku9", "sudoku", ["z_H"], 1, 0.6),
    ("hrm-attn-sudoku9", "sudoku", ["z_H"], 1, 0.6),
    ("trm-maze9", "maze", ["y"], 1, 0.4),
    ("hrm-sudoku9-hard", "sudoku", ["z_H"], 1, 0.6),
    pytest.param("trm-sudoku9-hard", "sudoku", ["y"], 1, 0.6, marks=pytest.mark.slow),
    ("hrm-lm-pydoc", "text", ["slow"], None, 0.6),
]


@pytest.mark.parametrize("name, task, states, segments, least", CASES)
def test_atp_ranks_units_like_exhaustive_patching(name, task, states, segments, least):
    model, _ = load_any(str(ZOO / name))
    cmp, scores = validate_checkpoint(model, zoo_pairs(model, task, 1, seed=0), n_segments=segments, states=states,
                                      methods=("atp",), patch_rows=128)
    assert set(scores["method"]) == {"atp", "patch"}
    assert scores.groupby("method").size().nunique() == 1  # the same units scored by both
    row = cmp.iloc[0]
    assert row["spearman_all"] > least, cmp.to_string()
    assert row["topk_overlap"] > 0.3, cmp.to_string()

"""Causal analysis: attribution equals exact patching where first order is exact, planted dependencies are
found, patching resumes, the numbers of the forward are untouched, and bad input is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from interp.causal.attribute import attribute
from interp.causal.errors import CausalError
from interp.causal.metrics import fixed_logit_diff, logit_diff
from interp.causal.pairs import make_pairs
from interp.causal.summary import compare_methods
from models import TRMConfig, build_model

ZOO = Path(__file__).resolve().parents[1] / "zoo"
L, D, V = 9, 6, 5


class TokenMix(nn.Module):
    """``f(h, inj) = act(M (h W + inj U))``: a recurrent unit whose token mixing ``M`` is chosen by the test."""

    def __init__(self, mixing: torch.Tensor, nonlinear: bool, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(D, D, generator=g, dtype=torch.float64) * 0.4)
        self.U = nn.Parameter(torch.randn(D, D, generator=g, dtype=torch.float64) * 0.4)
        self.register_buffer("M", mixing.double())
        self.nonlinear = nonlinear

    def forward(self, hidden, injection=None, rotary=None):
        pre = torch.einsum("ij,bjd->bid", self.M, hidden @ self.W + injection @ self.U)
        return torch.tanh(pre) if self.nonlinear else pre


def planted_trm(mixing: torch.Tensor, nonlinear: bool, seed: int = 0):
    cfg = TRMConfig(vocab_size=V, seq_len=L, hidden_size=D, num_heads=1, expansion=2.0, H_cycles=2, L_cycles=2,
                    num_layers=1, mlp_t=True, halt_max_steps=2)
    torch.manual_seed(seed)
    model = build_model(cfg).double().eval()
    model.L_level = TokenMix(mixing, nonlinear, seed)
    return model


def _pairs(seed: int = 0, target: int | str = "blank"):
    g = np.random.default_rng(seed)
    clean = g.integers(1, V, size=(2, L))
    corrupt = g.integers(1, V, size=(2, L))
    corrupt[corrupt == clean] = (corrupt[corrupt == clean] % (V - 1)) + 1
    labels = g.integers(2, V, size=(2, L))
    return make_pairs(clean, labels, "user", "maze", target=target, corrupt=corrupt)


def test_first_order_attribution_is_exact_on_a_linear_recurrence():
    mixing = torch.eye(L) + 0.3 * torch.randn(L, L, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    model = planted_trm(mixing, nonlinear=False)
    res = attribute(model, _pairs(), methods=["atp", "ig", "patch"], patch_rows=32)
    piv = res.scores.pivot_table(index=["puzzle", "hook", "position"], columns="method", values="score")
    assert np.abs(piv["patch"]).max() > 1e-3  # the patches do something
    np.testing.assert_allclose(piv["atp"], piv["patch"], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(piv["ig"], piv["patch"], rtol=1e-7, atol=1e-10)
    cmp = compare_methods(res.scores)
    assert (cmp["spearman_all"] > 0.999).all() and (cmp["topk_overlap"] == 1).all()


def test_planted_dependency_is_the_only_one_found():
    src_cell, dst_cell = 2, 7
    mixing = torch.eye(L, dtype=torch.float64)
    mixing[dst_cell, src_cell] = 1.0  # cell 7 reads cell 2; every other cell reads only itself
    model = planted_trm(mixing, nonlinear=True)
    res = attribute(model, _pairs(target=dst_cell), methods=["atp", "patch"], patch_rows=32)
    for method in ("atp", "patch"):
        df = res.scores[res.scores["method"] == method]
        mass = df.groupby("position")["score"].apply(lambda s: s.abs().sum())
        assert set(mass[mass > 1e-12].index) <= {src_cell, dst_cell}
        assert mass[src_cell] > 1e-6 and mass[dst_cell] > 1e-6


def test_attribution_reaches_every_segment_and_keeps_the_forward():
    mixing = torch.eye(L) + 0.2
    model = planted_trm(mixing, nonlinear=True)
    pairs = _pairs()
    res = attribute(model, pairs, methods=["atp"])
    by_seg = res.scores.groupby("segment")["score"].apply(lambda s: s.abs().sum())
    assert list(by_seg.index) == [0, 1] and (by_seg > 0).all()  # the 1-step gradient would leave segment 0 at 0
    with torch.no_grad():
        logits = model(torch.as_tensor(pairs.clean))
        src = model(torch.as_tensor(pairs.corrupt))
    from interp.causal.metrics import answer_alphabet, best_wrong

    lab = torch.as_tensor(pairs.labels)
    foils = best_wrong(src, lab, answer_alphabet(lab, V))
    want = fixed_logit_diff(logits, lab, foils, torch.as_tensor(pairs.targets)).numpy()
    np.testing.assert_allclose(res.pairs["metric_receiving"], want, rtol=1e-12)


def test_metrics_by_hand():
    logits = torch.tensor([[[0.0, 1.0, 3.0, 2.0], [0.0, 5.0, 1.0, 0.5]]])
    labels = torch.tensor([[2, 3]])
    targets = torch.tensor([[True, True]])
    alpha = torch.tensor([False, True, True, True])
    # cell 0: 3 - 2 = 1; cell 1: 0.5 - 5 = -4.5 -> mean -1.75
    assert float(logit_diff(logits, labels, targets, alpha)) == pytest.approx(-1.75)
    foils = torch.tensor([[1, 2]])
    assert float(fixed_logit_diff(logits, labels, foils, targets)) == pytest.approx(((3 - 1) + (0.5 - 1)) / 2)


def test_patching_resumes_from_saved_chunks(tmp_path):
    model = planted_trm(torch.eye(L) + 0.1, nonlinear=True)
    pairs = _pairs()
    first = attribute(model, pairs, methods=["patch"], patch_rows=16, patch_dir=tmp_path / "chunks")
    files = sorted((tmp_path / "chunks").glob("*.npy"))
    assert len(files) > 2
    for f in files[::2]:
        f.unlink()
    np.save(files[1], np.full_like(np.load(files[1]), 123.0))  # a kept chunk is read back, not recomputed
    again = attribute(model, pairs, methods=["patch"], patch_rows=16, patch_dir=tmp_path / "chunks")
    assert (again.scores["score"] == 123.0).sum() == 16
    same = again.scores["score"] != 123.0
    np.testing.assert_array_equal(again.scores["score"][same], first.scores["score"][same])
    with pytest.raises(CausalError, match="other settings"):
        attribute(model, pairs, methods=["patch"], metric="cross_entropy", patch_rows=16, patch_dir=tmp_path / "chunks")


def test_zoo_hrm_and_lm_run_and_agree_roughly():
    from interp.examples import sudoku_puzzles
    from models.load import load_any

    model, _ = load_any(str(ZOO / "hrm-sudoku9"))
    x, y = sudoku_puzzles(1, seed=5)
    pairs = make_pairs(np.asarray(x), np.asarray(y), "blank_given", "sudoku", seed=1)
    res = attribute(model, pairs, methods=["atp", "patch"], n_segments=1, states=["z_H"], patch_rows=81)
    assert set(res.scores["state"]) == {"z_H"} and len(res.scores) == 2 * 2 * 81
    cmp = compare_methods(res.scores)
    assert float(cmp["spearman_all"].iloc[0]) > 0.5

    lm, _ = load_any(str(ZOO / "hrm-lm-pydoc"))
    toks = np.frombuffer(b"def main(x):\n    return", dtype=np.uint8).astype(np.int64)[None]
    labels = np.full_like(toks, -100)
    labels[0, -1] = ord(" ")
    pairs = make_pairs(toks, labels, "substitute", "text", vocab_size=256, seed=0)
    res = attribute(lm, pairs, methods=["atp", "patch"], states=["slow"], patch_rows=64)
    assert set(res.scores["state"]) == {"slow"} and np.isfinite(res.scores["score"]).all()
    piv = res.scores.pivot_table(index=["hook", "position"], columns="method", values="score")
    assert np.corrcoef(piv["atp"], piv["patch"])[0, 1] > 0.5


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="change_given", task="maze"), "for Sudoku"),
    (dict(kind="user", task="sudoku", corrupt="same"), "unchanged"),
    (dict(kind="blank_given", task="sudoku", target=81), "outside"),
    (dict(kind="blank_given", task="sudoku", labels=None), "labels"),
    (dict(kind="bogus", task="sudoku"), "unknown corruption"),
])
def test_bad_pairs_are_one_line(kwargs, message):
    from interp.examples import sudoku_puzzles

    x, y = sudoku_puzzles(1, seed=0)
    x = np.asarray(x).astype(np.int64)
    corrupt = x.copy() if kwargs.pop("corrupt", None) == "same" else None
    labels = kwargs.pop("labels", np.asarray(y))
    with pytest.raises(CausalError, match=message) as e:
        make_pairs(x, labels, corrupt=corrupt, **kwargs)
    assert "\n" not in str(e.value)


def test_change_given_keeps_a_solvable_puzzle():
    from interp.examples import sudoku_puzzles
    from tasks.sudoku.grid import decode_tokens
    from tasks.sudoku.solver import count_solutions

    x, y = sudoku_puzzles(3, seed=2)
    pairs = make_pairs(np.asarray(x), np.asarray(y), "change_given", "sudoku", seed=4)
    for clean, bad in zip(pairs.clean, pairs.corrupt):
        diff = np.flatnonzero(clean != bad)
        assert len(diff) == 1 and clean[diff[0]] >= 2 and bad[diff[0]] >= 2
        assert count_solutions(decode_tokens(bad), limit=1) == 1


def test_unknown_state_and_metric_without_gradient():
    model = planted_trm(torch.eye(L), nonlinear=True)
    with pytest.raises(CausalError, match="unknown state 'z_H'"):
        attribute(model, _pairs(), states=["z_H"])
    with pytest.raises(CausalError, match="no gradient"):
        attribute(model, _pairs(), methods=["atp"], metric="exact")


def test_cli_writes_the_table_and_refuses_bad_input(tmp_path, capsys):
    from interp.cli import main

    out = tmp_path / "attr"
    rc = main(["attribute", "--ckpt", str(ZOO / "trm-sudoku9"), "--puzzle-file",
               str(ZOO.parent / "data/sudoku/generated_moderate.sdm"), "--limit", "1", "--segments", "1",
               "--states", "y", "--method", "atp,patch", "--out", str(out), "--threads", "1"])
    assert rc == 0
    df = pd.read_csv(out / "attribution.csv")
    assert {"puzzle", "method", "segment", "step", "state", "position", "score"} <= set(df.columns)
    assert len(df) == 2 * 2 * 81 and set(df["method"]) == {"atp", "patch"}
    printed = capsys.readouterr().out
    assert "top units" in printed and "spearman_top" in printed and "peer" in printed
    assert (out / "attribution.html").stat().st_size > 1000 and "warning" not in printed
    for argv, msg in ((["--target", "r10c1"], "outside"), (["--states", "z_H"], "unknown state"),
                      (["--method", "atp,magic"], "--method")):
        bad = tmp_path / "bad"
        rc = main(["attribute", "--ckpt", str(ZOO / "trm-sudoku9"), "--puzzle-file",
                   str(ZOO.parent / "data/sudoku/generated_moderate.sdm"), "--limit", "1", "--out", str(bad), *argv])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and err.count("\n") == 1
        assert not (bad / "attribution.csv").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    rc = main(["attribute", "--ckpt", str(ZOO / "trm-sudoku9"), "--puzzle-file",
               str(ZOO.parent / "data/sudoku/generated_moderate.sdm"), "--limit", "1", "--out", str(tmp_path / "mine")])
    assert rc == 2 and "refusing" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_sharded_patching_matches_one_process(tmp_path):
    import os
    import subprocess
    import sys

    repo = ZOO.parent
    args = ["--ckpt", str(ZOO / "trm-sudoku9"), "--puzzle-file", str(repo / "data/sudoku/generated_moderate.sdm"),
            "--limit", "2", "--segments", "1", "--states", "y", "--method", "atp,patch", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "interp", "attribute", *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert two.returncode == 0, two.stderr[-2000:]
    one = subprocess.run([sys.executable, "-m", "interp", "attribute", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.stdout.count("top units by atp") == 1  # rank 0 alone reports
    a = pd.read_csv(tmp_path / "two" / "attribution.csv")
    b = pd.read_csv(tmp_path / "one" / "attribution.csv")
    pd.testing.assert_frame_equal(a, b)
    assert len(list((tmp_path / "two" / "patch_chunks").glob("*.npy"))) >= 4


def test_hrm_text_patching_and_full_graph_attribution():
    pytest.importorskip("transformers")
    from transformers import HrmTextConfig, HrmTextForCausalLM

    from models.hrm_text import wrap_hrm_text

    torch.manual_seed(0)
    cfg = HrmTextConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                        head_dim=16, H_cycles=2, L_cycles=3, max_position_embeddings=32)
    hf = HrmTextForCausalLM(cfg).eval()
    assert list(hf.model.L_bp_cycles_padded) != [3, 3]  # transformers keeps early L-cycles out of the graph
    model = wrap_hrm_text(hf)
    g = np.random.default_rng(0)
    toks = g.integers(0, 40, size=(1, 10))
    labels = np.full_like(toks, -100)
    labels[0, -1] = 7
    pairs = make_pairs(toks, labels, "substitute", "text", vocab_size=40, seed=1)
    res = attribute(model, pairs, ["atp", "patch"], patch_rows=32)
    assert list(hf.model.L_bp_cycles_padded) != [3, 3]  # restored after the full-graph run
    piv = res.scores.pivot_table(index=["hook", "position"], columns="method", values="score")
    first = piv.loc[[h for h in piv.index.get_level_values(0) if h.startswith("seg0.h0.l0.")]]
    assert first["atp"].abs().sum() > 0  # the first L-cycle is reached (it runs under no_grad in transformers)
    assert np.corrcoef(piv["atp"], piv["patch"])[0, 1] > 0.5
    with pytest.raises(CausalError, match="input"):
        attribute(model, pairs, ["ig"])


def test_verify_patches_exactly_the_top_attributed_units():
    model = planted_trm(torch.eye(L) + 0.3, nonlinear=True, seed=2)
    res = attribute(model, _pairs(seed=3), methods=["atp", "verify", "patch"], verify_top=0.2, patch_rows=32)
    piv = res.scores.pivot_table(index=["puzzle", "hook", "position"], columns="method", values="score")
    for _, g in piv.groupby(level="puzzle"):
        k = int(np.ceil(0.2 * len(g)))
        top = g["atp"].abs().sort_values(ascending=False).index[:k]
        rest = g.index.difference(top)
        np.testing.assert_allclose(g.loc[top, "verify"], g.loc[top, "patch"], rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(g.loc[rest, "verify"], g.loc[rest, "atp"])
        assert not np.allclose(g.loc[top, "atp"], g.loc[top, "patch"])  # the nonlinear model: verifying changes them
    with pytest.raises(CausalError, match="verify_top"):
        attribute(model, _pairs(), methods=["verify"], verify_top=0)

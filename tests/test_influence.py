"""Influence between cells across cycles (interp/causal/influence.py, ``interp influence``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from interp.causal.errors import CausalError
from interp.causal.influence import (
    InfluenceResult,
    attention_vs_influence,
    cycle_influence,
    even_chunk,
    influence,
    maze_path_share,
    relation_share,
    sudoku_peer_share,
)
from interp.stability.step_maps import model_step_map
from models import HRMConfig, TRMConfig, build_model

V, L, D = 6, 8, 8
TINY = TRMConfig(vocab_size=V, seq_len=L, hidden_size=D, num_heads=2, expansion=2.0, H_cycles=2, L_cycles=2,
                 num_layers=1, mlp_t=False, halt_max_steps=2)


def _tiny(cfg=TINY, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(cfg).double().eval()


def _jacobian_blocks(step, states: dict[str, torch.Tensor]) -> list[list[torch.Tensor]]:
    """Blocks ``J[j][i] = d out[j] / d in[i]`` of the full Jacobian of the flattened map (independent reference)."""
    names = list(states)
    shapes = [states[k].shape for k in names]
    sizes = [s.numel() for s in shapes]

    def flat(v: torch.Tensor) -> torch.Tensor:
        parts = dict(zip(names, (p.view(s) for p, s in zip(v.split(sizes), shapes))))
        out = step(parts)
        return torch.cat([out[k].reshape(-1) for k in names])

    J = torch.autograd.functional.jacobian(flat, torch.cat([states[k].reshape(-1) for k in names]))  # [out, in]
    P = shapes[0][1]
    cell = torch.cat([torch.arange(P).repeat_interleave(s[-1]) for s in shapes])  # cell of each flat index
    return [[J[cell == j][:, cell == i] for i in range(P)] for j in range(P)]


def test_exact_matches_full_jacobian_and_estimate_is_unbiased():
    m = _tiny()
    x = torch.randint(1, V, (1, L), generator=torch.Generator().manual_seed(1))
    one = model_step_map(m, x, unit="cycle")
    s = one.step(one.init)  # a state along the run, not the (position-independent) start
    s = {k: v.detach() for k, v in s.items()}
    blocks = _jacobian_blocks(one.step, s)
    ref = torch.tensor([[float(b.pow(2).sum()) for b in row] for row in blocks], dtype=torch.float64)
    rows = 16
    many = model_step_map(m, x.expand(rows, -1), unit="cycle")
    exact = cycle_influence(many.step, s, range(L), samples=None, rows=rows)
    torch.testing.assert_close(exact, ref, rtol=1e-9, atol=1e-12)
    # Gaussian probes: mean of ||u^T J_ji||^2 with variance 2 ||J_ji J_ji^T||_F^2 per sample
    K = 400
    est = cycle_influence(many.step, s, range(L), samples=K, rows=rows, generator=torch.Generator().manual_seed(0))
    jac_var = torch.tensor([[float(2 * (b @ b.T).pow(2).sum()) for b in row] for row in blocks], dtype=torch.float64)
    z = (est - ref) / (jac_var / K).sqrt()  # variance of one probe's estimate above
    assert z.abs().max() < 5, z.abs().max()
    assert abs(float(z.mean())) < 0.5  # no bias
    assert float(((est - ref).abs() / ref).median()) < 0.15


def _planted_step(j: int, i: int, w: torch.Tensor):
    """Cell ``j`` reads only cell ``i`` (through tanh of both states); every other cell keeps half of itself."""

    def step(s: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        a, b = s["a"], s["b"]
        src = torch.cat([a[:, i], b[:, i]], -1)  # [B, 2D]
        new = torch.tanh(src @ w)  # [B, 2D]
        na, nb = 0.5 * a.clone(), 0.5 * b.clone()
        na[:, j], nb[:, j] = new[:, :a.shape[-1]], new[:, a.shape[-1]:]
        return {"a": na, "b": nb}

    return step


@pytest.mark.parametrize("samples", [None, 4])
def test_planted_dependency_is_found_exactly_there(samples):
    g = torch.Generator().manual_seed(0)
    P, Dh, j, i = 6, 3, 4, 1
    w = torch.randn(2 * Dh, 2 * Dh, generator=g, dtype=torch.float64)
    s = {"a": torch.randn(1, P, Dh, generator=g, dtype=torch.float64),
         "b": torch.randn(1, P, Dh, generator=g, dtype=torch.float64)}
    I = cycle_influence(_planted_step(j, i, w), s, range(P), samples=samples, rows=7, generator=g)
    off = I.clone()
    off.fill_diagonal_(0)
    assert off[j, i] > 0
    off[j, i] = 0
    assert float(off.abs().max()) == 0.0  # no influence anywhere else
    if samples is None:
        src = torch.cat([s["a"][0, i], s["b"][0, i]])
        analytic = ((1 - torch.tanh(src @ w) ** 2)[:, None] * w.T).pow(2).sum()
        torch.testing.assert_close(I[j, i], analytic)
        torch.testing.assert_close(I.diagonal()[[0, 2, 3, 5]], torch.full((4,), 0.25 * 2 * Dh, dtype=torch.float64))
        assert float(I[j, j]) == 0.0


def test_even_chunks_cover_the_rows_with_least_padding():
    assert even_chunk(81, 512) == 81 and even_chunk(10368, 512) == 494 and even_chunk(5, 1) == 1
    assert all(-(-t // even_chunk(t, r)) * even_chunk(t, r) - t < -(-t // r) for t in (7, 81, 1000) for r in (4, 64))


def test_relation_share_baseline_and_planted_peers():
    C = 16  # a 4x4 Sudoku: 7 peers of 15 other cells
    from interp.analyses.attention import sudoku_relations

    peers = sudoku_relations(C)["peers"]
    uniform = np.ones((3, 2, C, C))
    on_peers = np.broadcast_to(peers.astype(float), (3, 2, C, C)) + np.eye(C)
    res = InfluenceResult(np.concatenate([uniform, on_peers]), np.zeros((6, 2, C)), 1, 2, 4)
    share = sudoku_peer_share(res)
    assert list(share.columns) == ["cycle", "segment", "peer_share", "baseline", "ci_low", "ci_high", "n"]
    assert np.allclose(share["baseline"], 7 / 15) and (share["n"] == 6).all()
    assert np.allclose(share["peer_share"], (7 / 15 + 1) / 2)
    one = relation_share(on_peers, peers)
    assert np.allclose(one["share"], 1.0) and np.allclose(one["ci_low"], 1.0)
    # mazes: the path cells of each puzzle are the related ones
    labels = np.full((3, C), 2)
    labels[:, :4] = 5
    path = maze_path_share(InfluenceResult(uniform, np.zeros((3, 2, C)), 1, 2, 4), labels)
    assert np.allclose(path["path_share"], path["baseline"])
    assert np.allclose(path["baseline"], (4 * 3 / 15 + 12 * 4 / 15) / 16)


def test_model_run_shapes_answer_influence_and_bad_input():
    m = _tiny()
    x = torch.randint(1, V, (2, L), generator=torch.Generator().manual_seed(2))
    y = x.clone()
    y[:, :3] = (x[:, :3] % (V - 1)) + 1
    res = influence(m, x, y, n_segments=2, samples=2, rows=16)
    assert res.matrices.shape == (2, 4, L, L) and res.answer.shape == (2, 4, L)
    assert np.isfinite(res.matrices).all() and (res.matrices >= 0).all()
    assert np.isfinite(res.answer).all() and (res.answer[:, -1] > 0).any()
    with pytest.raises(CausalError, match="samples >= 1"):
        influence(m, x, n_segments=1, samples=0)
    tf = build_model(__import__("models").TransformerConfig(vocab_size=V, seq_len=L, hidden_size=D, num_heads=2,
                                                             num_layers=1))
    with pytest.raises(CausalError, match="recurrent puzzle model"):
        influence(tf, x, n_segments=1)


def test_attention_against_influence_table():
    cfg = HRMConfig(vocab_size=5, seq_len=16, hidden_size=8, num_heads=2, expansion=2.0, H_layers=1, L_layers=1,
                    H_cycles=2, L_cycles=1, halt_max_steps=1)
    m = _tiny(cfg)
    x = torch.randint(1, 5, (2, 16), generator=torch.Generator().manual_seed(3))
    res = influence(m, x, n_segments=1, samples=1, rows=16)
    share = sudoku_peer_share(res)
    table = attention_vs_influence(m, x, share, 1)
    assert isinstance(table, pd.DataFrame) and len(table) == 4  # 2 cycles x (1 L-update + 1 H-update)
    assert table["cycle"].tolist() == [0, 0, 1, 1]
    assert table["attention_peer_mass"].between(0, 1).all()
    assert np.allclose(table["peer_share"], share["peer_share"].repeat(2).to_numpy())


def _cli(argv):
    from interp.cli import main

    return main(argv)


@pytest.mark.parametrize("ckpt,puzzles,column", [
    ("zoo/trm-sudoku9", "data/sudoku/generated_moderate.sdm", "peer_share"),
    ("zoo/trm-maze9", "data/maze/maze9.txt", "path_share"),
])
def test_cli_writes_share_table_and_matrices(tmp_path, capsys, ckpt, puzzles, column):
    out = tmp_path / "inf"
    rc = _cli(["influence", "--ckpt", ckpt, "--puzzle-file", puzzles, "--limit", "2", "--segments", "1",
               "--samples", "1", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    share = pd.read_csv(out / "influence_share.csv")
    assert share["cycle"].tolist() == [0, 1] and (share["n"] == 2).all()
    assert share[column].between(0, 1).all() and share["baseline"].between(0, 1).all()
    if column == "peer_share":
        assert np.allclose(share["baseline"], 0.25)
    with np.load(out / "influence.npz") as z:
        assert z["influence"].shape == (2, 81, 81) and z["answer_influence"].shape == (2, 81)
    assert column.split("_")[0] in cap.out or "peers" in cap.out
    assert not (out / "attention_vs_influence.csv").exists()  # trm-*9 mix tokens with mlp_t


@pytest.mark.parametrize("argv,message", [
    (["--ckpt", "zoo/hrm-lm-pydoc", "--puzzle", "1" * 81], "language model"),
    (["--ckpt", "zoo/trm-sudoku9", "--puzzle", "1" + "." * 80, "--samples", "0"], "argument --samples: must be >= 1"),
    (["--ckpt", "zoo/trm-sudoku9", "--puzzle", "1" + "." * 80, "--samples", "2", "--exact"], "exclude each other"),
    (["--ckpt", "zoo/trm-sudoku9", "--puzzle", "1" + "." * 80, "--segments", "0"], "argument --segments: must be >= 1"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, argv, message):
    rc = _cli(["influence", *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1


def test_cli_rejects_a_model_family_without_cycles(tmp_path, capsys):
    from models import TransformerConfig
    from models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    tf = build_model(TransformerConfig(vocab_size=11, seq_len=81, hidden_size=8, num_heads=2, num_layers=1))
    save_checkpoint(tmp_path / "tf", tf, extra={"task": {"name": "sudoku"}})
    rc = _cli(["influence", "--ckpt", str(tmp_path / "tf"), "--puzzle", "1" + "." * 80, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "recurrent puzzle model" in err and err.count("\n") == 1

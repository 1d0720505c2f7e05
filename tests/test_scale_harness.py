"""``interp.guess_scaling.depth_runs`` and ``scale_run``: per-segment records against plain passes, stability, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from interp.guess_scaling.depth_runs import BreadthSpec, collect_depth, run_candidate
from interp.guess_scaling.errors import GuessScalingError
from interp.guess_scaling.recursion import run_pass
from interp.guess_scaling.scale_run import collect_chunked
from helpers.tiny_models import tiny_trm

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_and_x():
    torch.manual_seed(3)
    model = tiny_trm(halt_max_steps=2).eval()
    x = np.random.default_rng(0).integers(1, 11, size=(6, 81))
    return model, x


def test_every_segment_equals_a_plain_pass_of_that_depth(model_and_x):
    model, x = model_and_x
    grids, q, r, _ = run_candidate(model, x, 4)
    for d in range(1, 5):
        ref = run_pass(model, x, n_segments=d)
        assert (grids[:, d - 1] == ref.logits.argmax(-1)).all()
        np.testing.assert_allclose(q[:, d - 1], ref.q_halt, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(r[:, d - 1], ref.residual, rtol=1e-4, atol=1e-6)


def test_stability_without_noise_is_the_next_segment_agreeing(model_and_x):
    model, x = model_and_x
    grids, _, _, stable = run_candidate(model, x, 5, check_depths=[2, 4], stab_noise=0.0)
    assert stable.shape == (6, 2)
    assert (stable[:, 0] == (grids[:, 1] == grids[:, 2]).all(-1)).all()
    assert (stable[:, 1] == (grids[:, 3] == grids[:, 4]).all(-1)).all()


def test_candidate_zero_is_the_plain_model_for_every_strategy(model_and_x):
    model, x = model_and_x
    plain = run_candidate(model, x, 3)[0]
    for s in ("aug", "ptrm", "eqr"):
        rec = collect_depth([model], x, BreadthSpec(s, noise=0.3), 3, 3)
        assert rec.grids.shape == (6, 3, 3, 81)
        assert (rec.grids[:, 0] == plain).all(), s
    eqr = collect_depth([model], x, BreadthSpec("eqr"), 2, 3)
    assert (eqr.residual[:, 1, 0] != eqr.residual[:, 0, 0]).any()  # a random start is another start
    quiet = collect_depth([model], x, BreadthSpec("ptrm", noise=0.0), 3, 3)
    assert (quiet.grids == plain[:, None]).all()  # zero noise: every candidate is the plain run
    with pytest.raises(GuessScalingError, match="checkpoints"):
        collect_depth([model], x, BreadthSpec("bootstrap"), 2, 3)


class _Solver(torch.nn.Module):
    """A perfect 'model': each segment answers the puzzle it is given with its true solution (tokens 2..10)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def init_states(self, batch_size, device=None):
        return {"y": torch.ones(batch_size, 1, 1)}

    def segment(self, states, x, ids=None, seg=0):
        from types import SimpleNamespace

        from tasks.sudoku.solver import solve

        sol = [solve((row.numpy() - 1).clip(0).reshape(9, 9)).solution.reshape(-1) + 1 for row in x]
        logits = torch.nn.functional.one_hot(torch.as_tensor(np.stack(sol)).long(), 11).float()
        return states, SimpleNamespace(logits=logits, q_halt=torch.zeros(len(x)))


def test_aug_answers_come_back_in_the_original_frame():
    from tasks.sudoku.grid import read_puzzle_file
    from tasks.sudoku.solver import solve

    recs = read_puzzle_file(REPO / "data/sudoku/qqwing_easy.sdm", limit=3)
    x = np.stack([r.puzzle.reshape(-1) + 1 for r in recs])
    y = np.stack([solve(r.puzzle).solution.reshape(-1) + 1 for r in recs])
    rec = collect_depth([_Solver()], x, BreadthSpec("aug", preset="random", seed=2), 5, 2)
    assert (rec.grids == y[:, None, None]).all()  # every disguise, mapped back, is the original solution


def test_a_killed_run_resumes_and_gives_the_same_result(tmp_path, model_and_x):
    model, x = model_and_x
    specs = [BreadthSpec("ptrm", noise=0.1, seed=4), BreadthSpec("eqr", seed=4)]
    settings = {"n": 6}
    ref = collect_chunked(tmp_path / "ref", settings, [model], x, "ema", specs, 2, 3, [2], 0.1, chunk=2)

    saved = []

    def killed() -> None:
        saved.append(1)
        if len(saved) == 3:  # settings.json, then two chunks
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        collect_chunked(tmp_path / "run", settings, [model], x, "ema", specs, 2, 3, [2], 0.1, chunk=2, on_saved=killed)
    assert len(list((tmp_path / "run" / "chunks").glob("*.npz"))) == 2
    calls = []
    got = collect_chunked(tmp_path / "run", settings, [model], x, "ema", specs, 2, 3, [2], 0.1, chunk=2,
                          on_saved=lambda: calls.append(1))
    assert len(calls) == 1 + 6 - 2  # settings, then 2 strategies x 3 chunks, 2 already on disk
    for s in ("ptrm", "eqr"):
        for f in ("grids", "q_halt", "residual", "stable"):
            np.testing.assert_array_equal(getattr(got[s][0], f), getattr(ref[s][0], f))
    with pytest.raises(GuessScalingError, match="other settings"):
        collect_chunked(tmp_path / "run", {"n": 7}, [model], x, "ema", specs, 2, 3, [2], 0.1, chunk=2)

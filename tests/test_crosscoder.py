"""Crosscoder over steps: planted persistent / appearing / fading features are recovered and classified."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probes.crosscoder import crosscoder_step_acts, encode_trajectories, step_profiles, train_crosscoder
from probes.step_saes import track_features, train_step_saes

KINDS = ["persistent"] * 3 + ["appearing"] * 3 + ["fading"] * 3
SPAN = {"persistent": (0, 5), "appearing": (3, 5), "fading": (0, 2)}


def planted(M: int = 3000, T: int = 6, D: int = 20, seed: int = 0):
    """Trajectories [M, T, D]: each planted feature writes its own random direction per step, only in its span."""
    rng = np.random.default_rng(seed)
    K = len(KINDS)
    dirs = rng.standard_normal((K, T, D))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    mask = np.zeros((K, T))
    for i, k in enumerate(KINDS):
        a, b = SPAN[k]
        mask[i, a:b + 1] = 1
    mag = rng.uniform(1, 3, (M, K)) * (rng.random((M, K)) < 0.15)
    x = np.einsum("mk,kt,ktd->mtd", mag, mask, dirs) + 0.02 * rng.standard_normal((M, T, D))
    return x.astype(np.float32), dirs, mask


@pytest.fixture(scope="module")
def trained():
    x, dirs, mask = planted()
    return x, dirs, mask, train_crosscoder(x, 24, l1=0.05, steps=1000, seed=0)


def test_crosscoder_recovers_planted_features_and_their_step_profiles(trained):
    x, dirs, mask, res = trained
    cc = res.crosscoder
    assert res.stats["fve"] > 0.95 and res.step_fve.shape == (6,) and (res.step_fve > 0.9).all()
    W = cc.W_dec.detach().numpy().reshape(cc.n_features, -1)
    W = W / np.linalg.norm(W, axis=1, keepdims=True)
    prof = step_profiles(cc.decoder_norms().numpy())
    for i, kind in enumerate(KINDS):
        p = (dirs[i] * mask[i][:, None]).reshape(-1)
        cos = W @ (p / np.linalg.norm(p))
        j = int(cos.argmax())
        assert cos[j] > 0.9, (kind, cos[j])
        row = prof.iloc[j]
        assert row["kind"] == kind and (row["onset"], row["offset"]) == SPAN[kind]


def test_step_activations_are_shared_activation_times_decoder_norm(trained):
    x, _, _, res = trained
    cc = res.crosscoder
    states = np.moveaxis(x[:40].reshape(4, 10, 6, -1), 2, 1)  # [N=4, T=6, L=10, D]
    acts = crosscoder_step_acts(cc, states)
    f = encode_trajectories(cc, x[:40]).reshape(4, 10, -1)
    norms = cc.decoder_norms().numpy()
    np.testing.assert_allclose(acts[1, 2, 3], f[1, 3] * norms[:, 2], rtol=1e-5, atol=1e-6)
    d = cc.decoder_direction(0, 2)
    assert abs(float(d.norm()) - 1) < 1e-5
    with pytest.raises(IndexError):
        cc.decoder_direction(cc.n_features, 0)


def test_step_profiles_kinds_on_hand_made_norms():
    norms = np.array([[1, 1, 1, 1], [0, 0, 1, 2], [2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0]], float)
    prof = step_profiles(norms)
    assert prof["kind"].tolist() == ["persistent", "appearing", "fading", "transient", "transient", "dead"]
    assert prof.loc[1, "onset"] == 2 and prof.loc[2, "offset"] == 1 and prof.loc[1, "peak"] == 3
    assert step_profiles(norms, alive=np.array([1, 1, 1, 1, 1, 0], bool)).loc[0, "kind"] == "persistent"


def test_per_step_saes_and_tracking():
    x, dirs, mask = planted(M=1500)
    s = train_step_saes(x, 16, l1=0.05, steps=300)
    assert len(s.saes) == 6 and s.step_fve.shape == (6,) and s.stats["fve"] > 0.8
    # a planted direction that is the same at every step is tracked; independent random ones are not
    same = [torch.eye(5)[:3] for _ in range(4)]
    assert track_features(same)["tracked_first_to_last"] == 3
    rng = np.random.default_rng(1)
    rand = [rng.standard_normal((3, 50)) for _ in range(4)]
    assert track_features(rand, min_cos=0.7)["tracked_first_to_last"] == 0


def test_topk_crosscoder_keeps_at_most_k_features_per_trajectory():
    x, _, _ = planted(M=500)
    res = train_crosscoder(x, 16, k=3, steps=50)
    f = encode_trajectories(res.crosscoder, x)
    assert (np.count_nonzero(f, axis=1) <= 3).all() and res.stats["l0"] <= 3

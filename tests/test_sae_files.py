"""Dictionary files in the SAELens layout: the documented layout, our round trip, SAELens's loader, mismatches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from probes.crosscoder import train_crosscoder
from probes.sae import train_sae
from probes.sae_files import (
    DictionaryError,
    check_dictionary,
    dictionary_info,
    load_dictionary,
    resolve_hook,
    save_crosscoder,
    save_sae,
)

HOOKS = ["seg0.t0.n0.hook_z", "seg0.t0.hook_y", "seg0.t1.n0.hook_z", "seg0.t1.hook_y"]
INFO = {"hook_names": ["seg0.t0.hook_y", "seg0.t1.hook_y"], "steps": [1, 3], "state": "y", "model_sha256": "ab" * 32,
        "model_name": "tiny"}


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(1500, 12, generator=g) * 2.5 + 0.7


@pytest.mark.parametrize("k", [None, 3])
def test_saved_layout_computes_the_same_features_by_the_documented_formula(tmp_path, data, k):
    sae = train_sae(data, 24, l1=0.05, k=k, steps=150).sae
    save_sae(sae, tmp_path, INFO)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert {"d_in": 12, "d_sae": 24, "apply_b_dec_to_input": True, "normalize_activations": "none",
            "architecture": "standard" if k is None else "topk"}.items() <= cfg.items()
    assert cfg["metadata"]["hook_name"] == "*.hook_y" and cfg["metadata"]["recurse_interp"]["steps"] == [1, 3]
    w = load_file(str(tmp_path / "sae_weights.safetensors"))
    assert {n: list(t.shape) for n, t in w.items()} == {"W_enc": [12, 24], "W_dec": [24, 12], "b_enc": [24], "b_dec": [12]}
    x = data[:200].numpy().astype(np.float64)
    pre = (x - w["b_dec"].numpy()) @ w["W_enc"].numpy() + w["b_enc"].numpy()  # SAELens: relu((x - b_dec) W_enc + b_enc)
    if k is not None:
        keep = np.argsort(-pre, axis=1)[:, :k]
        mask = np.zeros_like(pre, bool)
        np.put_along_axis(mask, keep, True, axis=1)
        pre = np.where(mask, pre, 0)
    acts = np.maximum(pre, 0)
    with torch.no_grad():
        ours = sae.encode(data[:200]).numpy()
        np.testing.assert_allclose(acts, ours, atol=1e-4)
        recon = acts @ w["W_dec"].numpy() + w["b_dec"].numpy()
        np.testing.assert_allclose(recon, sae.decode(torch.from_numpy(ours)).numpy(), atol=1e-3)
        back, cfg2 = load_dictionary(tmp_path)
        np.testing.assert_allclose(back.encode(data[:200]).numpy(), ours, atol=1e-5)
    assert cfg2["metadata"]["recurse_interp"]["model_sha256"] == INFO["model_sha256"]


def test_crosscoder_round_trip(tmp_path):
    x = torch.randn(400, 3, 8)
    cc = train_crosscoder(x, 10, steps=50).crosscoder
    save_crosscoder(cc, tmp_path, INFO)
    back, cfg = load_dictionary(tmp_path)
    assert cfg["architecture"] == "step_crosscoder" and cfg["n_steps"] == 3
    with torch.no_grad():
        torch.testing.assert_close(back.encode(x), cc.encode(x))
        torch.testing.assert_close(back.decode(cc.encode(x)), cc.decode(cc.encode(x)))


def test_sae_written_elsewhere_without_b_dec_on_input_and_pre6_keys(tmp_path):
    g = torch.Generator().manual_seed(1)
    W_enc, W_dec = torch.randn(6, 9, generator=g), torch.randn(9, 6, generator=g)
    b_enc, b_dec = torch.randn(9, generator=g), torch.randn(6, generator=g)
    save_file({"W_enc": W_enc, "W_dec": W_dec, "b_enc": b_enc, "b_dec": b_dec}, str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text(json.dumps({"d_in": 6, "d_sae": 9, "hook_point": "step.3.hook_resid_post",
                                                   "apply_b_dec_to_input": False}))
    sae, cfg = load_dictionary(tmp_path)
    x = torch.randn(50, 6, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(sae.encode(x), torch.relu(x @ W_enc + b_enc), atol=1e-5, rtol=1e-5)
    assert cfg["metadata"]["hook_name"] == "step.3.hook_resid_post"
    assert check_dictionary(cfg, 6, HOOKS) == [3]  # the alias names the 4th update, seg0.t1.hook_y


def test_hook_mapping():
    assert resolve_hook("*.hook_y", HOOKS) == [1, 3]
    assert resolve_hook("seg0.t1.n0.hook_z", HOOKS) == [2]
    assert resolve_hook("step.*.hook_resid_post", HOOKS) == [0, 1, 2, 3]
    assert resolve_hook("blocks.0.hook_resid_post", HOOKS) == []


def test_mismatches_are_one_line_errors(tmp_path, data):
    sae = train_sae(data, 8, steps=5).sae
    save_sae(sae, tmp_path, INFO)
    _, cfg = load_dictionary(tmp_path)
    assert check_dictionary(cfg, 12, HOOKS, INFO["model_sha256"]) == [1, 3]
    for kwargs, msg in [({"d_in": 16}, "width"), ({"step_hooks": ["seg0.h0.hook_z_H"]}, "names none"),
                        ({"model_sha256": "cd" * 32}, "another model")]:
        args = {"d_in": 12, "step_hooks": HOOKS, "model_sha256": INFO["model_sha256"], **kwargs}
        with pytest.raises(DictionaryError, match=msg) as e:
            check_dictionary(cfg, **args)
        assert "\n" not in str(e.value)
    (tmp_path / "cfg.json").write_text(json.dumps({**cfg, "architecture": "jumprelu"}))
    with pytest.raises(DictionaryError, match="not supported"):
        load_dictionary(tmp_path)
    (tmp_path / "cfg.json").write_text(json.dumps({**cfg, "d_sae": 9}))
    with pytest.raises(DictionaryError, match="shape"):
        load_dictionary(tmp_path)
    with pytest.raises(DictionaryError):
        load_dictionary(tmp_path / "absent")
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    w = load_file(str(tmp_path / "sae_weights.safetensors"))
    w["b_enc"][0] = float("nan")
    save_file(w, str(tmp_path / "sae_weights.safetensors"))
    with pytest.raises(DictionaryError, match="NaN"):
        load_dictionary(tmp_path)
    (tmp_path / "cfg.json").write_text("{not json")
    with pytest.raises(DictionaryError, match="JSON"):
        load_dictionary(tmp_path)


def test_dictionary_info_and_decoder_directions(tmp_path, data):
    sae = train_sae(data, 8, steps=5).sae
    save_sae(sae, tmp_path, INFO)
    back, cfg = load_dictionary(tmp_path)
    info = dictionary_info(cfg)
    assert (info["kind"], info["hook_name"], info["d_in"], info["n_features"]) == ("sae", "*.hook_y", 12, 8)
    assert info["model_sha256"] == INFO["model_sha256"] and info["hook_names"] == INFO["hook_names"]
    # the folded decoder row points the same way as the trained one
    torch.testing.assert_close(back.decoder_direction(5), sae.decoder_direction(5, step=1), atol=1e-5, rtol=1e-5)
    with pytest.raises(IndexError):
        sae.decoder_direction(8)


def test_sae_lens_loads_our_files_and_we_load_its_files(tmp_path, data):
    sae_lens = pytest.importorskip("sae_lens")
    ours = train_sae(data, 16, l1=0.05, steps=100).sae
    save_sae(ours, tmp_path / "a", INFO)
    theirs = sae_lens.SAE.load_from_disk(str(tmp_path / "a"))
    assert theirs.cfg.metadata.hook_name == "*.hook_y"
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(data), ours.encode(data), atol=1e-5, rtol=1e-4)
        theirs.save_model(str(tmp_path / "b"))
        back, _ = load_dictionary(tmp_path / "b")
        torch.testing.assert_close(back.encode(data), ours.encode(data), atol=1e-5, rtol=1e-4)

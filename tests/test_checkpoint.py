"""Configs and checkpoints: round trips, clear one-line errors, atomic writes."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

import models.checkpoint as ckpt_mod
from models import (
    ConfigError,
    HRMConfig,
    HRMLMConfig,
    TRMConfig,
    TransformerConfig,
    UniTFConfig,
    build_model,
    config_from_dict,
)
from models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_config, save_checkpoint

V, L, D = 6, 8, 32
COMMON = dict(vocab_size=V, seq_len=L, hidden_size=D, num_heads=2, expansion=2.0)
PUZZLE = dict(num_puzzle_identifiers=4, puzzle_emb_ndim=D)

CONFIGS = {
    "hrm": HRMConfig(**COMMON, **PUZZLE, H_layers=1, L_layers=1, halt_max_steps=2, grad_mode="full_bptt"),
    "trm_mlp": TRMConfig(**COMMON, **PUZZLE, H_cycles=2, L_cycles=2, num_layers=1, mlp_t=True, halt_max_steps=2),
    "trm_attn": TRMConfig(**COMMON, H_cycles=2, L_cycles=2, num_layers=1, mlp_t=False, pos_encodings="learned",
                          halt_max_steps=1, grad_mode="one_step"),
    "unitf": UniTFConfig(**COMMON, **PUZZLE, num_layers=1, depth=2),
    "unitf_causal": UniTFConfig(**COMMON, num_layers=1, depth=2, causal=True),
    "transformer": TransformerConfig(**COMMON, **PUZZLE, num_layers=2, pos_encodings="learned"),
    "transformer_causal": TransformerConfig(**COMMON, num_layers=2, causal=True),
    "hrm_lm": HRMLMConfig(vocab_size=V, seq_len=L, hidden_size=D, num_heads=2, expansion=2.0, slow_period=2,
                          slow_updates=1, tbptt_steps=1, passes=1),
}


def build(name: str):
    """A model whose every tensor is random (zero-initialised tables and heads too)."""
    if name == "hrm_lm":
        pytest.importorskip("models.hrm_lm")
    model = build_model(CONFIGS[name])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def run(model, name: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(123)
    x = torch.randint(0, V, (2, 5 if "causal" in name or name == "hrm_lm" else L), generator=g)
    if getattr(model, "prefix_len", 0):
        return model(x, torch.tensor([1, 3]))
    return model(x)


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


# ----- configs --------------------------------------------------------------------
ALL_CONFIGS = [
    *CONFIGS.values(),
    HRMConfig(),
    TRMConfig(),
    UniTFConfig(),
    TransformerConfig(),
    HRMLMConfig(),
    TRMConfig(**COMMON, rms_norm_eps=1e-6, rope_theta=500.0, puzzle_emb_len=3, puzzle_emb_ndim=16,
              halt_exploration_prob=0.25, attn_backend="sdpa"),
]


@pytest.mark.parametrize("cfg", ALL_CONFIGS, ids=lambda c: c.family)
def test_config_round_trips_through_json(cfg):
    d = cfg.to_dict()
    assert d["family"] == cfg.family
    back = json.loads(json.dumps(d))
    assert type(cfg).from_dict(back) == cfg
    assert config_from_dict(back) == cfg and type(config_from_dict(back)) is type(cfg)
    assert {f.name for f in dataclasses.fields(cfg)} | {"family"} == set(d)


def test_config_rejects_unknown_field_and_wrong_family():
    d = HRMConfig().to_dict()
    with pytest.raises(ConfigError) as e:
        HRMConfig.from_dict({**d, "hiden_size": 3})
    assert "hiden_size" in one_line(e)
    with pytest.raises(ConfigError) as e:
        TRMConfig.from_dict(d)
    assert "'hrm'" in one_line(e) and "'trm'" in one_line(e)
    with pytest.raises(ConfigError) as e:
        config_from_dict({**d, "family": "gpt9"})
    assert "gpt9" in one_line(e)
    with pytest.raises(ConfigError) as e:
        config_from_dict({k: v for k, v in d.items() if k != "family"})
    one_line(e)


@pytest.mark.parametrize(
    "cls, bad, match",
    [
        (HRMConfig, dict(hidden_size=30, num_heads=4), "divisible"),
        (TRMConfig, dict(pos_encodings="alibi"), "pos_encodings"),
        (HRMConfig, dict(grad_mode="last_recursion"), "grad_mode"),
        (TRMConfig, dict(grad_mode="tbptt"), "grad_mode"),
        (HRMLMConfig, dict(tbptt_steps=9), "tbptt_steps"),
        (UniTFConfig, dict(vocab_size=1), "vocab_size"),
    ],
)
def test_invalid_configs_raise_one_line(cls, bad, match):
    with pytest.raises(ConfigError, match=match) as e:
        cls.from_dict({**cls().to_dict(), **bad})
    one_line(e)


# ----- checkpoint round trip ------------------------------------------------------
@pytest.mark.parametrize("name", list(CONFIGS))
def test_checkpoint_round_trip_is_bit_identical(name, tmp_path):
    model = build(name)
    model.eval()
    expected = run(model, name)
    path = save_checkpoint(tmp_path / "ck", model, extra={"task": {"name": "toy"}, "train": {"step": 7}})
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors"]
    loaded, meta = load_checkpoint(path)
    assert type(loaded) is type(model) and loaded.cfg == model.cfg
    assert meta["task"] == {"name": "toy"} and meta["train"] == {"step": 7}
    assert meta["model"]["family"] == model.cfg.family
    own, back = model.state_dict(), loaded.state_dict()
    assert own.keys() == back.keys() and all(torch.equal(own[k], back[k]) for k in own)
    assert torch.equal(run(model, name), expected)  # deterministic, so the next line can fail only on I/O
    assert torch.equal(run(loaded, name), expected)


def test_checkpoint_with_extra_tensor_files_and_overwrite(tmp_path):
    first, second = build("trm_mlp"), build("trm_mlp")
    opt = {"step": torch.tensor(3), "exp_avg.L_level": torch.randn(4, 5)}
    save_checkpoint(tmp_path / "ck", first, tensors={"optimizer": opt})
    got = load_file(str(tmp_path / "ck" / "optimizer.safetensors"))
    assert got.keys() == opt.keys() and all(torch.equal(got[k], opt[k]) for k in opt)
    save_checkpoint(tmp_path / "ck", second)  # replaces the directory as a whole
    loaded, _ = load_checkpoint(tmp_path / "ck")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), second.state_dict().values()))
    assert sorted(os.listdir(tmp_path)) == ["ck"]
    assert not (tmp_path / "ck" / "optimizer.safetensors").exists()
    assert read_checkpoint_config(tmp_path / "ck")["model"] == second.cfg.to_dict()


# ----- broken checkpoints ---------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    model = build("hrm")
    return save_checkpoint(tmp_path / "ck", model), model


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_weights_raise_checkpoint_error(saved, keep):
    path, _ = saved
    f = path / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as e:
        load_checkpoint(path)
    one_line(e)


def test_garbage_weights_raise_checkpoint_error(saved):
    path, _ = saved
    (path / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    one_line(e)


def test_wrong_shape_missing_and_unexpected_keys_are_listed(saved):
    path, model = saved
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    tensors["lm_head.weight"] = torch.zeros(V, D + 1)
    del tensors["H_init"]
    tensors["extra.weight"] = torch.zeros(2)
    save_file(tensors, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = one_line(e)
    assert "lm_head.weight" in msg and "wrong shape" in msg and f"[{V}, {D + 1}]" in msg
    assert "missing H_init" in msg and "unexpected extra.weight" in msg


def test_config_that_does_not_match_weights(saved):
    path, _ = saved
    meta = json.loads((path / "config.json").read_text())
    meta["model"]["hidden_size"] = 2 * D
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="wrong shape") as e:
        load_checkpoint(path)
    assert "H_init [32] != [64]" in one_line(e)


def test_missing_or_bad_config_json(saved):
    path, _ = saved
    cfg_text = (path / "config.json").read_text()
    (path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="no config.json") as e:
        load_checkpoint(path)
    one_line(e)
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON") as e:
        load_checkpoint(path)
    one_line(e)
    (path / "config.json").write_text(json.dumps({"model": {}}))
    with pytest.raises(CheckpointError, match="recurse-interp/1") as e:
        load_checkpoint(path)
    meta = json.loads(cfg_text)
    meta["model"]["H_layerz"] = 1
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="H_layerz") as e:
        load_checkpoint(path)
    one_line(e)


def test_missing_weights_file_path_and_absent_path(saved, tmp_path):
    path, _ = saved
    with pytest.raises(CheckpointError, match="is a file") as e:
        load_checkpoint(path / "model.safetensors")
    one_line(e)
    with pytest.raises(CheckpointError, match="not found") as e:
        load_checkpoint(tmp_path / "nowhere")
    one_line(e)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors") as e:
        load_checkpoint(path)
    one_line(e)


# ----- atomic writes --------------------------------------------------------------
def _failing_save_file(fail_on_call: int):
    calls = {"n": 0}

    def fake(tensors, filename, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= fail_on_call:
            raise OSError("disk full (simulated)")
        return save_file(tensors, filename, *args, **kwargs)

    return fake


@pytest.mark.parametrize("fail_on_call", [1, 2])
def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch, fail_on_call):
    old, new = build("trm_mlp"), build("trm_mlp")
    path = save_checkpoint(tmp_path / "ck", old, extra={"train": {"step": 1}})
    before = {p: p.read_bytes() for p in path.iterdir()}
    monkeypatch.setattr(ckpt_mod, "save_file", _failing_save_file(fail_on_call))
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, new, extra={"train": {"step": 2}}, tensors={"optimizer": {"m": torch.ones(2)}})
    assert {p: p.read_bytes() for p in path.iterdir()} == before
    assert sorted(os.listdir(tmp_path)) == ["ck"]  # no temporary directory left behind
    loaded, meta = load_checkpoint(path)
    assert meta["train"] == {"step": 1}
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), old.state_dict().values()))


def test_crash_on_first_save_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt_mod, "save_file", _failing_save_file(1))
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "ck", build("unitf"))
    assert os.listdir(tmp_path) == []


def test_unserialisable_metadata_fails_before_replacing(tmp_path):
    model = build("unitf")
    path = save_checkpoint(tmp_path / "ck", model, extra={"train": {"step": 1}})
    with pytest.raises(TypeError):
        save_checkpoint(path, model, extra={"train": {"step": torch.tensor(2)}})
    assert read_checkpoint_config(path)["train"] == {"step": 1}
    assert sorted(os.listdir(tmp_path)) == ["ck"]

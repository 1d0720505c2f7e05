"""Every public HRM/TRM-family checkpoint format: parity with the reference code, detection, refusal, export.

The fixtures under ``tests/fixtures/checkpoint_formats/`` were written by
``scripts/make_format_fixtures.py``, which ran each reference repository's own model code
(sapientinc/HRM, TinyRecursiveModels, locuslab/EqR, UbiquantAI/URM) at tiny size, saved the
weights as that repository's training script does, and recorded its forward at evaluation
(``reference_outputs.safetensors``: logits and Q-heads of every ACT step, fresh carry). The
Lightning ``model.ckpt`` wraps the TRM reference weights in Lightning's documented layout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models.checkpoint import CheckpointError, load_checkpoint
from models.formats import read_checkpoint_file
from models.hub import export_checkpoint
from models.hub import main as hub_main
from models.load import load_any
from models.official import load_official

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoint_formats"

# fixture path -> (format, repository of the architecture, wrapper prefix, weights used)
FORMATS = {
    "hrm_step": ("reference", "sapientinc/HRM", "_orig_mod.model.inner.", "only"),
    "trm_step": ("reference", "SamsungSAILMontreal/TinyRecursiveModels", "_orig_mod.model.inner.", "only"),
    "arc_prize_verification/arc_v1_public": ("reference", "SamsungSAILMontreal/TinyRecursiveModels", "_orig_mod.model.inner.", "only"),
    "eqr_trm/eqr.pth": ("eqr", "locuslab/EqR", "_orig_mod.model.inner.", "ema"),
    "urm_trm": ("urm", "UbiquantAI/URM", "_orig_mod.model.inner.", "only"),
    "kaggle_lightning/model.ckpt": ("lightning", "SamsungSAILMontreal/TinyRecursiveModels", "model.model.inner.", "only"),
}


def reference(fixture: str) -> dict[str, torch.Tensor]:
    p = FIXTURES / fixture
    return load_file(str((p if p.is_dir() else p.parent) / "reference_outputs.safetensors"))


def max_abs_diff(model, ref: dict[str, torch.Tensor], prefix: str = "") -> float:
    """Run our model over every ACT step the reference recorded; the largest |ours - reference| of logits and Q-heads."""
    inputs, pids = ref["inputs"], ref["puzzle_identifiers"]
    steps = sum(1 for k in ref if k.startswith(prefix + "step") and k.endswith(".logits"))
    assert steps >= 2
    states = model.init_states(inputs.shape[0])
    worst = 0.0
    with torch.no_grad():
        for s in range(steps):
            states, o = model.segment(states, inputs, pids, seg=s)
            pairs = [(o.logits, ref[f"{prefix}step{s}.logits"]), (o.q_halt, ref[f"{prefix}step{s}.q_halt"])]
            if f"{prefix}step{s}.q_continue" in ref:
                pairs.append((o.q_continue, ref[f"{prefix}step{s}.q_continue"]))
            for ours, theirs in pairs:
                assert ours.shape == theirs.shape
                worst = max(worst, (ours - theirs).abs().max().item())
    return worst


# ----- parity with the reference code, per format ------------------------------------------------
@pytest.mark.parametrize("fixture", sorted(FORMATS))
def test_each_format_reproduces_the_reference_outputs(fixture):
    fmt, repo, prefix, weights = FORMATS[fixture]
    model, meta = load_any(FIXTURES / fixture, seq_len=16)
    src = meta["source"]
    assert src["checkpoint"]["format"] == fmt and src["repository"] == repo
    assert src["checkpoint"]["wrapper_prefix"] == prefix and src["checkpoint"]["compiled"] == prefix.startswith("_orig_mod")
    assert src["checkpoint"]["weights"] == weights
    diff = max_abs_diff(model, reference(fixture))
    print(f"{fixture}: max |ours - reference| = {diff:.3g}")
    assert diff <= 1e-5  # 0.0 when measured on the machine that wrote the fixtures (docs/official-checkpoints.md)


def test_formats_read_where_their_code_keeps_config_and_step():
    _, meta = load_official(FIXTURES / "eqr_trm" / "eqr.pth", seq_len=16)
    assert meta["source"]["config_yaml"].endswith("(stored config)") and meta["step"] == 1234
    placeholders = meta["source"]["checkpoint"]["placeholders"]  # EqR pickles its carry and numpy's RNG state
    assert {"models.trm.ModelCarry", "models.trm.LatentCarry", "numpy.ndarray"} <= set(placeholders)
    assert all(n.startswith(("numpy.", "models.trm.")) for n in placeholders)
    _, meta = load_official(FIXTURES / "urm_trm", seq_len=16)
    assert meta["source"]["config_yaml"].endswith("config.yaml") and meta["step"] == 900
    _, meta = load_official(FIXTURES / "kaggle_lightning" / "model.ckpt", seq_len=16)
    assert meta["source"]["config_yaml"].endswith("(stored config)") and meta["step"] == 2400
    _, meta = load_official(FIXTURES / "arc_prize_verification" / "arc_v1_public", seq_len=16)
    assert meta["step"] == 518071 and meta["model"]["num_puzzle_identifiers"] == 9 and meta["model"]["puzzle_emb_len"] == 2


# ----- EMA and raw weights ---------------------------------------------------------------------------
def test_eqr_ema_is_the_default_and_raw_can_be_picked():
    ref = reference("eqr_trm/eqr.pth")
    raw_model, raw_meta = load_official(FIXTURES / "eqr_trm" / "eqr.pth", seq_len=16, weights="raw")
    ema_model, _ = load_official(FIXTURES / "eqr_trm" / "eqr.pth", seq_len=16, weights="ema")
    assert raw_meta["source"]["checkpoint"]["weights"] == "raw"
    assert raw_meta["source"]["checkpoint"]["available_weights"] == ["ema", "raw"]
    assert max_abs_diff(raw_model, ref, prefix="raw.") <= 1e-5
    assert max_abs_diff(ema_model, ref) <= 1e-5
    assert max_abs_diff(raw_model, ref) > 1e-2  # the two sets really differ: the choice matters


def test_ema_pair_and_ema_prefix_inside_one_state_dict(tmp_path):
    sd = torch.load(FIXTURES / "trm_step" / "step_2400", weights_only=True)
    shadow = {k: v + 1.0 for k, v in sd.items() if k.endswith(".weight")}  # a distinguishable EMA copy
    torch.save({"model": sd, "ema": shadow, "epoch": 3}, tmp_path / "pair.pt")
    torch.save({**sd, **{"ema_model." + k: v for k, v in shadow.items()}}, tmp_path / "inline.pt")
    for name in ("pair.pt", "inline.pt"):
        f = read_checkpoint_file(tmp_path / name)
        assert f.weights == "ema" and f.available == ("ema", "raw") and f.ema_keys == len(shadow)
        key = "L_level.layers.0.mlp.down_proj.weight"
        torch.testing.assert_close(f.state[key], sd["_orig_mod.model.inner." + key] + 1.0, rtol=0, atol=0)
        torch.testing.assert_close(f.state["H_init"], sd["_orig_mod.model.inner.H_init"], rtol=0, atol=0)  # buffers stay raw
        raw = read_checkpoint_file(tmp_path / name, weights="raw")
        torch.testing.assert_close(raw.state[key], sd["_orig_mod.model.inner." + key], rtol=0, atol=0)


@pytest.mark.parametrize("name,step", [("step_12", 12), ("step_900.pt", 900), ("step_77_ab12cd.pth", 77), ("eqr.pth", None)])
def test_step_from_file_names_without_a_stored_step(tmp_path, name, step):
    sd = torch.load(FIXTURES / "trm_step" / "step_2400", weights_only=True)
    torch.save({"model": sd} if "." in name else sd, tmp_path / name)
    assert read_checkpoint_file(tmp_path / name).step == step


@pytest.mark.parametrize("prefix,compiled", [
    ("model.inner.", False),  # saved without torch.compile
    ("", False),  # a bare state dict
    ("module._orig_mod.model.inner.", True),  # DDP around a compiled model
    ("model._orig_mod.inner.", True),  # only the inner model compiled (EqR re-inserts such segments)
])
def test_wrapper_prefixes_are_detected_and_removed(tmp_path, prefix, compiled):
    sd = torch.load(FIXTURES / "trm_step" / "step_2400", weights_only=True)
    run = tmp_path / "run"
    run.mkdir()
    torch.save({prefix + k.removeprefix("_orig_mod.model.inner."): v for k, v in sd.items()}, run / "step_7")
    shutil.copy(FIXTURES / "trm_step" / "all_config.yaml", run)
    model, meta = load_official(run, seq_len=16)
    assert meta["source"]["checkpoint"]["compiled"] is compiled and meta["source"]["checkpoint"]["wrapper_prefix"] == prefix
    assert max_abs_diff(model, reference("trm_step")) <= 1e-5


# ----- refusals: one line, nothing written ----------------------------------------------------------
def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("fixture,missing", [
    ("eqr_eqr/eqr.pth", "damped noisy update"),
    ("urm_urm", "ConvSwiGLU"),
])
def test_unmappable_architectures_name_what_is_missing(fixture, missing):
    with pytest.raises(CheckpointError, match=missing) as e:
        load_any(FIXTURES / fixture, seq_len=16)
    assert "not supported" in one_line(e)


def test_mixed_formats_are_refused(tmp_path):
    sd = torch.load(FIXTURES / "trm_step" / "step_2400", weights_only=True)
    cases = {
        "two_dicts.pt": {"state_dict": sd, "model_state_dict": sd},
        "two_prefixes.pt": {**{k: v for k, v in list(sd.items())[:3]}, **{k.removeprefix("_orig_mod."): v for k, v in list(sd.items())[3:]}},
        "ema_twice.pt": {"model": {**sd, **{"ema_model." + k: v for k, v in sd.items()}}, "ema": sd},
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(CheckpointError, match="mixes checkpoint formats") as e:
            read_checkpoint_file(tmp_path / name)
        one_line(e)


def test_unknown_containers_and_missing_config_are_one_line(tmp_path):
    torch.save({"step": 3, "optimizer": {"lr": 0.1}}, tmp_path / "opt.pt")
    with pytest.raises(CheckpointError, match="does not hold a state dict") as e:
        read_checkpoint_file(tmp_path / "opt.pt")
    one_line(e)
    sd = torch.load(FIXTURES / "trm_step" / "step_2400", weights_only=True)
    torch.save({"model_state_dict": sd, "step": 5}, tmp_path / "step_5.pt")  # URM file without its config.yaml
    with pytest.raises(CheckpointError, match="holds no config") as e:
        load_official(tmp_path / "step_5.pt", seq_len=16)
    one_line(e)
    with pytest.raises(CheckpointError, match="holds one set of weights") as e:
        read_checkpoint_file(FIXTURES / "trm_step" / "step_2400", weights="ema")
    one_line(e)


class ModelCarry:
    """Named like the reference carry but from another module: never read as a placeholder."""


def test_foreign_objects_other_than_rng_and_carry_stay_refused(tmp_path):
    sd = torch.load(FIXTURES / "trm_step" / "step_2400", weights_only=True)
    torch.save({"model": sd, "carry": ModelCarry()}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="refusing to unpickle") as e:
        read_checkpoint_file(tmp_path / "x.pth")
    one_line(e)


# ----- export: any format -> safetensors + config.json, identical logits ------------------------------
@pytest.mark.parametrize("fixture", sorted(FORMATS))
def test_export_round_trip_gives_identical_logits(tmp_path, fixture):
    dst = tmp_path / "out"
    assert hub_main(["export", str(FIXTURES / fixture), str(dst), "--seq-len", "16"]) == 0
    assert sorted(p.name for p in dst.iterdir()) == ["README.md", "config.json", "model.safetensors", "provenance.json"]
    owned = json.loads((dst / "provenance.json").read_text())["files"]  # the manifest owns exactly what export wrote
    assert sorted(owned) == ["README.md", "config.json", "model.safetensors"]
    cfg = json.loads((dst / "config.json").read_text())
    assert cfg["source"]["checkpoint"]["format"] == FORMATS[fixture][0]
    exported, _ = load_checkpoint(dst)
    original, _ = load_any(FIXTURES / fixture, seq_len=16)
    ref = reference(fixture)
    with torch.no_grad():
        a = exported(ref["inputs"], ref["puzzle_identifiers"], n_segments=3)
        b = original(ref["inputs"], ref["puzzle_identifiers"], n_segments=3)
    assert torch.equal(a, b)


def test_export_refusals_write_nothing(tmp_path, capsys):
    sd = torch.load(FIXTURES / "trm_step" / "step_2400", weights_only=True)
    torch.save({"state_dict": sd, "model_state_dict": sd}, tmp_path / "mixed.pt")
    for src in (tmp_path / "mixed.pt", FIXTURES / "eqr_eqr" / "eqr.pth"):
        dst = tmp_path / "out"
        assert hub_main(["export", str(src), str(dst), "--seq-len", "16"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
        assert not dst.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())
    assert hub_main(["export", str(FIXTURES / "trm_step"), str(tmp_path / "o2"), "--weights", "both"]) == 2
    assert "--weights" in capsys.readouterr().err


def test_export_python_api_with_raw_weights(tmp_path):
    out = export_checkpoint(FIXTURES / "eqr_trm" / "eqr.pth", tmp_path / "raw", seq_len=16, weights="raw")
    model, meta = load_checkpoint(out)
    assert meta["source"]["checkpoint"]["weights"] == "raw"
    assert max_abs_diff(model, reference("eqr_trm/eqr.pth"), prefix="raw.") <= 1e-5


def test_urm_run_folder_on_the_hub(tmp_path, monkeypatch):
    from hub_cache import add_to_hub_cache, folder_files

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the test never reaches the network
    (home / "hub").mkdir(parents=True)
    files = {k: v for k, v in folder_files(FIXTURES / "urm_trm", "sudoku/").items() if "reference" not in k}
    add_to_hub_cache(home / "hub", "someone/urm-toy", files)
    model, meta = load_any("hf:someone/urm-toy:sudoku", seq_len=16)
    assert meta["hub"]["layout"] == "official" and meta["source"]["checkpoint"]["format"] == "urm"
    assert max_abs_diff(model, reference("urm_trm")) <= 1e-5
    out = export_checkpoint("hf:someone/urm-toy:sudoku", tmp_path / "exported", seq_len=16)  # export straight from the Hub cache
    exported, _ = load_checkpoint(out)
    assert max_abs_diff(exported, reference("urm_trm")) <= 1e-5

"""Untrusted checkpoints: code-executing pickles are refused, broken files fail with one line, nothing is written.

Every loading entry point gets the same payload (a pickle whose ``__reduce__``
runs ``os.system("touch MARKER")``): ``load_any``, ``load_official``,
``load_checkpoint``, the ``models.official`` and ``interp trace`` command lines
and ``recurse-train train --resume``. The ``marker`` fixture fails the test if the file ever
appears.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import torch
from robust_helpers import PUZZLE, PYTHON, TRM, one_error_line, subprocess_env, tree_digest, write_evil_pickles, write_shift_task

from models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_config
from models.load import load_any
from models.official import load_official
from models.official import main as official_main

TRM_YAML = (
    "arch:\n  name: recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1\n"
    "  hidden_size: 32\n  num_heads: 2\n  H_cycles: 1\n  L_cycles: 1\n  L_layers: 1\n  puzzle_emb_len: 0\n  mlp_t: false\n"
)


def _single_line(msg: str) -> str:
    assert "\n" not in msg.strip(), f"error message spans several lines:\n{msg}"
    assert len(msg) < 1000, f"error message is {len(msg)} characters long"
    return msg


# ----------------------------------------------------------------------------- code-executing pickles
def test_evil_pickle_refused_by_python_loaders(tmp_path, marker):
    files = write_evil_pickles(tmp_path / "run", marker)
    (tmp_path / "run" / "all_config.yaml").write_text(TRM_YAML)
    targets = [files["torch_save"], files["pickle"], tmp_path / "run"]  # files and the run directory
    for target in targets:
        for loader in (load_any, load_official):
            with pytest.raises(CheckpointError) as exc:
                loader(target, seq_len=81)
            msg = _single_line(str(exc.value))
            assert "refusing to unpickle" in msg
            assert "weights_only` set to `False`" not in msg  # torch's advice to disable the guard is dropped
    # a pickle dressed up as our checkpoint's weights file
    ours = tmp_path / "ours"
    ours.mkdir()
    shutil.copy(files["torch_save"], ours / "model.safetensors")
    (ours / "config.json").write_text(json.dumps({"format": "recurse-interp/1", "model": {
        "family": "trm", "vocab_size": 11, "seq_len": 81, "hidden_size": 32, "num_heads": 2, "num_layers": 1}}))
    for loader in (load_any, load_checkpoint):
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            loader(ours)
    assert not marker.exists()


def test_evil_pickle_refused_by_official_cli(tmp_path, marker, capsys):
    files = write_evil_pickles(tmp_path / "run", marker)
    (tmp_path / "run" / "all_config.yaml").write_text(TRM_YAML)
    out = tmp_path / "converted"
    assert official_main(["convert", str(files["torch_save"]), str(out), "--seq-len", "81"]) == 2
    assert "refusing to unpickle" in one_error_line(capsys.readouterr().err)
    assert official_main(["info", str(tmp_path / "run"), "--seq-len", "81"]) == 2
    one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_evil_pickle_refused_by_interp_cli(tmp_path, marker, tiny_ckpts, capsys):
    from interp.cli import main

    files = write_evil_pickles(tmp_path / "evil", marker)
    (tmp_path / "evil" / "all_config.yaml").write_text(TRM_YAML)  # so the official loader reaches torch.load
    shutil.copytree(tiny_ckpts / "trm", tmp_path / "ck")
    shutil.copy(files["torch_save"], tmp_path / "ck" / "model.safetensors")
    before = tree_digest(tmp_path)
    expect = {files["torch_save"]: "refusing to unpickle", files["pickle"]: "refusing to unpickle",
              tmp_path / "evil": "refusing to unpickle", tmp_path / "ck": "corrupt or truncated"}
    for ckpt, pattern in expect.items():
        out = tmp_path / "trace"
        for cmd in (["trace", "--out", str(out), "--color", "never"], ["ablate"]):
            assert main([*cmd, "--ckpt", str(ckpt), "--puzzle", PUZZLE]) == 2
            assert pattern in one_error_line(capsys.readouterr().err)
        assert not out.exists()
    assert tree_digest(tmp_path) == before


@pytest.mark.slow
def test_evil_pickle_refused_by_interp_cli_subprocess(tmp_path, marker):
    files = write_evil_pickles(tmp_path / "evil", marker)
    (tmp_path / "evil" / "all_config.yaml").write_text(TRM_YAML)  # torch.load runs: no warning may leak to stderr
    r = subprocess.run([PYTHON, "-m", "interp", "trace", "--ckpt", str(files["torch_save"]), "--puzzle", PUZZLE,
                        "--out", str(tmp_path / "trace")], capture_output=True, text=True, cwd=tmp_path,
                       env=subprocess_env(), timeout=120)
    assert r.returncode == 2
    assert "refusing to unpickle" in one_error_line(r.stderr)
    assert r.stdout == ""
    assert not (tmp_path / "trace").exists() and not (tmp_path / "traces").exists()


def test_evil_pickle_in_training_checkpoint_refused_on_resume(tmp_path, marker, capsys):
    """``recurse-train train --resume`` reads only safetensors/JSON: pickles planted in ``last/`` fail as corrupt files."""
    from training.cli import main
    from training.config import TrainConfig
    from training.trainer import Trainer

    data = write_shift_task(tmp_path / "data")
    cfg = TrainConfig.from_dict(dict(model=TRM, task=dict(name="sudoku", data=str(data)), batch_size=4, steps=2,
                                     ema_decay=0.5, log_interval=1))
    out = tmp_path / "run"
    Trainer(cfg, out, progress=False).train()
    files = write_evil_pickles(tmp_path / "evil", marker)
    evil_ck = tmp_path / "evil_eval"
    shutil.copytree(out / "last", evil_ck)
    shutil.copy(files["torch_save"], evil_ck / "model.safetensors")
    assert main(["eval", "--ckpt", str(evil_ck), "--n", "4"]) == 2
    assert "corrupt or truncated" in one_error_line(capsys.readouterr().err)
    for name in ("optimizer", "rng", "live", "carry", "model"):
        shutil.copytree(out, tmp_path / name)
        shutil.copy(files["torch_save"], tmp_path / name / "last" / f"{name}.safetensors")
        before = tree_digest(tmp_path / name)
        assert main(["train", "--out", str(tmp_path / name), "--resume", "--no-progress", "--set", "steps=3"]) == 2
        err = one_error_line(capsys.readouterr().err)
        assert f"{name}.safetensors" in err and "corrupt" in err
        assert tree_digest(tmp_path / name) == before


# ----------------------------------------------------------------------------- broken checkpoints
def _broken(root: Path, good: Path, name: str) -> Path:
    d = root / name
    shutil.copytree(good, d)
    return d


def test_broken_checkpoints_fail_with_one_line(tmp_path, tiny_ckpts):
    good = tiny_ckpts / "trm"
    meta = json.loads((good / "config.json").read_text())
    weights = (good / "model.safetensors").read_bytes()
    cases: dict[str, tuple[str, object]] = {}

    def case(name: str, pattern: str, make) -> None:
        d = _broken(tmp_path, good, name)
        make(d)
        cases[name] = (pattern, d)

    for cut in (0, 7, 100, len(weights) // 2, len(weights) - 1):
        case(f"truncated_{cut}", "corrupt or truncated", lambda d, c=cut: (d / "model.safetensors").write_bytes(weights[:c]))
    case("header_len_huge", "corrupt or truncated",
         lambda d: (d / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + weights[8:]))
    case("junk_weights", "corrupt or truncated", lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 4096))
    case("no_weights", "has no model.safetensors", lambda d: (d / "model.safetensors").unlink())
    case("no_config", "has no config.json|expected a directory with config.json", lambda d: (d / "config.json").unlink())
    case("config_garbage", "not valid JSON", lambda d: (d / "config.json").write_bytes(b"\x00\xff{garbage"))
    case("config_list", "is not a recurse-interp/1 config", lambda d: (d / "config.json").write_text("[1, 2]"))
    case("config_model_str", "is not a recurse-interp/1 config",
         lambda d: (d / "config.json").write_text(json.dumps({**meta, "model": "trm"})))
    case("config_other_format", "is not a recurse-interp/1 config",
         lambda d: (d / "config.json").write_text(json.dumps({**meta, "format": "recurse-interp/99"})))
    from safetensors.torch import load_file, save_file

    def poison(d: Path, value: float) -> None:
        tensors = load_file(str(d / "model.safetensors"))
        name = sorted(k for k, v in tensors.items() if v.is_floating_point())[0]
        tensors[name].view(-1)[3] = value
        save_file(tensors, str(d / "model.safetensors"))

    case("nan_weight", "NaN/inf values in", lambda d: poison(d, float("nan")))
    case("inf_weight", "NaN/inf values in", lambda d: poison(d, float("-inf")))
    bad_models = {
        "family_unknown": ({"family": "gpt5"}, "unknown model family"),
        "family_hrm": ({"family": "hrm", "H_layers": 1, "L_layers": 1, "grad_mode": "one_step",
                        "num_layers": None, "mlp_t": None}, "bad model config|does not fit"),
        "heads_zero": ({"num_heads": 0}, "bad model config"),
        "hidden_negative": ({"hidden_size": -32}, "bad model config"),
        "hidden_string": ({"hidden_size": "big"}, "bad model config"),
        "hidden_huge": ({"hidden_size": 1 << 20, "num_heads": 1}, "bad model config|does not fit the model"),  # would need TBs
        "seq_len_huge": ({"seq_len": 10**9}, "bad model config|does not fit the model"),
        "unknown_field": ({"flux_capacitor": 1}, "unknown trm config field"),
        "wrong_shapes": ({"hidden_size": 64}, "does not fit the model: wrong shape"),
        "wrong_layers": ({"num_layers": 2}, "does not fit the model: missing"),
    }
    for name, (change, pattern) in bad_models.items():
        model = {k: v for k, v in {**meta["model"], **change}.items() if v is not None}
        case(name, pattern, lambda d, m=model: (d / "config.json").write_text(json.dumps({**meta, "model": m})))

    for name, (pattern, d) in cases.items():
        before = tree_digest(d)
        for loader in (load_checkpoint, load_any):
            with pytest.raises(CheckpointError, match=pattern) as exc:
                loader(d)
            _single_line(str(exc.value))
        assert tree_digest(d) == before, f"{name}: loading changed the directory"


def test_broken_checkpoint_cli_writes_no_trace(tmp_path, tiny_ckpts, capsys):
    from interp.cli import main

    good = tiny_ckpts / "trm"
    d = _broken(tmp_path, good, "ck")
    (d / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes()[:500])
    out = tmp_path / "trace"
    assert main(["trace", "--ckpt", str(d), "--puzzle", PUZZLE, "--out", str(out)]) == 2
    assert "corrupt or truncated" in one_error_line(capsys.readouterr().err)
    assert not out.exists()
    # wrong model family for the task: an HRM-LM checkpoint cannot trace a Sudoku
    from models import HRMLMConfig, build_model
    from models.checkpoint import save_checkpoint

    lm = save_checkpoint(tmp_path / "lm", build_model(HRMLMConfig(hidden_size=32, num_heads=2, seq_len=16)))
    assert main(["trace", "--ckpt", str(lm), "--puzzle", PUZZLE, "--out", str(out)]) == 2
    assert "language model" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_official_wrong_family_and_shapes(tmp_path):
    """An official file whose tensors do not fit the YAML's architecture fails before loading anything."""
    from models import TRMConfig, build_model

    m = build_model(TRMConfig(vocab_size=11, seq_len=81, hidden_size=32, num_heads=2, num_layers=1, H_cycles=1,
                              L_cycles=1, mlp_t=False))
    run = tmp_path / "run"
    run.mkdir()
    torch.save({f"_orig_mod.model.inner.{k}": v for k, v in m.state_dict().items()}, run / "step_5")
    (run / "all_config.yaml").write_text(TRM_YAML)
    model, meta = load_official(run, seq_len=81)  # the good case loads
    assert meta["step"] == 5
    cases = {
        "hidden_size: 32": ("hidden_size: 64", "does not fit the model"),
        "L_layers: 1": ("L_layers: 3", "does not fit the model: missing"),
        "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1": ("hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1",
                                                                       "does not fit the model"),
        "name: ": ("name: [", "not readable YAML"),
    }
    for old, (new, pattern) in cases.items():
        (run / "all_config.yaml").write_text(TRM_YAML.replace(old, new))
        with pytest.raises(CheckpointError, match=pattern) as exc:
            load_official(run, seq_len=81)
        _single_line(str(exc.value))
    (run / "all_config.yaml").write_text(TRM_YAML.replace("hidden_size: 32", "hidden_size: 1048576"))
    with pytest.raises(CheckpointError, match="does not fit the model|cannot build"):
        load_official(run, seq_len=81)  # checked on the meta device: no terabyte allocation


# ----------------------------------------------------------------------------- the crash window of a replace
def test_replace_crash_window_recovers(tmp_path, tiny_ckpts, monkeypatch):
    """A crash at any point of ``save_checkpoint``'s directory swap leaves a loadable checkpoint."""
    import os

    import models.checkpoint as ck

    model, _ = load_checkpoint(tiny_ckpts / "trm")
    real_replace, real_rmtree = os.replace, shutil.rmtree

    class Crash(BaseException):
        pass

    for point in range(4):  # 0: replace final->old, 1: replace tmp->final, 2: rmtree(old), 3: after everything
        d = tmp_path / f"p{point}"
        ck.save_checkpoint(d / "ckpt", model, extra={"version": 1})
        calls = {"n": 0}

        def counting(fn):
            def wrapper(*a, **k):
                if calls["n"] == point:
                    raise Crash()
                calls["n"] += 1
                return fn(*a, **k)
            return wrapper

        monkeypatch.setattr(ck.os, "replace", counting(real_replace))
        monkeypatch.setattr(ck.shutil, "rmtree", counting(real_rmtree))
        try:
            ck.save_checkpoint(d / "ckpt", model, extra={"version": 2})
        except Crash:
            pass
        monkeypatch.setattr(ck.os, "replace", real_replace)
        monkeypatch.setattr(ck.shutil, "rmtree", real_rmtree)
        expect = 1 if point < 2 else 2
        # readers see a complete checkpoint (the old or the new one) without changing anything
        before = tree_digest(d)
        _, meta = load_checkpoint(d / "ckpt")
        assert meta["version"] == expect
        assert load_any(d / "ckpt")[1]["version"] == expect
        assert read_checkpoint_config(d / "ckpt")["version"] == expect
        assert tree_digest(d) == before
        # the writer recovers the directory, and the next save cleans up what the crash left
        ck.recover_checkpoint_dirs(d)
        assert (d / "ckpt").is_dir() and json.loads((d / "ckpt" / "config.json").read_text())["version"] == expect
        ck.save_checkpoint(d / "ckpt", model, extra={"version": 3})
        assert sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) == ["ckpt"]
        assert load_checkpoint(d / "ckpt")[1]["version"] == 3

"""Hostile configs and files through the loaders: one reader for untrusted JSON/YAML, bounded third-party configs,
Hub cache reads of regular files only, and the HRM-Text command line (issue 26, mechanisms 3, 4, 5, 7)."""

from __future__ import annotations

import json
import os
import pickle
import time

import pytest

from common.cli_format import UsageError
from common.untrusted import parse_json, parse_yaml
from models.checkpoint import CheckpointError
from models.config import ConfigError, max_memory_bytes

transformers = pytest.importorskip("transformers")

from interp.cli import main as interp_main  # noqa: E402
from models.hub import HF_BOUNDS, check_hrm_text_config, resolve_hub  # noqa: E402
from models.load import load_any  # noqa: E402
from tests.hub_cache import add_to_hub_cache, folder_files  # noqa: E402

GOOD = {"model_type": "hrm_text", "vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "head_dim": 16, "H_cycles": 2, "L_cycles": 3, "max_position_embeddings": 64,
        "num_layers_per_stack": 1}


@pytest.fixture(scope="module")
def hrm_text_folder(tmp_path_factory):
    from transformers import HrmTextConfig, HrmTextForCausalLM

    folder = tmp_path_factory.mktemp("hrmtext") / "m"
    cfg = {k: v for k, v in GOOD.items() if k != "model_type"}
    HrmTextForCausalLM(HrmTextConfig(**cfg)).save_pretrained(folder)
    return folder


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err[-400:]
    return err


# ----------------------------------------------------------------------------- 3. one reader for JSON / YAML
def test_parse_json_refuses_depth_size_and_garbage_in_one_line():
    assert parse_json('{"a": [1, 2]}') == {"a": [1, 2]}
    for text, why in (("[" * 100_000 + "]" * 100_000, "nested too deeply"), ('{"a":' * 70 + "1" + "}" * 70, "nested"),
                      ("x" * 100, "not valid JSON"), ("1" * 2000, "larger than")):
        with pytest.raises(ValueError, match=why) as e:
            parse_json(text, where="cfg", max_bytes=1000 if why == "larger than" else 1 << 24)
        assert "\n" not in str(e.value)


def test_parse_yaml_refuses_deep_and_alias_bombs():
    assert parse_yaml("a: [1, 2]") == {"a": [1, 2]}
    with pytest.raises(ValueError, match="too large or too deep"):
        parse_yaml("[" * 200 + "]" * 200)
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 8))
    with pytest.raises(ValueError, match="too large or too deep"):
        parse_yaml(bomb)


def test_training_set_with_deep_yaml_is_one_line(tmp_path, capsys):
    from training.cli import main

    assert main(["train", "--config", "zoo/configs/trm_sudoku9.yaml", "--out", str(tmp_path / "run"),
                 "--set", "model.hidden_size=" + "[" * 5000 + "]" * 5000]) == 2
    assert "too large or too deep" in _one_line(capsys) and not (tmp_path / "run").exists()


def test_official_set_with_deep_json_is_one_line(capsys):
    from models.official import main

    assert main(["info", "tests/fixtures/checkpoint_formats/hrm_step", "--set", "hidden_size=" + "[" * 5000]) == 2
    _one_line(capsys)


def test_deep_config_json_in_a_model_folder(tmp_path, capsys):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply|not valid JSON"):
        load_any(d)
    assert interp_main(["trace", "--ckpt", str(d), "--tokens", "1 2 3", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys)
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- 4. bounded third-party configs
@pytest.mark.parametrize("field,value,why", [
    ("num_attention_heads", 0, "must be in"), ("hidden_size", "64", "must be an integer"),
    ("H_cycles", 10**7, "must be in"), ("num_hidden_layers", 10**5, "must be in"),
    ("max_position_embeddings", 10**9, "must be in"), ("vocab_size", [50], "must be an integer"),
    ("L_cycles", True, "must be an integer"), ("hidden_size", 48, "not divisible"),
])
def test_hrm_text_config_bounds(field, value, why):
    cfg = {**GOOD, field: value}
    if why == "not divisible":
        cfg.pop("head_dim")
        cfg["num_attention_heads"] = 5
    with pytest.raises(CheckpointError, match=why) as e:
        check_hrm_text_config(cfg, "m")
    assert "\n" not in str(e.value)


def test_every_bound_admits_the_good_config_and_refuses_one_past_it():
    check_hrm_text_config(GOOD, "m")
    for name, (lo, hi) in HF_BOUNDS.items():
        for bad in (lo - 1, hi + 1):
            with pytest.raises((CheckpointError, ConfigError)):
                check_hrm_text_config({**GOOD, name: bad}, "m")


def test_hostile_hrm_text_folders_end_to_end(hrm_text_folder, tmp_path, capsys):
    import shutil

    for name, edit in (("heads0", {"num_attention_heads": 0}), ("hstr", {"hidden_size": "64"}),
                       ("hcyc", {"H_cycles": 10**7}), ("layers", {"num_hidden_layers": 10**5}),
                       ("pos", {"max_position_embeddings": 10**9})):
        d = tmp_path / name
        shutil.copytree(hrm_text_folder, d)
        cfg = json.loads((d / "config.json").read_text())
        cfg.update(edit)
        (d / "config.json").write_text(json.dumps(cfg))
        t0 = time.perf_counter()
        assert interp_main(["trace", "--ckpt", str(d), "--tokens", "1 2 3", "--out", str(tmp_path / "o")]) == 2
        assert time.perf_counter() - t0 < 20
        assert next(iter(edit)) in _one_line(capsys)
    d = tmp_path / "big"
    shutil.copytree(hrm_text_folder, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["padding"] = "x" * (2 << 20)  # above the 1 MB limit (a 200 MB file is refused by the same stat)
    (d / "config.json").write_text(json.dumps(cfg))
    assert interp_main(["trace", "--ckpt", str(d), "--tokens", "1 2 3", "--out", str(tmp_path / "o")]) == 2
    assert "larger than the limit" in _one_line(capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["inf", "nan", "garbage", "-1", "0", "1e400"])
def test_memory_limit_env_garbage_is_one_line(value, monkeypatch):
    monkeypatch.setenv("RECURSE_MAX_MEMORY_GB", value)
    with pytest.raises(ConfigError, match="RECURSE_MAX_MEMORY_GB must be") as e:
        max_memory_bytes()
    assert "\n" not in str(e.value)
    monkeypatch.setenv("RECURSE_MAX_MEMORY_GB", "2.5")
    assert max_memory_bytes() == 2_500_000_000


def test_memory_limit_env_garbage_through_the_cli(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("RECURSE_MAX_MEMORY_GB", "inf")
    assert interp_main(["trace", "--ckpt", "zoo/trm-sudoku9", "--puzzle-file", "data/sudoku/generated_moderate.sdm",
                        "--limit", "1", "--out", str(tmp_path / "o")]) == 2
    assert "RECURSE_MAX_MEMORY_GB" in _one_line(capsys) and not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- 5. Hub cache: regular files only
def test_fifo_at_refs_main_is_refused_quickly(hrm_text_folder, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "hub"
    add_to_hub_cache(cache, "org/tiny", folder_files(hrm_text_folder))
    ref = cache / "models--org--tiny" / "refs" / "main"
    ref.unlink()
    os.mkfifo(ref)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="refs/main: is a FIFO"):
        resolve_hub("hf:org/tiny", cache_dir=cache, offline=True)
    assert interp_main(["trace", "--ckpt", "hf:org/tiny", "--tokens", "1 2 3", "--out", str(tmp_path / "o")]) == 2
    assert "FIFO" in _one_line(capsys) and time.perf_counter() - t0 < 20 and not (tmp_path / "o").exists()


def test_huge_ref_file_is_refused(hrm_text_folder, tmp_path):
    cache = tmp_path / "hub"
    add_to_hub_cache(cache, "org/tiny", folder_files(hrm_text_folder))
    (cache / "models--org--tiny" / "refs" / "main").write_text("0" * 5000)
    with pytest.raises(CheckpointError, match="larger than the limit"):
        resolve_hub("hf:org/tiny", cache_dir=cache, offline=True)


# ----------------------------------------------------------------------------- 7. the HRM-Text command line
def test_pickle_named_model_safetensors(hrm_text_folder, tmp_path, capsys):
    import shutil

    d = tmp_path / "pk"
    shutil.copytree(hrm_text_folder, d)
    w = next(d.glob("*.safetensors"))
    w.write_bytes(pickle.dumps({"w": list(range(10))}))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_any(d)
    assert interp_main(["trace", "--ckpt", str(d), "--tokens", "1 2 3", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys)


@pytest.mark.parametrize("argv,why", [
    (["--device", "meta"], "--device"), (["--device", "bogus"], "--device"), (["--device", "cuda:-1"], "--device"),
    (["--tokens", "1 2 99999999999999999999999"], "outside"), (["--tokens", "1 -2 3"], "outside"),
    (["--text", "caf\udce9 au lait"], "UTF-8"),
])
def test_hrm_text_cli_hostile_arguments(hrm_text_folder, tmp_path, capsys, argv, why):
    base = ["trace", "--ckpt", str(hrm_text_folder), "--out", str(tmp_path / "o")]
    if not any(a in argv for a in ("--tokens", "--text")):
        base += ["--tokens", "1 2 3"]
    assert interp_main(base + argv) == 2
    assert why in _one_line(capsys)
    assert not (tmp_path / "o").exists()


def test_cuda_without_cuda_is_one_line(hrm_text_folder, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    assert interp_main(["trace", "--ckpt", str(hrm_text_folder), "--tokens", "1 2 3", "--device", "cuda",
                        "--out", str(tmp_path / "o")]) == 2
    assert "CUDA is not available" in _one_line(capsys) and not (tmp_path / "o").exists()


def test_device_type_is_a_cli_type():
    from common.cli_types import device_str

    assert [device_str(d) for d in ("auto", "cpu", "cuda", "cuda:1", "mps")] == ["auto", "cpu", "cuda", "cuda:1", "mps"]
    from interp.cli import build_parser

    with pytest.raises(UsageError, match="--device"):
        build_parser().parse_args(["trace", "--ckpt", "x", "--tokens", "1 2", "--device", "meta"])


def test_no_progress_bar_on_stderr_when_not_a_terminal(hrm_text_folder, tmp_path, capsys):
    assert interp_main(["trace", "--ckpt", str(hrm_text_folder), "--tokens", "1 2 3", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "Loading weights" not in err and "%|" not in err


def test_weight_shape_mismatch_is_one_line_without_transformers_report(hrm_text_folder, tmp_path, capsys):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    d = tmp_path / "mm"
    shutil.copytree(hrm_text_folder, d)
    w = next(d.glob("*.safetensors"))
    tensors = load_file(str(w))
    tensors["lm_head.weight"] = torch.zeros(3, 3)
    save_file(tensors, str(w), metadata={"format": "pt"})
    assert interp_main(["trace", "--ckpt", str(d), "--tokens", "1 2 3", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights do not match the config" in err and "lm_head.weight" in err, err


@pytest.mark.slow
def test_red_team_issue_26_subset():
    """A few issue-26 corpus cases end to end through scripts/red_team.py (the whole corpus: run the script)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(repo / "scripts" / "red_team.py"), "--only",
                        "opt_abbreviated,hub_fifo_refs_main,hf_heads_0,old_resume_last_symlink"],
                       capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONPATH": str(repo)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "| 4 | 4 | 0 |" in r.stdout

"""Issue 16: config schema, bounded readers, trace integrity, bounded rollbacks, outputs that keep user files.

Property-based fuzzing (hypothesis) covers every reader: model configs, JSON/YAML files, manifests, safetensors headers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.io import check_replaceable, read_json, safe_load_yaml, safetensors_header
from models.checkpoint import CheckpointError, remove_stale_checkpoint_temporaries
from models.config import ConfigError, TRMConfig, config_from_dict, estimate_memory

REPO = Path(__file__).resolve().parents[2]
BASE = {"family": "trm", "vocab_size": 11, "seq_len": 81, "hidden_size": 32, "num_heads": 2, "num_layers": 1}


# ----------------------------------------------------------------------------- schema
@pytest.mark.parametrize("field,value,pattern", [
    ("hidden_size", [32], "must be a number"), ("rms_norm_eps", "1e-5x", "must be a number"),
    ("hidden_size", True, "must be a number"), ("seq_len", 10 ** 9, "seq_len must be in"),
    ("H_cycles", 10 ** 7, "H_cycles must be in"), ("halt_max_steps", 10 ** 8, "halt_max_steps"),
    ("L_cycles", 0, "L_cycles must be in"), ("rope_theta", 0, "rope_theta must be in"),
    ("attn_backend", "magic", "attn_backend"), ("expansion", float("nan"), "finite"),
])
def test_config_schema_one_line(field, value, pattern):
    with pytest.raises(ConfigError, match=pattern) as e:
        config_from_dict({**BASE, field: value})
    assert "\n" not in str(e.value)


def test_memory_estimate_before_allocation(monkeypatch):
    cfg = TRMConfig(**{k: v for k, v in BASE.items() if k != "family"})
    assert 0 < estimate_memory(cfg)["total"] < 1e8
    big = {**BASE, "hidden_size": 8192, "num_heads": 8, "num_layers": 64}
    with pytest.raises(ConfigError, match="RECURSE_MAX_MEMORY_GB"):
        config_from_dict(big)
    monkeypatch.setenv("RECURSE_MAX_MEMORY_GB", "100000")
    config_from_dict({**big, "num_layers": 1})  # the limit can be raised (nothing is allocated here)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(list(BASE) + ["H_cycles", "L_cycles", "rope_theta", "halt_max_steps",
                                                     "attn_backend", "mlp_t", "bogus"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12), st.floats(),
                                 st.text(max_size=8), st.lists(st.integers(), max_size=2))))
def test_config_fuzz(edit):
    """Any field values: a config or one ConfigError line, never another exception."""
    try:
        cfg = config_from_dict({**BASE, **edit, "family": "trm"})
    except ConfigError as e:
        assert "\n" not in str(e)
    else:
        assert 1 <= cfg.hidden_size <= 1 << 14 and cfg.L_cycles >= 1


# ----------------------------------------------------------------------------- bounded readers
def test_readers_refuse_fifo_device_and_size(tmp_path):
    fifo = tmp_path / "f.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="FIFO"):
        read_json(fifo)
    (tmp_path / "z.json").symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="device"):
        read_json(tmp_path / "z.json")
    (tmp_path / "big.json").write_text(" " * 100 + "1")
    with pytest.raises(ValueError, match="limit"):
        read_json(tmp_path / "big.json", max_bytes=50)
    (tmp_path / "deep.json").write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(ValueError, match="deeply"):
        read_json(tmp_path / "deep.json")


def test_yaml_alias_bomb(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    (tmp_path / "b.yaml").write_text("\n".join(lines))
    with pytest.raises(ValueError, match="aliases"):
        safe_load_yaml(tmp_path / "b.yaml")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_json_yaml_safetensors_fuzz(tmp_path, blob):
    p = tmp_path / "x"
    p.write_bytes(blob)
    for reader in (read_json, safe_load_yaml, safetensors_header):
        try:
            reader(p)
        except ValueError as e:
            assert "\n" not in str(e)


def test_safetensors_header_limit(tmp_path):
    p = tmp_path / "w.safetensors"
    p.write_bytes((50 << 20).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="corrupt"):
        safetensors_header(p)


# ----------------------------------------------------------------------------- trace integrity
@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory):
    import numpy as np
    import torch

    from interp.tracing.stream import trace_to_disk
    from models import build_model

    torch.manual_seed(0)
    m = build_model(TRMConfig(vocab_size=11, seq_len=81, hidden_size=16, num_heads=1, num_layers=1, H_cycles=1,
                              L_cycles=1, halt_max_steps=1)).eval()
    x = np.random.default_rng(0).integers(1, 11, (6, 81))
    return trace_to_disk(m, (x, x), tmp_path_factory.mktemp("t") / "t", chunk_size=2, progress=False)


def _tamper(src: Path, dst: Path, how: str) -> Path:
    shutil.copytree(src, dst)
    c0, c1 = dst / "chunk_00000.safetensors", dst / "chunk_00001.safetensors"
    man = json.loads((dst / "manifest.json").read_text())
    if how == "flip":
        b = bytearray(c1.read_bytes())
        b[-3] ^= 1
        c1.write_bytes(bytes(b))
    elif how == "swap":
        a, b = c0.read_bytes(), c1.read_bytes()
        c0.write_bytes(b)
        c1.write_bytes(a)
    elif how == "copy":
        shutil.copy(c0, c1)
    elif how == "twice":
        man["chunks"].append(dict(man["chunks"][0]))
    elif how == "grid":
        man["meta"]["task"] = {"name": "maze", "grid": [3, 3]}
    elif how == "n_chunks":
        man["n_chunks"] = 2
    (dst / "manifest.json").write_text(json.dumps(man))
    return dst


@pytest.mark.parametrize("how", ["flip", "swap", "copy", "twice", "grid", "n_chunks"])
def test_tampered_trace_refused(trace_dir, tmp_path, how):
    from interp.tracing.store import load_trace
    from interp.tracing.trace import TraceError

    d = _tamper(trace_dir, tmp_path / how, how)
    with pytest.raises(TraceError) as e:
        load_trace(d)
    assert "\n" not in str(e.value)
    if how in ("flip", "swap", "copy"):
        assert "chunk_0000" in str(e.value)


def test_trace_verify_and_no_verify(trace_dir, tmp_path):
    from interp.tracing.store import load_trace

    assert load_trace(trace_dir).n_puzzles == 6
    assert load_trace(trace_dir, verify=False).n_puzzles == 6


def test_overwrite_keeps_foreign_files_and_cleans_temporaries(trace_dir, tmp_path):
    from interp.tracing.store import prepare_dir
    from interp.tracing.trace import TraceError

    d = tmp_path / "t"
    shutil.copytree(trace_dir, d)
    (d / ".tmpAbC123").write_bytes(b"x" * 10)  # safetensors' own temporary from a killed writer
    (d / "notes.ipynb").write_text("{}")
    with pytest.raises(TraceError, match="did not write"):
        prepare_dir(d, "x", overwrite=True, resume=False)
    assert (d / "notes.ipynb").exists() and (d / "manifest.json").exists()
    (d / "notes.ipynb").unlink()
    prepare_dir(d, "x", overwrite=True, resume=False)
    assert not any(d.iterdir())
    web = tmp_path / "web"
    web.mkdir()
    (web / "manifest.json").write_text('{"name": "app"}')
    with pytest.raises(TraceError, match="not written by this tool"):
        prepare_dir(web, "x", overwrite=True, resume=False)
    assert (web / "manifest.json").exists()


# ----------------------------------------------------------------------------- outputs and temporaries
def test_check_replaceable(tmp_path):
    out = tmp_path / "o"
    assert check_replaceable(out) is False
    out.mkdir()
    (out / "a.csv").write_text("mine")
    with pytest.raises(ValueError, match="no provenance.json"):
        check_replaceable(out)
    (out / "provenance.json").write_text(json.dumps({"tool": "recurse-interp", "files": ["a.csv"]}))
    assert check_replaceable(out) is True
    (out / "user.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="user.ipynb"):
        check_replaceable(out)
    (tmp_path / "link").symlink_to(out)
    with pytest.raises(ValueError, match="symbolic link"):
        check_replaceable(tmp_path / "link")


def test_stale_checkpoint_temporaries(tmp_path):
    (tmp_path / ".last.tmp-abc").mkdir()
    (tmp_path / ".tmpXyZ789").write_text("x")
    (tmp_path / "last").mkdir()
    (tmp_path / "mine.txt").write_text("x")
    removed = {p.name for p in remove_stale_checkpoint_temporaries(tmp_path)}
    assert removed == {".last.tmp-abc", ".tmpXyZ789"}
    assert (tmp_path / "last").exists() and (tmp_path / "mine.txt").exists()


def test_disk_full_recognised():
    from safetensors import SafetensorError

    from common.io import is_disk_full

    assert is_disk_full(OSError(28, "No space left on device"))
    assert is_disk_full(SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                                        "message: \"No space left on device\" })"))
    assert not is_disk_full(ValueError("bad"))


def test_optimizer_state_checks():
    import torch

    from models import build_model
    from training.checkpointing import check_optimizer_tensors, optimizer_tensors

    m = build_model(TRMConfig(vocab_size=11, seq_len=81, hidden_size=16, num_heads=1, num_layers=1))
    opt = torch.optim.AdamW(m.parameters())
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    t, _ = optimizer_tensors(m, opt)
    check_optimizer_tensors(m, opt, t, "ok")
    k = next(k for k in t if k.endswith("exp_avg"))
    bad = dict(t)
    bad[k] = t[k].clone().fill_(float("nan"))
    with pytest.raises(CheckpointError, match="NaN"):
        check_optimizer_tensors(m, opt, bad, "ckpt/optimizer.safetensors")
    bad[k] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="shape"):
        check_optimizer_tensors(m, opt, bad, "ckpt/optimizer.safetensors")
    bad = {kk: v for kk, v in t.items() if not kk.startswith(k.rpartition(".")[0] + ".")}
    with pytest.raises(CheckpointError, match="lacks"):
        check_optimizer_tensors(m, opt, bad, "ckpt/optimizer.safetensors")


@pytest.mark.slow
def test_red_team_script_subset():
    """A few corpus cases end to end (the whole corpus: ``python scripts/red_team.py``)."""
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "red_team.py"), "--only",
                        "config_fifo,weights_50mb_header,trace_flipped_chunk,trace_overwrite_notebook"],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "| 4 | 4 | 0 |" in r.stdout


def test_interp_cli_reports_a_full_disk_from_safetensors_in_one_line(monkeypatch, capsys):
    """safetensors raises its own SafetensorError on ENOSPC (not an OSError): still one line, exit 2."""
    from safetensors import SafetensorError

    import interp.cli as cli

    def full(_args):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                              "message: \"No space left on device\" })")

    real = cli.build_parser

    def parser_with_full_disk():
        p = real()
        p.set_defaults(func=full)
        for action in p._subparsers._group_actions:
            for sub in action.choices.values():
                sub.set_defaults(func=full)
        return p

    monkeypatch.setattr(cli, "build_parser", parser_with_full_disk)
    assert cli.main(["show", "somewhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: disk full or file size limit while writing")

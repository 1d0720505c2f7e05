"""Red-team cases of issue 26 (options, loaders, third-party configs, the Hub cache, HRM-Text), used by red_team.py.

Each case builds its hostile input under its own folder and returns the command line after ``python``
(``-m MODULE ...`` or a script path). The shared pieces (a tiny TRM, a tiny HRM-Text folder, a puzzle file)
are built once per corpus under ``_base``. Cases for output-folder manifests and trace verification on reuse
(issue 26, mechanisms 2 and 6) live with that work.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
Setup = Callable[[Path], list[str]]


# ----------------------------------------------------------------------------- shared inputs
def trm(root: Path) -> Path:
    """A tiny TRM Sudoku checkpoint."""
    ck = root / "_base" / "trm"
    if not ck.exists():
        import torch

        from models import TRMConfig, build_model
        from models.checkpoint import save_checkpoint

        torch.manual_seed(0)
        m = build_model(TRMConfig(vocab_size=11, seq_len=81, hidden_size=32, num_heads=2, num_layers=1, H_cycles=1,
                                  L_cycles=1, halt_max_steps=1, expansion=2.0))
        save_checkpoint(ck, m, extra={"task": {"name": "sudoku", "grid_size": 9}})
    return ck


def puzzles(root: Path) -> Path:
    pf = root / "_base" / "p.sdm"
    if not pf.exists():
        pf.parent.mkdir(parents=True, exist_ok=True)
        pf.write_text((PUZZLE + "\n") * 2)
    return pf


def hrm_text(root: Path) -> Path:
    """A tiny transformers HRM-Text folder (save_pretrained)."""
    d = root / "_base" / "hrm_text"
    if not d.exists():
        import torch
        from transformers import HrmTextConfig, HrmTextForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        torch.manual_seed(0)
        cfg = HrmTextConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=2, head_dim=16, H_cycles=2, L_cycles=2, max_position_embeddings=64,
                            num_layers_per_stack=1)
        HrmTextForCausalLM(cfg).save_pretrained(d)
    return d


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _text_trace(ck: Path, root: Path, *extra: str) -> list[str]:
    return ["-m", "interp", "trace", "--ckpt", str(ck), "--tokens", "1 2 3", "--out", str(root / "out"), *extra]


# ----------------------------------------------------------------------------- 1. options
def opt(*argv: str) -> Setup:
    """A command line with the tiny checkpoint and puzzle file filled in ({ck}, {pf})."""
    def setup(root: Path) -> list[str]:
        return [a.format(ck=trm(root), pf=puzzles(root), out=root / "out") for a in argv]
    return setup


def _script(name: str, *argv: str) -> Setup:
    def setup(root: Path) -> list[str]:
        return [str(REPO / "scripts" / name), "--puzzle-file", str(puzzles(root)), "--out", str(root / "out"), *argv]
    return setup


# ----------------------------------------------------------------------------- 3. untrusted JSON / YAML
def _deep_hf_config(root: Path) -> list[str]:
    d = _copy(hrm_text(root), root / "deep")
    (d / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    return _text_trace(d, root)


def _train_set_deep(root: Path) -> list[str]:
    return ["-m", "training", "train", "--config", str(REPO / "zoo" / "configs" / "trm_sudoku9.yaml"),
            "--out", str(root / "out"), "--set", "model.hidden_size=" + "[" * 5000 + "]" * 5000]


def _official_set_deep(root: Path) -> list[str]:
    return ["-m", "models.official", "info", str(REPO / "tests" / "fixtures" / "checkpoint_formats" / "hrm_step"),
            "--set", "hidden_size=" + "[" * 5000 + "]" * 5000]


def _report_deep(root: Path) -> list[str]:
    (root / "r.json").write_text('{"a":' * 5000 + "1" + "}" * 5000)
    return ["-m", "interp", "report", "--config", str(root / "r.json"), "--out", str(root / "out")]


def _dataset_json(value: Any) -> Setup:
    def setup(root: Path) -> list[str]:
        (root / "data").mkdir()
        (root / "data" / "dataset.json").write_text(value if isinstance(value, str) else json.dumps(value))
        return ["-m", "models.official", "info", str(REPO / "tests" / "fixtures" / "checkpoint_formats" / "hrm_step"),
                "--dataset", str(root / "data")]
    return setup


# ----------------------------------------------------------------------------- 4. bounded third-party configs
def hf_field(field: str, value: Any) -> Setup:
    def setup(root: Path) -> list[str]:
        d = _copy(hrm_text(root), root / "m")
        cfg = json.loads((d / "config.json").read_text())
        cfg[field] = value
        (d / "config.json").write_text(json.dumps(cfg))
        return _text_trace(d, root)
    return setup


def _hf_200mb(root: Path) -> list[str]:
    d = _copy(hrm_text(root), root / "m")
    cfg = json.loads((d / "config.json").read_text())
    with open(d / "config.json", "w") as f:
        f.write(json.dumps(cfg)[:-1] + ', "pad": "')
        chunk = "x" * (1 << 20)
        for _ in range(200):
            f.write(chunk)
        f.write('"}')
    return _text_trace(d, root)


# ----------------------------------------------------------------------------- 5. Hub cache
def _hub(root: Path, edit: Callable[[Path], None]) -> list[str]:
    import hashlib

    cache = root / "hub"
    repo = cache / "models--org--tiny"
    files = {f.name: f.read_bytes() for f in hrm_text(root).iterdir() if f.is_file()}
    commit = hashlib.sha1("".join(sorted(files)).encode()).hexdigest()
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / commit).mkdir(parents=True)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, repo / "snapshots" / commit), repo / "snapshots" / commit / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    edit(repo)
    return ["-m", "interp", "trace", "--ckpt", "hf:org/tiny", "--tokens", "1 2 3", "--out", str(root / "out")]


def _fifo_ref(root: Path) -> list[str]:
    def edit(repo: Path) -> None:
        (repo / "refs" / "main").unlink()
        os.mkfifo(repo / "refs" / "main")
    return _hub(root, edit)


def _fifo_snapshot_config(root: Path) -> list[str]:
    def edit(repo: Path) -> None:
        snap = next((repo / "snapshots").iterdir())
        (snap / "config.json").unlink()
        os.mkfifo(snap / "config.json")
    return _hub(root, edit)


def _huge_ref(root: Path) -> list[str]:
    return _hub(root, lambda repo: (repo / "refs" / "main").write_text("0" * 100_000))


HUB_ENV = {"HF_HUB_OFFLINE": "1"}


def hub_env(root: Path) -> dict[str, str]:
    return {**HUB_ENV, "HF_HUB_CACHE": str(root / "hub")}


# ----------------------------------------------------------------------------- 7. HRM-Text command line
def hf_cli(*extra: str, tokens: str | None = "1 2 3") -> Setup:
    def setup(root: Path) -> list[str]:
        argv = ["-m", "interp", "trace", "--ckpt", str(hrm_text(root)), "--out", str(root / "out"), *extra]
        return argv + (["--tokens", tokens] if tokens is not None else [])
    return setup


def _pickle_safetensors(root: Path) -> list[str]:
    d = _copy(hrm_text(root), root / "m")
    next(d.glob("*.safetensors")).write_bytes(pickle.dumps({"weights": list(range(100))}))
    return _text_trace(d, root)


def _shape_mismatch(root: Path) -> list[str]:
    import torch
    from safetensors.torch import load_file, save_file

    d = _copy(hrm_text(root), root / "m")
    w = next(d.glob("*.safetensors"))
    tensors = load_file(str(w))
    tensors["lm_head.weight"] = torch.zeros(3, 3)
    save_file(tensors, str(w), metadata={"format": "pt"})
    return _text_trace(d, root)


def _invalid_utf8(root: Path) -> list[str]:
    return ["-m", "interp", "trace", "--ckpt", str(hrm_text(root)), "--out", str(root / "out"),
            "--text", os.fsdecode(b"caf\xe9 au lait")]


# ----------------------------------------------------------------------------- 8. old cases
def model_field(part: str, field: str, value: Any, cmd: str = "trace") -> Setup:
    def setup(root: Path) -> list[str]:
        d = _copy(trm(root), root / "ck")
        meta = json.loads((d / "config.json").read_text())
        meta.setdefault(part, {})[field] = value
        (d / "config.json").write_text(json.dumps(meta))
        if cmd == "eval":
            return ["-m", "training", "eval", "--ckpt", str(d), "--n", "2"]
        return ["-m", "interp", "trace", "--ckpt", str(d), "--puzzle", PUZZLE, "--out", str(root / "out")]
    return setup


def _resume_symlink(root: Path) -> list[str]:
    (root / "run").mkdir()
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "mine.txt").write_text("mine")
    os.symlink(root / "elsewhere", root / "run" / "last")
    return ["-m", "training", "train", "--config", str(REPO / "zoo" / "configs" / "trm_sudoku9.yaml"),
            "--out", str(root / "run"), "--resume"]


def _comments_only(root: Path) -> list[str]:
    (root / "c.sdm").write_text("# one\n# two\n")
    return ["-m", "interp", "trace", "--ckpt", str(trm(root)), "--puzzle-file", str(root / "c.sdm"),
            "--out", str(root / "out")]


# ----------------------------------------------------------------------------- the cases
# (name, setup, extra environment or a function of the folder giving it, error text that must appear)
CASES: list[tuple[str, Setup, Any, str | None]] = [
    # 1. options, validated in one place
    ("opt_abbreviated", opt("-m", "interp", "trace", "--ckpt", "{ck}", "--puzzle-fil", "{pf}", "--out", "{out}"), None,
     "--puzzle-fil"),
    ("opt_unknown_before_required", opt("-m", "interp", "trace", "--ckpt", "{ck}", "--frobnicate"), None, "--frobnicate"),
    ("opt_segments_1e9", opt("-m", "interp", "trace", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--segments", "1000000000"), None, "--segments"),
    ("opt_k_1e6", opt("-m", "interp", "guess-scale", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--k", "1000000",
                      "--out", "{out}"), None, "--k"),
    ("opt_demo_n_1e9", opt("-m", "interp", "demo", "--ckpt", "{ck}", "--n", "1000000000", "--out", "{out}"), None, "--n"),
    ("opt_limit_0", opt("-m", "interp", "trace", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--limit", "0"), None,
     "--limit"),
    ("opt_threads_-1", opt("-m", "interp", "stability", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--threads", "-1",
                           "--out", "{out}"), None, "argument --threads"),
    ("opt_tangents_nan", opt("-m", "interp", "stability", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--tangents",
                             "nan", "--out", "{out}"), None, "--tangents"),
    ("opt_noise_inf", opt("-m", "interp", "guess-scale", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--noise", "inf",
                          "--out", "{out}"), None, "--noise"),
    ("opt_verify_top_2", opt("-m", "interp", "attribute", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--verify-top",
                             "2", "--out", "{out}"), None, "--verify-top"),
    ("opt_seed_huge", opt("-m", "interp", "influence", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--seed", "9" * 30,
                          "--out", "{out}"), None, "--seed"),
    ("opt_out_empty", opt("-m", "interp", "trace", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--out", ""), None,
     "--out"),
    ("opt_eval_n_-1", opt("-m", "training", "eval", "--ckpt", "{ck}", "--n", "-1"), None, "--n"),
    ("opt_eval_batch_0", opt("-m", "training", "eval", "--ckpt", "{ck}", "--batch-size", "0"), None, "--batch-size"),
    ("opt_hub_seq_len_0", opt("-m", "models.hub", "export", "{ck}", "{out}", "--seq-len", "0"), None, "--seq-len"),
    ("opt_sudoku_n_-1", opt("-m", "tasks.sudoku", "generate", "-n", "-1"), None, "-n"),
    ("opt_maze_size_1e6", opt("-m", "tasks.maze", "show", "--size", "1000000"), None, "--size"),
    ("opt_arc_n_aug_-1", opt("-m", "tasks.arc", "build", "--out", "{out}", "--n-aug", "-1"), None, "--n-aug"),
    ("opt_text_val_nan", opt("-m", "tasks.text", "build", "--out", "{out}", "--val-fraction", "nan"), None,
     "--val-fraction"),
    ("opt_train_unknown", opt("-m", "training", "train", "--frobnicate"), None, "--frobnicate"),
    # 3. one reader for untrusted JSON / YAML
    ("json_hf_config_deep", _deep_hf_config, None, None),
    ("yaml_train_set_deep", _train_set_deep, None, "too"),
    ("json_official_set_deep", _official_set_deep, None, "deep"),
    ("json_report_config_deep", _report_deep, None, "deep"),
    ("json_dataset_deep", _dataset_json("[" * 100_000 + "]" * 100_000), None, None),
    ("json_dataset_seq_len_list", _dataset_json({"seq_len": [81], "vocab_size": 11}), None, "seq_len"),
    # 4. bounded third-party configs
    ("hf_heads_0", hf_field("num_attention_heads", 0), None, "num_attention_heads"),
    ("hf_hidden_string", hf_field("hidden_size", "64"), None, "hidden_size"),
    ("hf_H_cycles_1e7", hf_field("H_cycles", 10**7), None, "H_cycles"),
    ("hf_layers_1e5", hf_field("num_hidden_layers", 10**5), None, "num_hidden_layers"),
    ("hf_positions_1e9", hf_field("max_position_embeddings", 10**9), None, "max_position_embeddings"),
    ("hf_vocab_list", hf_field("vocab_size", [50]), None, "vocab_size"),
    ("hf_config_200mb", _hf_200mb, None, "larger than"),
    ("env_memory_inf", opt("-m", "interp", "trace", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--out", "{out}"),
     {"RECURSE_MAX_MEMORY_GB": "inf"}, "RECURSE_MAX_MEMORY_GB"),
    ("env_memory_garbage", opt("-m", "interp", "trace", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--out", "{out}"),
     {"RECURSE_MAX_MEMORY_GB": "lots"}, "RECURSE_MAX_MEMORY_GB"),
    ("env_memory_nan_train", opt("-m", "training", "train", "--config", str(REPO / "zoo" / "configs" / "trm_sudoku9.yaml"),
                                 "--out", "{out}"), {"RECURSE_MAX_MEMORY_GB": "nan"}, "RECURSE_MAX_MEMORY_GB"),
    # 5. Hub cache: regular files only, time-limited
    ("hub_fifo_refs_main", _fifo_ref, hub_env, "FIFO"),
    ("hub_fifo_snapshot_config", _fifo_snapshot_config, hub_env, "FIFO"),
    ("hub_huge_ref", _huge_ref, hub_env, "larger than"),
    # 7. the HRM-Text command line
    ("hf_device_cuda", hf_cli("--device", "cuda"), {"CUDA_VISIBLE_DEVICES": ""}, "CUDA"),
    ("hf_device_bogus", hf_cli("--device", "bogus"), None, "--device"),
    ("hf_device_meta", hf_cli("--device", "meta"), None, "--device"),
    ("hf_token_above_int64", hf_cli(tokens="1 2 99999999999999999999999"), None, "token id"),
    ("hf_token_negative", hf_cli(tokens="1 -2 3"), None, "token id"),
    ("hf_invalid_utf8", _invalid_utf8, None, "UTF-8"),
    ("hf_pickle_safetensors", _pickle_safetensors, None, "safetensors"),
    ("hf_weights_shape_mismatch", _shape_mismatch, None, "weights do not match"),  # transformers' report kept off stderr
    # 8. remaining old cases
    ("old_vocab_size_list", model_field("model", "vocab_size", [11]), None, "vocab_size"),
    ("old_grid_size_list", model_field("task", "grid_size", [9]), None, "grid_size"),
    ("old_eval_trm_task_text", model_field("task", "name", "text", cmd="eval"), None, "disagree"),
    ("old_resume_last_symlink", _resume_symlink, None, "symbolic link"),
    ("old_comments_only_puzzles", _comments_only, None, "no 9x9"),
    ("old_sae_every_0", _script("sae_demo.py", "--every", "0"), None, "--every"),
    ("old_sae_topk_0", _script("sae_demo.py", "--topk", "0"), None, "--topk"),
    ("old_sae_l1_nan", _script("sae_demo.py", "--l1", "nan"), None, "--l1"),
    ("old_sae_steps_-1", _script("sae_demo.py", "--steps", "-1"), None, "--steps"),
    ("old_stability_batch_-2", opt("-m", "interp", "stability", "--ckpt", "{ck}", "--puzzle-file", "{pf}",
                                   "--batch-size", "-2", "--out", "{out}"), None, "--batch-size"),
    ("old_stability_segments_0", opt("-m", "interp", "stability", "--ckpt", "{ck}", "--puzzle-file", "{pf}",
                                     "--segments", "0", "--out", "{out}"), None, "--segments"),
    ("old_guess_scale_n_boot_0", opt("-m", "interp", "guess-scale", "--ckpt", "{ck}", "--puzzle-file", "{pf}",
                                     "--n-boot", "0", "--ci", "bootstrap", "--out", "{out}"), None, "--n-boot"),
    ("old_trace_state_puzzles_-1", opt("-m", "interp", "trace", "--ckpt", "{ck}", "--puzzle-file", "{pf}",
                                       "--state-puzzles", "-1", "--out", "{out}"), None,
     "--state-puzzles"),
    ("old_trace_show_-1", opt("-m", "interp", "trace", "--ckpt", "{ck}", "--puzzle-file", "{pf}", "--show", "-1",
                              "--out", "{out}"), None, "--show"),
    ("old_trace_viewer_puzzles_0", opt("-m", "interp", "trace", "--ckpt", "{ck}", "--puzzle-file", "{pf}",
                                       "--viewer-puzzles", "0", "--out", "{out}"), None, "--viewer-puzzles"),
]

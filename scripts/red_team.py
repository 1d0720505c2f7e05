"""Red team: run every hostile input of the corpus through the CLIs and print tried / clean / mishandled.

    PYTHONPATH=. python scripts/red_team.py            # the whole corpus
    PYTHONPATH=. python scripts/red_team.py --only trace_flipped_chunk,config_fifo

A case is *clean* when the command exits with status 2 (or 0 for a handled
result) with at most one line on stderr and no traceback, finishes within the
timeout, and leaves every foreign file (the user's files planted beside the
input) byte-identical. Everything else is *mishandled*. The corpus is built in
a temporary folder from a tiny checkpoint; nothing outside it is touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import bounded_float, nonempty_str  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from red_team_options import CASES as ISSUE_26  # noqa: E402
from red_team_options import PUZZLE, trm  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    name: str
    setup: Callable[[Path], list[str]]  # builds the hostile input under the folder, returns argv after python -m
    foreign: tuple[str, ...] = ()  # files (relative to the folder) that must stay untouched
    ok_codes: tuple[int, ...] = (2,)
    raw: bool = False  # setup returns argv after `python` (``-m MODULE ...`` or a script path)
    env: Any = None  # extra environment: a dict, or a function of the case folder giving one
    must: str | None = None  # text the error line must contain (the refusal names the right thing)
    no_out: bool = False  # a refused run must not create the folder's `out`


# ----------------------------------------------------------------------------- corpus helpers
def _trace(root: Path) -> Path:
    """A small finished trace (two chunks) written by ``interp trace``."""
    tr = root / "_base" / "trace"
    if not tr.exists():
        ck = trm(root)
        pf = root / "_base" / "p.sdm"
        pf.write_text((PUZZLE + "\n") * 4)
        subprocess.run([sys.executable, "-m", "interp", "trace", "--ckpt", str(ck), "--puzzle-file", str(pf),
                        "--out", str(tr), "--chunk-size", "2", "--show", "0"], check=True, capture_output=True,
                       env=_env(), timeout=300)
    return tr


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _copy_ckpt(root: Path, name: str, edit: Callable[[dict], None] | None = None) -> Path:
    d = root / name
    shutil.copytree(trm(root), d)
    if edit is not None:
        meta = json.loads((d / "config.json").read_text())
        edit(meta)
        (d / "config.json").write_text(json.dumps(meta))
    return d


def _model_field(field: str, value) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        d = _copy_ckpt(root, f"ck_{field}", lambda m: m["model"].__setitem__(field, value))
        return ["interp", "trace", "--ckpt", str(d), "--puzzle", PUZZLE, "--out", str(root / "out")]
    return setup


def _copy_trace(root: Path, name: str) -> Path:
    d = root / name
    shutil.copytree(_trace(root), d)
    return d


def _edit_manifest(d: Path, edit: Callable[[dict], None]) -> None:
    m = json.loads((d / "manifest.json").read_text())
    edit(m)
    (d / "manifest.json").write_text(json.dumps(m))


def _show(tamper: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        d = _copy_trace(root, "t")
        tamper(d)
        return ["interp", "show", str(d)]
    return setup


def _flip(d: Path) -> None:
    p = d / "chunk_00001.safetensors"
    b = bytearray(p.read_bytes())
    b[-5] ^= 0xFF
    p.write_bytes(bytes(b))


def _swap(d: Path) -> None:
    a, b = d / "chunk_00000.safetensors", d / "chunk_00001.safetensors"
    ta, tb = a.read_bytes(), b.read_bytes()
    a.write_bytes(tb)
    b.write_bytes(ta)


def _dup(d: Path) -> None:
    shutil.copy(d / "chunk_00000.safetensors", d / "chunk_00001.safetensors")


def _listed_twice(d: Path) -> None:
    _edit_manifest(d, lambda m: m["chunks"].append(dict(m["chunks"][0])))


def _fifo_config(root: Path) -> list[str]:
    d = _copy_ckpt(root, "ck_fifo")
    (d / "config.json").unlink()
    os.mkfifo(d / "config.json")
    return ["interp", "trace", "--ckpt", str(d), "--puzzle", PUZZLE, "--out", str(root / "out")]


def _fifo_weights(root: Path) -> list[str]:
    d = _copy_ckpt(root, "ck_fifo_w")
    (d / "model.safetensors").unlink()
    os.mkfifo(d / "model.safetensors")
    return ["interp", "trace", "--ckpt", str(d), "--puzzle", PUZZLE, "--out", str(root / "out")]


def _devzero_config(root: Path) -> list[str]:
    d = _copy_ckpt(root, "ck_zero")
    (d / "config.json").unlink()
    os.symlink("/dev/zero", d / "config.json")
    return ["interp", "trace", "--ckpt", str(d), "--puzzle", PUZZLE, "--out", str(root / "out")]


def _deep_json(root: Path) -> list[str]:
    d = _copy_ckpt(root, "ck_deep")
    (d / "config.json").write_text("[" * 100000 + "]" * 100000)
    return ["interp", "trace", "--ckpt", str(d), "--puzzle", PUZZLE, "--out", str(root / "out")]


def _big_header(root: Path) -> list[str]:
    d = _copy_ckpt(root, "ck_header")
    n = 50 << 20
    with open(d / "model.safetensors", "wb") as f:
        f.write(n.to_bytes(8, "little") + b"{" + b" " * (n - 2) + b"}")
    return ["interp", "trace", "--ckpt", str(d), "--puzzle", PUZZLE, "--out", str(root / "out")]


def _weights_dtype(dtype: str) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        import torch
        from safetensors.torch import load_file, save_file

        d = _copy_ckpt(root, f"ck_{dtype}")
        t = load_file(str(d / "model.safetensors"))
        save_file({k: v.to(getattr(torch, dtype)) for k, v in t.items()}, str(d / "model.safetensors"))
        return ["interp", "trace", "--ckpt", str(d), "--puzzle", PUZZLE, "--out", str(root / "out")]
    return setup


def _yaml_bomb(root: Path) -> list[str]:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    (root / "bomb.yaml").write_text("\n".join(lines) + "\n")
    return ["training", "train", "--config", str(root / "bomb.yaml"), "--out", str(root / "run")]


def _official_yaml(value: str) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        import torch

        run = root / "official"
        run.mkdir()
        torch.save({"embed_tokens.embedding_weight": torch.zeros(11, 32)}, run / "step_1")
        (run / "all_config.yaml").write_text(
            "arch:\n  name: recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1\n"
            f"  hidden_size: {value}\n  num_heads: 2\n  H_cycles: 1\n  L_cycles: 1\n  L_layers: 1\n")
        return ["models.official", "info", str(run), "--seq-len", "81"]
    return setup


def _trace_overwrite_notebook(root: Path) -> list[str]:
    d = _copy_trace(root, "t")
    (d / "analysis.ipynb").write_text("{}")
    return ["interp", "trace", "--ckpt", str(trm(root)), "--puzzle", PUZZLE, "--out", str(d), "--overwrite"]


def _trace_overwrite_webapp(root: Path) -> list[str]:
    d = root / "webapp"
    d.mkdir()
    (d / "manifest.json").write_text('{"name": "my app", "start_url": "/"}')
    (d / "index.html").write_text("<html></html>")
    return ["interp", "trace", "--ckpt", str(trm(root)), "--puzzle", PUZZLE, "--out", str(d), "--overwrite"]


def _out_symlink(root: Path) -> list[str]:
    (root / "elsewhere").mkdir()
    os.symlink(root / "elsewhere", root / "link")
    return ["interp", "trace", "--ckpt", str(trm(root)), "--puzzle", PUZZLE, "--out", str(root / "link")]


def _convert_nonempty(root: Path) -> list[str]:
    import torch

    run = root / "official"
    run.mkdir()
    torch.save({"embed_tokens.embedding_weight": torch.zeros(11, 32)}, run / "step_1")
    (run / "all_config.yaml").write_text("arch:\n  name: recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1\n"
                                         "  hidden_size: 32\n  num_heads: 2\n  H_cycles: 1\n  L_cycles: 1\n")
    (root / "dest").mkdir()
    (root / "dest" / "thesis.tex").write_text("mine")
    return ["models.official", "convert", str(run), str(root / "dest"), "--seq-len", "81"]


def _demo_puzzles(root: Path) -> list[str]:
    (root / "demo").mkdir()
    (root / "demo" / "puzzles.sdm").write_text(PUZZLE + "\n")
    return ["interp", "demo", "--ckpt", str(trm(root)), "--n", "1", "--out", str(root / "demo")]


def _demo_bad_ckpt(root: Path) -> list[str]:
    d = _copy_ckpt(root, "ck_bad", lambda m: m["model"].__setitem__("L_cycles", 0))
    return ["interp", "demo", "--ckpt", str(d), "--n", "1", "--out", str(root / "demo_new")]


def _guess_scale_user_dir(root: Path) -> list[str]:
    (root / "gs").mkdir()
    (root / "gs" / "guess_scaling.csv").write_text("my,own,data\n")
    pf = root / "p.sdm"
    pf.write_text(PUZZLE + "\n")
    return ["interp", "guess-scale", "--ckpt", str(trm(root)), "--puzzle-file", str(pf), "--out", str(root / "gs")]


def _report_user_dir(root: Path) -> list[str]:
    (root / "rep").mkdir()
    (root / "rep" / "provenance.json").write_text('{"mine": true}')
    (root / "rep" / "notes.md").write_text("mine")
    (root / "r.yaml").write_text("runs: []\n")
    return ["interp", "report", "--config", str(root / "r.yaml"), "--out", str(root / "rep"), "--overwrite"]


def _train_metrics(root: Path) -> list[str]:
    (root / "run").mkdir()
    (root / "run" / "metrics.jsonl").write_text('{"mine": 1}\n')
    cfg = {"model": {"family": "trm", "hidden_size": 16, "num_heads": 1, "num_layers": 1, "H_cycles": 1,
                     "L_cycles": 1, "halt_max_steps": 1},
           "task": {"name": "sudoku", "data": {"generate": "sudoku", "n_train": 4, "n_test": 2, "seed": 1}},
           "steps": 1, "batch_size": 2}
    (root / "cfg.json").write_text(json.dumps(cfg))
    return ["training", "train", "--config", str(root / "cfg.json"), "--out", str(root / "run"), "--no-progress"]


def _train_cfg(model_edit: dict) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        cfg = {"model": {"family": "trm", **model_edit}, "task": {"name": "sudoku", "data": str(root)}, "steps": 1}
        (root / "cfg.json").write_text(json.dumps(cfg))
        return ["training", "train", "--config", str(root / "cfg.json"), "--out", str(root / "run")]
    return setup


def _eval_data_dir(root: Path) -> list[str]:
    (root / "secret.txt").write_text("password\n")
    d = _copy_ckpt(root, "ck_data", lambda m: m.setdefault("task", {}).__setitem__("data_dir", str(root / "secret.txt")))
    return ["training", "eval", "--ckpt", str(d)]


def _hub_export_thesis(root: Path) -> list[str]:
    (root / "hub").mkdir()
    (root / "hub" / "thesis.tex").write_text("\\documentclass{thesis}")
    return ["models.hub", "export", str(trm(root)), str(root / "hub"), "--overwrite"]


def _stability(root: Path, out: Path) -> list[str]:
    pf = root / "p.sdm"
    pf.write_text(PUZZLE + "\n")
    return ["interp", "stability", "--ckpt", str(trm(root)), "--puzzle-file", str(pf), "--out", str(out)]


def _stability_user_report(root: Path) -> list[str]:
    (root / "stab").mkdir()
    (root / "stab" / "report.md").write_text("my notes")
    return _stability(root, root / "stab")


def _stability_out_symlink(root: Path) -> list[str]:
    (root / "elsewhere").mkdir()
    os.symlink(root / "elsewhere", root / "link")
    return _stability(root, root / "link")


def _trace_user_file(name: str) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        (root / "t").mkdir()
        (root / "t" / name).write_text("the user's own")
        return ["interp", "trace", "--ckpt", str(trm(root)), "--puzzle", PUZZLE, "--out", str(root / "t"), "--overwrite"]
    return setup


def _forged_grid(d: Path) -> None:
    from interp.tracing.store import write_manifest

    m = json.loads((d / "manifest.json").read_text())
    m["meta"]["task"] = {"name": "sudoku", "grid": [10 ** 6, 10 ** 6]}
    write_manifest(d, m)  # the metadata hash recomputed, as a forger would


CORPUS: list[Case] = [
    Case("config_hidden_list", _model_field("hidden_size", [32])),
    Case("config_eps_string", _model_field("rms_norm_eps", "tiny")),
    Case("config_seq_len_1e9", _model_field("seq_len", 10 ** 9)),
    Case("config_H_cycles_1e7", _model_field("H_cycles", 10 ** 7)),
    Case("config_halt_max_steps_1e8", _model_field("halt_max_steps", 10 ** 8)),
    Case("config_L_cycles_0", _model_field("L_cycles", 0)),
    Case("config_rope_theta_0", _model_field("rope_theta", 0)),
    Case("config_attn_backend", _model_field("attn_backend", "magic")),
    Case("config_bool_hidden", _model_field("hidden_size", True)),
    Case("config_fifo", _fifo_config),
    Case("weights_fifo", _fifo_weights),
    Case("config_dev_zero", _devzero_config),
    Case("config_deep_json", _deep_json),
    Case("weights_50mb_header", _big_header),
    Case("weights_bool", _weights_dtype("bool")),
    Case("weights_int8", _weights_dtype("int8")),
    Case("train_yaml_alias_bomb", _yaml_bomb),
    Case("train_L_cycles_0", _train_cfg({"L_cycles": 0})),
    Case("train_seq_len_list", _train_cfg({"seq_len": [81]})),
    Case("official_yaml_list", _official_yaml("[32, 32]")),
    Case("official_yaml_string", _official_yaml("wide")),
    Case("trace_flipped_chunk", _show(_flip)),
    Case("trace_swapped_chunks", _show(_swap)),
    Case("trace_duplicated_chunk", _show(_dup)),
    Case("trace_listed_twice", _show(_listed_twice)),
    Case("trace_edited_grid", _show(lambda d: _edit_manifest(d, lambda m: m["meta"].__setitem__(
        "task", {"name": "sudoku", "grid": [4, 4]})))),
    Case("trace_edited_n_chunks", _show(lambda d: _edit_manifest(d, lambda m: m.__setitem__("n_chunks", 7)))),
    Case("trace_manifest_deep", _show(lambda d: (d / "manifest.json").write_text("{\"a\":" * 5000 + "1" + "}" * 5000))),
    Case("trace_manifest_types", _show(lambda d: _edit_manifest(d, lambda m: m.__setitem__("n_puzzles", "4")))),
    Case("trace_overwrite_notebook", _trace_overwrite_notebook, foreign=("t/analysis.ipynb",)),
    Case("trace_overwrite_webapp", _trace_overwrite_webapp, foreign=("webapp/manifest.json", "webapp/index.html")),
    Case("trace_out_symlink", _out_symlink),
    Case("convert_nonempty_dir", _convert_nonempty, foreign=("dest/thesis.tex",)),
    Case("demo_user_puzzles", _demo_puzzles, foreign=("demo/puzzles.sdm",)),
    Case("demo_bad_ckpt_writes_nothing", _demo_bad_ckpt),
    Case("guess_scale_user_dir", _guess_scale_user_dir, foreign=("gs/guess_scaling.csv",)),
    Case("report_user_dir", _report_user_dir, foreign=("rep/provenance.json", "rep/notes.md")),
    Case("train_foreign_metrics", _train_metrics, foreign=("run/metrics.jsonl",)),
    Case("eval_data_dir_file", _eval_data_dir, foreign=("secret.txt",)),
    Case("hub_export_overwrite_thesis", _hub_export_thesis, foreign=("hub/thesis.tex",)),
    Case("stability_user_report", _stability_user_report, foreign=("stab/report.md",)),
    Case("stability_out_symlink", _stability_out_symlink),
    Case("trace_user_viewer", _trace_user_file("viewer.html"), foreign=("t/viewer.html",)),
    Case("trace_user_attention_csv", _trace_user_file("attention_mass.csv"), foreign=("t/attention_mass.csv",)),
    Case("trace_user_plotly", _trace_user_file("plotly.min.js"), foreign=("t/plotly.min.js",)),
    Case("trace_forged_grid_rehashed", _show(_forged_grid)),
]
# issue 26: options, loaders, third-party configs, the Hub cache, HRM-Text, the remaining old cases
CORPUS += [Case(name, setup, raw=True, env=env, must=must, no_out=True) for name, setup, env, must in ISSUE_26]


# ----------------------------------------------------------------------------- running
def _digest(root: Path, names: tuple[str, ...]) -> dict[str, str | None]:
    return {n: hashlib.sha256((root / n).read_bytes()).hexdigest() if (root / n).is_file() else None for n in names}


def run_case(case: Case, base: Path, timeout: float = 120.0) -> tuple[bool, str]:
    """(clean, why) for one case, in its own folder under ``base`` (sharing ``base/_base``)."""
    root = base / case.name
    root.mkdir(parents=True, exist_ok=True)
    shared = base / "_base"
    shared.mkdir(exist_ok=True)
    if not (root / "_base").exists():
        os.symlink(shared, root / "_base")  # the tiny checkpoint and trace are built once per corpus
    argv = case.setup(root)
    before = _digest(root, case.foreign)
    extra = case.env(root) if callable(case.env) else (case.env or {})
    try:
        r = subprocess.run([sys.executable, *(argv if case.raw else ["-m", *argv])], capture_output=True, text=True,
                           timeout=timeout, env={**_env(), **extra}, cwd=root, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, f"hang (> {timeout:.0f} s)"
    err = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith(("warning:", "note:"))]
    if "Traceback" in r.stderr:
        return False, f"traceback: {err[-1][:100] if err else ''}"
    if r.returncode not in case.ok_codes:
        return False, f"exit {r.returncode}"
    if len(err) > 1:
        return False, f"{len(err)} stderr lines"
    if _digest(root, case.foreign) != before:
        return False, "foreign file changed"
    if case.name == "demo_bad_ckpt_writes_nothing" and (root / "demo_new").exists():
        return False, "output created before the checkpoint was rejected"
    if case.no_out and r.returncode == 2 and (root / "out").exists():
        return False, "refused, but wrote its output folder first"
    if case.must is not None and not any(case.must in ln for ln in err):
        return False, f"error line does not name {case.must!r}: {err[0][:80] if err else '(none)'}"
    return True, err[0][:110] if err else "handled"


def main(argv: list[str] | None = None) -> int:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", type=nonempty_str, help="comma-separated case names")
    ap.add_argument("--timeout", type=bounded_float(1.0, 3600.0), default=120.0)
    ap.add_argument("--keep", action="store_true", help="keep the corpus folder")
    args = ap.parse_cli(argv)
    cases = [c for c in CORPUS if not args.only or c.name in args.only.split(",")]
    base = Path(tempfile.mkdtemp(prefix="red_team-"))
    clean = 0
    try:
        for c in cases:
            ok, why = run_case(c, base, args.timeout)
            clean += ok
            print(f"{'clean' if ok else 'MISHANDLED':<10} {c.name:<30} {why}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\n| tried | clean | mishandled |\n|---|---|---|\n| {len(cases)} | {clean} | {len(cases) - clean} |")
    return 0 if clean == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())

"""``interp report``: build a report directory from a YAML/JSON config of runs, analyses and tables.

    interp report --config reports/slow_ablation.yaml --out reports/out/slow_ablation
    python -m interp.report --config ... --out ...        # the same, without the ``interp`` entry point

Config (relative paths are resolved against the config file's folder)::

    title: Slow-module ablation
    alpha: 0.05                      # 95% intervals
    runs:                            # checkpoints to trace (optional)
      - name: hrm-lm-n2t2
        checkpoint: ../zoo/hrm-lm-pydoc
        data: ../data/pydoc          # puzzle dataset dir (split dir or root) or text dataset dir (val.bin)
        # puzzle_file: puzzles.sdm   # instead of data: a Sudoku/maze puzzle file
        limit: 64                    # puzzles / text windows
        segments: null               # default: the model's evaluation depth
        labels: {seed: 0}            # constant columns added to this run's rows
    analyses: [summary, jumps, alignment, fixed_points, gates, ablation, viewer]   # default: all that apply
    ablation: {target: slow, modes: [freeze_init]}
    viewer: {puzzles: [0]}
    tables:
      - kind: slow_ablation          # summary | slow_ablation | gate_alignment | grad_arch | cgar
        options: {settings: [N, T]}  # builder arguments (interp.report_tables)
      - kind: cgar
        source: results/cgar.csv     # a tidy CSV / JSON / JSONL file instead of the traced runs
      - kind: grad_arch
        training_runs:               # or training run directories (metrics.jsonl: last eval + wall time)
          - {dir: runs/hrm-1step-s0, arch: HRM, grad_mode: one_step, seed: 0}

Output::

    report.md                    tables, figure links, run list
    tables/<name>.{md,tex,csv}   formatted tables and their numbers (mean, ci_low, ci_high, n)
    figures/<name>.{png,svg}     matplotlib figures
    html/<name>.html             interactive Plotly views (plotly.js embedded, offline)
    data/<run>/*.csv             the tidy per-puzzle / per-step tables every number comes from
    commands.txt                 the exact command that built the report
    provenance.json              versions, config, checkpoint and input SHA-256 hashes
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shlex
import shutil
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .atomic import atomic_write_text
from .report_tables import BUILDERS, ReportError, ReportTable, gate_phase_rows, puzzle_rows, training_run_row

ANALYSES = ("summary", "jumps", "alignment", "fixed_points", "gates", "ablation", "probes", "trajectories", "viewer")
DEFAULT_ANALYSES = ("summary", "jumps", "alignment", "fixed_points", "gates", "viewer")
TABLE_KINDS = tuple(BUILDERS)
PACKAGES = ("recurse-interp", "torch", "numpy", "pandas", "safetensors", "plotly", "matplotlib", "scikit-learn",
            "scipy", "pyyaml")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ----------------------------------------------------------------------------- config
@dataclass
class RunSpec:
    name: str
    checkpoint: Path
    data: Path | None = None
    split: str = "test"
    puzzle_file: Path | None = None
    task: str | None = None
    limit: int | None = 32
    segments: int | None = None
    labels: dict[str, Any] = field(default_factory=dict)


@dataclass
class TableSpec:
    kind: str
    name: str
    source: Path | None = None
    training_runs: list[dict[str, Any]] = field(default_factory=list)
    runs: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReportConfig:
    title: str
    path: Path | None
    raw: dict[str, Any]
    runs: list[RunSpec]
    analyses: list[str] | None
    tables: list[TableSpec]
    alpha: float = 0.05
    ablation: dict[str, Any] = field(default_factory=dict)
    viewer: dict[str, Any] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64


def _positive_int(v: Any, what: str, allow_none: bool = True) -> int | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ReportError(f"{what} must be a positive integer, got {v!r}")
    return v


def _mapping(v: Any, what: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ReportError(f"{what} must be a mapping, got {type(v).__name__}")
    return dict(v)


def parse_config(raw: dict[str, Any], base: Path | None = None, path: Path | None = None) -> ReportConfig:
    """Validate a config mapping (see the module docstring); relative paths resolve against ``base``."""
    if not isinstance(raw, dict):
        raise ReportError(f"the report config must be a mapping at the top level, got {type(raw).__name__}")
    known = {"title", "alpha", "runs", "analyses", "tables", "ablation", "viewer", "probes", "batch_size"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ReportError(f"unknown config key(s) {unknown}; known: {sorted(known)}")
    base = base or Path.cwd()

    def res(p: Any, what: str) -> Path:
        if not isinstance(p, str) or not p:
            raise ReportError(f"{what} must be a path string, got {p!r}")
        q = Path(os.path.expanduser(p))
        return q if q.is_absolute() else (base / q)

    runs = []
    names: set[str] = set()
    for i, r in enumerate(raw.get("runs") or []):
        if not isinstance(r, dict):
            raise ReportError(f"runs[{i}] must be a mapping, got {type(r).__name__}")
        bad = sorted(set(r) - {"name", "checkpoint", "data", "split", "puzzle_file", "task", "limit", "segments",
                               "labels"})
        if bad:
            raise ReportError(f"runs[{i}]: unknown key(s) {bad}")
        name = r.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ReportError(f"runs[{i}].name must be a simple name (letters, digits, _ . -), got {name!r}")
        if name in names:
            raise ReportError(f"run name {name!r} is used twice")
        names.add(name)
        if "checkpoint" not in r:
            raise ReportError(f"run {name!r} has no checkpoint")
        if (r.get("data") is None) == (r.get("puzzle_file") is None):
            raise ReportError(f"run {name!r} needs exactly one of data (dataset directory) or puzzle_file")
        runs.append(RunSpec(
            name=name, checkpoint=res(r["checkpoint"], f"run {name!r} checkpoint"),
            data=res(r["data"], f"run {name!r} data") if r.get("data") is not None else None,
            split=str(r.get("split", "test")),
            puzzle_file=res(r["puzzle_file"], f"run {name!r} puzzle_file") if r.get("puzzle_file") is not None else None,
            task=r.get("task"), limit=_positive_int(r.get("limit", 32), f"run {name!r} limit"),
            segments=_positive_int(r.get("segments"), f"run {name!r} segments"),
            labels=_mapping(r.get("labels"), f"run {name!r} labels"),
        ))
    analyses = raw.get("analyses")
    if analyses is not None:
        if isinstance(analyses, str):
            analyses = [analyses]
        if not isinstance(analyses, list) or not all(isinstance(a, str) for a in analyses):
            raise ReportError(f"analyses must be a list of names, got {analyses!r}")
        bad = [a for a in analyses if a not in ANALYSES]
        if bad:
            raise ReportError(f"unknown analyses {bad}; choose from {', '.join(ANALYSES)}")
    tables = []
    used: set[str] = set()
    for i, t in enumerate(raw.get("tables") or []):
        if isinstance(t, str):
            t = {"kind": t}
        if not isinstance(t, dict):
            raise ReportError(f"tables[{i}] must be a mapping or a kind name, got {type(t).__name__}")
        bad = sorted(set(t) - {"kind", "name", "source", "training_runs", "runs", "options"})
        if bad:
            raise ReportError(f"tables[{i}]: unknown key(s) {bad}")
        kind = t.get("kind")
        if kind not in TABLE_KINDS:
            raise ReportError(f"tables[{i}].kind must be one of {', '.join(TABLE_KINDS)}, got {kind!r}")
        if t.get("source") is not None and t.get("training_runs"):
            raise ReportError(f"tables[{i}]: give source or training_runs, not both")
        name = t.get("name") or kind
        if not isinstance(name, str) or not _NAME.match(name):
            raise ReportError(f"tables[{i}].name must be a simple name, got {name!r}")
        if name in used:
            raise ReportError(f"table name {name!r} is used twice (set name: for one of them)")
        used.add(name)
        tr_runs = []
        for j, d in enumerate(t.get("training_runs") or []):
            if not isinstance(d, dict) or "dir" not in d:
                raise ReportError(f"tables[{i}].training_runs[{j}] must be a mapping with a dir")
            tr_runs.append({**d, "dir": res(d["dir"], f"tables[{i}].training_runs[{j}].dir")})
        sel = t.get("runs")
        if sel is not None:
            missing = [s for s in sel if s not in names]
            if missing:
                raise ReportError(f"tables[{i}] names unknown run(s) {missing}")
        tables.append(TableSpec(kind, name, res(t["source"], f"tables[{i}].source") if t.get("source") else None,
                                tr_runs, sel, _mapping(t.get("options"), f"tables[{i}].options")))
    alpha = raw.get("alpha", 0.05)
    if not isinstance(alpha, (int, float)) or not 0 < float(alpha) < 1:
        raise ReportError(f"alpha must lie in (0, 1), got {alpha!r}")
    if not runs and not tables:
        raise ReportError("the config has neither runs nor tables: nothing to report")
    return ReportConfig(
        title=str(raw.get("title") or "Report"), path=path, raw=raw, runs=runs, analyses=analyses, tables=tables,
        alpha=float(alpha), ablation=_mapping(raw.get("ablation"), "ablation"),
        viewer=_mapping(raw.get("viewer"), "viewer"), probes=_mapping(raw.get("probes"), "probes"),
        batch_size=_positive_int(raw.get("batch_size", 64), "batch_size", allow_none=False),
    )


def load_config(path: str | os.PathLike) -> ReportConfig:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file."""
    p = Path(path)
    if not p.is_file():
        raise ReportError(f"config file not found: {p}")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as e:  # yaml.YAMLError / json.JSONDecodeError: one line naming the file
        raise ReportError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'} "
                          f"({' '.join(str(e).split())[:200]})") from None
    return parse_config(raw, p.resolve().parent, p.resolve())


# ----------------------------------------------------------------------------- inputs of a run
def _text_windows(d: Path, split: str, seq_len: int, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    meta = json.loads((d / "meta.json").read_text())
    name = "val" if split in ("test", "val") else split
    f = d / f"{name}.bin"
    if not f.is_file():
        raise ReportError(f"text dataset {d} has no {f.name}")
    dtype = np.dtype(meta.get("dtype", "uint16"))
    toks = np.memmap(f, dtype=dtype, mode="r")
    n_win = (len(toks) - 1) // seq_len
    if n_win < 1:
        raise ReportError(f"{f} holds {len(toks)} tokens, fewer than one window of {seq_len + 1}")
    n = min(n_win, limit or n_win)
    starts = np.linspace(0, len(toks) - seq_len - 1, n).round().astype(np.int64)
    x = np.stack([np.asarray(toks[s:s + seq_len]) for s in starts]).astype(np.int64)
    y = np.stack([np.asarray(toks[s + 1:s + seq_len + 1]) for s in starts]).astype(np.int64)
    return x, y


def run_inputs(run: RunSpec, model: Any, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None, dict | None]:
    """(inputs, labels, task) of a run: a puzzle dataset, a text dataset or a puzzle file."""
    if run.puzzle_file is not None:
        from tasks.puzzles import read_puzzles, resolve_task

        task = resolve_task(meta["model"], meta.get("task"), run.task)
        batch = read_puzzles(task, None, str(run.puzzle_file), run.limit)
        return batch.inputs, batch.labels, {"name": task.name, "grid": list(task.grid)}
    d = run.data
    if d is None or not d.is_dir():
        raise ReportError(f"run {run.name!r}: data directory not found: {d}")
    if (d / "meta.json").exists() and not (d / "dataset.json").exists():
        return (*_text_windows(d, run.split, int(model.cfg.seq_len), run.limit), {"name": "text"})
    from .storage import open_data

    src = open_data(str(d), split=run.split)
    n = len(src) if run.limit is None else min(len(src), run.limit)
    x, y, _ = src.slice(0, n)
    task = src.task
    if isinstance(task, str):
        task = {"name": task}
    return x, y, task


# ----------------------------------------------------------------------------- per-run analyses
@dataclass
class RunResult:
    name: str
    family: str
    checkpoint: dict[str, Any]
    n: int
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)  # tidy tables (also written as CSV)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (title, relative path base)
    html: list[tuple[str, str]] = field(default_factory=list)  # (title, relative path)
    notes: list[str] = field(default_factory=list)
    labels: dict[str, Any] = field(default_factory=dict)


def auto_labels(run: RunSpec, model: Any) -> dict[str, Any]:
    """Columns every tidy row of a run gets: run, family, and the settings the seed tables group by."""
    cfg = model.cfg
    fam = getattr(cfg, "family", type(model).__name__.lower())
    out: dict[str, Any] = {"run": run.name, "family": fam}
    if fam == "hrm_lm":
        out.update({"N": int(cfg.slow_period), "T": int(cfg.slow_updates)})
    else:
        out["arch"] = fam.upper()
        if hasattr(cfg, "grad_mode"):
            out["grad_mode"] = cfg.grad_mode
    out.update(run.labels)
    return out


def _state_plan(cfg: ReportConfig, wanted: set[str], lm: bool, n: int) -> tuple[Any, list[int], list[int]]:
    viewer_p = [int(p) for p in cfg.viewer.get("puzzles", [0])]
    bad = [p for p in viewer_p if not 0 <= p < n]
    if bad:
        raise ReportError(f"viewer puzzles {bad} are outside the {n} traced puzzles")
    keep = set(viewer_p) if "viewer" in wanted else set()
    if wanted & {"probes", "trajectories"}:
        keep |= set(range(min(n, int(cfg.probes.get("puzzles", 16)))))
    if not keep:
        return "summary", [], viewer_p
    return ("all" if lm else ["answer"]), sorted(keep), viewer_p


def analyse_run(run: RunSpec, cfg: ReportConfig, out: Path, progress: bool = False) -> RunResult:
    """Load, trace and analyse one run; writes its CSV/figure/HTML files under ``out``; returns what it made."""
    import torch

    from models.checkpoint import load_checkpoint

    from .analyses import critical_steps, gate_statistics, hl_alignment
    from .report_figures import (
        gate_stats_plot,
        hl_cosine_plot,
        jump_histogram_plot,
        probe_curve_plot,
        residual_plot,
        save_figure,
        step_strip_plot,
        trajectory_plot,
    )
    from .tracer import file_sha256, trace
    from .viewer import write_html, write_viewer
    from .viewer_dataset import (
        gate_stats_figure,
        hl_cosine_figure,
        jump_histogram_figure,
        probe_accuracy_figure,
        residual_figure,
    )

    torch.manual_seed(0)
    model, meta = load_checkpoint(run.checkpoint)
    model.eval()
    weights = run.checkpoint / "model.safetensors"
    ck = {"path": str(run.checkpoint), "model.safetensors_sha256": file_sha256(weights),
          "config.json_sha256": file_sha256(run.checkpoint / "config.json"), "family": meta["model"].get("family")}
    x, y, task = run_inputs(run, model, meta)
    lm = ck["family"] == "hrm_lm"
    wanted = set(cfg.analyses if cfg.analyses is not None else DEFAULT_ANALYSES)
    if cfg.analyses is None and cfg.ablation:
        wanted.add("ablation")
    states, state_puzzles, viewer_p = _state_plan(cfg, wanted, lm, len(x))
    labels = auto_labels(run, model)
    res = RunResult(run.name, ck["family"], ck, len(x), labels=labels)
    tr = trace(model, x, y, n_segments=run.segments, states=states, state_puzzles=state_puzzles or None,
               batch_size=cfg.batch_size, task=task, checkpoint=run.checkpoint, progress=progress)
    data_dir, fig_dir, html_dir = out / "data" / run.name, out / "figures", out / "html"
    tag = run.name

    def fig(key: str, title: str, static: Any, interactive: Any) -> None:
        save_figure(static, fig_dir / f"{tag}_{key}")
        res.figures.append((f"{run.name}: {title}", f"figures/{tag}_{key}"))
        if interactive is not None:
            write_html(interactive, html_dir / f"{tag}_{key}.html")
            res.html.append((f"{run.name}: {title}", f"html/{tag}_{key}.html"))

    with warnings.catch_warnings():  # all-NaN columns (e.g. a gate that never fires at a step) are expected
        warnings.simplefilter("ignore", RuntimeWarning)
        res.frames["steps"] = tr.summary("step")
    if "summary" in wanted and tr.labelled:
        res.frames["puzzles"] = puzzle_rows(tr, **labels)
    if "jumps" in wanted and tr.labelled and not lm:
        cs = critical_steps(tr)
        res.frames["critical_steps"] = cs.assign(**labels)
        fig("jumps", "critical steps and jumps", jump_histogram_plot(cs, tr.n_steps),
            jump_histogram_figure(cs, tr.n_steps))
    if "alignment" in wanted and len(tr.state_names) >= 2:
        try:
            al = hl_alignment(tr)
        except ValueError as e:
            res.notes.append(f"alignment skipped: {e}")
        else:
            res.frames["alignment"] = al.assign(**labels)
            fig("alignment", "slow/fast cosine per step", hl_cosine_plot(al), hl_cosine_figure(al))
    if "fixed_points" in wanted:
        from .fixed_point_probes import fixed_point_residual

        fp = fixed_point_residual(model, x, y, n_segments=run.segments, batch_size=cfg.batch_size)
        res.frames["fixed_point_residual"] = fp.assign(**labels)
        fig("residual", "fixed-point residual", residual_plot(fp), residual_figure(fp))
    if "gates" in wanted and tr.meta.get("gate_states"):
        gs = gate_statistics(tr)
        res.frames["gates_per_step"] = gs.per_step.assign(**labels)
        res.frames["gate_phase"] = gate_phase_rows(tr, **labels)
        if not gs.fusion.empty:
            res.frames["fusion"] = gs.fusion.assign(**labels)
        fig("gates", "gate statistics", gate_stats_plot(gs), gate_stats_figure(gs))
    if "ablation" in wanted:
        from .interventions import ablate

        target = cfg.ablation.get("target", "slow")
        rows = []
        for mode in cfg.ablation.get("modes", ["freeze_init"]):
            r = ablate(model, x, y, target=target, mode=mode, n_segments=run.segments, batch_size=cfg.batch_size)
            rows.append(r.table().assign(mode=mode, target=target, **labels))
        res.frames["ablation"] = pd.concat(rows, ignore_index=True)
    if "probes" in wanted and not lm:
        from probes.linear import probes_from_trace

        seg_end = tr.steps.index[tr.steps["segment_end"].astype(bool)].tolist()
        try:
            pr = probes_from_trace(tr, state=tr.answer_state, steps=cfg.probes.get("steps", seg_end),
                                   max_cells=int(cfg.probes.get("max_cells", 2000)),
                                   n_splits=int(cfg.probes.get("n_splits", 3)))
        except ValueError as e:
            res.notes.append(f"probes skipped: {e}")
        else:
            res.frames["probes"] = pr.assign(**labels)
            fig("probes", "linear probes per step", probe_curve_plot(pr), probe_accuracy_figure(pr))
    if "trajectories" in wanted:
        from probes.projection import pca_from_trace, trajectory_figure

        try:
            pc = pca_from_trace(tr, state=tr.slow_state or tr.answer_state)
        except ValueError as e:
            res.notes.append(f"trajectories skipped: {e}")
        else:
            res.frames["trajectories"] = pc.assign(**labels)
            fig("trajectories", "PCA trajectories", trajectory_plot(pc), trajectory_figure(pc))
    if "viewer" in wanted:
        for p in viewer_p:
            path = html_dir / f"{tag}_viewer_p{p}.html"
            write_viewer(tr, path, puzzle=p, model=model, max_frames=int(cfg.viewer.get("max_frames", 400)))
            res.html.append((f"{run.name}: step viewer, puzzle {p}", f"html/{path.name}"))
            if not lm:
                save_figure(step_strip_plot(tr, p, n_frames=int(cfg.viewer.get("strip_frames", 6)), model=model),
                            fig_dir / f"{tag}_steps_p{p}")
                res.figures.append((f"{run.name}: answer per step, puzzle {p}", f"figures/{tag}_steps_p{p}"))
    for key, df in res.frames.items():
        _write_csv(df, data_dir / f"{key}.csv")
    return res


# ----------------------------------------------------------------------------- tables
def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ReportError(f"table source not found: {path}")
    suf = path.suffix.lower()
    try:
        if suf == ".csv":
            return pd.read_csv(path)
        if suf == ".jsonl":
            return pd.read_json(path, lines=True)
        if suf == ".json":
            return pd.DataFrame(json.loads(path.read_text()))
        if suf in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError) as e:
        raise ReportError(f"cannot read table source {path}: {' '.join(str(e).split())[:200]}") from None
    raise ReportError(f"table source {path} must be .csv, .json, .jsonl or .parquet")


RUN_FRAME = {"summary": "puzzles", "slow_ablation": "ablation", "gate_alignment": "gate_phase",
             "grad_arch": "puzzles", "cgar": None}


def table_input(spec: TableSpec, results: list[RunResult]) -> pd.DataFrame:
    """The tidy DataFrame a table is built from: a file, training run directories, or the traced runs."""
    if spec.source is not None:
        return _read_table(spec.source)
    if spec.training_runs:
        return pd.DataFrame([training_run_row(str(d["dir"]), **{k: v for k, v in d.items() if k != "dir"})
                             for d in spec.training_runs])
    key = RUN_FRAME[spec.kind]
    if key is None:
        raise ReportError(f"table {spec.name!r} ({spec.kind}) needs a source file or training_runs")
    chosen = [r for r in results if spec.runs is None or r.name in spec.runs]
    parts = [r.frames[key] for r in chosen if key in r.frames]
    if not parts:
        hint = {"ablation": "add 'ablation' to analyses (and an ablation: section)",
                "gate_phase": "trace HRM-LM runs with the 'gates' analysis",
                "puzzles": "trace labelled runs with the 'summary' analysis"}[key]
        raise ReportError(f"table {spec.name!r} ({spec.kind}) has no input from the runs: {hint}")
    return pd.concat(parts, ignore_index=True)


def build_table(spec: TableSpec, df: pd.DataFrame, alpha: float) -> ReportTable:
    opts = dict(spec.options)
    opts.setdefault("alpha", alpha)
    if spec.kind == "slow_ablation" and "settings" not in opts:
        opts["settings"] = [c for c in ("N", "T") if c in df.columns] or ["run"]
    if spec.kind == "gate_alignment" and "settings" not in opts:
        opts["settings"] = [c for c in ("N", "T") if c in df.columns] or ["run"]
    if spec.kind == "grad_arch" and "value" not in opts and "exact_accuracy" not in df.columns and "exact" in df:
        opts["value"] = "exact"
    if spec.kind == "summary" and "group" not in opts and "run" not in df.columns:
        raise ReportError(f"table {spec.name!r}: summary needs a run column or options.group")
    try:
        table = BUILDERS[spec.kind](df, **opts)
    except TypeError as e:
        raise ReportError(f"table {spec.name!r}: bad options {sorted(spec.options)} ({e})") from None
    table.name = spec.name
    return table


# ----------------------------------------------------------------------------- writing
def _write_csv(df: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, df.to_csv(index=False))


def package_versions() -> dict[str, str | None]:
    import importlib.metadata as im

    out: dict[str, str | None] = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = im.version(p)
        except im.PackageNotFoundError:
            out[p] = None
    return out


def _git_commit(where: Path) -> str | None:
    import subprocess

    try:
        r = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0:
        return None
    return r.stdout.strip() or None


def _markdown(cfg: ReportConfig, results: list[RunResult], tables: list[ReportTable], created: str,
              command: str) -> str:
    lines = [f"# {cfg.title}", "", f"Generated {created} by `{command}`.", ""]
    if results:
        lines += ["## Runs", "", "| run | family | checkpoint | sha256 (model.safetensors) | n |", "|---|---|---|---|---:|"]
        for r in results:
            lines.append(f"| {r.name} | {r.family} | `{r.checkpoint['path']}` | "
                         f"`{r.checkpoint['model.safetensors_sha256'][:16]}…` | {r.n} |")
        lines.append("")
    if tables:
        lines += ["## Tables", ""]
        for t in tables:
            lines += [t.markdown(), f"(LaTeX: `tables/{t.name}.tex`, numbers: `tables/{t.name}.csv`)", ""]
    figs = [f for r in results for f in r.figures]
    if figs:
        lines += ["## Figures", ""]
        for title, base in figs:
            lines += [f"**{title}** ([SVG]({base}.svg))", "", f"![{title}]({base}.png)", ""]
    html = [h for r in results for h in r.html]
    if html:
        lines += ["## Interactive views", "", "Self-contained HTML (plotly.js embedded; open offline):", ""]
        lines += [f"- [{title}]({path})" for title, path in html]
        lines.append("")
    notes = [f"- {r.name}: {n}" for r in results for n in r.notes]
    if notes:
        lines += ["## Notes", "", *notes, ""]
    lines += ["## Provenance", "", "`commands.txt` (how to rebuild), `provenance.json` (versions, hashes, config), "
              "`data/<run>/*.csv` (every number above comes from these tables).", ""]
    return "\n".join(lines)


def build_report(cfg: ReportConfig, out: str | os.PathLike, command: str | None = None,
                 overwrite: bool = False, progress: bool = False) -> Path:
    """Build the report directory ``out`` from a parsed config; returns ``out``.

    ``out`` must be new, empty, or (with ``overwrite``) a previous report
    (one holding ``provenance.json``); it is filled in a temporary sibling
    folder and moved into place at the end, so an interrupted run leaves no
    half-written report.
    """
    from .tracer import file_sha256

    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ReportError(f"{out} exists and is not a directory")
        if any(out.iterdir()):
            if not overwrite:
                raise ReportError(f"{out} is not empty; pass --overwrite to replace a previous report")
            if not (out / "provenance.json").exists():
                raise ReportError(f"refusing to overwrite {out}: it is not empty and holds no report (provenance.json)")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        command = command or f"python -m interp.report --config {cfg.path} --out {out}"
        results = [analyse_run(r, cfg, work, progress) for r in cfg.runs]
        tables = []
        sources: dict[str, str] = {}
        for spec in cfg.tables:
            df = table_input(spec, results)
            if spec.source is not None:
                sources[str(spec.source)] = file_sha256(spec.source)
            t = build_table(spec, df, cfg.alpha)
            tables.append(t)
            atomic_write_text(work / "tables" / f"{t.name}.md", t.markdown())
            atomic_write_text(work / "tables" / f"{t.name}.tex", "% requires \\usepackage{booktabs}\n" + t.latex())
            _write_csv(t.numbers, work / "tables" / f"{t.name}.csv")
            _write_csv(df, work / "data" / "tables" / f"{t.name}_input.csv")
        atomic_write_text(work / "report.md", _markdown(cfg, results, tables, created, command))
        cwd = os.getcwd()
        atomic_write_text(work / "commands.txt", "\n".join([
            "# rebuild this report (run from the working directory below)",
            f"cd {shlex.quote(cwd)}",
            command,
            "",
        ]))
        prov = {
            "created": created,
            "command": command,
            "cwd": cwd,
            "argv": list(sys.argv),
            "git_commit": _git_commit(Path(__file__).resolve().parent),
            "versions": package_versions(),
            "platform": platform.platform(),
            "config_path": str(cfg.path) if cfg.path else None,
            "config_sha256": file_sha256(cfg.path) if cfg.path and cfg.path.is_file() else None,
            "config": cfg.raw,
            "checkpoints": {r.name: r.checkpoint for r in results},
            "table_sources_sha256": sources,
            "training_runs": {s.name: [str(d["dir"]) for d in s.training_runs] for s in cfg.tables if s.training_runs},
            "alpha": cfg.alpha,
            "ci": "Student-t interval of the mean across replicates (see interp.report_tables)",
        }
        atomic_write_text(work / "provenance.json", json.dumps(prov, indent=1, default=str) + "\n")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(work, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, out)
        mode = 0o777 & ~_umask()
        os.chmod(out, mode)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return out


def _umask() -> int:
    u = os.umask(0)
    os.umask(u)
    return u


# ----------------------------------------------------------------------------- command line
def cmd_report(args: argparse.Namespace) -> int:
    """Handler of ``interp report``."""
    cfg = load_config(args.config)
    prefix = getattr(args, "command_prefix", "interp report")
    command = prefix + " " + " ".join(shlex.quote(a) for a in
                                          ["--config", str(args.config), "--out", str(args.out)]
                                          + (["--overwrite"] if args.overwrite else []))
    out = build_report(cfg, args.out, command=command, overwrite=args.overwrite,
                       progress=sys.stderr.isatty())
    print(f"report written to {out} (open {out / 'report.md'})")
    return 0


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``report`` on an argparse subparsers object (``interp/cli.py`` build_parser calls this)."""
    p = subparsers.add_parser("report", help="build a report directory (tables, figures, HTML) from a config",
                              description="Build Markdown/LaTeX tables (mean ± 95% CI), PNG/SVG figures, "
                                          "interactive HTML and provenance from a YAML/JSON config.")
    p.add_argument("--config", required=True, help="report config (.yaml/.yml/.json); see interp/report.py")
    p.add_argument("--out", required=True, help="output directory (new or empty; --overwrite replaces a report)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report directory")
    p.set_defaults(func=cmd_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m interp.report``: the ``interp report`` subcommand on its own."""
    from .cli import EXIT_USAGE, _Parser, _UsageError, error_line

    parser = _Parser(prog="interp", description="Reports for recursive-model experiments.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    add_report_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "report":
        argv = ["report", *argv]
    try:
        args = parser.parse_args(argv)
        args.command_prefix = "python -m interp.report"
        return int(args.func(args) or 0)
    except _UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError, KeyError) as e:
        print(f"error: {error_line(e)}", file=sys.stderr)
        return EXIT_USAGE


__all__ = ["ReportConfig", "RunSpec", "TableSpec", "parse_config", "load_config", "build_report", "analyse_run",
           "table_input", "build_table", "add_report_parser", "cmd_report", "main", "ANALYSES", "DEFAULT_ANALYSES"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

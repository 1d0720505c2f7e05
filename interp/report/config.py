"""The ``interp report`` config: runs, analyses and tables, read from YAML/JSON and checked.

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
        options: {settings: [N, T]}  # builder arguments (interp.report.tables)
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

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.untrusted import read_json, safe_load_yaml
from interp.report.tables import BUILDERS, ReportError

ANALYSES = ("summary", "jumps", "alignment", "fixed_points", "gates", "ablation", "probes", "trajectories", "viewer")
DEFAULT_ANALYSES = ("summary", "jumps", "alignment", "fixed_points", "gates", "viewer")
TABLE_KINDS = tuple(BUILDERS)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ----------------------------------------------------------------------------- config
@dataclass
class RunSpec:
    name: str
    checkpoint: Path | str  # a path, or an hf:ORG/NAME spec (models.load.load_any reads both)
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
            name=name, checkpoint=(r["checkpoint"] if str(r["checkpoint"]).startswith("hf:")  # a Hub spec, not a path
                                   else res(r["checkpoint"], f"run {name!r} checkpoint")),
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
    if not p.exists():
        raise ReportError(f"config file not found: {p}")
    if p.suffix.lower() == ".json":
        raw = read_json(p, ReportError)  # bounded: a regular file, size, depth
    else:
        raw = safe_load_yaml(p, ReportError)
    return parse_config(raw, p.resolve().parent, p.resolve())


__all__ = ["ReportConfig", "RunSpec", "TableSpec", "parse_config", "load_config", "ANALYSES", "DEFAULT_ANALYSES",
           "TABLE_KINDS"]

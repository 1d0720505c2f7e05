"""Build a report directory: trace each configured run, analyse it, write tables, figures, HTML and provenance.

The config format is in :mod:`interp.report.config`; the command is ``interp report`` (:mod:`interp.cli.report`).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.atomic import atomic_write_text, replace_dir, temp_dir_beside
from common.hashing import file_sha256
from common.outputs import check_replaceable, record_outputs
from common.plotly_html import write_html
from common.untrusted import read_json
from interp.report.config import DEFAULT_ANALYSES, ReportConfig, RunSpec, TableSpec
from interp.report.tables import BUILDERS, ReportError, ReportTable, gate_phase_rows, puzzle_rows, training_run_row

PACKAGES = ("recurse-interp", "torch", "numpy", "pandas", "safetensors", "plotly", "matplotlib", "scikit-learn",
            "scipy", "pyyaml")


# ----------------------------------------------------------------------------- inputs of a run
def _text_windows(d: Path, split: str, seq_len: int, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    meta = read_json(d / "meta.json", ReportError)
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
    from interp.puzzle_inputs import load_puzzle_inputs

    if run.puzzle_file is not None:
        found = load_puzzle_inputs(meta, puzzle_file=run.puzzle_file, limit=run.limit, task=run.task)
        return found.inputs, found.labels, found.task
    d = run.data
    if d is None or not d.is_dir():
        raise ReportError(f"run {run.name!r}: data directory not found: {d}")
    if (d / "meta.json").exists() and not (d / "dataset.json").exists():
        return (*_text_windows(d, run.split, int(model.cfg.seq_len), run.limit), {"name": "text"})
    found = load_puzzle_inputs(meta, data=d, split=run.split, limit=run.limit)
    return found.inputs, found.labels, found.task


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


def checkpoint_record(ckpt: str | Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Path, family and SHA-256 hashes of a run's checkpoint, in whichever format ``load_any`` read it.

    Ours: ``model.safetensors`` and ``config.json``. An official HRM/TRM checkpoint:
    its weights file and ``all_config.yaml`` under the same keys. An ``hf:`` spec:
    the local folder it resolves to.
    """
    from models.hub import is_hub_spec, local_checkpoint

    p = Path(local_checkpoint(ckpt) if is_hub_spec(ckpt) else ckpt)
    src = meta.get("source") if meta.get("format") == "official" else None
    if isinstance(src, dict) and src.get("weights"):
        weights, config = Path(src["weights"]), Path(src.get("config_yaml") or p / "config.json")
    else:
        weights = p / "model.safetensors" if p.is_dir() else p
        config = (p if p.is_dir() else p.parent) / "config.json"
    return {"path": str(ckpt), "model.safetensors_sha256": file_sha256(weights) if weights.is_file() else None,
            "config.json_sha256": file_sha256(config) if config.is_file() else None,
            "family": meta["model"].get("family")}


def analyse_run(run: RunSpec, cfg: ReportConfig, out: Path, progress: bool = False, plotly_js: str = "file") -> RunResult:
    """Load, trace and analyse one run; writes its CSV/figure/HTML files under ``out``; returns what it made."""
    import torch

    from models.load import load_any
    from interp.tracing.tracer import trace

    torch.manual_seed(0)
    model, meta = load_any(run.checkpoint)
    model.eval()
    ck = checkpoint_record(run.checkpoint, meta)
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
    w = _RunWork(run, cfg, model, x, y, tr, res, labels, lm, viewer_p, out, plotly_js)
    with warnings.catch_warnings():  # all-NaN columns (e.g. a gate that never fires at a step) are expected
        warnings.simplefilter("ignore", RuntimeWarning)
        res.frames["steps"] = tr.summary("step")
    for name, step in ANALYSIS_STEPS:
        if name in wanted:
            step(w)
    for key, df in res.frames.items():
        _write_csv(df, w.data_dir / f"{key}.csv")
    return res


@dataclass
class _RunWork:
    """One run under analysis: its model, inputs, trace and result so far, and where its files go."""

    run: RunSpec
    cfg: ReportConfig
    model: Any
    x: np.ndarray
    y: np.ndarray | None
    tr: Any  # the run's Trace
    res: RunResult
    labels: dict[str, Any]
    lm: bool
    viewer_puzzles: list[int]
    out: Path
    plotly_js: str

    @property
    def data_dir(self) -> Path:
        return self.out / "data" / self.run.name

    @property
    def fig_dir(self) -> Path:
        return self.out / "figures"

    @property
    def html_dir(self) -> Path:
        return self.out / "html"

    def figure(self, key: str, title: str, static: Any, interactive: Any) -> None:
        """Write a figure as PNG/SVG (and, when given, its interactive twin as HTML) and list it in the result."""
        from interp.report.figures import save_figure

        tag = self.run.name
        save_figure(static, self.fig_dir / f"{tag}_{key}")
        self.res.figures.append((f"{self.run.name}: {title}", f"figures/{tag}_{key}"))
        if interactive is not None:
            write_html(interactive, self.html_dir / f"{tag}_{key}.html", plotly_js=self.plotly_js)
            self.res.html.append((f"{self.run.name}: {title}", f"html/{tag}_{key}.html"))


def _unless_skipped(w: _RunWork, what: str, compute: Any) -> Any:
    """``compute()``, or None with a note in the report when it refuses the run (``ValueError``)."""
    try:
        return compute()
    except ValueError as e:
        w.res.notes.append(f"{what} skipped: {e}")
        return None


def _summary(w: _RunWork) -> None:
    """Per-puzzle rows (labelled runs)."""
    if w.tr.labelled:
        w.res.frames["puzzles"] = puzzle_rows(w.tr, **w.labels)


def _jumps(w: _RunWork) -> None:
    """Critical steps and the jump histogram (labelled puzzle runs)."""
    from interp.analyses import critical_steps
    from interp.report.figures import jump_histogram_plot
    from interp.views.dataset_figures import jump_histogram_figure

    if not w.tr.labelled or w.lm:
        return
    cs = critical_steps(w.tr)
    w.res.frames["critical_steps"] = cs.assign(**w.labels)
    w.figure("jumps", "critical steps and jumps", jump_histogram_plot(cs, w.tr.n_steps),
             jump_histogram_figure(cs, w.tr.n_steps))


def _alignment(w: _RunWork) -> None:
    """Slow/fast cosine per step (models with two or more states)."""
    from interp.analyses import hl_alignment
    from interp.report.figures import hl_cosine_plot
    from interp.views.dataset_figures import hl_cosine_figure

    if len(w.tr.state_names) < 2:
        return
    al = _unless_skipped(w, "alignment", lambda: hl_alignment(w.tr))
    if al is not None:
        w.res.frames["alignment"] = al.assign(**w.labels)
        w.figure("alignment", "slow/fast cosine per step", hl_cosine_plot(al), hl_cosine_figure(al))


def _fixed_points(w: _RunWork) -> None:
    """The fixed-point residual of every segment."""
    from interp.interventions.fixed_point import fixed_point_residual
    from interp.report.figures import residual_plot
    from interp.views.dataset_figures import residual_figure

    fp = fixed_point_residual(w.model, w.x, w.y, n_segments=w.run.segments, batch_size=w.cfg.batch_size)
    w.res.frames["fixed_point_residual"] = fp.assign(**w.labels)
    w.figure("residual", "fixed-point residual", residual_plot(fp), residual_figure(fp))


def _gates(w: _RunWork) -> None:
    """Gate statistics per step and per phase, and fusion weights (models with gates)."""
    from interp.analyses import gate_statistics
    from interp.report.figures import gate_stats_plot
    from interp.views.dataset_figures import gate_stats_figure

    if not w.tr.meta.get("gate_states"):
        return
    gs = gate_statistics(w.tr)
    w.res.frames["gates_per_step"] = gs.per_step.assign(**w.labels)
    w.res.frames["gate_phase"] = gate_phase_rows(w.tr, **w.labels)
    if not gs.fusion.empty:
        w.res.frames["fusion"] = gs.fusion.assign(**w.labels)
    w.figure("gates", "gate statistics", gate_stats_plot(gs), gate_stats_figure(gs))


def _ablation(w: _RunWork) -> None:
    """The configured slow-state ablations, one table row per puzzle and mode."""
    from interp.interventions.ablation import ablate

    target = w.cfg.ablation.get("target", "slow")
    rows = []
    for mode in w.cfg.ablation.get("modes", ["freeze_init"]):
        r = ablate(w.model, w.x, w.y, target=target, mode=mode, n_segments=w.run.segments, batch_size=w.cfg.batch_size)
        rows.append(r.table().assign(mode=mode, target=target, **w.labels))
    w.res.frames["ablation"] = pd.concat(rows, ignore_index=True)


def _probes(w: _RunWork) -> None:
    """Linear probes of the answer state at the segment ends (puzzle runs)."""
    from interp.report.figures import probe_curve_plot
    from interp.views.dataset_figures import probe_accuracy_figure
    from probes.linear import probes_from_trace

    if w.lm:
        return
    tr, cfg = w.tr, w.cfg
    seg_end = tr.steps.index[tr.steps["segment_end"].astype(bool)].tolist()
    pr = _unless_skipped(w, "probes", lambda: probes_from_trace(
        tr, state=tr.answer_state, steps=cfg.probes.get("steps", seg_end),
        max_cells=int(cfg.probes.get("max_cells", 2000)), n_splits=int(cfg.probes.get("n_splits", 3))))
    if pr is not None:
        w.res.frames["probes"] = pr.assign(**w.labels)
        w.figure("probes", "linear probes per step", probe_curve_plot(pr), probe_accuracy_figure(pr))


def _trajectories(w: _RunWork) -> None:
    """PCA trajectories of the slow (or answer) state."""
    from interp.report.figures import trajectory_plot
    from probes.projection import pca_from_trace, trajectory_figure

    pc = _unless_skipped(w, "trajectories", lambda: pca_from_trace(w.tr, state=w.tr.slow_state or w.tr.answer_state))
    if pc is not None:
        w.res.frames["trajectories"] = pc.assign(**w.labels)
        w.figure("trajectories", "PCA trajectories", trajectory_plot(pc), trajectory_figure(pc))


def _viewer(w: _RunWork) -> None:
    """One step-viewer page for the chosen puzzles and, for puzzle runs, a static answer strip per puzzle."""
    from interp.report.figures import save_figure, step_strip_plot
    from interp.views.trace_viewer import write_viewer

    tag, viewer_p, cfg = w.run.name, w.viewer_puzzles, w.cfg
    path = w.html_dir / f"{tag}_viewer.html"  # one page, a picker switches between the puzzles
    write_viewer(w.tr, path, puzzle=viewer_p, model=w.model, max_frames=int(cfg.viewer.get("max_frames", 400)),
                 plotly_js=w.plotly_js)
    shown = ", ".join(str(p + 1) for p in viewer_p)
    w.res.html.append((f"{w.run.name}: step viewer, puzzle{'s' if len(viewer_p) > 1 else ''} {shown}",
                       f"html/{path.name}"))
    for p in viewer_p if not w.lm else []:
        save_figure(step_strip_plot(w.tr, p, n_frames=int(cfg.viewer.get("strip_frames", 6)), model=w.model),
                    w.fig_dir / f"{tag}_steps_p{p}")
        w.res.figures.append((f"{w.run.name}: answer per step, puzzle {p + 1}", f"figures/{tag}_steps_p{p}"))


# the analyses of a run, in the order they run (the name is what a report config lists)
ANALYSIS_STEPS = (("summary", _summary), ("jumps", _jumps), ("alignment", _alignment),
                  ("fixed_points", _fixed_points), ("gates", _gates), ("ablation", _ablation), ("probes", _probes),
                  ("trajectories", _trajectories), ("viewer", _viewer))


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
            return pd.DataFrame(read_json(path, ReportError, max_bytes=256 << 20))
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


def git_commit(where: Path) -> str | None:
    """The commit of the git checkout holding ``where`` (None outside one): provenance of reports and scripts."""
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
                         f"`{(r.checkpoint['model.safetensors_sha256'] or '-')[:16]}…` | {r.n} |")
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
                 overwrite: bool = False, progress: bool = False, plotly_js: str = "file") -> Path:
    """Build the report directory ``out`` from a parsed config; returns ``out``.

    ``out`` must be new, empty, or (with ``overwrite``) a previous report
    (one holding ``provenance.json``); it is filled in a temporary sibling
    folder and moved into place at the end, so an interrupted run leaves no
    half-written report.
    """

    out = Path(out)
    if out.exists() and out.is_dir() and not out.is_symlink() and any(out.iterdir()) and not overwrite:
        raise ReportError(f"{out} is not empty; pass --overwrite to replace a previous report")
    # only a report this tool wrote (provenance.json marker listing every file) is replaced; never user files
    check_replaceable(out, ReportError, "report")
    work = temp_dir_beside(out, "building")
    try:
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        command = command or f"python -m interp.report --config {cfg.path} --out {out}"
        results = [analyse_run(r, cfg, work, progress, plotly_js) for r in cfg.runs]
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
            "git_commit": git_commit(Path(__file__).resolve().parent),
            "versions": package_versions(),
            "platform": platform.platform(),
            "config_path": str(cfg.path) if cfg.path else None,
            "config_sha256": file_sha256(cfg.path) if cfg.path and cfg.path.is_file() else None,
            "config": cfg.raw,
            "checkpoints": {r.name: r.checkpoint for r in results},
            "table_sources_sha256": sources,
            "training_runs": {s.name: [str(d["dir"]) for d in s.training_runs] for s in cfg.tables if s.training_runs},
            "alpha": cfg.alpha,
            "ci": "Student-t interval of the mean across replicates (see interp.report.tables)",
        }
        record_outputs(work, prov)  # every file with its SHA-256: a later --overwrite replaces only those
        replace_dir(work, out)
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


__all__ = ["build_report", "analyse_run", "run_inputs", "table_input", "build_table", "package_versions"]

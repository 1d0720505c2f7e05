"""Result tables for reports: mean [95% CI] (n) per group, as Markdown and LaTeX.

Every builder takes a *tidy* DataFrame (one row per run, or per run and
puzzle) and returns a ``ReportTable`` holding both the numbers
(``.numbers``: one row per group and metric with mean, ci_low, ci_high, n) and
the formatted cells (``.display``), so tests can check the text against an
independent computation.

Intervals (``common.stats.interval``): Wilson score for 0/1 outcomes (exact
accuracy), otherwise a percentile bootstrap of the mean (``scipy.stats.bootstrap``),
which stays inside the observed range (a cross-entropy interval never goes below
zero); n = 1 gives no interval (shown as ``mean (n=1)``). ``unit`` names the
column(s) of the independent replicate (e.g. ``seed``): rows are first averaged
within each unit, then the interval is taken across units. Without ``unit``
every row is a replicate.

Builders for the experiments the project tracks:

* ``slow_ablation_table``  seed-003: loss increase when the Slow module is frozen, per (N, T) setting
* ``gate_alignment_table`` seed-003: gate means and cos(fast, slow) after a Slow firing vs other steps
* ``grad_arch_table``      seed-000: 2x2 gradient (1-step vs full BPTT) x architecture (HRM vs TRM)
* ``cgar_table``           CGAR: baseline / PDC / HSW / both, accuracy, wall time, speed-up
* ``summary_table``        any metrics per run (exact / token accuracy, loss)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from common.markdown import markdown_table  # the one copy; re-exported here
from common.stats import CI, interval
from common.untrusted import parse_json


class ReportError(ValueError):
    """A report config or result table that cannot be used; the message names the problem."""


# ----------------------------------------------------------------------------- formatting intervals
def format_ci(ci: CI, digits: int = 3, show_n: bool = True, scale: float = 1.0) -> str:
    """``0.812 [0.770, 0.850] (n=5)``; ``n/a`` without data; no interval for n = 1. ``scale`` multiplies (100 for percent).

    Intervals (Wilson, bootstrap) need not be symmetric, so both ends are printed.
    """
    if ci.n == 0 or not np.isfinite(ci.mean):
        return "n/a"
    s = f"{ci.mean * scale:.{digits}f}"
    if ci.n > 1 and np.isfinite(ci.low) and np.isfinite(ci.high):
        s += f" [{ci.low * scale:.{digits}f}, {ci.high * scale:.{digits}f}]"
    if show_n:
        s += f" (n={ci.n})"
    return s


# ----------------------------------------------------------------------------- the table object
@dataclass
class ReportTable:
    """A formatted result table: numbers for checks, strings for Markdown/LaTeX."""

    name: str
    title: str
    numbers: pd.DataFrame  # group columns + metric, mean, ci_low, ci_high, n
    display: pd.DataFrame  # formatted cells (strings), first columns = groups
    caption: str = ""
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        head = f"### {self.title}\n\n" if self.title else ""
        lines = [markdown_table(self.display)]
        tail = ""
        if self.caption:
            tail += f"\n\n{self.caption}"
        for n in self.notes:
            tail += f"\n\n{n}"
        return head + "\n".join(lines) + tail + "\n"

    def latex(self) -> str:
        disp = self.display
        cols = [str(c) for c in disp.columns]
        spec = "l" + "r" * (len(cols) - 1)
        body = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                " & ".join(_tex_escape(c) for c in cols) + r" \\", r"\midrule"]
        for _, row in disp.iterrows():
            body.append(" & ".join(_tex_escape(str(v)) for v in row.tolist()) + r" \\")
        body += [r"\bottomrule", r"\end{tabular}"]
        cap = self.title + (f". {self.caption}" if self.caption else "")
        if cap:
            body.append(rf"\caption{{{_tex_escape(cap)}}}")
        body.append(rf"\label{{tab:{_tex_label(self.name)}}}")
        body.append(r"\end{table}")
        return "\n".join(body) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "×": r"$\times$",
        "Δ": r"$\Delta$", "→": r"$\to$"}


def _tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def _tex_label(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-:" else "-" for ch in s)


# ----------------------------------------------------------------------------- shared aggregation
def _check(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ReportError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ReportError(f"{what}: the table lacks columns {missing} (has {list(df.columns)})")
    if df.empty:
        raise ReportError(f"{what}: the table is empty")


def _units(df: pd.DataFrame, unit: str | Sequence[str] | None) -> list[str]:
    if unit is None:
        return []
    cols = [unit] if isinstance(unit, str) else list(unit)
    return [c for c in cols if c in df.columns]


def aggregate(df: pd.DataFrame, groups: Sequence[str], metrics: Sequence[str],
              unit: str | Sequence[str] | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Tidy numbers: one row per (group..., metric) with mean, ci_low, ci_high, n.

    Rows are averaged within ``unit`` (when those columns exist) before the
    interval is taken across units. Group order follows first appearance.
    """
    groups = list(groups)
    units = _units(df, unit)
    work = df.copy()
    for m in metrics:
        work[m] = pd.to_numeric(work[m], errors="coerce").astype(np.float64)
    if units:
        work = work.groupby(groups + units, sort=False, dropna=False)[list(metrics)].mean().reset_index()
    rows = []
    keys = work[groups].drop_duplicates() if groups else pd.DataFrame([{}])
    for _, key in keys.iterrows():
        sel = np.ones(len(work), bool)
        for g in groups:
            sel &= (work[g] == key[g]).to_numpy() | (work[g].isna() & pd.isna(key[g])).to_numpy()
        for m in metrics:
            ci = interval(work.loc[sel, m], alpha)  # Wilson for 0/1 values, else a bootstrap of the mean
            rows.append({**{g: key[g] for g in groups}, "metric": m, "mean": ci.mean, "ci_low": ci.low,
                         "ci_high": ci.high, "n": ci.n})
    return pd.DataFrame(rows, columns=[*groups, "metric", "mean", "ci_low", "ci_high", "n"])


def _ci_of(numbers: pd.DataFrame, where: dict[str, Any], metric: str) -> CI:
    sel = numbers["metric"] == metric
    for k, v in where.items():
        sel &= numbers[k] == v
    r = numbers[sel]
    if r.empty:
        return CI(float("nan"), float("nan"), float("nan"), 0)
    r = r.iloc[0]
    return CI(float(r["mean"]), float(r["ci_low"]), float(r["ci_high"]), int(r["n"]))


def _wide(numbers: pd.DataFrame, groups: Sequence[str], metrics: Sequence[str], headers: dict[str, str],
          digits: int) -> pd.DataFrame:
    """Formatted cells: one row per group, one column per metric."""
    keys = numbers[list(groups)].drop_duplicates() if groups else pd.DataFrame([{}])
    rows = []
    for _, key in keys.iterrows():
        where = {g: key[g] for g in groups}
        base = {headers.get(g, g): _fmt_key(key[g]) for g in groups}
        rows.append({**base, **{headers.get(m, m): format_ci(_ci_of(numbers, where, m), digits) for m in metrics}})
    return pd.DataFrame(rows)


def _fmt_key(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


# ----------------------------------------------------------------------------- builders
def summary_table(df: pd.DataFrame, group: str | Sequence[str] = "run",
                  metrics: Sequence[str] = ("exact", "token_acc", "ce"), unit: str | Sequence[str] | None = None,
                  alpha: float = 0.05, digits: int = 3, title: str = "Results per run") -> ReportTable:
    """Mean ± CI of per-puzzle (or per-run) metrics for each run."""
    groups = [group] if isinstance(group, str) else list(group)
    metrics = [m for m in metrics if m in df.columns]
    if not metrics:
        raise ReportError("summary_table: none of the requested metric columns are in the table")
    _check(df, groups, "summary_table")
    num = aggregate(df, groups, metrics, unit, alpha)
    heads = {"exact": "exact accuracy", "token_acc": "token accuracy", "ce": "cross-entropy"}
    md = _wide(num, groups, metrics, heads, digits)
    return ReportTable("summary", title, num, md, _ci_caption(alpha, unit))


def _ci_caption(alpha: float, unit: Any) -> str:
    over = f"across {unit if isinstance(unit, str) else ', '.join(unit)}" if unit else "across rows (puzzles or runs)"
    return (f"Mean [{100 * (1 - alpha):.0f}% interval] {over}: Wilson for 0/1 outcomes, percentile bootstrap of the "
            "mean otherwise; n = number of replicates.")


def slow_ablation_table(df: pd.DataFrame, settings: Sequence[str] = ("N", "T"), mode: str | None = "mode",
                        loss: str = "ce", unit: str | Sequence[str] | None = "seed", alpha: float = 0.05,
                        digits: int = 3) -> ReportTable:
    """Seed-003: loss with the Slow module intact vs frozen, and the increase, per (N, T) setting (and mode).

    Input rows (per sequence or per run): the ``settings`` columns, optional
    ``mode`` (freeze_init / zero / mean), and either ``delta_<loss>`` or both
    ``<loss>_clean`` and ``<loss>_ablated`` (the columns of
    ``interp.interventions.ablation.ablate(...).table()``).
    """
    settings = [s for s in settings if s in df.columns] if settings else []
    if not settings:
        raise ReportError(f"slow_ablation_table: the table has none of the setting columns (have {list(df.columns)})")
    work = df.copy()
    delta = f"delta_{loss}"
    if delta not in work:
        _check(work, [f"{loss}_clean", f"{loss}_ablated"], "slow_ablation_table")
        work[delta] = work[f"{loss}_ablated"].astype(float) - work[f"{loss}_clean"].astype(float)
    groups = settings + ([mode] if mode and mode in work else [])
    metrics = [m for m in (f"{loss}_clean", f"{loss}_ablated", delta) if m in work]
    num = aggregate(work, groups, metrics, unit, alpha)
    heads = {f"{loss}_clean": f"{loss} (intact)", f"{loss}_ablated": f"{loss} (Slow frozen)", delta: f"Δ {loss}"}
    md = _wide(num, groups, metrics, heads, digits)
    return ReportTable("slow_ablation", "Slow-module ablation", num, md,
                       "Δ = loss with the Slow state frozen minus intact loss. " + _ci_caption(alpha, _units(df, unit)
                                                                                             or None))


def gate_alignment_table(df: pd.DataFrame, settings: Sequence[str] = ("N", "T"), phase: str = "phase",
                         metrics: Sequence[str] = ("gate_fast", "gate_slow", "cos_fast_slow"),
                         unit: str | Sequence[str] | None = "seed", alpha: float = 0.05,
                         digits: int = 3) -> ReportTable:
    """Seed-003: mean gate values and cos(fast, slow) at Slow firings, right after them, and on other steps.

    Input rows: per (setting, sequence, phase), e.g. from ``gate_phase_rows(trace)``
    (``phase`` in ``PHASES``; a boolean column such as ``after_slow`` also works).
    """
    settings = [s for s in settings if s in df.columns]
    metrics = [m for m in metrics if m in df.columns]
    _check(df, [phase], "gate_alignment_table")
    if not metrics:
        raise ReportError("gate_alignment_table: the table has none of the gate/alignment columns")
    work = df.copy()
    if work[phase].dtype == bool:
        work[phase] = work[phase].map(lambda v: PHASES[1] if v else PHASES[2])
    order = {p: i for i, p in enumerate(PHASES)}
    work = work.sort_values(phase, key=lambda s: s.map(lambda v: order.get(v, len(order))), kind="stable")
    groups = settings + [phase]
    num = aggregate(work, groups, metrics, unit, alpha)
    heads = {phase: "steps", "gate_fast": "Fast gate", "gate_slow": "Slow gate", "cos_fast_slow": "cos(fast, slow)"}
    md = _wide(num, groups, metrics, heads, digits)
    return ReportTable("gate_alignment", "Gates and fast/slow alignment", num, md,
                       "Slow fires: steps that update the Slow state; after: the step right after one. "
                       + _ci_caption(alpha, _units(df, unit) or None))


GRAD_LABELS = {"one_step": "1-step gradient", "last_recursion": "1-step gradient", "full_bptt": "full BPTT"}


def grad_arch_table(df: pd.DataFrame, value: str = "exact_accuracy", arch: str = "arch", grad: str = "grad_mode",
                    unit: str | Sequence[str] | None = "seed", alpha: float = 0.05, digits: int = 3,
                    percent: bool = False) -> ReportTable:
    """Seed-000 2x2: rows = architecture (HRM, TRM), columns = gradient (1-step, full BPTT); cells mean ± CI (n).

    Grad modes are labelled via ``GRAD_LABELS`` (``one_step`` and TRM's
    ``last_recursion`` are both the 1-step approximation).
    """
    _check(df, [value, arch, grad], "grad_arch_table")
    work = df.copy()
    work[grad] = work[grad].map(lambda g: GRAD_LABELS.get(str(g), str(g)))
    num = aggregate(work, [arch, grad], [value], unit, alpha)
    archs = list(dict.fromkeys(work[arch]))
    grads = sorted(dict.fromkeys(work[grad]), key=lambda g: (g != "1-step gradient", g != "full BPTT", g))
    scale = 100.0 if percent else 1.0
    md = []
    for a in archs:
        row = {"architecture": str(a)}
        for g in grads:
            row[g] = format_ci(_ci_of(num, {arch: a, grad: g}, value), digits, scale=scale)
        md.append(row)
    title = f"{value.replace('_', ' ')}: gradient x architecture"
    return ReportTable("grad_arch", title, num, pd.DataFrame(md), _ci_caption(alpha, _units(df, unit) or None))


CGAR_ORDER = ("baseline", "PDC", "HSW", "both")


def cgar_table(df: pd.DataFrame, variant: str = "variant", accuracy: str = "exact_accuracy",
               time: str = "wall_time_s", baseline: str = "baseline", unit: str | Sequence[str] | None = "seed",
               alpha: float = 0.05, digits: int = 3) -> ReportTable:
    """CGAR ablation: accuracy and wall time per variant (baseline / PDC / HSW / both), and the speed-up.

    Speed-up = mean baseline wall time / mean variant wall time (a ratio of
    means, shown without an interval).
    """
    _check(df, [variant, accuracy, time], "cgar_table")
    num = aggregate(df, [variant], [accuracy, time], unit, alpha)
    variants = sorted(dict.fromkeys(df[variant]),
                      key=lambda v: (CGAR_ORDER.index(v) if v in CGAR_ORDER else len(CGAR_ORDER), str(v)))
    base_t = _ci_of(num, {variant: baseline}, time).mean
    md, speed = [], []
    for v in variants:
        a, t = _ci_of(num, {variant: v}, accuracy), _ci_of(num, {variant: v}, time)
        sp = base_t / t.mean if np.isfinite(base_t) and t.mean > 0 else float("nan")
        speed.append({variant: v, "metric": "speedup", "mean": sp, "ci_low": np.nan, "ci_high": np.nan, "n": t.n})
        md.append({"variant": str(v), accuracy.replace("_", " "): format_ci(a, digits),
                   "wall time (s)": format_ci(t, 1), "speed-up": f"{sp:.2f}×" if np.isfinite(sp) else "n/a"})
    num = pd.concat([num, pd.DataFrame(speed)], ignore_index=True)
    notes = [] if np.isfinite(base_t) else [f"No {baseline!r} rows: speed-up not computed."]
    return ReportTable("cgar", "CGAR ablation", num, pd.DataFrame(md),
                       "Speed-up = baseline wall time / variant wall time (ratio of means). "
                       + _ci_caption(alpha, _units(df, unit) or None), notes)


# ----------------------------------------------------------------------------- tidy rows from traces / runs
def puzzle_rows(trace: Any, **labels: Any) -> pd.DataFrame:
    """Per-puzzle final metrics of a trace (exact, token_acc, ce) plus constant label columns (run, seed, ...)."""
    from interp.interventions.ablation import final_outputs

    out = final_outputs(trace)
    df = pd.DataFrame({"puzzle": np.arange(trace.n_puzzles)})
    for m in ("exact", "token_acc", "ce"):
        if m in out:
            df[m] = np.asarray(out[m], dtype=np.float64)
    for k, v in labels.items():
        df[k] = v
    return df


PHASES = ("Slow fires", "after Slow firing", "other steps")


def step_phases(steps: pd.DataFrame) -> np.ndarray:
    """Phase of every step (``PHASES``): it updates the Slow state, it directly follows such a step, or neither."""
    slow = steps["is_slow"].astype(bool).to_numpy()
    after = steps["after_slow"].astype(bool).to_numpy()
    return np.where(slow, PHASES[0], np.where(after, PHASES[1], PHASES[2]))


def gate_phase_rows(trace: Any, **labels: Any) -> pd.DataFrame:
    """Per sequence and phase (``step_phases``): mean Fast/Slow gate and cos(fast, slow) of an HRM-LM trace."""
    phases = step_phases(trace.steps)
    cols: dict[str, np.ndarray] = {}
    for g in ("gate_fast", "gate_slow"):
        if f"mean.{g}" in trace.metric_names:
            cols[g] = trace.metric(f"mean.{g}").astype(np.float64)
    names = trace.state_names
    if len(names) >= 2:
        for k in (f"cos.{names[0]}.{names[1]}", f"cos.{names[1]}.{names[0]}"):
            if k in trace.metric_names:
                cols["cos_fast_slow"] = trace.metric(k).astype(np.float64)
    if not cols:
        raise ReportError(f"a {trace.family} trace has no gate or cosine summaries")
    rows = []
    for i in range(trace.n_puzzles):
        for ph in PHASES:
            sel = phases == ph
            if not sel.any():
                continue
            r: dict[str, Any] = {"sequence": i, "phase": ph}
            for k, v in cols.items():
                x = v[i, sel]
                x = x[np.isfinite(x)]
                r[k] = float(x.mean()) if x.size else float("nan")
            rows.append({**r, **labels})
    return pd.DataFrame(rows)


def training_run_row(run_dir: str, **labels: Any) -> dict[str, Any]:
    """One row from a training run directory's ``metrics.jsonl``: the last evaluation and the wall time.

    ``wall_time_s`` = time of the last record minus time of the first record.
    ``train_time_s`` = the largest ``elapsed`` of the training records (seconds
    from the start of the training loop to the last logged step, as the
    trainer writes it; it counts evaluations inside the loop, and restarts
    on resume), NaN when no record has one. Unlike ``wall_time_s`` it includes the steps
    before the first log line and excludes the final evaluation.
    """
    from pathlib import Path

    p = Path(run_dir) / "metrics.jsonl"
    if not p.is_file():
        raise ReportError(f"{run_dir}: no metrics.jsonl (not a training run directory)")
    recs = []
    for i, line in enumerate(p.read_text().splitlines()):
        if line.strip():
            rec = parse_json(line, ReportError, f"{p}: line {i + 1}")
            if not isinstance(rec, dict):
                raise ReportError(f"{p}: line {i + 1} is not a JSON object")
            recs.append(rec)
    evals = [r for r in recs if r.get("split") == "eval"]
    if not evals:
        raise ReportError(f"{p}: no evaluation records (split == 'eval')")
    last = evals[-1]
    times = [r["time"] for r in recs if isinstance(r.get("time"), (int, float))]
    row = {k: v for k, v in last.items() if isinstance(v, (int, float, str, bool)) and k != "split"}
    row["wall_time_s"] = float(max(times) - min(times)) if len(times) >= 2 else float("nan")
    elapsed = [r["elapsed"] for r in recs if r.get("split") == "train" and isinstance(r.get("elapsed"), (int, float))]
    row["train_time_s"] = float(max(elapsed)) if elapsed else float("nan")
    row["run_dir"] = str(run_dir)
    row.update(labels)
    return row


BUILDERS = {
    "summary": summary_table,
    "slow_ablation": slow_ablation_table,
    "gate_alignment": gate_alignment_table,
    "grad_arch": grad_arch_table,
    "cgar": cgar_table,
}

__all__ = ["format_ci", "ReportTable", "ReportError", "aggregate", "summary_table",
           "slow_ablation_table", "gate_alignment_table", "grad_arch_table", "cgar_table", "puzzle_rows",
           "gate_phase_rows", "step_phases", "PHASES", "training_run_row", "BUILDERS", "GRAD_LABELS", "CGAR_ORDER"]

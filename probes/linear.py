"""Linear probes per step: can a logistic regression read a cell property off the state?

For every step ``t`` the samples are the cells of the state after that step
(``states[:, t]`` is [N puzzles, L cells, D]), the target one value per cell
(``probes.features``). Cross-validation splits by PUZZLE (``GroupKFold``), so
the cells of one puzzle never sit on both sides of a split, and every fit is
repeated with the training labels shuffled (the *control*): a probe only shows
something when its accuracy clearly beats the control, which measures what
the probe can fit from cell statistics alone.

Pipeline per fold: standardise features (fit on the training fold), then
scikit-learn ``LogisticRegression(C=C, max_iter=max_iter)`` (lbfgs; no
``penalty=``/``multi_class=``, deprecated or gone in scikit-learn 1.8+).
Convergence warnings are silenced on purpose: ``max_iter`` is kept modest for
speed and the control uses the very same budget.

Inputs are plain arrays, so probes run on traces loaded from disk:
``states_by_step`` is [N, T, L, D] (e.g. ``trace.states("z_H", drop_prefix=True)``),
a list of [N, L, D] arrays, or a dict ``{step: [N, L, D]}``; see
:func:`probes_from_trace` for the trace adapter.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import numpy as np
import pandas as pd

from common.labels import IGNORE_LABEL


COLUMNS = ["step", "target", "accuracy", "control_accuracy", "n_train", "n_test", "chance", "n_classes", "n_splits"]


class ProbeError(ValueError):
    """Probe inputs with the wrong shape or too little data; the message names the problem."""


# --------------------------------------------------------------------------- splits


def group_splits(groups: np.ndarray, n_splits: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) sample indices from ``GroupKFold``: no group appears on both sides of a split."""
    from sklearn.model_selection import GroupKFold

    g = np.asarray(groups)
    n_groups = len(np.unique(g))
    if n_groups < 2:
        raise ProbeError(f"need samples from at least 2 puzzles (groups) to split by puzzle, got {n_groups}")
    k = min(int(n_splits), n_groups)
    if k < 2:
        raise ProbeError(f"n_splits must be >= 2, got {n_splits}")
    return list(GroupKFold(n_splits=k).split(np.zeros((len(g), 1)), groups=g))


# --------------------------------------------------------------------------- one probe


def _fit_predict(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, C: float, max_iter: int, seed: int) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    classes = np.unique(y_train)
    if len(classes) == 1:  # nothing to learn: predict the only class seen
        return np.full(len(X_test), classes[0])
    scaler = StandardScaler().fit(X_train)
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(scaler.transform(X_train), y_train)
        return clf.predict(scaler.transform(X_test))


def _blas_threads(n: int | None):
    """Limit BLAS threads (many small fits run several times faster single-threaded)."""
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(n), user_api="blas")


def probe_step(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    n_splits: int = 5,
    C: float = 1.0,
    max_iter: int = 200,
    seed: int = 0,
    control: bool = True,
    blas_threads: int | None = 1,
) -> dict[str, Any]:
    """Cross-validated accuracy of one probe: ``X`` [S, D], ``y`` [S], ``groups`` [S] (puzzle of each sample).

    Accuracy pools every held-out sample (each is tested once). The control
    permutes the labels inside each training fold and scores on the true test labels.
    ``blas_threads``: BLAS thread cap during fits (None leaves it alone).
    """
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    g = np.asarray(groups)
    if X.ndim != 2 or y.shape != (len(X),) or g.shape != (len(X),):
        raise ProbeError(f"X must be [S, D] with y and groups [S]; got {X.shape}, {y.shape}, {g.shape}")
    if not np.isfinite(X).all():
        raise ProbeError("states contain NaN or inf")
    rng = np.random.default_rng(seed)
    splits = group_splits(g, n_splits)
    right = right_ctrl = n_test = 0
    n_train = []
    with _blas_threads(blas_threads):
        for train, test in splits:
            pred = _fit_predict(X[train], y[train], X[test], C, max_iter, seed)
            right += int((pred == y[test]).sum())
            if control:
                pred_c = _fit_predict(X[train], rng.permutation(y[train]), X[test], C, max_iter, seed)
                right_ctrl += int((pred_c == y[test]).sum())
            n_test += len(test)
            n_train.append(len(train))
    _, counts = np.unique(y, return_counts=True)
    return {
        "accuracy": right / n_test,
        "control_accuracy": right_ctrl / n_test if control else float("nan"),
        "n_train": int(round(float(np.mean(n_train)))),
        "n_test": int(n_test),
        "chance": float(counts.max() / counts.sum()),
        "n_classes": int(len(counts)),
        "n_splits": len(splits),
    }


# --------------------------------------------------------------------------- curves


def _step_access(states_by_step: Any) -> tuple[list[int], Callable[[int], np.ndarray]]:
    """(step labels, getter step -> [N, L, D]) for an [N, T, L, D] array, a list or a dict of [N, L, D]."""
    if isinstance(states_by_step, Mapping):
        keys = sorted(int(k) for k in states_by_step)
        lookup = {int(k): v for k, v in states_by_step.items()}
        return keys, lambda t: np.asarray(lookup[t])
    if isinstance(states_by_step, np.ndarray) or hasattr(states_by_step, "shape"):
        arr = states_by_step
        if len(arr.shape) != 4:
            raise ProbeError(f"states must be [N, T, L, D], got shape {tuple(arr.shape)}")
        return list(range(arr.shape[1])), lambda t: np.asarray(arr[:, t])
    if isinstance(states_by_step, Sequence):
        seq = list(states_by_step)
        return list(range(len(seq))), lambda t: np.asarray(seq[t])
    raise ProbeError(f"states must be an [N, T, L, D] array, a list or a dict of [N, L, D] arrays, got {type(states_by_step).__name__}")


def probe_curves(
    states_by_step: Any,
    targets: Mapping[str, np.ndarray] | np.ndarray,
    groups: np.ndarray | None = None,
    steps: Sequence[int] | None = None,
    masks: Mapping[str, np.ndarray] | np.ndarray | None = None,
    n_splits: int = 5,
    max_cells: int | None = 10_000,
    C: float = 1.0,
    max_iter: int = 200,
    seed: int = 0,
    control: bool = True,
    progress: bool = False,
    blas_threads: int | None = 1,
) -> pd.DataFrame:
    """Probe accuracy per step and target, with a shuffled-label control.

    ``targets``: {name: [N, L] (same at every step) or [N, T, L] (per step, e.g.
    ``correct``)}; a bare array is named ``"target"``. ``groups`` [N]: puzzle
    identity for the split (default one group per row; give the source-puzzle
    id when rows are augmented copies of one puzzle). ``masks``: {name: bool
    [N, L] or [N, T, L]} (or one array for all targets) selecting the cells
    used, e.g. blanks only. ``max_cells``: at most this many cells per
    (step, target), drawn once per target with ``seed`` so every step probes
    the same cells. Returns columns step, target, accuracy, control_accuracy,
    n_train (mean per fold), n_test (held-out cells, all folds), chance
    (majority-class rate), n_classes, n_splits. ``blas_threads`` caps BLAS
    threads during the fits (default 1: small fits are faster single-threaded;
    None leaves the setting alone).
    """
    step_ids, get = _step_access(states_by_step)
    if steps is not None:
        unknown = [s for s in steps if int(s) not in step_ids]
        if unknown:
            raise ProbeError(f"steps {unknown[:5]} are not in the states (have {step_ids[0]}..{step_ids[-1]})")
        step_ids = [int(s) for s in steps]
    if not step_ids:
        raise ProbeError("no steps to probe")
    first = get(step_ids[0])
    if first.ndim != 3:
        raise ProbeError(f"states at one step must be [N, L, D], got shape {first.shape}")
    N, L, D = first.shape
    all_steps = _step_access(states_by_step)[0]
    tgt = {"target": targets} if isinstance(targets, np.ndarray) else dict(targets)
    if not tgt:
        raise ProbeError("give at least one target")
    for name, arr in tgt.items():
        a = np.asarray(arr)
        if not (a.shape == (N, L) or (a.ndim == 3 and a.shape[0] == N and a.shape[2] == L and a.shape[1] == len(all_steps))):
            raise ProbeError(f"target {name!r} must be [N={N}, L={L}] or [N, T={len(all_steps)}, L], got {a.shape}")
        tgt[name] = a
    if masks is None:
        mask_of = {name: None for name in tgt}
    elif isinstance(masks, np.ndarray):
        mask_of = {name: masks for name in tgt}
    else:
        unknown = set(masks) - set(tgt)
        if unknown:
            raise ProbeError(f"masks given for unknown targets {sorted(unknown)}")
        mask_of = {name: masks.get(name) for name in tgt}
    for name, m in mask_of.items():
        if m is not None:
            m = np.asarray(m, dtype=bool)
            if m.shape != (N, L) and m.shape != (N, len(all_steps), L):
                raise ProbeError(f"mask for {name!r} must be [N, L] or [N, T, L], got {m.shape}")
            mask_of[name] = m
    g = np.arange(N) if groups is None else np.asarray(groups)
    if g.shape != (N,):
        raise ProbeError(f"groups must have shape [{N}] (one per puzzle), got {g.shape}")
    pos = {s: i for i, s in enumerate(all_steps)}
    rng = np.random.default_rng(seed)
    keep = {}
    for name in tgt:  # fixed subsample of (puzzle, cell) pairs per target
        m = mask_of[name]
        base = np.ones((N, L), bool) if m is None or m.ndim == 3 else m
        idx = np.flatnonzero(base.reshape(-1))
        if max_cells is not None and len(idx) > max_cells:
            idx = np.sort(rng.choice(idx, size=max_cells, replace=False))
        keep[name] = idx
    rows = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(step_ids) * len(tgt), desc="probes")
    for s in step_ids:
        X_all = np.asarray(get(s), dtype=np.float32).reshape(N * L, -1)
        if X_all.shape[1] != D:
            raise ProbeError(f"step {s} states have width {X_all.shape[1]}, expected {D}")
        for name, arr in tgt.items():
            y_all = (arr[:, pos[s]] if arr.ndim == 3 else arr).reshape(-1)
            idx = keep[name]
            m = mask_of[name]
            if m is not None and m.ndim == 3:
                idx = idx[m[:, pos[s]].reshape(-1)[idx]]
            if len(idx) == 0:
                raise ProbeError(f"target {name!r} has no cells left at step {s} after masking")
            res = probe_step(X_all[idx], y_all[idx], np.repeat(g, L)[idx], n_splits, C, max_iter, seed + s, control,
                             blas_threads)
            rows.append({"step": s, "target": name, **res})
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return pd.DataFrame(rows, columns=COLUMNS)


def probes_from_trace(
    trace: Any,
    state: str = "z_H",
    targets: Sequence[str] | None = None,
    steps: Sequence[int] | None = None,
    blanks_only: bool = True,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`probe_curves` on a Sudoku ``interp`` Trace with full states stored.

    Uses the puzzles whose states the trace kept (``trace.state_index``),
    positions without the puzzle prefix, groups = ``trace.puzzle_index``.
    ``targets`` default: every target the trace supports (``value``,
    ``candidates``, ``correct`` need labels; ``given`` is skipped when
    ``blanks_only``). ``blanks_only`` probes only cells blank in the input
    (givens are readable from the input embedding). Other keyword arguments go
    to :func:`probe_curves`.
    """
    from .features import FeatureError, sudoku_targets

    rows = np.asarray(trace.state_index)
    X = trace.states(state, drop_prefix=True)
    inputs = np.asarray(trace.inputs)[rows]
    labels = np.asarray(trace.labels)[rows] if trace.labelled else None
    if labels is not None and (labels == IGNORE_LABEL).any():
        labels = None  # incomplete solutions: value/correct cannot be built
    preds = np.asarray(trace.predictions)[rows] if labels is not None else None
    if preds is not None and preds.shape[1] != X.shape[1]:
        raise ProbeError(f"trace predictions have {preds.shape[1]} steps but state {state!r} has {X.shape[1]}")
    try:
        avail = sudoku_targets(inputs, labels, preds)
    except FeatureError as exc:
        raise ProbeError(f"probes_from_trace needs a Sudoku trace: {exc}") from None
    if targets is None:
        targets = [t for t in ("value", "candidates", "correct", "given") if t in avail and not (blanks_only and t == "given")]
    missing = [t for t in targets if t not in avail]
    if missing:
        raise ProbeError(f"targets {missing} are not available from this trace (available: {sorted(avail)}; "
                         "value/correct need a labelled trace)")
    chosen = {t: avail[t] for t in targets}
    masks = {t: inputs < 2 for t in chosen} if blanks_only else None
    return probe_curves(X, chosen, groups=np.asarray(trace.puzzle_index)[rows], steps=steps, masks=masks, **kwargs)


__all__ = ["COLUMNS", "ProbeError", "group_splits", "probe_step", "probe_curves", "probes_from_trace"]

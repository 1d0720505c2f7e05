"""``attribute``: patching and attribution scores for every unit of every clean/corrupted pair, as one table.

The table has one row per (puzzle, method, unit): ``puzzle, method, segment,
step, state, position, score`` plus ``hook``. ``score`` is the effect on the
metric of patching that one unit from the source run into the receiving run:
measured (``patch``) or estimated (``atp``, ``ig``). Direction ``noising``
(default) receives in the clean run and takes values from the corrupted one
(what breaks the answer); ``denoising`` the reverse (what restores it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from interp.causal.attribution import attribution_scores, cached_run
from interp.causal.errors import CausalError
from interp.causal.metrics import DIFFERENTIABLE, METRICS, answer_alphabet, metric_fn
from interp.causal.pairs import PairSet
from interp.causal.patching import patch_effects
from interp.causal.runner import Prepared, SegmentRunner
from interp.causal.units import unit_hooks, units_frame
from models.device import model_device

METHODS = ("atp", "ig", "verify", "patch")
DIRECTIONS = ("noising", "denoising")
COLUMNS = ["puzzle", "method", "segment", "step", "state", "position", "score", "hook"]


@dataclass
class AttributionResult:
    """The score table, per-pair facts (metric on the clean and corrupted runs) and the settings."""

    scores: pd.DataFrame
    pairs: pd.DataFrame
    settings: dict


class PatchStore:
    """Chunk results of a long patching sweep under ``root`` (resume after a kill); tied to a fingerprint."""

    def __init__(self, root: str | Path, fingerprint: str):
        self.root = Path(root)
        self.fingerprint = fingerprint
        stamp = self.root / "fingerprint.txt"
        if stamp.exists() and stamp.read_text().strip() != fingerprint:
            raise CausalError(f"{self.root} holds a patching sweep of other settings, model or pairs "
                              "(use another --out or --overwrite)")
        from common.io import atomic_write_text

        atomic_write_text(stamp, fingerprint + "\n")

    def _path(self, puzzle: int, chunk: int) -> Path:
        return self.root / f"p{puzzle:05d}_c{chunk:06d}.npy"

    def load(self, puzzle: int, chunk: int) -> np.ndarray | None:
        path = self._path(puzzle, chunk)
        return np.load(path, allow_pickle=False) if path.exists() else None

    def save(self, puzzle: int, chunk: int, effects: np.ndarray) -> None:
        import io

        from common.io import atomic_write_bytes

        buf = io.BytesIO()
        np.save(buf, np.asarray(effects, dtype=np.float32), allow_pickle=False)
        atomic_write_bytes(self._path(puzzle, chunk), buf.getvalue())


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _fingerprint(model_hash: str, pairs: PairSet, settings: dict) -> str:
    h = hashlib.sha256(model_hash.encode())
    for a in (pairs.clean, pairs.corrupt, pairs.labels, pairs.targets):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()


def attribute(
    model: nn.Module,
    pairs: PairSet,
    methods: Sequence[str] = ("atp",),
    metric: str = "logit_diff",
    states: Sequence[str] | str | None = None,
    n_segments: int | None = None,
    direction: str = "noising",
    ig_steps: int = 5,
    batch_size: int = 16,
    patch_rows: int = 64,
    patch_dir: str | Path | None = None,
    progress: bool = False,
    verify_top: float = 0.10,
) -> AttributionResult:
    """Score every (step, state, position) unit of every pair by each of ``methods`` (see module docstring).

    ``states``: which states (default all, gates included); ``n_segments``: how many segments to run (the
    metric reads the last; default the model's evaluation depth); ``patch_dir``: where exhaustive patching
    keeps its chunks (resumable; sharded over ``torch.distributed`` ranks when a process group is running).
    ``verify`` is AtP's prefilter-and-verify (as AtP* uses it): the ``verify_top`` fraction of units with the
    largest |AtP| are patched exactly and take the exact effect; the others keep their AtP score.
    """
    if not 0 < verify_top <= 1:
        raise CausalError(f"verify_top must be a fraction in (0, 1], got {verify_top}")
    methods = list(dict.fromkeys(methods))
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise CausalError(f"unknown method {bad[0] if bad else ''!r} (choose from {', '.join(METHODS)})")
    if metric not in METRICS:
        raise CausalError(f"unknown metric {metric!r} (one of {', '.join(METRICS)})")
    if metric not in DIFFERENTIABLE and any(m != "patch" for m in methods):
        raise CausalError(f"metric {metric!r} has no gradient: attribution (atp, ig, verify) needs one of "
                          f"{', '.join(DIFFERENTIABLE)}; exact patching takes any metric")
    if direction not in DIRECTIONS:
        raise CausalError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    runner = SegmentRunner(model, n_segments)
    hooks = unit_hooks(runner.schema, states)
    dev = model_device(model)
    was_training = model.training
    model.eval()
    cfg = model.cfg
    prefix = int(getattr(model, "prefix_len", 0))
    settings = {"methods": methods, "metric": metric, "states": sorted({u.state for u in hooks}),
                "n_segments": runner.n_segments, "direction": direction, "ig_steps": ig_steps,
                "verify_top": verify_top}
    frames, facts = [], []
    try:
        store = None
        if "patch" in methods and patch_dir is not None:
            from interp.tracing.tracer import model_sha256

            same = {k: settings[k] for k in ("metric", "states", "n_segments", "direction")}  # what patching reads
            store = PatchStore(patch_dir, _fingerprint(model_sha256(model), pairs, same))
        clean_t = torch.as_tensor(pairs.clean, device=dev)
        bad_t = torch.as_tensor(pairs.corrupt, device=dev)
        labels_t = torch.as_tensor(pairs.labels, device=dev)
        targets_t = torch.as_tensor(pairs.targets, device=dev)
        alphabet = answer_alphabet(labels_t, cfg.vocab_size)
        N = len(pairs)
        for a in range(0, N, batch_size):
            b = min(N, a + batch_size)
            clean = runner.prepare(clean_t[a:b])
            corrupt = runner.prepare(bad_t[a:b])
            dst, src = (clean, corrupt) if direction == "noising" else (corrupt, clean)
            s_logits, _, s_values = cached_run(runner, src, hooks)
            estimates = any(m != "patch" for m in methods)  # the receiving run's values serve attribution only
            d_logits, d_carries, d_values = cached_run(runner, dst, hooks if estimates else ())
            fn = metric_fn(metric, labels_t[a:b], targets_t[a:b], alphabet, s_logits)
            n_pos = int(next(iter(d_carries[0].values())).shape[1])
            base = units_frame(hooks, n_pos, prefix)
            unit_scores = {}
            for method in methods:
                if method == "patch" or (method == "verify" and "atp" in methods):
                    continue
                est = "atp" if method == "verify" else method
                scores = attribution_scores(runner, dst, src, fn, hooks, d_carries, d_values, s_values, est, ig_steps)
                unit_scores[est] = np.stack([np.concatenate([scores[u.hook][r].double().cpu().numpy() for u in hooks])
                                             for r in range(b - a)])
            for method in [m for m in methods if m not in ("patch", "verify")]:
                frames += [_frame(base, unit_scores[method][r], method, a + r) for r in range(b - a)]
            d_metric, s_metric = fn(d_logits).double().cpu().numpy(), fn(s_logits).double().cpu().numpy()
            for r in range(b - a):
                facts.append({"puzzle": a + r, "metric_receiving": float(d_metric[r]),
                              "metric_source": float(s_metric[r]), "n_units": len(base),
                              "note": pairs.notes[a + r] if a + r < len(pairs.notes) else ""})
            for r in range(b - a):
                job = _PatchJob(runner, dst, d_carries, s_values, hooks, n_pos, r, float(d_metric[r]),
                                metric_fn(metric, labels_t[a + r:a + r + 1], targets_t[a + r:a + r + 1], alphabet,
                                          s_logits[r:r + 1]), patch_rows, progress)
                if "verify" in methods:
                    est = unit_scores["atp"][r]
                    only = _top_mask(est, verify_top).reshape(len(hooks), n_pos)
                    exact = job.effects(a + r, only=only).reshape(-1)
                    frames.append(_frame(base, np.where(only.reshape(-1), exact, est), "verify", a + r))
                if "patch" in methods:
                    frames.append(_frame(base, job.effects(a + r, store).reshape(-1), "patch", a + r))
    finally:
        model.train(was_training)
    table = pd.concat(frames, ignore_index=True)[COLUMNS]
    return AttributionResult(table, pd.DataFrame(facts), settings)


def _frame(base: pd.DataFrame, scores: np.ndarray, method: str, puzzle: int) -> pd.DataFrame:
    df = base.copy()
    df["score"], df["method"], df["puzzle"] = scores, method, puzzle
    return df


def _top_mask(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Bool mask of the ``fraction`` of units with the largest |score| (at least one)."""
    k = max(1, int(np.ceil(fraction * scores.size)))
    mask = np.zeros(scores.size, dtype=bool)
    mask[np.argsort(-np.abs(np.nan_to_num(scores)))[:k]] = True
    return mask


@dataclass
class _PatchJob:
    """Exact patching of one receiving puzzle (row ``r`` of the batch), over all units or a mask of them."""

    runner: SegmentRunner
    dst: Prepared
    carries: list
    src_values: dict
    hooks: list
    n_pos: int
    r: int
    dst_metric: float
    metric: object
    rows: int
    progress: bool

    def effects(self, puzzle: int, store: PatchStore | None = None, only: np.ndarray | None = None) -> np.ndarray:
        r = self.r
        one = Prepared(self.dst.x[r:r + 1], None if self.dst.pid is None else self.dst.pid[r:r + 1],
                       None if self.dst.encoding is None else self.dst.encoding[r:r + 1])
        carries = [{k: v[r:r + 1] for k, v in c.items()} for c in self.carries]
        values = {h: v[r:r + 1] for h, v in self.src_values.items()}
        rank, world = _rank_world()
        bar = _bar(f"patch puzzle {puzzle}") if self.progress and rank == 0 else None
        eff = patch_effects(
            self.runner, one, carries, self.dst_metric, values, self.hooks, self.n_pos, self.metric, rows=self.rows,
            done=(lambda c: store.load(puzzle, c)) if store else None,
            save=(lambda c, e: store.save(puzzle, c, e)) if store else None,
            mine=(lambda c: c % world == rank) if world > 1 else None, progress=bar, only=only)
        return _gather_effects(eff) if world > 1 else eff


def _bar(desc: str):
    from common.progress import Progress

    def wrap(it):
        with Progress(None, desc, unit="chunk") as bar:
            yield from bar.wrap(it)

    return wrap


def _gather_effects(eff: np.ndarray) -> np.ndarray:
    """Every rank's chunks combined (each chunk is computed by exactly one rank; others hold NaN)."""
    import torch.distributed as dist

    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, eff)
    out = np.full_like(eff, np.nan)
    for part in parts:
        out = np.where(np.isnan(out), part, out)
    return out


__all__ = ["METHODS", "DIRECTIONS", "COLUMNS", "AttributionResult", "PatchStore", "attribute"]

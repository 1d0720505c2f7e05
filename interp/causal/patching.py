"""Exhaustive activation patching at (step, state, position) granularity.

For every unit (a state written at one step, at one position) the receiving
run is repeated with that one value replaced by the source run's value, and
the metric of the last segment is compared with the unpatched run:

    effect(n) = M(receiving run with n <- n_src) - M(receiving run)

Rows of a batch are the same puzzle patched at different units; a patch at
segment s starts from the receiving run's stored carry entering s, so only
segments s..S-1 are recomputed. The sweep is split into chunks whose results
are saved as they finish (resume skips them), and chunks are dealt to
``torch.distributed`` ranks round-robin when a process group is running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from interp.causal.runner import Prepared, SegmentRunner, States
from interp.causal.units import UnitHook

Metric = Callable[[torch.Tensor], torch.Tensor]


def _repeat(batch: Prepared, rows: int) -> Prepared:
    def rep(t):
        return None if t is None else t.expand(rows, *t.shape[1:]).contiguous()

    return Prepared(rep(batch.x), rep(batch.pid), rep(batch.encoding))


def unit_chunks(hooks: Sequence[UnitHook], n_positions: int, rows: int,
                only: np.ndarray | None = None) -> list[list[tuple[int, int]]]:
    """Units ``(hook index, position)`` in chunks of at most ``rows``, each chunk within one segment
    (``only``: a bool [hooks, positions] mask of the units to patch; default all)."""
    chunks: list[list[tuple[int, int]]] = []
    for seg in sorted({u.segment for u in hooks}):
        units = [(i, p) for i, u in enumerate(hooks) if u.segment == seg for p in range(n_positions)
                 if only is None or only[i, p]]
        chunks += [units[a:a + rows] for a in range(0, len(units), rows)]
    return chunks


def patch_chunk(runner: SegmentRunner, dst: Prepared, dst_carries: list[States], src_values: dict[str, torch.Tensor],
                hooks: Sequence[UnitHook], chunk: Sequence[tuple[int, int]], metric: Metric) -> np.ndarray:
    """Metric of the receiving run (one puzzle, batch row 0) patched at each unit of ``chunk``: [len(chunk)]."""
    seg = hooks[chunk[0][0]].segment
    R = len(chunk)
    plan: dict[str, tuple[list[int], list[int]]] = {}
    for r, (i, p) in enumerate(chunk):
        rows, pos = plan.setdefault(hooks[i].hook, ([], []))
        rows.append(r)
        pos.append(p)
    index = {h: (torch.tensor(r), torch.tensor(p)) for h, (r, p) in plan.items()}

    def patch(t: torch.Tensor, hook) -> torch.Tensor:
        rows, pos = index[hook.name]
        t = t.clone()
        t[rows, pos] = src_values[hook.name][0, pos].to(t.dtype)
        return t

    batch = _repeat(dst, R)
    states = {k: v.expand(R, *v.shape[1:]).clone() for k, v in dst_carries[seg].items()}
    with torch.no_grad(), runner.model.hooks([(lambda n: n in index, patch)]):
        logits, _ = runner.run(batch, states, start=seg)
    return metric(logits).double().cpu().numpy()


def patch_effects(
    runner: SegmentRunner,
    dst: Prepared,
    dst_carries: list[States],
    dst_metric: float,
    src_values: dict[str, torch.Tensor],
    hooks: Sequence[UnitHook],
    n_positions: int,
    metric: Metric,
    rows: int = 64,
    done: Callable[[int], np.ndarray | None] | None = None,
    save: Callable[[int, np.ndarray], None] | None = None,
    mine: Callable[[int], bool] | None = None,
    progress: Iterable | None = None,
    only: np.ndarray | None = None,
) -> np.ndarray:
    """Effects [len(hooks), n_positions] of patching every unit of one puzzle (NaN for chunks of other ranks,
    and for units outside the ``only`` mask when one is given).

    ``done(c)`` returns a saved chunk result (resume), ``save(c, effects)`` stores one, ``mine(c)`` says
    whether this process computes chunk ``c``; ``progress(chunks)`` wraps the loop (a progress bar).
    """
    out = np.full((len(hooks), n_positions), np.nan, dtype=np.float32)
    chunks = unit_chunks(hooks, n_positions, rows, only)
    loop = range(len(chunks)) if progress is None else progress(range(len(chunks)))
    for c in loop:
        chunk = chunks[c]
        if mine is not None and not mine(c):
            continue
        got = done(c) if done is not None else None
        if got is None:
            got = patch_chunk(runner, dst, dst_carries, src_values, hooks, chunk, metric) - dst_metric
            if save is not None:
                save(c, got)
        for (i, p), e in zip(chunk, got):
            out[i, p] = e
    return out


__all__ = ["unit_chunks", "patch_chunk", "patch_effects"]

"""Attribution patching through the whole unrolled recursion: AtP and integrated gradients.

For a unit n (a state written at one step, at one position) the effect of
patching it from the source run into the receiving run is, to first order,

    score(n) = (n_src - n_dst) . dM/dn        (gradient on the receiving run)

(Nanda 2022; Kramár et al. 2024). ``dM/dn`` here is the *total* derivative of
the metric of the last segment with respect to the state written at that step:
through every later update of every later segment. Training keeps only the
last updates of a segment in the graph and detaches the carry, so the
gradients are recomputed under :func:`models.grad.full_graph` (no forward
number changes), and memory stays bounded by backpropagating one segment at a
time: the forward stores only the carry entering each segment; then, from the
last segment back, each segment is re-run with gradients from its stored carry
and the gradient flowing into the next segment's carry is pulled through it
(segment checkpointing by hand). Cost: two forwards (clean, corrupted) and
about one forward plus one backward per segment, whatever the number of units.

Integrated gradients (``method="ig"``) replace the single gradient with its
mean over ``steps`` runs whose embedded input is interpolated from the
receiving to the source input (EAP-IG's interpolation, midpoints
``(k + 0.5) / steps``); it repairs first-order attribution where the metric
saturates (e.g. a confidently right or wrong answer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from interp.causal.runner import Prepared, SegmentRunner, States
from interp.causal.units import UnitHook
from models.grad import full_graph

Metric = Callable[[torch.Tensor], torch.Tensor]


def cached_run(runner: SegmentRunner, batch: Prepared, hooks: Sequence[UnitHook],
               extra_hooks: Sequence = ()) -> tuple[torch.Tensor, list[States], dict[str, torch.Tensor]]:
    """One forward without gradients: last logits, the carry entering each segment, every unit hook's value."""
    names = {u.hook for u in hooks}
    values: dict[str, torch.Tensor] = {}

    def save(t: torch.Tensor, hook) -> None:
        values[hook.name] = t.detach().clone()

    model = runner.model
    with torch.no_grad(), model.hooks([*extra_hooks, (lambda n: n in names, save)] if names else list(extra_hooks)):
        logits, carries = runner.run(batch, runner.start_states(batch), keep_carries=True)
    return logits, carries, values


def unit_gradients(runner: SegmentRunner, batch: Prepared, carries: list[States], metric: Metric,
                   hooks: Sequence[UnitHook], extra_hooks: Sequence = (), start: int = 0) -> dict[str, torch.Tensor]:
    """d(sum of metric over the batch)/d(value of each unit hook), through every later step and segment.

    ``carries[s - start]`` is the carry entering segment s; segments before ``start`` are not visited."""
    model = runner.model
    by_segment: dict[int, set[str]] = {}
    for u in hooks:
        by_segment.setdefault(u.segment, set()).add(u.hook)
    grads: dict[str, torch.Tensor] = {}
    g_next: dict[str, torch.Tensor] | None = None
    for s in reversed(range(start, runner.n_segments)):
        entry = {k: v.detach().clone().requires_grad_(True) for k, v in carries[s - start].items()}
        names = by_segment.get(s, set())
        captured: dict[str, torch.Tensor] = {}

        def capture(t: torch.Tensor, hook, _names=names, _cap=captured) -> None:
            if hook.name in _names:
                _cap[hook.name] = t

        wanted = [(lambda n, _names=names: n in _names, capture)] if names else []
        with torch.enable_grad(), full_graph(model), model.hooks([*extra_hooks, *wanted]):
            new, logits = runner.segment(batch, entry, s)
            objective = metric(logits).sum() if s == runner.n_segments - 1 else logits.new_zeros(())
            if g_next is not None:
                objective = objective + sum((g_next[k] * new[k].to(g_next[k].dtype)).sum() for k in g_next)
        wrt = [*entry.values(), *captured.values()]
        got = torch.autograd.grad(objective, wrt, allow_unused=True)
        g_next = {k: (g if g is not None else torch.zeros_like(v)) for (k, v), g in zip(entry.items(), got)}
        for (name, t), g in zip(captured.items(), got[len(entry):]):
            grads[name] = (g if g is not None else torch.zeros_like(t)).detach()
    return grads


def interpolation_hook(runner: SegmentRunner, dst: torch.Tensor, src: torch.Tensor, alpha: float):
    """A hook pair replacing the embedded input with ``dst + alpha (src - dst)``."""
    value = dst + alpha * (src - dst)
    return (runner.input_hook(), lambda t, hook: value.to(t.dtype))


def attribution_scores(
    runner: SegmentRunner,
    dst: Prepared,
    src: Prepared,
    metric: Metric,
    hooks: Sequence[UnitHook],
    dst_carries: list[States],
    v_dst: dict[str, torch.Tensor],
    v_src: dict[str, torch.Tensor],
    method: str = "atp",
    steps: int = 5,
) -> dict[str, torch.Tensor]:
    """Per unit hook, the score [B, P] of patching each position from ``src`` into ``dst``.

    ``dst_carries``, ``v_dst`` and ``v_src`` are what :func:`cached_run` returned for the two runs (computed
    once by the caller and shared with exact patching). ``method``: ``"atp"`` (one gradient at dst) or
    ``"ig"`` (the mean gradient over ``steps`` points)."""
    if method == "atp":
        grads = unit_gradients(runner, dst, dst_carries, metric, hooks)
    elif method == "ig":
        if steps < 1:
            raise ValueError(f"integrated gradients need steps >= 1, got {steps}")
        runner.input_hook()  # one-line error for a model without an input hook
        e_dst, e_src = runner.embed(dst), runner.embed(src)
        grads = {}
        for k in range(steps):
            alpha = (k + 0.5) / steps
            if runner.lm:
                point = Prepared(dst.x, dst.pid, e_dst + alpha * (e_src - e_dst))
                extra: list = []
            else:
                point, extra = dst, [interpolation_hook(runner, e_dst, e_src, alpha)]
            _, carries, _ = cached_run(runner, point, (), extra)
            g = unit_gradients(runner, point, carries, metric, hooks, extra)
            for name, t in g.items():
                grads[name] = grads[name] + t / steps if name in grads else t / steps
    else:
        raise ValueError(f"unknown attribution method {method!r} (atp or ig)")
    return {h: ((v_src[h].double() - v_dst[h].double()) * grads[h].double()).sum(-1) for h in grads}


__all__ = ["cached_run", "unit_gradients", "attribution_scores", "interpolation_hook"]

"""Running a model for guess scaling: plain passes, noisy recursion (PTRM) and random starts (EqR).

One pass runs ``n_segments`` segments from initial states (evaluation
semantics: no early halting) and returns, per puzzle, the final answer logits,
the halting logits of the last segment and the fixed-point residual

    residual = ||s_T - s_{T-1}|| / ||s_{T-1}||   (all carried states concatenated)

that is ``||f(s) - s|| / ||s||`` of the segment map ``f`` at the state that
entered the last segment (no extra segment is run, so it costs nothing; with
one segment it is measured at the initial state). Two knobs change the run:

* :class:`NoiseSpec` (PTRM): Gaussian noise added to the latent states, at
  every recursion step (every state hook point of HRM/TRM) or once per segment
  (to the carried states), of standard deviation ``scale * rms(state)`` per
  position, so its norm is about ``scale * ||state||``. The last update of the
  answer state is left clean, so the decoded answer and the Q head read the
  model's own map of a noisy latent. ``scale = 0`` is the plain run exactly.
* ``init="random"`` (EqR): every state starts as i.i.d. Gaussian noise per
  position with the rms of the model's own initial state, instead of the
  model's fixed start vectors.

A model that is not a ``PuzzleModel`` (no ``segment``/``init_states``) only
supports plain passes: it is called as ``model(x, n_segments=...)`` and may
return logits or ``(logits, q_halt[, q_continue])``; its residual is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from interp.guess_scaling.errors import GuessScalingError
from models.device import model_device
from models.hook_names import hook_state

NOISE_WHERE = ("step", "segment")
INITS = ("model", "random")


@dataclass(frozen=True)
class NoiseSpec:
    """Latent noise for one pass: relative ``scale``, applied at every ``"step"`` or ``"segment"``, RNG ``seed``."""

    scale: float
    where: str = "step"
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.scale >= 0 and np.isfinite(self.scale)):
            raise GuessScalingError(f"noise scale must be a finite number >= 0, got {self.scale}")
        if self.where not in NOISE_WHERE:
            raise GuessScalingError(f"noise must be applied per 'step' or 'segment', got {self.where!r}")


@dataclass
class PassOutput:
    """Per-puzzle results of one pass, float32 numpy: logits [B, L, V], q_halt/q_continue/residual [B]."""

    logits: np.ndarray
    q_halt: np.ndarray
    q_continue: np.ndarray
    residual: np.ndarray


def is_recurrent(model: torch.nn.Module) -> bool:
    """True for models that run segment by segment (HRM, TRM and the other ``PuzzleModel`` families)."""
    return hasattr(model, "segment") and hasattr(model, "init_states")


def relative_noise(state: torch.Tensor, scale: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise shaped like ``state`` with std ``scale * rms`` of each position's feature vector."""
    rms = state.float().pow(2).mean(dim=-1, keepdim=True).sqrt()
    eps = torch.randn(state.shape, generator=gen, device=state.device, dtype=torch.float32)
    return (eps * rms * scale).to(state.dtype)


def random_states(model: torch.nn.Module, batch_size: int, device: torch.device, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """EqR starts: per-position Gaussian states with the rms of the model's own initial states."""
    own = model.init_states(batch_size, device)
    return {k: torch.randn(v.shape, generator=gen, device=device, dtype=torch.float32).to(v.dtype)
            * v.float().pow(2).mean().sqrt().to(v.dtype) for k, v in own.items()}


def _residual(new: dict[str, torch.Tensor], old: dict[str, torch.Tensor]) -> torch.Tensor:
    num = sum((new[k].float() - old[k].float()).flatten(1).pow(2).sum(1) for k in new)
    den = sum(old[k].float().flatten(1).pow(2).sum(1) for k in new)
    return (num.sqrt() / den.sqrt().clamp_min(1e-12)).float()


def _state_hooks(model: Any, seg: int) -> list[str]:
    """The per-step state hook names of one segment (the input embedding ``hook_x`` left out)."""
    return [n for n in model.step_hook_names(seg) if hook_state(n) != "x"]


def _recurrent_pass(model: Any, x: torch.Tensor, ids: torch.Tensor | None, n: int, noise: NoiseSpec | None,
                    init: str, gen: torch.Generator) -> tuple[Any, torch.Tensor]:
    states = model.init_states(x.shape[0], x.device) if init == "model" else random_states(model, x.shape[0], x.device, gen)
    noisy = noise is not None and noise.scale > 0
    hooks: list = []
    if noisy and noise.where == "step":
        model.ensure_segment_hooks(n)
        last = _state_hooks(model, n - 1)
        answer_last = [h for h in last if hook_state(h) == model.answer_state][-1]
        names = [h for s in range(n) for h in _state_hooks(model, s) if h != answer_last]

        def add_noise(t: torch.Tensor, hook: Any) -> torch.Tensor:
            return t + relative_noise(t, noise.scale, gen)

        hooks = [(names, add_noise)]
    entered = [states]  # the carry that entered each segment (after any segment noise)

    def between(s: int, st: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if noisy and noise.where == "segment":
            st = {k: v + relative_noise(v, noise.scale, gen) for k, v in st.items()}
        entered.append(st)
        return st

    with model.hooks(hooks):
        for _, states, out in model.iter_segments(x, ids, n, states, between):
            pass
    return out, _residual(states, entered[-1])


@torch.no_grad()
def run_pass(
    model: torch.nn.Module,
    tokens: np.ndarray,
    n_segments: int | None = None,
    puzzle_ids: np.ndarray | None = None,
    batch_size: int = 256,
    noise: NoiseSpec | None = None,
    init: str = "model",
    seed: int = 0,
) -> PassOutput:
    """One pass over every puzzle (see the module docstring); ``seed`` drives random starts, ``noise.seed`` the noise."""
    if init not in INITS:
        raise GuessScalingError(f"init must be 'model' or 'random', got {init!r}")
    x_all = torch.as_tensor(np.asarray(tokens)).long()
    ids_all = None if puzzle_ids is None else torch.as_tensor(np.asarray(puzzle_ids)).long()
    dev = model_device(model)
    recurrent = is_recurrent(model)
    if not recurrent and (init != "model" or (noise is not None and noise.scale > 0)):
        raise GuessScalingError(f"{type(model).__name__} has no segment/init_states: noise and random starts need HRM/TRM-style models")
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(seed) * 1_000_003 + (noise.seed if noise is not None else 0))
    was_training = model.training
    model.eval()
    outs: dict[str, list[np.ndarray]] = {"logits": [], "q_halt": [], "q_continue": [], "residual": []}
    try:
        for a in range(0, x_all.shape[0], batch_size):
            x = x_all[a : a + batch_size].to(dev)
            ids = None if ids_all is None else ids_all[a : a + batch_size].to(dev)
            B = x.shape[0]
            if recurrent:
                model.check_inputs(x, ids)
                n = model.cfg.halt_max_steps if n_segments is None else int(n_segments)
                if n < 1:
                    raise GuessScalingError(f"n_segments must be >= 1, got {n}")
                out, res = _recurrent_pass(model, x, ids, n, noise, init, gen)
                logits, qh, qc = out.logits, out.q_halt, out.q_continue
            else:
                logits, qh, qc = _call_model(model, x, n_segments)
                res = torch.full((B,), float("nan"))
            if logits.dim() != 3 or logits.shape[:2] != x.shape:
                raise GuessScalingError(f"model returned logits of shape {list(logits.shape)}, expected [{B}, {x.shape[1]}, V]")
            outs["logits"].append(logits.float().cpu().numpy())
            for key, v in (("q_halt", qh), ("q_continue", qc), ("residual", res)):
                outs[key].append(torch.as_tensor(v).float().reshape(-1).cpu().numpy())
    finally:
        model.train(was_training)
    return PassOutput(**{k: np.concatenate(v) for k, v in outs.items()})


def _call_model(model: torch.nn.Module, x: torch.Tensor, n_segments: int | None) -> tuple[torch.Tensor, Any, Any]:
    res = model(x, n_segments=n_segments) if n_segments is not None else model(x)
    zeros = torch.zeros(x.shape[0])
    if isinstance(res, (tuple, list)):
        return res[0], res[1] if len(res) > 1 else zeros, res[2] if len(res) > 2 else zeros
    return res, zeros, zeros


def base_segments(model: torch.nn.Module, n_segments: int | None = None) -> int:
    """Segments of one ordinary pass: ``n_segments`` or the model's ``halt_max_steps`` (1 for other models)."""
    if n_segments is not None:
        return int(n_segments)
    cfg = getattr(model, "cfg", None)
    return int(getattr(cfg, "halt_max_steps", 1) or 1)


__all__ = ["NOISE_WHERE", "INITS", "NoiseSpec", "PassOutput", "is_recurrent", "model_device", "relative_noise",
           "random_states", "run_pass", "base_segments"]

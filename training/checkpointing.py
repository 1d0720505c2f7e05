"""Training-state checkpoints on top of ``models.checkpoint``.

A training checkpoint directory holds, besides ``model.safetensors`` (the
weights evaluation uses: EMA when enabled) and ``config.json`` (model, task,
train config and counters under ``state``):

* ``live.safetensors``: the raw training weights (when EMA is on),
* ``optimizer.safetensors``: AdamW moments and step counts, keyed by parameter name,
* ``rng.safetensors``: torch / CUDA / numpy / python / exploration RNG states,
* ``carry.safetensors``: the ACT carry of every rank (puzzle models).

Everything is safetensors or JSON; nothing is unpickled.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from common.atomic import atomic_dir
from models.checkpoint import CheckpointError, read_checkpoint_config

# ----- RNG ------------------------------------------------------------------------


def rng_tensors(generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Every RNG state as tensors (python's Mersenne state as int64, numpy's as uint32/int64)."""
    out = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"cuda.{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    out["numpy.keys"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64))
    out["numpy.meta"] = torch.tensor([pos, has_gauss], dtype=torch.int64)
    out["numpy.gauss"] = torch.tensor([gauss], dtype=torch.float64)
    version, internal, gauss_next = random.getstate()
    out["python.state"] = torch.tensor(internal, dtype=torch.int64)
    out["python.meta"] = torch.tensor([version, gauss_next is not None], dtype=torch.int64)
    out["python.gauss"] = torch.tensor([gauss_next or 0.0], dtype=torch.float64)
    if generator is not None:
        out["explore"] = generator.get_state()
    return out


def restore_rng(t: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(t["torch"])
    cuda = [t[k] for k in sorted((k for k in t if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    pos, has_gauss = (int(v) for v in t["numpy.meta"])
    np.random.set_state(("MT19937", t["numpy.keys"].numpy().astype(np.uint32), pos, has_gauss, float(t["numpy.gauss"][0])))
    version, has_next = (int(v) for v in t["python.meta"])
    random.setstate((version, tuple(int(v) for v in t["python.state"]), float(t["python.gauss"][0]) if has_next else None))
    if generator is not None and "explore" in t:
        generator.set_state(t["explore"])


# ----- optimiser --------------------------------------------------------------------


def _param_names(model: torch.nn.Module, opt: torch.optim.Optimizer) -> list[str]:
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [by_id[id(p)] for g in opt.param_groups for p in g["params"]]


def optimizer_tensors(model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """(tensors keyed ``<param name>.<state key>``, JSON-able param-group settings)."""
    names = _param_names(model, opt)
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"{names[idx]}.{k}"] = v if isinstance(v, torch.Tensor) else torch.tensor(v)
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items() if k != "params"} for g in sd["param_groups"]]
    return tensors, groups


def check_optimizer_tensors(model: torch.nn.Module, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                            where: str) -> None:
    """One ``CheckpointError`` when optimizer moments are non-finite or do not fit the parameters (shape, keys)."""
    params = dict(model.named_parameters())
    names = set(_param_names(model, opt))
    for k, v in tensors.items():
        name, _, key = k.rpartition(".")
        if name not in names:
            raise CheckpointError(f"{where}: unexpected optimizer tensor {k[:80]!r}; resume from another checkpoint")
        if key in ("exp_avg", "exp_avg_sq") and tuple(v.shape) != tuple(params[name].shape):
            raise CheckpointError(f"{where}: optimizer tensor {k!r} has shape {list(v.shape)}, the parameter "
                                  f"{list(params[name].shape)}; resume from another checkpoint")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise CheckpointError(f"{where}: optimizer tensor {k!r} holds NaN/inf (a diverged or damaged state); "
                                  "resume from an earlier checkpoint")
    states = {k.rpartition(".")[0] for k in tensors}
    if states and states != names:
        missing = sorted(names - states)
        raise CheckpointError(f"{where}: optimizer state lacks {', '.join(missing[:4])}; resume from another checkpoint")


def load_optimizer(model: torch.nn.Module, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> None:
    names = _param_names(model, opt)
    sd = opt.state_dict()
    if len(groups) != len(sd["param_groups"]):
        raise CheckpointError(f"optimizer state has {len(groups)} parameter groups, the model needs {len(sd['param_groups'])}")
    state = {}
    for idx, name in enumerate(names):
        st = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".") and "." not in k[len(name) + 1 :]}
        if st:
            state[idx] = st
    new_groups = []
    for g_old, g_new in zip(sd["param_groups"], groups):
        g = dict(g_old)
        g.update({k: (tuple(v) if k == "betas" else v) for k, v in g_new.items()})
        new_groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": new_groups})


# ----- files --------------------------------------------------------------------------


def read_tensors(ckpt: Path, name: str, required: bool = True) -> dict[str, torch.Tensor] | None:
    p = Path(ckpt) / f"{name}.safetensors"
    if not p.exists():
        if required:
            raise CheckpointError(f"checkpoint {ckpt} has no {name}.safetensors (not a training checkpoint?)")
        return None
    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {ckpt}: {name}.safetensors is corrupt ({e})") from None


def copy_checkpoint(src: Path, dst: Path) -> None:
    """Atomically copy a checkpoint directory (``last`` -> ``step_N`` / ``best``)."""
    with atomic_dir(dst, recoverable=True) as tmp:
        shutil.rmtree(tmp)
        shutil.copytree(src, tmp)


def is_training_checkpoint(path: Path) -> bool:
    try:
        meta = read_checkpoint_config(path)
    except CheckpointError:
        return False
    return "state" in meta and "train" in meta


__all__ = [
    "rng_tensors", "restore_rng", "optimizer_tensors", "load_optimizer", "read_tensors", "copy_checkpoint",
    "is_training_checkpoint",
]

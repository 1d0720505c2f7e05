"""Checkpoints: a directory holding ``model.safetensors`` and ``config.json``.

``config.json`` is self-describing::

    {"format": "recurse-interp/1", "model": {"family": "trm", ...},
     "task": {...}, "train": {...}, ...}

so ``load_checkpoint(path)`` alone rebuilds the model. Directories are written
to a temporary sibling and renamed into place, so a reader never sees a
half-written checkpoint. No pickle is ever loaded here (safetensors only).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from common.atomic import atomic_dir, fsync_dir, old_dir
from common.untrusted import read_json, safetensors_header

from .config import ConfigError, config_from_dict
from .registry import build_model

FORMAT = "recurse-interp/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the problem in one line."""


def checkpoint_dir(path: str | os.PathLike) -> Path:
    """``path``, or ``path.old`` when a crash inside ``replace_dir(..., recoverable=True)`` left only that (never renames)."""
    p = Path(path)
    if not p.exists() and (old_dir(p) / CONFIG).is_file():
        return old_dir(p)
    return p


def recover_checkpoint_dir(path: str | os.PathLike) -> Path:
    """For the directory's writer (e.g. training resume): rename a lone ``path.old`` back to ``path``."""
    p = Path(path)
    if not p.exists() and old_dir(p).is_dir():
        os.replace(old_dir(p), p)
        fsync_dir(p.parent)
    return p


def recover_checkpoint_dirs(root: str | os.PathLike) -> list[Path]:
    """``recover_checkpoint_dir`` for every ``<name>.old`` directly under ``root``; returns the recovered paths."""
    r = Path(root)
    if not r.is_dir():
        return []
    found = [o.with_name(o.name[: -len(".old")]) for o in sorted(r.glob("*.old")) if o.is_dir()]
    return [recover_checkpoint_dir(p) for p in found if not p.exists()]


def remove_stale_checkpoint_temporaries(root: str | os.PathLike) -> list[Path]:
    """Delete what killed writers left directly under ``root``: ``.<name>.tmp-*`` folders/files (ours) and
    ``.tmpXXXXXX`` files (safetensors'); returns the removed paths. Nothing else is touched."""
    r = Path(root)
    if not r.is_dir():
        return []
    removed = []
    for p in r.iterdir():
        if p.is_symlink() or not re.fullmatch(r"\.tmp[A-Za-z0-9]{6}|\..+\.tmp-.+", p.name):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.is_file():
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def state_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """Persistent tensors of a module, contiguous and unshared (as safetensors requires)."""
    return {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    extra: dict[str, Any] | None = None,
    tensors: dict[str, dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Atomically write ``model`` (weights + config) and JSON-able ``extra`` metadata to ``path``.

    ``tensors`` adds more safetensors files (e.g. ``{"optimizer": {...}}`` ->
    ``optimizer.safetensors``) inside the same atomic directory.
    """
    final = Path(path)
    with atomic_dir(final, recoverable=True, fsync=True) as tmp:
        save_file(state_tensors(model), str(tmp / WEIGHTS))
        for name, group in (tensors or {}).items():
            save_file({k: v.detach().contiguous() for k, v in group.items()}, str(tmp / f"{name}.safetensors"))
        meta = {"format": FORMAT, "model": model.cfg.to_dict(), **(extra or {})}
        with open(tmp / CONFIG, "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
    return final


def read_checkpoint_config(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's ``config.json`` as a dict, validated."""
    p = checkpoint_dir(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    if p.is_file():
        raise CheckpointError(
            f"{p} is a file; a checkpoint is a directory with {WEIGHTS} and {CONFIG} "
            "(official HRM/TRM files load with `models.official.load_official`)"
        )
    cfg_path = p / CONFIG
    if not cfg_path.exists():
        raise CheckpointError(f"checkpoint {p} has no {CONFIG}")
    meta = read_json(cfg_path, CheckpointError, where=f"checkpoint {p}: {CONFIG}", max_bytes=4 << 20)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("model"), dict):
        raise CheckpointError(f"checkpoint {p}: {CONFIG} is not a {FORMAT} config")
    return meta


FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")


def weights_header(weights: Path, where: str) -> dict[str, tuple[int, ...]]:
    """Shapes of the tensors in a safetensors weights file, read from its bounded header (no tensor data).

    Refuses FIFOs/devices, an oversized header, and non-float dtypes (bool, int8, ...) for model weights.
    """
    hdr = safetensors_header(weights, CheckpointError, f"{where}: {weights.name}")
    shapes = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        if not isinstance(v, dict) or not isinstance(v.get("shape"), list):
            raise CheckpointError(f"{where}: {weights.name} entry {str(k)[:60]!r} is malformed")
        if v.get("dtype") not in FLOAT_DTYPES:
            raise CheckpointError(f"{where}: {weights.name} tensor {str(k)[:60]!r} has dtype {v.get('dtype')!r}; "
                                  "model weights must be floating point")
        shapes[k] = tuple(v["shape"])
    return shapes


def load_state(model: nn.Module, tensors: dict[str, torch.Tensor], where: str = "checkpoint") -> None:
    """Load tensors strictly; mismatches or NaN/inf weights become one ``CheckpointError`` listing the offenders."""
    own = model.state_dict()
    check_shapes(model, {k: tuple(v.shape) for k, v in tensors.items()}, where)
    bad = sorted(k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if bad:
        raise CheckpointError(f"{where} holds NaN/inf values in {', '.join(bad[:8])}{' ...' if len(bad) > 8 else ''} "
                              "(a diverged run or a damaged file); use an earlier checkpoint")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=True)


def check_shapes(model: nn.Module, shapes: dict[str, tuple[int, ...]], where: str = "checkpoint") -> None:
    """Raise one ``CheckpointError`` listing missing / unexpected / wrong-shape keys of ``shapes`` vs ``model``."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(own) - set(shapes))
    unexpected = sorted(set(shapes) - set(own))
    wrong = sorted(
        f"{k} {list(shapes[k])} != {list(own[k])}"
        for k in set(own) & set(shapes)
        if tuple(shapes[k]) != own[k]
    )
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:8])}{' ...' if len(unexpected) > 8 else ''}")
    if wrong:
        problems.append(f"wrong shape {', '.join(wrong[:8])}")
    if problems:
        raise CheckpointError(f"{where} does not fit the model: {'; '.join(problems)}")


def build_fitting_model(cfg: Any, shapes: dict[str, tuple[int, ...]], where: str) -> nn.Module:
    """Build the model of ``cfg`` only after checking, on the meta device, that weights of ``shapes`` fit it.

    A tampered config (``hidden_size: 1000000``) thus fails with a one-line error
    instead of allocating memory the weights file never held.
    """
    try:
        with torch.device("meta"):
            skeleton = build_model(cfg)
    except (ConfigError, TypeError, ValueError, ArithmeticError, RuntimeError) as e:
        raise CheckpointError(f"{where}: bad model config ({type(e).__name__}: {e})") from None
    check_shapes(skeleton, shapes, where)
    return build_model(cfg)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from ``config.json`` and load ``model.safetensors``; returns (model, meta)."""
    p = checkpoint_dir(path)
    meta = read_checkpoint_config(p)
    try:
        cfg = config_from_dict(meta["model"])
    except (ConfigError, TypeError, ValueError, ArithmeticError) as e:
        raise CheckpointError(f"checkpoint {p}: bad model config ({e})") from None
    weights = p / WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"checkpoint {p} has no {WEIGHTS}")
    weights_header(weights, f"checkpoint {p}")  # regular file, bounded header, float dtypes
    try:
        with safe_open(str(weights), framework="pt") as f:  # the header only: shapes before any allocation
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {p}: {WEIGHTS} is corrupt or truncated ({e})") from None
    model = build_fitting_model(cfg, shapes, where=f"checkpoint {p}")
    try:
        tensors = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {p}: {WEIGHTS} is corrupt or truncated ({e})") from None
    load_state(model, tensors, where=f"checkpoint {p}")
    model.eval()
    return model, meta

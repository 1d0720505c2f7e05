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
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ConfigError, config_from_dict
from .registry import build_model

FORMAT = "recurse-interp/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the problem in one line."""


def _atomic_replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(final.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        save_file(state_tensors(model), str(tmp / WEIGHTS))
        for name, group in (tensors or {}).items():
            save_file({k: v.detach().contiguous() for k, v in group.items()}, str(tmp / f"{name}.safetensors"))
        meta = {"format": FORMAT, "model": model.cfg.to_dict(), **(extra or {})}
        with open(tmp / CONFIG, "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(tmp)
        _atomic_replace_dir(tmp, final)
        fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_checkpoint_config(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's ``config.json`` as a dict, validated."""
    p = Path(path)
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
    try:
        meta = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint {p}: {CONFIG} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "model" not in meta:
        raise CheckpointError(f"checkpoint {p}: {CONFIG} is not a {FORMAT} config")
    return meta


def load_state(model: nn.Module, tensors: dict[str, torch.Tensor], where: str = "checkpoint") -> None:
    """Load tensors strictly; mismatches become one ``CheckpointError`` listing the offenders."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = sorted(
        f"{k} {list(tensors[k].shape)} != {list(own[k].shape)}"
        for k in set(own) & set(tensors)
        if tensors[k].shape != own[k].shape
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
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=True)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from ``config.json`` and load ``model.safetensors``; returns (model, meta)."""
    p = Path(path)
    meta = read_checkpoint_config(p)
    try:
        model = build_model(config_from_dict(meta["model"]))
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"checkpoint {p}: bad model config ({e})") from None
    weights = p / WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"checkpoint {p} has no {WEIGHTS}")
    try:
        tensors = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {p}: {WEIGHTS} is corrupt or truncated ({e})") from None
    load_state(model, tensors, where=f"checkpoint {p}")
    model.eval()
    return model, meta


def load_any(path: str | os.PathLike, **kwargs: Any) -> tuple[nn.Module, dict[str, Any]]:
    """Load our checkpoint directory or an official HRM/TRM checkpoint, whichever ``path`` is.

    A directory with ``config.json`` is ours (``load_checkpoint``); a weights file
    (``step_N``, ``checkpoint``) or a directory with ``all_config.yaml`` is an
    official one (``models.official.load_official``, which takes ``kwargs`` such as
    ``seq_len=81``).
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    if p.is_dir() and (p / CONFIG).exists():
        return load_checkpoint(p)
    if p.is_file() and p.name == WEIGHTS and (p.parent / CONFIG).exists():
        return load_checkpoint(p.parent)
    if p.is_file() or (p / "all_config.yaml").exists():
        from .official import load_official

        return load_official(p, **kwargs)
    raise CheckpointError(
        f"{p} is not a checkpoint: expected a directory with {CONFIG}, or an official HRM/TRM "
        "weights file / run directory with all_config.yaml"
    )

"""Any causal language model in a local transformers ``save_pretrained`` folder, loaded for the looped tracer.

``load_causal_lm(folder, trust_remote_code=False)`` reads ``config.json`` first (bounded) and decides
whether the model needs the folder's own Python code (``auto_map`` with a ``model_type`` transformers
does not know, as Ouro and Huginn checkpoints have): without ``trust_remote_code`` such a folder is one
``CheckpointError`` line and no code of it runs. Weights are read from ``*.safetensors`` only, offline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.untrusted import read_json

from .checkpoint import CheckpointError


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's ``config.json`` as a dict (one-line error when missing or not a transformers config)."""
    p = Path(folder)
    try:
        cfg = read_json(p / "config.json", max_bytes=4 << 20)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{p}: no readable config.json ({' '.join(str(e).split())[:160]})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model_type"), str):
        raise CheckpointError(f"{p}: config.json has no model_type; not a transformers model folder")
    return cfg


def remote_code_class(cfg: dict[str, Any]) -> str | None:
    """The class the folder's own code would provide for a causal LM (``auto_map``), when transformers itself
    does not know ``model_type``; None when transformers has the model built in."""
    from transformers import CONFIG_MAPPING

    if cfg["model_type"] in CONFIG_MAPPING:
        return None
    auto = cfg.get("auto_map")
    if not isinstance(auto, dict):
        raise CheckpointError(f"transformers does not know model_type {cfg['model_type']!r} and the folder has no "
                              "auto_map (no code of its own)")
    return str(auto.get("AutoModelForCausalLM") or auto.get("AutoModel") or next(iter(auto.values()), "?"))


def load_causal_lm(folder: str | os.PathLike, trust_remote_code: bool = False, device: str | torch.device = "cpu",
                   dtype: torch.dtype | str | None = None) -> nn.Module:
    """``AutoModelForCausalLM`` from a local folder, in eval mode; remote code only with ``trust_remote_code``."""
    p = Path(folder)
    if not p.is_dir():
        raise CheckpointError(f"{p}: not a folder (a transformers save_pretrained folder is needed)")
    cfg = read_config(p)
    remote = remote_code_class(cfg)
    if remote is not None and not trust_remote_code:
        raise CheckpointError(f"{p}: model_type {cfg['model_type']!r} runs the folder's own code ({remote}); "
                              "pass --trust-remote-code (trust_remote_code=True) only if you trust it")
    if not any(p.glob("*.safetensors")):
        raise CheckpointError(f"{p}: no *.safetensors weights (other formats are not loaded for transformers models)")
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # errors stay one line; a small local load needs no bar
    try:
        model = AutoModelForCausalLM.from_pretrained(str(p), trust_remote_code=bool(trust_remote_code),
                                                     local_files_only=True, use_safetensors=True,
                                                     dtype=dtype or torch.float32)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError, ImportError, AttributeError) as e:
        raise CheckpointError(f"{p}: cannot load {cfg['model_type']!r} as a causal LM "
                              f"({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    return model.to(device).eval()


__all__ = ["load_causal_lm", "read_config", "remote_code_class"]

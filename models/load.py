"""Load any checkpoint: ours (``models.checkpoint``), an official HRM/TRM one (``models.official``),
a transformers HRM-Text folder or an ``hf:`` Hub spec (``models.hub``).

Kept apart from all of them so none imports the other.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from common.untrusted import regular_file
from models.checkpoint import CONFIG, WEIGHTS, CheckpointError, checkpoint_dir, load_checkpoint
from models.formats import find_weights_file
from models.hub import is_hub_spec, is_transformers_dir, load_folder, load_hub
from models.official import load_official


def load_any(path: str | os.PathLike, **kwargs: Any) -> tuple[nn.Module, dict[str, Any]]:
    """Load our checkpoint directory or an official HRM/TRM checkpoint, whichever ``path`` is.

    A directory with ``config.json`` is ours (``load_checkpoint``); a weights file
    (``step_N``, ``checkpoint``) or a directory with ``all_config.yaml`` is an
    official one (``models.official.load_official``, which takes ``kwargs`` such as
    ``seq_len=81`` or ``weights="raw"``), and so is a directory holding one weights file of any
    format ``models.formats`` reads (EqR ``*.pth``, URM ``step_N.pt`` + ``config.yaml``, Lightning ``model.ckpt``). An ``hf:ORG/NAME[@REVISION][:SUBFOLDER]`` spec or a transformers
    HRM-Text folder goes through ``models.hub`` (``kwargs`` such as ``device``, ``dtype``).
    """
    if is_hub_spec(path):  # hf:ORG/NAME[@REVISION][:SUBFOLDER], any layout below
        return load_hub(str(path), **kwargs)
    p = checkpoint_dir(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    if not p.is_dir():  # a FIFO, a device or a socket is refused before anything opens it
        regular_file(p, error=CheckpointError, where=f"checkpoint {p}")
    if is_transformers_dir(p):  # a save_pretrained folder (HRM-Text)
        return load_folder(p, "transformers", **kwargs)
    if p.is_dir() and (p / CONFIG).exists():
        return load_checkpoint(p)
    if p.is_file() and p.name == WEIGHTS and (p.parent / CONFIG).exists():
        return load_checkpoint(p.parent)
    if p.is_file() or (p / "all_config.yaml").exists() or (not (p / WEIGHTS).exists() and find_weights_file(p) is not None):
        return load_official(p, **kwargs)  # any format of models.formats (step_N, *.pth, *.pt, model.ckpt, ...)
    raise CheckpointError(
        f"{p} is not a checkpoint: expected a directory with {CONFIG}, or an official HRM/TRM "
        "weights file / run directory with all_config.yaml"
    )


__all__ = ["load_any"]

"""Tie a trace to its weights: a digest of a model's tensors and of a checkpoint's weights file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.io import file_sha256

HASH_PIECE = 64 << 20  # bytes per piece hashed on its own thread


def model_sha256(model: nn.Module) -> str:
    """Digest of the model's persistent tensors: sha256 over, in key order, ``name|dtype|shape|`` and the
    sha256 of each 64 MiB piece of the tensor's bytes.

    The pieces are hashed on a thread pool (hashlib releases the GIL), so the once-per-trace cost of
    tying a trace to its weights scales with the cores: 6 GB of HRM-Text-1B weights is seconds on
    one core. Weights are read in place (no copy) and never cached, so any edit changes the digest.
    """
    from concurrent.futures import ThreadPoolExecutor

    heads: list[bytes] = []
    pieces: list[tuple[int, memoryview]] = []
    for i, (k, v) in enumerate(sorted(model.state_dict().items())):
        t = v.detach().cpu().contiguous()
        heads.append(f"{k}|{t.dtype}|{list(t.shape)}|".encode())
        raw = memoryview(t.reshape(-1).view(torch.uint8).numpy())
        pieces += [(i, raw[a:a + HASH_PIECE]) for a in range(0, max(len(raw), 1), HASH_PIECE)]
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        digests = list(pool.map(lambda piece: hashlib.sha256(piece[1]).digest(), pieces))
    h = hashlib.sha256()
    j = 0
    for i, head in enumerate(heads):
        h.update(head)
        while j < len(pieces) and pieces[j][0] == i:
            h.update(digests[j])
            j += 1
    return h.hexdigest()


def checkpoint_info(path: str | os.PathLike | None) -> dict[str, Any] | None:
    """``{"path", "sha256"}`` of a checkpoint directory's weights (None without a path)."""
    if path is None:
        return None
    p = Path(path)
    weights = p / "model.safetensors" if p.is_dir() else p
    return {"path": str(p), "sha256": file_sha256(weights) if weights.exists() else None}


__all__ = ["HASH_PIECE", "model_sha256", "checkpoint_info"]

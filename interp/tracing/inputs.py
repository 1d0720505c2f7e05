"""Check and convert what a caller passes to ``trace``: token ids, labels, puzzle ids, which puzzles keep states.

Every malformed input is refused here with a one-line ``TraceError`` before any model runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import torch
from torch import nn

from common.labels import IGNORE_LABEL
from interp.tracing.schema import is_lm_model
from interp.tracing.trace import TraceError

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]


def as_token_tensor(x: ArrayLike, what: str) -> torch.Tensor:
    """A 2-D int64 tensor from numpy/torch/lists; one-line error otherwise."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2:
        raise TraceError(f"{what} must be a [N, L] array of token ids, got shape {list(t.shape)}")
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
        raise TraceError(f"{what} must hold integer token ids, got dtype {t.dtype}")
    return t.long()


def prepare_labels(model: nn.Module, inputs: torch.Tensor, labels: ArrayLike | None) -> torch.Tensor | None:
    """Validate labels (-100 = not scored). Language models default to next-token labels."""
    lm = is_lm_model(model)
    if labels is None:
        if not lm:
            return None
        y = torch.full_like(inputs, IGNORE_LABEL)
        y[:, :-1] = inputs[:, 1:]
        return y
    y = as_token_tensor(labels, "labels")
    if y.shape != inputs.shape:
        raise TraceError(f"labels must have the inputs' shape {list(inputs.shape)}, got {list(y.shape)}")
    V = model.cfg.vocab_size
    valid = y[y != IGNORE_LABEL]
    if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= V):
        raise TraceError(f"label ids must lie in [0, {V}) or be -100, got [{int(valid.min())}, {int(valid.max())}]")
    return y



def prepare_inputs(model: nn.Module, inputs: ArrayLike, labels: ArrayLike | None,
                   puzzle_ids: ArrayLike | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    x = as_token_tensor(inputs, "inputs")
    if x.shape[0] == 0:
        raise TraceError("inputs hold no puzzles")
    V = model.cfg.vocab_size
    if int(x.min()) < 0 or int(x.max()) >= V:
        raise TraceError(f"input token ids must lie in [0, {V}), got [{int(x.min())}, {int(x.max())}]")
    if is_lm_model(model):
        if x.shape[1] > model.cfg.seq_len:
            raise TraceError(f"sequence length {x.shape[1]} exceeds the model's seq_len {model.cfg.seq_len}")
    elif x.shape[1] != model.cfg.seq_len:
        raise TraceError(f"inputs must have {model.cfg.seq_len} tokens per puzzle for this model, got {x.shape[1]}")
    y = prepare_labels(model, x, labels)
    pid = None
    if puzzle_ids is not None:
        pid = torch.as_tensor(np.asarray(puzzle_ids)).long().reshape(-1)
        if pid.shape[0] != x.shape[0]:
            raise TraceError(f"puzzle_ids must have one id per puzzle ({x.shape[0]}), got {pid.shape[0]}")
        n_ids = getattr(model.cfg, "num_puzzle_identifiers", 1)
        if pid.numel() and (int(pid.min()) < 0 or int(pid.max()) >= n_ids):
            raise TraceError(f"puzzle_ids must lie in [0, {n_ids}), got [{int(pid.min())}, {int(pid.max())}]")
    return x, y, pid


def keep_mask(n: int, states: list[str], state_puzzles: ArrayLike | None, offset: int = 0) -> np.ndarray:
    """Which of puzzles offset..offset+n-1 keep full states."""
    if not states:
        return np.zeros(n, dtype=bool)
    if state_puzzles is None:
        return np.ones(n, dtype=bool)
    idx = np.asarray(state_puzzles, dtype=np.int64).reshape(-1)
    m = np.zeros(n, dtype=bool)
    local = idx[(idx >= offset) & (idx < offset + n)] - offset
    m[local] = True
    return m


def base_arrays(x: torch.Tensor, y: torch.Tensor | None, pid: torch.Tensor | None, offset: int = 0) -> dict[str, np.ndarray]:
    n = x.shape[0]
    return {
        "inputs": x.numpy().astype(np.int32),
        "labels": (y if y is not None else torch.full_like(x, IGNORE_LABEL)).numpy().astype(np.int32),
        "puzzle_ids": (pid.numpy() if pid is not None else np.zeros(n)).astype(np.int32),
        "puzzle_index": np.arange(offset, offset + n, dtype=np.int64),
    }



__all__ = ["ArrayLike", "as_token_tensor", "prepare_labels", "prepare_inputs", "keep_mask", "base_arrays"]

"""Checks on a training checkpoint's saved state: a damaged ``state`` record, and which file holds NaN/inf.

Kept apart from the training loop (``training.trainer``), which calls them when it
resumes or rolls back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models.checkpoint import CheckpointError


def suspect_state(ckpt: Path) -> str:
    """Which file of a checkpoint holds non-finite values (e.g. ``NaN in optimizer.safetensors``), if any."""
    from safetensors.torch import load_file

    bad = []
    for f in sorted(Path(ckpt).glob("*.safetensors")):
        try:
            if any(v.is_floating_point() and not bool(torch.isfinite(v).all()) for v in load_file(str(f)).values()):
                bad.append(f.name)
        except Exception:  # noqa: BLE001 - a damaged file is also a bad state
            bad.append(f"{f.name} (unreadable)")
    return f"NaN/inf in {', '.join(bad)}" if bad else "no NaN in its files: the data or learning rate diverges from it"


def check_training_state(st: Any, path: Path, rank: int | None = None) -> None:
    """One ``CheckpointError`` for a damaged or hand-edited ``state`` in a training checkpoint's config.json."""
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    ok = (isinstance(st, dict) and is_int(st.get("step")) and st["step"] >= 0 and is_int(st.get("world_size"))
          and st["world_size"] >= 1 and isinstance(st.get("optimizer_groups"), list)
          and all(isinstance(g, dict) for g in st["optimizer_groups"])
          and isinstance(st.get("stream_positions", []), list) and all(is_int(v) for v in st.get("stream_positions", []))
          and isinstance(st.get("injected", []), list) and is_int(st.get("text_position", 0))
          and (rank is None or len(st.get("stream_positions", [])) > rank))
    if not ok:
        raise CheckpointError(f"{path}: the training state in config.json is damaged (step, world_size, "
                              "optimizer_groups, stream_positions); resume from another checkpoint")


__all__ = ["check_training_state", "suspect_state"]

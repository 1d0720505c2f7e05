"""The shipped checkpoints: ``zoo/<name>/`` in the repository, or ``$RECURSE_ZOO/<name>/``."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def zoo_dir() -> Path:
    """``$RECURSE_ZOO`` or ``<repo>/zoo``."""
    return Path(os.environ.get("RECURSE_ZOO", REPO / "zoo"))


def zoo_checkpoint(name: str) -> Path:
    """Path of a zoo checkpoint by name (or any checkpoint path, or an ``hf:`` spec); one-line error if absent."""
    if name.startswith("hf:"):  # a Hub spec: its local folder in the Hugging Face cache
        from models.hub import local_checkpoint

        return Path(local_checkpoint(name))
    p = Path(name)
    if p.exists():
        return p
    zoo = zoo_dir()
    q = zoo / name
    if (q / "config.json").exists():
        return q
    have = sorted(d.name for d in zoo.iterdir() if (d / "config.json").exists()) if zoo.exists() else []
    raise ValueError(f"no checkpoint {name!r} (zoo has: {', '.join(have) or 'nothing'})")


__all__ = ["REPO", "zoo_dir", "zoo_checkpoint"]

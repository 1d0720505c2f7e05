"""The puzzle and text domain: parse, validate, solve, generate, augment and encode tasks.

Sudoku (``tasks.sudoku``), Maze (``tasks.maze``), ARC-AGI (``tasks.arc``),
text corpora (``tasks.text``), the shared dataset layout
(``tasks.puzzle_dataset``) and the 8 grid symmetries (``tasks.dihedral``);
``tasks.puzzles`` reads user puzzles for a checkpoint's task and draws grids.
Nothing here imports ``models``, ``training``, ``interp`` or ``probes``.
"""
